//! Topic levels and the table from a node's literal levels to its children.
//!
//! A lookup in a tree of a million subscriptions is bound by cache misses, not by
//! instructions, so the layout aims at touching as few cache lines as it can: a level of up
//! to 14 bytes is stored inline next to the child's index, a node with one child needs no
//! table, and a larger table is open-addressed with linear probing, so that a probe usually
//! reads one line holding the level, its hash and the child together.

use super::hash::{hash_level, seed};
use alloc::{boxed::Box, string::String};

/// Levels up to this many bytes live inside the key.
const INLINE: usize = 14;

/// No child (an empty table slot).
const VACANT: u32 = u32::MAX;

/// One level of a topic filter (never `+` or `#`, which have slots of their own).
#[derive(Clone)]
pub(crate) enum Level {
    Inline {
        len: u8,
        buf: [u8; INLINE],
    },
    // A thin pointer keeps the key at 16 bytes; long levels are rare.
    #[allow(clippy::redundant_allocation)]
    Heap(Box<Box<[u8]>>),
}

impl Default for Level {
    fn default() -> Self {
        Level::Inline {
            len: 0,
            buf: [0; INLINE],
        }
    }
}

impl Level {
    pub(crate) fn new(s: &[u8]) -> Self {
        if s.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..s.len()].copy_from_slice(s);
            Level::Inline {
                len: s.len() as u8,
                buf,
            }
        } else {
            Level::Heap(Box::new(s.into()))
        }
    }

    #[inline(always)]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Level::Inline { len, buf } => &buf[..usize::from(*len)],
            Level::Heap(b) => b,
        }
    }
}

impl core::fmt::Debug for Level {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&String::from_utf8_lossy(self.as_bytes()), f)
    }
}

/// Whether two levels are equal. Levels are short: up to 16 bytes are compared with a few
/// overlapping word loads instead of a call to `memcmp`.
#[inline(always)]
pub(crate) fn level_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n > 16 {
        return a == b;
    }
    let w8 = |x: &[u8], i: usize| u64::from_le_bytes(x[i..i + 8].try_into().unwrap_or([0; 8]));
    let w4 = |x: &[u8], i: usize| u32::from_le_bytes(x[i..i + 4].try_into().unwrap_or([0; 4]));
    if n >= 8 {
        w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8)
    } else if n >= 4 {
        w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4)
    } else if n > 0 {
        a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]
    } else {
        true
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// The child's index, or [`VACANT`].
    child: u32,
    /// The low 32 bits of the level's hash: where the slot belongs, and a quick compare.
    hash: u32,
    level: Level,
}

/// An open-addressed table from level to child, with linear probing, a power-of-two size and
/// backward-shift deletion (no tombstones).
#[derive(Debug)]
pub(crate) struct LevelTable {
    slots: Box<[Slot]>,
    len: usize,
    /// The hash key, copied here so that a lookup reads it from a line it reads anyway.
    seed: u64,
}

impl LevelTable {
    fn with_capacity(n: usize) -> Self {
        // At most 5/8 full.
        let cap = (n * 8 / 5 + 1).next_power_of_two().max(8);
        Self {
            slots: (0..cap).map(|_| Slot::vacant()).collect(),
            len: 0,
            seed: seed(),
        }
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[inline(always)]
    fn find(&self, level: &[u8], hash: u32) -> Result<usize, usize> {
        let mask = self.mask();
        let mut i = hash as usize & mask;
        loop {
            let s = &self.slots[i];
            if s.child == VACANT {
                return Err(i);
            }
            if s.hash == hash && level_eq(s.level.as_bytes(), level) {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline(always)]
    fn get(&self, level: &[u8]) -> Option<u32> {
        self.find(level, hash_level(self.seed, level) as u32)
            .ok()
            .map(|i| self.slots[i].child)
    }

    fn insert(&mut self, level: Level, child: u32) {
        if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.grow();
        }
        let hash = hash_level(self.seed, level.as_bytes()) as u32;
        if let Err(i) = self.find(level.as_bytes(), hash) {
            self.slots[i] = Slot { child, hash, level };
            self.len += 1;
        }
    }

    fn grow(&mut self) {
        let old = core::mem::replace(self, Self::with_capacity(self.slots.len()));
        let mask = self.mask();
        for s in old.slots.into_vec() {
            if s.child != VACANT {
                let mut i = s.hash as usize & mask;
                while self.slots[i].child != VACANT {
                    i = (i + 1) & mask;
                }
                self.slots[i] = s;
                self.len += 1;
            }
        }
    }

    fn remove(&mut self, level: &[u8]) {
        let Ok(mut hole) = self.find(level, hash_level(self.seed, level) as u32) else {
            return;
        };
        self.len -= 1;
        let mask = self.mask();
        // Shift back every later slot of the run that may move into the hole.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            if self.slots[j].child == VACANT {
                break;
            }
            let home = self.slots[j].hash as usize & mask;
            // The entry at `j` may fill the hole unless its home lies cyclically in
            // (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots.swap(hole, j);
                hole = j;
            }
        }
        self.slots[hole] = Slot::vacant();
        if self.slots.len() > 64 && self.len * 8 < self.slots.len() {
            let old = core::mem::replace(self, Self::with_capacity(self.len));
            for s in old.slots.into_vec() {
                if s.child != VACANT {
                    self.insert(s.level, s.child);
                }
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], u32)> {
        self.slots
            .iter()
            .filter(|s| s.child != VACANT)
            .map(|s| (s.level.as_bytes(), s.child))
    }
}

impl Slot {
    fn vacant() -> Self {
        Slot {
            child: VACANT,
            hash: 0,
            level: Level::default(),
        }
    }
}

/// The literal-level children of a node. Most nodes have none or one, which need neither a
/// table nor a hash.
#[derive(Debug, Default)]
pub(crate) enum Children {
    #[default]
    None,
    One(Level, u32),
    Many(Box<LevelTable>),
}

impl Children {
    #[inline(always)]
    pub(crate) fn get(&self, level: &[u8]) -> Option<u32> {
        match self {
            Children::None => None,
            Children::One(l, c) => level_eq(l.as_bytes(), level).then_some(*c),
            Children::Many(t) => t.get(level),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Children::None)
    }

    /// Adds a child that is not there yet.
    pub(crate) fn insert(&mut self, level: &[u8], child: u32) {
        match self {
            Children::None => *self = Children::One(Level::new(level), child),
            Children::One(..) => {
                if let Children::One(l, c) = core::mem::take(self) {
                    let mut t = LevelTable::with_capacity(2);
                    t.insert(l, c);
                    t.insert(Level::new(level), child);
                    *self = Children::Many(Box::new(t));
                }
            }
            Children::Many(t) => t.insert(Level::new(level), child),
        }
    }

    /// Removes the child at `level`, if there is one.
    pub(crate) fn remove(&mut self, level: &[u8]) {
        match self {
            Children::None => {}
            Children::One(l, _) => {
                if l.as_bytes() == level {
                    *self = Children::None;
                }
            }
            Children::Many(t) => {
                t.remove(level);
                if t.len <= 1 {
                    let last = t
                        .slots
                        .iter_mut()
                        .find(|s| s.child != VACANT)
                        .map(|s| (core::mem::take(&mut s.level), s.child));
                    *self = match last {
                        Some((l, c)) => Children::One(l, c),
                        None => Children::None,
                    };
                }
            }
        }
    }

    /// Every child with its level, in no particular order.
    pub(crate) fn for_each<'a>(&'a self, mut f: impl FnMut(&'a [u8], u32)) {
        match self {
            Children::None => {}
            Children::One(l, c) => f(l.as_bytes(), *c),
            Children::Many(t) => t.iter().for_each(|(l, c)| f(l, c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_levels_compare_by_content() {
        let long = [b'x'; 40];
        assert_eq!(core::mem::size_of::<Level>(), 16);
        assert!(matches!(
            Level::new(b"device-1234567"),
            Level::Inline { .. }
        ));
        assert!(matches!(Level::new(&long), Level::Heap(_)));
        assert_eq!(Level::new(&long).as_bytes(), &long);
        assert_eq!(Level::new(b"").as_bytes(), b"");
        assert_ne!(Level::new(b"a").as_bytes(), Level::new(b"a\0").as_bytes());
    }

    #[test]
    fn level_eq_agrees_with_slice_equality() {
        let words: Vec<Vec<u8>> = (0..=20)
            .flat_map(|n| {
                let base: Vec<u8> = (0..n as u8).map(|i| b'a' + i).collect();
                let mut variants = vec![base.clone()];
                for i in 0..n {
                    let mut v = base.clone();
                    v[i] ^= 0x20;
                    variants.push(v);
                }
                variants
            })
            .collect();
        for a in &words {
            for b in &words {
                assert_eq!(level_eq(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn children_grow_and_shrink_between_shapes() {
        let mut c = Children::default();
        c.insert(b"a", 1);
        assert!(matches!(c, Children::One(..)));
        c.insert(b"b", 2);
        c.insert(b"", 3);
        assert_eq!(
            (c.get(b"a"), c.get(b"b"), c.get(b""), c.get(b"c")),
            (Some(1), Some(2), Some(3), None)
        );
        c.remove(b"a");
        c.remove(b"");
        assert!(matches!(c, Children::One(..)));
        assert_eq!(c.get(b"b"), Some(2));
        c.remove(b"x");
        c.remove(b"b");
        assert!(c.is_empty());
    }

    #[test]
    fn table_keeps_every_level_through_growth_and_backward_shift_deletes() {
        let mut t = LevelTable::with_capacity(0);
        let name = |i: u32| format!("level-{i}-{}", "x".repeat(i as usize % 20)).into_bytes();
        for i in 0..5000 {
            t.insert(Level::new(&name(i)), i);
        }
        assert_eq!(t.len, 5000);
        for i in (0..5000).filter(|i| i % 3 != 0) {
            t.remove(&name(i));
        }
        t.remove(b"never there");
        for i in 0..5000 {
            let want = (i % 3 == 0).then_some(i);
            assert_eq!(t.get(&name(i)), want, "level {i}");
        }
        assert_eq!(t.iter().count(), 1667);
        for i in (0..5000).filter(|i| i % 3 == 0) {
            t.remove(&name(i));
        }
        assert_eq!((t.len, t.iter().count()), (0, 0));
        assert!(t.slots.len() <= 64, "the table shrinks as it empties");
    }
}

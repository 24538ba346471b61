//! Topic levels as hash keys, short ones stored inline.

use core::borrow::Borrow;
use core::hash::{Hash, Hasher};
use std::collections::HashMap;

use super::hash::BuildLevelHasher;

/// Levels up to this many bytes live inside the key, without a heap allocation of their own:
/// comparing a level then reads no second cache line.
const INLINE: usize = 22;

/// One level of a topic filter (never `+` or `#`, which have slots of their own).
#[derive(Clone)]
pub(crate) enum Level {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<[u8]>),
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
            Level::Heap(s.into())
        }
    }

    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Level::Inline { len, buf } => &buf[..usize::from(*len)],
            Level::Heap(b) => b,
        }
    }
}

impl Borrow<[u8]> for Level {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for Level {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for Level {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Level {}

impl core::fmt::Debug for Level {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&String::from_utf8_lossy(self.as_bytes()), f)
    }
}

/// The literal-level children of a node. Most nodes have none or one, which need neither a
/// table nor a hash.
#[derive(Debug, Default)]
pub(crate) enum Children {
    #[default]
    None,
    One(Level, u32),
    Many(HashMap<Level, u32, BuildLevelHasher>),
}

impl Children {
    #[inline]
    pub(crate) fn get(&self, level: &[u8]) -> Option<u32> {
        match self {
            Children::None => None,
            Children::One(l, c) => (l.as_bytes() == level).then_some(*c),
            Children::Many(m) => m.get(level).copied(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Children::None)
    }

    /// Adds a child that is not there yet.
    pub(crate) fn insert(&mut self, level: &[u8], child: u32) {
        match core::mem::take(self) {
            Children::None => *self = Children::One(Level::new(level), child),
            Children::One(l, c) => {
                let mut m = HashMap::with_capacity_and_hasher(2, BuildLevelHasher);
                m.insert(l, c);
                m.insert(Level::new(level), child);
                *self = Children::Many(m);
            }
            Children::Many(mut m) => {
                m.insert(Level::new(level), child);
                *self = Children::Many(m);
            }
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
            Children::Many(m) => {
                m.remove(level);
                if m.len() <= 1 {
                    let last = m.drain().next();
                    *self = match last {
                        Some((l, c)) => Children::One(l, c),
                        None => Children::None,
                    };
                } else if m.capacity() > 4 * m.len() + 16 {
                    m.shrink_to_fit();
                }
            }
        }
    }

    /// Every child with its level, in no particular order.
    pub(crate) fn for_each<'a>(&'a self, mut f: impl FnMut(&'a [u8], u32)) {
        match self {
            Children::None => {}
            Children::One(l, c) => f(l.as_bytes(), *c),
            Children::Many(m) => m.iter().for_each(|(l, &c)| f(l.as_bytes(), c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_levels_compare_by_content() {
        let long = [b'x'; 40];
        assert!(matches!(Level::new(b"device"), Level::Inline { .. }));
        assert!(matches!(Level::new(&long), Level::Heap(_)));
        assert_eq!(Level::new(&long).as_bytes(), &long);
        assert_eq!(Level::new(b"").as_bytes(), b"");
        assert_ne!(Level::new(b"a"), Level::new(b"a\0"));
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
}

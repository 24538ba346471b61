//! The subscribers of one topic filter, and shared subscription groups.

use crate::collections::HashMap;
use alloc::{boxed::Box, vec, vec::Vec};
use core::hash::Hash;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::hash::BuildLevelHasher;

/// Past this many entries a list keeps a hash index from key to position, so that inserting,
/// finding and removing one subscriber of a popular filter stays O(1).
const INDEX_FROM: usize = 16;

/// The subscribers of one filter: each key at most once, in insertion order until a removal
/// moves the last entry into the freed place. A single subscriber (the common case) is held
/// inline, so visiting it reads no memory beyond its node.
#[derive(Debug, Default)]
pub(crate) enum SubList<K, V> {
    #[default]
    Empty,
    One((K, V)),
    Many(Box<ManyList<K, V>>),
}

#[derive(Debug)]
pub(crate) struct ManyList<K, V> {
    items: Vec<(K, V)>,
    /// Past [`INDEX_FROM`] entries, the position of each key.
    index: Option<HashMap<K, u32, BuildLevelHasher>>,
}

impl<K: Hash + Eq + Clone, V> ManyList<K, V> {
    fn position(&self, key: &K) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.get(key).map(|&i| i as usize),
            None => self.items.iter().position(|(k, _)| k == key),
        }
    }
}

impl<K: Hash + Eq + Clone, V> SubList<K, V> {
    #[inline]
    pub(crate) fn as_slice(&self) -> &[(K, V)] {
        match self {
            SubList::Empty => &[],
            SubList::One(kv) => core::slice::from_ref(kv),
            SubList::Many(m) => &m.items,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, SubList::Empty)
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        match self {
            SubList::Empty => None,
            SubList::One((k, v)) => (k == key).then_some(v),
            SubList::Many(m) => m.position(key).map(|i| &m.items[i].1),
        }
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match self {
            SubList::Empty => None,
            SubList::One((k, v)) => (k == key).then_some(v),
            SubList::Many(m) => m.position(key).map(|i| &mut m.items[i].1),
        }
    }

    /// Inserts or replaces `key`'s value; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self {
            SubList::Empty => {
                *self = SubList::One((key, value));
                None
            }
            SubList::One((k, v)) if *k == key => Some(core::mem::replace(v, value)),
            SubList::One(_) => {
                if let SubList::One(first) = core::mem::take(self) {
                    *self = SubList::Many(Box::new(ManyList {
                        items: vec![first, (key, value)],
                        index: None,
                    }));
                }
                None
            }
            SubList::Many(m) => {
                if let Some(i) = m.position(&key) {
                    return Some(core::mem::replace(&mut m.items[i].1, value));
                }
                let at = m.items.len();
                match &mut m.index {
                    Some(ix) => {
                        ix.insert(key.clone(), at as u32);
                    }
                    None if at + 1 > INDEX_FROM => {
                        let mut ix = HashMap::with_capacity_and_hasher(at + 1, BuildLevelHasher);
                        for (i, (k, _)) in m.items.iter().enumerate() {
                            ix.insert(k.clone(), i as u32);
                        }
                        ix.insert(key.clone(), at as u32);
                        m.index = Some(ix);
                    }
                    None => {}
                }
                m.items.push((key, value));
                None
            }
        }
    }

    /// Removes `key`; the last entry takes its place.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        match self {
            SubList::Empty => None,
            SubList::One((k, _)) => {
                if k != key {
                    return None;
                }
                match core::mem::take(self) {
                    SubList::One((_, v)) => Some(v),
                    _ => None,
                }
            }
            SubList::Many(m) => {
                let i = m.position(key)?;
                let (_, v) = m.items.swap_remove(i);
                if let Some(ix) = &mut m.index {
                    ix.remove(key);
                    if let Some((moved, _)) = m.items.get(i) {
                        ix.insert(moved.clone(), i as u32);
                    }
                    if m.items.len() < INDEX_FROM / 2 {
                        m.index = None;
                    }
                }
                if m.items.len() == 1
                    && let Some(last) = m.items.pop()
                {
                    *self = SubList::One(last);
                }
                Some(v)
            }
        }
    }
}

/// A shared subscription group (`$share/{ShareName}/{filter}`): the members that share one
/// filter under one share name. A message that matches the filter goes to one member only.
///
/// [`pick`](Self::pick) chooses that member round-robin: a cursor remembers where the last
/// pick stopped, so the same sequence of subscribes, unsubscribes and picks always chooses the
/// same members. The cursor advances through `&self` (it is atomic), so a tree behind a shared
/// reference can still pick; concurrent pickers each get a member, in an unspecified order.
#[derive(Debug)]
pub struct SharedGroup<K, V> {
    name: Box<str>,
    members: SubList<K, V>,
    cursor: AtomicUsize,
}

impl<K: Hash + Eq + Clone, V> SharedGroup<K, V> {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            members: SubList::default(),
            cursor: AtomicUsize::new(0),
        }
    }

    pub(crate) fn members_mut(&mut self) -> &mut SubList<K, V> {
        &mut self.members
    }

    pub(crate) fn members_list(&self) -> &SubList<K, V> {
        &self.members
    }

    /// The share name (the `ShareName` of `$share/{ShareName}/{filter}`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The members and their values, each member once, in the order the cursor walks them.
    /// A member that leaves is replaced in its place by the last one.
    pub fn members(&self) -> &[(K, V)] {
        self.members.as_slice()
    }

    /// Number of members (never zero for a group the tree hands out).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the group has no members (never true for a group the tree hands out).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Picks the next member round-robin for which `eligible` returns true (for example one
    /// whose session is connected, or has room in its queue), and moves the cursor past it.
    /// `None` if no member is eligible; the cursor then stays where it was.
    pub fn pick(&self, mut eligible: impl FnMut(&K, &V) -> bool) -> Option<(&K, &V)> {
        let members = self.members.as_slice();
        let n = members.len();
        if n == 0 {
            return None;
        }
        let start = self.cursor.load(Ordering::Relaxed) % n;
        for step in 0..n {
            let i = (start + step) % n;
            let (k, v) = &members[i];
            if eligible(k, v) {
                self.cursor.store(i + 1, Ordering::Relaxed);
                return Some((k, v));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_keeps_each_key_once_and_indexes_large_lists() {
        let mut l: SubList<u32, u32> = SubList::default();
        for k in 0..100 {
            assert_eq!(l.insert(k, k), None);
        }
        assert!(matches!(&l, SubList::Many(m) if m.index.is_some()));
        assert_eq!(l.insert(7, 70), Some(7));
        assert_eq!(l.len(), 100);
        for k in (0..100).step_by(2) {
            assert_eq!(l.remove(&k), Some(if k == 7 { 70 } else { k }));
        }
        for k in 0..100 {
            let want = (k % 2 == 1).then_some(if k == 7 { 70 } else { k });
            assert_eq!(l.get(&k).copied(), want, "key {k}");
        }
        for k in (1..100).step_by(2) {
            assert!(l.remove(&k).is_some());
        }
        assert!(l.is_empty());
        assert_eq!(l.remove(&1), None);
    }

    #[test]
    fn pick_is_round_robin_and_skips_ineligible_members() {
        let mut g: SharedGroup<u32, ()> = SharedGroup::new("g");
        for k in [1, 2, 3] {
            g.members_mut().insert(k, ());
        }
        let picks: Vec<u32> = (0..6).map(|_| *g.pick(|_, _| true).unwrap().0).collect();
        assert_eq!(picks, [1, 2, 3, 1, 2, 3]);
        let picks: Vec<u32> = (0..3).map(|_| *g.pick(|k, _| *k != 2).unwrap().0).collect();
        assert_eq!(picks, [1, 3, 1]);
        assert!(g.pick(|_, _| false).is_none());
        assert_eq!(*g.pick(|_, _| true).unwrap().0, 2);
    }
}

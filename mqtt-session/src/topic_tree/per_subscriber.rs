//! Folding one subscriber's overlapping subscriptions into one delivery.

use crate::collections::HashMap;
use alloc::vec::Vec;
use core::hash::Hash;

use super::hash::BuildLevelHasher;

/// How the values of one subscriber's overlapping subscriptions combine into what that
/// subscriber is sent: one message with the highest QoS of the matching subscriptions and all
/// their subscription identifiers ([MQTT-3.3.4-2], [MQTT-3.3.4-3], [MQTT-3.3.4-4],
/// [MQTT-3.3.4-5]).
///
/// `A` is a slot that [`PerSubscriber`] reuses from one topic to the next, so that a delivery
/// that holds a `Vec` of subscription identifiers keeps its capacity and matching allocates
/// nothing once warm.
pub trait Combine<V> {
    /// Starts a delivery from the first matching subscription's value. The slot holds what an
    /// earlier topic left in it: reset every field.
    fn start(&mut self, value: &V);
    /// Adds another matching subscription of the same subscriber.
    fn add(&mut self, value: &V);
}

/// Below this many subscribers a duplicate is found by a linear scan; from here on by a hash
/// index.
const LINEAR_UP_TO: usize = 16;

/// The matches of one topic folded per subscriber: each subscriber once, with its
/// subscriptions combined by [`Combine`]. Fill it with
/// [`TopicTree::matches_per_subscriber`](super::TopicTree::matches_per_subscriber), then read
/// [`as_slice`](Self::as_slice).
///
/// Keep one and reuse it for every publish: it keeps its slots and index between calls.
#[derive(Debug)]
pub struct PerSubscriber<K, A> {
    slots: Vec<(K, A)>,
    len: usize,
    /// Position of each key in `slots[..len]`, kept only while deduplication is needed and the
    /// list is longer than [`LINEAR_UP_TO`].
    index: HashMap<K, u32, BuildLevelHasher>,
    indexed: bool,
    /// Whether more than one filter matched, so that keys may repeat.
    dedup: bool,
}

impl<K, A> Default for PerSubscriber<K, A> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
            index: HashMap::with_hasher(BuildLevelHasher),
            indexed: false,
            dedup: false,
        }
    }
}

impl<K: Hash + Eq + Clone, A: Default> PerSubscriber<K, A> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the last topic's deliveries (keeping the memory).
    pub fn clear(&mut self) {
        self.len = 0;
        self.index.clear();
        self.indexed = false;
        self.dedup = false;
    }

    /// The deliveries: each subscriber once, in the order its first match was found.
    pub fn as_slice(&self) -> &[(K, A)] {
        &self.slots[..self.len]
    }

    /// Number of distinct subscribers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no subscriber matched.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Called before the entries of each matching filter; the keys of one filter are
    /// distinct, so only a second filter can repeat a key.
    pub(crate) fn next_filter(&mut self) {
        if self.len > 0 {
            self.dedup = true;
        }
    }

    /// Adds one matching subscription of `key`.
    pub fn add<V>(&mut self, key: &K, value: &V)
    where
        A: Combine<V>,
    {
        if self.dedup
            && let Some(i) = self.find(key)
        {
            self.slots[i].1.add(value);
            return;
        }
        let i = self.len;
        if i == self.slots.len() {
            self.slots.push((key.clone(), A::default()));
        } else {
            self.slots[i].0.clone_from(key);
        }
        self.slots[i].1.start(value);
        self.len += 1;
        if self.indexed {
            self.index.insert(key.clone(), i as u32);
        }
    }

    fn find(&mut self, key: &K) -> Option<usize> {
        if !self.indexed {
            if self.len <= LINEAR_UP_TO {
                return self.slots[..self.len].iter().position(|(k, _)| k == key);
            }
            for (i, (k, _)) in self.slots[..self.len].iter().enumerate() {
                self.index.insert(k.clone(), i as u32);
            }
            self.indexed = true;
        }
        self.index.get(key).map(|&i| i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug, PartialEq)]
    struct Max(u8, Vec<u8>);

    impl Combine<u8> for Max {
        fn start(&mut self, v: &u8) {
            self.0 = *v;
            self.1.clear();
            self.1.push(*v);
        }
        fn add(&mut self, v: &u8) {
            self.0 = self.0.max(*v);
            self.1.push(*v);
        }
    }

    #[test]
    fn repeats_fold_only_across_filters_and_slots_are_reset() {
        let mut p: PerSubscriber<u32, Max> = PerSubscriber::new();
        p.next_filter();
        for k in 0..20 {
            p.add(&k, &1);
        }
        p.next_filter();
        for k in (0..20).step_by(5) {
            p.add(&k, &2);
        }
        p.add(&100, &0);
        assert_eq!(p.len(), 21);
        assert_eq!(p.as_slice()[5], (5, Max(2, vec![1, 2])));
        assert_eq!(p.as_slice()[6], (6, Max(1, vec![1])));
        assert_eq!(p.as_slice()[20], (100, Max(0, vec![0])));
        p.clear();
        p.next_filter();
        p.add(&5, &0);
        assert_eq!(p.as_slice(), &[(5, Max(0, vec![0]))]);
    }
}

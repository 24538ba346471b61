//! Answering a publish: the walk from the root along the topic's levels.

use alloc::vec::Vec;
use core::hash::Hash;

use super::{Combine, Match, NONE, PerSubscriber, ROOT, SharedGroup, TopicTree, subs::SubList};

/// Position past the last level of a topic.
const END: u32 = u32::MAX;

/// What the walk found: a list of non-shared subscriptions, or a shared group.
pub(super) enum Found<'a, K, V> {
    List(&'a SubList<K, V>),
    Group(&'a SharedGroup<K, V>),
}

/// A small stack that lives on the call stack and spills to the heap only past `N` entries,
/// which takes a tree deeper than any sensible topic hierarchy.
pub(super) struct InlineStack<T, const N: usize> {
    inline: [T; N],
    len: usize,
    spill: Vec<T>,
}

impl<T: Copy + Default, const N: usize> InlineStack<T, N> {
    #[inline(always)]
    pub(super) fn new() -> Self {
        Self {
            inline: [T::default(); N],
            len: 0,
            spill: Vec::new(),
        }
    }

    #[inline(always)]
    pub(super) fn push(&mut self, x: T) {
        if self.len < N {
            self.inline[self.len] = x;
            self.len += 1;
        } else {
            self.spill.push(x);
        }
    }

    #[inline(always)]
    pub(super) fn pop(&mut self) -> Option<T> {
        if let Some(x) = self.spill.pop() {
            return Some(x);
        }
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(self.inline[self.len])
    }
}

/// The index of the first `/` in `b`, eight bytes at a time.
#[inline(always)]
fn find_slash(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])) ^ (ONES * u64::from(b'/'));
        // The lowest byte that was `/` is now zero: the lowest high bit set here marks it
        // (a borrow can only set bits above the first zero byte).
        let zero = w.wrapping_sub(ONES) & !w & HIGHS;
        if zero != 0 {
            return Some(i + zero.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == b'/').map(|j| i + j)
}

/// The next level of `topic` from byte `pos`, and where the level after it starts ([`END`]
/// if this was the last).
#[inline(always)]
fn next_level(topic: &[u8], pos: u32) -> (&[u8], u32) {
    let rest = &topic[pos as usize..];
    match find_slash(rest) {
        // `pos + i + 1 <= topic.len() < END`: checked by the walk.
        Some(i) => (&rest[..i], pos + i as u32 + 1),
        None => (rest, END),
    }
}

impl<K: Hash + Eq + Clone, V> TopicTree<K, V> {
    /// Calls `visit` once for every subscription whose filter matches the topic name `topic`
    /// (each non-shared (filter, key), and each shared group once), in an unspecified but
    /// deterministic order. `topic` is taken as a valid topic name (a
    /// [`TopicName`](mqtt_codec::TopicName) derefs to one): a `+` or `#` in it is an ordinary
    /// character, and a string longer than any topic name can be matches nothing. Allocates
    /// nothing.
    ///
    /// A subscriber with overlapping subscriptions is visited once per matching filter: see
    /// [`matches_per_subscriber`](Self::matches_per_subscriber) to fold those.
    #[inline]
    pub fn matches<'a>(&'a self, topic: &str, mut visit: impl FnMut(Match<'a, K, V>)) {
        self.walk(topic, |found| {
            match found {
                Found::List(list) => {
                    for (k, v) in list.as_slice() {
                        visit(Match::Subscription(k, v));
                    }
                }
                Found::Group(g) => visit(Match::Shared(g)),
            }
            true
        });
    }

    /// Whether any subscription (shared or not) matches `topic`. Stops at the first match.
    pub fn has_match(&self, topic: &str) -> bool {
        let mut found = false;
        self.walk(topic, |_| {
            found = true;
            false
        });
        found
    }

    /// Fills `out` with the non-shared subscriptions that match `topic`, one entry per
    /// subscriber with its matching subscriptions folded by [`Combine`] (highest QoS, all
    /// subscription identifiers: [MQTT-3.3.4-2], [MQTT-3.3.4-3]), and calls `shared` once for
    /// every matching shared group. `out` is cleared first; reuse it across publishes and
    /// nothing is allocated once it has grown to the largest fan-out.
    pub fn matches_per_subscriber<'a, A>(
        &'a self,
        topic: &str,
        out: &mut PerSubscriber<K, A>,
        mut shared: impl FnMut(&'a SharedGroup<K, V>),
    ) where
        A: Combine<V> + Default,
    {
        out.clear();
        self.walk(topic, |found| {
            match found {
                Found::List(list) => {
                    out.next_filter();
                    for (k, v) in list.as_slice() {
                        out.add(k, v);
                    }
                }
                Found::Group(g) => shared(g),
            }
            true
        });
    }

    /// The walk behind every lookup: `found` gets each matching list of non-shared
    /// subscriptions (never an empty one) and each matching shared group, and returns whether
    /// to go on.
    #[inline(always)]
    fn walk<'a>(&'a self, topic: &str, mut found: impl FnMut(Found<'a, K, V>) -> bool) {
        let t = topic.as_bytes();
        if t.len() >= END as usize {
            return;
        }
        // [MQTT-4.7.2-1] a topic name starting with `$` is not matched by a filter starting
        // with a wildcard: at the root, skip the `+` child and the `#` subscriptions.
        let dollar = t.first() == Some(&b'$');
        // Branches still to walk: (node, position) packed in one word.
        let mut pending = InlineStack::<u64, 8>::new();
        let mut cur = Some((ROOT, 0u32));
        loop {
            let (n, pos) = match cur.take() {
                Some(x) => x,
                None => match pending.pop() {
                    Some(x) => ((x >> 32) as u32, x as u32),
                    None => return,
                },
            };
            let node = &self.nodes[n as usize];
            let wild = !(dollar && n == ROOT);
            // `#` matches the parent level and everything below it ([MQTT-4.7.1-1]).
            if wild && !node.multi.is_empty() && !found(Found::List(&node.multi)) {
                return;
            }
            if pos == END && !node.exact.is_empty() && !found(Found::List(&node.exact)) {
                return;
            }
            if node.shared
                && let Some(at) = self.shared.get(&n)
            {
                let groups = wild
                    .then_some(&at.multi)
                    .into_iter()
                    .chain((pos == END).then_some(&at.exact));
                for g in groups.flatten() {
                    if !found(Found::Group(g)) {
                        return;
                    }
                }
            }
            if pos == END {
                continue;
            }
            let (level, next) = next_level(t, pos);
            // `+` matches exactly one level, whatever it holds ([MQTT-4.7.1-2]).
            if wild && node.plus != NONE {
                cur = Some((node.plus, next));
            }
            if let Some(c) = node.children.get(level) {
                match cur {
                    None => cur = Some((c, next)),
                    Some(_) => pending.push((u64::from(c) << 32) | u64::from(next)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_slash_finds_the_first_slash_at_every_offset() {
        for len in 0..40 {
            for at in 0..=len {
                let mut b = vec![b'a'; len];
                // Bytes next to `/` in value, to tempt the word trick into a false match.
                for (i, c) in b.iter_mut().enumerate() {
                    *c = [b'.', b'0', b'a', 0x80, 0xff][i % 5];
                }
                if at < len {
                    b[at] = b'/';
                    if at + 3 < len {
                        b[at + 3] = b'/';
                    }
                }
                let want = b.iter().position(|&c| c == b'/');
                assert_eq!(find_slash(&b), want, "len {len}, slash at {at}");
            }
        }
    }

    #[test]
    fn next_level_steps_through_empty_levels() {
        let t = b"a//bc/";
        assert_eq!(next_level(t, 0), (&b"a"[..], 2));
        assert_eq!(next_level(t, 2), (&b""[..], 3));
        assert_eq!(next_level(t, 3), (&b"bc"[..], 6));
        assert_eq!(next_level(t, 6), (&b""[..], END));
    }
}

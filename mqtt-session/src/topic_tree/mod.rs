//! The subscription tree: topic filters to subscribers, matched against topic names.
//!
//! A [`TopicTree`] holds one entry per (topic filter, subscriber key), with a value of the
//! broker's choosing (the subscription options, the subscription identifier, ...). Publishing
//! asks it for every subscription whose filter matches a topic name, by the rules of section
//! 4.7 of the MQTT specification:
//!
//! - `+` matches exactly one level, `#` the parent level and any number of levels below it
//!   ([MQTT-4.7.1-1], [MQTT-4.7.1-2]);
//! - levels are what lies between `/` separators, so empty levels are real levels: `a//b` has
//!   three, `/a` two, and `+/a` matches `/a`;
//! - a topic name starting with `$` is not matched by a filter starting with `+` or `#`
//!   ([MQTT-4.7.2-1]);
//! - names and filters are compared byte for byte, with no normalisation ([MQTT-4.7.3-4]).
//!
//! # Use in a broker
//!
//! A client's overlapping subscriptions must reach it as one message, with the highest QoS
//! of the matching subscriptions and all their subscription identifiers ([MQTT-3.3.4-2],
//! [MQTT-3.3.4-3]). [`TopicTree::matches_per_subscriber`] does that fold: the broker implements
//! [`Combine`] for its delivery type and keeps one [`PerSubscriber`] that it reuses for every
//! publish, so matching allocates nothing once warm. [`TopicTree::matches`] hands back the raw
//! matches instead, one per matching (filter, subscriber).
//!
//! Shared subscriptions (`$share/{ShareName}/{filter}`) are stored under their filter and
//! grouped by share name: a topic that matches yields the [`SharedGroup`] once, and the broker
//! chooses the member that gets the message with [`SharedGroup::pick`] (round-robin,
//! deterministic). A client that has a shared and a non-shared subscription matching the same
//! topic gets a copy for each, so groups are not folded into the per-subscriber deliveries.
//!
//! ```
//! use mqtt_session::topic_tree::{Combine, PerSubscriber, TopicTree};
//!
//! #[derive(Clone, Copy)]
//! struct Options { qos: u8, id: Option<u32> }
//!
//! #[derive(Default)]
//! struct Delivery { qos: u8, ids: Vec<u32> }
//!
//! impl Combine<Options> for Delivery {
//!     fn start(&mut self, o: &Options) {
//!         self.qos = o.qos;
//!         self.ids.clear();
//!         self.ids.extend(o.id);
//!     }
//!     fn add(&mut self, o: &Options) {
//!         self.qos = self.qos.max(o.qos);
//!         self.ids.extend(o.id);
//!     }
//! }
//!
//! let mut tree: TopicTree<&str, Options> = TopicTree::new();
//! tree.insert("site/+/temp", "alice", Options { qos: 0, id: Some(1) })?;
//! tree.insert("site/#", "alice", Options { qos: 2, id: Some(2) })?;
//! tree.insert("site/7/temp", "bob", Options { qos: 1, id: None })?;
//! tree.insert("$share/workers/site/#", "w1", Options { qos: 1, id: None })?;
//! tree.insert("$share/workers/site/#", "w2", Options { qos: 1, id: None })?;
//!
//! let mut out = PerSubscriber::<&str, Delivery>::new();
//! let mut picked = Vec::new();
//! tree.matches_per_subscriber("site/7/temp", &mut out, |group| {
//!     picked.extend(group.pick(|_member, _options| true).map(|(k, _)| *k));
//! });
//! let alice = out.as_slice().iter().find(|(k, _)| *k == "alice").unwrap();
//! assert_eq!((alice.1.qos, alice.1.ids.len()), (2, 2));
//! assert_eq!(out.len(), 2);
//! assert_eq!(picked, ["w1"]);
//! # Ok::<(), mqtt_codec::StringError>(())
//! ```
//!
//! # Cost
//!
//! Nodes live in one arena indexed by `u32`, each node aligned to a cache line and holding
//! its `+` child, its `#` subscriptions and its own subscriptions (a single subscriber
//! inline). Literal levels go through a per-node table (none for a node with a single child):
//! open-addressed, with levels of up to 14 bytes stored inline, so a probe usually reads one
//! line. A lookup splits the topic lazily and allocates nothing; it visits only the nodes the
//! topic can reach, so its cost follows the topic's depth and the wildcards on its path, not
//! the number of subscriptions. In a tree too large for the caches that is about two cache
//! misses per literal level. Removing the last subscription of a node frees the node and every
//! ancestor left empty; freed nodes are reused.

use alloc::{string::String, vec, vec::Vec};

mod filter;
mod hash;
mod level;
mod per_subscriber;
mod subs;
mod walk;

use crate::collections::HashMap;
use core::hash::Hash;

use mqtt_codec::StringError;

use filter::{Parsed, parse_filter};
pub(crate) use hash::BuildLevelHasher;
use level::Children;
pub use per_subscriber::{Combine, PerSubscriber};
pub use subs::SharedGroup;
use subs::SubList;
use walk::InlineStack;

/// The root node's index; the root is never freed.
const ROOT: u32 = 0;
/// No node (an empty `+` slot).
const NONE: u32 = u32::MAX;

/// One match of a topic name, handed to the visitor of [`TopicTree::matches`].
#[derive(Debug)]
pub enum Match<'a, K, V> {
    /// A non-shared subscription: the subscriber's key and the subscription's value.
    Subscription(&'a K, &'a V),
    /// A shared subscription group whose filter matches: one of its members gets the message.
    Shared(&'a SharedGroup<K, V>),
}

/// Topic filters mapped to subscribers, matched against topic names. See the
/// [module documentation](self) for the rules and the intended use.
///
/// `K` identifies a subscriber (a session or client id); each filter holds a key at most
/// once. `V` is the subscription's value (its options).
///
/// Methods: [`insert`](Self::insert), [`remove`](Self::remove), [`get`](Self::get) and
/// [`get_mut`](Self::get_mut) work on one subscription; [`matches`](Self::matches),
/// [`matches_per_subscriber`](Self::matches_per_subscriber) and
/// [`has_match`](Self::has_match) answer a publish; [`for_each`](Self::for_each) lists
/// everything (for snapshots).
#[derive(Debug)]
pub struct TopicTree<K, V = ()> {
    nodes: Vec<Node<K, V>>,
    free: Vec<u32>,
    /// Shared subscription groups, by the node their filter ends at (few nodes have any).
    shared: HashMap<u32, SharedAt<K, V>, BuildLevelHasher>,
    len: usize,
}

/// One level of the tree. Laid out so that what a lookup reads shares the node's first cache
/// line: with a key and value of up to 12 bytes together (a session index and the
/// subscription options), the whole node is one line.
#[derive(Debug)]
#[repr(C, align(64))]
struct Node<K, V> {
    children: Children,
    /// The `+` child, or [`NONE`].
    plus: u32,
    /// Whether [`TopicTree::shared`] has groups at this node.
    shared: bool,
    /// Subscriptions to this node's path followed by `/#` (just `#` at the root).
    multi: SubList<K, V>,
    /// Subscriptions to the filter of this node's path.
    exact: SubList<K, V>,
}

/// The shared groups whose filter ends at a node.
#[derive(Debug)]
struct SharedAt<K, V> {
    exact: Vec<SharedGroup<K, V>>,
    multi: Vec<SharedGroup<K, V>>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Self {
            children: Children::None,
            plus: NONE,
            shared: false,
            multi: SubList::Empty,
            exact: SubList::Empty,
        }
    }
}

impl<K: Hash + Eq + Clone, V> Node<K, V> {
    fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.multi.is_empty()
            && !self.shared
            && self.plus == NONE
            && self.children.is_empty()
    }
}

impl<K, V> Default for TopicTree<K, V> {
    fn default() -> Self {
        Self {
            nodes: vec![Node::default()],
            free: Vec::new(),
            shared: HashMap::with_hasher(BuildLevelHasher),
            len: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, V> TopicTree<K, V> {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of subscriptions (each (filter, key) once; each member of each shared group
    /// once).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tree holds no subscription.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of nodes in use, the root included: a measure of memory use, and of whether
    /// removals prune (an empty tree has one node).
    pub fn node_count(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    /// Adds the subscription of `key` to `filter` with `value`, or replaces its value if `key`
    /// already subscribes to exactly this filter ([MQTT-3.8.4-3]); returns the value replaced.
    ///
    /// A filter `$share/{ShareName}/{inner}` makes `key` a member of the shared subscription
    /// group `ShareName` on `inner`. Fails, changing nothing, if `filter` is not a valid topic
    /// filter ([MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.7.3-1], [MQTT-4.7.3-2],
    /// [MQTT-4.7.3-3]) or not a valid shared subscription ([MQTT-4.8.2-1], [MQTT-4.8.2-2]).
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Result<Option<V>, StringError> {
        let p = parse_filter(filter)?;
        let mut n = ROOT;
        for level in p.levels() {
            n = self.child_or_insert(n, level.as_bytes());
        }
        let old = match p.share {
            None => {
                let node = &mut self.nodes[n as usize];
                let list = if p.multi {
                    &mut node.multi
                } else {
                    &mut node.exact
                };
                list.insert(key, value)
            }
            Some(name) => {
                self.nodes[n as usize].shared = true;
                let at = self.shared.entry(n).or_insert_with(|| SharedAt {
                    exact: Vec::new(),
                    multi: Vec::new(),
                });
                let groups = if p.multi {
                    &mut at.multi
                } else {
                    &mut at.exact
                };
                let i = match groups.iter().position(|g| g.name() == name) {
                    Some(i) => i,
                    None => {
                        groups.push(SharedGroup::new(name));
                        groups.len() - 1
                    }
                };
                groups[i].members_mut().insert(key, value)
            }
        };
        if old.is_none() {
            self.len += 1;
        }
        Ok(old)
    }

    /// Removes the subscription of `key` to `filter` (written as it was inserted, including
    /// any `$share/{ShareName}/` prefix) and returns its value; `None` if there was none.
    /// Nodes left empty are freed.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let p = parse_filter(filter).ok()?;
        // The nodes along the path, root first, to prune on the way back.
        let mut path = InlineStack::<u32, 16>::new();
        let mut n = ROOT;
        for level in p.levels() {
            path.push(n);
            n = self.child(n, level)?;
        }
        let old = match p.share {
            None => {
                let node = &mut self.nodes[n as usize];
                if p.multi {
                    node.multi.remove(key)
                } else {
                    node.exact.remove(key)
                }
            }
            Some(name) => {
                let at = self.shared.get_mut(&n)?;
                let groups = if p.multi {
                    &mut at.multi
                } else {
                    &mut at.exact
                };
                let i = groups.iter().position(|g| g.name() == name)?;
                let old = groups[i].members_mut().remove(key);
                if groups[i].is_empty() {
                    groups.swap_remove(i);
                }
                if at.exact.is_empty() && at.multi.is_empty() {
                    self.shared.remove(&n);
                    self.nodes[n as usize].shared = false;
                }
                old
            }
        }?;
        self.len -= 1;
        // Free `n` and then each ancestor left empty.
        for level in p.levels().rev() {
            if !self.nodes[n as usize].is_empty() {
                break;
            }
            let Some(parent) = path.pop() else { break };
            let pn = &mut self.nodes[parent as usize];
            if level == "+" {
                pn.plus = NONE;
            } else {
                pn.children.remove(level.as_bytes());
            }
            self.nodes[n as usize] = Node::default();
            self.free.push(n);
            n = parent;
        }
        Some(old)
    }

    /// The value of `key`'s subscription to `filter` (written as it was inserted).
    pub fn get(&self, filter: &str, key: &K) -> Option<&V> {
        let p = parse_filter(filter).ok()?;
        let n = self.find(&p)?;
        let node = &self.nodes[n as usize];
        match p.share {
            None if p.multi => node.multi.get(key),
            None => node.exact.get(key),
            Some(name) => {
                let at = self.shared.get(&n)?;
                let groups = if p.multi { &at.multi } else { &at.exact };
                groups
                    .iter()
                    .find(|g| g.name() == name)?
                    .members_list()
                    .get(key)
            }
        }
    }

    /// The value of `key`'s subscription to `filter`, to change in place.
    pub fn get_mut(&mut self, filter: &str, key: &K) -> Option<&mut V> {
        let p = parse_filter(filter).ok()?;
        let n = self.find(&p)?;
        match p.share {
            None if p.multi => self.nodes[n as usize].multi.get_mut(key),
            None => self.nodes[n as usize].exact.get_mut(key),
            Some(name) => {
                let at = self.shared.get_mut(&n)?;
                let groups = if p.multi {
                    &mut at.multi
                } else {
                    &mut at.exact
                };
                groups
                    .iter_mut()
                    .find(|g| g.name() == name)?
                    .members_mut()
                    .get_mut(key)
            }
        }
    }

    /// Calls `f` with every subscription: its filter as it was inserted (with any
    /// `$share/{ShareName}/` prefix), its key and its value. The order is unspecified and may
    /// differ between runs: sort if you need one (for example in a snapshot).
    pub fn for_each(&self, mut f: impl FnMut(&str, &K, &V)) {
        // (node, length of `path` before this node's level, this node's level, whether the
        // level is the first of the filter)
        let mut stack: Vec<(u32, usize, &[u8], bool)> = vec![(ROOT, 0, b"", true)];
        let mut path: Vec<u8> = Vec::new();
        let mut filter = String::new();
        while let Some((n, keep, level, first)) = stack.pop() {
            path.truncate(keep);
            if n != ROOT {
                if !first {
                    path.push(b'/');
                }
                path.extend_from_slice(level);
            }
            let node = &self.nodes[n as usize];
            let p = String::from_utf8_lossy(&path);
            let mut emit = |share: Option<&str>, multi: bool, list: &SubList<K, V>| {
                filter.clear();
                if let Some(name) = share {
                    filter.push_str("$share/");
                    filter.push_str(name);
                    filter.push('/');
                }
                filter.push_str(&p);
                if multi {
                    filter.push_str(if n == ROOT { "#" } else { "/#" });
                }
                for (k, v) in list.as_slice() {
                    f(&filter, k, v);
                }
            };
            emit(None, false, &node.exact);
            emit(None, true, &node.multi);
            if let Some(at) = self.shared.get(&n) {
                for g in &at.exact {
                    emit(Some(g.name()), false, g.members_list());
                }
                for g in &at.multi {
                    emit(Some(g.name()), true, g.members_list());
                }
            }
            let keep = path.len();
            let first = n == ROOT;
            if node.plus != NONE {
                stack.push((node.plus, keep, b"+", first));
            }
            node.children
                .for_each(|level, c| stack.push((c, keep, level, first)));
        }
    }

    /// The child of `n` at filter level `level`, if there is one.
    fn child(&self, n: u32, level: &str) -> Option<u32> {
        let node = &self.nodes[n as usize];
        if level == "+" {
            Some(node.plus).filter(|&c| c != NONE)
        } else {
            node.children.get(level.as_bytes())
        }
    }

    /// The node of `p`'s path, if it exists.
    fn find(&self, p: &Parsed<'_>) -> Option<u32> {
        p.levels().try_fold(ROOT, |n, level| self.child(n, level))
    }

    fn child_or_insert(&mut self, n: u32, level: &[u8]) -> u32 {
        let node = &self.nodes[n as usize];
        if level == b"+" {
            if node.plus != NONE {
                return node.plus;
            }
            let c = self.alloc();
            self.nodes[n as usize].plus = c;
            return c;
        }
        if let Some(c) = node.children.get(level) {
            return c;
        }
        let c = self.alloc();
        self.nodes[n as usize].children.insert(level, c);
        c
    }

    fn alloc(&mut self) -> u32 {
        if let Some(n) = self.free.pop() {
            return n;
        }
        // A node takes 64 bytes or more, so memory runs out long before the indices do.
        let n = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&n| n != NONE)
            .expect("the topic tree holds fewer than 2^32 - 1 nodes");
        self.nodes.push(Node::default());
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(t: &TopicTree<u32, ()>, topic: &str) -> Vec<u32> {
        let mut v = Vec::new();
        t.matches(topic, |m| match m {
            Match::Subscription(k, _) => v.push(*k),
            Match::Shared(g) => v.extend(g.members().iter().map(|(k, _)| *k + 1000)),
        });
        v.sort();
        v
    }

    #[test]
    fn a_node_with_a_small_key_and_value_is_one_cache_line() {
        assert_eq!(core::mem::size_of::<Node<u32, (u8, u32)>>(), 64);
        assert_eq!(core::mem::align_of::<Node<u32, (u8, u32)>>(), 64);
    }

    #[test]
    fn removing_the_last_subscription_prunes_and_nodes_are_reused() {
        let mut t: TopicTree<u32> = TopicTree::new();
        t.insert("a/b/c/d", 1, ()).unwrap();
        t.insert("a/+/c/#", 2, ()).unwrap();
        assert_eq!(t.node_count(), 1 + 4 + 2);
        assert_eq!(t.remove("a/b/c/d", &1), Some(()));
        assert_eq!(t.node_count(), 1 + 3);
        let freed = t.free.len();
        t.insert("x/y", 3, ()).unwrap();
        assert_eq!(t.free.len(), freed - 2);
        assert_eq!(t.remove("a/+/c/#", &2), Some(()));
        assert_eq!(t.remove("x/y", &3), Some(()));
        assert_eq!(t.node_count(), 1);
        assert!(t.is_empty());
        assert_eq!(matched(&t, "a/b/c/d"), Vec::<u32>::new());
    }

    #[test]
    fn a_node_keeps_its_children_when_its_own_subscription_goes() {
        let mut t: TopicTree<u32> = TopicTree::new();
        t.insert("a", 1, ()).unwrap();
        t.insert("a/b", 2, ()).unwrap();
        t.remove("a", &1);
        assert_eq!(matched(&t, "a/b"), [2]);
        assert_eq!(t.node_count(), 3);
    }

    #[test]
    fn deep_trees_spill_the_pending_branches_without_losing_any() {
        // [MQTT-4.7.1-2] 40 levels, each reachable literally and by `+`: 2^40 paths exist,
        // but only the filters inserted can match.
        let mut t: TopicTree<u32> = TopicTree::new();
        let lit: Vec<&str> = vec!["x"; 40];
        let plus: Vec<&str> = vec!["+"; 40];
        t.insert(&lit.join("/"), 1, ()).unwrap();
        t.insert(&plus.join("/"), 2, ()).unwrap();
        let mut mixed = lit.clone();
        for i in (0..40).step_by(3) {
            mixed[i] = "+";
        }
        t.insert(&mixed.join("/"), 3, ()).unwrap();
        assert_eq!(matched(&t, &lit.join("/")), [1, 2, 3]);
        assert_eq!(matched(&t, &vec!["y"; 40].join("/")), [2]);
    }
}

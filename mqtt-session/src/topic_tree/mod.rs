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
//! Nodes live in one arena indexed by `u32`, literal levels in per-node hash tables (a node
//! with a single child needs no table), `+` and `#` in slots of their own. A lookup splits the
//! topic lazily and allocates nothing; it visits at most the nodes the topic can reach, so its
//! cost depends on the topic's depth and the wildcards on its path, not on how many
//! subscriptions the tree holds. Removing the last subscription of a node frees the node and
//! every ancestor left empty; freed nodes are reused.

mod hash;
mod level;
mod per_subscriber;
mod subs;

use core::hash::Hash;

use mqtt_codec::StringError;

use level::Children;
pub use per_subscriber::{Combine, PerSubscriber};
pub use subs::SharedGroup;
use subs::SubList;

/// The root node's index; the root is never freed.
const ROOT: u32 = 0;
/// No node (an empty `+` slot).
const NONE: u32 = u32::MAX;
/// Position past the last level of a topic.
const END: usize = usize::MAX;

/// One match of a topic name, handed to the visitor of [`TopicTree::matches`].
#[derive(Debug)]
pub enum Match<'a, K, V> {
    /// A non-shared subscription: the subscriber's key and the subscription's value.
    Subscription(&'a K, &'a V),
    /// A shared subscription group whose filter matches: one of its members gets the message.
    Shared(&'a SharedGroup<K, V>),
}

/// What the walk found: a list of non-shared subscriptions, or a shared group.
enum Found<'a, K, V> {
    List(&'a SubList<K, V>),
    Group(&'a SharedGroup<K, V>),
}

/// Topic filters mapped to subscribers, matched against topic names. See the
/// [module documentation](self) for the rules and the intended use.
///
/// `K` identifies a subscriber (a session or client id); each filter holds a key at most
/// once. `V` is the subscription's value (its options).
///
/// Methods: [`insert`](Self::insert), [`remove`](Self::remove), [`get`](Self::get) and
/// [`get_mut`](Self::get_mut) work on one subscription; [`matches`](Self::matches) and
/// [`matches_per_subscriber`](Self::matches_per_subscriber) answer a publish;
/// [`for_each`](Self::for_each) lists everything (for snapshots).
#[derive(Debug)]
pub struct TopicTree<K, V = ()> {
    nodes: Vec<Node<K, V>>,
    free: Vec<u32>,
    len: usize,
}

#[derive(Debug)]
struct Node<K, V> {
    children: Children,
    /// The `+` child, or [`NONE`].
    plus: u32,
    /// The parent, or [`NONE`] for the root and for free nodes.
    parent: u32,
    subs: Option<Box<NodeSubs<K, V>>>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Self {
            children: Children::None,
            plus: NONE,
            parent: NONE,
            subs: None,
        }
    }
}

impl<K, V> Node<K, V> {
    fn is_empty(&self) -> bool {
        self.subs.is_none() && self.plus == NONE && self.children.is_empty()
    }
}

/// The subscriptions whose filter ends at a node: the filter of the node's path itself, and
/// that path followed by `/#` (just `#` at the root).
#[derive(Debug)]
struct NodeSubs<K, V> {
    exact: SubList<K, V>,
    multi: SubList<K, V>,
    shared: Option<Box<SharedAt<K, V>>>,
}

#[derive(Debug)]
struct SharedAt<K, V> {
    exact: Vec<SharedGroup<K, V>>,
    multi: Vec<SharedGroup<K, V>>,
}

impl<K, V> Default for NodeSubs<K, V> {
    fn default() -> Self {
        Self {
            exact: SubList::default(),
            multi: SubList::default(),
            shared: None,
        }
    }
}

impl<K: Hash + Eq + Clone, V> NodeSubs<K, V> {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.multi.is_empty() && self.shared.is_none()
    }
}

/// A topic filter taken apart: its share name, its levels before any trailing `#`, and
/// whether it ends in `#`.
struct Parsed<'a> {
    share: Option<&'a str>,
    /// `None` when no level precedes the `#` (the filter `#`).
    path: Option<&'a str>,
    multi: bool,
}

impl<'a> Parsed<'a> {
    fn levels(&self) -> impl DoubleEndedIterator<Item = &'a str> + use<'a> {
        self.path.into_iter().flat_map(|p| p.split('/'))
    }
}

/// Validates `filter` ([MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.7.3-1], [MQTT-4.7.3-2],
/// [MQTT-4.7.3-3], [MQTT-4.8.2-1], [MQTT-4.8.2-2]) and takes it apart.
fn parse_filter(filter: &str) -> Result<Parsed<'_>, StringError> {
    if filter.len() > usize::from(u16::MAX) {
        return Err(StringError::TooLong);
    }
    if filter.as_bytes().contains(&0) {
        return Err(StringError::Null);
    }
    let (share, inner) = match filter.strip_prefix("$share/") {
        Some(rest) => {
            let Some((name, inner)) = rest.split_once('/') else {
                return Err(StringError::InvalidSharedSubscription);
            };
            if name.is_empty() || name.contains(['+', '#']) || inner.is_empty() {
                return Err(StringError::InvalidSharedSubscription);
            }
            (Some(name), inner)
        }
        None => (None, filter),
    };
    if inner.is_empty() {
        return Err(StringError::EmptyTopic);
    }
    if inner.contains(['+', '#']) {
        let mut levels = inner.split('/').peekable();
        while let Some(level) = levels.next() {
            if level.contains('#') && (level != "#" || levels.peek().is_some()) {
                return Err(StringError::MisplacedMultiLevelWildcard);
            }
            if level.contains('+') && level != "+" {
                return Err(StringError::MisplacedSingleLevelWildcard);
            }
        }
    }
    let (path, multi) = if inner == "#" {
        (None, true)
    } else if let Some(p) = inner.strip_suffix("/#") {
        (Some(p), true)
    } else {
        (Some(inner), false)
    };
    Ok(Parsed { share, path, multi })
}

/// The next level of `topic` from byte `pos`, and where the level after it starts ([`END`]
/// if this was the last).
#[inline(always)]
fn next_level(topic: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = &topic[pos..];
    match rest.iter().position(|&b| b == b'/') {
        Some(i) => (&rest[..i], pos + i + 1),
        None => (rest, END),
    }
}

/// A small LIFO of branches still to walk; it spills to the heap only for trees deeper than
/// any sensible topic hierarchy.
struct Pending {
    inline: [(u32, usize); 16],
    len: usize,
    spill: Vec<(u32, usize)>,
}

impl Pending {
    #[inline(always)]
    fn new() -> Self {
        Self {
            inline: [(0, 0); 16],
            len: 0,
            spill: Vec::new(),
        }
    }

    #[inline(always)]
    fn push(&mut self, x: (u32, usize)) {
        if self.len < self.inline.len() {
            self.inline[self.len] = x;
            self.len += 1;
        } else {
            self.spill.push(x);
        }
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<(u32, usize)> {
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

impl<K, V> Default for TopicTree<K, V> {
    fn default() -> Self {
        Self {
            nodes: vec![Node::default()],
            free: Vec::new(),
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
        let subs = self.nodes[n as usize]
            .subs
            .get_or_insert_with(Default::default);
        let old = match p.share {
            None => {
                let list = if p.multi {
                    &mut subs.multi
                } else {
                    &mut subs.exact
                };
                list.insert(key, value)
            }
            Some(name) => {
                let at = subs.shared.get_or_insert_with(|| {
                    Box::new(SharedAt {
                        exact: Vec::new(),
                        multi: Vec::new(),
                    })
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
        let n = self.find(&p)?;
        let subs = self.nodes[n as usize].subs.as_deref_mut()?;
        let old = match p.share {
            None => {
                if p.multi {
                    subs.multi.remove(key)
                } else {
                    subs.exact.remove(key)
                }
            }
            Some(name) => {
                let at = subs.shared.as_deref_mut()?;
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
                    subs.shared = None;
                }
                old
            }
        }?;
        self.len -= 1;
        if subs.is_empty() {
            self.nodes[n as usize].subs = None;
            self.prune(n, p.levels());
        }
        Some(old)
    }

    /// The value of `key`'s subscription to `filter` (written as it was inserted).
    pub fn get(&self, filter: &str, key: &K) -> Option<&V> {
        let p = parse_filter(filter).ok()?;
        let n = self.find(&p)?;
        let subs = self.nodes[n as usize].subs.as_deref()?;
        match p.share {
            None if p.multi => subs.multi.get(key),
            None => subs.exact.get(key),
            Some(name) => {
                let at = subs.shared.as_deref()?;
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
        let subs = self.nodes[n as usize].subs.as_deref_mut()?;
        match p.share {
            None if p.multi => subs.multi.get_mut(key),
            None => subs.exact.get_mut(key),
            Some(name) => {
                let at = subs.shared.as_deref_mut()?;
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

    /// Calls `visit` once for every subscription whose filter matches the topic name `topic`
    /// (each non-shared (filter, key), and each shared group once), in an unspecified but
    /// deterministic order. `topic` is taken as a valid topic name (a
    /// [`TopicName`](mqtt_codec::TopicName) derefs to one); a `+` or `#` in it is an ordinary
    /// character. Allocates nothing.
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

    /// Calls `f` with every subscription: its filter as it was inserted (with any
    /// `$share/{ShareName}/` prefix), its key and its value. The order is unspecified and may
    /// differ between runs: sort if you need one (for example in a snapshot).
    pub fn for_each(&self, mut f: impl FnMut(&str, &K, &V)) {
        // (node, length of `path` before this node's level, this node's level)
        let mut stack: Vec<(u32, usize, Option<&[u8]>)> = vec![(ROOT, 0, None)];
        let mut path: Vec<u8> = Vec::new();
        let mut filter = String::new();
        while let Some((n, keep, level)) = stack.pop() {
            path.truncate(keep);
            if let Some(level) = level {
                if n != ROOT && self.nodes[n as usize].parent != ROOT {
                    path.push(b'/');
                }
                path.extend_from_slice(level);
            }
            let node = &self.nodes[n as usize];
            if let Some(subs) = node.subs.as_deref() {
                let p = String::from_utf8_lossy(&path);
                let is_root = n == ROOT;
                let mut emit = |share: Option<&str>, multi: bool, list: &SubList<K, V>| {
                    filter.clear();
                    if let Some(name) = share {
                        filter.push_str("$share/");
                        filter.push_str(name);
                        filter.push('/');
                    }
                    filter.push_str(&p);
                    if multi {
                        filter.push_str(if is_root { "#" } else { "/#" });
                    }
                    for (k, v) in list.as_slice() {
                        f(&filter, k, v);
                    }
                };
                emit(None, false, &subs.exact);
                emit(None, true, &subs.multi);
                if let Some(at) = subs.shared.as_deref() {
                    for g in &at.exact {
                        emit(Some(g.name()), false, g.members_list());
                    }
                    for g in &at.multi {
                        emit(Some(g.name()), true, g.members_list());
                    }
                }
            }
            let keep = path.len();
            if node.plus != NONE {
                stack.push((node.plus, keep, Some(b"+")));
            }
            node.children
                .for_each(|level, c| stack.push((c, keep, Some(level))));
        }
    }

    /// The walk behind every lookup: `found` gets each matching list of non-shared
    /// subscriptions (never an empty one) and each matching shared group, and returns whether
    /// to go on.
    #[inline(always)]
    fn walk<'a>(&'a self, topic: &str, mut found: impl FnMut(Found<'a, K, V>) -> bool) {
        let t = topic.as_bytes();
        // [MQTT-4.7.2-1] a topic name starting with `$` is not matched by a filter starting
        // with a wildcard: at the root, skip the `+` child and the `#` subscriptions.
        let dollar = t.first() == Some(&b'$');
        let mut pending = Pending::new();
        let mut cur = Some((ROOT, 0usize));
        loop {
            let (n, pos) = match cur.take() {
                Some(x) => x,
                None => match pending.pop() {
                    Some(x) => x,
                    None => return,
                },
            };
            let node = &self.nodes[n as usize];
            let wild = !(dollar && n == ROOT);
            if let Some(subs) = node.subs.as_deref() {
                // `#` matches the parent level and everything below it ([MQTT-4.7.1-1]).
                if wild {
                    if !subs.multi.is_empty() && !found(Found::List(&subs.multi)) {
                        return;
                    }
                    if let Some(at) = subs.shared.as_deref() {
                        for g in &at.multi {
                            if !found(Found::Group(g)) {
                                return;
                            }
                        }
                    }
                }
                if pos == END {
                    if !subs.exact.is_empty() && !found(Found::List(&subs.exact)) {
                        return;
                    }
                    if let Some(at) = subs.shared.as_deref() {
                        for g in &at.exact {
                            if !found(Found::Group(g)) {
                                return;
                            }
                        }
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
                    Some(_) => pending.push((c, next)),
                }
            }
        }
    }

    /// The node of `p`'s path, if it exists.
    fn find(&self, p: &Parsed<'_>) -> Option<u32> {
        let mut n = ROOT;
        for level in p.levels() {
            let node = &self.nodes[n as usize];
            n = if level == "+" {
                Some(node.plus).filter(|&c| c != NONE)?
            } else {
                node.children.get(level.as_bytes())?
            };
        }
        Some(n)
    }

    fn child_or_insert(&mut self, n: u32, level: &[u8]) -> u32 {
        let node = &self.nodes[n as usize];
        if level == b"+" {
            if node.plus != NONE {
                return node.plus;
            }
            let c = self.alloc(n);
            self.nodes[n as usize].plus = c;
            return c;
        }
        if let Some(c) = node.children.get(level) {
            return c;
        }
        let c = self.alloc(n);
        self.nodes[n as usize].children.insert(level, c);
        c
    }

    fn alloc(&mut self, parent: u32) -> u32 {
        let n = match self.free.pop() {
            Some(n) => n,
            None => {
                // A node costs tens of bytes, so memory runs out long before the indices do.
                let n = u32::try_from(self.nodes.len())
                    .ok()
                    .filter(|&n| n != NONE)
                    .expect("the topic tree holds fewer than 2^32 - 1 nodes");
                self.nodes.push(Node::default());
                n
            }
        };
        self.nodes[n as usize].parent = parent;
        n
    }

    /// Frees `n` and then each ancestor that is left empty; `levels` are the levels of `n`'s
    /// path, root first.
    fn prune<'f>(&mut self, mut n: u32, levels: impl DoubleEndedIterator<Item = &'f str>) {
        for level in levels.rev() {
            if n == ROOT || !self.nodes[n as usize].is_empty() {
                return;
            }
            let parent = self.nodes[n as usize].parent;
            let p = &mut self.nodes[parent as usize];
            if level == "+" {
                p.plus = NONE;
            } else {
                p.children.remove(level.as_bytes());
            }
            self.nodes[n as usize] = Node::default();
            self.free.push(n);
            n = parent;
        }
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
    fn filters_are_parsed_into_levels_and_trailing_hash() {
        let p = parse_filter("#").unwrap();
        assert_eq!((p.path, p.multi, p.share), (None, true, None));
        let p = parse_filter("/#").unwrap();
        assert_eq!((p.path, p.multi), (Some(""), true));
        let p = parse_filter("$share/g/a/+").unwrap();
        assert_eq!((p.share, p.path, p.multi), (Some("g"), Some("a/+"), false));
        assert_eq!(
            parse_filter("a/#").unwrap().levels().collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(
            parse_filter("a//").unwrap().levels().collect::<Vec<_>>(),
            ["a", "", ""]
        );
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

//! Retained messages: the last retained message of each topic, found again by the filters of
//! new subscriptions.
//!
//! Messages sit in a tree of topic levels (`sensors/1/temp` is the node `temp` under `1`
//! under `sensors`), so a filter walks only the branches it can match: a literal level
//! follows one child, `+` every child, `#` the whole subtree below it. `site/+/device/42/temp`
//! visits one node per site, not every retained topic. Children are ordered, so results come
//! in level order and runs are repeatable.

use crate::collections::{BTreeMap, BTreeSet};
use crate::inflight::message_size;
use crate::time::Instant;
use alloc::{boxed::Box, vec, vec::Vec};

use mqtt_codec::{Publish, QoS, QosPid, TopicName};

/// A retained message: the PUBLISH as received (topic in full, no alias, no packet
/// identifier), its QoS, and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Retained {
    /// The message; `qos_pid` is always QoS 0 here, the QoS is in `qos`.
    pub(crate) publish: Publish,
    pub(crate) qos: QoS,
    pub(crate) expires_at: Option<Instant>,
}

/// One topic level: its children by level name, and the message of the topic that ends here.
#[derive(Debug, Default)]
struct Node {
    parent: u32,
    /// This node's level name (the key in its parent's `children`).
    level: Box<str>,
    children: BTreeMap<Box<str>, u32>,
    message: Option<Retained>,
}

/// The root of the tree: the parent of every first level.
const ROOT: u32 = 0;

/// The retained messages, in a tree of topic levels.
#[derive(Debug)]
pub(crate) struct RetainedStore {
    /// The nodes; `ROOT` is the root, and freed slots are listed in `free`.
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// How many nodes hold a message.
    count: usize,
    /// Messages with a Message Expiry, by the time they expire.
    expiring: BTreeSet<(Instant, TopicName)>,
    /// [`message_size`] of all messages.
    bytes: usize,
}

impl Default for RetainedStore {
    fn default() -> Self {
        Self {
            nodes: vec![Node::default()],
            free: Vec::new(),
            count: 0,
            expiring: BTreeSet::new(),
            bytes: 0,
        }
    }
}

/// A step of the walk that matches a filter.
enum Step {
    /// Match filter levels from the given one on against this node's subtree.
    Match(u32, usize),
    /// Take this node's message and everything below (after a `#`).
    All(u32),
}

/// Why a retained message cannot be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverQuota {
    /// One message more than allowed.
    Messages,
    /// More bytes than allowed.
    Bytes,
}

/// What storing a retained message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetainChange {
    /// The message was stored (replacing any earlier one, [MQTT-3.3.1-5]).
    Stored,
    /// The empty payload removed the topic's message ([MQTT-3.3.1-6]).
    Removed,
    /// The empty payload found nothing to remove.
    Nothing,
}

impl RetainedStore {
    /// Stores `publish` (at `qos`) as the topic's retained message, or removes the topic's
    /// message if the payload is empty ([MQTT-3.3.1-6], [MQTT-3.3.1-7]).
    pub(crate) fn retain(&mut self, now: Instant, publish: &Publish, qos: QoS) -> RetainChange {
        if publish.payload.is_empty() {
            return match self.remove(&publish.topic) {
                true => RetainChange::Removed,
                false => RetainChange::Nothing,
            };
        }
        let expires_at = publish
            .properties
            .message_expiry_interval
            .and_then(|s| super::timers::after_secs(now, s));
        let mut stored = publish.clone();
        stored.qos_pid = QosPid::AtMostOnce;
        stored.dup = false;
        stored.retain = true;
        if stored.properties.topic_alias.is_some()
            || !stored.properties.subscription_identifiers.is_empty()
        {
            stored.properties.topic_alias = None;
            stored.properties.subscription_identifiers.clear();
        }
        self.restore(Retained {
            publish: stored,
            qos,
            expires_at,
        });
        RetainChange::Stored
    }

    /// Puts back a message from a snapshot (and stores every message).
    pub(crate) fn restore(&mut self, message: Retained) {
        let topic = message.publish.topic.clone();
        let node = self.node_or_insert(&topic);
        self.bytes += message_size(&message.publish);
        if let Some(t) = message.expires_at {
            self.expiring.insert((t, topic));
        }
        let old = self.nodes[node as usize].message.replace(message);
        match old {
            Some(old) => self.forget(&old),
            None => self.count += 1,
        }
    }

    /// The node of `topic`, created with its ancestors if missing.
    fn node_or_insert(&mut self, topic: &TopicName) -> u32 {
        let mut n = ROOT;
        for level in topic.split('/') {
            n = match self.nodes[n as usize].children.get(level) {
                Some(&child) => child,
                None => {
                    let child = self.alloc(n, level);
                    self.nodes[n as usize].children.insert(level.into(), child);
                    child
                }
            };
        }
        n
    }

    fn alloc(&mut self, parent: u32, level: &str) -> u32 {
        let node = Node {
            parent,
            level: level.into(),
            ..Node::default()
        };
        match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    /// The node of `topic`, if it exists.
    fn find(&self, topic: &str) -> Option<u32> {
        let mut n = ROOT;
        for level in topic.split('/') {
            n = *self.nodes[n as usize].children.get(level)?;
        }
        Some(n)
    }

    /// Undoes the accounting of a message that leaves the store.
    fn forget(&mut self, old: &Retained) {
        self.bytes -= message_size(&old.publish);
        if let Some(t) = old.expires_at {
            self.expiring.remove(&(t, old.publish.topic.clone()));
        }
    }

    /// Removes the message of `topic`, and the nodes left with nothing; false if there was
    /// none.
    fn remove(&mut self, topic: &TopicName) -> bool {
        let Some(mut n) = self.find(topic) else {
            return false;
        };
        let Some(old) = self.nodes[n as usize].message.take() else {
            return false;
        };
        self.forget(&old);
        self.count -= 1;
        // Prune empty nodes upwards.
        while n != ROOT {
            let node = &mut self.nodes[n as usize];
            if node.message.is_some() || !node.children.is_empty() {
                break;
            }
            let (parent, level) = (node.parent, core::mem::take(&mut node.level));
            self.nodes[parent as usize].children.remove(&level);
            self.free.push(n);
            n = parent;
        }
        true
    }

    /// Number of retained messages (expired ones included until they are next looked at).
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Every message, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Retained> {
        self.nodes.iter().filter_map(|n| n.message.as_ref())
    }

    /// Removes the messages that expired at or before `now` ([MQTT-3.3.2-5]) and returns
    /// their topics.
    pub(crate) fn remove_expired(&mut self, now: Instant) -> Vec<TopicName> {
        let mut gone = Vec::new();
        while let Some((t, topic)) = self.expiring.first().cloned() {
            if t > now {
                break;
            }
            self.remove(&topic);
            gone.push(topic);
        }
        gone
    }

    /// Whether storing `publish` keeps the store within `max_messages` and `max_bytes`.
    /// An empty payload (a deletion) always does; a replacement is counted by the
    /// difference it makes.
    pub(crate) fn admits(
        &self,
        publish: &Publish,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<(), OverQuota> {
        if publish.payload.is_empty() {
            return Ok(());
        }
        let old = self
            .find(&publish.topic)
            .and_then(|n| self.nodes[n as usize].message.as_ref());
        let (count, freed) = match old {
            Some(old) => (self.count, message_size(&old.publish)),
            None => (self.count + 1, 0),
        };
        if count > max_messages {
            return Err(OverQuota::Messages);
        }
        if self.bytes - freed + message_size(publish) > max_bytes {
            return Err(OverQuota::Bytes);
        }
        Ok(())
    }

    /// The messages whose topic matches `filter` (a non-shared filter, by the rules of
    /// section 4.7: `#` also matches the parent level [MQTT-4.7.1-1], and filters starting
    /// with a wildcard do not match topics starting with `$` [MQTT-4.7.2-1]), in level order.
    /// Expired messages are removed on the way and returned in `expired` ([MQTT-3.3.2-5]).
    pub(crate) fn matching(
        &mut self,
        now: Instant,
        filter: &str,
        expired: &mut Vec<TopicName>,
    ) -> Vec<Retained> {
        let mut out = Vec::new();
        if filter.contains(['+', '#']) {
            self.walk(filter, &mut out);
        } else if let Some(n) = self.find(filter) {
            // One topic: one walk down the levels.
            out.extend(self.nodes[n as usize].message.iter().cloned());
        }
        out.retain(|m| match m.expires_at {
            Some(t) if t <= now => {
                expired.push(m.publish.topic.clone());
                false
            }
            _ => true,
        });
        for t in expired.iter() {
            self.remove(t);
        }
        out
    }

    /// Appends the messages matching a filter with wildcards to `out`, in level order.
    fn walk(&self, filter: &str, out: &mut Vec<Retained>) {
        let levels: Vec<&str> = filter.split('/').collect();
        let mut stack = vec![Step::Match(ROOT, 0)];
        // Children are pushed in reverse so that they come off the stack in order.
        while let Some(step) = stack.pop() {
            match step {
                Step::All(n) => {
                    let node = &self.nodes[n as usize];
                    out.extend(node.message.iter().cloned());
                    stack.extend(node.children.values().rev().map(|&c| Step::All(c)));
                }
                Step::Match(n, i) => {
                    let node = &self.nodes[n as usize];
                    let Some(&level) = levels.get(i) else {
                        out.extend(node.message.iter().cloned());
                        continue;
                    };
                    // [MQTT-4.7.2-1] a leading wildcard passes over `$` topics.
                    let visible = |name: &str| i > 0 || !name.starts_with('$');
                    match level {
                        "#" => {
                            out.extend(node.message.iter().cloned());
                            let children =
                                node.children.iter().rev().filter(|(name, _)| visible(name));
                            stack.extend(children.map(|(_, &c)| Step::All(c)));
                        }
                        "+" => {
                            let children =
                                node.children.iter().rev().filter(|(name, _)| visible(name));
                            stack.extend(children.map(|(_, &c)| Step::Match(c, i + 1)));
                        }
                        literal => {
                            if let Some(&c) = node.children.get(literal) {
                                stack.push(Step::Match(c, i + 1));
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn publish(topic: &'static str, payload: &'static str) -> Publish {
        let mut p = Publish::new(TopicName::from_static(topic), payload);
        p.retain = true;
        p
    }

    fn topics(v: &[Retained]) -> Vec<&str> {
        v.iter().map(|m| m.publish.topic.as_str()).collect()
    }

    /// [MQTT-3.3.1-5], [MQTT-3.3.1-6]: stored, replaced, deleted by an empty payload.
    #[test]
    fn store_replace_delete() {
        let now = crate::test_epoch();
        let mut s = RetainedStore::default();
        assert_eq!(
            s.retain(now, &publish("a/b", "1"), QoS::AtMostOnce),
            RetainChange::Stored
        );
        assert_eq!(
            s.retain(now, &publish("a/b", "2"), QoS::AtMostOnce),
            RetainChange::Stored
        );
        let got = s.matching(now, "a/b", &mut Vec::new());
        assert_eq!(&got[0].publish.payload[..], b"2");
        assert_eq!(
            s.retain(now, &publish("a/b", ""), QoS::AtMostOnce),
            RetainChange::Removed
        );
        assert_eq!(
            s.retain(now, &publish("a/b", ""), QoS::AtMostOnce),
            RetainChange::Nothing
        );
        assert_eq!(s.len(), 0);
    }

    /// [MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.7.2-1]: wildcards, and `$` topics hidden from
    /// filters that start with one.
    #[test]
    fn wildcard_matching_in_topic_order() {
        let now = crate::test_epoch();
        let mut s = RetainedStore::default();
        for t in ["a", "a/b", "a/c/d", "b/b", "$SYS/x", "/a"] {
            s.retain(now, &publish(t, "x"), QoS::AtMostOnce);
        }
        let mut e = Vec::new();
        assert_eq!(
            topics(&s.matching(now, "a/#", &mut e)),
            ["a", "a/b", "a/c/d"]
        );
        assert_eq!(topics(&s.matching(now, "+/b", &mut e)), ["a/b", "b/b"]);
        assert_eq!(
            topics(&s.matching(now, "#", &mut e)),
            ["/a", "a", "a/b", "a/c/d", "b/b"]
        );
        assert_eq!(topics(&s.matching(now, "$SYS/#", &mut e)), ["$SYS/x"]);
        assert_eq!(topics(&s.matching(now, "+/a", &mut e)), ["/a"]);
        assert!(e.is_empty());
    }

    /// The quota counts each topic once and its bytes as they are now: replacing frees the
    /// old message's, deleting and expiry free all of it.
    #[test]
    fn the_quota_follows_replacements_deletions_and_expiry() {
        let now = crate::test_epoch();
        let mut s = RetainedStore::default();
        let mut p = publish("ab", "12345678");
        p.properties.message_expiry_interval = Some(1);
        s.retain(now, &p, QoS::AtMostOnce);
        assert_eq!(s.bytes, 10);
        assert_eq!(s.admits(&publish("ab", "1"), 1, 3), Ok(()));
        assert_eq!(
            s.admits(&publish("c", "1"), 1, 100),
            Err(OverQuota::Messages)
        );
        assert_eq!(s.admits(&publish("c", "1"), 2, 11), Err(OverQuota::Bytes));
        assert_eq!(s.admits(&publish("c", ""), 0, 0), Ok(()));
        s.retain(now, &publish("ab", "1"), QoS::AtMostOnce);
        assert_eq!(s.bytes, 3);
        assert!(s.remove_expired(now + Duration::from_secs(1)).is_empty());
        s.retain(now, &p, QoS::AtMostOnce);
        let gone = s.remove_expired(now + Duration::from_secs(1));
        assert_eq!(gone, [TopicName::from_static("ab")]);
        assert_eq!((s.len(), s.bytes), (0, 0));
        s.retain(now, &publish("x", "yz"), QoS::AtMostOnce);
        s.retain(now, &publish("x", ""), QoS::AtMostOnce);
        assert_eq!((s.len(), s.bytes), (0, 0));
    }

    /// The tree finds exactly the topics a plain filter match finds, for every filter over a
    /// small alphabet of levels (`$` topics, empty levels and `#` at the parent included),
    /// and removing every message leaves only the root.
    #[test]
    fn the_tree_agrees_with_plain_matching() {
        let now = crate::test_epoch();
        let levels = ["a", "b", "", "$s"];
        let mut topics = Vec::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..300 {
            let depth = 1 + next(4);
            let t: Vec<&str> = (0..depth).map(|_| levels[next(levels.len())]).collect();
            topics.push(t.join("/"));
        }
        topics.sort();
        topics.dedup();
        let mut s = RetainedStore::default();
        for t in &topics {
            let p = Publish::new(TopicName::new(t.clone()).unwrap(), "x");
            s.retain(now, &p, QoS::AtMostOnce);
        }
        assert_eq!(s.len(), topics.len());
        let filter_levels = ["a", "", "$s", "+", "#"];
        for _ in 0..500 {
            let depth = 1 + next(4);
            let mut f: Vec<&str> = (0..depth)
                .map(|_| filter_levels[next(filter_levels.len() - 1)])
                .collect();
            if next(3) == 0 {
                f.push("#");
            }
            let filter = f.join("/");
            let mut want: Vec<&str> = topics
                .iter()
                .filter(|t| mqtt_codec::matches_filter(&filter, t))
                .map(String::as_str)
                .collect();
            let got = s.matching(now, &filter, &mut Vec::new());
            let mut got: Vec<&str> = got.iter().map(|m| m.publish.topic.as_str()).collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "filter {filter:?}");
        }
        for t in &topics {
            let p = Publish::new(TopicName::new(t.clone()).unwrap(), "");
            assert_eq!(s.retain(now, &p, QoS::AtMostOnce), RetainChange::Removed);
        }
        assert_eq!((s.len(), s.bytes), (0, 0));
        assert_eq!(s.nodes.len() - s.free.len(), 1, "only the root is left");
    }

    /// [MQTT-3.3.2-5]: an expired retained message is not sent, and is forgotten.
    #[test]
    fn expired_messages_are_dropped() {
        let now = crate::test_epoch();
        let mut s = RetainedStore::default();
        let mut p = publish("t", "x");
        p.properties.message_expiry_interval = Some(10);
        s.retain(now, &p, QoS::AtMostOnce);
        let mut e = Vec::new();
        assert_eq!(
            s.matching(now + Duration::from_secs(9), "t", &mut e).len(),
            1
        );
        assert_eq!(
            s.matching(now + Duration::from_secs(10), "#", &mut e).len(),
            0
        );
        assert_eq!(e, [TopicName::from_static("t")]);
        assert_eq!(s.len(), 0);
    }
}

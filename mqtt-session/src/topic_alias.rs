//! Topic aliases (section 3.3.2.3.4): the sender's table, which may replace a topic name by
//! a number the receiver allowed, and the receiver's table, which turns numbers back into
//! names. Both belong to one network connection and start empty on each
//! ([MQTT-3.3.2-7]). Used by either role.

use crate::collections::{BTreeMap, HashMap};
use core::num::NonZeroU16;

use mqtt_codec::{Publish, ReasonCode, TopicName};

use crate::rules::Violation;

/// How a sender gives topics aliases by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AutomaticAliases {
    /// None: only the aliases the application sets.
    #[default]
    Off,
    /// The first topics sent take the aliases, until the receiver's maximum; later topics
    /// always go in full. Nothing is ever rebound.
    FirstTopics,
    /// Every topic sent takes an alias: once all are in use, the one least recently used is
    /// rebound to the new topic (which goes in full with it, once). Best when a few topics
    /// are hot among many; with many topics used in turn it rebinds on every message.
    LeastRecentlyUsed,
}

/// The sender's aliases, within the maximum the receiver announced.
#[derive(Debug, Clone, Default)]
pub(crate) struct OutboundAliases {
    maximum: u16,
    automatic: AutomaticAliases,
    by_topic: HashMap<TopicName, NonZeroU16>,
    /// Each alias's topic and when it was last used.
    by_alias: HashMap<NonZeroU16, (TopicName, u64)>,
    /// Aliases by when they were last used, oldest first.
    by_use: BTreeMap<u64, NonZeroU16>,
    clock: u64,
    /// The next alias never used yet (above `maximum` when all have been).
    next: u32,
}

impl OutboundAliases {
    /// A table for a new connection: `maximum` is the receiver's Topic Alias Maximum (0: no
    /// aliases, [MQTT-3.2.2-18]); with `automatic`, topics get aliases as they are first
    /// sent, until the maximum is reached ([`AutomaticAliases::FirstTopics`]).
    pub(crate) fn new(maximum: u16, automatic: bool) -> Self {
        let policy = if automatic {
            AutomaticAliases::FirstTopics
        } else {
            AutomaticAliases::Off
        };
        Self::with_policy(maximum, policy)
    }

    /// A table for a new connection whose automatic aliases follow `policy`.
    pub(crate) fn with_policy(maximum: u16, policy: AutomaticAliases) -> Self {
        Self {
            maximum,
            automatic: policy,
            by_topic: HashMap::default(),
            by_alias: HashMap::default(),
            by_use: BTreeMap::new(),
            clock: 0,
            next: 1,
        }
    }

    /// The receiver's Topic Alias Maximum.
    pub(crate) fn maximum(&self) -> u16 {
        self.maximum
    }

    /// Whether an alias the application asks for is within the maximum ([MQTT-3.3.2-9]).
    pub(crate) fn allows(&self, alias: NonZeroU16) -> bool {
        alias.get() <= self.maximum
    }

    /// The topic `alias` stands for on this connection.
    pub(crate) fn topic(&self, alias: NonZeroU16) -> Option<&TopicName> {
        self.by_alias.get(&alias).map(|(t, _)| t)
    }

    /// Rewrites a PUBLISH about to be sent. `publish.topic` is the full name. An alias the
    /// application set (in the properties) is kept: the name is sent with it the first time
    /// and left out once the receiver knows it. Otherwise, with automatic aliasing, a known
    /// topic is replaced by its alias, and a new one gets a free alias if any is left, or
    /// (least recently used policy) takes over the alias used longest ago.
    ///
    /// The table then assumes the packet reaches the receiver: call it only for a PUBLISH
    /// that will be sent as rewritten. An alias adds at most 4 bytes to the packet.
    pub(crate) fn apply(&mut self, publish: &mut Publish) {
        // (The properties sit behind a shared pointer: written only to change them.)
        if self.maximum == 0 || publish.topic.is_empty() {
            if publish.properties.topic_alias.is_some() {
                publish.properties.topic_alias = None;
            }
            return;
        }
        if let Some(alias) = publish.properties.topic_alias {
            if !self.allows(alias) {
                publish.properties.topic_alias = None;
            } else if self.topic(alias) == Some(&publish.topic) {
                self.touch(alias);
                publish.topic = TopicName::default();
            } else {
                self.bind(alias, publish.topic.clone());
            }
            return;
        }
        if self.automatic == AutomaticAliases::Off {
            return;
        }
        if let Some(&alias) = self.by_topic.get(&publish.topic) {
            self.touch(alias);
            publish.properties.topic_alias = Some(alias);
            publish.topic = TopicName::default();
            return;
        }
        let fresh = u16::try_from(self.next)
            .ok()
            .and_then(NonZeroU16::new)
            .filter(|a| self.allows(*a));
        let alias = match (fresh, self.automatic) {
            (Some(a), _) => {
                self.next += 1;
                a
            }
            (None, AutomaticAliases::LeastRecentlyUsed) => match self.by_use.first_key_value() {
                Some((_, &a)) => a,
                None => return,
            },
            (None, _) => return,
        };
        self.bind(alias, publish.topic.clone());
        publish.properties.topic_alias = Some(alias);
    }

    fn bind(&mut self, alias: NonZeroU16, topic: TopicName) {
        self.clock += 1;
        if let Some((old, used)) = self.by_alias.insert(alias, (topic.clone(), self.clock)) {
            self.by_topic.remove(&old);
            self.by_use.remove(&used);
        }
        self.by_use.insert(self.clock, alias);
        self.by_topic.insert(topic, alias);
    }

    fn touch(&mut self, alias: NonZeroU16) {
        self.clock += 1;
        if let Some((_, used)) = self.by_alias.get_mut(&alias) {
            self.by_use.remove(used);
            *used = self.clock;
            self.by_use.insert(self.clock, alias);
        }
    }
}

/// The receiver's aliases, up to the maximum it announced.
#[derive(Debug, Clone, Default)]
pub(crate) struct InboundAliases {
    maximum: u16,
    topics: HashMap<NonZeroU16, TopicName>,
}

impl InboundAliases {
    /// A table for a new connection that accepts aliases up to `maximum` (0: none).
    pub(crate) fn new(maximum: u16) -> Self {
        Self {
            maximum,
            topics: HashMap::default(),
        }
    }

    /// Resolves the alias of a received PUBLISH: a name with an alias binds them, an empty
    /// name takes the alias's topic. On success the PUBLISH carries its full topic name and
    /// no alias.
    pub(crate) fn resolve(&mut self, publish: &mut Publish) -> Result<(), Violation> {
        let Some(alias) = publish.properties.topic_alias else {
            return Ok(());
        };
        publish.properties.topic_alias = None;
        if alias.get() > self.maximum {
            return Err(Violation::new(
                ReasonCode::TOPIC_ALIAS_INVALID,
                "Topic Alias greater than the Topic Alias Maximum sent (section 3.3.2.3.4)",
            ));
        }
        if publish.topic.is_empty() {
            match self.topics.get(&alias) {
                Some(topic) => publish.topic = topic.clone(),
                None => {
                    return Err(Violation::protocol(
                        "Topic Alias with an empty topic name and no mapping (section 3.3.2.3.4)",
                    ));
                }
            }
        } else {
            self.topics.insert(alias, publish.topic.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &'static str) -> Publish {
        Publish::new(TopicName::from_static(topic), "x")
    }
    fn alias(n: u16) -> NonZeroU16 {
        NonZeroU16::new(n).unwrap()
    }

    /// [MQTT-3.3.2-9]: automatic aliases stay within the receiver's maximum.
    #[test]
    fn automatic_aliases_within_the_maximum() {
        let mut out = OutboundAliases::new(1, true);
        let mut p = publish("a/b");
        out.apply(&mut p);
        assert_eq!(
            (p.topic.as_str(), p.properties.topic_alias),
            ("a/b", Some(alias(1)))
        );
        let mut p = publish("a/b");
        out.apply(&mut p);
        assert_eq!(
            (p.topic.as_str(), p.properties.topic_alias),
            ("", Some(alias(1)))
        );
        let mut p = publish("c");
        out.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("c", None));
    }

    fn sent(out: &mut OutboundAliases, topic: &'static str) -> (String, Option<u16>) {
        let mut p = publish(topic);
        out.apply(&mut p);
        (
            p.topic.to_string(),
            p.properties.topic_alias.map(|a| a.get()),
        )
    }

    /// [MQTT-3.3.2-9]: least recently used replacement stays within the maximum: a new
    /// topic takes over the alias used longest ago, sent in full with it once; a topic that
    /// lost its alias is a new topic again.
    #[test]
    fn least_recently_used_aliases_are_rebound() {
        let mut out = OutboundAliases::with_policy(2, AutomaticAliases::LeastRecentlyUsed);
        let s = |t: &str, a: u16| (t.to_string(), Some(a));
        assert_eq!(sent(&mut out, "a"), s("a", 1));
        assert_eq!(sent(&mut out, "b"), s("b", 2));
        assert_eq!(sent(&mut out, "a"), s("", 1));
        // b is the least recently used: c takes its alias.
        assert_eq!(sent(&mut out, "c"), s("c", 2));
        assert_eq!(out.topic(alias(2)).map(|t| t.as_str()), Some("c"));
        assert_eq!(sent(&mut out, "c"), s("", 2));
        // Now a is: b comes back on alias 1.
        assert_eq!(sent(&mut out, "b"), s("b", 1));
        assert_eq!(sent(&mut out, "a"), s("a", 2));
        assert_eq!(sent(&mut out, "b"), s("", 1));
        // First-topics aliasing never rebinds.
        let mut first = OutboundAliases::new(1, true);
        assert_eq!(sent(&mut first, "a"), s("a", 1));
        assert_eq!(sent(&mut first, "b"), ("b".to_string(), None));
    }

    /// All 65,535 aliases can be given out; the counter does not overflow.
    #[test]
    fn the_whole_alias_range() {
        let mut out = OutboundAliases::with_policy(u16::MAX, AutomaticAliases::LeastRecentlyUsed);
        for n in 0..u32::from(u16::MAX) {
            let mut p = Publish::new(TopicName::new(format!("t/{n}")).unwrap(), "x");
            out.apply(&mut p);
            assert_eq!(
                p.properties.topic_alias.map(|a| u32::from(a.get())),
                Some(n + 1)
            );
        }
        let mut p = publish("one/more");
        out.apply(&mut p);
        assert_eq!(p.properties.topic_alias, Some(alias(1)));
        let mut first = OutboundAliases::new(u16::MAX, true);
        first.next = u32::from(u16::MAX);
        assert_eq!(sent(&mut first, "x").1, Some(u16::MAX));
        assert_eq!(sent(&mut first, "y").1, None);
    }

    /// [MQTT-3.2.2-18]: no Topic Alias Maximum, no aliases.
    #[test]
    fn no_aliases_without_a_maximum() {
        let mut out = OutboundAliases::new(0, true);
        let mut p = publish("a");
        p.properties.topic_alias = Some(alias(3));
        out.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("a", None));
    }

    #[test]
    fn explicit_alias_sends_the_name_once() {
        let mut out = OutboundAliases::new(5, false);
        let mut p = publish("x");
        p.properties.topic_alias = Some(alias(5));
        out.apply(&mut p);
        assert_eq!(p.topic.as_str(), "x");
        let mut p = publish("x");
        p.properties.topic_alias = Some(alias(5));
        out.apply(&mut p);
        assert_eq!(p.topic.as_str(), "");
        // Rebinding alias 5 to another topic sends that topic in full.
        let mut p = publish("y");
        p.properties.topic_alias = Some(alias(5));
        out.apply(&mut p);
        assert_eq!(p.topic.as_str(), "y");
        assert_eq!(out.topic(alias(5)).map(|t| t.as_str()), Some("y"));
    }

    /// [MQTT-3.3.2-10]: aliases up to the maximum are accepted; beyond it is 0x94.
    #[test]
    fn inbound_resolution_and_errors() {
        let mut inb = InboundAliases::new(2);
        let mut p = publish("s/1");
        p.properties.topic_alias = Some(alias(2));
        inb.resolve(&mut p).unwrap();
        assert_eq!(p.properties.topic_alias, None);
        let mut p = Publish::new(TopicName::default(), "y");
        p.properties.topic_alias = Some(alias(2));
        inb.resolve(&mut p).unwrap();
        assert_eq!(p.topic.as_str(), "s/1");

        let mut p = publish("s/2");
        p.properties.topic_alias = Some(alias(3));
        let v = inb.resolve(&mut p).unwrap_err();
        assert_eq!(v.reason_code, ReasonCode::TOPIC_ALIAS_INVALID);

        let mut p = Publish::new(TopicName::default(), "y");
        p.properties.topic_alias = Some(alias(1));
        let v = inb.resolve(&mut p).unwrap_err();
        assert_eq!(v.reason_code, ReasonCode::PROTOCOL_ERROR);
    }
}

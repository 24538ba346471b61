//! Topic aliases (section 3.3.2.3.4): the sender's table, which may replace a topic name by
//! a number the receiver allowed, and the receiver's table, which turns numbers back into
//! names. Both belong to one network connection and start empty on each
//! ([MQTT-3.3.2-7]). Used by either role.

use std::collections::HashMap;
use std::num::NonZeroU16;

use mqtt_codec::{Publish, ReasonCode, TopicName};

use crate::rules::Violation;

/// The sender's aliases, within the maximum the receiver announced.
#[derive(Debug, Clone, Default)]
pub struct OutboundAliases {
    maximum: u16,
    automatic: bool,
    by_topic: HashMap<TopicName, NonZeroU16>,
    by_alias: HashMap<NonZeroU16, TopicName>,
    next: u16,
}

impl OutboundAliases {
    /// A table for a new connection: `maximum` is the receiver's Topic Alias Maximum (0: no
    /// aliases, [MQTT-3.2.2-18]); with `automatic`, topics get aliases as they are first
    /// sent, until the maximum is reached.
    pub fn new(maximum: u16, automatic: bool) -> Self {
        Self {
            maximum,
            automatic,
            by_topic: HashMap::new(),
            by_alias: HashMap::new(),
            next: 1,
        }
    }

    /// The receiver's Topic Alias Maximum.
    pub fn maximum(&self) -> u16 {
        self.maximum
    }

    /// Whether an alias the application asks for is within the maximum ([MQTT-3.3.2-9]).
    pub fn allows(&self, alias: NonZeroU16) -> bool {
        alias.get() <= self.maximum
    }

    /// The topic `alias` stands for on this connection.
    pub fn topic(&self, alias: NonZeroU16) -> Option<&TopicName> {
        self.by_alias.get(&alias)
    }

    /// Rewrites a PUBLISH about to be sent. `publish.topic` is the full name. An alias the
    /// application set (in the properties) is kept: the name is sent with it the first time
    /// and left out once the receiver knows it. Otherwise, with automatic aliasing, a known
    /// topic is replaced by its alias and a new one gets a free alias if any is left.
    pub fn apply(&mut self, publish: &mut Publish) {
        if self.maximum == 0 || publish.topic.is_empty() {
            publish.properties.topic_alias = None;
            return;
        }
        if let Some(alias) = publish.properties.topic_alias {
            if !self.allows(alias) {
                publish.properties.topic_alias = None;
            } else if self.by_alias.get(&alias) == Some(&publish.topic) {
                publish.topic = TopicName::default();
            } else {
                self.bind(alias, publish.topic.clone());
            }
            return;
        }
        if !self.automatic {
            return;
        }
        if let Some(&alias) = self.by_topic.get(&publish.topic) {
            publish.properties.topic_alias = Some(alias);
            publish.topic = TopicName::default();
        } else if let Some(alias) = NonZeroU16::new(self.next).filter(|a| self.allows(*a)) {
            self.next += 1;
            self.bind(alias, publish.topic.clone());
            publish.properties.topic_alias = Some(alias);
        }
    }

    fn bind(&mut self, alias: NonZeroU16, topic: TopicName) {
        if let Some(old) = self.by_alias.insert(alias, topic.clone()) {
            self.by_topic.remove(&old);
        }
        self.by_topic.insert(topic, alias);
    }
}

/// The receiver's aliases, up to the maximum it announced.
#[derive(Debug, Clone, Default)]
pub struct InboundAliases {
    maximum: u16,
    topics: HashMap<NonZeroU16, TopicName>,
}

impl InboundAliases {
    /// A table for a new connection that accepts aliases up to `maximum` (0: none).
    pub fn new(maximum: u16) -> Self {
        Self {
            maximum,
            topics: HashMap::new(),
        }
    }

    /// Resolves the alias of a received PUBLISH: a name with an alias binds them, an empty
    /// name takes the alias's topic. On success the PUBLISH carries its full topic name and
    /// no alias.
    pub fn resolve(&mut self, publish: &mut Publish) -> Result<(), Violation> {
        let Some(alias) = publish.properties.topic_alias.take() else {
            return Ok(());
        };
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

//! Retained messages: the last retained message of each topic, found again by the filters of
//! new subscriptions.
//!
//! Messages are kept in topic order. A filter without wildcards is one lookup; a filter with
//! wildcards scans only the topics that share its literal prefix (`sensors/+/temp` looks at
//! the topics starting with `sensors/`), so a broad filter such as `#` costs a walk over all
//! retained topics, once, when it is subscribed.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::time::Instant;

use mqtt_codec::{Publish, QoS, QosPid, TopicName, matches_filter};

/// A retained message: the PUBLISH as received (topic in full, no alias, no packet
/// identifier), its QoS, and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Retained {
    /// The message; `qos_pid` is always QoS 0 here, the QoS is in `qos`.
    pub(crate) publish: Publish,
    pub(crate) qos: QoS,
    pub(crate) expires_at: Option<Instant>,
}

/// The retained messages, by topic.
#[derive(Debug, Default)]
pub(crate) struct RetainedStore {
    by_topic: BTreeMap<TopicName, Retained>,
    /// Messages with a Message Expiry, by the time they expire.
    expiring: BTreeSet<(Instant, TopicName)>,
    /// [`retained_size`] of all messages.
    bytes: usize,
}

/// What a retained message costs in `max_retained_bytes`: its topic, payload and
/// properties.
pub(crate) fn retained_size(p: &Publish) -> usize {
    let pr = &p.properties;
    let strings = pr.response_topic.as_ref().map_or(0, |t| t.len())
        + pr.correlation_data.as_ref().map_or(0, |d| d.len())
        + pr.content_type.as_ref().map_or(0, |c| c.len())
        + pr.user_properties
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
    p.topic.len() + p.payload.len() + strings
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
        stored.properties.topic_alias = None;
        stored.properties.subscription_identifiers.clear();
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
        self.remove(&topic);
        self.bytes += retained_size(&message.publish);
        if let Some(t) = message.expires_at {
            self.expiring.insert((t, topic.clone()));
        }
        self.by_topic.insert(topic, message);
    }

    /// Removes the message of `topic`; false if there was none.
    fn remove(&mut self, topic: &TopicName) -> bool {
        let Some(old) = self.by_topic.remove(topic) else {
            return false;
        };
        self.bytes -= retained_size(&old.publish);
        if let Some(t) = old.expires_at {
            self.expiring.remove(&(t, topic.clone()));
        }
        true
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
        let (count, freed) = match self.by_topic.get(&publish.topic) {
            Some(old) => (self.by_topic.len(), retained_size(&old.publish)),
            None => (self.by_topic.len() + 1, 0),
        };
        if count > max_messages {
            return Err(OverQuota::Messages);
        }
        if self.bytes - freed + retained_size(publish) > max_bytes {
            return Err(OverQuota::Bytes);
        }
        Ok(())
    }

    /// Number of retained messages (expired ones included until they are next looked at).
    pub(crate) fn len(&self) -> usize {
        self.by_topic.len()
    }

    /// Every message, in topic order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Retained> {
        self.by_topic.values()
    }

    /// The messages whose topic matches `filter` (a non-shared filter, by the rules of
    /// section 4.7, [MQTT-4.7.2-1] included), in topic order. Expired messages are removed
    /// on the way and returned in `expired` ([MQTT-3.3.2-5]).
    pub(crate) fn matching(
        &mut self,
        now: Instant,
        filter: &str,
        expired: &mut Vec<TopicName>,
    ) -> Vec<Retained> {
        let mut out = Vec::new();
        let wild = filter.find(['+', '#']);
        // A filter's text before its first wildcard has none, so it is a valid topic name.
        match wild {
            None => {
                if let Some(m) = TopicName::new(filter)
                    .ok()
                    .and_then(|t| self.by_topic.get(&t))
                {
                    out.push(m.clone());
                }
            }
            Some(i) => {
                // `a/#` also matches `a` itself ([MQTT-4.7.1-1]): scan from `a`.
                let prefix = match &filter[i..] {
                    "#" => filter[..i].strip_suffix('/').unwrap_or(&filter[..i]),
                    _ => &filter[..i],
                };
                let Ok(from) = TopicName::new(prefix) else {
                    return out;
                };
                let range = self
                    .by_topic
                    .range((Bound::Included(from), Bound::Unbounded));
                for (topic, m) in range {
                    if !topic.as_str().starts_with(prefix) {
                        break;
                    }
                    if matches_filter(filter, topic) {
                        out.push(m.clone());
                    }
                }
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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

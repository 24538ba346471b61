//! Which sessions a published message goes to (SUBSCRIBE and UNSUBSCRIBE are in
//! `subscribe.rs`).
//!
//! The [`TopicTree`] matches; this module decides what each match means for the message a
//! subscriber gets: one copy per subscriber for its overlapping subscriptions, at the highest
//! of their QoS and with all their Subscription Identifiers ([MQTT-3.3.4-2],
//! [MQTT-3.3.4-3]); No Local ([MQTT-3.8.3-3]); Retain As Published ([MQTT-3.3.1-12],
//! [MQTT-3.3.1-13]); the QoS of the message capped by the subscription's
//! ([MQTT-3.8.4-8]); and one member of each matching shared subscription group.

use alloc::vec::Vec;
use mqtt_codec::QoS;
use mqtt_codec::{SubscriptionId, SubscriptionIds};

use super::session::{SessionKey, SubValue};
use crate::topic_tree::{Combine, PerSubscriber, TopicTree};

/// A subscriber's matching non-shared subscriptions for one topic, kept whole: whether No
/// Local removes some depends on who published.
#[derive(Debug, Default)]
pub(crate) struct Matched {
    subs: Vec<SubValue>,
}

impl Combine<SubValue> for Matched {
    fn start(&mut self, value: &SubValue) {
        self.subs.clear();
        self.subs.push(*value);
    }
    fn add(&mut self, value: &SubValue) {
        self.subs.push(*value);
    }
}

/// One copy of a message to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) session: SessionKey,
    /// The QoS to deliver at: the message's, capped by the subscriptions' ([MQTT-3.8.4-8]).
    pub(crate) qos: QoS,
    /// Whether the RETAIN flag is forwarded as published.
    pub(crate) retain_as_published: bool,
    /// The Subscription Identifiers of the subscriptions this copy is for.
    pub(crate) ids: SubscriptionIds,
}

/// The subscription tree and the scratch space matching reuses.
#[derive(Debug, Default)]
pub(crate) struct Router {
    pub(crate) tree: TopicTree<SessionKey, SubValue>,
    scratch: PerSubscriber<SessionKey, Matched>,
    /// One target's identifiers while they are sorted.
    ids: Vec<SubscriptionId>,
}

impl Router {
    /// Appends to `out` a copy for each subscriber of `topic` and for one member of each
    /// matching shared group. `from` is the publishing session (for No Local), `qos` the
    /// message's. `connected` says whether a session has a connection: a shared group
    /// prefers such a member.
    pub(crate) fn targets(
        &mut self,
        topic: &str,
        from: Option<SessionKey>,
        qos: QoS,
        connected: impl Fn(SessionKey) -> bool,
        out: &mut Vec<Target>,
    ) {
        let Self { tree, scratch, ids } = self;
        tree.matches_per_subscriber(topic, scratch, |group| {
            // One member per group ([MQTT-4.8.2-3]), connected ones first.
            let member = group
                .pick(|k, _| connected(*k))
                .or_else(|| group.pick(|_, _| true));
            if let Some((k, v)) = member {
                out.push(Target {
                    session: *k,
                    qos: qos.min(v.options.qos),
                    retain_as_published: v.options.retain_as_published,
                    ids: v.id.into_iter().collect(),
                });
            }
        });
        for (key, matched) in scratch.as_slice() {
            // [MQTT-3.8.3-3] No Local: not back to the publishing client.
            let own = from == Some(*key);
            let mut t = Target {
                session: *key,
                qos: QoS::AtMostOnce,
                retain_as_published: false,
                ids: SubscriptionIds::new(),
            };
            let mut any = false;
            ids.clear();
            for v in matched.subs.iter().filter(|v| !(own && v.options.no_local)) {
                any = true;
                t.qos = t.qos.max(v.options.qos);
                t.retain_as_published |= v.options.retain_as_published;
                ids.extend(v.id);
            }
            if any {
                t.qos = t.qos.min(qos);
                // Their order is not significant ([MQTT-3.3.4-4]); ascending reads best.
                if !ids.is_empty() {
                    ids.sort_unstable();
                    t.ids = SubscriptionIds::from(ids.as_slice());
                }
                out.push(t);
            }
        }
    }
}

/// Whether `topic` (a name, or a filter after any `$share/{name}/`) has more levels than
/// `max`.
pub(crate) fn too_deep(topic: &str, max: usize) -> bool {
    // n separators make n + 1 levels.
    topic.bytes().filter(|&b| b == b'/').count() >= max
}

/// Whether `s` holds a control character (U+0001 to U+001F, U+007F to U+009F; U+0000 the
/// codec already refuses).
pub(crate) fn has_control_characters(s: &str) -> bool {
    s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::SubscriptionOptions;

    fn value(qos: QoS, no_local: bool, id: Option<u32>) -> SubValue {
        SubValue {
            options: SubscriptionOptions {
                qos,
                no_local,
                ..SubscriptionOptions::default()
            },
            id: id.and_then(SubscriptionId::new),
        }
    }

    /// [MQTT-3.3.4-2], [MQTT-3.3.4-3], [MQTT-3.8.3-3], [MQTT-3.8.4-8].
    #[test]
    fn overlapping_subscriptions_fold_and_no_local_applies_per_subscription() {
        let mut r = Router::default();
        let (a, b) = (SessionKey(1), SessionKey(2));
        r.tree
            .insert("x/+", a, value(QoS::AtLeastOnce, false, Some(1)))
            .unwrap();
        r.tree
            .insert("x/#", a, value(QoS::ExactlyOnce, true, Some(2)))
            .unwrap();
        r.tree
            .insert("x/y", b, value(QoS::AtMostOnce, true, None))
            .unwrap();
        let mut out = Vec::new();
        r.targets("x/y", None, QoS::ExactlyOnce, |_| true, &mut out);
        out.sort_by_key(|t| t.session);
        assert_eq!(out[0].qos, QoS::ExactlyOnce);
        assert_eq!(out[0].ids.len(), 2);
        assert_eq!(out[1].qos, QoS::AtMostOnce);
        // Published by a: its No Local subscription drops out, the other stays.
        out.clear();
        r.targets("x/y", Some(a), QoS::ExactlyOnce, |_| true, &mut out);
        out.sort_by_key(|t| t.session);
        assert_eq!((out[0].session, out[0].qos), (a, QoS::AtLeastOnce));
        assert_eq!(out[0].ids, [SubscriptionId::new(1).unwrap()]);
        // Published by b: its only subscription is No Local.
        out.clear();
        r.targets("x/y", Some(b), QoS::AtMostOnce, |_| true, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].session, a);
    }

    /// [MQTT-4.8.2-3]: one member of a shared group, preferring connected ones.
    #[test]
    fn shared_groups_pick_one_connected_member() {
        let mut r = Router::default();
        for k in 1..=3 {
            r.tree
                .insert(
                    "$share/g/t",
                    SessionKey(k),
                    value(QoS::AtLeastOnce, false, None),
                )
                .unwrap();
        }
        let mut out = Vec::new();
        for _ in 0..4 {
            r.targets(
                "t",
                None,
                QoS::AtLeastOnce,
                |k| k != SessionKey(2),
                &mut out,
            );
        }
        let got: Vec<u64> = out.iter().map(|t| t.session.0).collect();
        assert_eq!(got, [1, 3, 1, 3]);
    }
}

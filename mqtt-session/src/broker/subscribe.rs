//! SUBSCRIBE and UNSUBSCRIBE: subscriptions made and removed, granted or refused, and the
//! retained messages a new subscription asks for.

use crate::time::Instant;
use alloc::vec::Vec;

use mqtt_codec::{
    AckProperties, MqttString, Packet, ReasonCode, RetainHandling, SubAck, Subscribe,
    SubscriptionId, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use mqtt_codec::{QoS, TopicFilter};

use super::auth::ClientInfo;
use super::event::Limit;
use super::router::{has_control_characters, too_deep};
use super::session::{Pending, SessionKey, SubValue};
use super::store::StoreOp;
use super::{ConnectionId, Hub};
use crate::rules::Violation;

impl Hub {
    /// SUBSCRIBE: each filter handled in turn as if it came alone ([MQTT-3.8.4-5]), one
    /// SUBACK with a code per filter in order ([MQTT-3.8.4-6], [MQTT-3.9.3-1]), then the
    /// retained messages the subscriptions ask for.
    pub(super) fn on_subscribe(&mut self, now: Instant, conn: ConnectionId, sub: Subscribe) {
        let Some((key, v5)) = self.connected_session(conn) else {
            return;
        };
        let id = sub.properties.subscription_identifier;
        if id.is_some() && !self.config.subscription_identifiers_available {
            return self.violation(
                now,
                conn,
                Violation::new(
                    ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
                    "Subscription Identifier sent although not available (section 3.8.2.1.2)",
                ),
            );
        }
        let mut codes = Vec::with_capacity(sub.filters.len());
        let mut properties = AckProperties::default();
        let mut retained = Vec::new();
        for (filter, options) in sub.filters {
            match self.subscribe_one(conn, key, v5, &filter, options, id) {
                Ok((granted, existed)) => {
                    codes.push(ReasonCode(granted as u8));
                    let send = match options.retain_handling {
                        RetainHandling::SendAtSubscribe => true,
                        RetainHandling::SendAtSubscribeIfNew => !existed,
                        RetainHandling::DoNotSend => false,
                    };
                    // Retained messages are not sent for shared subscriptions (section 4.8.2).
                    if send && filter.shared().is_none() {
                        retained.push((filter, granted));
                    }
                }
                // 3.1.1 has one failure code ([MQTT-3.9.3-2] 3.1.1).
                Err((rc, why)) => {
                    // The first failure explains itself in the Reason String.
                    if properties.reason_string.is_none() {
                        properties.reason_string = Some(MqttString::from_static(why));
                    }
                    codes.push(if v5 {
                        rc
                    } else {
                        ReasonCode::UNSPECIFIED_ERROR
                    });
                }
            }
        }
        self.send(
            conn,
            Packet::SubAck(SubAck {
                packet_id: sub.packet_id,
                properties,
                reason_codes: codes,
            }),
        );
        for (filter, granted) in retained {
            self.send_retained(now, key, &filter, granted, id);
        }
    }

    /// Adds or replaces one subscription ([MQTT-3.8.4-3]): the granted QoS and whether it
    /// existed before, or the reason code refusing it.
    fn subscribe_one(
        &mut self,
        conn: ConnectionId,
        key: SessionKey,
        v5: bool,
        filter: &TopicFilter,
        mut options: SubscriptionOptions,
        id: Option<SubscriptionId>,
    ) -> Result<(QoS, bool), (ReasonCode, &'static str)> {
        let Some(session) = self.sessions.get_mut(&key) else {
            return Err((ReasonCode::UNSPECIFIED_ERROR, "no session"));
        };
        let matched = match filter.shared() {
            Some(Err(_)) => {
                return Err((
                    ReasonCode::TOPIC_FILTER_INVALID,
                    "a shared subscription needs a share name and a topic filter (section 4.8.2)",
                ));
            }
            Some(Ok(_)) if !self.config.shared_subscription_available => {
                return Err((
                    ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
                    "shared subscriptions are not supported",
                ));
            }
            Some(Ok((_, f))) => f,
            None => filter.as_str(),
        };
        let over = if too_deep(matched, self.config.max_topic_levels) {
            Some((
                Limit::TopicLevels,
                ReasonCode::TOPIC_FILTER_INVALID,
                "the topic filter has too many levels",
            ))
        } else if session.subscriptions.len() >= self.config.max_subscriptions_per_session
            && !session.subscriptions.contains_key(filter)
        {
            Some((
                Limit::SubscriptionsPerSession,
                ReasonCode::QUOTA_EXCEEDED,
                "too many subscriptions",
            ))
        } else {
            None
        };
        if let Some((limit, rc, why)) = over {
            let client_id = Some(session.client_id.clone());
            self.limit_reached_by(Some(conn), client_id, limit);
            return Err((rc, why));
        }
        if self.config.reject_control_characters && has_control_characters(filter) {
            return Err((
                ReasonCode::TOPIC_FILTER_INVALID,
                "the topic filter holds control characters",
            ));
        }
        if filter.has_wildcards() && !self.config.wildcard_subscription_available {
            return Err((
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
                "wildcard subscriptions are not supported",
            ));
        }
        let who = ClientInfo {
            client_id: &session.client_id,
            username: session.username.as_ref(),
        };
        if !self.authorizer.may_subscribe(&who, filter) {
            return Err((ReasonCode::NOT_AUTHORIZED, "not authorized"));
        }
        options.qos = options.qos.min(self.config.maximum_qos);
        if !v5 {
            // 3.1.1 carries none of these; a filter shared with a v5 session keeps defaults.
            options.no_local = false;
            options.retain_as_published = false;
            options.retain_handling = RetainHandling::SendAtSubscribe;
        }
        let value = SubValue { options, id };
        let existed = self
            .router
            .tree
            .insert(filter.as_str(), key, value)
            .map_err(|_| (ReasonCode::TOPIC_FILTER_INVALID, "invalid topic filter"))?
            .is_some();
        session.subscriptions.insert(filter.clone(), value);
        if session.durable() {
            let client_id = session.client_id.clone();
            self.persist(StoreOp::PutSubscription {
                client_id,
                filter: filter.clone(),
                options,
                id,
            });
        }
        Ok((options.qos, existed))
    }

    /// Sends the retained messages matching a new subscription, with RETAIN set
    /// ([MQTT-3.3.1-9], 3.1.1 [MQTT-3.3.1-6], [MQTT-3.3.1-8]) and the QoS capped by the
    /// subscription.
    fn send_retained(
        &mut self,
        now: Instant,
        key: SessionKey,
        filter: &TopicFilter,
        granted: QoS,
        id: Option<SubscriptionId>,
    ) {
        let mut expired = Vec::new();
        let found = self.retained.matching(now, filter.as_str(), &mut expired);
        for topic in expired {
            self.persist(StoreOp::RemoveRetained(topic));
        }
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let checks = self.authorizer.checks_receipt();
        // They wait behind what the session already has waiting, and go out as the write
        // budget and the Receive Maximum allow.
        for m in found {
            if checks {
                let who = ClientInfo {
                    client_id: &session.client_id,
                    username: session.username.as_ref(),
                };
                if !self.authorizer.may_receive(&who, &m.publish.topic) {
                    continue;
                }
            }
            let mut p = m.publish;
            p.retain = true;
            if id.is_some() || !p.properties.subscription_identifiers.is_empty() {
                p.properties.subscription_identifiers = id.into_iter().collect();
            }
            session.pending.push_back(Pending {
                publish: p,
                qos: m.qos.min(granted),
                expires_at: m.expires_at,
                retained: true,
            });
        }
        self.pump(now, key);
    }

    /// UNSUBSCRIBE: each filter removed if the session has exactly it ([MQTT-3.10.4-1]),
    /// and one UNSUBACK in any case ([MQTT-3.10.4-4], [MQTT-3.10.4-5]). Messages already on
    /// their way are still delivered ([MQTT-3.10.4-3]).
    pub(super) fn on_unsubscribe(&mut self, conn: ConnectionId, unsub: Unsubscribe) {
        let Some((key, v5)) = self.connected_session(conn) else {
            return;
        };
        let mut codes = Vec::with_capacity(unsub.filters.len());
        let mut properties = AckProperties::default();
        for filter in &unsub.filters {
            let removed = self.router.tree.remove(filter.as_str(), &key).is_some();
            let Some(session) = self.sessions.get_mut(&key) else {
                return;
            };
            session.subscriptions.remove(filter);
            if removed && session.durable() {
                let client_id = session.client_id.clone();
                self.persist(StoreOp::RemoveSubscription {
                    client_id,
                    filter: filter.clone(),
                });
            }
            codes.push(if removed {
                ReasonCode::SUCCESS
            } else {
                // A misspelt filter is a common mistake: say so.
                properties.reason_string = Some(MqttString::from_static(
                    "no subscription with this topic filter existed",
                ));
                ReasonCode::NO_SUBSCRIPTION_EXISTED
            });
        }
        self.send(
            conn,
            Packet::UnsubAck(UnsubAck {
                packet_id: unsub.packet_id,
                properties,
                // 3.1.1's UNSUBACK carries no codes.
                reason_codes: if v5 { codes } else { Vec::new() },
            }),
        );
    }
}

//! What happens after a connection: wills with their delay, and sessions that expire.
//!
//! When a connection ends without a DISCONNECT 0x00 (3.1.1: without any DISCONNECT), its
//! Will Message is published after the Will Delay Interval or when the session ends,
//! whichever comes first ([MQTT-3.1.2-8]); a new connection resuming the session before
//! then cancels it ([MQTT-3.1.3-9]). A session outlives its connection for its Session
//! Expiry Interval ([MQTT-3.1.2-23]) and then vanishes ([MQTT-4.1.0-2]).

use crate::time::Instant;

use mqtt_codec::{Publish, PublishProperties, QoS, QosPid, Will};

use super::Hub;
use super::auth::ClientInfo;
use super::connection::WillOnClose;
use super::event::{BrokerEvent, SessionEnd};
use super::session::{NEVER, SessionKey};
use super::store::StoreOp;
use super::timers::{Deadline, after_secs};

/// The PUBLISH a will becomes, and its QoS.
pub(crate) fn will_message(w: &Will) -> (Publish, QoS) {
    let wp = &w.properties;
    let mut p = Publish::new(w.topic.clone(), w.payload.clone());
    p.qos_pid = QosPid::AtMostOnce;
    p.retain = w.retain;
    p.properties = PublishProperties {
        payload_format_indicator: wp.payload_format_indicator,
        message_expiry_interval: wp.message_expiry_interval,
        content_type: wp.content_type.clone(),
        response_topic: wp.response_topic.clone(),
        correlation_data: wp.correlation_data.clone(),
        user_properties: wp.user_properties.clone(),
        ..PublishProperties::default()
    }
    .into();
    (p, w.qos)
}

impl Hub {
    /// The session's connection ended: its in-flight messages wait for the next one, its
    /// will is published (now or after its delay) or discarded, and it ends now or expires
    /// later.
    pub(super) fn session_disconnected(
        &mut self,
        now: Instant,
        key: SessionKey,
        will: WillOnClose,
    ) {
        self.pending_on_disconnect(key);
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        s.connection = None;
        s.outbound.connection_lost();
        let expiry = s.expiry_interval;
        match (will, &s.will) {
            (_, None) => {}
            (WillOnClose::Discard, Some(_)) => {
                s.will = None;
                if s.durable() {
                    let client_id = s.client_id.clone();
                    self.persist(StoreOp::RemoveWill(client_id));
                }
            }
            (WillOnClose::Publish, Some(w)) => {
                let delay = w.properties.will_delay_interval.unwrap_or(0);
                if delay == 0 || expiry == 0 {
                    self.publish_will(now, key);
                } else if let Some(at) = after_secs(now, delay) {
                    self.deadlines.set(Deadline::WillDelay(key), at);
                }
            }
        }
        if expiry == 0 {
            self.end_session(now, key, SessionEnd::ConnectionClosed);
            return;
        }
        if let Some(s) = self.sessions.get(&key)
            && s.durable()
        {
            let client_id = s.client_id.clone();
            self.persist(StoreOp::SessionOffline(client_id));
        }
        if expiry != NEVER
            && let Some(at) = after_secs(now, expiry)
        {
            self.deadlines.set(Deadline::SessionExpiry(key), at);
        }
    }

    /// Publishes the session's will now, if it still has one ([MQTT-3.1.2-10]: it is then
    /// removed), unless the authoriser refuses its topic.
    pub(super) fn publish_will(&mut self, now: Instant, key: SessionKey) {
        self.deadlines.cancel(Deadline::WillDelay(key));
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        let Some(w) = s.will.take() else { return };
        let client_id = s.client_id.clone();
        let allowed = self.authorizer.may_publish(
            &ClientInfo {
                client_id: &s.client_id,
                username: s.username.as_ref(),
            },
            &w.topic,
        );
        if s.durable() {
            self.persist(StoreOp::RemoveWill(client_id.clone()));
        }
        if allowed {
            // [MQTT-3.1.2-14], [MQTT-3.1.2-15]: retained as the Will Retain flag says.
            let (p, qos) = will_message(&w);
            // Over the retained limits the will is still published, only not retained.
            let _ = self.store_retained(now, None, key, &p, qos);
            // The session's connection is gone: no publisher to slow down.
            // The will was copied out of its CONNECT's read buffer when it was stored.
            self.route(now, Some(key), None, &p, qos, true);
            self.emit(BrokerEvent::WillPublished {
                client_id,
                topic: w.topic,
            });
        }
    }

    /// Ends a session: its pending will goes out ([MQTT-3.1.2-8]), its subscriptions and
    /// messages are forgotten.
    pub(super) fn end_session(&mut self, now: Instant, key: SessionKey, reason: SessionEnd) {
        if self
            .sessions
            .get(&key)
            .is_some_and(|s| s.will.is_some() && s.connection.is_none())
        {
            self.publish_will(now, key);
        }
        self.deadlines.cancel(Deadline::SessionExpiry(key));
        self.deadlines.cancel(Deadline::WillDelay(key));
        let Some(s) = self.sessions.remove(&key) else {
            return;
        };
        if self.by_client_id.get(&s.client_id) == Some(&key) {
            self.by_client_id.remove(&s.client_id);
        }
        for filter in s.subscriptions.keys() {
            self.router.tree.remove(filter.as_str(), &key);
        }
        if s.durable() {
            self.persist(StoreOp::RemoveSession(s.client_id.clone()));
        }
        self.emit(BrokerEvent::SessionEnded {
            client_id: s.client_id,
            reason,
        });
    }

    /// A session or will deadline fell due.
    pub(super) fn session_deadline(&mut self, now: Instant, d: Deadline) {
        match d {
            Deadline::SessionExpiry(key) => self.end_session(now, key, SessionEnd::Expired),
            Deadline::WillDelay(key) => self.publish_will(now, key),
            Deadline::ConnectTimeout(_) | Deadline::KeepAlive(_) | Deadline::WriteStall(_) => {}
        }
    }
}

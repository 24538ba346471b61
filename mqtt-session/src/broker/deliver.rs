//! Delivery: routing a message to the matching sessions, and putting each session's
//! messages on its connection as the client's Receive Maximum and the connection's write
//! budget allow.
//!
//! A session's messages wait in two places: QoS 1/2 messages in its [`Outbound`] queue
//! (durable, with packet identifiers), and in `pending` the QoS 0 messages that found the
//! write budget spent and the retained messages a new subscription asked for. [`pump`]
//! sends from both while the budget lasts; the driver's reports of bytes written
//! ([`Hub::handle_written`]) call it again.
//!
//! [`Outbound`]: crate::inflight::Outbound
//! [`pump`]: Hub::pump

use crate::collections::VecDeque;
use crate::time::Instant;

use mqtt_codec::{Packet, PubResponse, Publish, QoS, QosPid, SubscriptionIds, TopicName};

use super::auth::ClientInfo;
use super::config::Qos0Overflow;
use super::event::{BrokerEvent, Undelivered};
use super::owned;
use super::router::Target;
use super::session::{Expiry, Pending, SessionKey};
use super::store::StoreOp;
use super::timers::after_secs;
use super::{ConnectionId, Hub};
use crate::inflight::{NextSend, OutgoingEntry, OutgoingState};
use crate::store::SessionOp;

/// Whether `max_bytes` (`max_queued_bytes`) leaves room for `p` in a session's `outbound`
/// (an empty one takes any message).
fn admits(max_bytes: usize, outbound: &crate::inflight::Outbound, p: &Publish) -> bool {
    let held = outbound.bytes();
    held == 0 || held.saturating_add(crate::inflight::message_size(p)) <= max_bytes
}

/// Seconds left until `t`, rounded up so that a message still alive never says 0.
fn secs_left(now: Instant, t: Instant) -> u32 {
    let d = t.saturating_duration_since(now);
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(s).unwrap_or(u32::MAX)
}

impl Hub {
    /// Routes an application message to every matching session and returns how many
    /// copies went out. `from` is the publishing session, `publisher` its connection (if it
    /// has one); `qos` the message's QoS (the packet identifier of `msg` is ignored). Storing a retained message is the caller's
    /// part ([`store_retained`](Self::store_retained)).
    ///
    /// A subscriber left far behind by this message pauses the publishing connection
    /// (backpressure, see [`BrokerConfig::pause_publishers_at`](super::BrokerConfig)).
    pub(super) fn route(
        &mut self,
        now: Instant,
        from: Option<SessionKey>,
        publisher: Option<ConnectionId>,
        msg: &Publish,
        qos: QoS,
        kept: bool,
    ) -> usize {
        let expires_at = msg
            .properties
            .message_expiry_interval
            .and_then(|s| after_secs(now, s));
        let mut targets = core::mem::take(&mut self.targets);
        targets.clear();
        let sessions = &self.sessions;
        self.router.targets(
            msg.topic.as_str(),
            from,
            qos,
            |k| sessions.get(&k).is_some_and(|s| s.connection.is_some()),
            &mut targets,
        );
        if self.authorizer.checks_receipt() {
            let (sessions, authorizer) = (&self.sessions, &self.authorizer);
            targets.retain(|t| {
                sessions.get(&t.session).is_some_and(|s| {
                    let who = ClientInfo {
                        client_id: &s.client_id,
                        username: s.username.as_ref(),
                    };
                    authorizer.may_receive(&who, &msg.topic)
                })
            });
        }
        let n = targets.len();
        // The message copied out of its read buffer (see `owned.rs`), made once, when the
        // first subscriber keeps it, and shared by all that do; `kept`: `msg` owns its
        // bytes already.
        let mut owned = kept.then(|| msg.clone());
        for t in targets.drain(..) {
            let behind = self.deliver(now, t, msg, &mut owned, expires_at);
            if let (Some(publisher), Some(subscriber)) = (publisher, behind) {
                self.brake(now, publisher, subscriber);
            }
        }
        self.targets = targets;
        n
    }

    /// Hands one copy of a message to a session ([MQTT-4.5.0-1]). QoS 0 goes to a connected
    /// client, at once if its write budget allows and nothing waits before it, else into
    /// its bounded queue; it is not kept for a disconnected one. QoS 1/2 is stored (with a
    /// packet identifier) and sent as the client's Receive Maximum and the write budget
    /// allow.
    ///
    /// The copy for target `t` is made from `msg` when it goes out at once, and from
    /// `owned` (`msg` copied out of its read buffer, made here at first need) when the
    /// session keeps it.
    ///
    /// Returns the session's connection if the client is now `pause_publishers_at` or more
    /// messages behind (see [`brake`](Self::brake)).
    fn deliver(
        &mut self,
        now: Instant,
        t: Target,
        msg: &Publish,
        owned: &mut Option<Publish>,
        expires_at: Option<Instant>,
    ) -> Option<ConnectionId> {
        let (key, qos) = (t.session, t.qos);
        let max_queued = self.config.max_queued_messages;
        let max_bytes = self.config.max_queued_bytes;
        let pause_at = self.config.pause_publishers_at;
        let session = self.sessions.get_mut(&key)?;
        if qos == QoS::AtMostOnce {
            let conn = session.connection?;
            let room = self
                .connections
                .get(&conn)
                .is_some_and(|c| c.flow.unwritten < self.config.write_budget);
            if room && session.pending.is_empty() {
                let mut p = for_subscriber(msg, t.retain_as_published, t.ids);
                if let Some(t) = expires_at {
                    p.properties.message_expiry_interval = Some(secs_left(now, t));
                }
                let behind = session.backlog() >= pause_at;
                self.send_publish(key, conn, p);
                return behind.then_some(conn);
            }
            let p = for_subscriber(kept(msg, owned), t.retain_as_published, t.ids);
            return self.queue_qos0(now, key, conn, p, expires_at);
        }
        let p = for_subscriber(kept(msg, owned), t.retain_as_published, t.ids);
        // Retained messages waiting for this subscriber may be on the same topic: they go
        // first ([MQTT-4.6.0-6]).
        if session
            .pending
            .iter()
            .any(|e| e.retained && e.qos != QoS::AtMostOnce)
        {
            self.promote_pending(now, key, p.topic.as_str());
        }
        let session = self.sessions.get_mut(&key)?;
        if session.outbound.len() >= max_queued || !admits(max_bytes, &session.outbound, &p) {
            let behind = session.connection.filter(|_| session.backlog() >= pause_at);
            self.message_dropped(key, p.topic, Undelivered::QueueFull);
            return behind;
        }
        if self.store_outgoing(key, p, qos, expires_at) {
            self.pump(now, key);
        }
        let session = self.sessions.get(&key)?;
        session.connection.filter(|_| session.backlog() >= pause_at)
    }

    /// A message for session `key` is dropped: counted, and evented.
    fn message_dropped(&mut self, key: SessionKey, topic: TopicName, reason: Undelivered) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        session.dropped += 1;
        let client_id = session.client_id.clone();
        self.emit(BrokerEvent::MessageDropped {
            client_id,
            topic,
            reason,
        });
    }

    /// Queues a QoS 0 message (one that owns its bytes) for a connected session whose
    /// connection is behind, within
    /// `max_queued_qos0` and its overflow policy; returns `conn` if the client is now
    /// `pause_publishers_at` or more messages behind.
    fn queue_qos0(
        &mut self,
        now: Instant,
        key: SessionKey,
        conn: ConnectionId,
        p: Publish,
        expires_at: Option<Instant>,
    ) -> Option<ConnectionId> {
        let (max, policy) = (self.config.max_queued_qos0, self.config.qos0_overflow);
        let session = self.sessions.get_mut(&key)?;
        let entry = Pending {
            publish: p,
            qos: QoS::AtMostOnce,
            expires_at,
            retained: false,
        };
        let dropped = if session.pending_qos0 < max {
            session.pending.push_back(entry);
            session.pending_qos0 += 1;
            None
        } else if policy == Qos0Overflow::DropOldest
            && let Some(i) = session
                .pending
                .iter()
                .position(|e| !e.retained && e.qos == QoS::AtMostOnce)
        {
            let old = session.pending.remove(i);
            session.pending.push_back(entry);
            old.map(|e| e.publish.topic)
        } else {
            Some(entry.publish.topic)
        };
        let behind = session.backlog() >= self.config.pause_publishers_at;
        if let Some(topic) = dropped {
            self.message_dropped(key, topic, Undelivered::QueueFull);
        }
        self.arm_stall(now, conn);
        behind.then_some(conn)
    }

    /// Stores a QoS 1/2 message in the session's outbound queue with a packet identifier
    /// (persisted first if the session is durable). False if no identifier is free: the
    /// message is dropped and evented.
    fn store_outgoing(
        &mut self,
        key: SessionKey,
        mut p: Publish,
        qos: QoS,
        expires_at: Option<Instant>,
    ) -> bool {
        let Some(session) = self.sessions.get_mut(&key) else {
            return false;
        };
        let Some(id) = session.allocate_id() else {
            self.message_dropped(key, p.topic, Undelivered::QueueFull);
            return false;
        };
        p.qos_pid = match qos {
            QoS::AtLeastOnce => QosPid::AtLeastOnce(id),
            _ => QosPid::ExactlyOnce(id),
        };
        let Some(seq) = session.outbound.push(p) else {
            return false;
        };
        if let Some(t) = expires_at {
            session.expiries.insert(seq, Expiry::At(t));
        }
        if session.durable()
            && let Some(entry) = session.outbound.get(seq).cloned()
        {
            let client_id = session.client_id.clone();
            self.persist(StoreOp::Session {
                client_id,
                op: SessionOp::PutOutgoing(entry),
            });
        }
        true
    }

    /// Moves the waiting retained QoS 1/2 messages on `topic` into the outbound queue, so
    /// that a newer message on that topic cannot overtake them.
    fn promote_pending(&mut self, now: Instant, key: SessionKey, topic: &str) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let (moved, kept): (VecDeque<Pending>, VecDeque<Pending>) =
            core::mem::take(&mut session.pending)
                .into_iter()
                .partition(|e| {
                    e.retained && e.qos != QoS::AtMostOnce && e.publish.topic.as_str() == topic
                });
        session.pending = kept;
        for e in moved {
            if e.expires_at.is_none_or(|t| t > now) {
                self.store_outgoing(key, e.publish, e.qos, e.expires_at);
            }
        }
    }

    /// Sends what the session's connection can take now, while its write budget lasts:
    /// PUBRELs, then waiting PUBLISH in order within the client's Receive Maximum
    /// ([MQTT-3.3.4-9]), then what waits in `pending` (a QoS 1/2 retained message there
    /// moves to the outbound queue when the Receive Maximum has room). A PUBLISH sent before
    /// goes with DUP ([MQTT-3.3.1-1]). A message that expired before it was first sent is
    /// dropped ([MQTT-3.3.2-5]); one that was sent keeps going ([MQTT-4.3.3-7]).
    pub(super) fn pump(&mut self, now: Instant, key: SessionKey) {
        let budget = self.config.write_budget;
        let conn = loop {
            let Some(session) = self.sessions.get_mut(&key) else {
                return;
            };
            let Some(conn) = session.connection else {
                return;
            };
            let Some(c) = self.connections.get(&conn) else {
                return;
            };
            if c.flow.unwritten >= budget {
                break conn;
            }
            let receive_maximum = c.receive_maximum.min(self.config.max_in_flight.max(1));
            if let Some(next) = session.outbound.next_to_send(receive_maximum) {
                self.send_next(now, key, conn, next);
                continue;
            }
            let Some(front) = session.pending.front() else {
                break conn;
            };
            if front.qos != QoS::AtMostOnce {
                // Into the outbound queue once the Receive Maximum has room.
                if session.outbound.waiting() > 0
                    || session.outbound.in_flight() >= usize::from(receive_maximum)
                {
                    break conn;
                }
                let Some(e) = session.pending.pop_front() else {
                    break conn;
                };
                if e.expires_at.is_none_or(|t| t > now) {
                    self.store_outgoing(key, e.publish, e.qos, e.expires_at);
                }
                continue;
            }
            let Some(e) = session.pending.pop_front() else {
                break conn;
            };
            if !e.retained {
                session.pending_qos0 -= 1;
            }
            let mut p = e.publish;
            match e.expires_at {
                Some(t) if t <= now => {
                    self.message_dropped(key, p.topic, Undelivered::Expired);
                    continue;
                }
                Some(t) => p.properties.message_expiry_interval = Some(secs_left(now, t)),
                None => {}
            }
            self.send_publish(key, conn, p);
        };
        self.after_pump(now, conn, key);
    }

    /// Sends the packet `next` of the outbound queue.
    fn send_next(&mut self, now: Instant, key: SessionKey, conn: ConnectionId, next: NextSend) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        match next {
            NextSend::PubRel(seq) => {
                let Some(id) = session.outbound.get(seq).map(|e| e.packet_id) else {
                    return;
                };
                session.outbound.mark_sent(seq);
                self.send(conn, Packet::PubRel(PubResponse::new(id)));
            }
            NextSend::Publish(seq) => {
                let Some(OutgoingEntry {
                    sent,
                    state: OutgoingState::Publish { publish },
                    ..
                }) = session.outbound.get(seq)
                else {
                    return;
                };
                let (mut p, sent) = (publish.clone(), *sent);
                p.dup = sent;
                match session.expiries.get(&seq).copied() {
                    Some(Expiry::At(t)) if t <= now => {
                        return self.drop_outgoing(key, seq, Undelivered::Expired);
                    }
                    // [MQTT-3.3.2-6] what is left of it.
                    Some(Expiry::At(t)) => {
                        let left = secs_left(now, t);
                        session.expiries.insert(seq, Expiry::Sent(left));
                        p.properties.message_expiry_interval = Some(left);
                    }
                    Some(Expiry::Sent(left)) => {
                        p.properties.message_expiry_interval = Some(left);
                    }
                    None => {}
                }
                session.outbound.mark_sent(seq);
                if !self.send_publish(key, conn, p) {
                    // [MQTT-3.1.2-25] too large: discarded as if delivered.
                    self.drop_outgoing(key, seq, Undelivered::PacketTooLarge);
                }
            }
        }
    }

    /// Removes an outgoing message that will not be delivered, and says so.
    fn drop_outgoing(&mut self, key: SessionKey, seq: u64, reason: Undelivered) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        session.expiries.remove(&seq);
        let Some(entry) = session.outbound.remove(seq) else {
            return;
        };
        let topic = match entry.state {
            OutgoingState::Publish { publish, .. } => publish.topic,
            OutgoingState::PubRel => return,
        };
        if session.durable() {
            let client_id = session.client_id.clone();
            self.persist(StoreOp::Session {
                client_id,
                op: SessionOp::RemoveOutgoing(entry.packet_id),
            });
        }
        self.message_dropped(key, topic, reason);
    }

    /// The session's connection is gone: the QoS 0 messages waiting for it are dropped
    /// (QoS 0 is not kept for a disconnected client), and the retained QoS 1/2 messages its
    /// subscriptions were owed join its outbound queue, within `max_queued_messages`, to be
    /// delivered on a later connection.
    pub(super) fn pending_on_disconnect(&mut self, key: SessionKey) {
        let max_queued = self.config.max_queued_messages;
        let max_bytes = self.config.max_queued_bytes;
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        session.pending_qos0 = 0;
        let pending = core::mem::take(&mut session.pending);
        for e in pending {
            if e.qos == QoS::AtMostOnce {
                continue;
            }
            let Some(session) = self.sessions.get_mut(&key) else {
                return;
            };
            if session.outbound.len() >= max_queued
                || !admits(max_bytes, &session.outbound, &e.publish)
            {
                self.message_dropped(key, e.publish.topic, Undelivered::QueueFull);
                continue;
            }
            self.store_outgoing(key, e.publish, e.qos, e.expires_at);
        }
    }

    /// Puts a PUBLISH on the wire to `conn`, shaped for the client (see
    /// [`Connection::fit_publish`](super::connection::Connection::fit_publish)). Returns
    /// false, sending nothing, if it is larger than the client's Maximum Packet Size
    /// ([MQTT-3.1.2-24]); a QoS 0 message is then reported dropped here.
    fn send_publish(&mut self, key: SessionKey, conn: ConnectionId, p: Publish) -> bool {
        let Some(c) = self.connections.get_mut(&conn) else {
            return true;
        };
        match c.fit_publish(p) {
            Ok((packet, len)) => {
                c.hand_out(&mut self.actions, conn, packet, len);
                true
            }
            Err(too_large) => {
                if too_large.qos == QoS::AtMostOnce {
                    self.message_dropped(key, too_large.topic, Undelivered::PacketTooLarge);
                }
                false
            }
        }
    }
}

/// The copy of routed message `msg` one subscriber gets: not a duplicate, no packet
/// identifier or Topic Alias yet, RETAIN as its subscription asks ([MQTT-3.3.1-12],
/// [MQTT-3.3.1-13]; 3.1.1 [MQTT-3.3.1-9]), and its subscriptions' identifiers.
fn for_subscriber(msg: &Publish, retain_as_published: bool, ids: SubscriptionIds) -> Publish {
    let mut p = msg.clone();
    p.dup = false;
    p.qos_pid = QosPid::AtMostOnce;
    p.retain = msg.retain && retain_as_published;
    // The properties are shared with the message: changed (and so copied) only if they
    // must be.
    if p.properties.topic_alias.is_some() {
        p.properties.topic_alias = None;
    }
    if !ids.is_empty() || !p.properties.subscription_identifiers.is_empty() {
        p.properties.subscription_identifiers = ids;
    }
    p
}

/// `msg` as it is kept: the copy in `owned`, made from `msg` at first need.
fn kept<'a>(msg: &Publish, owned: &'a mut Option<Publish>) -> &'a Publish {
    owned.get_or_insert_with(|| owned::publish(msg).unwrap_or_else(|| msg.clone()))
}

//! Application messages: PUBLISH from clients with its QoS 1/2 handshakes, routing to the
//! matching sessions, and delivery to clients within their Receive Maximum.

use std::time::Instant;

use mqtt_codec::{MqttString, Packet, PubResponse, Publish, QoS, QosPid, ReasonCode};

use super::auth::ClientInfo;
use super::connect::too_deep;
use super::event::{DropReason, Event, Limit};
use super::retained::{OverQuota, RetainChange};
use super::session::{Expiry, SessionKey};
use super::store::StoreOp;
use super::timers::after_secs;
use super::{Broker, ConnectionId};
use crate::inflight::{NextSend, OutgoingState, PubRecOutcome};
use crate::rules::Violation;
use crate::store::StoreOp as SessionOp;

/// Seconds left until `t`, rounded up so that a message still alive never says 0.
fn secs_left(now: Instant, t: Instant) -> u32 {
    let d = t.saturating_duration_since(now);
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(s).unwrap_or(u32::MAX)
}

fn ack(packet_id: mqtt_codec::PacketId, reason_code: ReasonCode) -> PubResponse {
    PubResponse {
        reason_code,
        ..PubResponse::new(packet_id)
    }
}

/// A refusing acknowledgement, `why` as its Reason String.
fn refusal(packet_id: mqtt_codec::PacketId, (rc, why): Refusal) -> PubResponse {
    let mut a = ack(packet_id, rc);
    a.properties.reason_string = Some(MqttString::from_static(why));
    a
}

/// Why a PUBLISH from a client is not delivered: the reason code and Reason String of the
/// acknowledgement refusing it.
type Refusal = (ReasonCode, &'static str);

/// What becomes of a PUBLISH from a client.
enum Admission {
    /// It goes to its subscribers.
    Accepted,
    /// It is refused (under 3.1.1 acknowledged as usual and dropped).
    Refused(Refusal),
    /// It cost the client its connection.
    Closed,
}

impl Broker {
    /// A PUBLISH from a connected client.
    pub(super) fn on_publish(&mut self, now: Instant, conn: ConnectionId, mut p: Publish) {
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        let Some(key) = c.session else { return };
        let v5 = c.version.is_v5();
        if v5 {
            // [MQTT-3.3.2-12] aliases within our maximum; the name is restored here.
            if let Err(v) = c.in_aliases.resolve(&mut p) {
                return self.violation(now, conn, v);
            }
            if !p.properties.subscription_identifiers.is_empty() {
                return self.violation(
                    now,
                    conn,
                    Violation::protocol(
                        "[MQTT-3.3.4-6] PUBLISH from a client has a Subscription Identifier",
                    ),
                );
            }
            if p.qos() > self.config.maximum_qos {
                return self.violation(
                    now,
                    conn,
                    Violation::new(
                        ReasonCode::QOS_NOT_SUPPORTED,
                        "[MQTT-3.2.2-11] PUBLISH above the Maximum QoS",
                    ),
                );
            }
            if p.retain && !self.config.retain_available {
                return self.violation(
                    now,
                    conn,
                    Violation::new(
                        ReasonCode::RETAIN_NOT_SUPPORTED,
                        "[MQTT-3.2.2-14] PUBLISH with RETAIN although Retain Available is 0",
                    ),
                );
            }
        }
        if let QosPid::ExactlyOnce(id) = p.qos_pid {
            let Some(session) = self.sessions.get(&key) else {
                return;
            };
            // [MQTT-4.3.3-10] a duplicate of a message awaiting PUBREL: acknowledged again,
            // not routed again.
            if session.inbound_qos2.contains(id) {
                return self.send(conn, Packet::PubRec(PubResponse::new(id)));
            }
            // 3.1.1 has no Receive Maximum, but the bound holds for it too: such a client
            // just loses its connection.
            if session.inbound_qos2.len() >= usize::from(self.config.receive_maximum) {
                self.limit_reached(Some(conn), Limit::InboundQos2);
                return self.violation(
                    now,
                    conn,
                    Violation::new(
                        ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                        "[MQTT-3.3.4-7] more unacknowledged QoS 2 PUBLISH than the Receive Maximum",
                    ),
                );
            }
        }
        let admitted = match self.admit_publish(now, conn, key, v5, &p) {
            Admission::Accepted => Ok(()),
            Admission::Refused(r) => Err(r),
            Admission::Closed => return,
        };
        let qos = p.qos();
        match p.qos_pid {
            QosPid::AtMostOnce => {
                if admitted.is_ok() {
                    self.route(now, Some(key), &p, qos);
                }
            }
            QosPid::AtLeastOnce(id) => {
                // [MQTT-4.3.2-4] ownership is taken (the message is in the subscribers'
                // sessions) before the PUBACK.
                let routed = admitted.map(|()| self.route(now, Some(key), &p, qos));
                let a = match routed {
                    // 3.1.1 cannot refuse: a positive acknowledgement ([MQTT-3.3.5-2] 3.1.1).
                    _ if !v5 => ack(id, ReasonCode::SUCCESS),
                    Err(r) => refusal(id, r),
                    Ok(0) => ack(id, ReasonCode::NO_MATCHING_SUBSCRIBERS),
                    Ok(_) => ack(id, ReasonCode::SUCCESS),
                };
                self.send(conn, Packet::PubAck(a));
            }
            QosPid::ExactlyOnce(id) => {
                self.on_publish_qos2(now, conn, key, v5, admitted, p, id);
            }
        }
    }

    /// Whether a PUBLISH from a client goes to its subscribers. It is refused if its topic
    /// has too many levels (0x90) or the authoriser refuses it (0x87). A retained message
    /// is stored (or deleted) here; one that would take the retained messages over their
    /// limits is refused with 0x97 under v5 at QoS 1/2, and otherwise, since the client
    /// cannot be told in an acknowledgement, costs it the connection (v5: DISCONNECT 0x97;
    /// 3.1.1 [MQTT-4.8.0-2]).
    fn admit_publish(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        key: SessionKey,
        v5: bool,
        p: &Publish,
    ) -> Admission {
        if too_deep(p.topic.as_str(), self.config.max_topic_levels) {
            self.limit_reached(Some(conn), Limit::TopicLevels);
            return Admission::Refused((
                ReasonCode::TOPIC_NAME_INVALID,
                "the topic has too many levels",
            ));
        }
        let Some(session) = self.sessions.get(&key) else {
            return Admission::Closed;
        };
        let allowed = self.authorizer.may_publish(
            &ClientInfo {
                client_id: &session.client_id,
                username: session.username.as_ref(),
            },
            &p.topic,
        );
        if !allowed {
            return Admission::Refused((ReasonCode::NOT_AUTHORIZED, "not authorized"));
        }
        if self
            .store_retained(now, Some(conn), key, p, p.qos())
            .is_err()
        {
            let why = "retained messages are over their limit";
            if v5 && p.qos() != QoS::AtMostOnce {
                return Admission::Refused((ReasonCode::QUOTA_EXCEEDED, why));
            }
            self.close_for_limit(now, conn, ReasonCode::QUOTA_EXCEEDED, why);
            return Admission::Closed;
        }
        Admission::Accepted
    }

    /// Stores (or deletes, [MQTT-3.3.1-6]) the retained message `msg` at `qos`, if it is
    /// retained ([MQTT-3.3.1-5]) and the broker keeps retained messages; a non-retained
    /// message leaves the store alone ([MQTT-3.3.1-8]). `Err` with the limit, counted and
    /// evented for the session `from` (on connection `conn`, if any), if it would take the
    /// store over `max_retained_messages` or `max_retained_bytes`: nothing is stored then.
    pub(super) fn store_retained(
        &mut self,
        now: Instant,
        conn: Option<ConnectionId>,
        from: SessionKey,
        msg: &Publish,
        qos: QoS,
    ) -> Result<(), Limit> {
        if !msg.retain || !self.config.retain_available {
            return Ok(());
        }
        for topic in self.retained.remove_expired(now) {
            self.persist(StoreOp::RemoveRetained(topic));
        }
        let cfg = &self.config;
        if let Err(over) =
            self.retained
                .admits(msg, cfg.max_retained_messages, cfg.max_retained_bytes)
        {
            let limit = match over {
                OverQuota::Messages => Limit::RetainedMessages,
                OverQuota::Bytes => Limit::RetainedBytes,
            };
            let client_id = self.sessions.get(&from).map(|s| s.client_id.clone());
            self.limit_reached_by(conn, client_id, limit);
            return Err(limit);
        }
        let mut stored = msg.clone();
        stored.qos_pid = QosPid::AtMostOnce;
        match self.retained.retain(now, &stored, qos) {
            RetainChange::Stored => {
                self.persist(StoreOp::PutRetained {
                    publish: stored,
                    qos,
                });
            }
            RetainChange::Removed => {
                self.persist(StoreOp::RemoveRetained(msg.topic.clone()));
            }
            RetainChange::Nothing => {}
        }
        Ok(())
    }

    /// Inbound QoS 2, delivered once ([MQTT-4.3.3-10]): the message is routed when its
    /// PUBLISH first arrives; its identifier is kept until PUBREL, and a PUBLISH with it
    /// meanwhile is a duplicate (answered before this).
    #[allow(clippy::too_many_arguments)]
    fn on_publish_qos2(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        key: SessionKey,
        v5: bool,
        admitted: Result<(), Refusal>,
        p: Publish,
        id: mqtt_codec::PacketId,
    ) {
        if let (Err(r), true) = (admitted, v5) {
            // A refusal ends the handshake; the identifier is free again ([MQTT-4.3.3-9]).
            return self.send(conn, Packet::PubRec(refusal(id, r)));
        }
        let routed = if admitted.is_ok() {
            self.route(now, Some(key), &p, QoS::ExactlyOnce)
        } else {
            0
        };
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        session.inbound_qos2.insert(id);
        if session.durable() {
            let client_id = session.client_id.clone();
            self.persist(StoreOp::Session {
                client_id,
                op: SessionOp::PutIncoming(id),
            });
        }
        let rc = if v5 && routed == 0 {
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        } else {
            ReasonCode::SUCCESS
        };
        self.send(conn, Packet::PubRec(ack(id, rc)));
    }

    /// PUBREL: the client releases an inbound QoS 2 message; PUBCOMP answers
    /// ([MQTT-4.3.3-11]), with 0x92 under v5 if the identifier was unknown.
    pub(super) fn on_pubrel(&mut self, conn: ConnectionId, a: PubResponse) {
        let Some((key, v5)) = self.connected_session(conn) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let known = session.inbound_qos2.remove(a.packet_id);
        if known && session.durable() {
            let client_id = session.client_id.clone();
            self.persist(StoreOp::Session {
                client_id,
                op: SessionOp::RemoveIncoming(a.packet_id),
            });
        }
        let comp = if known || !v5 {
            ack(a.packet_id, ReasonCode::SUCCESS)
        } else {
            refusal(
                a.packet_id,
                (
                    ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                    "no QoS 2 message awaits PUBREL with this identifier",
                ),
            )
        };
        self.send(conn, Packet::PubComp(comp));
    }

    /// PUBACK, PUBREC or PUBCOMP from the client, for a message the broker sent. An
    /// acknowledgement matching nothing is ignored, except a PUBREC, which gets a PUBREL with
    /// 0x92 under v5.
    pub(super) fn on_client_ack(&mut self, now: Instant, conn: ConnectionId, packet: Packet) {
        let Some((key, v5)) = self.connected_session(conn) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let durable = session.durable();
        let mut put = None;
        let done = match packet {
            Packet::PubAck(a) => session.outbound.puback(a.packet_id).ok(),
            Packet::PubComp(a) => session.outbound.pubcomp(a.packet_id).ok(),
            Packet::PubRec(a) => match session
                .outbound
                .pubrec(a.packet_id, a.reason_code.is_error())
            {
                // [MQTT-4.3.3-4] PUBREL follows; stored first, replacing the PUBLISH.
                Ok(PubRecOutcome::Release { previous, seq }) => {
                    session.expiries.remove(&previous);
                    put = session.outbound.get(seq).cloned();
                    None
                }
                Ok(PubRecOutcome::AlreadyReleased(_)) => None,
                // [MQTT-4.4.0-2], [MQTT-4.8.2-6] refused: done, and sent to nobody else.
                Ok(PubRecOutcome::Failed(e)) => Some(e),
                Err(_) => {
                    if v5 {
                        let rel = refusal(
                            a.packet_id,
                            (
                                ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                                "no QoS 2 message was sent with this identifier",
                            ),
                        );
                        self.send(conn, Packet::PubRel(rel));
                    }
                    return;
                }
            },
            _ => return,
        };
        let done = done.map(|e| {
            session.expiries.remove(&e.seq);
            e.packet_id
        });
        let client_id = session.client_id.clone();
        if durable {
            if let Some(entry) = put {
                self.persist(StoreOp::Session {
                    client_id: client_id.clone(),
                    op: SessionOp::PutOutgoing(entry),
                });
            }
            if let Some(id) = done {
                self.persist(StoreOp::Session {
                    client_id,
                    op: SessionOp::RemoveOutgoing(id),
                });
            }
        }
        self.pump(now, key);
    }

    /// Routes an application message to every matching session and returns how many
    /// copies went out. `from` is the publishing session; `qos` the message's QoS (the
    /// packet identifier of `msg` is ignored). Storing a retained message is the caller's
    /// part ([`store_retained`](Self::store_retained)).
    pub(super) fn route(
        &mut self,
        now: Instant,
        from: Option<SessionKey>,
        msg: &Publish,
        qos: QoS,
    ) -> usize {
        let expires_at = msg
            .properties
            .message_expiry_interval
            .and_then(|s| after_secs(now, s));
        let mut targets = std::mem::take(&mut self.targets);
        targets.clear();
        let sessions = &self.sessions;
        self.router.targets(
            msg.topic.as_str(),
            from,
            qos,
            |k| sessions.get(&k).is_some_and(|s| s.connection.is_some()),
            &mut targets,
        );
        let n = targets.len();
        for t in targets.drain(..) {
            let mut p = msg.clone();
            p.dup = false;
            p.qos_pid = QosPid::AtMostOnce;
            // [MQTT-3.3.1-12], [MQTT-3.3.1-13]; 3.1.1 [MQTT-3.3.1-9].
            p.retain = msg.retain && t.retain_as_published;
            p.properties.topic_alias = None;
            p.properties.subscription_identifiers = t.ids;
            self.deliver(now, t.session, p, t.qos, expires_at);
        }
        self.targets = targets;
        n
    }

    /// Hands one copy of a message to a session ([MQTT-4.5.0-1]). QoS 0 goes straight to a
    /// connected client and is not kept for a disconnected one; QoS 1/2 is stored (with a
    /// packet identifier) and sent as the client's Receive Maximum allows.
    pub(super) fn deliver(
        &mut self,
        now: Instant,
        key: SessionKey,
        mut p: Publish,
        qos: QoS,
        expires_at: Option<Instant>,
    ) {
        let max_queued = self.config.max_queued_messages;
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        if qos == QoS::AtMostOnce {
            if let Some(conn) = session.connection {
                if let Some(t) = expires_at {
                    p.properties.message_expiry_interval = Some(secs_left(now, t));
                }
                self.send_publish(key, conn, p);
            }
            return;
        }
        let id = if session.outbound.len() >= max_queued {
            None
        } else {
            session.allocate_id()
        };
        let Some(id) = id else {
            session.dropped += 1;
            let client_id = session.client_id.clone();
            return self.emit(Event::MessageDropped {
                client_id,
                topic: p.topic,
                reason: DropReason::QueueFull,
            });
        };
        p.qos_pid = match qos {
            QoS::AtLeastOnce => QosPid::AtLeastOnce(id),
            _ => QosPid::ExactlyOnce(id),
        };
        let Some(seq) = session.outbound.push(p) else {
            return;
        };
        if let Some(t) = expires_at {
            session.expiries.insert(seq, Expiry::At(t));
        }
        let connected = session.connection.is_some();
        if session.durable()
            && let Some(entry) = session.outbound.get(seq).cloned()
        {
            let client_id = session.client_id.clone();
            self.persist(StoreOp::Session {
                client_id,
                op: SessionOp::PutOutgoing(entry),
            });
        }
        if connected {
            self.pump(now, key);
        }
    }

    /// Sends what the session's connection can take now: PUBRELs, then waiting PUBLISH in
    /// order within the client's Receive Maximum ([MQTT-3.3.4-9]); a PUBLISH sent before goes
    /// with DUP ([MQTT-3.3.1-1]). A message that expired before it was first sent is dropped
    /// ([MQTT-3.3.2-5]); one that was sent keeps going ([MQTT-4.3.3-7]).
    pub(super) fn pump(&mut self, now: Instant, key: SessionKey) {
        loop {
            let Some(session) = self.sessions.get_mut(&key) else {
                return;
            };
            let Some(conn) = session.connection else {
                return;
            };
            let Some(receive_maximum) = self.connections.get(&conn).map(|c| c.receive_maximum)
            else {
                return;
            };
            let Some(next) = session.outbound.next_to_send(receive_maximum) else {
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
                    let Some(OutgoingState::Publish { publish, sent, .. }) =
                        session.outbound.get(seq).map(|e| &e.state)
                    else {
                        return;
                    };
                    let (mut p, sent) = (publish.clone(), *sent);
                    p.dup = sent;
                    match session.expiries.get(&seq).copied() {
                        Some(Expiry::At(t)) if t <= now => {
                            self.drop_outgoing(key, seq, DropReason::Expired);
                            continue;
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
                        self.drop_outgoing(key, seq, DropReason::PacketTooLarge);
                    }
                }
            }
        }
    }

    /// Removes an outgoing message that will not be delivered, and says so.
    fn drop_outgoing(&mut self, key: SessionKey, seq: u64, reason: DropReason) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        session.expiries.remove(&seq);
        let Some(entry) = session.outbound.remove(seq) else {
            return;
        };
        let topic = match entry.state {
            OutgoingState::Publish { publish, .. } => publish.topic,
            OutgoingState::PubRel { .. } => return,
        };
        session.dropped += 1;
        let client_id = session.client_id.clone();
        if session.durable() {
            self.persist(StoreOp::Session {
                client_id: client_id.clone(),
                op: SessionOp::RemoveOutgoing(entry.packet_id),
            });
        }
        self.emit(Event::MessageDropped {
            client_id,
            topic,
            reason,
        });
    }

    /// Puts a PUBLISH on the wire to `conn`, shaped for the client: no properties under
    /// 3.1.1, an outbound topic alias if enabled. Returns false, sending nothing, if it is
    /// larger than the client's Maximum Packet Size ([MQTT-3.1.2-24]); a QoS 0 message is
    /// then reported dropped here.
    fn send_publish(&mut self, key: SessionKey, conn: ConnectionId, mut p: Publish) -> bool {
        let Some(c) = self.connections.get_mut(&conn) else {
            return true;
        };
        let version = c.version;
        if !version.is_v5() {
            p.properties = Default::default();
        }
        // Sized with the full topic name, and room for a Topic Alias property (which grows
        // the property length by at most one byte), so that an alias is bound only by a
        // packet that really goes out.
        let aliasing = version.is_v5() && c.out_aliases.maximum() > 0;
        let packet = Packet::Publish(p);
        let room = if aliasing { 4 } else { 0 };
        let fits = packet
            .encoded_len(version)
            .is_ok_and(|n| n + room <= c.maximum_packet_size as usize);
        let Packet::Publish(mut p) = packet else {
            return true;
        };
        if !fits {
            if p.qos() == QoS::AtMostOnce
                && let Some(s) = self.sessions.get_mut(&key)
            {
                s.dropped += 1;
                let client_id = s.client_id.clone();
                self.emit(Event::MessageDropped {
                    client_id,
                    topic: p.topic,
                    reason: DropReason::PacketTooLarge,
                });
            }
            return false;
        }
        if aliasing {
            c.out_aliases.apply(&mut p);
        }
        self.actions.push_back(super::Action::Send {
            connection: conn,
            version,
            packet: Packet::Publish(p),
        });
        true
    }
}

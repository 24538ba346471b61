//! Application messages: PUBLISH from clients with its QoS 1/2 handshakes, routing to the
//! matching sessions, and delivery to clients within their Receive Maximum.

use crate::time::Instant;

use mqtt_codec::{MqttString, Packet, PubResponse, Publish, QoS, QosPid, ReasonCode};

use super::auth::ClientInfo;
use super::event::Limit;
use super::owned;
use super::retained::{OverQuota, RetainChange};
use super::router::{has_control_characters, too_deep};
use super::session::SessionKey;
use super::store::StoreOp;
use super::{ConnectionId, Hub};
use crate::inflight::PubRecOutcome;
use crate::rules::Violation;
use crate::store::SessionOp;

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

impl Hub {
    /// A PUBLISH from a connected client.
    pub(super) fn on_publish(&mut self, now: Instant, conn: ConnectionId, mut p: Publish) {
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        let Some(key) = c.session else { return };
        let v5 = c.version.is_v5();
        if v5 {
            // (Its topic alias was resolved by its ServerConnection.)
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
            // A 3.1.1 client never hears of a Receive Maximum, so it is not held to one: a
            // compliant client must not lose its connection for what it could not know.
            // Its identifiers bound what it can leave unreleased (65,535).
            if v5 && session.inbound_qos2.len() >= usize::from(self.config.receive_maximum) {
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
        // A retained message is kept: copied out of the read buffer once, here, and that
        // copy routed too. Otherwise routing copies it when a subscriber keeps it.
        let kept = p.retain;
        if kept {
            p = owned::publish(&p).unwrap_or(p);
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
                    self.route(now, Some(key), Some(conn), &p, qos, kept);
                }
            }
            QosPid::AtLeastOnce(id) => {
                // [MQTT-4.3.2-4] ownership is taken (the message is in the subscribers'
                // sessions) before the PUBACK.
                let routed =
                    admitted.map(|()| self.route(now, Some(key), Some(conn), &p, qos, kept));
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
        if self.config.reject_control_characters && has_control_characters(&p.topic) {
            return Admission::Refused((
                ReasonCode::TOPIC_NAME_INVALID,
                "the topic holds control characters",
            ));
        }
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
        match self.keep_retained(now, msg, qos) {
            Err(over) => {
                let limit = match over {
                    OverQuota::Messages => Limit::RetainedMessages,
                    OverQuota::Bytes => Limit::RetainedBytes,
                };
                let client_id = self.sessions.get(&from).map(|s| s.client_id.clone());
                self.limit_reached_by(conn, client_id, limit);
                return Err(limit);
            }
            Ok((RetainChange::Stored, stored)) => {
                self.persist(StoreOp::PutRetained {
                    publish: stored,
                    qos,
                });
            }
            Ok((RetainChange::Removed, _)) => {
                self.persist(StoreOp::RemoveRetained(msg.topic.clone()));
            }
            Ok((RetainChange::Nothing, _)) => {}
        }
        Ok(())
    }

    /// Replaces (or, empty, deletes) the retained message of `msg`'s topic within the
    /// retained limits, and returns what changed with the message as kept; persisting it is
    /// the caller's part. `msg` is retained and the broker keeps retained messages.
    pub(super) fn keep_retained(
        &mut self,
        now: Instant,
        msg: &Publish,
        qos: QoS,
    ) -> Result<(RetainChange, Publish), OverQuota> {
        let cfg = &self.config;
        self.retained
            .admits(msg, cfg.max_retained_messages, cfg.max_retained_bytes)?;
        // Stored as a message, not as the packet it came in: no packet identifier, and
        // not a duplicate (a QoS 0 PUBLISH with DUP is malformed, [MQTT-3.3.1-2]).
        let mut stored = msg.clone();
        stored.qos_pid = QosPid::AtMostOnce;
        stored.dup = false;
        let change = self.retained.retain(now, &stored, qos);
        Ok((change, stored))
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
            self.route(now, Some(key), Some(conn), &p, QoS::ExactlyOnce, p.retain)
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
    /// acknowledgement matching nothing is ignored, except a successful PUBREC, which gets a
    /// PUBREL with 0x92 under v5 ([MQTT-4.3.3-4]); after a failing PUBREC no PUBREL is due
    /// (section 4.3.3), so one matching nothing is ignored too.
    pub(super) fn on_client_ack(&mut self, now: Instant, conn: ConnectionId, packet: Packet) {
        let Some((key, v5)) = self.connected_session(conn) else {
            return;
        };
        self.acknowledged(now, conn);
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
                    if v5 && !a.reason_code.is_error() {
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
}

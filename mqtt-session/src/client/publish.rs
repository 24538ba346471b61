//! Application messages both ways: QoS 0, QoS 1 (PUBACK) and QoS 2 (PUBREC, PUBREL,
//! PUBCOMP), flow control against the server's Receive Maximum, topic aliases and the
//! server's Maximum Packet Size.

use crate::time::Instant;

use mqtt_codec::{
    Bytes, Packet, PacketId, ProtocolVersion, PubResponse, Publish, PublishProperties, QoS, QosPid,
    ReasonCode, TopicName,
};

use super::{AckError, Client, ConnectionState, DropReason, Event, PublishError, Published};
use crate::inflight::{NextSend, OutgoingEntry, OutgoingState, PubRecOutcome};
use crate::rules::Violation;
use crate::store::SessionOp;
use crate::topic_alias::AutomaticAliases;

/// An application message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic. Empty only with a Topic Alias already bound on this connection.
    pub topic: TopicName,
    /// The payload.
    pub payload: Bytes,
    /// QoS 0, 1 or 2.
    pub qos: QoS,
    /// Whether the server retains it.
    pub retain: bool,
    /// v5 properties (must be empty under 3.1.1).
    pub properties: PublishProperties,
}

impl Message {
    /// A QoS 0, non-retained message with no properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Self {
        Self {
            topic,
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: PublishProperties::default(),
        }
    }

    /// The same message at `qos`.
    pub fn with_qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// The same message with RETAIN set as given.
    pub fn with_retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }
}

/// An incoming QoS 1/2 message delivered under manual acknowledgement, waiting for the
/// application's answer (or, answered, for the answers of messages that came before it).
#[derive(Debug, Clone)]
pub(super) struct PendingAck {
    packet_id: PacketId,
    qos: QoS,
    answer: Option<PubResponse>,
}

fn rule_ack_id(v5: bool) -> &'static str {
    if v5 {
        "[MQTT-2.2.1-5] acknowledgement for a packet identifier with no matching message in flight"
    } else {
        "[MQTT-2.3.1-6] acknowledgement for a packet identifier with no matching message in flight"
    }
}

impl Client {
    /// Publishes a message. QoS 0 goes out at once and needs an open connection. QoS 1 and
    /// 2 get a packet identifier (returned), are handed to storage (`Persist`) and go out
    /// as the server's Receive Maximum allows ([MQTT-3.3.4-7]); while disconnected or over
    /// the quota they wait, up to [`ClientConfig::max_queued`](super::ClientConfig).
    /// [`Event::Published`] reports the end of the handshake. While a client that may fall
    /// back to 3.1.1 has not had a connection accepted, a message must also fit 3.1.1 (no
    /// v5 properties).
    pub fn publish(
        &mut self,
        now: Instant,
        msg: Message,
    ) -> Result<Option<PacketId>, PublishError> {
        let connected = self.state == ConnectionState::Connected;
        if msg.qos == QoS::AtMostOnce && !connected {
            return Err(PublishError::NotConnected);
        }
        if !msg.properties.subscription_identifiers.is_empty() {
            return Err(PublishError::SubscriptionIdentifier);
        }
        if connected {
            if msg.qos > self.limits.maximum_qos {
                return Err(PublishError::QosNotSupported(self.limits.maximum_qos));
            }
            if msg.retain && !self.limits.retain_available {
                return Err(PublishError::RetainNotSupported);
            }
        }
        let mut topic = msg.topic;
        if let Some(alias) = msg.properties.topic_alias {
            if self.config.automatic_topic_aliases != AutomaticAliases::Off {
                return Err(PublishError::TopicAlias("automatic aliasing is on"));
            }
            if connected && !self.out_aliases.allows(alias) {
                return Err(PublishError::TopicAlias(
                    "above the server's Topic Alias Maximum",
                ));
            }
            if topic.is_empty() {
                match self.out_aliases.topic(alias) {
                    Some(t) => topic = t.clone(),
                    None => {
                        return Err(PublishError::TopicAlias("unknown alias for an empty topic"));
                    }
                }
            }
        } else if topic.is_empty() {
            return Err(PublishError::TopicAlias("an empty topic needs an alias"));
        }
        let placeholder = PacketId::new(1).ok_or(PublishError::PacketIdsExhausted)?;
        let mut publish = Publish {
            dup: false,
            qos_pid: QosPid::new(msg.qos, Some(placeholder)).unwrap_or(QosPid::AtMostOnce),
            retain: msg.retain,
            topic,
            properties: msg.properties.into(),
            payload: msg.payload,
        };
        let size = publish.encoded_len(self.protocol())?;
        if self.may_fall_back() {
            // Queued before the version is settled, it may go out under 3.1.1.
            publish.encoded_len(ProtocolVersion::V3_1_1)?;
        }
        let max = self.limits.maximum_packet_size;
        if connected && size > max as usize {
            return Err(PublishError::PacketTooLarge { size, max });
        }
        if msg.qos == QoS::AtMostOnce {
            self.send_publish(now, publish);
            return Ok(None);
        }
        let would_wait = !connected
            || self.outbound.waiting() > 0
            || self.outbound.in_flight() >= usize::from(self.limits.receive_maximum);
        if would_wait && self.outbound.waiting() >= self.config.max_queued {
            return Err(PublishError::QueueFull);
        }
        let id = self
            .ids
            .allocate()
            .ok_or(PublishError::PacketIdsExhausted)?;
        publish.qos_pid = QosPid::new(msg.qos, Some(id)).unwrap_or(QosPid::AtMostOnce);
        let Some(seq) = self.outbound.push(publish) else {
            // Unreachable: the identifier was free. Give it back rather than panic.
            self.release_id(id);
            return Err(PublishError::PacketIdsExhausted);
        };
        if let Some(entry) = self.outbound.get(seq).cloned() {
            self.persist(SessionOp::PutOutgoing(entry));
        }
        self.flush(now);
        Ok(Some(id))
    }

    /// Sends what the outgoing queue allows now: PUBREL first (never held back), then
    /// PUBLISH in order while the server's Receive Maximum has room ([MQTT-4.9.0-2]).
    pub(super) fn flush(&mut self, now: Instant) {
        if self.state != ConnectionState::Connected {
            return;
        }
        while let Some(next) = self.outbound.next_to_send(self.limits.receive_maximum) {
            match next {
                NextSend::PubRel(seq) => {
                    let Some(id) = self.outbound.get(seq).map(|e| e.packet_id) else {
                        return;
                    };
                    self.outbound.mark_sent(seq);
                    self.send(now, Packet::PubRel(PubResponse::new(id)));
                }
                NextSend::Publish(seq) => {
                    let Some(OutgoingEntry {
                        packet_id,
                        sent,
                        state: OutgoingState::Publish { publish },
                        ..
                    }) = self.outbound.get(seq).cloned()
                    else {
                        return;
                    };
                    let drop = if publish.qos() > self.limits.maximum_qos {
                        Some(DropReason::QosNotSupported)
                    } else if publish.retain && !self.limits.retain_available {
                        Some(DropReason::RetainNotSupported)
                    } else {
                        Packet::Publish(publish.clone())
                            .encoded_len(self.protocol())
                            .ok()
                            .filter(|&n| n <= self.limits.maximum_packet_size as usize)
                            .map_or(Some(DropReason::PacketTooLarge), |_| None)
                    };
                    if let Some(reason) = drop {
                        self.outbound.remove(seq);
                        self.release_id(packet_id);
                        self.persist(SessionOp::RemoveOutgoing(packet_id));
                        self.emit(Event::PublishDropped { packet_id, reason });
                        continue;
                    }
                    let mut publish = publish;
                    // [MQTT-3.3.1-1]: DUP on re-delivery, and only then ([MQTT-3.3.1-3]).
                    publish.dup = sent;
                    self.outbound.mark_sent(seq);
                    self.send_publish(now, publish);
                }
            }
        }
    }

    /// Applies topic aliases and sends. A packet with no room for an alias under the
    /// server's maximum (an alias adds at most 4 bytes; the size without one was checked)
    /// goes without one, and the alias table is left as it was: it must only record
    /// bindings the server has seen.
    fn send_publish(&mut self, now: Instant, mut publish: Publish) {
        let room = Packet::Publish(publish.clone())
            .encoded_len(self.protocol())
            .is_ok_and(|n| n + 4 <= self.limits.maximum_packet_size as usize);
        if room {
            self.out_aliases.apply(&mut publish);
        } else {
            publish.properties.topic_alias = None;
        }
        self.send(now, Packet::Publish(publish));
    }

    pub(super) fn on_publish(&mut self, now: Instant, mut p: Publish) {
        if let Err(v) = self.in_aliases.resolve(&mut p) {
            return self.protocol_violation(now, v);
        }
        let manual = self.config.manual_acks;
        match p.qos_pid {
            QosPid::AtMostOnce => self.emit(Event::Message(p)),
            QosPid::AtLeastOnce(id) => {
                if !manual {
                    // [MQTT-4.3.2-4]: PUBACK once the message is handed over.
                    self.emit(Event::Message(p));
                    self.send(now, Packet::PubAck(PubResponse::new(id)));
                    return;
                }
                if self.is_pending_ack(id) {
                    // Sent again while the application holds it: its answer will go.
                    return;
                }
                if let Err(v) = self.check_inbound_quota() {
                    return self.protocol_violation(now, v);
                }
                self.emit(Event::Message(p));
                self.pending_acks.push_back(PendingAck {
                    packet_id: id,
                    qos: QoS::AtLeastOnce,
                    answer: None,
                });
            }
            QosPid::ExactlyOnce(id) => {
                if self.inbound_qos2.contains(id) {
                    // [MQTT-4.3.3-10]: acknowledge again, deliver once (under manual
                    // acknowledgement, once the application has answered).
                    if !self.is_pending_ack(id) {
                        self.send(now, Packet::PubRec(PubResponse::new(id)));
                    }
                    return;
                }
                if let Err(v) = self.check_inbound_quota() {
                    return self.protocol_violation(now, v);
                }
                self.inbound_qos2.insert(id);
                // Write-ahead, the specification's Method B (section 4.3.3): the identifier
                // is stored, then the message is delivered, then PUBREC promises that no
                // copy will be delivered again. A driver that hands the message on in the
                // same transaction as the operation receives it exactly once across a crash.
                self.persist(SessionOp::PutIncoming(id));
                self.emit(Event::Message(p));
                if manual {
                    self.pending_acks.push_back(PendingAck {
                        packet_id: id,
                        qos: QoS::ExactlyOnce,
                        answer: None,
                    });
                } else {
                    // [MQTT-4.3.3-8]
                    self.send(now, Packet::PubRec(PubResponse::new(id)));
                }
            }
        }
    }

    /// [MQTT-3.3.4-9]: the server may not have more QoS 1/2 messages unacknowledged than
    /// this client's Receive Maximum.
    fn check_inbound_quota(&self) -> Result<(), Violation> {
        let pending_qos1 = self
            .pending_acks
            .iter()
            .filter(|a| a.qos == QoS::AtLeastOnce)
            .count();
        if self.inbound_qos2.len() + pending_qos1 >= usize::from(self.config.receive_maximum()) {
            return Err(Violation::new(
                ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                "[MQTT-3.3.4-9] more QoS 1/2 PUBLISH unacknowledged than the client's Receive Maximum",
            ));
        }
        Ok(())
    }

    fn is_pending_ack(&self, id: PacketId) -> bool {
        self.pending_acks.iter().any(|a| a.packet_id == id)
    }

    /// Under [`ClientConfig::manual_acks`](super::ClientConfig::manual_acks): answers the
    /// incoming QoS 1 or QoS 2 message `ack.packet_id` (from an [`Event::Message`]) with a
    /// PUBACK or PUBREC carrying `ack`'s reason code and properties (3.1.1: Success and no
    /// properties).
    ///
    /// Answers go out in the order the messages arrived ([MQTT-4.6.0-2], [MQTT-4.6.0-3]):
    /// one given early waits for those before it; while disconnected they wait for the
    /// next connection. A PUBREC with a reason code of 0x80 or above ends that QoS 2
    /// message: a later PUBLISH with its identifier is a new message ([MQTT-4.3.3-9]).
    /// Properties that would make the packet exceed the server's Maximum Packet Size are
    /// left out ([MQTT-3.4.2-2], [MQTT-3.4.2-3], [MQTT-3.5.2-2], [MQTT-3.5.2-3]). Answers
    /// not given when the session state is snapshotted are not part of it: after a resume
    /// the server sends the message again, and a QoS 2 message already delivered is then
    /// acknowledged with Success without being delivered twice.
    pub fn acknowledge(&mut self, now: Instant, ack: PubResponse) -> Result<(), AckError> {
        if !self.config.manual_acks {
            return Err(AckError::ManualAcksOff);
        }
        let id = ack.packet_id;
        let Some(pos) = self
            .pending_acks
            .iter()
            .position(|a| a.packet_id == id && a.answer.is_none())
        else {
            return Err(AckError::NotPending(id.get()));
        };
        let packet = if self.pending_acks[pos].qos == QoS::AtLeastOnce {
            Packet::PubAck(ack.clone())
        } else {
            Packet::PubRec(ack.clone())
        };
        if !ack.reason_code.allowed_in(packet.packet_type()) {
            return Err(AckError::ReasonCode(ack.reason_code));
        }
        packet.encoded_len(self.protocol())?;
        self.pending_acks[pos].answer = Some(ack);
        self.send_answers(now);
        Ok(())
    }

    /// Sends the application's answers that are next in arrival order.
    pub(super) fn send_answers(&mut self, now: Instant) {
        if self.state != ConnectionState::Connected {
            return;
        }
        while self
            .pending_acks
            .front()
            .is_some_and(|a| a.answer.is_some())
        {
            let Some(PendingAck {
                qos,
                answer: Some(ack),
                ..
            }) = self.pending_acks.pop_front()
            else {
                return;
            };
            if qos == QoS::AtLeastOnce {
                self.send(now, Packet::PubAck(ack));
                continue;
            }
            if ack.reason_code.is_error() && self.inbound_qos2.remove(ack.packet_id) {
                // [MQTT-4.3.3-9]: refused, so the identifier starts a new message next time.
                self.persist(SessionOp::RemoveIncoming(ack.packet_id));
            }
            self.send(now, Packet::PubRec(ack));
        }
    }

    /// The session was discarded: no answer is awaited any more.
    pub(super) fn forget_pending_acks(&mut self) {
        self.pending_acks.clear();
    }

    fn complete(&mut self, entry: OutgoingEntry, ack: PubResponse) {
        let qos = match &entry.state {
            OutgoingState::Publish { publish, .. } => publish.qos(),
            OutgoingState::PubRel => QoS::ExactlyOnce,
        };
        self.release_id(entry.packet_id);
        self.persist(SessionOp::RemoveOutgoing(entry.packet_id));
        self.emit(Event::Published(Published {
            packet_id: entry.packet_id,
            qos,
            reason_code: ack.reason_code,
            properties: ack.properties,
        }));
    }

    pub(super) fn on_puback(&mut self, now: Instant, ack: PubResponse) {
        match self.outbound.puback(ack.packet_id) {
            Ok(entry) => {
                self.complete(entry, ack);
                self.flush(now);
            }
            Err(_) => {
                let rule = rule_ack_id(self.protocol().is_v5());
                self.protocol_violation(now, Violation::protocol(rule));
            }
        }
    }

    pub(super) fn on_pubrec(&mut self, now: Instant, ack: PubResponse) {
        let id = ack.packet_id;
        match self.outbound.pubrec(id, ack.reason_code.is_error()) {
            Ok(PubRecOutcome::Release { seq, .. }) => {
                // Write-ahead: the stored message becomes a PUBREL before it is sent
                // ([MQTT-4.3.3-4]); the PUBLISH is never sent again ([MQTT-4.3.3-6]).
                if let Some(entry) = self.outbound.get(seq).cloned() {
                    self.persist(SessionOp::PutOutgoing(entry));
                }
                self.flush(now);
            }
            Ok(PubRecOutcome::AlreadyReleased(_)) => self.flush(now),
            Ok(PubRecOutcome::Failed(entry)) => {
                // [MQTT-4.4.0-2]: acknowledged, not to be sent again.
                self.complete(entry, ack);
                self.flush(now);
            }
            Err(_) if self.protocol().is_v5() => {
                let mut rel = PubResponse::new(id);
                rel.reason_code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
                self.send(now, Packet::PubRel(rel));
            }
            Err(_) => self.protocol_violation(now, Violation::protocol(rule_ack_id(false))),
        }
    }

    pub(super) fn on_pubrel(&mut self, now: Instant, rel: PubResponse) {
        let id = rel.packet_id;
        if self.is_pending_ack(id) {
            return self.protocol_violation(
                now,
                Violation::protocol(
                    "PUBREL for a QoS 2 message this client has not answered with PUBREC (section 4.3.3)",
                ),
            );
        }
        let mut comp = PubResponse::new(id);
        if self.inbound_qos2.remove(id) {
            // Forget the identifier before PUBCOMP lets the server reuse it.
            self.persist(SessionOp::RemoveIncoming(id));
        } else if self.protocol().is_v5() {
            comp.reason_code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
        }
        // [MQTT-4.3.3-11]
        self.send(now, Packet::PubComp(comp));
    }

    pub(super) fn on_pubcomp(&mut self, now: Instant, mut ack: PubResponse) {
        match self.outbound.pubcomp(ack.packet_id) {
            Ok(entry) => {
                // Section 3.7.2.1: Packet Identifier not found "is not an error during
                // recovery, but at other times indicates a mismatch between the Session
                // State on the Client and Server". Recovery is a PUBREL released on an
                // earlier connection and sent again on this resumed session: the server
                // had the message (its PUBREC said so) and completed it, and the PUBCOMP
                // it sent then was lost with the connection. So the message is delivered
                // and reported as Success. Whether an earlier PUBREL reached the server
                // before the cut cannot be known, so every PUBREL sent again counts. A
                // PUBREL released on this connection follows a PUBREC on this connection:
                // 0x92 then is the mismatch, and the application hears it as it came.
                if ack.reason_code == ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
                    && entry.seq < self.connection_start
                {
                    ack.reason_code = ReasonCode::SUCCESS;
                }
                self.complete(entry, ack);
                self.flush(now);
            }
            Err(_) => {
                let rule = rule_ack_id(self.protocol().is_v5());
                self.protocol_violation(now, Violation::protocol(rule));
            }
        }
    }
}

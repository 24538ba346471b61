//! Random interleavings of application commands, server behaviour and time, against a
//! model server that checks the client from the wire:
//!
//! - the client never panics, and every packet it sends encodes and decodes again;
//! - never more than the server's Receive Maximum QoS 1/2 PUBLISH unacknowledged
//!   ([MQTT-3.3.4-7]);
//! - a new PUBLISH or SUBSCRIBE never reuses an identifier in flight ([MQTT-2.2.1-3]), and a
//!   released QoS 2 message is never published again ([MQTT-4.3.3-6]);
//! - each incoming QoS 2 message reaches the application at most once, and exactly once
//!   when the client has answered it with PUBREC ([MQTT-4.3.3-10]);
//! - under manual acknowledgement, where the application answers at random moments, the
//!   answers reach the server in the order the messages were delivered ([MQTT-4.6.0-2],
//!   [MQTT-4.6.0-3]) and only for messages delivered.
#![allow(clippy::disallowed_methods)] // tests may read the clock

use mqtt_session::time::Instant;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use mqtt_codec::{
    ConnAck, ConnAckProperties, DecodeContext, MqttString, Packet, PacketId, ProtocolVersion,
    PubResponse, Publish, QoS, QosPid, ReasonCode, SubAck, SubscriptionOptions, TopicFilter,
    TopicName,
};
use mqtt_session::client::{Action, Client, ClientConfig, ConnectionState, Event, Message};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Publish(u8),
    Subscribe,
    Ack(usize),
    AckWithError(usize),
    ServerPublish(u8),
    ServerResend(usize),
    ServerRelease(usize),
    Advance(u16),
    Drop,
    Reconnect(bool),
    Rogue(u8, u16),
    Answer(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3).prop_map(Op::Publish),
        1 => Just(Op::Subscribe),
        4 => any::<usize>().prop_map(Op::Ack),
        1 => any::<usize>().prop_map(Op::AckWithError),
        3 => (0u8..3).prop_map(Op::ServerPublish),
        1 => any::<usize>().prop_map(Op::ServerResend),
        2 => any::<usize>().prop_map(Op::ServerRelease),
        2 => (0u16..120).prop_map(Op::Advance),
        1 => Just(Op::Drop),
        2 => any::<bool>().prop_map(Op::Reconnect),
        1 => (0u8..3, 1u16..6).prop_map(|(k, i)| Op::Rogue(k, i)),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(k, e)| Op::Answer(k, e)),
    ]
}

/// What the server knows of a QoS 1/2 message the client published.
#[derive(Debug, Clone, Copy, PartialEq)]
enum InState {
    /// Received; PUBACK (QoS 1) or PUBREC (QoS 2) to send.
    AwaitAck(QoS),
    /// PUBREC sent; waiting for PUBREL.
    AwaitRel,
    /// PUBREL received; PUBCOMP to send.
    Released,
}

/// A message the server publishes to the client.
#[derive(Debug, Clone)]
struct OutMsg {
    payload: String,
    qos: QoS,
    /// The client answered PUBREC (QoS 2).
    received: bool,
    released: bool,
}

struct World {
    version: ProtocolVersion,
    client: Client,
    now: Instant,
    rm: u16,
    connected: bool,
    server_has_session: bool,
    from_client: BTreeMap<u16, InState>,
    subs: BTreeMap<u16, usize>,
    to_client: BTreeMap<u16, OutMsg>,
    next_payload: u32,
    delivered: HashMap<String, u32>,
    /// Manual acknowledgement: the application answers messages itself.
    manual: bool,
    /// Delivered messages the application has not answered yet.
    to_answer: Vec<u16>,
    /// Delivered messages whose answer the server has not received, in delivery order.
    answer_order: std::collections::VecDeque<u16>,
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

impl World {
    fn new(version: ProtocolVersion, rm: u16, manual: bool) -> Self {
        let mut config = ClientConfig::new(version, MqttString::from_static("prop"));
        config.manual_acks = manual;
        config.max_queued = 5;
        config.keep_alive = 30;
        if version.is_v5() {
            config.properties.session_expiry_interval = Some(600);
        }
        Self {
            version,
            client: Client::new(config),
            now: Instant::ZERO,
            rm,
            connected: false,
            server_has_session: false,
            from_client: BTreeMap::new(),
            subs: BTreeMap::new(),
            to_client: BTreeMap::new(),
            next_payload: 0,
            delivered: HashMap::new(),
            manual,
            to_answer: Vec::new(),
            answer_order: Default::default(),
        }
    }

    /// Delivers a packet from the server (through the codec).
    fn deliver(&mut self, p: Packet) {
        if !self.connected {
            return;
        }
        let bytes = p.to_bytes(self.version).unwrap().freeze();
        let p = Packet::decode_exact(bytes, &DecodeContext::new(self.version)).unwrap();
        self.client.handle_packet(self.now, p);
        self.pump();
    }

    /// Carries out the client's actions; the server reacts to what it receives.
    fn pump(&mut self) {
        let mut replies = Vec::new();
        while let Some(a) = self.client.poll_action() {
            match a {
                Action::Send(p) => {
                    assert!(self.connected, "sent on a closed connection: {p:?}");
                    let bytes = p
                        .to_bytes(self.version)
                        .expect("client packets encode")
                        .freeze();
                    let p = Packet::decode_exact(bytes, &DecodeContext::new(self.version))
                        .expect("client packets decode");
                    if let Some(r) = self.server_receives(p) {
                        replies.push(r);
                    }
                }
                Action::Event(Event::Message(p)) => {
                    if let (true, Some(id)) = (self.manual, p.qos_pid.packet_id()) {
                        self.to_answer.push(id.get());
                        self.answer_order.push_back(id.get());
                    }
                    if p.qos() == QoS::ExactlyOnce {
                        let n = self
                            .delivered
                            .entry(String::from_utf8_lossy(&p.payload).into_owned())
                            .or_default();
                        *n += 1;
                        assert_eq!(*n, 1, "QoS 2 message delivered twice");
                    }
                }
                Action::Close => self.connected = false,
                Action::Event(Event::Connected(c)) if !c.session_present => {
                    // No session: the client forgets the answers it awaited.
                    self.to_answer.clear();
                    self.answer_order.clear();
                }
                Action::Event(_) | Action::Persist(_) => {}
            }
        }
        for r in replies {
            self.deliver(r);
        }
    }

    /// An answer to a delivered message must be the oldest one outstanding; a PUBREC
    /// repeated for a duplicate of a message already answered is the only other kind.
    fn check_answer_order(&mut self, id: u16, repeat_allowed: bool) {
        match self.answer_order.iter().position(|&i| i == id) {
            Some(0) => {
                self.answer_order.pop_front();
            }
            Some(n) => panic!(
                "[MQTT-4.6.0-2] answer for {id} before {:?}",
                &self.answer_order.as_slices().0[..n.min(self.answer_order.as_slices().0.len())]
            ),
            None => assert!(
                !self.manual || repeat_allowed,
                "answer for {id}, which is not awaiting one"
            ),
        }
    }

    fn server_receives(&mut self, p: Packet) -> Option<Packet> {
        match p {
            Packet::Publish(p) => {
                let id = p.qos_pid.packet_id()?;
                match self.from_client.get(&id.get()) {
                    None => {}
                    Some(InState::AwaitAck(_)) => {
                        assert!(
                            p.dup,
                            "[MQTT-2.2.1-3] identifier {id} reused while in flight"
                        )
                    }
                    Some(s) => panic!("[MQTT-4.3.3-6] PUBLISH {id} again in state {s:?}"),
                }
                assert!(
                    !self.subs.contains_key(&id.get()),
                    "id {id} used by a SUBSCRIBE"
                );
                self.from_client
                    .insert(id.get(), InState::AwaitAck(p.qos()));
                assert!(
                    self.from_client.len() <= usize::from(self.rm),
                    "[MQTT-3.3.4-7] {} in flight, Receive Maximum {}",
                    self.from_client.len(),
                    self.rm
                );
                None
            }
            Packet::PubRel(r) => {
                if let Some(s) = self.from_client.get_mut(&r.packet_id.get()) {
                    assert_ne!(*s, InState::AwaitAck(QoS::AtLeastOnce));
                    *s = InState::Released;
                }
                None
            }
            Packet::Subscribe(s) => {
                let id = s.packet_id.get();
                assert!(
                    !self.from_client.contains_key(&id),
                    "id {id} used by a PUBLISH"
                );
                self.subs.insert(id, s.filters.len());
                None
            }
            Packet::PubAck(a) => {
                self.check_answer_order(a.packet_id.get(), false);
                let m = self
                    .to_client
                    .remove(&a.packet_id.get())
                    .expect("PUBACK for a message");
                assert_eq!(m.qos, QoS::AtLeastOnce);
                None
            }
            Packet::PubRec(a) => {
                let id = a.packet_id.get();
                let repeat = self.to_client.get(&id).is_some_and(|m| m.received);
                self.check_answer_order(id, repeat);
                let m = self.to_client.get_mut(&id).expect("PUBREC for a message");
                assert_eq!(m.qos, QoS::ExactlyOnce);
                m.received = true;
                assert_eq!(
                    self.delivered.get(&m.payload),
                    Some(&1),
                    "PUBREC before delivery"
                );
                if a.reason_code.is_error() {
                    // Refused: the message is done ([MQTT-4.3.3-9]).
                    self.to_client.remove(&id);
                }
                None
            }
            Packet::PubComp(a) => {
                if let Some(m) = self.to_client.get(&a.packet_id.get())
                    && m.released
                {
                    self.to_client.remove(&a.packet_id.get());
                }
                None
            }
            Packet::PingReq => Some(Packet::PingResp),
            Packet::Disconnect(_) => {
                self.connected = false;
                None
            }
            Packet::Connect(_) | Packet::Unsubscribe(_) | Packet::Auth(_) => None,
            other => panic!("a client does not send {:?}", other.packet_type()),
        }
    }

    fn connect(&mut self, keep_session: bool) {
        if self.client.state() != ConnectionState::Disconnected {
            return;
        }
        self.client.connect(self.now).unwrap();
        self.connected = true;
        let mut clean = true;
        while let Some(a) = self.client.poll_action() {
            if let Action::Send(Packet::Connect(c)) = a {
                clean = c.clean_start;
            }
        }
        // The server keeps the session unless told to start clean, or (at random) it expired.
        let present = !clean && keep_session && self.server_has_session;
        if !present {
            self.from_client.clear();
            self.subs.clear();
            self.to_client.clear();
        }
        self.server_has_session = true;
        let mut props = ConnAckProperties::default();
        if self.version.is_v5() {
            props.receive_maximum = std::num::NonZeroU16::new(self.rm);
        }
        let ack = ConnAck {
            session_present: present,
            reason_code: ReasonCode::SUCCESS,
            properties: props,
        };
        self.deliver(Packet::ConnAck(Box::new(ack)));
        // The server resends its unfinished messages.
        if present {
            let resend: Vec<(u16, OutMsg)> = self
                .to_client
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            for (id, m) in resend {
                if m.released {
                    self.deliver(Packet::PubRel(PubResponse::new(pid(id))));
                } else {
                    self.send_message(id, &m, true);
                }
            }
        }
    }

    fn send_message(&mut self, id: u16, m: &OutMsg, dup: bool) {
        let mut p = Publish::new(TopicName::from_static("s/t"), m.payload.clone());
        p.qos_pid = QosPid::new(m.qos, PacketId::new(id)).unwrap();
        p.dup = dup;
        self.deliver(Packet::Publish(p));
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Publish(q) => {
                let qos = QoS::from_u8(q).unwrap();
                let msg = Message::new(TopicName::from_static("c/t"), "m").with_qos(qos);
                let _ = self.client.publish(self.now, msg);
                self.pump();
            }
            Op::Subscribe => {
                let f = vec![(
                    TopicFilter::from_static("s/#"),
                    SubscriptionOptions::qos(QoS::ExactlyOnce),
                )];
                let _ = self.client.subscribe(self.now, f, Default::default());
                self.pump();
            }
            Op::Ack(k) | Op::AckWithError(k) => {
                let error = matches!(op, Op::AckWithError(_));
                let n = self.from_client.len() + self.subs.len();
                if n == 0 || !self.connected {
                    return;
                }
                let k = k % n;
                if let Some((&id, &state)) = self.from_client.iter().nth(k) {
                    let code = if error { 0x80 } else { 0x00 };
                    let reply = match state {
                        InState::AwaitAck(QoS::AtLeastOnce) => {
                            self.from_client.remove(&id);
                            Packet::PubAck(PubResponse {
                                reason_code: ReasonCode(code),
                                ..PubResponse::new(pid(id))
                            })
                        }
                        InState::AwaitAck(_) => {
                            if error {
                                self.from_client.remove(&id);
                            } else {
                                self.from_client.insert(id, InState::AwaitRel);
                            }
                            Packet::PubRec(PubResponse {
                                reason_code: ReasonCode(code),
                                ..PubResponse::new(pid(id))
                            })
                        }
                        InState::AwaitRel => return,
                        InState::Released => {
                            self.from_client.remove(&id);
                            Packet::PubComp(PubResponse::new(pid(id)))
                        }
                    };
                    let reply = if self.version.is_v5() {
                        reply
                    } else {
                        match reply {
                            Packet::PubAck(a) => Packet::PubAck(PubResponse::new(a.packet_id)),
                            Packet::PubRec(a) => {
                                // 3.1.1 has no failure code: a success PUBREC.
                                self.from_client
                                    .insert(a.packet_id.get(), InState::AwaitRel);
                                Packet::PubRec(PubResponse::new(a.packet_id))
                            }
                            other => other,
                        }
                    };
                    self.deliver(reply);
                } else if let Some((&id, &count)) = self.subs.iter().nth(k - self.from_client.len())
                {
                    self.subs.remove(&id);
                    let code = if error {
                        ReasonCode::UNSPECIFIED_ERROR
                    } else {
                        ReasonCode::GRANTED_QOS_2
                    };
                    self.deliver(Packet::SubAck(SubAck {
                        packet_id: pid(id),
                        properties: Default::default(),
                        reason_codes: vec![code; count],
                    }));
                }
            }
            Op::ServerPublish(q) => {
                if !self.connected {
                    return;
                }
                let qos = QoS::from_u8(q).unwrap();
                self.next_payload += 1;
                let m = OutMsg {
                    payload: format!("s{}", self.next_payload),
                    qos,
                    received: false,
                    released: false,
                };
                if qos == QoS::AtMostOnce {
                    return self.send_message(0, &m, false);
                }
                let Some(id) = (1..=20).find(|i| !self.to_client.contains_key(i)) else {
                    return;
                };
                self.to_client.insert(id, m.clone());
                self.send_message(id, &m, false);
            }
            Op::ServerResend(k) => {
                let pending: Vec<(u16, OutMsg)> = self
                    .to_client
                    .iter()
                    .filter(|(_, m)| !m.released)
                    .map(|(k, v)| (*k, v.clone()))
                    .collect();
                if let Some((id, m)) = pending.get(k % pending.len().max(1)).cloned() {
                    self.send_message(id, &m, true);
                }
            }
            Op::ServerRelease(k) => {
                let ready: Vec<u16> = self
                    .to_client
                    .iter()
                    .filter(|(_, m)| m.received)
                    .map(|(k, _)| *k)
                    .collect();
                if let Some(&id) = ready.get(k % ready.len().max(1)) {
                    if let Some(m) = self.to_client.get_mut(&id) {
                        m.released = true;
                    }
                    self.deliver(Packet::PubRel(PubResponse::new(pid(id))));
                }
            }
            Op::Advance(secs) => {
                self.now += Duration::from_secs(u64::from(secs));
                while let Some(t) = self.client.poll_timeout() {
                    if t > self.now {
                        break;
                    }
                    self.client.handle_timeout(self.now);
                    self.pump();
                }
            }
            Op::Drop => {
                if self.connected {
                    self.connected = false;
                    self.client.handle_closed(self.now);
                    self.pump();
                }
            }
            Op::Reconnect(keep) => {
                if self.connected && self.client.state() == ConnectionState::Disconnected {
                    self.connected = false;
                }
                if !self.connected {
                    self.connect(keep);
                }
            }
            Op::Answer(k, error) => {
                if self.to_answer.is_empty() {
                    return;
                }
                let id = self.to_answer.remove(k % self.to_answer.len());
                let code = if error && self.version.is_v5() {
                    ReasonCode::UNSPECIFIED_ERROR
                } else {
                    ReasonCode::SUCCESS
                };
                let answer = PubResponse {
                    reason_code: code,
                    ..PubResponse::new(pid(id))
                };
                self.client
                    .acknowledge(self.now, answer)
                    .expect("a delivered message can be answered");
                self.pump();
            }
            Op::Rogue(kind, id) => {
                let p = match kind {
                    0 => Packet::PubAck(PubResponse::new(pid(id + 100))),
                    1 => Packet::PubComp(PubResponse::new(pid(id + 100))),
                    _ => Packet::ConnAck(Box::default()),
                };
                self.deliver(p);
            }
        }
    }
}

proptest! {
    // 256 cases by default; PROPTEST_CASES asks for another count.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_interleavings_keep_the_guarantees(
        v5 in any::<bool>(),
        manual in any::<bool>(),
        rm in 1u16..5,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let version = if v5 { ProtocolVersion::V5 } else { ProtocolVersion::V3_1_1 };
        let rm = if v5 { rm } else { u16::MAX };
        let mut w = World::new(version, rm, manual);
        w.connect(true);
        for op in ops {
            w.apply(op);
            prop_assert!(w.client.in_flight() <= usize::from(rm));
        }
        // Every QoS 2 message the client acknowledged with PUBREC was delivered exactly once.
        for m in w.to_client.values().filter(|m| m.received) {
            prop_assert_eq!(w.delivered.get(&m.payload), Some(&1));
        }
    }
}

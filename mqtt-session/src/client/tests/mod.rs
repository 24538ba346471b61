//! Wire-transcript tests of the client: each test is a story told with the actions the
//! client produces, written one per line by [`describe`], under simulated time. Every packet
//! crossing the harness is encoded and decoded again with the connection's version, so the
//! codec is exercised too.

mod acks;
mod auth;
mod connect;
mod fallback;
mod flow;
mod keepalive;
mod ordering;
mod publish;
mod recovery;
mod session;
mod subscribe;
mod violations;

use crate::time::Instant;
use core::time::Duration;

use mqtt_codec::{
    BytesMut, ConnAck, ConnAckProperties, DecodeContext, MqttString, Packet, PacketId,
    ProtocolVersion, PubResponse, Publish, QoS, QosPid, ReasonCode, TopicName,
};

use super::{Action, Client, ClientConfig, Event};
use crate::store::{Request, SessionOp};

pub(super) fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

pub(super) fn topic(s: &'static str) -> TopicName {
    TopicName::from_static(s)
}

/// One line per action.
pub(super) fn describe(a: &Action) -> String {
    fn rc(r: ReasonCode) -> String {
        if r == ReasonCode::SUCCESS {
            String::new()
        } else {
            format!(" rc=0x{:02X}", r.0)
        }
    }
    fn ack(name: &str, a: &PubResponse) -> String {
        format!("send {name} {}{}", a.packet_id, rc(a.reason_code))
    }
    match a {
        Action::Send(p) => match p {
            Packet::Connect(c) => format!(
                "send CONNECT id={} clean={} keep_alive={}",
                c.client_id, c.clean_start as u8, c.keep_alive
            ),
            Packet::Publish(p) => {
                let id = p.qos_pid.packet_id().map_or("-".into(), |i| i.to_string());
                let alias = p
                    .properties
                    .topic_alias
                    .map_or(String::new(), |a| format!(" alias={a}"));
                format!(
                    "send PUBLISH '{}' qos={} id={id} dup={} retain={}{alias}",
                    p.topic,
                    p.qos() as u8,
                    p.dup as u8,
                    p.retain as u8
                )
            }
            Packet::PubAck(a) => ack("PUBACK", a),
            Packet::PubRec(a) => ack("PUBREC", a),
            Packet::PubRel(a) => ack("PUBREL", a),
            Packet::PubComp(a) => ack("PUBCOMP", a),
            Packet::Subscribe(s) => {
                let f: Vec<String> = s
                    .filters
                    .iter()
                    .map(|(f, o)| format!("{f}:{}", o.qos as u8))
                    .collect();
                format!("send SUBSCRIBE {} {}", s.packet_id, f.join(","))
            }
            Packet::Unsubscribe(u) => {
                let f: Vec<&str> = u.filters.iter().map(|f| f.as_str()).collect();
                format!("send UNSUBSCRIBE {} {}", u.packet_id, f.join(","))
            }
            Packet::PingReq => "send PINGREQ".into(),
            Packet::Disconnect(d) => format!("send DISCONNECT 0x{:02X}", d.reason_code.0),
            Packet::Auth(a) => format!(
                "send AUTH 0x{:02X} {}",
                a.reason_code.0,
                a.properties
                    .authentication_data
                    .as_ref()
                    .map_or(String::new(), |d| String::from_utf8_lossy(d).into_owned())
            ),
            other => format!("send {:?}", other.packet_type()),
        },
        Action::Persist(op) => match op {
            SessionOp::PutOutgoing(e) => format!(
                "persist put-out {} {}",
                e.packet_id,
                match e.state {
                    crate::inflight::OutgoingState::Publish { .. } => "publish",
                    crate::inflight::OutgoingState::PubRel => "pubrel",
                }
            ),
            SessionOp::RemoveOutgoing(i) => format!("persist rm-out {i}"),
            SessionOp::PutIncoming(i) => format!("persist put-in {i}"),
            SessionOp::RemoveIncoming(i) => format!("persist rm-in {i}"),
            SessionOp::PutRequest(Request::Subscribe(s)) => {
                format!("persist put-sub {}", s.packet_id)
            }
            SessionOp::PutRequest(Request::Unsubscribe(u)) => {
                format!("persist put-unsub {}", u.packet_id)
            }
            SessionOp::RemoveRequest(i) => format!("persist rm-req {i}"),
            SessionOp::SetClientId(c) => format!("persist client-id {c}"),
        },
        Action::Event(e) => match e {
            Event::Connected(c) => format!(
                "event connected present={} id={}",
                c.session_present as u8, c.client_id
            ),
            Event::UnsupportedProtocolVersion { refused, fallback } => format!(
                "event unsupported-version refused={refused} fallback={}",
                fallback.map_or("none".into(), |v| v.to_string())
            ),
            Event::Message(p) => format!(
                "event message '{}' {} qos={}",
                p.topic,
                String::from_utf8_lossy(&p.payload),
                p.qos() as u8
            ),
            Event::Published(p) => format!("event published {}{}", p.packet_id, rc(p.reason_code)),
            Event::PublishDropped { packet_id, reason } => {
                format!("event dropped {packet_id} {reason:?}")
            }
            Event::RequestDropped { packet_id, reason } => {
                format!("event request-dropped {packet_id} {reason:?}")
            }
            Event::Subscribed(s) => {
                let c: Vec<String> = s
                    .filters
                    .iter()
                    .map(|(_, _, r)| format!("0x{:02X}", r.0))
                    .collect();
                format!("event subscribed {} {}", s.packet_id, c.join(","))
            }
            Event::Unsubscribed(u) => {
                let c: Vec<String> = u
                    .filters
                    .iter()
                    .map(|(_, r)| format!("0x{:02X}", r.0))
                    .collect();
                format!("event unsubscribed {} {}", u.packet_id, c.join(","))
            }
            Event::AuthChallenge(p) => format!(
                "event auth-challenge {}",
                p.authentication_data
                    .as_ref()
                    .map_or(String::new(), |d| String::from_utf8_lossy(d).into_owned())
            ),
            Event::Reauthenticated(_) => "event reauthenticated".into(),
            Event::Disconnected(d) => {
                let mut s = format!("event disconnected {:?}", d.cause);
                if let Some(r) = d.reason_code {
                    s += &format!(" rc=0x{:02X}", r.0);
                }
                if let Some(rule) = d.rule.and_then(|r| {
                    let rest = r.strip_prefix('[')?;
                    Some(&rest[..rest.find(']')?])
                }) {
                    s += &format!(" {rule}");
                }
                s
            }
        },
        Action::Close => "close".into(),
    }
}

/// A client under test, a simulated clock, and the packets the client sent.
pub(super) struct Harness {
    pub(super) client: Client,
    pub(super) now: Instant,
    /// Every action the client produced, in order.
    pub(super) actions: Vec<Action>,
    /// Bytes from the server not yet decoded ([`Harness::recv_bytes`]).
    rx: BytesMut,
}

impl Harness {
    pub(super) fn new(config: ClientConfig) -> Self {
        Self::with_client(Client::new(config))
    }

    pub(super) fn with_client(client: Client) -> Self {
        Self {
            client,
            now: crate::test_epoch(),
            actions: Vec::new(),
            rx: BytesMut::new(),
        }
    }

    pub(super) fn v5() -> Self {
        Self::new(ClientConfig::new(
            ProtocolVersion::V5,
            MqttString::from_static("c1"),
        ))
    }

    pub(super) fn v3() -> Self {
        Self::new(ClientConfig::new(
            ProtocolVersion::V3_1_1,
            MqttString::from_static("c1"),
        ))
    }

    fn version(&self) -> ProtocolVersion {
        self.client.protocol()
    }

    /// Encodes and decodes a packet as the wire would.
    fn wire(&self, p: &Packet) -> Packet {
        let bytes = p.to_bytes(self.version()).expect("encodes");
        Packet::decode_exact(bytes.freeze(), &DecodeContext::new(self.version())).expect("decodes")
    }

    /// Drains the client's actions (sent packets cross the wire) and describes them.
    pub(super) fn drain(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(a) = self.client.poll_action() {
            let a = match a {
                Action::Send(p) => Action::Send(self.wire(&p)),
                other => other,
            };
            out.push(describe(&a));
            self.actions.push(a);
        }
        out
    }

    /// The server sends `p`.
    pub(super) fn recv(&mut self, p: Packet) -> Vec<String> {
        let p = self.wire(&p);
        self.client.handle_packet(self.now, p);
        self.drain()
    }

    /// The server sends these bytes: the client decodes what is whole of them and what
    /// came before ([`Client::decode`]) and is handed each packet, or the decode error that
    /// ends the stream (the rest is then dropped, as a driver closing the transport would).
    pub(super) fn recv_bytes(&mut self, bytes: &[u8]) -> Vec<String> {
        self.rx.extend_from_slice(bytes);
        loop {
            match self.client.decode(&mut self.rx) {
                Ok(Some(p)) => self.client.handle_packet(self.now, p),
                Ok(None) => break,
                Err(e) => {
                    self.client.handle_decode_error(self.now, &e);
                    self.rx.clear();
                    break;
                }
            }
        }
        self.drain()
    }

    /// Simulated time passes; due timers fire.
    pub(super) fn advance(&mut self, d: Duration) -> Vec<String> {
        self.now += d;
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
        self.drain()
    }

    /// CONNECT, then `connack`; returns the transcript after CONNECT.
    pub(super) fn connect_with(&mut self, connack: ConnAck) -> Vec<String> {
        self.client.connect(self.now).unwrap();
        let sent = self.drain();
        assert!(sent[0].starts_with("send CONNECT"), "{sent:?}");
        self.recv(Packet::ConnAck(Box::new(connack)))
    }

    /// Connects with a plain successful CONNACK.
    pub(super) fn connect(&mut self) -> Vec<String> {
        self.connect_with(ConnAck::default())
    }

    pub(super) fn publish(
        &mut self,
        t: &'static str,
        payload: &'static str,
        qos: QoS,
    ) -> Vec<String> {
        let m = super::Message::new(topic(t), payload).with_qos(qos);
        self.client.publish(self.now, m).unwrap();
        self.drain()
    }
}

pub(super) fn connack_with(f: impl FnOnce(&mut ConnAckProperties)) -> ConnAck {
    let mut c = ConnAck::default();
    f(&mut c.properties);
    c
}

pub(super) fn incoming(t: &'static str, payload: &'static str, qos: QoS, pid: u16) -> Packet {
    let mut p = Publish::new(topic(t), payload);
    p.qos_pid = QosPid::new(qos, PacketId::new(pid)).unwrap();
    Packet::Publish(p)
}

pub(super) fn with_rc(pid: u16, code: u8) -> PubResponse {
    let mut r = PubResponse::new(id(pid));
    r.reason_code = ReasonCode(code);
    r
}

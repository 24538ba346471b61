//! Drives the sans-IO broker with arbitrary packet sequences on four connections: arbitrary
//! bytes decoded per connection (or their decode errors), well-formed CONNECT, SUBSCRIBE,
//! PUBLISH and acknowledgements to get past the opening moves, closed transports, driver
//! decisions, and time steps, under MQTT 3.1.1 and 5.0 and two broker configurations.
//!
//! Checks, besides "no panic": every packet the broker sends encodes in the version it names
//! and decodes again to an equal packet; nothing goes to a connection after its Close or
//! before it was opened; towards each connection a new QoS 1/2 PUBLISH never takes an
//! identifier still in flight, and no more are in flight than the client's Receive Maximum;
//! the broker's count of unwritten bytes per connection equals the bytes it sent that the
//! target has not reported written; pauses and resumes alternate.
#![no_main]

use mqtt_session::time::Instant;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU16;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mqtt_codec::{
    BytesMut, Connect, DecodeContext, MqttString, Packet, PacketId, ProtocolVersion, PubResponse,
    Publish, QoS, QosPid, ReasonCode, Subscribe, SubscriptionOptions, TopicFilter, TopicName,
};
use mqtt_session::broker::{
    Authorizer, Broker, BrokerAction, BrokerConfig, BrokerEvent, ClientInfo, ConnectPolicy,
    ConnectionId,
};

const CONNS: u64 = 4;
const TOPICS: [&str; 4] = ["a/b", "a/c", "$x/y", "x/\u{1}"];
const FILTERS: [&str; 4] = ["a/+", "#", "$share/g/a/#", "a/b"];

/// What the target knows about one connection, to check the broker against.
#[derive(Default)]
struct Conn {
    open: bool,
    version: Option<ProtocolVersion>,
    buf: BytesMut,
    receive_maximum: usize,
    /// QoS 1/2 PUBLISH sent by the broker and not yet finished, with their QoS.
    in_flight: HashMap<PacketId, QoS>,
}

struct Target {
    broker: Broker,
    now: Instant,
    conns: HashMap<ConnectionId, Conn>,
    pending: Vec<ConnectionId>,
    /// Connections the broker asked to stop reading from.
    paused: HashSet<ConnectionId>,
    /// Bytes sent to each connection and not yet reported written.
    unwritten: HashMap<ConnectionId, usize>,
}

impl Target {
    fn feed(&mut self, id: ConnectionId, packet: Packet) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let version = match &packet {
            Packet::Connect(k) => k.protocol,
            _ => c.version.unwrap_or(ProtocolVersion::V5),
        };
        if let Ok(bytes) = packet.to_bytes(version) {
            self.feed_bytes(id, &bytes);
        }
    }

    /// Decodes `bytes` on `id` as the driver would and hands the broker what comes out.
    fn feed_bytes(&mut self, id: ConnectionId, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if !c.open {
            return;
        }
        c.buf.extend_from_slice(bytes);
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            let cx = self.broker.decode_context(id);
            match Packet::decode(&mut c.buf, &cx) {
                Ok(Some(p)) => {
                    self.observe_inbound(id, &p);
                    self.broker.handle_packet(self.now, id, p);
                }
                Ok(None) => break,
                Err(e) => {
                    c.buf.clear();
                    self.broker.handle_decode_error(self.now, id, &e);
                    break;
                }
            }
            self.drain();
        }
        self.drain();
    }

    /// Tracks what a client tells the broker: its Receive Maximum, and acknowledgements.
    fn observe_inbound(&mut self, id: ConnectionId, p: &Packet) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        match p {
            Packet::Connect(k) if c.version.is_none() => {
                c.version = Some(k.protocol);
                c.receive_maximum = k
                    .properties
                    .receive_maximum
                    .map_or(usize::from(u16::MAX), |n| usize::from(n.get()));
            }
            Packet::PubAck(a) if c.in_flight.get(&a.packet_id) == Some(&QoS::AtLeastOnce) => {
                c.in_flight.remove(&a.packet_id);
            }
            Packet::PubRec(a)
                if a.reason_code.is_error()
                    && c.in_flight.get(&a.packet_id) == Some(&QoS::ExactlyOnce) =>
            {
                c.in_flight.remove(&a.packet_id);
            }
            Packet::PubComp(a) => {
                c.in_flight.remove(&a.packet_id);
            }
            _ => {}
        }
    }

    fn drain(&mut self) {
        while let Some(a) = self.broker.poll_action() {
            match a {
                BrokerAction::Send {
                    connection,
                    version,
                    packet,
                    len: counted,
                } => {
                    let c = self
                        .conns
                        .get_mut(&connection)
                        .expect("sent to an unknown connection");
                    assert!(c.open, "sent to {connection} after Close");
                    let bytes = packet.to_bytes(version).expect("broker packet encodes");
                    // Counted against the write budget: what goes on the wire (for a
                    // PUBLISH at most that, room for a topic alias included), and nothing
                    // for a PINGRESP the connection answered itself (one the hub sends, for
                    // a PINGREQ held before CONNACK, counts).
                    match &packet {
                        Packet::PingResp => assert!(counted == 0 || counted == bytes.len()),
                        Packet::Publish(_) => assert!(bytes.len() <= counted),
                        _ => assert_eq!(bytes.len(), counted),
                    }
                    let len = counted;
                    let back = Packet::decode_exact(bytes.freeze(), &DecodeContext::new(version))
                        .expect("broker packet decodes");
                    *self.unwritten.entry(connection).or_default() += len;
                    assert_eq!(back, packet);
                    if let Packet::Publish(p) = &packet
                        && let Some(pid) = p.qos_pid.packet_id()
                    {
                        let known = c.in_flight.insert(pid, p.qos()).is_some();
                        assert!(!known || p.dup, "new PUBLISH reuses identifier {pid}");
                        assert!(
                            c.in_flight.len() <= c.receive_maximum,
                            "more in flight than Receive Maximum {}",
                            c.receive_maximum
                        );
                    }
                }
                BrokerAction::Close(conn) => {
                    let c = self
                        .conns
                        .get_mut(&conn)
                        .expect("closed an unknown connection");
                    assert!(c.open, "closed {conn} twice");
                    c.open = false;
                }
                BrokerAction::PauseReading(conn) => {
                    assert!(self.paused.insert(conn), "{conn} paused twice");
                }
                BrokerAction::ResumeReading(conn) => {
                    assert!(self.paused.remove(&conn), "{conn} resumed but not paused");
                }
                BrokerAction::Persist(_) => {}
                BrokerAction::Event(BrokerEvent::ConnectRequest(r)) => {
                    self.pending.push(r.connection)
                }
                BrokerAction::Event(BrokerEvent::AuthRequest(r)) => self.pending.push(r.connection),
                BrokerAction::Event(_) => {}
            }
        }
        for (id, c) in &self.conns {
            if let (true, Some(n)) = (c.open, self.broker.unwritten(*id)) {
                let sent = self.unwritten.get(id).copied().unwrap_or(0);
                assert_eq!(n, sent, "unwritten bytes of {id} miscounted");
            }
        }
    }
}

/// An authoriser that refuses by simple rules, so that refusals of every kind happen:
/// publishing under `x`, subscribing to `#`, and receiving on topics of odd length.
struct Picky;

impl Authorizer for Picky {
    fn may_publish(&self, _: &ClientInfo<'_>, topic: &TopicName) -> bool {
        !topic.starts_with('x')
    }
    fn may_subscribe(&self, _: &ClientInfo<'_>, filter: &TopicFilter) -> bool {
        filter.as_str() != "#"
    }
    fn may_receive(&self, _: &ClientInfo<'_>, topic: &TopicName) -> bool {
        topic.len().is_multiple_of(2)
    }
    fn checks_receipt(&self) -> bool {
        true
    }
}

/// A packet identifier from a byte (never 0).
fn pid(n: u8) -> PacketId {
    PacketId::new(u16::from(n) + 1).expect("1 to 256")
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let config = if first & 1 == 0 {
        {
            let mut c = BrokerConfig::default();
            c.max_queued_messages = 8;
            c
        }
    } else {
        {
            let mut c = BrokerConfig::default();
            c.connect_policy = ConnectPolicy::AskDriver;
            c.maximum_packet_size = 256;
            c.receive_maximum = 2;
            c.maximum_qos = QoS::AtLeastOnce;
            c.retain_available = false;
            c.topic_alias_maximum = 3;
            c.outbound_topic_aliases = true;
            c.server_keep_alive = Some(5);
            c.maximum_session_expiry = 60;
            c.max_queued_messages = 3;
            c.write_budget = 300;
            c.max_queued_qos0 = 4;
            c.pause_publishers_at = 2;
            c.write_timeout = Duration::from_secs(20);
            // Bit 1 of the first byte turns on the rest of the knobs (bit 2: an authoriser).
            if first & 2 != 0 {
                c.max_keep_alive = Some(10);
                c.server_keep_alive = None;
                c.reason_strings = false;
                c.reject_control_characters = true;
                c.max_in_flight = 1;
            }
            c
        }
    };
    let picky = first & 4 != 0;
    let now = Instant::ZERO;
    let mut broker = Broker::new(config);
    if picky {
        broker.set_authorizer(Box::new(Picky));
    }
    let mut t = Target {
        broker,
        now,
        conns: HashMap::new(),
        pending: Vec::new(),
        paused: HashSet::new(),
        unwritten: HashMap::new(),
    };
    let mut next_conn = 0u64;
    let mut current: HashMap<u64, ConnectionId> = HashMap::new();
    let mut seen = HashSet::new();

    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let arg = rest.first().copied().unwrap_or(0);
        let slot = u64::from(op >> 4) % CONNS;
        let id = *current.entry(slot).or_insert(ConnectionId(u64::MAX));
        match op % 11 {
            0 => {
                next_conn += 1;
                let id = ConnectionId(next_conn);
                current.insert(slot, id);
                seen.insert(id);
                t.conns.insert(
                    id,
                    Conn {
                        open: true,
                        receive_maximum: usize::from(u16::MAX),
                        ..Conn::default()
                    },
                );
                t.broker.handle_opened(t.now, id);
                t.drain();
            }
            1 => {
                // Raw bytes: the next `arg` bytes of input.
                let n = usize::from(arg).min(rest.len().saturating_sub(1));
                let chunk = rest.get(1..1 + n).unwrap_or_default().to_vec();
                rest = rest.get(1 + n..).unwrap_or_default();
                t.feed_bytes(id, &chunk);
            }
            2 => {
                let version = if arg & 1 == 0 {
                    ProtocolVersion::V3_1_1
                } else {
                    ProtocolVersion::V5
                };
                let client_id = ["a", "b", "", "a"][usize::from(arg >> 1) % 4];
                let mut c = Connect::new(version, MqttString::new(client_id).unwrap_or_default());
                c.clean_start = arg & 8 != 0 || client_id.is_empty();
                c.keep_alive = u16::from(arg >> 4);
                if version.is_v5() {
                    c.properties.session_expiry_interval = Some(u32::from(arg >> 5) * 10);
                    c.properties.receive_maximum = NonZeroU16::new(u16::from(arg % 3) + 1);
                    c.properties.topic_alias_maximum = Some(2);
                }
                if arg & 0x40 != 0 {
                    c.will = Some(mqtt_codec::Will {
                        topic: TopicName::from_static("a/b"),
                        payload: "w".into(),
                        qos: QoS::AtLeastOnce,
                        retain: arg & 0x80 != 0,
                        properties: Default::default(),
                    });
                }
                t.feed(id, Packet::Connect(Box::new(c)));
            }
            3 => {
                let filter = TopicFilter::new(FILTERS[usize::from(arg) % 4])
                    .unwrap_or_else(|_| TopicFilter::from_static("#"));
                let o =
                    SubscriptionOptions::qos(QoS::from_u8(arg >> 6).unwrap_or(QoS::ExactlyOnce));
                let s = Subscribe::new(pid(arg), vec![(filter, o)]);
                t.feed(id, Packet::Subscribe(s));
            }
            4 => {
                let mut p = Publish::new(
                    TopicName::from_static(TOPICS[usize::from(arg) % TOPICS.len()]),
                    vec![b'x'; usize::from(arg >> 2)],
                );
                let qos = QoS::from_u8((arg >> 3) % 3).unwrap_or_default();
                p.qos_pid = QosPid::new(qos, Some(pid(arg % 5))).unwrap_or(QosPid::AtMostOnce);
                p.retain = arg & 0x80 != 0;
                t.feed(id, Packet::Publish(p));
            }
            5 => {
                // Acknowledge what the broker has in flight on this connection.
                let Some(c) = t.conns.get(&id) else { continue };
                let Some((&pid, &qos)) = c
                    .in_flight
                    .iter()
                    .nth(usize::from(arg) % c.in_flight.len().max(1))
                else {
                    continue;
                };
                let ack = PubResponse::new(pid);
                let packet = match (qos, arg & 1) {
                    (QoS::AtLeastOnce, _) => Packet::PubAck(ack),
                    (_, 0) => Packet::PubRec(ack),
                    _ => Packet::PubComp(ack),
                };
                t.feed(id, packet);
            }
            6 => {
                t.feed(id, Packet::PubRel(PubResponse::new(pid(arg % 5))));
            }
            7 => {
                if t.conns.get(&id).is_some_and(|c| c.open) {
                    t.broker.handle_closed(t.now, id);
                    if let Some(c) = t.conns.get_mut(&id) {
                        c.open = false;
                    }
                    t.drain();
                }
            }
            8 => {
                t.now += Duration::from_millis(u64::from(arg) * 250);
                t.broker.handle_timeout(t.now);
                t.drain();
            }
            10 => {
                // The client reads: everything sent to it is written.
                let n = t.unwritten.remove(&id).unwrap_or(0);
                t.broker.handle_written(t.now, id, n);
                t.drain();
            }
            _ => {
                if let Some(conn) = t.pending.pop() {
                    let _ = match arg % 3 {
                        0 => t.broker.accept(t.now, conn, None),
                        1 => t.broker.reject(t.now, conn, ReasonCode::NOT_AUTHORIZED),
                        _ => t.broker.continue_auth(conn, None),
                    };
                    t.drain();
                }
            }
        }
        assert!(t.broker.connection_count() <= seen.len());
    }
});

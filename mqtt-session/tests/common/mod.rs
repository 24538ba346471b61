//! A harness for broker tests: scripted clients on in-memory links to one [`Broker`], under
//! simulated time.
//!
//! Every packet crossing a link is encoded with the sender's protocol version and decoded
//! again by the receiver (the broker with the context it asks for, a client with its own
//! version), so the codec is exercised on every hop and a packet the broker could not put on
//! the wire fails the test. What crosses is written to a transcript, one line per packet:
//! `name -> PACKET` for what a client sends, `name <- PACKET` for what it receives, and
//! `name <- [closed]` when the broker closes its connection. Persist operations are applied
//! to a [`MemoryStore`] and events are kept, so tests can check both.

#![allow(dead_code)] // each test binary uses part of it

use mqtt_session::time::Instant;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{
    Broker, BrokerAction, BrokerConfig, BrokerEvent, ConnectionId, MemoryStore, StoreOp,
};

/// One scripted client.
#[derive(Debug)]
pub struct Peer {
    pub version: ProtocolVersion,
    /// The open connection, if any.
    pub conn: Option<ConnectionId>,
    /// Packets received and not yet taken by the test.
    pub inbox: VecDeque<Packet>,
    /// Whether the client reads its socket: when not, what the broker sends stays in
    /// `unread` and is not reported written.
    pub reading: bool,
    /// Packets sent to a client that does not read, with their sizes.
    pub unread: VecDeque<(Packet, usize)>,
    /// The broker asked to stop reading from this client: what it sends waits in `held`.
    pub paused: bool,
    /// Bytes the client sent while the broker did not read them.
    pub held: VecDeque<BytesMut>,
}

pub struct Harness {
    pub broker: Broker,
    pub t0: Instant,
    pub now: Instant,
    peers: BTreeMap<String, Peer>,
    by_conn: HashMap<ConnectionId, String>,
    next_conn: u64,
    lines: Vec<String>,
    pub events: Vec<BrokerEvent>,
    pub persisted: Vec<StoreOp>,
    pub store: MemoryStore,
}

impl Harness {
    pub fn new(config: BrokerConfig) -> Self {
        Self::with_broker(Broker::new(config), Instant::ZERO)
    }

    pub fn with_broker(broker: Broker, now: Instant) -> Self {
        Self {
            broker,
            t0: now,
            now,
            peers: BTreeMap::new(),
            by_conn: HashMap::new(),
            next_conn: 0,
            lines: Vec::new(),
            events: Vec::new(),
            persisted: Vec::new(),
            store: MemoryStore::new(),
        }
    }

    /// The transcript since the last call.
    pub fn transcript(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }

    /// The events since the last call.
    pub fn take_events(&mut self) -> Vec<BrokerEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn peer(&self, name: &str) -> &Peer {
        &self.peers[name]
    }

    pub fn is_open(&self, name: &str) -> bool {
        self.peers.get(name).is_some_and(|p| p.conn.is_some())
    }

    /// Opens a new transport for `name` (closing nothing: see [`sever`](Self::sever)).
    pub fn open(&mut self, name: &str, version: ProtocolVersion) -> ConnectionId {
        self.next_conn += 1;
        let conn = ConnectionId(self.next_conn);
        let peer = self.peers.entry(name.to_string()).or_insert(Peer {
            version,
            conn: None,
            inbox: VecDeque::new(),
            reading: true,
            unread: VecDeque::new(),
            paused: false,
            held: VecDeque::new(),
        });
        peer.version = version;
        peer.conn = Some(conn);
        peer.inbox.clear();
        peer.reading = true;
        peer.unread.clear();
        peer.paused = false;
        peer.held.clear();
        self.by_conn.insert(conn, name.to_string());
        self.broker.handle_opened(self.now, conn);
        self.drain();
        conn
    }

    /// Sends `packet` from `name`: encoded with the peer's version, decoded by the broker.
    pub fn send(&mut self, name: &str, packet: Packet) {
        let peer = &self.peers[name];
        let version = match &packet {
            Packet::Connect(c) => c.protocol,
            _ => peer.version,
        };
        let Some(conn) = peer.conn else {
            panic!("{name} has no connection")
        };
        self.lines.push(format!("{name} -> {}", describe(&packet)));
        let bytes = packet
            .to_bytes(version)
            .unwrap_or_else(|e| panic!("test packet does not encode: {e}"));
        self.feed_or_hold(name, conn, bytes);
    }

    /// Hands `bytes` to the broker, or keeps them while it has paused reading from `name`.
    fn feed_or_hold(&mut self, name: &str, conn: ConnectionId, bytes: BytesMut) {
        let peer = self.peers.get_mut(name).unwrap();
        if peer.paused {
            peer.held.push_back(bytes);
        } else {
            self.feed(conn, bytes);
        }
    }

    /// The client stops reading its socket: what the broker sends to it is not written.
    pub fn stop_reading(&mut self, name: &str) {
        self.peers.get_mut(name).unwrap().reading = false;
        self.lines.push(format!("{name} -- stops reading"));
    }

    /// The client reads again: what waited arrives, and the broker hears it was written.
    pub fn resume_reading(&mut self, name: &str) {
        self.lines.push(format!("{name} -- reads again"));
        let peer = self.peers.get_mut(name).unwrap();
        peer.reading = true;
        let unread = std::mem::take(&mut peer.unread);
        let mut len = 0;
        for (packet, n) in unread {
            self.lines.push(format!("{name} <- {}", describe(&packet)));
            peer.inbox.push_back(packet);
            len += n;
        }
        if let Some(conn) = peer.conn {
            self.broker.handle_written(self.now, conn, len);
            self.drain();
        }
    }

    /// Whether the broker has paused reading from `name`.
    pub fn is_paused(&self, name: &str) -> bool {
        self.peers[name].paused
    }

    /// Packets sent to `name` that it has not read.
    pub fn unread(&self, name: &str) -> usize {
        self.peers[name].unread.len()
    }

    /// Sends raw bytes from `name` (for malformed input).
    pub fn send_raw(&mut self, name: &str, bytes: &[u8]) {
        let conn = self.peers[name].conn.expect("no connection");
        self.lines.push(format!("{name} -> bytes {}", hex(bytes)));
        self.feed_or_hold(name, conn, BytesMut::from(bytes));
    }

    fn feed(&mut self, conn: ConnectionId, mut bytes: BytesMut) {
        while !bytes.is_empty() {
            let cx = self.broker.decode_context(conn);
            match Packet::decode(&mut bytes, &cx) {
                Ok(Some(p)) => self.broker.handle_packet(self.now, conn, p),
                Ok(None) => panic!("harness sends whole packets"),
                Err(e) => {
                    self.broker.handle_decode_error(self.now, conn, &e);
                    break;
                }
            }
            self.drain();
        }
        self.drain();
    }

    /// The transport of `name` fails (the broker is told; nothing is sent).
    pub fn sever(&mut self, name: &str) {
        let Some(conn) = self.peers.get_mut(name).and_then(|p| p.conn.take()) else {
            return;
        };
        self.lines.push(format!("{name} -- severed"));
        self.broker.handle_closed(self.now, conn);
        self.drain();
    }

    /// Simulated time passes: every deadline on the way fires at its moment.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(t) = self.broker.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.broker.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    /// Carries out every pending action of the broker.
    pub fn drain(&mut self) {
        while let Some(a) = self.broker.poll_action() {
            match a {
                BrokerAction::Send {
                    connection,
                    version,
                    packet,
                    len: counted,
                } => {
                    let name = self.by_conn[&connection].clone();
                    let bytes = packet.to_bytes(version).unwrap_or_else(|e| {
                        panic!("broker sent a packet that does not encode: {e}: {packet:?}")
                    });
                    let peer = self.peers.get_mut(&name).unwrap();
                    if peer.conn != Some(connection) {
                        continue; // an old connection of this peer
                    }
                    // What the hub counts against the write budget is what goes on the
                    // wire; for a PUBLISH to a client that takes topic aliases, at most
                    // that (room for an alias is counted). A PINGRESP the connection
                    // answered itself counts nothing.
                    match &packet {
                        // (The hub answers, and counts, a PINGREQ held before CONNACK.)
                        Packet::PingResp => assert!(counted == 0 || counted == bytes.len()),
                        Packet::Publish(_) => {
                            assert!(bytes.len() <= counted, "a PUBLISH outgrew its count");
                        }
                        _ => assert_eq!(bytes.len(), counted, "counted {packet:?} wrong"),
                    }
                    let len = counted;
                    let cx = DecodeContext::new(version);
                    let got = Packet::decode_exact(bytes.freeze(), &cx)
                        .unwrap_or_else(|e| panic!("broker's packet does not decode: {e}"));
                    assert_eq!(got, packet, "packet changed on the wire");
                    if !peer.reading {
                        peer.unread.push_back((got, len));
                        continue;
                    }
                    self.lines.push(format!("{name} <- {}", describe(&got)));
                    peer.inbox.push_back(got);
                    self.broker.handle_written(self.now, connection, len);
                }
                BrokerAction::PauseReading(conn) | BrokerAction::ResumeReading(conn) => {
                    let name = self.by_conn[&conn].clone();
                    let peer = self.peers.get_mut(&name).unwrap();
                    if peer.conn != Some(conn) {
                        continue;
                    }
                    peer.paused = matches!(a, BrokerAction::PauseReading(_));
                    let verb = if peer.paused { "paused" } else { "resumed" };
                    self.lines.push(format!("{name} -- {verb}"));
                    // Packet by packet, as long as the broker does not pause it again.
                    while let Some(peer) = self.peers.get_mut(&name)
                        && !peer.paused
                        && peer.conn == Some(conn)
                        && let Some(bytes) = peer.held.pop_front()
                    {
                        self.feed(conn, bytes);
                    }
                }
                BrokerAction::Close(conn) => {
                    let name = self.by_conn[&conn].clone();
                    let peer = self.peers.get_mut(&name).unwrap();
                    if peer.conn == Some(conn) {
                        peer.conn = None;
                        self.lines.push(format!("{name} <- [closed]"));
                    }
                }
                BrokerAction::Persist(op) => {
                    self.store.apply(&op);
                    self.persisted.push(op);
                }
                BrokerAction::Event(e) => self.events.push(e),
            }
        }
        // Everything a reading client was sent has been reported written: the broker's
        // count of the bytes it handed out matches what went on the wire.
        for peer in self.peers.values() {
            if let Some(conn) = peer.conn
                && peer.reading
                && let Some(n) = self.broker.unwritten(conn)
            {
                assert_eq!(n, 0, "the broker's unwritten count drifted for {conn}");
            }
        }
    }

    /// Takes the next packet `name` received.
    pub fn recv(&mut self, name: &str) -> Option<Packet> {
        self.peers.get_mut(name)?.inbox.pop_front()
    }

    /// Takes packets `name` received up to and including the next PUBLISH.
    pub fn recv_publish(&mut self, name: &str) -> Option<Publish> {
        while let Some(p) = self.recv(name) {
            if let Packet::Publish(p) = p {
                return Some(p);
            }
        }
        None
    }

    /// Opens a connection for `name` and sends CONNECT; returns the connection.
    pub fn connect_with(&mut self, name: &str, connect: Connect) -> ConnectionId {
        let conn = self.open(name, connect.protocol);
        self.send(name, Packet::Connect(Box::new(connect)));
        conn
    }

    /// Connects `name` with client id `name`, the given version and Clean Start.
    pub fn connect(&mut self, name: &str, version: ProtocolVersion, clean: bool) -> ConnectionId {
        let mut c = Connect::new(version, MqttString::new(name.to_string()).unwrap());
        c.clean_start = clean;
        c.keep_alive = 0;
        self.connect_with(name, c)
    }

    /// Connects a v5 client with a Session Expiry Interval.
    pub fn connect_v5_session(&mut self, name: &str, clean: bool, expiry: u32) -> ConnectionId {
        let mut c = Connect::new(
            ProtocolVersion::V5,
            MqttString::new(name.to_string()).unwrap(),
        );
        c.clean_start = clean;
        c.keep_alive = 0;
        c.properties.session_expiry_interval = Some(expiry);
        self.connect_with(name, c)
    }

    pub fn subscribe(&mut self, name: &str, id: u16, filters: &[(&str, QoS)]) {
        let f = filters
            .iter()
            .map(|(f, q)| {
                (
                    TopicFilter::new(f.to_string()).unwrap(),
                    SubscriptionOptions::qos(*q),
                )
            })
            .collect();
        self.send(name, Packet::Subscribe(Subscribe::new(pid(id), f)));
    }

    pub fn publish(&mut self, name: &str, topic: &str, payload: &str, qos: QoS, id: u16) {
        let mut p = Publish::new(
            TopicName::new(topic.to_string()).unwrap(),
            payload.to_string(),
        );
        p.qos_pid = QosPid::new(qos, PacketId::new(id)).unwrap();
        self.send(name, Packet::Publish(p));
    }
}

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn rc(r: ReasonCode) -> String {
    format!("0x{:02X}", r.0)
}

/// One line per packet: the fields tests care about, defaults left out. The Reason String
/// of CONNACK and the acknowledgements shows as `reason='...'`.
pub fn describe(p: &Packet) -> String {
    let reason = |r: &Option<MqttString>| {
        r.as_ref()
            .map_or(String::new(), |r| format!(" reason='{r}'"))
    };
    let ack = |name: &str, a: &PubResponse| {
        let mut s = format!("{name} {}", a.packet_id);
        if a.reason_code != ReasonCode::SUCCESS {
            s += &format!(" {}", rc(a.reason_code));
        }
        s + &reason(&a.properties.reason_string)
    };
    match p {
        Packet::Connect(c) => {
            let mut s = format!(
                "CONNECT {} id={} clean={}",
                c.protocol, c.client_id, c.clean_start as u8
            );
            if let Some(e) = c.properties.session_expiry_interval {
                s += &format!(" expiry={e}");
            }
            if let Some(w) = &c.will {
                s += &format!(" will={}", w.topic);
            }
            s
        }
        Packet::ConnAck(c) => {
            let mut s = format!(
                "CONNACK {} sp={}",
                rc(c.reason_code),
                c.session_present as u8
            );
            let p = &c.properties;
            if let Some(id) = &p.assigned_client_identifier {
                s += &format!(" assigned={id}");
            }
            if let Some(e) = p.session_expiry_interval {
                s += &format!(" expiry={e}");
            }
            if let Some(r) = p.receive_maximum {
                s += &format!(" receive_max={r}");
            }
            if let Some(q) = p.maximum_qos {
                s += &format!(" max_qos={}", q as u8);
            }
            if let Some(r) = p.retain_available {
                s += &format!(" retain={}", r as u8);
            }
            if let Some(m) = p.maximum_packet_size {
                s += &format!(" max_packet={m}");
            }
            if let Some(t) = p.topic_alias_maximum {
                s += &format!(" alias_max={t}");
            }
            if let Some(k) = p.server_keep_alive {
                s += &format!(" keep_alive={k}");
            }
            if let Some(w) = p.wildcard_subscription_available {
                s += &format!(" wildcard={}", w as u8);
            }
            if let Some(w) = p.shared_subscription_available {
                s += &format!(" shared={}", w as u8);
            }
            if let Some(w) = p.subscription_identifiers_available {
                s += &format!(" sub_ids={}", w as u8);
            }
            if let Some(m) = &p.authentication_method {
                s += &format!(" auth={m}");
            }
            if let Some(d) = &p.authentication_data {
                s += &format!(" data={}", String::from_utf8_lossy(d));
            }
            s + &reason(&p.reason_string)
        }
        Packet::Publish(p) => {
            let mut s = format!("PUBLISH {} q{}", p.topic, p.qos() as u8);
            if let Some(id) = p.qos_pid.packet_id() {
                s += &format!(" id={id}");
            }
            if p.dup {
                s += " dup";
            }
            if p.retain {
                s += " retain";
            }
            let pr = &p.properties;
            if let Some(a) = pr.topic_alias {
                s += &format!(" alias={a}");
            }
            if !pr.subscription_identifiers.is_empty() {
                let ids: Vec<String> = pr
                    .subscription_identifiers
                    .iter()
                    .map(|i| i.get().to_string())
                    .collect();
                s += &format!(" sub_ids={}", ids.join(","));
            }
            if let Some(e) = pr.message_expiry_interval {
                s += &format!(" expiry={e}");
            }
            s += &format!(" '{}'", String::from_utf8_lossy(&p.payload));
            s
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
            let mut out = format!("SUBSCRIBE {} {}", s.packet_id, f.join(","));
            if let Some(i) = s.properties.subscription_identifier {
                out += &format!(" sub_id={}", i.get());
            }
            out
        }
        Packet::SubAck(s) => {
            let c: Vec<String> = s.reason_codes.iter().map(|r| rc(*r)).collect();
            format!("SUBACK {} {}", s.packet_id, c.join(",")) + &reason(&s.properties.reason_string)
        }
        Packet::Unsubscribe(u) => {
            let f: Vec<&str> = u.filters.iter().map(|f| f.as_str()).collect();
            format!("UNSUBSCRIBE {} {}", u.packet_id, f.join(","))
        }
        Packet::UnsubAck(u) => {
            let c: Vec<String> = u.reason_codes.iter().map(|r| rc(*r)).collect();
            format!("UNSUBACK {} {}", u.packet_id, c.join(","))
                .trim_end()
                .to_string()
                + &reason(&u.properties.reason_string)
        }
        Packet::PingReq => "PINGREQ".into(),
        Packet::PingResp => "PINGRESP".into(),
        Packet::Disconnect(d) => {
            let mut s = format!("DISCONNECT {}", rc(d.reason_code));
            if let Some(e) = d.properties.session_expiry_interval {
                s += &format!(" expiry={e}");
            }
            s
        }
        Packet::Auth(a) => format!(
            "AUTH {} {}",
            rc(a.reason_code),
            a.properties
                .authentication_data
                .as_ref()
                .map_or(String::new(), |d| String::from_utf8_lossy(d).into_owned())
        )
        .trim_end()
        .to_string(),
    }
}

/// `s` split into lines, for comparing with a transcript.
pub fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

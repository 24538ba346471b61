//! The broker with real client state machines on in-memory links, under random sequences of
//! connects, subscribes, publishes, disconnects, severed links and passing time.
//!
//! Properties, for clients whose sessions persist (v5 Session Expiry 1 hour, 3.1.1 Clean
//! Session 0): nothing panics; every QoS 1/2 message the broker acknowledged reaches every
//! subscriber whose subscription was acknowledged before it was published, at least once
//! when delivered at QoS 1 and exactly once at QoS 2 ([MQTT-4.3.2-*], [MQTT-4.3.3-10]);
//! in the order each publisher sent them per topic and QoS ([MQTT-4.6.0-5],
//! [MQTT-4.6.0-6]); and no client ever loses its session ([MQTT-3.1.2-5];
//! 3.1.1 [MQTT-3.1.2-4]).

use mqtt_session::time::Instant;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{self, Broker, BrokerConfig, ConnectionId};
use mqtt_session::client::{self, Client, ClientConfig, Message};
use proptest::prelude::*;

const CLIENTS: usize = 3;
const TOPICS: [&str; 2] = ["t/a", "t/b"];
const FILTERS: [&str; 3] = ["t/a", "t/+", "t/#"];

#[derive(Debug, Clone)]
enum Op {
    Connect(usize),
    Subscribe(usize, usize),
    Publish(usize, usize, QoS),
    Disconnect(usize),
    Sever(usize),
    Advance(u64),
    /// Move this many packets across the links (the rest stay in flight, and are lost if
    /// their link is severed first).
    Deliver(usize),
    /// Move packets until nothing moves.
    Quiesce,
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CLIENTS;
    prop_oneof![
        2 => c.clone().prop_map(Op::Connect),
        2 => (c.clone(), 0..FILTERS.len()).prop_map(|(i, f)| Op::Subscribe(i, f)),
        5 => (c.clone(), 0..TOPICS.len(), qos()).prop_map(|(i, t, q)| Op::Publish(i, t, q)),
        1 => c.clone().prop_map(Op::Disconnect),
        1 => c.prop_map(Op::Sever),
        1 => (1u64..50).prop_map(Op::Advance),
        6 => (1usize..12).prop_map(Op::Deliver),
        2 => Just(Op::Quiesce),
    ]
}

/// One message as its publisher issued it.
#[derive(Debug, Clone)]
struct Sent {
    from: usize,
    topic: usize,
    qos: QoS,
    /// Step at which it was issued.
    at: usize,
    /// The broker took it (PUBACK or PUBCOMP with a success code).
    accepted: bool,
}

struct World {
    broker: Broker,
    now: Instant,
    clients: Vec<Client>,
    links: Vec<Option<Link>>,
    next_conn: u64,
    step: usize,
    sent: BTreeMap<u64, Sent>,
    /// Per client: the payload of each QoS 1/2 PUBLISH awaiting its handshake.
    pending: Vec<HashMap<PacketId, u64>>,
    /// Per client and filter: the step at which its SUBACK granted it, and the QoS.
    subscribed: Vec<BTreeMap<usize, (usize, QoS)>>,
    /// Per client: messages received, in order (payload, QoS).
    received: Vec<Vec<(u64, QoS)>>,
    /// Per client, the payloads of the QoS 1/2 PUBLISH packets it put on the wire, in
    /// order, retransmissions included: what the broker may have received, in that order.
    transmitted: Vec<Vec<u64>>,
    sub_qos: [[QoS; 3]; CLIENTS],
    lost_session: bool,
}

struct Link {
    conn: ConnectionId,
    to_broker: VecDeque<BytesMut>,
    /// Encoded packets, and what each counts against the broker's write budget.
    to_client: VecDeque<(BytesMut, usize)>,
    /// The broker asked to stop reading from this client.
    paused: bool,
}

impl World {
    fn new(versions: [bool; CLIENTS], sub_qos: [[QoS; 3]; CLIENTS]) -> Self {
        let clients = (0..CLIENTS)
            .map(|i| {
                let v = if versions[i] {
                    ProtocolVersion::V5
                } else {
                    ProtocolVersion::V3_1_1
                };
                let mut c = ClientConfig::new(v, MqttString::new(format!("c{i}")).unwrap());
                c.clean_start = false;
                c.keep_alive = 30;
                if v.is_v5() {
                    c.properties.session_expiry_interval = Some(3600);
                }
                Client::new(c)
            })
            .collect();
        Self {
            // A small write budget and early backpressure, so that flow control is in play:
            // the links report bytes written as the client takes them.
            broker: Broker::new({
                let mut c = BrokerConfig::default();
                c.max_queued_messages = 10_000;
                c.write_budget = 256;
                c.pause_publishers_at = 4;
                c.write_timeout = Duration::from_secs(5);
                c
            }),
            now: Instant::ZERO,
            clients,
            links: (0..CLIENTS).map(|_| None).collect(),
            next_conn: 0,
            step: 0,
            sent: BTreeMap::new(),
            pending: vec![HashMap::new(); CLIENTS],
            subscribed: vec![BTreeMap::new(); CLIENTS],
            received: vec![Vec::new(); CLIENTS],
            transmitted: vec![Vec::new(); CLIENTS],
            sub_qos,
            lost_session: false,
        }
    }

    fn apply(&mut self, op: &Op) {
        self.step += 1;
        let now = self.now;
        match *op {
            Op::Connect(i) => self.connect(i),
            Op::Subscribe(i, f) => {
                let filter = TopicFilter::new(FILTERS[f]).unwrap();
                let o = SubscriptionOptions::qos(self.sub_qos[i][f]);
                let _ = self.clients[i].subscribe(now, vec![(filter, o)], Default::default());
            }
            Op::Publish(i, t, q) => {
                let payload = self.sent.len() as u64;
                let msg = Message::new(TopicName::new(TOPICS[t]).unwrap(), payload.to_string())
                    .with_qos(q);
                if let Ok(id) = self.clients[i].publish(now, msg) {
                    if let Some(id) = id {
                        self.pending[i].insert(id, payload);
                    }
                    let s = Sent {
                        from: i,
                        topic: t,
                        qos: q,
                        at: self.step,
                        accepted: false,
                    };
                    self.sent.insert(payload, s);
                }
            }
            Op::Disconnect(i) => {
                let _ = self.clients[i].disconnect(now, Disconnect::default());
            }
            Op::Sever(i) => self.sever(i),
            Op::Advance(s) => self.advance(Duration::from_secs(s)),
            Op::Deliver(n) => self.pump(n),
            Op::Quiesce => self.pump(usize::MAX),
        }
        self.pump(0);
    }

    fn connect(&mut self, i: usize) {
        if self.clients[i].state() != client::ConnectionState::Disconnected {
            return;
        }
        self.next_conn += 1;
        let conn = ConnectionId(self.next_conn);
        self.broker.handle_opened(self.now, conn);
        self.links[i] = Some(Link {
            conn,
            to_broker: VecDeque::new(),
            to_client: VecDeque::new(),
            paused: false,
        });
        self.clients[i].connect(self.now).unwrap();
    }

    fn sever(&mut self, i: usize) {
        if let Some(l) = self.links[i].take() {
            self.broker.handle_closed(self.now, l.conn);
            self.clients[i].handle_closed(self.now);
        }
    }

    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        loop {
            let next = self
                .clients
                .iter()
                .filter_map(|c| c.poll_timeout())
                .chain(self.broker.poll_timeout())
                .min();
            match next {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.broker.handle_timeout(self.now);
                    for c in &mut self.clients {
                        c.handle_timeout(self.now);
                    }
                    self.pump(usize::MAX);
                }
                _ => break,
            }
        }
        self.now = target;
    }

    /// Carries out every action, and moves up to `budget` packets across the links
    /// (round-robin), until nothing moves.
    fn pump(&mut self, mut budget: usize) {
        loop {
            let mut moved = false;
            for i in 0..CLIENTS {
                while let Some(a) = self.clients[i].poll_action() {
                    moved = true;
                    self.client_action(i, a);
                }
            }
            while let Some(a) = self.broker.poll_action() {
                moved = true;
                self.broker_action(a);
            }
            for i in 0..CLIENTS {
                if budget == 0 {
                    break;
                }
                let Some(l) = &mut self.links[i] else {
                    continue;
                };
                if let Some(mut b) = (!l.paused).then(|| l.to_broker.pop_front()).flatten() {
                    moved = true;
                    budget -= 1;
                    let conn = l.conn;
                    let cx = self.broker.decode_context(conn);
                    match Packet::decode(&mut b, &cx) {
                        Ok(Some(p)) => self.broker.handle_packet(self.now, conn, p),
                        other => panic!("client packet does not decode: {other:?}"),
                    }
                    assert!(b.is_empty());
                }
                let Some(l) = &mut self.links[i] else {
                    continue;
                };
                if budget == 0 {
                    break;
                }
                if let Some((mut b, counted)) = l.to_client.pop_front() {
                    moved = true;
                    budget -= 1;
                    self.broker.handle_written(self.now, l.conn, counted);
                    let cx = self.clients[i].config().decode_context();
                    match Packet::decode(&mut b, &cx) {
                        Ok(Some(p)) => self.clients[i].handle_packet(self.now, p),
                        other => panic!("broker packet does not decode: {other:?}"),
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn client_action(&mut self, i: usize, a: client::Action) {
        match a {
            client::Action::Send(p) => {
                if let Packet::Publish(m) = &p
                    && m.qos() != QoS::AtMostOnce
                    && let Ok(payload) = std::str::from_utf8(&m.payload).unwrap_or("").parse()
                {
                    self.transmitted[i].push(payload);
                }
                let version = self.clients[i].protocol();
                let bytes = p.to_bytes(version).expect("client packet encodes");
                if let Some(l) = &mut self.links[i] {
                    l.to_broker.push_back(bytes);
                }
            }
            client::Action::Close => {
                if let Some(l) = self.links[i].take() {
                    self.broker.handle_closed(self.now, l.conn);
                }
            }
            client::Action::Persist(_) => {}
            client::Action::Event(e) => self.client_event(i, e),
        }
    }

    fn client_event(&mut self, i: usize, e: client::Event) {
        match e {
            client::Event::Message(p) => {
                let payload: u64 = std::str::from_utf8(&p.payload).unwrap().parse().unwrap();
                self.received[i].push((payload, p.qos()));
            }
            client::Event::Published(done) => {
                if let Some(payload) = self.pending[i].remove(&done.packet_id)
                    && !done.reason_code.is_error()
                    && let Some(s) = self.sent.get_mut(&payload)
                {
                    s.accepted = true;
                }
            }
            client::Event::PublishDropped { .. } => self.lost_session = true,
            client::Event::Subscribed(s) => {
                for (filter, _, rc) in s.filters {
                    let f = FILTERS.iter().position(|x| *x == filter.as_str()).unwrap();
                    let q = QoS::from_u8(rc.0).expect("granted");
                    self.subscribed[i].entry(f).or_insert((self.step, q));
                }
            }
            _ => {}
        }
    }

    fn broker_action(&mut self, a: broker::BrokerAction) {
        match a {
            broker::BrokerAction::Send {
                connection,
                version,
                packet,
                len,
            } => {
                let bytes = packet.to_bytes(version).expect("broker packet encodes");
                if let Some(l) = self
                    .links
                    .iter_mut()
                    .flatten()
                    .find(|l| l.conn == connection)
                {
                    l.to_client.push_back((bytes, len));
                }
            }
            broker::BrokerAction::Close(conn) => {
                if let Some(i) = self
                    .links
                    .iter()
                    .position(|l| l.as_ref().is_some_and(|l| l.conn == conn))
                {
                    self.links[i] = None;
                    self.clients[i].handle_closed(self.now);
                }
            }
            broker::BrokerAction::PauseReading(conn)
            | broker::BrokerAction::ResumeReading(conn) => {
                let pause = matches!(a, broker::BrokerAction::PauseReading(_));
                if let Some(l) = self.links.iter_mut().flatten().find(|l| l.conn == conn) {
                    assert_ne!(l.paused, pause, "paused or resumed twice");
                    l.paused = pause;
                }
            }
            broker::BrokerAction::Persist(_) => {}
            broker::BrokerAction::Event(_) => {}
        }
    }

    /// Everyone connects and everything in flight completes.
    fn settle(&mut self) {
        for _ in 0..20 {
            for i in 0..CLIENTS {
                self.step += 1;
                self.connect(i);
            }
            self.pump(usize::MAX);
            let busy = self
                .clients
                .iter()
                .any(|c| c.in_flight() > 0 || c.queued() > 0);
            if !busy {
                return;
            }
            self.advance(Duration::from_secs(1));
        }
    }

    fn check(&self) -> Result<(), TestCaseError> {
        prop_assert!(!self.lost_session, "a client lost its session");
        for (payload, s) in &self.sent {
            if s.qos == QoS::AtMostOnce || !s.accepted {
                continue;
            }
            for sub in 0..CLIENTS {
                let granted = FILTERS
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| matches_filter(f, TOPICS[s.topic]))
                    .filter_map(|(f, _)| self.subscribed[sub].get(&f))
                    .filter(|(step, _)| *step < s.at)
                    .map(|(_, q)| *q)
                    .max();
                let Some(granted) = granted else { continue };
                let qos = granted.min(s.qos);
                let n = self.received[sub]
                    .iter()
                    .filter(|(p, _)| p == payload)
                    .count();
                match qos {
                    QoS::AtMostOnce => {}
                    QoS::AtLeastOnce => prop_assert!(n >= 1, "c{sub} lost QoS 1 message {payload}"),
                    QoS::ExactlyOnce => {
                        prop_assert_eq!(n, 1, "c{} got QoS 2 message {} {} times", sub, payload, n)
                    }
                }
            }
        }
        // Per subscriber: first receipts of each publisher's messages on one topic at one
        // QoS follow the order in which the broker received them ([MQTT-4.6.0-6]). The
        // broker receives a message again when its publisher sends it again for want of an
        // acknowledgement, and may then route it to a subscription made meanwhile, so the
        // order to follow is the publisher's transmissions, retransmissions included: the
        // first receipts must be a subsequence of them. (A message first received at QoS 0
        // and later at QoS 1 is a duplicate the second time.)
        for sub in 0..CLIENTS {
            let mut seen = std::collections::HashSet::new();
            let mut firsts: HashMap<(usize, usize, QoS), Vec<u64>> = HashMap::new();
            for (payload, q) in &self.received[sub] {
                if !seen.insert(*payload) || *q == QoS::AtMostOnce {
                    continue;
                }
                let s = &self.sent[payload];
                firsts
                    .entry((s.from, s.topic, s.qos))
                    .or_default()
                    .push(*payload);
            }
            for ((from, topic, qos), got) in firsts {
                let mut wire = self.transmitted[from].iter().filter(|p| {
                    let s = &self.sent[*p];
                    s.topic == topic && s.qos == qos
                });
                for payload in &got {
                    prop_assert!(
                        wire.any(|p| p == payload),
                        "c{sub}: first receipts {got:?} do not follow c{from}'s transmissions {:?}",
                        self.transmitted[from]
                    );
                }
            }
        }
        Ok(())
    }
}

proptest! {
    // 128 cases by default; PROPTEST_CASES asks for more (or fewer), as proptest's own
    // default does.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(128),
        ..ProptestConfig::default()
    })]

    #[test]
    fn persistent_sessions_never_lose_qos1_or_qos2_messages(
        versions in prop::array::uniform3(any::<bool>()),
        sub_qos in prop::array::uniform3(prop::array::uniform3(qos())),
        initial in prop::array::uniform3(prop::array::uniform3(any::<bool>())),
        ops in prop::collection::vec(op(), 1..100),
    ) {
        let mut w = World::new(versions, sub_qos);
        // Everyone starts connected with some subscriptions, so that most messages have
        // somewhere to go.
        for (i, filters) in initial.iter().enumerate() {
            w.apply(&Op::Connect(i));
            w.apply(&Op::Quiesce);
            for (f, on) in filters.iter().enumerate() {
                if *on {
                    w.apply(&Op::Subscribe(i, f));
                }
            }
            w.apply(&Op::Quiesce);
        }
        for op in &ops {
            w.apply(op);
        }
        w.settle();
        w.check()?;
    }
}

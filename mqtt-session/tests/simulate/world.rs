//! The world: real `Client`s and the `Broker`, their links as byte streams with latency,
//! stepped in simulated time, with the faults a plan asks for. What happens is recorded
//! in the model (`check.rs`) as it happens.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{
    self, Broker, BrokerAction, BrokerConfig, BrokerEvent, ConnectionId, MemoryStore, StoreOp,
};
use mqtt_session::client::{self, Client, ClientConfig, Message};
use mqtt_session::event::CloseCause;
use mqtt_session::store::{MemorySessionStore, OutgoingState, SessionOp};
use mqtt_session::time::Instant;
use proptest::prelude::RngExt;
use proptest::test_runner::TestRng;

use crate::check::{Model, Violation};
use crate::common::describe;
use crate::plan::{self, Action, Durability, FILTERS, Plan, SHARED, TOPICS};

/// A bug planted in the harness, to show that the invariants catch what it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plant {
    /// The store never receives the broker's `PutOutgoing` of a QoS 1 message, as if the
    /// broker forgot to persist it.
    DropOutgoingPersist,
    /// A new PUBLISH the broker sends to a client takes the packet identifier of one still
    /// in flight to it, when there is one.
    ReusePacketId,
}

/// Where the broker's store operations go.
pub enum Storage {
    /// The reference store, in memory: intervals start again at a restart.
    Memory(MemoryStore),
    /// The crash-safe store in a file (redb), reopened at each restart: intervals count
    /// across it in wall-clock time (the simulated clock, read as a date).
    #[cfg(feature = "persist")]
    File(
        Option<Box<mqtt_session::persist::BrokerStore>>,
        std::path::PathBuf,
    ),
}

/// The simulated clock as a wall-clock date.
#[cfg(feature = "persist")]
fn wall(now: Instant) -> std::time::SystemTime {
    std::time::UNIX_EPOCH
        + Duration::from_secs(1_800_000_000)
        + Duration::from_micros(now.as_micros())
}

#[cfg(feature = "persist")]
fn store_error(e: impl std::fmt::Display) -> Violation {
    Violation::new("the broker's store works", e.to_string())
}

impl Storage {
    /// A store in a new file named for this process and seed.
    #[cfg(feature = "persist")]
    pub fn file(seed: u64) -> Result<Storage, Violation> {
        let path =
            std::env::temp_dir().join(format!("mqtt-simulate-{}-{seed}.redb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let store = mqtt_session::persist::BrokerStore::open(&path).map_err(store_error)?;
        Ok(Storage::File(Some(Box::new(store)), path))
    }

    #[cfg_attr(not(feature = "persist"), allow(unused_variables))]
    fn apply(&mut self, op: &StoreOp, now: Instant) -> Result<(), Violation> {
        match self {
            Storage::Memory(m) => m.apply(op),
            #[cfg(feature = "persist")]
            Storage::File(s, _) => {
                let s = s.as_mut().expect("open");
                s.apply(op, wall(now)).map_err(store_error)?;
            }
        }
        Ok(())
    }

    fn commit(&mut self, now: Instant) -> Result<(), Violation> {
        #[cfg(feature = "persist")]
        if let Storage::File(s, _) = self {
            s.as_mut()
                .expect("open")
                .commit(wall(now))
                .map_err(store_error)?;
        }
        let _ = now;
        Ok(())
    }

    /// What the store holds for a broker starting at `now`; a file is closed and opened
    /// again first, as a new process would.
    #[cfg_attr(not(feature = "persist"), allow(unused_variables))]
    fn restart(&mut self, now: Instant) -> Result<broker::BrokerSnapshot, Violation> {
        match self {
            Storage::Memory(m) => Ok(m.snapshot()),
            #[cfg(feature = "persist")]
            Storage::File(s, path) => {
                // Uncommitted operations die with the process.
                drop(s.take());
                let store =
                    mqtt_session::persist::BrokerStore::open(&*path).map_err(store_error)?;
                let snapshot = store.snapshot(wall(now)).map_err(store_error)?;
                *s = Some(Box::new(store));
                Ok(snapshot)
            }
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        #[cfg(feature = "persist")]
        if let Storage::File(s, path) = self {
            drop(s.take());
            let _ = std::fs::remove_file(&*path);
        }
    }
}

/// One direction of a link: chunks of bytes on their way, and what the receiving end has
/// of an unfinished packet.
#[derive(Default)]
struct Pipe {
    chunks: VecDeque<Chunk>,
    inbuf: BytesMut,
    /// Nothing is taken from it before this time (a held direction, a reader that stopped).
    held_until: Instant,
}

struct Chunk {
    at: Instant,
    bytes: Bytes,
    /// What the broker counts written once this chunk reaches the client (down only).
    counted: usize,
}

impl Pipe {
    fn due(&self, now: Instant) -> bool {
        self.chunks.front().is_some_and(|c| c.at <= now) && self.held_until <= now
    }

    fn next(&self) -> Option<Instant> {
        self.chunks.front().map(|c| c.at.max(self.held_until))
    }

    fn last_at(&self) -> Option<Instant> {
        self.chunks.back().map(|c| c.at)
    }
}

/// One network connection between a client and the broker.
struct Link {
    client: usize,
    conn: ConnectionId,
    /// Client to broker.
    up: Pipe,
    /// Broker to client.
    down: Pipe,
    /// The client's side is open (its process has it and has not closed it).
    client_open: bool,
    /// The broker's side is open.
    broker_open: bool,
    /// The broker asked not to read from it.
    paused: bool,
    /// Cut: nothing more gets through, whatever either side writes.
    cut: bool,
    /// Reading resumed: what arrived meanwhile is to be handed over.
    resumed: bool,
    /// When the client's side learns that the link is gone.
    client_notice: Option<Instant>,
    /// When the broker's side learns that the link is gone.
    broker_notice: Option<Instant>,
    latency: u64,
}

/// A client and what its process keeps.
struct Peer {
    client: Client,
    store: MemorySessionStore,
    link: Option<usize>,
    /// The process dies after this many more of its actions.
    crash_in: Option<usize>,
}

pub struct World {
    pub plan: Plan,
    pub now: Instant,
    broker: Broker,
    config: BrokerConfig,
    store: Storage,
    /// When the store last committed (a session connected at a crash counts as gone
    /// since then, for a store that keeps time).
    last_commit: Instant,
    /// The store operations of the broker's current turn (one input), committed together
    /// when the turn ends, and the actions that came after the first of them, carried out
    /// once they are committed: as a driver must (see `BrokerAction::Persist`).
    txn: Vec<StoreOp>,
    deferred: Vec<BrokerAction>,
    broker_crash_in: Option<usize>,
    peers: Vec<Peer>,
    links: Vec<Link>,
    by_conn: HashMap<ConnectionId, usize>,
    next_conn: u64,
    net: TestRng,
    pub model: Model,
    plant: Option<Plant>,
    /// The transcript, when recording.
    pub log: Option<Vec<String>>,
}

fn us(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl World {
    pub fn new(plan: Plan, seed: u64, plant: Option<Plant>, record: bool, store: Storage) -> World {
        let k = &plan.broker;
        let mut config = BrokerConfig::default();
        config.max_queued_messages = 100_000;
        config.max_queued_qos0 = 100_000;
        config.write_budget = k.write_budget;
        config.pause_publishers_at = k.pause_publishers_at;
        config.receive_maximum = k.receive_maximum;
        config.max_in_flight = k.max_in_flight;
        config.topic_alias_maximum = k.topic_alias_maximum;
        config.outbound_topic_aliases = k.outbound_topic_aliases;
        config.write_timeout = Duration::from_secs(k.write_timeout_secs);
        let peers = (0..plan.clients.len())
            .map(|i| Peer {
                client: new_client(&plan, i, &MemorySessionStore::new()),
                store: MemorySessionStore::new(),
                link: None,
                crash_in: None,
            })
            .collect();
        let model = Model::new(&plan);
        World {
            broker: Broker::new(config.clone()),
            config,
            store,
            last_commit: Instant::ZERO,
            txn: Vec::new(),
            deferred: Vec::new(),
            broker_crash_in: None,
            peers,
            links: Vec::new(),
            by_conn: HashMap::new(),
            next_conn: 0,
            net: plan::rng(seed, 1),
            model,
            plant,
            log: record.then(Vec::new),
            now: Instant::ZERO,
            plan,
        }
    }

    fn note(&mut self, what: impl FnOnce() -> String) {
        if let Some(log) = &mut self.log {
            let t = self.now.as_micros();
            log.push(format!(
                "{:>5}.{:03}s  {}",
                t / 1_000_000,
                t / 1_000 % 1_000,
                what()
            ));
        }
    }

    /// Runs the plan, brings everyone back and lets the world go quiet, then checks.
    pub fn run(&mut self) -> Result<(), Violation> {
        let steps = self.plan.steps.clone();
        for step in &steps {
            self.apply(&step.action)?;
            self.run_for(us(step.wait))?;
        }
        self.settle()?;
        self.finish()
    }

    /// A crash waiting for actions that never came happens now.
    fn crash_now(&mut self) -> Result<(), Violation> {
        if self.broker_crash_in.is_some() {
            self.crash_broker()?;
        }
        for i in 0..self.peers.len() {
            if self.peers[i].crash_in.is_some() {
                self.crash_client(i)?;
            }
        }
        Ok(())
    }

    fn apply(&mut self, action: &Action) -> Result<(), Violation> {
        self.crash_now()?;
        let now = self.now;
        self.note(|| format!("step {action:?}"));
        match *action {
            Action::Connect(i) => self.connect(i),
            Action::Disconnect(i, with_will) => {
                let code = if with_will {
                    ReasonCode::DISCONNECT_WITH_WILL
                } else {
                    ReasonCode::SUCCESS
                };
                let _ = self.peers[i].client.disconnect(now, Disconnect::new(code));
            }
            Action::Subscribe(i, f, q) => {
                let filter = TopicFilter::new(FILTERS[f]).expect("filter");
                self.subscribe(i, filter, q);
            }
            Action::SubscribeShared(i, q) => {
                let filter = TopicFilter::new(SHARED).expect("filter");
                self.subscribe(i, filter, q);
            }
            Action::Unsubscribe(i, f) => {
                let filter = TopicFilter::new(FILTERS[f]).expect("filter");
                let props = Default::default();
                if self.peers[i]
                    .client
                    .unsubscribe(now, vec![filter], props)
                    .is_ok()
                {
                    self.model.unsubscribed(i, FILTERS[f]);
                }
            }
            Action::Publish {
                client,
                topic,
                qos,
                retain,
                delete,
            } => {
                let id = self.model.next_message_id();
                let payload = if delete {
                    String::new()
                } else {
                    id.to_string()
                };
                let qos = QoS::from_u8(qos).expect("qos");
                let topic_name = TopicName::new(TOPICS[topic]).expect("topic");
                let msg = Message::new(topic_name, payload)
                    .with_qos(qos)
                    .with_retain(retain);
                if let Ok(pid) = self.peers[client].client.publish(now, msg) {
                    self.model
                        .issued(id, client, topic, qos, retain, delete, pid);
                }
            }
            Action::Sever(i, tell_broker) => {
                if let Some(li) = self.peers[i].link {
                    self.sever(li, tell_broker);
                }
            }
            Action::HoldUp(i, ms) => {
                if let Some(li) = self.peers[i].link {
                    self.links[li].up.held_until = now + us(ms);
                }
            }
            Action::StopReading(i, ms) => {
                if let Some(li) = self.peers[i].link {
                    self.links[li].down.held_until = now + us(ms);
                }
            }
            Action::ClockJump(s) => {
                self.now = now + Duration::from_secs(s);
                self.model.clock_jumps += 1;
            }
            Action::RestartBroker(after) => self.broker_crash_in = Some(after),
            Action::RestartClient(i, after) => self.peers[i].crash_in = Some(after),
        }
        self.drain()
    }

    fn subscribe(&mut self, i: usize, filter: TopicFilter, q: u8) {
        let o = SubscriptionOptions::qos(QoS::from_u8(q).expect("qos"));
        if let Ok(pid) =
            self.peers[i]
                .client
                .subscribe(self.now, vec![(filter, o)], Default::default())
        {
            self.model.subscribing(i, pid);
        }
    }

    fn connect(&mut self, i: usize) {
        if self.peers[i].client.state() != client::ConnectionState::Disconnected {
            return;
        }
        self.next_conn += 1;
        let conn = ConnectionId(self.next_conn);
        let latency = self.net.random_range(100..30_000);
        let li = self.links.len();
        self.links.push(Link {
            client: i,
            conn,
            up: Pipe::default(),
            down: Pipe::default(),
            client_open: true,
            broker_open: true,
            paused: false,
            cut: false,
            resumed: false,
            client_notice: None,
            broker_notice: None,
            latency,
        });
        self.by_conn.insert(conn, li);
        self.peers[i].link = Some(li);
        self.broker.handle_opened(self.now, conn);
        self.note(|| format!("c{i} opens link {}", conn.0));
        self.model.client_sends_connect(i);
        if let Err(e) = self.peers[i].client.connect(self.now) {
            panic!("c{i} cannot connect: {e:?}");
        }
    }

    /// The link is cut: what is on its way is lost (a part of the first chunk may still
    /// arrive), and each side learns of it in its own time, the broker perhaps never.
    fn sever(&mut self, li: usize, tell_broker: bool) {
        let now = self.now;
        let client_delay = self.net.random_range(0..2_000_000);
        let broker_delay = self.net.random_range(0..2_000_000);
        let cut_up = self.net.random_range(0..64usize);
        let cut_down = self.net.random_range(0..64usize);
        let l = &mut self.links[li];
        l.cut = true;
        for (pipe, cut) in [(&mut l.up, cut_up), (&mut l.down, cut_down)] {
            // Mid-packet: a prefix of the next chunk goes through, the rest is lost.
            if let Some(c) = pipe.chunks.front_mut() {
                let n = cut.min(c.bytes.len());
                c.bytes.truncate(n);
                c.at = now;
                c.counted = 0;
            }
            pipe.chunks.truncate(1);
        }
        if l.client_open {
            l.client_notice = Some(now + Duration::from_micros(client_delay));
        }
        if l.broker_open && tell_broker {
            l.broker_notice = Some(now + Duration::from_micros(broker_delay));
        }
        let conn = l.conn;
        self.note(|| format!("link {} severed (broker told: {tell_broker})", conn.0));
    }

    /// Runs the world for `d`: every delivery and timer in time order, jumping to the
    /// next one when nothing is due.
    fn run_for(&mut self, d: Duration) -> Result<(), Violation> {
        let target = self.now + d;
        loop {
            self.drain()?;
            let next = self.next_due();
            match next {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.process_due()?;
                    self.check_bounds()?;
                }
                _ => break,
            }
        }
        self.now = self.now.max(target);
        Ok(())
    }

    /// Memory stays within the configured bounds: what the broker hands a connection and
    /// the driver has not written stays within the write budget and one packet, and what
    /// a session holds within `max_queued_messages`.
    fn check_bounds(&self) -> Result<(), Violation> {
        for l in self.links.iter().filter(|l| l.broker_open) {
            let unwritten = self.broker.unwritten(l.conn).unwrap_or(0);
            if unwritten > self.config.write_budget + 4096 {
                return Err(Violation::new(
                    "the broker hands a connection no more than its write budget",
                    format!(
                        "link {}: {unwritten} bytes unwritten, budget {}",
                        l.conn.0, self.config.write_budget
                    ),
                ));
            }
        }
        for i in 0..self.peers.len() {
            if let Some((held, _)) = self.broker.queued(&format!("c{i}"))
                && held > self.config.max_queued_messages
            {
                return Err(Violation::new(
                    "a session holds no more than max_queued_messages",
                    format!("c{i}'s session holds {held}"),
                ));
            }
        }
        Ok(())
    }

    fn next_due(&self) -> Option<Instant> {
        let mut next = self.broker.poll_timeout();
        let mut take = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        for p in &self.peers {
            take(p.client.poll_timeout());
        }
        for l in &self.links {
            if l.broker_open && !l.paused {
                take(l.up.next());
                if l.resumed {
                    take(Some(self.now));
                }
            }
            if l.client_open || l.broker_open {
                take(l.down.next());
            }
            take(l.client_notice);
            take(l.broker_notice);
        }
        next
    }

    fn process_due(&mut self) -> Result<(), Violation> {
        let now = self.now;
        if self.broker.poll_timeout().is_some_and(|t| t <= now) {
            self.broker.handle_timeout(now);
            self.drain()?;
        }
        for i in 0..self.peers.len() {
            if self.peers[i]
                .client
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.peers[i].client.handle_timeout(now);
                self.drain()?;
            }
        }
        for li in 0..self.links.len() {
            if self.links[li].client_notice.is_some_and(|t| t <= now) {
                self.links[li].client_notice = None;
                self.client_side_closed(li);
                self.drain()?;
            }
            if self.links[li].broker_notice.is_some_and(|t| t <= now) {
                self.links[li].broker_notice = None;
                self.broker_side_closed(li);
                self.drain()?;
            }
            self.links[li].resumed = false;
            self.pump_up(li)?;
            self.pump_down(li)?;
        }
        Ok(())
    }

    /// The client's side of the link learns it is closed.
    fn client_side_closed(&mut self, li: usize) {
        let l = &mut self.links[li];
        if !l.client_open {
            return;
        }
        l.client_open = false;
        l.down.chunks.clear();
        let i = l.client;
        if self.peers[i].link == Some(li) {
            self.peers[i].link = None;
            self.peers[i].client.handle_closed(self.now);
        }
        let conn = self.links[li].conn;
        self.note(|| format!("c{i} sees link {} closed", conn.0));
    }

    /// The broker's side of the link learns it is closed.
    fn broker_side_closed(&mut self, li: usize) {
        let l = &mut self.links[li];
        if !l.broker_open {
            return;
        }
        l.broker_open = false;
        l.up.chunks.clear();
        let conn = l.conn;
        self.broker.handle_closed(self.now, conn);
        self.note(|| format!("broker sees link {} closed", conn.0));
    }

    /// Hands the broker what has arrived on the link, packet by packet, while it reads.
    fn pump_up(&mut self, li: usize) -> Result<(), Violation> {
        loop {
            let l = &mut self.links[li];
            if !l.broker_open || l.paused {
                return Ok(());
            }
            let conn = l.conn;
            let cx = self.broker.decode_context(conn);
            let l = &mut self.links[li];
            match Packet::decode_stream(&mut l.up.inbuf, &cx) {
                Ok(Decoded::Packet(p)) => {
                    let i = l.client;
                    self.note(|| format!("c{i} -> broker  {}", describe(&p)));
                    self.model.broker_receives(i, conn, &p);
                    self.broker.handle_packet(self.now, conn, p);
                    self.drain()?;
                }
                Ok(Decoded::Incomplete { .. }) => {
                    if !l.up.due(self.now) {
                        return Ok(());
                    }
                    let c = l.up.chunks.pop_front().expect("due");
                    l.up.inbuf.extend_from_slice(&c.bytes);
                }
                Err(e) => {
                    return Err(Violation::new(
                        "every packet a client sends decodes",
                        format!("broker cannot decode c{}'s bytes: {e:?}", l.client),
                    ));
                }
            }
        }
    }

    /// Hands the client what has arrived from the broker, while it reads; what reaches
    /// the client counts as written for the broker.
    fn pump_down(&mut self, li: usize) -> Result<(), Violation> {
        loop {
            let l = &mut self.links[li];
            if !l.client_open {
                // Nobody reads: what the broker writes goes into the void (its kernel takes
                // it).
                while l.down.chunks.front().is_some_and(|c| c.at <= self.now) {
                    let c = l.down.chunks.pop_front().expect("front");
                    if l.broker_open && c.counted > 0 {
                        self.broker.handle_written(self.now, l.conn, c.counted);
                    }
                }
                return self.drain();
            }
            let i = l.client;
            let cx = self.peers[i].client.decode_context();
            let l = &mut self.links[li];
            match Packet::decode_stream(&mut l.down.inbuf, &cx) {
                Ok(Decoded::Packet(p)) => {
                    self.note(|| format!("broker -> c{i}  {}", describe(&p)));
                    self.model.client_receives(i, &p);
                    self.peers[i].client.handle_packet(self.now, p);
                    self.drain()?;
                    if self.peers[i].link != Some(li) {
                        return Ok(());
                    }
                }
                Ok(Decoded::Incomplete { .. }) => {
                    if !l.down.due(self.now) {
                        return Ok(());
                    }
                    let c = l.down.chunks.pop_front().expect("due");
                    l.down.inbuf.extend_from_slice(&c.bytes);
                    if l.broker_open && c.counted > 0 {
                        let conn = l.conn;
                        self.broker.handle_written(self.now, conn, c.counted);
                        self.drain()?;
                    }
                }
                Err(e) => {
                    return Err(Violation::new(
                        "every packet the broker sends decodes",
                        format!("c{i} cannot decode the broker's bytes: {e:?}"),
                    ));
                }
            }
        }
    }

    /// Puts encoded bytes on a pipe in one to three chunks, after the link's latency and
    /// some jitter, never before what is already on it.
    fn transmit(&mut self, li: usize, up: bool, bytes: BytesMut, counted: usize) {
        let now = self.now;
        let jitter = self.net.random_range(0..5_000);
        let pieces = self.net.random_range(1..=3usize).min(bytes.len().max(1));
        let mut cuts: Vec<usize> = (1..pieces)
            .map(|_| self.net.random_range(1..bytes.len().max(2)))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let l = &mut self.links[li];
        if l.cut {
            return;
        }
        let pipe = if up { &mut l.up } else { &mut l.down };
        let base = now + Duration::from_micros(l.latency + jitter);
        let at = pipe.last_at().map_or(base, |last| last.max(base));
        let mut bytes = bytes.freeze();
        let mut taken = 0;
        for cut in cuts {
            let piece = bytes.split_to(cut - taken);
            taken = cut;
            pipe.chunks.push_back(Chunk {
                at,
                bytes: piece,
                counted: 0,
            });
        }
        pipe.chunks.push_back(Chunk { at, bytes, counted });
    }

    /// Whether the broker dies here (a planned crash counts down the points it may come
    /// at: before each action, before a commit, before each action held for a commit).
    fn broker_dies(&mut self) -> Result<bool, Violation> {
        match self.broker_crash_in {
            Some(0) => {
                self.crash_broker()?;
                Ok(true)
            }
            Some(n) => {
                self.broker_crash_in = Some(n - 1);
                Ok(false)
            }
            None => Ok(false),
        }
    }

    /// Carries out the broker's actions of this turn: store operations go into one
    /// transaction, committed when the turn has none left; the actions after the first of
    /// them wait for that commit.
    fn drain_broker(&mut self) -> Result<bool, Violation> {
        let mut moved = false;
        while let Some(a) = self.broker.poll_action() {
            moved = true;
            if self.broker_dies()? {
                return Ok(true);
            }
            match a {
                BrokerAction::Persist(op) => self.txn.push(op),
                // Events tell the driver what happened; they wait for nothing.
                BrokerAction::Event(e) => self.broker_event(e)?,
                a if !self.txn.is_empty() => self.deferred.push(a),
                a => self.broker_action(a)?,
            }
        }
        if self.txn.is_empty() {
            self.model.turn_committed();
            return Ok(moved);
        }
        if self.broker_dies()? {
            return Ok(true);
        }
        self.model.turn_committed();
        if self.log.is_some() {
            let ops: Vec<String> = self.txn.iter().map(describe_op).collect();
            self.note(|| format!("broker store commits {}", ops.join(", ")));
        }
        for op in std::mem::take(&mut self.txn) {
            let planted = self.plant == Some(Plant::DropOutgoingPersist)
                && matches!(
                    &op,
                    StoreOp::Session { op: SessionOp::PutOutgoing(e), .. }
                        if matches!(&e.state, OutgoingState::Publish { publish, .. }
                            if publish.qos() == QoS::AtLeastOnce)
                );
            if !planted {
                self.store.apply(&op, self.now)?;
            }
            self.model.broker_persists(&op, self.now)?;
        }
        self.store.commit(self.now)?;
        self.last_commit = self.now;
        for a in std::mem::take(&mut self.deferred) {
            if self.broker_dies()? {
                return Ok(true);
            }
            self.broker_action(a)?;
        }
        Ok(true)
    }

    /// Carries out every action of the broker and the clients until none is left.
    fn drain(&mut self) -> Result<(), Violation> {
        loop {
            let mut moved = self.drain_broker()?;
            for i in 0..self.peers.len() {
                moved |= self.drain_client(i)?;
            }
            if !moved {
                return Ok(());
            }
        }
    }

    /// Whether client `i`'s process dies here (see `broker_dies`).
    fn client_dies(&mut self, i: usize) -> Result<bool, Violation> {
        match self.peers[i].crash_in {
            Some(0) => {
                self.crash_client(i)?;
                Ok(true)
            }
            Some(n) => {
                self.peers[i].crash_in = Some(n - 1);
                Ok(false)
            }
            None => Ok(false),
        }
    }

    /// Carries out client `i`'s actions of this turn as its driver would: store operations
    /// in one transaction, committed when the turn has none left, together with the
    /// events after the first of them (the application takes a message in the same
    /// transaction as its packet identifier: how a QoS 2 message is received exactly once
    /// across a crash); the packets after the first operation go once it is committed.
    fn drain_client(&mut self, i: usize) -> Result<bool, Violation> {
        let mut moved = false;
        let mut txn = Vec::new();
        let mut deferred = Vec::new();
        while let Some(a) = self.peers[i].client.poll_action() {
            moved = true;
            if self.client_dies(i)? {
                return Ok(true);
            }
            match a {
                client::Action::Persist(op) => txn.push(op),
                a if !txn.is_empty() => deferred.push(a),
                a => self.client_action(i, a)?,
            }
        }
        if txn.is_empty() {
            return Ok(moved);
        }
        if self.client_dies(i)? {
            return Ok(true);
        }
        for op in &txn {
            self.peers[i].store.apply(op);
        }
        let (events, rest): (Vec<_>, Vec<_>) = deferred
            .into_iter()
            .partition(|a| matches!(a, client::Action::Event(_)));
        for a in events {
            self.client_action(i, a)?;
        }
        for a in rest {
            if self.client_dies(i)? {
                return Ok(true);
            }
            self.client_action(i, a)?;
        }
        Ok(true)
    }

    fn broker_action(&mut self, a: BrokerAction) -> Result<(), Violation> {
        match a {
            BrokerAction::Send {
                connection,
                version,
                mut packet,
                len,
            } => {
                let Some(&li) = self.by_conn.get(&connection) else {
                    return Ok(());
                };
                if !self.links[li].broker_open {
                    return Err(Violation::new(
                        "the broker sends nothing on a connection it closed",
                        format!("a packet for link {}", connection.0),
                    ));
                }
                let i = self.links[li].client;
                if self.plant == Some(Plant::ReusePacketId)
                    && let Packet::Publish(p) = &mut packet
                    && !p.dup
                    && let Some(used) = self.model.in_flight_to(i).and_then(PacketId::new)
                {
                    match p.qos_pid {
                        QosPid::AtLeastOnce(_) => p.qos_pid = QosPid::AtLeastOnce(used),
                        QosPid::ExactlyOnce(_) => p.qos_pid = QosPid::ExactlyOnce(used),
                        QosPid::AtMostOnce => {}
                    }
                }
                self.model.broker_sends(i, &packet, version)?;
                let bytes = packet
                    .to_bytes(version)
                    .map_err(|e| Violation::new("the broker's packets encode", format!("{e:?}")))?;
                self.transmit(li, false, bytes, len);
            }
            BrokerAction::Close(conn) => {
                let Some(&li) = self.by_conn.get(&conn) else {
                    return Ok(());
                };
                let l = &mut self.links[li];
                if l.broker_open {
                    l.broker_open = false;
                    l.up.chunks.clear();
                    // The client learns it after what was written before the close.
                    let fin = l
                        .down
                        .last_at()
                        .unwrap_or(self.now)
                        .max(self.now + Duration::from_micros(l.latency));
                    if l.client_open {
                        l.client_notice = Some(l.client_notice.map_or(fin, |t| t.min(fin)));
                    }
                    self.note(|| format!("broker closes link {}", conn.0));
                }
            }
            BrokerAction::PauseReading(conn) | BrokerAction::ResumeReading(conn) => {
                let pause = matches!(a, BrokerAction::PauseReading(_));
                if let Some(&li) = self.by_conn.get(&conn) {
                    if self.links[li].paused == pause {
                        return Err(Violation::new(
                            "the broker pauses and resumes a connection in turn",
                            format!("link {} paused: {pause} twice", conn.0),
                        ));
                    }
                    self.links[li].paused = pause;
                    // The reader goes on later, as a driver's would: not from inside the
                    // broker's turn.
                    self.links[li].resumed = !pause;
                    self.note(|| format!("broker pauses link {}: {pause}", conn.0));
                }
            }
            BrokerAction::Persist(_) => unreachable!("store operations go through the turn"),
            BrokerAction::Event(e) => self.broker_event(e)?,
        }
        Ok(())
    }

    fn broker_event(&mut self, e: BrokerEvent) -> Result<(), Violation> {
        let now = self.now;
        match e {
            BrokerEvent::Connected(c) => {
                let i = self.client_index(&c.client_id);
                self.model
                    .broker_accepted(i, c.connection, now, c.session_present)?;
            }
            BrokerEvent::Disconnected(d) => {
                if let Some(i) = d.client_id.as_ref().map(|id| self.client_index(id)) {
                    if d.disconnected.cause == CloseCause::ProtocolViolation {
                        return Err(Violation::new(
                            "no client the harness runs breaks a rule",
                            format!("the broker closed c{i}: {:?}", d.disconnected),
                        ));
                    }
                    let normal = d.disconnected.cause == CloseCause::Remote
                        && d.disconnected
                            .reason_code
                            .is_none_or(|r| r == ReasonCode::SUCCESS);
                    self.model.broker_ended(i, d.connection, now, normal);
                }
            }
            BrokerEvent::WillPublished { client_id, .. } => {
                let i = self.client_index(&client_id);
                self.note(|| format!("broker publishes c{i}'s will"));
                self.model.will_published(i, now);
            }
            BrokerEvent::MessageDropped {
                client_id, reason, ..
            } => {
                self.model
                    .dropped(self.client_index(&client_id), format!("{reason:?}"));
            }
            _ => {}
        }
        Ok(())
    }

    /// The client `c{i}` is, or `usize::MAX` (the observer), which the model ignores.
    fn client_index(&self, id: &MqttString) -> usize {
        self.model.index(id.as_str()).unwrap_or(usize::MAX)
    }

    fn client_action(&mut self, i: usize, a: client::Action) -> Result<(), Violation> {
        match a {
            client::Action::Send(p) => {
                self.model.client_sends(i, &p, self.now)?;
                let Some(li) = self.peers[i].link else {
                    return Ok(());
                };
                if !self.links[li].client_open {
                    return Ok(());
                }
                let version = self.peers[i].client.protocol();
                let bytes = p.to_bytes(version).map_err(|e| {
                    Violation::new("the client's packets encode", format!("c{i}: {e:?}"))
                })?;
                self.transmit(li, true, bytes, 0);
            }
            client::Action::Close => {
                if let Some(li) = self.peers[i].link.take() {
                    let l = &mut self.links[li];
                    l.client_open = false;
                    l.down.chunks.clear();
                    let fin =
                        l.up.last_at()
                            .unwrap_or(self.now)
                            .max(self.now + Duration::from_micros(l.latency));
                    if l.broker_open {
                        l.broker_notice = Some(l.broker_notice.map_or(fin, |t| t.min(fin)));
                    }
                    let conn = l.conn;
                    self.note(|| format!("c{i} closes link {}", conn.0));
                }
            }
            client::Action::Persist(op) => self.peers[i].store.apply(&op),
            client::Action::Event(e) => self.model.client_event(i, e, self.now)?,
        }
        Ok(())
    }

    /// The broker process dies: its links are gone (each client learns it after the
    /// link's latency), and a new broker starts from what its store holds.
    fn crash_broker(&mut self) -> Result<(), Violation> {
        self.broker_crash_in = None;
        // What the turn had not committed is lost, with what waited for it.
        self.txn.clear();
        self.deferred.clear();
        let now = self.now;
        self.note(|| "broker process dies and restarts from its store".into());
        for l in &mut self.links {
            if l.broker_open {
                l.broker_open = false;
                l.broker_notice = None;
                l.up.chunks.clear();
                l.down.chunks.clear();
                if l.client_open {
                    l.client_notice = Some(now + Duration::from_micros(l.latency));
                }
            }
        }
        let snapshot = self.store.restart(now)?;
        let since = match self.store {
            Storage::Memory(_) => now,
            #[cfg(feature = "persist")]
            Storage::File(..) => self.last_commit,
        };
        self.model.broker_restarted(&snapshot, now, since);
        self.broker = Broker::restore(self.config.clone(), snapshot, now)
            .map_err(|e| Violation::new("the broker restarts from its store", format!("{e}")))?;
        Ok(())
    }

    /// A client process dies: its side of the link is gone (the broker learns it after
    /// the link's latency, unless the link was already cut), and a new process starts
    /// from the client's store (a durable session) or afresh, and connects.
    fn crash_client(&mut self, i: usize) -> Result<(), Violation> {
        self.peers[i].crash_in = None;
        let now = self.now;
        self.note(|| format!("c{i} process dies and restarts"));
        if let Some(li) = self.peers[i].link.take() {
            let l = &mut self.links[li];
            l.client_open = false;
            l.client_notice = None;
            l.down.chunks.clear();
            if l.broker_open && l.broker_notice.is_none() && self.net.random_bool(0.8) {
                l.broker_notice = Some(now + Duration::from_micros(l.latency));
            }
        }
        if self.plan.clients[i].durability == Durability::Clean {
            self.peers[i].store = MemorySessionStore::new();
        }
        self.peers[i].client = new_client(&self.plan, i, &self.peers[i].store);
        self.model.client_restarted(i);
        self.connect(i);
        Ok(())
    }

    /// Everything released, every client connected, and the world quiet.
    fn settle(&mut self) -> Result<(), Violation> {
        self.note(|| "settle: holds released, everyone reconnects".into());
        self.crash_now()?;
        let now = self.now;
        for l in &mut self.links {
            l.up.held_until = now;
            l.down.held_until = now;
        }
        for _ in 0..60 {
            for i in 0..self.peers.len() {
                self.connect(i);
            }
            self.run_for(Duration::from_secs(2))?;
            if self.quiet() {
                return Ok(());
            }
        }
        Err(Violation::new(
            "the world goes quiet",
            format!(
                "after 120 s of settling: {}",
                (0..self.peers.len())
                    .map(|i| {
                        let c = &self.peers[i].client;
                        format!(
                            "c{i} {:?} in flight {} queued {} broker queue {:?}",
                            c.state(),
                            c.in_flight(),
                            c.queued(),
                            self.broker.queued(&format!("c{i}"))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ))
    }

    fn quiet(&self) -> bool {
        self.peers.iter().enumerate().all(|(i, p)| {
            p.client.state() == client::ConnectionState::Connected
                && p.client.in_flight() == 0
                && p.client.queued() == 0
                && self
                    .broker
                    .queued(&format!("c{i}"))
                    .is_none_or(|(n, _)| n == 0)
        })
    }

    /// The end of a run: an observer reads the retained messages, and the model judges.
    fn finish(&mut self) -> Result<(), Violation> {
        // The observer: a fresh v5 client subscribing to every workload topic.
        let mut cfg = ClientConfig::new(
            ProtocolVersion::V5,
            MqttString::new("observer").expect("id"),
        );
        cfg.keep_alive = 0;
        let mut observer = Client::new(cfg);
        let conn = ConnectionId(u64::MAX);
        let now = self.now;
        self.broker.handle_opened(now, conn);
        observer.connect(now).expect("observer connects");
        let filters: Vec<(TopicFilter, SubscriptionOptions)> = ["t/#", "s/#"]
            .iter()
            .map(|f| {
                let f = TopicFilter::new(*f).expect("filter");
                (f, SubscriptionOptions::qos(QoS::ExactlyOnce))
            })
            .collect();
        let mut retained = HashMap::new();
        let mut subscribed = false;
        for round in 0..100 {
            let mut moved = false;
            while let Some(a) = observer.poll_action() {
                moved = true;
                match a {
                    client::Action::Send(p) => {
                        let cx = self.broker.decode_context(conn);
                        let mut b = p.to_bytes(ProtocolVersion::V5).expect("encodes");
                        let p = Packet::decode(&mut b, &cx)
                            .expect("decodes")
                            .expect("whole");
                        self.broker.handle_packet(now, conn, p);
                    }
                    client::Action::Event(client::Event::Connected(_)) if !subscribed => {
                        subscribed = true;
                        observer
                            .subscribe(now, filters.clone(), Default::default())
                            .expect("observer subscribes");
                    }
                    client::Action::Event(client::Event::Message(p)) if p.retain => {
                        retained.insert(p.topic.as_str().to_string(), p.payload.to_vec());
                    }
                    _ => {}
                }
            }
            while let Some(a) = self.broker.poll_action() {
                moved = true;
                match a {
                    BrokerAction::Send {
                        connection,
                        version,
                        packet,
                        len,
                    } if connection == conn => {
                        let mut b = packet.to_bytes(version).expect("encodes");
                        let cx = observer.decode_context();
                        let p = Packet::decode(&mut b, &cx)
                            .expect("decodes")
                            .expect("whole");
                        self.broker.handle_written(now, conn, len);
                        observer.handle_packet(now, p);
                    }
                    BrokerAction::Event(e) => self.broker_event(e)?,
                    BrokerAction::Persist(op) => {
                        self.store.apply(&op, now)?;
                        self.store.commit(now)?;
                        self.model.broker_persists(&op, now)?;
                    }
                    _ => {}
                }
            }
            if !moved && round > 0 {
                break;
            }
        }
        self.model.check(&retained, self.now)
    }
}

/// Client `i` as a process starts it: from its store, unless its sessions end with their
/// connections. (A client that keeps its session holds session state from the start, even
/// an empty one: it takes up the session its first CONNECT made even when that CONNECT's
/// CONNACK was lost.)
fn new_client(plan: &Plan, i: usize, store: &MemorySessionStore) -> Client {
    let config = client_config(plan, i);
    if plan.clients[i].durability == Durability::Clean {
        Client::new(config)
    } else {
        Client::resume(config, store.state()).expect("a stored session resumes")
    }
}

/// The configuration of client `i` as its spec says.
fn client_config(plan: &Plan, i: usize) -> ClientConfig {
    let spec = &plan.clients[i];
    let version = if spec.v5 {
        ProtocolVersion::V5
    } else {
        ProtocolVersion::V3_1_1
    };
    let mut c = ClientConfig::new(version, MqttString::new(format!("c{i}")).expect("id"));
    c.keep_alive = spec.keep_alive;
    c.clean_start = spec.durability == Durability::Clean;
    c.max_queued = 100_000;
    if spec.v5 {
        c.properties.session_expiry_interval = match spec.expiry() {
            0 => None,
            s => Some(s),
        };
        c.properties.receive_maximum = std::num::NonZeroU16::new(spec.receive_maximum);
        if spec.topic_aliases {
            c.properties.topic_alias_maximum = Some(5);
            c.automatic_topic_aliases = client::AutomaticAliases::LeastRecentlyUsed;
        }
    }
    if let Some(delay) = spec.will {
        let mut will = Will {
            topic: TopicName::new(format!("w/{i}")).expect("topic"),
            payload: Bytes::from(format!("will of c{i}")),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Default::default(),
        };
        if spec.v5 && delay > 0 {
            will.properties.will_delay_interval = Some(delay);
        }
        c.will = Some(will);
    }
    c
}

/// A store operation in a line of the transcript.
fn describe_op(op: &StoreOp) -> String {
    match op {
        StoreOp::PutSession { client_id, .. } => format!("put-session {client_id}"),
        StoreOp::RemoveSession(c) => format!("remove-session {c}"),
        StoreOp::SessionOffline(c) => format!("offline {c}"),
        StoreOp::Session { client_id, op } => {
            let what = match op {
                SessionOp::PutOutgoing(e) => format!("put-out {}", e.packet_id.get()),
                SessionOp::RemoveOutgoing(id) => format!("rm-out {}", id.get()),
                SessionOp::PutIncoming(id) => format!("put-in {}", id.get()),
                SessionOp::RemoveIncoming(id) => format!("rm-in {}", id.get()),
                other => format!("{other:?}").chars().take(20).collect(),
            };
            format!("{client_id}:{what}")
        }
        StoreOp::PutRetained { publish, .. } => format!("retain {}", publish.topic.as_str()),
        StoreOp::RemoveRetained(t) => format!("unretain {}", t.as_str()),
        other => format!("{other:?}").chars().take(24).collect(),
    }
}

//! The model: what the world did, recorded as it happened, and the invariants it must
//! satisfy, each with the statement of the specification it stands for.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use mqtt_codec::*;
use mqtt_session::broker::{BrokerSnapshot, ConnectionId, StoreOp};
use mqtt_session::client;
use mqtt_session::event::CloseCause;
use mqtt_session::time::Instant;

use crate::plan::{ClientSpec, Durability, FILTERS, Plan, SHARED, TOPICS};

/// A broken invariant: the rule, and what broke it.
#[derive(Debug, Clone)]
pub struct Violation {
    pub rule: &'static str,
    pub detail: String,
}

impl Violation {
    pub fn new(rule: &'static str, detail: impl Into<String>) -> Self {
        Self {
            rule,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

/// A message a client published.
#[derive(Debug, Clone)]
struct Msg {
    from: usize,
    topic: usize,
    qos: QoS,
    retain: bool,
    delete: bool,
    /// When `publish` was called (model sequence).
    issued: u64,
    /// Its publisher got a PUBACK or PUBCOMP with a success code.
    accepted: bool,
    /// When the broker last received it (model sequence).
    received: u64,
}

/// A subscription as the subscriber learnt it from its SUBACK.
#[derive(Debug, Clone)]
struct Grant {
    /// When its SUBSCRIBE was sent, and when its SUBACK arrived.
    sent: u64,
    at: u64,
    qos: u8,
    /// An UNSUBSCRIBE of the filter was sent after it, or the session ended.
    ended: bool,
}

/// A retained message as the broker handled it.
#[derive(Debug, Clone)]
struct Retained {
    /// The message id, or `None` for a deletion.
    value: Option<u64>,
    msg: u64,
    /// When the broker handled it (model sequence).
    seq: u64,
    /// The broker's store received it (its `PutRetained` or `RemoveRetained`).
    persisted: bool,
    /// The broker's turn that handled it ended (its store operations, if any, committed).
    committed: bool,
    /// A broker crash came before its store did: it never took effect.
    void: bool,
}

/// The end of a connection as the broker saw it.
#[derive(Debug, Clone)]
struct End {
    client: usize,
    conn: ConnectionId,
    at: Instant,
    seq: u64,
    normal: bool,
    /// Ended by a broker crash (what the restarted broker does with its will depends on
    /// what its store held).
    crash: bool,
}

pub struct Model {
    specs: Vec<ClientSpec>,
    broker_receive_maximum: u16,
    seq: u64,
    next_id: u64,
    msgs: BTreeMap<u64, Msg>,
    /// Per client: the message of each QoS 1/2 PUBLISH awaiting its handshake.
    pending: Vec<HashMap<PacketId, u64>>,
    grants: Vec<HashMap<&'static str, Vec<Grant>>>,
    /// Per client: when each SUBSCRIBE (by packet identifier) was sent, and when each
    /// filter was last unsubscribed.
    subscribing: Vec<HashMap<PacketId, u64>>,
    unsubscribed_at: Vec<HashMap<&'static str, u64>>,
    /// Per client: messages received (id, QoS, RETAIN), in order.
    received: Vec<Vec<(u64, QoS, bool)>>,
    /// Per client: the message of every QoS 1/2 PUBLISH it put on the wire, resends
    /// included, in order.
    transmitted: Vec<Vec<u64>>,
    /// Packet identifiers in use, per client: its PUBLISHes, its SUBSCRIBE and
    /// UNSUBSCRIBE requests, and the broker's PUBLISHes to it.
    up_pub: Vec<BTreeSet<u16>>,
    /// Per connection: the client's topic aliases, as the broker reads them.
    aliases: HashMap<ConnectionId, HashMap<u16, String>>,
    up_req: Vec<BTreeSet<u16>>,
    down_pub: Vec<BTreeSet<u16>>,
    had_session: Vec<bool>,
    /// When the client's broker session ended (Clean, or expired) or was replaced.
    lost: Vec<Vec<u64>>,
    /// The broker's last end of each client's connection.
    last_end: Vec<Option<Instant>>,
    live: Vec<Option<ConnectionId>>,
    accepts: Vec<Vec<(Instant, u64, ConnectionId)>>,
    ends: Vec<End>,
    wills: Vec<Vec<(Instant, u64)>>,
    crashes: Vec<u64>,
    retained: HashMap<usize, Vec<Retained>>,
    drops: Vec<(usize, String)>,
    pub clock_jumps: u32,
    pub broker_restarts: u32,
    pub client_restarts: u32,
    failure: Option<Violation>,
}

fn filter_index(f: &str) -> Option<&'static str> {
    FILTERS
        .iter()
        .chain(std::iter::once(&SHARED))
        .find(|x| **x == f)
        .copied()
}

fn message_id(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload).ok()?.parse().ok()
}

impl Model {
    pub fn new(plan: &Plan) -> Self {
        let n = plan.clients.len();
        Self {
            specs: plan.clients.clone(),
            broker_receive_maximum: plan.broker.receive_maximum,
            seq: 0,
            next_id: 0,
            msgs: BTreeMap::new(),
            pending: vec![HashMap::new(); n],
            grants: vec![HashMap::new(); n],
            subscribing: vec![HashMap::new(); n],
            unsubscribed_at: vec![HashMap::new(); n],
            received: vec![Vec::new(); n],
            transmitted: vec![Vec::new(); n],
            up_pub: vec![BTreeSet::new(); n],
            aliases: HashMap::new(),
            up_req: vec![BTreeSet::new(); n],
            down_pub: vec![BTreeSet::new(); n],
            had_session: vec![false; n],
            lost: vec![Vec::new(); n],
            last_end: vec![None; n],
            live: vec![None; n],
            accepts: vec![Vec::new(); n],
            ends: Vec::new(),
            wills: vec![Vec::new(); n],
            crashes: Vec::new(),
            retained: HashMap::new(),
            drops: Vec::new(),
            clock_jumps: 0,
            broker_restarts: 0,
            client_restarts: 0,
            failure: None,
        }
    }

    fn tick(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn messages(&self) -> usize {
        self.msgs.len()
    }

    pub fn next_message_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    #[allow(clippy::too_many_arguments)]
    pub fn issued(
        &mut self,
        id: u64,
        from: usize,
        topic: usize,
        qos: QoS,
        retain: bool,
        delete: bool,
        pid: Option<PacketId>,
    ) {
        let issued = self.tick();
        if let Some(pid) = pid {
            self.pending[from].insert(pid, id);
        }
        let m = Msg {
            from,
            topic,
            qos,
            retain,
            delete,
            issued,
            accepted: false,
            received: 0,
        };
        self.msgs.insert(id, m);
    }

    pub fn subscribing(&mut self, i: usize, pid: PacketId) {
        let at = self.tick();
        self.subscribing[i].insert(pid, at);
    }

    pub fn unsubscribed(&mut self, i: usize, filter: &'static str) {
        let at = self.tick();
        self.unsubscribed_at[i].insert(filter, at);
        for g in self.grants[i].entry(filter).or_default() {
            g.ended = true;
        }
    }

    pub fn client_sends_connect(&mut self, i: usize) {
        // Requests left unanswered by the last connection go again, without DUP.
        self.up_req[i].clear();
    }

    fn fail(&mut self, v: Violation) -> Result<(), Violation> {
        if self.failure.is_none() {
            self.failure = Some(v.clone());
        }
        Err(v)
    }

    pub fn client_sends(&mut self, i: usize, p: &Packet, _now: Instant) -> Result<(), Violation> {
        match p {
            Packet::Publish(m) => {
                let Some(id) = m.qos_pid.packet_id() else {
                    return Ok(());
                };
                let id = id.get();
                if !m.dup && (self.up_pub[i].contains(&id) || self.up_req[i].contains(&id)) {
                    return self.fail(Violation::new(
                        "[MQTT-2.2.1-3] a new PUBLISH takes a packet identifier not in use",
                        format!("c{i} sent PUBLISH {id} while {id} was in flight"),
                    ));
                }
                self.up_pub[i].insert(id);
                if self.specs[i].v5 && self.up_pub[i].len() > self.broker_receive_maximum as usize {
                    return self.fail(Violation::new(
                        "[MQTT-3.3.4-7] a client sends no more QoS 1/2 PUBLISH than the server's Receive Maximum",
                        format!(
                            "c{i} has {} unacknowledged, the broker allows {}",
                            self.up_pub[i].len(),
                            self.broker_receive_maximum
                        ),
                    ));
                }
                if let Some(msg) = message_id(&m.payload) {
                    self.transmitted[i].push(msg);
                }
            }
            Packet::Subscribe(s) => self.request_id(i, s.packet_id.get())?,
            Packet::Unsubscribe(u) => self.request_id(i, u.packet_id.get())?,
            _ => {}
        }
        Ok(())
    }

    fn request_id(&mut self, i: usize, id: u16) -> Result<(), Violation> {
        if self.up_pub[i].contains(&id) || !self.up_req[i].insert(id) {
            return self.fail(Violation::new(
                "[MQTT-2.2.1-3] a new SUBSCRIBE or UNSUBSCRIBE takes a packet identifier not in use",
                format!("c{i} sent a request with {id} while {id} was in use"),
            ));
        }
        Ok(())
    }

    /// A packet from the broker reaches client `i`.
    pub fn client_receives(&mut self, i: usize, p: &Packet) {
        match p {
            Packet::PubAck(r) | Packet::PubComp(r) => {
                self.up_pub[i].remove(&r.packet_id.get());
            }
            Packet::PubRec(r) if r.reason_code.is_error() => {
                self.up_pub[i].remove(&r.packet_id.get());
            }
            Packet::SubAck(a) => {
                self.up_req[i].remove(&a.packet_id.get());
            }
            Packet::UnsubAck(a) => {
                self.up_req[i].remove(&a.packet_id.get());
            }
            _ => {}
        }
    }

    /// A packet from client `i` reaches the broker, which handles it next.
    pub fn broker_receives(&mut self, i: usize, conn: ConnectionId, p: &Packet) {
        match p {
            Packet::PubAck(r) | Packet::PubComp(r) => {
                self.down_pub[i].remove(&r.packet_id.get());
            }
            Packet::PubRec(r) if r.reason_code.is_error() => {
                self.down_pub[i].remove(&r.packet_id.get());
            }
            Packet::Publish(m) => {
                let at = self.tick();
                if let Some(id) = message_id(&m.payload)
                    && let Some(msg) = self.msgs.get_mut(&id)
                {
                    msg.received = at;
                }
                let aliases = self.aliases.entry(conn).or_default();
                let name = match m.properties.topic_alias {
                    Some(a) if m.topic.is_empty() => {
                        aliases.get(&a.get()).cloned().unwrap_or_default()
                    }
                    Some(a) => {
                        aliases.insert(a.get(), m.topic.as_str().to_string());
                        m.topic.as_str().to_string()
                    }
                    None => m.topic.as_str().to_string(),
                };
                if !m.retain {
                    return;
                }
                let Some(topic) = TOPICS.iter().position(|t| *t == name) else {
                    return;
                };
                let msg = if m.payload.is_empty() {
                    // A deletion carries no id in its payload: its packet identifier says
                    // which it is, else (QoS 0) it is the latest deletion c{i} issued on
                    // this topic.
                    let by_pid = m
                        .qos_pid
                        .packet_id()
                        .and_then(|pid| self.pending[i].get(&pid).copied());
                    by_pid.or_else(|| {
                        self.msgs
                            .iter()
                            .rev()
                            .find(|(_, x)| x.from == i && x.delete && x.topic == topic)
                            .map(|(id, _)| *id)
                    })
                } else {
                    message_id(&m.payload)
                };
                let Some(msg) = msg else { return };
                // The broker takes a QoS 2 message once in a session: a resend it already
                // has changes nothing (unless the publisher's session was replaced since).
                let since = self.lost[i].last().copied().unwrap_or(0);
                let entries = self.retained.entry(topic).or_default();
                if m.qos() == QoS::ExactlyOnce
                    && entries
                        .iter()
                        .any(|e| e.msg == msg && !e.void && e.seq > since)
                {
                    return;
                }
                entries.push(Retained {
                    value: (!m.payload.is_empty()).then_some(msg),
                    msg,
                    seq: at,
                    persisted: false,
                    committed: false,
                    void: false,
                });
            }
            _ => {}
        }
    }

    pub fn broker_sends(
        &mut self,
        i: usize,
        p: &Packet,
        _version: ProtocolVersion,
    ) -> Result<(), Violation> {
        if let Packet::Publish(m) = p
            && let Some(id) = m.qos_pid.packet_id()
        {
            let id = id.get();
            if !m.dup && self.down_pub[i].contains(&id) {
                return self.fail(Violation::new(
                    "[MQTT-2.2.1-3] a new PUBLISH takes a packet identifier not in use",
                    format!("the broker sent c{i} PUBLISH {id} while {id} was in flight"),
                ));
            }
            self.down_pub[i].insert(id);
            let rm = self.specs[i].receive_maximum as usize;
            if self.specs[i].v5 && self.down_pub[i].len() > rm {
                return self.fail(Violation::new(
                    "[MQTT-3.3.4-9] the server sends no more QoS 1/2 PUBLISH than the client's Receive Maximum",
                    format!(
                        "c{i} has {} unacknowledged, its Receive Maximum is {rm}",
                        self.down_pub[i].len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The broker's store committed `op`. Whether a client has a session is judged here:
    /// a session exists for a restart only once its store has it.
    pub fn broker_persists(&mut self, op: &StoreOp, now: Instant) -> Result<(), Violation> {
        match op {
            StoreOp::PutSession { client_id, .. } => {
                if let Some(i) = self.index(client_id.as_str()) {
                    self.had_session[i] = true;
                }
                return Ok(());
            }
            StoreOp::RemoveSession(client_id) => {
                let Some(i) = self.index(client_id.as_str()) else {
                    return Ok(());
                };
                match self.specs[i].durability {
                    Durability::Durable => {
                        return self.fail(Violation::new(
                            "[MQTT-3.1.2-5] a session lasts for its Session Expiry Interval",
                            format!("c{i}'s durable session was removed"),
                        ));
                    }
                    Durability::Short(e) => {
                        let away = self.last_end[i].map(|t| now.saturating_duration_since(t));
                        if self.live[i].is_some()
                            || away.is_none_or(|a| a.as_secs_f64() + 0.001 < e as f64)
                        {
                            return self.fail(Violation::new(
                                "[MQTT-3.1.2-5] a session lasts for its Session Expiry Interval",
                                format!(
                                    "c{i}'s session (expiry {e} s) removed after {away:?} away"
                                ),
                            ));
                        }
                    }
                    Durability::Clean => {}
                }
                self.had_session[i] = false;
                self.session_gone(i);
                return Ok(());
            }
            _ => {}
        }
        let (topic, value) = match op {
            StoreOp::PutRetained { publish, .. } => {
                (publish.topic.as_str(), message_id(&publish.payload))
            }
            StoreOp::RemoveRetained(t) => (t.as_str(), None),
            _ => return Ok(()),
        };
        let Some(topic) = TOPICS.iter().position(|t| *t == topic) else {
            return Ok(());
        };
        if let Some(e) = self
            .retained
            .entry(topic)
            .or_default()
            .iter_mut()
            .rev()
            .find(|e| !e.persisted && !e.void && e.value == value)
        {
            e.persisted = true;
        }
        Ok(())
    }

    /// A packet identifier of a PUBLISH in flight from the broker to client `i`.
    pub fn in_flight_to(&self, i: usize) -> Option<u16> {
        self.down_pub[i].first().copied()
    }

    /// The broker's current turn ended: what it did is in its store.
    pub fn turn_committed(&mut self) {
        for entries in self.retained.values_mut() {
            for e in entries.iter_mut().rev().take_while(|e| !e.committed) {
                e.committed = true;
            }
        }
    }

    /// The index of client `c{i}` of this world, if `client_id` is one.
    pub fn index(&self, client_id: &str) -> Option<usize> {
        let i: usize = client_id.strip_prefix('c')?.parse().ok()?;
        (i < self.specs.len()).then_some(i)
    }

    /// The broker accepted a CONNECT of client `i`, with or without a session. This is
    /// where sessions are judged (the client may never see the CONNACK).
    pub fn broker_accepted(
        &mut self,
        i: usize,
        conn: ConnectionId,
        now: Instant,
        session_present: bool,
    ) -> Result<(), Violation> {
        let s = self.tick();
        if i >= self.specs.len() {
            return Ok(());
        }
        self.accepts[i].push((now, s, conn));
        self.live[i] = Some(conn);
        if !session_present {
            // A session the store holds (and has not removed) is resumed, whatever kept
            // the client away; only a Clean client starts afresh.
            if self.had_session[i] && self.specs[i].durability != Durability::Clean {
                return self.fail(Violation::new(
                    "[MQTT-3.1.2-5] a stored session that has not expired is resumed",
                    format!("c{i} reconnected without its session at {now:?}"),
                ));
            }
            self.session_gone(i);
        }
        Ok(())
    }

    pub fn broker_ended(&mut self, i: usize, conn: ConnectionId, now: Instant, normal: bool) {
        let seq = self.tick();
        if i >= self.specs.len() {
            return;
        }
        self.ends.push(End {
            client: i,
            conn,
            at: now,
            seq,
            normal,
            crash: false,
        });
        self.last_end[i] = Some(now);
        if self.live[i] == Some(conn) {
            self.live[i] = None;
        }
    }

    pub fn will_published(&mut self, i: usize, now: Instant) {
        let s = self.tick();
        if i < self.specs.len() {
            self.wills[i].push((now, s));
        }
    }

    pub fn dropped(&mut self, i: usize, why: String) {
        self.drops.push((i, why));
    }

    /// The broker restarted at `now` from `snapshot`; its store counts a session that was
    /// connected, or whose end it had not committed, as gone since `since` (its last
    /// commit, for a store that keeps time).
    pub fn broker_restarted(&mut self, snapshot: &BrokerSnapshot, now: Instant, since: Instant) {
        let seq = self.tick();
        for end in self.last_end.iter_mut().flatten() {
            *end = (*end).min(since);
        }
        self.broker_restarts += 1;
        self.crashes.push(seq);
        for i in 0..self.specs.len() {
            let conn = self.live[i].take();
            // The restarted broker owes the wills its store holds (of a connection that
            // was live, or accepted without the broker's event getting out, or waiting
            // for its delay); each is an end of its own.
            let stored = snapshot
                .sessions
                .get(&MqttString::new(format!("c{i}")).expect("id"))
                .is_some_and(|s| s.will.is_some());
            if conn.is_some() || stored {
                self.ends.push(End {
                    client: i,
                    conn: conn.unwrap_or(ConnectionId(0)),
                    at: now,
                    seq,
                    normal: false,
                    crash: true,
                });
                // Gone since the store's last commit (connected then), or since before it.
                self.last_end[i] = match (conn, self.last_end[i]) {
                    (None, Some(t)) => Some(t.min(since)),
                    _ => Some(since),
                };
            }
        }
        // What a turn the crash cut short did never took effect.
        for entries in self.retained.values_mut() {
            for e in entries.iter_mut().filter(|e| !e.committed) {
                e.void = true;
            }
        }
    }

    pub fn client_restarted(&mut self, i: usize) {
        self.client_restarts += 1;
        self.up_req[i].clear();
        if self.specs[i].durability == Durability::Clean {
            self.pending[i].clear();
            self.up_pub[i].clear();
        }
    }

    /// The client's session is gone (legitimately): what it was owed is not owed any
    /// more.
    fn session_gone(&mut self, i: usize) {
        let at = self.tick();
        self.lost[i].push(at);
        for gs in self.grants[i].values_mut() {
            for g in gs {
                g.ended = true;
            }
        }
        self.down_pub[i].clear();
    }

    pub fn client_event(
        &mut self,
        i: usize,
        e: client::Event,
        _now: Instant,
    ) -> Result<(), Violation> {
        match e {
            client::Event::Connected(c) => {
                let spec = self.specs[i].clone();
                if !spec.v5 && spec.durability == Durability::Clean && c.session_present {
                    return self.fail(Violation::new(
                        "[MQTT-3.2.2-1] Clean Session 1 gets Session Present 0",
                        format!("c{i}"),
                    ));
                }
                if !c.session_present {
                    // What the client sent before is gone with its old session.
                    self.up_pub[i].clear();
                }
            }
            client::Event::Message(p) => {
                if let Some(id) = message_id(&p.payload)
                    && self.msgs.contains_key(&id)
                {
                    self.received[i].push((id, p.qos(), p.retain));
                }
            }
            client::Event::Published(done) => {
                if let Some(id) = self.pending[i].remove(&done.packet_id)
                    && !done.reason_code.is_error()
                    && let Some(m) = self.msgs.get_mut(&id)
                {
                    m.accepted = true;
                }
            }
            // (A durable session the broker loses is caught where the broker accepts the
            // connection; a client whose first connection finds no session drops what its
            // store says may have been sent, which is not owed to anyone.)
            client::Event::PublishDropped { packet_id, .. } => {
                self.pending[i].remove(&packet_id);
            }
            client::Event::Subscribed(s) => {
                let at = self.tick();
                let sent = self.subscribing[i].remove(&s.packet_id).unwrap_or(0);
                for (filter, _, rc) in s.filters {
                    if let Some(f) = filter_index(filter.as_str())
                        && !rc.is_error()
                    {
                        // An UNSUBSCRIBE sent after this SUBSCRIBE ends it, whichever
                        // answer came first.
                        let ended = self.unsubscribed_at[i].get(f).is_some_and(|u| *u > sent);
                        self.grants[i].entry(f).or_default().push(Grant {
                            sent,
                            at,
                            qos: rc.0,
                            ended,
                        });
                    }
                }
            }
            client::Event::Disconnected(d) if d.cause == CloseCause::ProtocolViolation => {
                return self.fail(Violation::new(
                    "the broker breaks no rule a client checks",
                    format!("c{i}: {d:?}"),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// The QoS a subscription of `i` on `filter` gives a message issued at `issued`, at
    /// least and at most (it may be granted again with another QoS before the message is
    /// routed); `None` if it is not owed the message.
    fn owed(&self, i: usize, filter: &str, issued: u64) -> Option<(u8, u8)> {
        let gs = self.grants[i].get(filter)?;
        let before = gs.iter().rfind(|g| g.at < issued)?;
        // An UNSUBSCRIBE (or the session's end) marks every grant made before it.
        if before.ended {
            return None;
        }
        let later = gs.iter().filter(|g| g.at > issued).map(|g| g.qos);
        let lo = later.clone().chain([before.qos]).min()?;
        let hi = later.chain([before.qos]).max()?;
        Some((lo, hi))
    }

    /// Checks everything at the end of a run; `retained` is what a new subscriber got.
    pub fn check(
        &mut self,
        retained: &HashMap<String, Vec<u8>>,
        now: Instant,
    ) -> Result<(), Violation> {
        if let Some(v) = self.failure.clone() {
            return Err(v);
        }
        if let Some((i, why)) = self.drops.first() {
            return Err(Violation::new(
                "nothing is dropped within the configured limits",
                format!("a message for c{i}: {why}"),
            ));
        }
        self.check_delivery()?;
        self.check_order()?;
        self.check_retained(retained)?;
        self.check_wills(now)
    }

    /// Whether the publisher of `m` lost its session while `m` was on its way: a session
    /// that expires while its client's CONNACK is lost is replaced by a new one that the
    /// client takes for the old, and a QoS 2 message it sends again is new to it. MQTT
    /// keeps no promise across that; the message still arrives.
    fn publisher_lost_session(&self, m: &Msg) -> bool {
        self.lost[m.from].iter().any(|at| *at > m.issued)
    }

    fn check_delivery(&self) -> Result<(), Violation> {
        let n = self.specs.len();
        let counts: Vec<HashMap<u64, usize>> = (0..n)
            .map(|i| {
                let mut c = HashMap::new();
                for (id, _, retain) in &self.received[i] {
                    if !retain {
                        *c.entry(*id).or_default() += 1;
                    }
                }
                c
            })
            .collect();
        for (id, m) in &self.msgs {
            if !m.accepted || m.qos == QoS::AtMostOnce || m.delete {
                continue;
            }
            let topic = TOPICS[m.topic];
            let q = m.qos as u8;
            if topic.starts_with("s/") {
                // The shared group: one member gets each message.
                let mut lo_all: Option<u8> = None;
                for i in 0..n {
                    if let Some((lo, _)) = self.owed(i, SHARED, m.issued) {
                        lo_all = Some(lo_all.map_or(lo, |x| x.min(lo)));
                    }
                }
                let Some(lo) = lo_all else { continue };
                // The broker may pick any member whose SUBSCRIBE it had when the message
                // arrived, answered or not: the least QoS among them bounds what the group
                // is owed.
                let lo = (0..n)
                    .flat_map(|i| self.grants[i].get(SHARED).into_iter().flatten())
                    .filter(|g| g.sent < m.received)
                    .map(|g| g.qos)
                    .fold(lo, u8::min);
                let got: usize = (0..n)
                    .map(|i| counts[i].get(id).copied().unwrap_or(0))
                    .sum();
                let eff = lo.min(q);
                if eff >= 1 && got == 0 {
                    return Err(Violation::new(
                        "[MQTT-4.8.2-2] an acknowledged message reaches one member of a shared subscription",
                        format!("message {id} (QoS {q}) on {topic} reached no member"),
                    ));
                }
                if eff == 2 && got > 1 && !self.publisher_lost_session(m) {
                    return Err(Violation::new(
                        "[MQTT-4.3.3-10] a QoS 2 message is delivered once",
                        format!("message {id} reached the shared group {got} times"),
                    ));
                }
                continue;
            }
            for (i, count) in counts.iter().enumerate() {
                if self.specs[i].durability == Durability::Clean {
                    continue;
                }
                let mut bound: Option<(u8, u8)> = None;
                for f in FILTERS {
                    if !matches_filter(f, topic) {
                        continue;
                    }
                    if let Some((lo, hi)) = self.owed(i, f, m.issued) {
                        bound = Some(bound.map_or((lo, hi), |(a, b)| (a.max(lo), b.max(hi))));
                    }
                }
                let Some((lo, _)) = bound else { continue };
                let eff = lo.min(q);
                let got = count.get(id).copied().unwrap_or(0);
                if eff >= 1 && got == 0 {
                    return Err(Violation::new(
                        "[MQTT-4.3.2-2] an acknowledged QoS 1/2 message reaches every subscriber whose session lasts",
                        format!(
                            "c{i} never got message {id} (QoS {q}, from c{}) on {topic}",
                            m.from
                        ),
                    ));
                }
                if eff == 2 && got > 1 && !self.publisher_lost_session(m) {
                    return Err(Violation::new(
                        "[MQTT-4.3.3-10] a QoS 2 message is delivered once",
                        format!("c{i} got message {id} {got} times"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// First receipts of each publisher's messages on one topic at one QoS follow the
    /// order in which the broker received them ([MQTT-4.6.0-5], [MQTT-4.6.0-6]); the
    /// broker receives a message again when its publisher resends it, so the order is that
    /// of the publisher's transmissions, resends included.
    fn check_order(&self) -> Result<(), Violation> {
        for (sub, got) in self.received.iter().enumerate() {
            let mut seen = HashSet::new();
            let mut firsts: HashMap<(usize, usize, QoS), Vec<u64>> = HashMap::new();
            for (id, q, retain) in got {
                if *retain || *q == QoS::AtMostOnce || !seen.insert(*id) {
                    continue;
                }
                let m = &self.msgs[id];
                if !TOPICS[m.topic].starts_with("t/") {
                    continue;
                }
                firsts
                    .entry((m.from, m.topic, m.qos))
                    .or_default()
                    .push(*id);
            }
            for ((from, topic, qos), ids) in firsts {
                let mut wire = self.transmitted[from].iter().filter(|id| {
                    let m = &self.msgs[*id];
                    m.topic == topic && m.qos == qos
                });
                for id in &ids {
                    if !wire.any(|x| x == id) {
                        return Err(Violation::new(
                            "[MQTT-4.6.0-6] messages are delivered in the order they were published",
                            format!(
                                "c{sub} first received {ids:?} from c{from} on {}, which sent {:?}",
                                TOPICS[topic],
                                self.transmitted[from]
                                    .iter()
                                    .filter(|x| self.msgs[*x].topic == topic
                                        && self.msgs[*x].qos == qos)
                                    .collect::<Vec<_>>()
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// A new subscriber gets, per topic, the last retained message the broker took
    /// ([MQTT-3.3.1-5], [MQTT-3.3.1-6] for deletions, [MQTT-3.3.1-9]), and every
    /// acknowledged retained message was stored.
    fn check_retained(&self, got: &HashMap<String, Vec<u8>>) -> Result<(), Violation> {
        for (t, topic) in TOPICS.iter().enumerate() {
            let entries = self.retained.get(&t).map(Vec::as_slice).unwrap_or_default();
            let want = entries.iter().rfind(|e| !e.void).and_then(|e| e.value);
            let have = got.get(*topic).and_then(|p| message_id(p));
            if want != have {
                return Err(Violation::new(
                    "[MQTT-3.3.1-5] a subscriber gets the last retained message of a topic",
                    format!("{topic}: expected {want:?}, got {have:?} (history {entries:?})"),
                ));
            }
        }
        for (id, m) in &self.msgs {
            // (A deletion of nothing stores nothing; the last value says the rest.)
            if m.retain && m.accepted && m.qos != QoS::AtMostOnce && !m.delete {
                let stored = self
                    .retained
                    .get(&m.topic)
                    .is_some_and(|es| es.iter().any(|e| e.msg == *id && e.persisted));
                if !stored {
                    return Err(Violation::new(
                        "[MQTT-3.3.1-5] an acknowledged retained message is stored",
                        format!("message {id} on {}", TOPICS[m.topic]),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Wills: never after a normal DISCONNECT ([MQTT-3.14.4-3]; 3.1.1 [MQTT-3.1.2-10]), at
    /// most once per connection, not when the client comes back within the Will Delay
    /// ([MQTT-3.1.3-9]), and once the delay (or the session) is over ([MQTT-3.1.2-8]).
    fn check_wills(&self, now: Instant) -> Result<(), Violation> {
        for (i, spec) in self.specs.iter().enumerate() {
            let Some(delay) = spec.will else { continue };
            let mut ends: Vec<&End> = self.ends.iter().filter(|e| e.client == i).collect();
            ends.sort_by_key(|e| e.seq);
            for w in &self.wills[i] {
                if !ends.iter().any(|e| e.seq < w.1) {
                    return Err(Violation::new(
                        "[MQTT-3.1.2-8] a will is published only after its connection ends",
                        format!("c{i}'s will at {:?} before any end", w.0),
                    ));
                }
            }
            for (k, e) in ends.iter().enumerate() {
                let next_end = ends.get(k + 1).map_or(u64::MAX, |x| x.seq);
                let published: Vec<_> = self.wills[i]
                    .iter()
                    .filter(|w| w.1 > e.seq && w.1 < next_end)
                    .collect();
                if e.normal {
                    if !published.is_empty() {
                        return Err(Violation::new(
                            "[MQTT-3.14.4-3] no will after a normal DISCONNECT",
                            format!("c{i}'s connection {} ended normally", e.conn.0),
                        ));
                    }
                    continue;
                }
                if published.len() > 1 {
                    return Err(Violation::new(
                        "[MQTT-3.1.2-8] a will is published once",
                        format!("c{i}'s will went out {} times", published.len()),
                    ));
                }
                let next_accept = self.accepts[i]
                    .iter()
                    .find(|(_, s, c)| *s > e.seq && *c != e.conn);
                let crashed = self
                    .crashes
                    .iter()
                    .any(|c| *c >= e.seq && next_accept.is_none_or(|a| *c < a.1));
                if e.crash || crashed {
                    continue;
                }
                let eff = delay.min(spec.expiry()) as u64;
                let due = e.at + std::time::Duration::from_secs(eff);
                match next_accept {
                    Some((at, _, _)) if delay > 0 && *at < due && !published.is_empty() => {
                        return Err(Violation::new(
                            "[MQTT-3.1.3-9] no will when the client is back within the Will Delay",
                            format!(
                                "c{i} came back {:?} after its end",
                                at.saturating_duration_since(e.at)
                            ),
                        ));
                    }
                    Some((at, _, _)) if delay > 0 && *at < due => {}
                    Some((at, _, _)) if *at == due => {}
                    _ if due < now && published.is_empty() => {
                        return Err(Violation::new(
                            "[MQTT-3.1.2-8] the will is published when the Will Delay or the session ends",
                            format!(
                                "c{i}'s connection {} ended at {:?}, will delay {delay} s, none published",
                                e.conn.0, e.at
                            ),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

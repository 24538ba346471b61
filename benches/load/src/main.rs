//! A load test of an MQTT broker on 127.0.0.1 with rumqttc clients that do no pacing of
//! their own: publishers publish as fast as rumqttc's event loop takes their messages
//! (`AsyncClient::publish`, the `EventLoop` polled in a task), subscribers read as fast as
//! they can. It measures how many messages arrive, in order and once, and how fast.
//!
//! ```sh
//! cargo build --release -p mqtt-session --features cli --bin mqtt-broker
//! target/release/mqtt-broker --bind 127.0.0.1:1883 &
//! cargo run --release --manifest-path benches/load/Cargo.toml -- \
//!     --port 1883 --scenario qos1-4to4 --broker ours
//! ```
//!
//! Scenarios (`--scenario`):
//! - `qos0-1to1`: 1 publisher, 1 subscriber, 200,000 QoS 0 messages;
//! - `qos1-1to1`: 1 publisher, 1 subscriber, 200,000 QoS 1 messages;
//! - `qos1-4to4`: 4 publishers each send 50,000 QoS 1 messages to `bench/{p}`, 4 subscribers
//!   on `bench/#` (QoS 1 subscriptions) each receive all of them: 800,000 deliveries.
//!
//! Options: `--port PORT` (the broker on 127.0.0.1, default 1883), `--broker LABEL` (printed),
//! `--payload BYTES` (default 64, at least 12), `--v5` (MQTT 5; default 3.1.1),
//! `--timeout SECONDS` (default 120), `--idle SECONDS` (default 10: stop early once every
//! publisher is done and nothing has arrived for that long), `--messages N` (per publisher,
//! instead of the scenario's count), `--nodelay all|subscribers|publishers` (TCP_NODELAY on
//! those clients; rumqttc's default, kept otherwise, leaves Nagle's algorithm on),
//! `--inflight N` (a publisher's unacknowledged QoS 1 messages at most; rumqttc's default is
//! 100 under 3.1.1 and the broker's Receive Maximum under 5), `--durable` (every client keeps
//! a session that outlives its connection: Clean Session 0 under 3.1.1, Clean Start 0 and a
//! Session Expiry Interval of an hour under 5; a broker with persistence then stores every
//! QoS 1/2 delivery).
//!
//! Subscribers subscribe first and wait for their SUBACK; publishers connect; then all
//! publish at once. Sessions are clean unless `--durable`; client ids are new in each run. Each payload carries its publisher's index and a
//! sequence number, so that each subscriber checks per-publisher order and duplicates.
//! Prints one line of `key=value` pairs:
//!
//! ```text
//! scenario=qos1-4to4 broker=ours protocol=3.1.1 delivered=800000 expected=800000 percent=100.000 seconds=4.210 rate=190024 duplicates=0 reordered=0 errors=0 end=complete
//! ```
//!
//! `seconds` runs from the first publish to the last delivery, `rate` is `delivered /
//! seconds`, and `end` says why it stopped: `complete`, `timeout`, `stalled` (no delivery for
//! `--idle` seconds after every publisher was done) or `error`. It exits 1 unless every
//! message arrived, once and in order, with no client losing its connection (QoS 0 too: the
//! subscriber keeps reading, so nothing may be lost). `benches/load/run.py` runs it against
//! several brokers.
#![forbid(unsafe_code)]
#![allow(clippy::disallowed_methods)] // a load test reads the clock

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::Outgoing;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The only host this test connects to.
const HOST: &str = "127.0.0.1";
/// Capacity of each client's request channel, as in rumqttc's own examples.
const REQUEST_CAPACITY: usize = 10;
/// How long connecting and subscribing may take, per client.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes at the start of each payload: the publisher's index (u32) and a sequence number (u64).
const HEADER: usize = 12;

/// Who publishes what to whom.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    name: &'static str,
    publishers: u32,
    subscribers: u32,
    /// Messages each publisher sends.
    messages: u64,
    /// QoS of the messages and of the subscriptions.
    qos: u8,
    /// What each subscriber subscribes to; publisher `p` publishes to `bench/{p}`.
    filter: &'static str,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "qos0-1to1",
        publishers: 1,
        subscribers: 1,
        messages: 200_000,
        qos: 0,
        filter: "bench/0",
    },
    Scenario {
        name: "qos1-1to1",
        publishers: 1,
        subscribers: 1,
        messages: 200_000,
        qos: 1,
        filter: "bench/0",
    },
    Scenario {
        name: "qos1-4to4",
        publishers: 4,
        subscribers: 4,
        messages: 50_000,
        qos: 1,
        filter: "bench/#",
    },
];

/// The command line.
struct Args {
    scenario: Scenario,
    port: u16,
    broker: String,
    payload: usize,
    v5: bool,
    timeout: Duration,
    idle: Duration,
    /// TCP_NODELAY on the publishers, on the subscribers.
    nodelay: (bool, bool),
    inflight: Option<u16>,
    durable: bool,
}

impl Args {
    fn parse() -> Result<Args, String> {
        let mut scenario = None;
        let mut messages = None;
        let mut a = Args {
            scenario: SCENARIOS[0],
            port: 1883,
            broker: "broker".into(),
            payload: 64,
            v5: false,
            timeout: Duration::from_secs(120),
            idle: Duration::from_secs(10),
            nodelay: (false, false),
            inflight: None,
            durable: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--scenario" => {
                    let v = value()?;
                    let s = SCENARIOS.iter().find(|s| s.name == v).ok_or(format!(
                        "--scenario {v}: expected one of {}",
                        SCENARIOS.map(|s| s.name).join(", ")
                    ))?;
                    scenario = Some(*s);
                }
                "--port" => a.port = number(&flag, &value()?)?,
                "--broker" => a.broker = value()?,
                "--payload" => a.payload = number(&flag, &value()?)?,
                "--v5" => a.v5 = true,
                "--nodelay" => {
                    a.nodelay = match value()?.as_str() {
                        "all" => (true, true),
                        "publishers" => (true, false),
                        "subscribers" => (false, true),
                        v => {
                            return Err(format!(
                                "--nodelay {v}: expected all, publishers or subscribers"
                            ));
                        }
                    }
                }
                "--timeout" => a.timeout = Duration::from_secs(number(&flag, &value()?)?),
                "--idle" => a.idle = Duration::from_secs(number(&flag, &value()?)?),
                "--inflight" => a.inflight = Some(number(&flag, &value()?)?),
                "--durable" => a.durable = true,
                "--messages" => messages = Some(number(&flag, &value()?)?),
                "--help" | "-h" => return Err(String::new()),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        a.scenario = scenario.ok_or("--scenario is required")?;
        if let Some(m) = messages {
            a.scenario.messages = m;
        }
        if a.inflight == Some(0) {
            return Err("--inflight must be at least 1".into());
        }
        if a.payload < HEADER {
            return Err(format!("--payload must be at least {HEADER}"));
        }
        Ok(a)
    }

    fn protocol(&self) -> &'static str {
        if self.v5 { "5" } else { "3.1.1" }
    }

    fn expected(&self) -> u64 {
        let s = &self.scenario;
        u64::from(s.publishers) * u64::from(s.subscribers) * s.messages
    }
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag} {v}: not a number"))
}

/// What a client's event loop reported, the same for both protocol versions.
enum Seen {
    ConnAck,
    SubAck {
        granted: bool,
    },
    Publish(Bytes),
    PubAck,
    /// A PUBLISH written to the socket.
    Sent,
    Other,
}

/// A rumqttc client handle, MQTT 3.1.1 or 5.
enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// The rumqttc event loop that goes with a [`Client`].
enum Loop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

/// A new client with a clean session; it connects when its loop is first polled.
fn client(args: &Args, id: String, subscriber: bool) -> (Client, Loop) {
    let max = args.payload + 1024;
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(if subscriber {
        args.nodelay.1
    } else {
        args.nodelay.0
    });
    if args.v5 {
        let mut o = rumqttc::v5::MqttOptions::new(id, HOST, args.port);
        o.set_clean_start(!args.durable)
            .set_session_expiry_interval(args.durable.then_some(3600))
            .set_max_packet_size(Some(max as u32))
            .set_network_options(net);
        if let Some(n) = args.inflight {
            o.set_outgoing_inflight_upper_limit(n);
        }
        let (c, l) = rumqttc::v5::AsyncClient::new(o, REQUEST_CAPACITY);
        (Client::V5(c), Loop::V5(Box::new(l)))
    } else {
        let mut o = rumqttc::MqttOptions::new(id, HOST, args.port);
        o.set_clean_session(!args.durable)
            .set_max_packet_size(max, max);
        if let Some(n) = args.inflight {
            o.set_inflight(n);
        }
        let (c, mut l) = rumqttc::AsyncClient::new(o, REQUEST_CAPACITY);
        l.set_network_options(net);
        (Client::V4(c), Loop::V4(Box::new(l)))
    }
}

impl Client {
    async fn publish(&self, topic: &str, qos: u8, payload: Vec<u8>) -> Result<(), String> {
        match self {
            Client::V4(c) => {
                (c.publish(topic, qos4(qos), false, payload).await).map_err(|e| e.to_string())
            }
            Client::V5(c) => {
                (c.publish(topic, qos5(qos), false, payload).await).map_err(|e| e.to_string())
            }
        }
    }

    async fn subscribe(&self, filter: &str, qos: u8) -> Result<(), String> {
        match self {
            Client::V4(c) => (c.subscribe(filter, qos4(qos)).await).map_err(|e| e.to_string()),
            Client::V5(c) => (c.subscribe(filter, qos5(qos)).await).map_err(|e| e.to_string()),
        }
    }
}

fn qos4(qos: u8) -> rumqttc::QoS {
    if qos == 0 {
        rumqttc::QoS::AtMostOnce
    } else {
        rumqttc::QoS::AtLeastOnce
    }
}

fn qos5(qos: u8) -> rumqttc::v5::mqttbytes::QoS {
    if qos == 0 {
        rumqttc::v5::mqttbytes::QoS::AtMostOnce
    } else {
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce
    }
}

impl Loop {
    /// The next event; an error means the connection is lost (this test does not reconnect).
    async fn poll(&mut self) -> Result<Seen, String> {
        match self {
            Loop::V4(l) => {
                use rumqttc::{Event, Packet, SubscribeReasonCode};
                Ok(match l.poll().await.map_err(|e| e.to_string())? {
                    Event::Incoming(Packet::ConnAck(_)) => Seen::ConnAck,
                    Event::Incoming(Packet::SubAck(s)) => Seen::SubAck {
                        granted: (s.return_codes.iter())
                            .all(|c| matches!(c, SubscribeReasonCode::Success(_))),
                    },
                    Event::Incoming(Packet::Publish(p)) => Seen::Publish(p.payload),
                    Event::Incoming(Packet::PubAck(_)) => Seen::PubAck,
                    Event::Outgoing(Outgoing::Publish(_)) => Seen::Sent,
                    _ => Seen::Other,
                })
            }
            Loop::V5(l) => {
                use rumqttc::v5::Event;
                use rumqttc::v5::mqttbytes::v5::{Packet, SubscribeReasonCode};
                Ok(match l.poll().await.map_err(|e| e.to_string())? {
                    Event::Incoming(Packet::ConnAck(_)) => Seen::ConnAck,
                    Event::Incoming(Packet::SubAck(s)) => Seen::SubAck {
                        granted: (s.return_codes.iter())
                            .all(|c| matches!(c, SubscribeReasonCode::Success(_))),
                    },
                    Event::Incoming(Packet::Publish(p)) => Seen::Publish(p.payload),
                    Event::Incoming(Packet::PubAck(_)) => Seen::PubAck,
                    Event::Incoming(Packet::Disconnect(d)) => {
                        return Err(format!("DISCONNECT from the broker: {:?}", d.reason_code));
                    }
                    Event::Outgoing(Outgoing::Publish(_)) => Seen::Sent,
                    _ => Seen::Other,
                })
            }
        }
    }

    /// Polls until `done` says the event is the one waited for, within [`SETUP_TIMEOUT`].
    async fn until(&mut self, what: &str, done: impl Fn(&Seen) -> bool) -> Result<Seen, String> {
        let wait = async {
            loop {
                let seen = self.poll().await?;
                if done(&seen) {
                    return Ok(seen);
                }
            }
        };
        tokio::time::timeout(SETUP_TIMEOUT, wait)
            .await
            .map_err(|_| format!("no {what} within {SETUP_TIMEOUT:?}"))?
    }
}

/// What one subscriber received.
#[derive(Default)]
struct Received {
    /// Distinct messages.
    delivered: u64,
    duplicates: u64,
    /// Messages that arrived after a later one from the same publisher.
    reordered: u64,
    /// Payloads that name no publisher of this run or a sequence number beyond its count.
    malformed: u64,
    last: Option<Instant>,
    error: Option<String>,
}

/// Reads until every message has arrived, `stop` is set, or the connection is lost.
async fn subscriber(
    mut events: Loop,
    scenario: Scenario,
    total: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Received {
    let mut r = Received::default();
    let n = scenario.messages as usize;
    let mut seen = vec![vec![0u64; n.div_ceil(64)]; scenario.publishers as usize];
    let mut next = vec![0u64; scenario.publishers as usize];
    let expected = u64::from(scenario.publishers) * scenario.messages;
    while r.delivered < expected {
        let event = tokio::select! {
            e = events.poll() => e,
            _ = stop.changed() => break,
        };
        let payload = match event {
            Ok(Seen::Publish(p)) => p,
            Ok(_) => continue,
            Err(e) => {
                r.error = Some(e);
                break;
            }
        };
        let Some((p, seq)) = header(&payload) else {
            r.malformed += 1;
            continue;
        };
        if p >= scenario.publishers as usize || seq >= scenario.messages {
            r.malformed += 1;
            continue;
        }
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if seen[p][word] & bit != 0 {
            r.duplicates += 1;
            continue;
        }
        seen[p][word] |= bit;
        if seq < next[p] {
            r.reordered += 1;
        }
        next[p] = next[p].max(seq + 1);
        r.delivered += 1;
        r.last = Some(Instant::now());
        total.fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// The publisher's index and the sequence number at the start of a payload.
fn header(payload: &[u8]) -> Option<(usize, u64)> {
    let p = u32::from_be_bytes(payload.get(0..4)?.try_into().ok()?);
    let seq = u64::from_be_bytes(payload.get(4..12)?.try_into().ok()?);
    Some((p as usize, seq))
}

/// What one publisher got done.
#[derive(Default)]
struct Published {
    sent: u64,
    acknowledged: u64,
    error: Option<String>,
}

/// Polls a publisher's event loop until `stop` is set or the connection is lost, counting
/// what it sent and what was acknowledged; `done` is counted up once all of it was.
async fn publisher_loop(
    mut events: Loop,
    scenario: Scenario,
    done: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Published {
    let mut r = Published::default();
    let mut finished = false;
    loop {
        let event = tokio::select! {
            e = events.poll() => e,
            _ = stop.changed() => break,
        };
        match event {
            Ok(Seen::Sent) => r.sent += 1,
            Ok(Seen::PubAck) => r.acknowledged += 1,
            Ok(_) => continue,
            Err(e) => {
                r.error = Some(e);
                break;
            }
        }
        let counted = if scenario.qos == 0 {
            r.sent
        } else {
            r.acknowledged
        };
        if !finished && counted == scenario.messages {
            finished = true;
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
    if r.error.is_some() && !finished {
        done.fetch_add(1, Ordering::Relaxed); // it will send no more
    }
    r
}

/// Hands publisher `p`'s messages to rumqttc, as fast as its request channel takes them.
async fn publish_all(client: Client, p: u32, scenario: Scenario, payload: usize) {
    let topic = format!("bench/{p}");
    for seq in 0..scenario.messages {
        let mut body = vec![0u8; payload];
        body[0..4].copy_from_slice(&p.to_be_bytes());
        body[4..12].copy_from_slice(&seq.to_be_bytes());
        if client.publish(&topic, scenario.qos, body).await.is_err() {
            return; // its event loop has ended, with the error it reports
        }
    }
}

/// Why a run stopped.
#[derive(Clone, Copy, PartialEq, Debug)]
enum End {
    Complete,
    Timeout,
    Stalled,
    Error,
}

async fn run(args: &Args) -> Result<bool, String> {
    let s = args.scenario;
    let tag = std::process::id();
    let (stop_tx, stop) = watch::channel(false);
    let total = Arc::new(AtomicU64::new(0));

    let mut subscribers: Vec<JoinHandle<Received>> = Vec::new();
    for i in 0..s.subscribers {
        let (c, mut events) = client(args, format!("load-{tag}-sub-{i}"), true);
        events
            .until("CONNACK", |e| matches!(e, Seen::ConnAck))
            .await?;
        c.subscribe(s.filter, s.qos).await?;
        match events
            .until("SUBACK", |e| matches!(e, Seen::SubAck { .. }))
            .await?
        {
            Seen::SubAck { granted: true } => {}
            _ => return Err(format!("subscriber {i}: SUBACK refused {}", s.filter)),
        }
        let (total, stop) = (total.clone(), stop.clone());
        subscribers.push(tokio::spawn(subscriber(events, s, total, stop)));
    }

    let done = Arc::new(AtomicU64::new(0));
    let mut publishers = Vec::new();
    for p in 0..s.publishers {
        let (c, mut events) = client(args, format!("load-{tag}-pub-{p}"), false);
        events
            .until("CONNACK", |e| matches!(e, Seen::ConnAck))
            .await?;
        publishers.push((p, c, events));
    }

    let start = Instant::now();
    let mut loops: Vec<JoinHandle<Published>> = Vec::new();
    for (p, c, events) in publishers {
        let (done, stop) = (done.clone(), stop.clone());
        loops.push(tokio::spawn(publisher_loop(events, s, done, stop)));
        tokio::spawn(publish_all(c, p, s, args.payload));
    }

    let expected = args.expected();
    let deadline = start + args.timeout;
    let (mut last_total, mut last_change) = (0, Instant::now());
    let end = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = Instant::now();
        let t = total.load(Ordering::Relaxed);
        if t != last_total {
            (last_total, last_change) = (t, now);
        }
        if t >= expected {
            break End::Complete;
        }
        if subscribers.iter().all(|h| h.is_finished()) {
            break End::Error; // every subscriber stopped short of its count: lost connections
        }
        if now >= deadline {
            break End::Timeout;
        }
        if done.load(Ordering::Relaxed) == u64::from(s.publishers)
            && now.duration_since(last_change) >= args.idle
        {
            break End::Stalled;
        }
    };
    let wall = start.elapsed();
    let _ = stop_tx.send(true);

    let mut received = Vec::new();
    for h in subscribers {
        received.push(h.await.map_err(|e| e.to_string())?);
    }
    let mut published = Vec::new();
    for h in loops {
        published.push(h.await.map_err(|e| e.to_string())?);
    }

    let delivered: u64 = received.iter().map(|r| r.delivered).sum();
    let duplicates: u64 = received.iter().map(|r| r.duplicates).sum();
    let reordered: u64 = received.iter().map(|r| r.reordered).sum();
    let malformed: u64 = received.iter().map(|r| r.malformed).sum();
    let mut errors = 0;
    for (i, r) in received.iter().enumerate() {
        if let Some(e) = &r.error {
            errors += 1;
            eprintln!(
                "subscriber {i}: connection lost after {} messages: {e}",
                r.delivered
            );
        }
    }
    for (p, r) in published.iter().enumerate() {
        if let Some(e) = &r.error {
            errors += 1;
            eprintln!(
                "publisher {p}: connection lost after {} sent, {} acknowledged: {e}",
                r.sent, r.acknowledged
            );
        }
    }
    let end = if errors > 0 && end != End::Complete {
        End::Error
    } else {
        end
    };
    let last = received.iter().filter_map(|r| r.last).max();
    let seconds = last.map_or(wall, |l| l.duration_since(start)).as_secs_f64();
    let percent = 100.0 * delivered as f64 / expected as f64;
    let rate = if seconds > 0.0 {
        delivered as f64 / seconds
    } else {
        0.0
    };
    println!(
        "scenario={} broker={} protocol={} delivered={delivered} expected={expected} \
         percent={percent:.3} seconds={seconds:.3} rate={rate:.0} duplicates={duplicates} \
         reordered={reordered} errors={errors} end={}",
        s.name,
        args.broker,
        args.protocol(),
        format!("{end:?}").to_lowercase(),
    );
    if malformed > 0 {
        eprintln!("{malformed} payloads named no message of this run");
    }
    Ok(delivered == expected && duplicates == 0 && reordered == 0 && malformed == 0 && errors == 0)
}

fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("load: {e}");
            }
            eprintln!(
                "usage: load --scenario {} [--port PORT] [--broker LABEL] [--payload BYTES] \
                 [--v5] [--timeout SECONDS] [--idle SECONDS] [--messages N] \
                 [--nodelay all|publishers|subscribers] [--inflight N] [--durable]",
                SCENARIOS.map(|s| s.name).join("|")
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(run(&args));
    // Tasks still blocked on a paused connection are not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("load: {} on 127.0.0.1:{}: {e}", args.broker, args.port);
            ExitCode::from(1)
        }
    }
}

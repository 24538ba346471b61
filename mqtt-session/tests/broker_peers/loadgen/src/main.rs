//! A load generator for the broker program on 127.0.0.1: P publishers each send M messages
//! to `load/{p}`, S subscribers to `load/#` each receive all of them; it prints how long that
//! took and the deliveries per second. Bounded: at most `--timeout` seconds.
//!
//! ```sh
//! cargo run --release --manifest-path mqtt-session/tests/broker_peers/loadgen/Cargo.toml -- \
//!     127.0.0.1:1883 --publishers 8 --subscribers 1 --qos 0 --messages 20000
//! ```
//!
//! Flow control keeps every queue bounded, so that the broker never has to drop a message
//! or a slow subscriber: publishers together keep at most 512 messages ahead of the slowest
//! subscriber (they see its count in this process); a QoS 1 publisher also keeps at most 64
//! PUBLISH unacknowledged, and subscribers announce a Receive Maximum of 256.
#![forbid(unsafe_code)]
#![allow(clippy::disallowed_methods)] // a load generator reads the clock

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mqtt_codec::{
    BytesMut, Connect, DecodeContext, MqttString, Packet, PacketId, ProtocolVersion, PubResponse,
    Publish, QoS, QosPid, Subscribe, SubscriptionOptions, TopicFilter, TopicName,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Notify};

const V5: ProtocolVersion = ProtocolVersion::V5;
/// Messages a publisher writes at once.
const BATCH: usize = 32;
/// Unacknowledged QoS 1 PUBLISH per publisher.
const WINDOW: usize = 64;
/// Messages all publishers together may be ahead of the slowest subscriber.
const AHEAD: usize = 512;

/// How far publishing and receiving have got, shared by every task.
struct Progress {
    published: AtomicUsize,
    received: Vec<AtomicUsize>,
    moved: Notify,
}

impl Progress {
    /// Waits until `n` more messages keep the publishers within `AHEAD` of the slowest
    /// subscriber, then counts them as published.
    async fn reserve(&self, n: usize) {
        loop {
            let slowest = self
                .received
                .iter()
                .map(|r| r.load(Ordering::Acquire))
                .min()
                .unwrap_or(0);
            let published = self.published.load(Ordering::Acquire);
            if published + n <= slowest + AHEAD
                && self
                    .published
                    .compare_exchange(
                        published,
                        published + n,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
            {
                return;
            }
            if published + n > slowest + AHEAD {
                // A subscriber's progress wakes us; the timeout covers a wake-up missed
                // between the check and the wait.
                let _ = tokio::time::timeout(Duration::from_millis(1), self.moved.notified()).await;
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Args {
    addr: SocketAddr,
    publishers: usize,
    subscribers: usize,
    qos: QoS,
    messages: usize,
    payload: usize,
    timeout: u64,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let addr = it
        .next()
        .ok_or("usage: broker-loadgen ADDR [--publishers P] [--subscribers S] [--qos 0|1] [--messages M] [--payload BYTES] [--timeout SECS]")?
        .parse()
        .map_err(|e| format!("address: {e}"))?;
    let mut a = Args {
        addr,
        publishers: 1,
        subscribers: 1,
        qos: QoS::AtMostOnce,
        messages: 10_000,
        payload: 32,
        timeout: 60,
    };
    while let Some(flag) = it.next() {
        let v: usize = it
            .next()
            .ok_or(format!("{flag} needs a value"))?
            .parse()
            .map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--publishers" => a.publishers = v.max(1),
            "--subscribers" => a.subscribers = v.max(1),
            "--qos" => {
                a.qos = if v == 0 {
                    QoS::AtMostOnce
                } else {
                    QoS::AtLeastOnce
                }
            }
            "--messages" => a.messages = v,
            "--payload" => a.payload = v,
            "--timeout" => a.timeout = v as u64,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

/// One MQTT v5 connection.
struct Client {
    stream: TcpStream,
    rx: BytesMut,
    tx: BytesMut,
}

impl Client {
    async fn connect(addr: SocketAddr, id: String, receive_maximum: u16) -> Result<Self, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut c = Self {
            stream,
            rx: BytesMut::with_capacity(64 * 1024),
            tx: BytesMut::with_capacity(64 * 1024),
        };
        let mut connect = Connect::new(V5, MqttString::new(id).map_err(|e| e.to_string())?);
        connect.keep_alive = 0;
        connect.properties.receive_maximum = NonZeroU16::new(receive_maximum);
        c.queue(&Packet::Connect(Box::new(connect)));
        c.flush().await?;
        match c.recv().await? {
            Packet::ConnAck(a) if !a.reason_code.is_error() => Ok(c),
            other => Err(format!("expected CONNACK 0x00, got {other:?}")),
        }
    }

    fn queue(&mut self, p: &Packet) {
        p.encode(V5, &mut self.tx)
            .expect("the generator's packets encode");
    }

    async fn flush(&mut self) -> Result<(), String> {
        self.stream
            .write_all(&self.tx)
            .await
            .map_err(|e| format!("write: {e}"))?;
        self.tx.clear();
        Ok(())
    }

    async fn recv(&mut self) -> Result<Packet, String> {
        let cx = DecodeContext::new(V5);
        loop {
            if let Some(p) = Packet::decode(&mut self.rx, &cx).map_err(|e| e.to_string())? {
                return Ok(p);
            }
            // What is queued (acknowledgements) goes out before waiting for more.
            if !self.tx.is_empty() {
                self.flush().await?;
            }
            let n = self
                .stream
                .read_buf(&mut self.rx)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the broker closed the connection".into());
            }
        }
    }
}

async fn subscriber(
    a: Args,
    n: usize,
    ready: Arc<Barrier>,
    progress: Arc<Progress>,
) -> Result<Instant, String> {
    let mut c = Client::connect(a.addr, format!("load-sub-{n}"), 256).await?;
    let filter = (
        TopicFilter::from_static("load/#"),
        SubscriptionOptions::qos(a.qos),
    );
    let s = Subscribe::new(PacketId::new(1).expect("1"), vec![filter]);
    c.queue(&Packet::Subscribe(s));
    c.flush().await?;
    match c.recv().await? {
        Packet::SubAck(_) => {}
        other => return Err(format!("expected SUBACK, got {other:?}")),
    }
    ready.wait().await;
    let expected = a.publishers * a.messages;
    let mut got = 0;
    while got < expected {
        let p = c.recv().await?;
        if let Packet::Publish(p) = p {
            got += 1;
            if let Some(id) = p.qos_pid.packet_id() {
                c.queue(&Packet::PubAck(PubResponse::new(id)));
            }
            progress.received[n].store(got, Ordering::Release);
            if got % BATCH == 0 || got == expected {
                progress.moved.notify_waiters();
            }
        }
    }
    c.flush().await?;
    Ok(Instant::now())
}

async fn publisher(
    a: Args,
    n: usize,
    ready: Arc<Barrier>,
    progress: Arc<Progress>,
) -> Result<(), String> {
    let mut c = Client::connect(a.addr, format!("load-pub-{n}"), 65_535).await?;
    let topic = TopicName::new(format!("load/{n}")).map_err(|e| e.to_string())?;
    let payload = vec![b'x'; a.payload];
    ready.wait().await;
    let mut unacked = 0;
    let mut next_id: u16 = 0;
    for i in 0..a.messages {
        if i % BATCH == 0 {
            c.flush().await?;
            progress.reserve(BATCH.min(a.messages - i)).await;
        }
        let mut p = Publish::new(topic.clone(), payload.clone());
        if a.qos != QoS::AtMostOnce {
            next_id = next_id.checked_add(1).unwrap_or(1);
            p.qos_pid = QosPid::AtLeastOnce(PacketId::new(next_id).expect("not 0"));
            unacked += 1;
        }
        c.queue(&Packet::Publish(p));
        let last = i + 1 == a.messages;
        if a.qos == QoS::AtMostOnce {
            if last {
                c.flush().await?;
            }
        } else if unacked >= WINDOW || last {
            c.flush().await?;
            let target = if last { 0 } else { WINDOW / 2 };
            while unacked > target {
                if let Packet::PubAck(_) = c.recv().await? {
                    unacked -= 1;
                }
            }
        }
    }
    Ok(())
}

async fn run(a: Args) -> Result<(), String> {
    let ready = Arc::new(Barrier::new(a.publishers + a.subscribers + 1));
    let progress = Arc::new(Progress {
        published: AtomicUsize::new(0),
        received: (0..a.subscribers).map(|_| AtomicUsize::new(0)).collect(),
        moved: Notify::new(),
    });
    let subs: Vec<_> = (0..a.subscribers)
        .map(|n| tokio::spawn(subscriber(a, n, ready.clone(), progress.clone())))
        .collect();
    let pubs: Vec<_> = (0..a.publishers)
        .map(|n| tokio::spawn(publisher(a, n, ready.clone(), progress.clone())))
        .collect();
    ready.wait().await;
    let start = Instant::now();
    for p in pubs {
        p.await.map_err(|e| e.to_string())??;
    }
    let mut end = start;
    for s in subs {
        end = end.max(s.await.map_err(|e| e.to_string())??);
    }
    let secs = (end - start).as_secs_f64();
    let published = a.publishers * a.messages;
    let delivered = published * a.subscribers;
    println!(
        "{} publishers -> {} subscribers, QoS {}, {} messages of {} bytes each: {:.3} s, {:.0} publishes/s, {:.0} deliveries/s",
        a.publishers,
        a.subscribers,
        a.qos as u8,
        a.messages,
        a.payload,
        secs,
        published as f64 / secs,
        delivered as f64 / secs
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("broker-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    match tokio::time::timeout(Duration::from_secs(a.timeout), run(a)).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("broker-loadgen: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("broker-loadgen: gave up after {} s", a.timeout);
            ExitCode::FAILURE
        }
    }
}

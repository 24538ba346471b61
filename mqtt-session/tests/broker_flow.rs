//! Flow control over real sockets: the embeddable server's listener, connection tasks and
//! core on 127.0.0.1, against raw TCP clients. A subscriber that keeps reading gets a
//! 100,000-message QoS 0 burst and 5,000 retained messages whole; one that stops reading
//! holds at most its write budget, is closed after the write timeout, and does not hold up
//! anyone else.

use std::net::SocketAddr;
use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{BrokerConfig, Limit};
use mqtt_session::server::{RunningServer, Server, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Counts the heap, to tell what the broker holds from what the allocator keeps around.
#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// The tests here run one at a time: two of them measure the whole process's memory, and
/// every one of them loads the machine.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// Bytes allocated and not freed, the whole process.
fn live_bytes() -> isize {
    let s = GLOBAL.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// Starts the broker's TCP listener with `config` on a free loopback port.
async fn start(config: BrokerConfig) -> (SocketAddr, RunningServer) {
    start_with(Server::new(config)).await
}

/// [`start`], with the server's own settings.
async fn start_with(server: Server) -> (SocketAddr, RunningServer) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = server.listener(tcp, Transport::Tcp).start().await.unwrap();
    (server.local_addrs()[0], server)
}

/// A 3.1.1 client on a raw TCP connection.
struct Client {
    stream: TcpStream,
    buf: BytesMut,
}

impl Client {
    async fn connect(addr: SocketAddr, id: &str) -> Self {
        Self::connect_as(addr, id, true).await
    }

    /// Connects with Clean Session as `clean` says (false: the session outlives the
    /// connection).
    async fn connect_as(addr: SocketAddr, id: &str, clean: bool) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut c = Self {
            stream,
            buf: BytesMut::new(),
        };
        let mut k = Connect::new(V311, MqttString::new(id.to_string()).unwrap());
        k.keep_alive = 0;
        k.clean_start = clean;
        c.send(Packet::Connect(Box::new(k))).await;
        assert!(matches!(c.recv().await, Some(Packet::ConnAck(a)) if a.reason_code.0 == 0));
        c
    }

    async fn send(&mut self, p: Packet) {
        self.stream
            .write_all(&p.to_bytes(V311).unwrap())
            .await
            .unwrap();
    }

    /// The next packet, or `None` once the broker closed the connection.
    async fn recv(&mut self) -> Option<Packet> {
        loop {
            let cx = DecodeContext::new(V311);
            if let Some(p) = Packet::decode(&mut self.buf, &cx).unwrap() {
                return Some(p);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    async fn subscribe(&mut self, filter: &str, qos: QoS) {
        let f = (
            TopicFilter::new(filter.to_string()).unwrap(),
            SubscriptionOptions::qos(qos),
        );
        self.send(Packet::Subscribe(Subscribe::new(
            PacketId::new(1).unwrap(),
            vec![f],
        )))
        .await;
        assert!(matches!(self.recv().await, Some(Packet::SubAck(_))));
    }

    /// Round trip: everything sent before has been handled.
    async fn ping(&mut self) {
        self.send(Packet::PingReq).await;
        loop {
            match self.recv().await {
                Some(Packet::PingResp) => return,
                Some(_) => {}
                None => panic!("closed while waiting for PINGRESP"),
            }
        }
    }
}

fn publish(topic: &str, payload: Vec<u8>, retain: bool) -> Vec<u8> {
    let mut p = Publish::new(TopicName::new(topic.to_string()).unwrap(), payload);
    p.retain = retain;
    Packet::Publish(p).to_bytes(V311).unwrap().to_vec()
}

async fn bounded<F: std::future::Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("the test took longer than {secs} s"))
}

/// A publisher writes 100,000 QoS 0 messages as fast as TCP takes them; a subscriber that
/// keeps reading receives every one, in order ([MQTT-4.6.0-6]), and nobody is disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos0_burst_reaches_a_reading_subscriber_whole() {
    let _serial = one_at_a_time().await;
    const N: u32 = 100_000;
    bounded(120, async {
        let (addr, server) = start(BrokerConfig::default()).await;
        let mut sub = Client::connect(addr, "sub").await;
        sub.subscribe("burst/#", QoS::AtMostOnce).await;
        let mut publisher = Client::connect(addr, "pub").await;
        let reader = tokio::spawn(async move {
            let mut next = 0u32;
            while next < N {
                match sub.recv().await {
                    Some(Packet::Publish(p)) => {
                        assert_eq!(p.payload, next.to_be_bytes().as_slice(), "out of order");
                        next += 1;
                    }
                    Some(other) => panic!("unexpected {other:?}"),
                    None => panic!("subscriber disconnected after {next} messages"),
                }
            }
            sub
        });
        let mut chunk = Vec::new();
        for i in 0..N {
            chunk.extend(publish("burst/x", i.to_be_bytes().to_vec(), false));
            if chunk.len() > 64 * 1024 {
                publisher.stream.write_all(&chunk).await.unwrap();
                chunk.clear();
            }
        }
        publisher.stream.write_all(&chunk).await.unwrap();
        let mut sub = reader.await.unwrap();
        publisher.ping().await;
        sub.ping().await;
        let dropped = server.inspect(|b| b.queued("sub")).flatten();
        assert_eq!(dropped, Some((0, 0)), "nothing queued or dropped for sub");
    })
    .await;
}

/// 5,000 retained messages, one subscription matching all of them: all arrive, after the
/// SUBACK, with RETAIN set ([MQTT-3.8.4-4] section 3.3.1.3, [MQTT-3.3.1-8] 3.1.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_gets_5000_retained_messages() {
    let _serial = one_at_a_time().await;
    const N: usize = 5_000;
    bounded(60, async {
        let (addr, _server) = start(BrokerConfig::default()).await;
        let mut publisher = Client::connect(addr, "pub").await;
        let mut all = Vec::new();
        for i in 0..N {
            all.extend(publish(&format!("r/{i}"), vec![b'x'; 100], true));
        }
        publisher.stream.write_all(&all).await.unwrap();
        publisher.ping().await;
        let mut sub = Client::connect(addr, "sub").await;
        sub.subscribe("r/#", QoS::AtLeastOnce).await;
        let mut topics = std::collections::BTreeSet::new();
        while topics.len() < N {
            match sub.recv().await {
                Some(Packet::Publish(p)) => {
                    assert!(p.retain);
                    if let Some(id) = p.qos_pid.packet_id() {
                        sub.send(Packet::PubAck(PubResponse::new(id))).await;
                    }
                    assert!(topics.insert(p.topic.to_string()), "{} twice", p.topic);
                }
                Some(other) => panic!("unexpected {other:?}"),
                None => panic!("disconnected after {} retained messages", topics.len()),
            }
        }
    })
    .await;
}

/// A subscriber stops reading while 20 MB are published to it: the broker hands its
/// connection at most the write budget (plus one packet), closes it after the write timeout
/// (counted), and meanwhile and afterwards serves the others; the publisher is slowed,
/// never disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_is_bounded_then_closed() {
    let _serial = one_at_a_time().await;
    const BUDGET: usize = 64 * 1024;
    const SIZE: usize = 1024;
    bounded(60, async {
        let (addr, server) = start({
            let mut c = BrokerConfig::default();
            c.write_budget = BUDGET;
            c.write_timeout = Duration::from_secs(2);
            c
        })
        .await;
        let mut stuck = Client::connect(addr, "stuck").await;
        stuck.subscribe("big/#", QoS::AtMostOnce).await;
        let mut other = Client::connect(addr, "other").await;
        let mut publisher = Client::connect(addr, "pub").await;
        let writer = tokio::spawn(async move {
            let one = publish("big/x", vec![b'x'; SIZE], false);
            for _ in 0..20_000 {
                publisher.stream.write_all(&one).await.unwrap();
            }
            publisher.ping().await;
            publisher
        });
        let mut max_unwritten = 0;
        let mut closed = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            other.ping().await;
            let (unwritten, limits) = server
                .inspect(|b| {
                    let conn = mqtt_session::broker::ConnectionId(1);
                    (b.unwritten(conn), b.limit_count(Limit::WriteTimeout))
                })
                .unwrap();
            max_unwritten = max_unwritten.max(unwritten.unwrap_or(0));
            if limits == 1 {
                closed = true;
                break;
            }
        }
        assert!(closed, "the stuck subscriber was not closed");
        assert!(
            max_unwritten <= BUDGET + SIZE + 16,
            "{max_unwritten} bytes handed out to a client that does not read"
        );
        // The publisher finishes and is still connected; the others are served.
        let mut publisher = writer.await.unwrap();
        publisher.ping().await;
        other.ping().await;
        // The stuck client finds its connection closed once it reads again, short of what
        // was published (the rest of what reached it sat in the kernel's socket buffers).
        let mut got = 0;
        while let Some(p) = stuck.recv().await {
            if matches!(p, Packet::Publish(_)) {
                got += 1;
            }
        }
        assert!(got < 20_000, "all {got} messages reached it");
    })
    .await;
}

/// The test process's resident memory, in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A fixed header declaring a packet of `len` bytes after it, of type `first_byte`.
fn header(first_byte: u8, mut len: usize) -> Vec<u8> {
    let mut h = vec![first_byte];
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        h.push(b);
        if len == 0 {
            return h;
        }
    }
}

/// Writes `header` and then zeros, as fast as the broker takes them, until it closes the
/// connection or `limit` bytes are out; returns how many went out.
async fn stream_into(stream: &mut TcpStream, header: &[u8], limit: usize) -> usize {
    let zeros = vec![0u8; 16 * 1024];
    if stream.write_all(header).await.is_err() {
        return 0;
    }
    let mut sent = 0;
    while sent < limit {
        match tokio::time::timeout(Duration::from_secs(1), stream.write_all(&zeros)).await {
            Ok(Ok(())) => sent += zeros.len(),
            // Closed, or no longer read: the broker stopped taking it.
            _ => break,
        }
    }
    sent
}

/// Whether the broker closes `stream` within `secs` (reading what it sends meanwhile).
async fn closed_within(stream: &mut TcpStream, secs: u64) -> bool {
    let mut buf = vec![0u8; 4096];
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// Memory a peer can make the broker hold is bounded before authentication and after:
/// - before CONNECT, a fixed header declaring 268,435,455 bytes is refused as soon as it is
///   read (the largest packet before CONNECT is 64 KiB), and the connection closed;
/// - after CONNECT, packets larger than 64 KiB still arriving share one broker-wide budget:
///   eight clients each streaming a 1 MB PUBLISH get at most 4 MiB between them, those
///   left out are not read, and every one that does not finish within the packet timeout
///   is closed, its share given back;
/// - meanwhile a healthy client publishes and receives as usual, and the test process
///   (broker included) grows by well under what the attackers sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_peer_can_fill_is_bounded_before_and_after_connect() {
    let _serial = one_at_a_time().await;
    bounded(60, async {
        let config = {
            let mut c = BrokerConfig::default();
            c.maximum_packet_size = 1024 * 1024;
            c
        };
        let server = Server::new(config)
            .max_in_transit(4 * 1024 * 1024)
            .packet_timeout(Duration::from_secs(2));
        let (addr, server) = start_with(server).await;
        let mut sub = Client::connect(addr, "healthy-sub").await;
        sub.subscribe("health/#", QoS::AtMostOnce).await;
        let mut publisher = Client::connect(addr, "healthy-pub").await;
        let before = rss();

        // Before CONNECT: refused at the fixed header.
        let mut sent_before = 0;
        for _ in 0..8 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            // The broker stops taking bytes long before 64 MiB (what it took went no
            // further than the socket buffers), and closes.
            let sent = stream_into(&mut s, &header(0x10, 268_435_455), 64 << 20).await;
            assert!(sent < 64 << 20, "the broker kept reading a refused CONNECT");
            assert!(
                closed_within(&mut s, 2).await,
                "a huge CONNECT was not refused"
            );
            sent_before += sent;
        }

        // After CONNECT: eight 1 MB PUBLISH packets that never finish.
        let mut attackers = Vec::new();
        for i in 0..8 {
            let c = Client::connect(addr, &format!("attacker-{i}")).await;
            attackers.push(c.stream);
        }
        let mut streaming = Vec::new();
        for mut s in attackers {
            streaming.push(tokio::spawn(async move {
                let mut h = header(0x30, 1_000_000);
                h.extend_from_slice(&[0, 1, b't']);
                let sent = stream_into(&mut s, &h, 990_000).await;
                (s, sent)
            }));
        }
        // The budget fills and stays within its size while they stream; the healthy
        // client is served.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(server.in_transit_bytes() > 0);
        let during = rss();
        publisher
            .stream
            .write_all(&publish("health/1", b"still here".to_vec(), false))
            .await
            .unwrap();
        match sub.recv().await {
            Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"still here"),
            other => panic!("the healthy subscriber got {other:?}"),
        }
        let mut sent_after = 0;
        for t in streaming {
            let (mut s, sent) = t.await.unwrap();
            sent_after += sent;
            assert!(
                closed_within(&mut s, 5).await,
                "an unfinished packet was not cut off"
            );
        }
        // Every share came back.
        assert_eq!(server.in_transit_bytes(), 0);
        publisher.ping().await;
        sub.ping().await;

        let grew = during.saturating_sub(before);
        assert!(
            grew < 24 << 20,
            "the process grew by {grew} bytes while attackers sent {sent_before} before \
             CONNECT and {sent_after} after"
        );
    })
    .await;
}

/// A v5 client whose packet does not finish arriving within the packet timeout gets
/// DISCONNECT 0x8D and is closed, even with keep-alive off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_that_never_finishes_is_cut_off() {
    let _serial = one_at_a_time().await;
    bounded(20, async {
        let mut config = BrokerConfig::default();
        config.maximum_packet_size = 1024 * 1024;
        let server = Server::new(config)
            .max_in_transit(4 * 1024 * 1024)
            .packet_timeout(Duration::from_secs(1));
        let (addr, _server) = start_with(server).await;
        let v5 = ProtocolVersion::V5;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut k = Connect::new(v5, MqttString::from_static("slow"));
        k.keep_alive = 0;
        let connect = Packet::Connect(Box::new(k)).to_bytes(v5).unwrap();
        s.write_all(&connect).await.unwrap();
        let publish = Packet::Publish(Publish::new(TopicName::from_static("t"), "x"));
        let bytes = publish.to_bytes(v5).unwrap();
        s.write_all(&bytes[..bytes.len() - 1]).await.unwrap();
        let started = tokio::time::Instant::now();
        let mut buf = BytesMut::new();
        let cx = DecodeContext::new(v5);
        let mut got = Vec::new();
        loop {
            match Packet::decode(&mut buf, &cx).unwrap() {
                Some(p) => got.push(p),
                None => match s.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
            }
        }
        assert!(started.elapsed() >= Duration::from_millis(900));
        assert!(matches!(got.first(), Some(Packet::ConnAck(_))), "{got:?}");
        match got.last() {
            Some(Packet::Disconnect(d)) => {
                assert_eq!(d.reason_code, ReasonCode::KEEP_ALIVE_TIMEOUT)
            }
            other => panic!("expected DISCONNECT 0x8D, got {other:?}"),
        }
    })
    .await;
}

/// A message the broker keeps is copied out of the buffer it was read into: 200 retained
/// messages of 16 bytes, each read in one write with a 900 KB PUBLISH that nobody
/// subscribed to, leave the broker holding kilobytes, not 200 read buffers (180 MB when
/// the retained messages were slices of them). A subscriber then gets all 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_messages_do_not_pin_read_buffers() {
    let _serial = one_at_a_time().await;
    bounded(60, async {
        let (addr, _server) = start(BrokerConfig::default()).await;
        let mut publisher = Client::connect(addr, "pinning").await;
        publisher.ping().await;
        let before = live_bytes();
        for i in 0..200 {
            let mut both = publish(&format!("kept/{i}"), vec![b'k'; 16], true);
            both.extend(publish("void", vec![0; 900_000], false));
            publisher.stream.write_all(&both).await.unwrap();
        }
        publisher.ping().await;
        let held = live_bytes() - before;
        assert!(
            held < 8 << 20,
            "the broker holds {held} bytes for 200 retained messages"
        );

        let mut sub = Client::connect(addr, "reader").await;
        sub.subscribe("kept/#", QoS::AtMostOnce).await;
        let mut got = 0;
        while got < 200 {
            match sub.recv().await {
                Some(Packet::Publish(p)) => {
                    assert_eq!(&p.payload[..], &[b'k'; 16]);
                    got += 1;
                }
                other => panic!("expected retained messages, got {other:?}"),
            }
        }
    })
    .await;
}

/// The same for QoS 1 messages held for a session whose client is away: 200 of 16 bytes,
/// each read with a 900 KB PUBLISH nobody subscribed to, are copied out of their read
/// buffers (once each, when the session keeps them); the client gets all 200 on its return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_do_not_pin_read_buffers() {
    let _serial = one_at_a_time().await;
    bounded(60, async {
        let (addr, _server) = start(BrokerConfig::default()).await;
        let mut away = Client::connect_as(addr, "away", false).await;
        away.subscribe("held/#", QoS::AtLeastOnce).await;
        drop(away);
        let mut publisher = Client::connect(addr, "pinning").await;
        publisher.ping().await;
        let before = live_bytes();
        for i in 0..200u16 {
            let mut held =
                Publish::new(TopicName::new(format!("held/{i}")).unwrap(), vec![b'h'; 16]);
            held.qos_pid = QosPid::AtLeastOnce(PacketId::new(i + 1).unwrap());
            let mut both = Packet::Publish(held).to_bytes(V311).unwrap().to_vec();
            both.extend(publish("void", vec![0; 900_000], false));
            publisher.stream.write_all(&both).await.unwrap();
        }
        publisher.ping().await;
        let held = live_bytes() - before;
        assert!(
            held < 8 << 20,
            "the broker holds {held} bytes for 200 queued messages"
        );

        let mut back = Client::connect_as(addr, "away", false).await;
        let mut got = 0;
        while got < 200 {
            match back.recv().await {
                Some(Packet::Publish(p)) => {
                    assert_eq!(&p.payload[..], &[b'h'; 16]);
                    if let Some(id) = p.qos_pid.packet_id() {
                        back.send(Packet::PubAck(PubResponse::new(id))).await;
                    }
                    got += 1;
                }
                other => panic!("expected the queued messages, got {other:?}"),
            }
        }
    })
    .await;
}

/// [MQTT-3.14.4-3], 3.1.1 [MQTT-3.1.2-10]: a will is discarded after a normal DISCONNECT,
/// also when the client reconnects at once and its new CONNECT reaches the core before the
/// old connection's DISCONNECT does. Made certain here: the client publishes to a
/// subscriber that does not read, so the broker has stopped reading it (backpressure) when
/// it sends DISCONNECT, closes and connects again. Before the takeover, the old connection
/// hands over what it had received, the DISCONNECT among it. Under 3.1.1 and 5.0, five
/// times each, the will never arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_will_after_a_normal_disconnect_and_an_immediate_reconnect() {
    let _serial = one_at_a_time().await;
    bounded(60, async {
        let config = {
            let mut c = BrokerConfig::default();
            c.write_budget = 64;
            c.pause_publishers_at = 2;
            c
        };
        let (addr, _server) = start(config).await;
        let mut watcher = Client::connect(addr, "watcher").await;
        watcher.subscribe("wills/#", QoS::AtMostOnce).await;
        // Subscribes, then never reads again.
        let mut stuck = Client::connect(addr, "stuck").await;
        stuck.subscribe("load", QoS::AtMostOnce).await;
        for version in [V311, ProtocolVersion::V5] {
            for _ in 0..5 {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let mut k = Connect::new(version, MqttString::from_static("quick"));
                k.keep_alive = 0;
                k.will = Some(Will {
                    topic: TopicName::from_static("wills/quick"),
                    payload: Bytes::from_static(b"gone"),
                    qos: QoS::AtMostOnce,
                    retain: false,
                    properties: Default::default(),
                });
                s.write_all(&Packet::Connect(Box::new(k)).to_bytes(version).unwrap())
                    .await
                    .unwrap();
                let mut buf = BytesMut::new();
                let cx = DecodeContext::new(version);
                loop {
                    match Packet::decode(&mut buf, &cx).unwrap() {
                        Some(Packet::ConnAck(_)) => break,
                        Some(other) => panic!("expected CONNACK, got {other:?}"),
                        None => assert!(s.read_buf(&mut buf).await.unwrap() > 0, "closed"),
                    }
                }
                // Enough to the stuck subscriber that the broker stops reading this client.
                let load =
                    Packet::Publish(Publish::new(TopicName::from_static("load"), vec![0; 200]));
                for _ in 0..20 {
                    s.write_all(&load.to_bytes(version).unwrap()).await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                let bye = Packet::Disconnect(Disconnect::default());
                s.write_all(&bye.to_bytes(version).unwrap()).await.unwrap();
                drop(s);
            }
        }
        watcher.send(Packet::PingReq).await;
        match watcher.recv().await {
            Some(Packet::PingResp) => {}
            Some(Packet::Publish(p)) => panic!("a will was published: {p:?}"),
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
}

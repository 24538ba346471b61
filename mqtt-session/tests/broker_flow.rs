//! Flow control over real sockets: the example broker's listener, connection tasks and
//! core on 127.0.0.1, against raw TCP clients. A subscriber that keeps reading gets a
//! 100,000-message QoS 0 burst and 5,000 retained messages whole; one that stops reading
//! holds at most its write budget, is closed after the write timeout, and does not hold up
//! anyone else.
#![allow(clippy::disallowed_methods)] // the example's core task reads the clock

#[macro_use]
#[allow(dead_code)]
#[path = "../examples/broker/log.rs"]
mod log;
#[allow(dead_code)]
#[path = "../examples/broker/hub.rs"]
mod hub;
#[allow(dead_code)]
#[path = "../examples/broker/net.rs"]
mod net;
#[allow(dead_code)]
#[path = "../examples/broker/users.rs"]
mod users;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{Broker, BrokerConfig, ConnectPolicy, Limit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use net::{Kind, Shared};

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// Starts the example's TCP listener and core with `config` on a free loopback port.
async fn start(config: BrokerConfig) -> (SocketAddr, hub::Core) {
    log::set_level(log::Level::Error);
    let config = {
        let mut c = config;
        c.connect_policy = ConnectPolicy::AskDriver;
        c
    };
    let (alive, _) = mpsc::channel::<()>(1);
    let users = users::Users::load(None, None).unwrap();
    let core = hub::Core::new(Broker::new(config.clone()), users);
    tokio::spawn(core.clone().run_timer());
    let shared = Shared {
        core: core.clone(),
        max_packet_size: config.maximum_packet_size,
        next_id: Arc::new(AtomicU64::new(1)),
        _alive: alive,
    };
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(net::listen(tcp, Kind::Tcp, shared));
    (addr, core)
}

/// A 3.1.1 client on a raw TCP connection.
struct Client {
    stream: TcpStream,
    buf: BytesMut,
}

impl Client {
    async fn connect(addr: SocketAddr, id: &str) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut c = Self {
            stream,
            buf: BytesMut::new(),
        };
        let mut k = Connect::new(V311, MqttString::new(id.to_string()).unwrap());
        k.keep_alive = 0;
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
    const N: u32 = 100_000;
    bounded(120, async {
        let (addr, core) = start(BrokerConfig::default()).await;
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
        let dropped = core.inspect(|b| b.queued("sub")).flatten();
        assert_eq!(dropped, Some((0, 0)), "nothing queued or dropped for sub");
    })
    .await;
}

/// 5,000 retained messages, one subscription matching all of them: all arrive, after the
/// SUBACK, with RETAIN set ([MQTT-3.8.4-4] section 3.3.1.3, [MQTT-3.3.1-8] 3.1.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_gets_5000_retained_messages() {
    const N: usize = 5_000;
    bounded(60, async {
        let (addr, _core) = start(BrokerConfig::default()).await;
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
    const BUDGET: usize = 64 * 1024;
    const SIZE: usize = 1024;
    bounded(60, async {
        let (addr, core) = start({
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
            let (unwritten, limits) = core
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

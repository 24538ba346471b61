//! The tokio driver (`mqtt_session::driver`) against the broker program on 127.0.0.1: the
//! hello world, and QoS 1 publishes through a proxy that cuts the connection again and
//! again, every one resolved and delivered.
#![allow(clippy::disallowed_methods)] // a test may read the clock

#[path = "common/events.rs"]
mod events;
#[path = "common/pki.rs"]
mod pki;

use events::next_message;
use pki::pki;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mqtt_session::client::{ClientConfig, Message};
use mqtt_session::driver::{AsyncClient, ClientOptions, Notification, Tls};
use mqtt_session::mqtt_codec::{
    MqttString, ProtocolVersion, Publish, QoS, ReasonCode, TopicFilter, TopicName,
};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The broker program on a free port, killed when dropped.
struct Broker(Child, SocketAddr);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn broker() -> Broker {
    broker_with(&["--bind"], &[]).await
}

/// The broker program with `listener ADDR` (ADDR a free port) and `more` arguments.
async fn broker_with(listener: &[&str], more: &[&str]) -> Broker {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mqtt-broker"))
        .args(listener)
        .arg(addr.to_string())
        .args(more)
        .args(["--log-level", "error"])
        .spawn()
        .unwrap();
    let b = Broker(child, addr);
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_ok() {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the broker did not listen on {addr}");
}

fn config(id: &str) -> ClientConfig {
    let mut c = ClientConfig::new(ProtocolVersion::V5, MqttString::new(id).unwrap());
    c.keep_alive = 5;
    c
}

/// The README's hello world: connect, subscribe, publish at QoS 1, receive it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_world() {
    let b = broker().await;
    let run = async {
        let options = ClientOptions::new(b.1.to_string(), config("hello"));
        let (client, mut events) = AsyncClient::start(options);
        events.connected().await.unwrap();
        let granted = client
            .subscribe(TopicFilter::new("hello/#").unwrap(), QoS::AtLeastOnce)
            .await
            .unwrap();
        assert_eq!(granted.filters[0].2, ReasonCode::GRANTED_QOS_1);
        let msg =
            Message::new(TopicName::new("hello/world").unwrap(), "hi").with_qos(QoS::AtLeastOnce);
        let done = client.publish(msg).await.unwrap().unwrap();
        assert_eq!(done.reason_code, ReasonCode::SUCCESS);
        let got = next_message(&mut events).await;
        assert_eq!(got.topic.as_str(), "hello/world");
        assert_eq!(&got.payload[..], b"hi");
        // Unsubscribed, the next message finds no subscriber (v5: 0x10 on the PUBACK).
        let gone = client
            .unsubscribe(vec![TopicFilter::new("hello/#").unwrap()])
            .await
            .unwrap();
        assert_eq!(gone.filters[0].1, ReasonCode::SUCCESS);
        let msg =
            Message::new(TopicName::new("hello/again").unwrap(), "hi").with_qos(QoS::AtLeastOnce);
        let done = client.publish(msg).await.unwrap().unwrap();
        assert_eq!(done.reason_code, ReasonCode::NO_MATCHING_SUBSCRIBERS);
        client.disconnect().await.unwrap();
        // The driver has stopped: calls fail, and the events end.
        assert!(
            client
                .subscribe(TopicFilter::new("x").unwrap(), QoS::AtMostOnce)
                .await
                .is_err()
        );
        while events.recv().await.is_some() {}
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap();
}

/// A TCP proxy to `to` that cuts each connection once a number of bytes drawn from `seed`
/// (20 to 300) has come back from the broker, mid-packet as likely as not, counting the
/// cuts. After the last byte let through, the way back stays shut while the way to the
/// broker stays open a little longer (10 ms), then both close: what the client had
/// received it can still acknowledge, as over a link that fails one way first. (A cut
/// right after the bytes, every time, would lose every acknowledgement of what they
/// carried, and no protocol makes progress over such a link.)
async fn cutting_proxy(to: SocketAddr, seed: u64, cuts: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    tokio::spawn(async move {
        while let Ok((a, _)) = listener.accept().await {
            let Ok(b) = TcpStream::connect(to).await else {
                continue;
            };
            let budget: usize = rng.random_range(20..300);
            let cuts = cuts.clone();
            tokio::spawn(async move {
                let (mut ar, mut aw) = a.into_split();
                let (mut br, mut bw) = b.into_split();
                let (mut up, mut down) = ([0u8; 512], [0u8; 512]);
                let mut moved = 0;
                let mut closing: Option<tokio::time::Instant> = None;
                loop {
                    let grace = async {
                        match closing {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    };
                    let (n, to_broker) = tokio::select! {
                        r = ar.read(&mut up) => (r.unwrap_or(0), true),
                        r = br.read(&mut down) => (r.unwrap_or(0), false),
                        () = grace => {
                            cuts.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    };
                    if n == 0 {
                        return;
                    }
                    let w = if to_broker {
                        bw.write_all(&up[..n]).await
                    } else {
                        // What comes back goes through within the budget.
                        let pass = n.min(budget - moved);
                        moved += pass;
                        aw.write_all(&down[..pass]).await
                    };
                    if w.is_err() {
                        return;
                    }
                    if moved >= budget && closing.is_none() {
                        closing = Some(tokio::time::Instant::now() + Duration::from_millis(10));
                    }
                }
            });
        }
    });
    addr
}

/// 200 messages, QoS 1 and QoS 2 in turn, published at once through a proxy that cuts the
/// connection after every 20 to 300 bytes that come back (see `cutting_proxy`), to a
/// durable subscriber behind a proxy of its own that does the same: both drivers reconnect, resume their sessions and
/// send again what was not acknowledged ([MQTT-4.4.0-1]). Every publish resolves with
/// Success (a PUBCOMP 0x92 during recovery is not a failure, MQTT 5.0 section 3.7.2.1),
/// every QoS 1 message arrives at least once ([MQTT-4.3.2-2]) and every QoS 2 message
/// exactly once ([MQTT-4.3.3-10]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_survive_a_connection_cut_again_and_again() {
    let b = broker().await;
    let cuts = Arc::new(AtomicUsize::new(0));
    let pub_proxy = cutting_proxy(b.1, 7, cuts.clone()).await;
    let sub_proxy = cutting_proxy(b.1, 11, cuts.clone()).await;
    let durable = |id: &str, proxy: SocketAddr| {
        let mut c = config(id);
        c.clean_start = false;
        c.properties.session_expiry_interval = Some(600);
        let mut options = ClientOptions::new(proxy.to_string(), c);
        options.reconnect_min = Duration::from_millis(5);
        options.reconnect_max = Duration::from_millis(50);
        options
    };
    let run = async {
        let (sub, mut sub_events) = AsyncClient::start(durable("subscriber", sub_proxy));
        sub_events.connected().await.unwrap();
        // Sent again on a new connection if the cut took its SUBACK.
        sub.subscribe(TopicFilter::new("cut/#").unwrap(), QoS::ExactlyOnce)
            .await
            .unwrap();
        let (publisher, mut pub_events) = AsyncClient::start(durable("publisher", pub_proxy));
        tokio::spawn(async move { while pub_events.recv().await.is_some() {} });
        let qos = |i: usize| {
            if i.is_multiple_of(2) {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            }
        };
        let calls: Vec<_> = (0..200)
            .map(|i| {
                let p = publisher.clone();
                tokio::spawn(async move {
                    let topic = TopicName::new(format!("cut/{}", i % 4)).unwrap();
                    p.publish(Message::new(topic, i.to_string()).with_qos(qos(i)))
                        .await
                })
            })
            .collect();
        for c in calls {
            let done = c.await.unwrap().unwrap().unwrap();
            assert_eq!(done.reason_code, ReasonCode::SUCCESS);
        }
        let mut count = HashMap::<usize, usize>::new();
        let mut receive = async |count: &mut HashMap<usize, usize>| {
            let m = next_message(&mut sub_events).await;
            let i: usize = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
            *count.entry(i).or_default() += 1;
        };
        while count.len() < 200 {
            receive(&mut count).await;
        }
        // Whatever duplicate is still on its way arrives meanwhile.
        let _ = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                receive(&mut count).await;
            }
        })
        .await;
        for (i, n) in &count {
            if qos(*i) == QoS::ExactlyOnce {
                assert_eq!(*n, 1, "QoS 2 message {i} arrived {n} times");
            }
        }
        publisher.disconnect().await.unwrap();
        sub.disconnect().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap();
    let cuts = cuts.load(Ordering::Relaxed);
    assert!(cuts >= 6, "the proxies cut only {cuts} connections");
}

/// Over TLS: a client trusting the broker's CA connects and gets its own message back; one
/// trusting another CA never connects (the handshake fails, and so does every attempt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls() {
    let (ca, chain, key) = pki();
    let dir = std::env::temp_dir().join(format!("mqtt-driver-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, &chain).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let more = [
        "--cert",
        cert_file.to_str().unwrap(),
        "--key",
        key_file.to_str().unwrap(),
    ];
    let b = broker_with(&["--tls"], &more).await;
    let run = async {
        let tls = Tls::with_ca_pem(ca.as_bytes(), None, "localhost").unwrap();
        let options = ClientOptions::new(b.1.to_string(), config("tls")).with_tls(tls);
        let (client, mut events) = AsyncClient::start(options);
        events.connected().await.unwrap();
        client
            .subscribe(TopicFilter::new("secure").unwrap(), QoS::AtLeastOnce)
            .await
            .unwrap();
        let msg = Message::new(TopicName::new("secure").unwrap(), "s").with_qos(QoS::AtLeastOnce);
        client.publish(msg).await.unwrap();
        assert_eq!(&next_message(&mut events).await.payload[..], b"s");
        client.disconnect().await.unwrap();

        let (other_ca, _, _) = pki();
        let tls = Tls::with_ca_pem(other_ca.as_bytes(), None, "localhost").unwrap();
        let mut options = ClientOptions::new(b.1.to_string(), config("untrusting")).with_tls(tls);
        options.reconnect_min = Duration::from_millis(20);
        let (client, mut events) = AsyncClient::start(options);
        let connected = tokio::time::timeout(Duration::from_millis(500), events.connected()).await;
        assert!(
            connected.is_err(),
            "connected to a server its CA did not sign"
        );
        let msg = Message::new(TopicName::new("secure").unwrap(), "x");
        assert!(client.publish(msg).await.is_err());
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// Over WebSocket (subprotocol `mqtt`, [MQTT-6.0.0-3]): the broker program's `--ws`
/// listener, a client that gets its own message back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_websocket() {
    let b = broker_with(&["--ws"], &[]).await;
    let run = async {
        let options = ClientOptions::new(b.1.to_string(), config("ws")).with_websocket("/mqtt");
        let (client, mut events) = AsyncClient::start(options);
        events.connected().await.unwrap();
        client
            .subscribe(TopicFilter::new("ws/#").unwrap(), QoS::ExactlyOnce)
            .await
            .unwrap();
        for i in 0..20 {
            let msg = Message::new(TopicName::new("ws/t").unwrap(), i.to_string())
                .with_qos(QoS::ExactlyOnce);
            client.publish(msg).await.unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 20 {
            let m = next_message(&mut events).await;
            got.push(String::from_utf8(m.payload.to_vec()).unwrap());
        }
        let want: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        assert_eq!(got, want);
        client.disconnect().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap();
}

/// MQTT 5.0 request/response (section 4.10, with the Response Topic and Correlation Data
/// of sections 3.3.2.3.5 and 3.3.2.3.6): a responder answers on the Response Topic with
/// the request's Correlation Data, and each `request` resolves with its own answer,
/// several at once; one nobody answers times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_response() {
    let b = broker().await;
    let run = async {
        let (responder, mut requests) =
            AsyncClient::start(ClientOptions::new(b.1.to_string(), config("echo")));
        requests.connected().await.unwrap();
        responder
            .subscribe(TopicFilter::new("service/echo").unwrap(), QoS::AtLeastOnce)
            .await
            .unwrap();
        tokio::spawn(async move {
            while let Some(n) = requests.recv().await {
                let Notification::Message(m) = n else {
                    continue;
                };
                let Some(to) = m.properties.response_topic.clone() else {
                    continue;
                };
                let mut answer = b"pong:".to_vec();
                answer.extend_from_slice(&m.payload);
                let mut reply = Message::new(to, answer).with_qos(QoS::AtLeastOnce);
                reply.properties.correlation_data = m.properties.correlation_data.clone();
                let _ = responder.publish(reply).await;
            }
        });
        let (client, mut events) =
            AsyncClient::start(ClientOptions::new(b.1.to_string(), config("asker")));
        events.connected().await.unwrap();
        let calls: Vec<_> = (0..5)
            .map(|i| {
                let c = client.clone();
                tokio::spawn(async move {
                    let msg = Message::new(TopicName::new("service/echo").unwrap(), i.to_string())
                        .with_qos(QoS::AtLeastOnce);
                    c.request(msg, Duration::from_secs(10)).await
                })
            })
            .collect();
        for (i, call) in calls.into_iter().enumerate() {
            let answer = call.await.unwrap().unwrap();
            assert_eq!(answer.payload, format!("pong:{i}").as_bytes());
        }
        let nobody = Message::new(TopicName::new("service/none").unwrap(), "?");
        let err = client.request(nobody, Duration::from_millis(200)).await;
        assert_eq!(err, Err(mqtt_session::driver::ClientError::Timeout));
        client.disconnect().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap();
}

/// While the server cannot be reached, QoS 1 messages wait, bounded in bytes
/// (`max_queued_bytes`): the message that would exceed the bound fails at once with
/// `QueueFull`, those before it stay pending, and QoS 0 needs a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_queue_is_bounded_in_bytes() {
    // A port with nobody listening.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut options = ClientOptions::new(addr.to_string(), config("offline"));
    options.max_queued_bytes = 1_000;
    options.reconnect_min = Duration::from_millis(20);
    let (client, _events) = AsyncClient::start(options);
    let big = |i: usize| {
        Message::new(TopicName::new("q").unwrap(), vec![i as u8; 300]).with_qos(QoS::AtLeastOnce)
    };
    let waiting: Vec<_> = (0..3)
        .map(|i| {
            let c = client.clone();
            let m = big(i);
            tokio::spawn(async move { c.publish(m).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let full = client.publish(big(3)).await;
    assert_eq!(
        full,
        Err(mqtt_session::driver::ClientError::Publish(
            mqtt_session::client::PublishError::QueueFull
        ))
    );
    let qos0 = client
        .publish(Message::new(TopicName::new("q").unwrap(), "now"))
        .await;
    assert_eq!(
        qos0,
        Err(mqtt_session::driver::ClientError::Publish(
            mqtt_session::client::PublishError::NotConnected
        ))
    );
    for w in &waiting {
        assert!(!w.is_finished(), "a queued publish resolved with no server");
    }
}

/// The server's side of a connection, played by the test.
struct FakeServer {
    stream: TcpStream,
    buf: mqtt_session::mqtt_codec::BytesMut,
}

impl FakeServer {
    async fn accept(listener: &TcpListener) -> Self {
        let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("the client did not connect")
            .unwrap();
        Self {
            stream,
            buf: Default::default(),
        }
    }

    /// The next packet (a CONNECT first, then v5 packets); `None` once the client closed.
    async fn recv(&mut self) -> Option<mqtt_session::mqtt_codec::Packet> {
        use mqtt_session::mqtt_codec::{DecodeContext, Decoded, Packet};
        loop {
            let cx = DecodeContext::new(ProtocolVersion::V5);
            if let Decoded::Packet(p) = Packet::decode_stream(&mut self.buf, &cx).unwrap() {
                return Some(p);
            }
            let read = self.stream.read_buf(&mut self.buf);
            match tokio::time::timeout(Duration::from_secs(10), read).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(_)) => {}
                Err(_) => panic!("the client sent nothing for 10 s"),
            }
        }
    }

    async fn send(&mut self, p: mqtt_session::mqtt_codec::Packet) {
        let bytes = p.to_bytes(ProtocolVersion::V5).unwrap();
        self.stream.write_all(&bytes).await.unwrap();
    }

    /// Takes the CONNECT, answers with Session Present `present`, and returns the CONNECT's
    /// Clean Start.
    async fn handshake(&mut self, present: bool) -> bool {
        use mqtt_session::mqtt_codec::{ConnAck, Packet};
        let Some(Packet::Connect(c)) = self.recv().await else {
            panic!("no CONNECT")
        };
        let ack = ConnAck {
            session_present: present,
            ..ConnAck::default()
        };
        self.send(Packet::ConnAck(Box::new(ack))).await;
        c.clean_start
    }

    /// The next `n` PUBLISH packets.
    async fn publishes(&mut self, n: usize) -> Vec<Publish> {
        use mqtt_session::mqtt_codec::Packet;
        let mut got = Vec::new();
        while got.len() < n {
            match self.recv().await {
                Some(Packet::Publish(p)) => got.push(p),
                Some(_) => {}
                None => panic!("closed after {} of {n} PUBLISH packets", got.len()),
            }
        }
        got
    }

    /// Reads until the client closes the connection.
    async fn until_closed(&mut self) {
        while self.recv().await.is_some() {}
    }
}

/// With a store on disk ([`AsyncClient::start_with_store`]), QoS 1 messages in flight when
/// the program stops go again from the next program started on the same file: with DUP
/// set and their packet identifiers ([MQTT-4.4.0-1], [MQTT-3.3.1-1]), once the server
/// says it kept the session. Acknowledged, they leave the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_session_outlives_the_program() {
    use mqtt_session::mqtt_codec::QosPid;
    use mqtt_session::persist::ClientStore;
    let dir = std::env::temp_dir().join(format!("mqtt-driver-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("client.redb");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = config("stored");
    config.clean_start = false;
    config.properties.session_expiry_interval = Some(600);
    // The store is free once the program that held it has ended.
    let open = || async {
        for _ in 0..200 {
            if let Ok(s) = ClientStore::open(&path) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the store stayed locked");
    };

    // The first program publishes three messages; the server never acknowledges them.
    let options = ClientOptions::new(&addr, config.clone());
    let (client, _events) = AsyncClient::start_with_store(options, open().await).unwrap();
    let mut server = FakeServer::accept(&listener).await;
    assert!(!server.handshake(false).await, "Clean Start 0");
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let c = client.clone();
            let topic = TopicName::new(format!("stored/{i}")).unwrap();
            let msg = Message::new(topic, format!("m{i}")).with_qos(QoS::AtLeastOnce);
            tokio::spawn(async move { c.publish(msg).await })
        })
        .collect();
    let first = server.publishes(3).await;
    assert!(first.iter().all(|p| !p.dup));
    // The program ends with its messages unacknowledged.
    for call in calls {
        call.abort();
    }
    drop(client);
    server.until_closed().await;

    // The next program, from the same file: the same messages, again, as duplicates.
    let options = ClientOptions::new(&addr, config.clone());
    let (client, mut events) = AsyncClient::start_with_store(options, open().await).unwrap();
    let mut server = FakeServer::accept(&listener).await;
    assert!(!server.handshake(true).await, "Clean Start 0");
    events.connected().await.unwrap();
    let again = server.publishes(3).await;
    let key = |p: &Publish| {
        (
            p.qos_pid.packet_id().map(|id| id.get()),
            p.topic.to_string(),
            p.payload.clone(),
        )
    };
    let mut before: Vec<_> = first.iter().map(key).collect();
    let mut after: Vec<_> = again.iter().map(key).collect();
    before.sort();
    after.sort();
    assert_eq!(after, before, "the same messages with the same identifiers");
    assert!(again.iter().all(|p| p.dup), "sent again with DUP set");
    for p in &again {
        let QosPid::AtLeastOnce(id) = p.qos_pid else {
            panic!("not QoS 1: {p:?}")
        };
        let ack = mqtt_session::mqtt_codec::PubResponse::new(id);
        server
            .send(mqtt_session::mqtt_codec::Packet::PubAck(ack))
            .await;
    }
    // A message published now is acknowledged as usual; then nothing is left in flight.
    let msg = Message::new(TopicName::new("stored/new").unwrap(), "n").with_qos(QoS::AtLeastOnce);
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.publish(msg).await }
    });
    let new = server.publishes(1).await;
    let QosPid::AtLeastOnce(id) = new[0].qos_pid else {
        panic!("not QoS 1")
    };
    let ack = mqtt_session::mqtt_codec::PubResponse::new(id);
    server
        .send(mqtt_session::mqtt_codec::Packet::PubAck(ack))
        .await;
    let done = call.await.unwrap().unwrap().unwrap();
    assert_eq!(done.reason_code, ReasonCode::SUCCESS);
    drop(client);
    server.until_closed().await;
    let state = open().await.state().unwrap();
    assert!(state.outgoing.is_empty(), "{:?}", state.outgoing);
    assert_eq!(state.client_id.as_str(), "stored");
    let _ = std::fs::remove_dir_all(dir);
}

/// `Tls::with_platform_roots` trusts what the platform trusts: this machine's store does
/// not hold the test's CA, so the broker is not trusted; in a child process whose
/// `SSL_CERT_FILE` names that CA (the platform store, as rustls-native-certs reads it), the
/// same client connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_roots() {
    const CHILD: &str = "MQTT_TEST_PLATFORM_ROOTS_DIR";
    let child_dir = std::env::var_os(CHILD).map(std::path::PathBuf::from);
    let dir = match &child_dir {
        Some(d) => d.clone(),
        None => {
            let dir =
                std::env::temp_dir().join(format!("mqtt-driver-roots-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let (ca, chain, key) = pki();
            std::fs::write(dir.join("ca.pem"), &ca).unwrap();
            std::fs::write(dir.join("cert.pem"), &chain).unwrap();
            std::fs::write(dir.join("key.pem"), &key).unwrap();
            dir
        }
    };
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let more = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let b = broker_with(&["--tls"], &more).await;
    let attempt = async {
        let tls = Tls::with_platform_roots("localhost").unwrap();
        let mut options = ClientOptions::new(b.1.to_string(), config("roots")).with_tls(tls);
        options.reconnect_min = Duration::from_millis(20);
        let (_client, mut events) = AsyncClient::start(options);
        tokio::time::timeout(Duration::from_secs(2), events.connected()).await
    };
    if child_dir.is_some() {
        attempt
            .await
            .expect("the platform's roots did not trust the broker")
            .unwrap();
        return;
    }
    assert!(
        attempt.await.is_err(),
        "this machine's store trusts a fresh CA"
    );
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "platform_roots",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, &dir)
        .env("SSL_CERT_FILE", dir.join("ca.pem"))
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

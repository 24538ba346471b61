//! The embeddable server's transports on 127.0.0.1: MQTT over TCP and over WebSocket,
//! against real sockets.
#![allow(clippy::disallowed_methods)] // the test times its clients with the real clock

#[allow(dead_code)]
#[path = "../examples/blocking_client.rs"]
mod blocking_client;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mqtt_codec::*;
use mqtt_session::broker::BrokerConfig;
use mqtt_session::server::{Server, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// Starts the example's TCP and WebSocket listeners and its core on free loopback ports, as
/// its `main` does; returns the two addresses.
async fn start() -> (SocketAddr, SocketAddr) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::new(BrokerConfig::default())
        .listener(tcp, Transport::Tcp)
        .listener(ws, Transport::WebSocket)
        .start()
        .await
        .unwrap();
    // Dropped, the handle leaves the broker running until the test's runtime ends.
    (server.local_addrs()[0], server.local_addrs()[1])
}

/// [`start`], on a runtime of its own in a thread of its own: a broker task that loops
/// without yielding cannot then stop the test's own time limit.
fn start_elsewhere() -> (SocketAddr, SocketAddr) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            tx.send(start().await).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

fn bytes(p: Packet, version: ProtocolVersion) -> Vec<u8> {
    p.to_bytes(version).unwrap().to_vec()
}

fn connect(id: &'static str, version: ProtocolVersion) -> Vec<u8> {
    let c = Connect::new(version, MqttString::from_static(id));
    bytes(Packet::Connect(Box::new(c)), version)
}

fn subscribe(filter: &'static str, version: ProtocolVersion) -> Vec<u8> {
    let f = (
        TopicFilter::from_static(filter),
        SubscriptionOptions::qos(QoS::AtLeastOnce),
    );
    let s = Subscribe::new(PacketId::new(1).unwrap(), vec![f]);
    bytes(Packet::Subscribe(s), version)
}

fn publish(topic: &'static str, payload: &'static str, version: ProtocolVersion) -> Vec<u8> {
    let mut p = Publish::new(TopicName::from_static(topic), payload);
    p.qos_pid = QosPid::AtLeastOnce(PacketId::new(7).unwrap());
    bytes(Packet::Publish(p), version)
}

/// A client on a raw TCP connection.
struct Tcp {
    stream: TcpStream,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl Tcp {
    async fn open(addr: SocketAddr, version: ProtocolVersion) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self {
            stream,
            buf: BytesMut::new(),
            version,
        }
    }

    async fn write(&mut self, b: &[u8]) {
        self.stream.write_all(b).await.unwrap();
    }

    async fn recv(&mut self) -> Packet {
        loop {
            let cx = DecodeContext::new(self.version);
            if let Some(p) = Packet::decode(&mut self.buf, &cx).unwrap() {
                return p;
            }
            let n = self.stream.read_buf(&mut self.buf).await.unwrap();
            assert!(n > 0, "the broker closed the connection");
        }
    }
}

/// A client on a WebSocket that offered the `mqtt` subprotocol.
struct Ws {
    ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    buf: BytesMut,
    version: ProtocolVersion,
    /// The subprotocol the server selected.
    protocol: Option<String>,
}

impl Ws {
    async fn open(addr: SocketAddr, version: ProtocolVersion) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut req = format!("ws://{addr}/mqtt").into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
        let (ws, resp) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
        let protocol = resp
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        Self {
            ws,
            buf: BytesMut::new(),
            version,
            protocol,
        }
    }

    /// Sends `b` in one binary frame.
    async fn frame(&mut self, b: Vec<u8>) {
        self.ws.send(Message::Binary(b.into())).await.unwrap();
    }

    /// The next packet; every frame it arrives in must be a binary one.
    async fn recv(&mut self) -> Packet {
        loop {
            let cx = DecodeContext::new(self.version);
            if let Some(p) = Packet::decode(&mut self.buf, &cx).unwrap() {
                return p;
            }
            match self.ws.next().await {
                Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                other => panic!("expected a binary frame, got {other:?}"),
            }
        }
    }

    /// Whether the server ends the connection (close frame, end of stream or error).
    async fn closed(&mut self) -> bool {
        loop {
            match self.ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(Message::Binary(_))) => return false,
                Some(Ok(_)) => {}
            }
        }
    }
}

fn publish_payload(p: Packet) -> Bytes {
    match p {
        Packet::Publish(p) => p.payload,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("the test took longer than 10 s")
}

/// [MQTT-4.2.0-1], [MQTT-4.2-1]: the broker speaks MQTT over TCP, an ordered, lossless
/// stream of bytes, however the bytes are cut: a v5 CONNECT written one byte at a time,
/// a SUBSCRIBE and a PUBLISH in one write.
#[tokio::test]
async fn mqtt_over_tcp() {
    bounded(async {
        let (tcp, _) = start().await;
        let mut s = Tcp::open(tcp, V5).await;
        for b in connect("s", V5) {
            s.write(&[b]).await;
        }
        assert!(matches!(s.recv().await, Packet::ConnAck(a) if a.reason_code.0 == 0));
        let mut p = Tcp::open(tcp, V5).await;
        p.write(&connect("p", V5)).await;
        assert!(matches!(p.recv().await, Packet::ConnAck(_)));
        s.write(&[subscribe("t", V5), publish("t", "own", V5)].concat())
            .await;
        assert!(matches!(s.recv().await, Packet::SubAck(_)));
        assert_eq!(publish_payload(s.recv().await), "own");
        p.write(&publish("t", "theirs", V5)).await;
        assert!(matches!(s.recv().await, Packet::PubAck(_)));
        assert_eq!(publish_payload(s.recv().await), "theirs");
    })
    .await;
}

/// 3.1.1 clients over TCP the same way: 3.1.1 [MQTT-7.1.1-1].
#[tokio::test]
async fn mqtt_311_over_tcp() {
    bounded(async {
        let (tcp, _) = start().await;
        let mut s = Tcp::open(tcp, V311).await;
        for b in [connect("s", V311), subscribe("t/#", V311)].concat() {
            s.write(&[b]).await;
        }
        assert!(matches!(s.recv().await, Packet::ConnAck(_)));
        assert!(matches!(s.recv().await, Packet::SubAck(_)));
        let mut p = Tcp::open(tcp, V311).await;
        p.write(&[connect("p", V311), publish("t/1", "hi", V311)].concat())
            .await;
        assert_eq!(publish_payload(s.recv().await), "hi");
    })
    .await;
}

/// [MQTT-6.0.0-4] the broker selects the `mqtt` subprotocol; [MQTT-6.0.0-2] packets may
/// be cut across frames and several may share one: a CONNECT in two frames, then a
/// SUBSCRIBE and a PUBLISH in one; [MQTT-6.0.0-1] the broker answers in binary frames only,
/// and a text frame from the client closes the connection.
#[tokio::test]
async fn mqtt_over_websocket() {
    bounded(async {
        let (_, ws) = start().await;
        let mut s = Ws::open(ws, V5).await;
        assert_eq!(s.protocol.as_deref(), Some("mqtt"));
        let c = connect("s", V5);
        let (a, b) = c.split_at(5);
        s.frame(a.to_vec()).await;
        s.frame(b.to_vec()).await;
        assert!(matches!(s.recv().await, Packet::ConnAck(_)));
        s.frame([subscribe("t", V5), publish("t", "own", V5)].concat())
            .await;
        assert!(matches!(s.recv().await, Packet::SubAck(_)));
        assert_eq!(publish_payload(s.recv().await), "own");
        assert!(matches!(s.recv().await, Packet::PubAck(_)));
        s.ws.send(Message::Text("hello".into())).await.unwrap();
        assert!(s.closed().await, "a text frame must close the connection");
    })
    .await;
}

/// The same for 3.1.1 clients: 3.1.1 [MQTT-6.0.0-1], [MQTT-6.0.0-2], [MQTT-6.0.0-4]; a
/// message crosses from a WebSocket client to a TCP one.
#[tokio::test]
async fn mqtt_311_over_websocket() {
    bounded(async {
        let (tcp, ws) = start().await;
        let mut s = Tcp::open(tcp, V311).await;
        s.write(&[connect("s", V311), subscribe("t", V311)].concat())
            .await;
        assert!(matches!(s.recv().await, Packet::ConnAck(_)));
        assert!(matches!(s.recv().await, Packet::SubAck(_)));
        let mut p = Ws::open(ws, V311).await;
        assert_eq!(p.protocol.as_deref(), Some("mqtt"));
        let all = [connect("p", V311), publish("t", "hi", V311)].concat();
        let (a, b) = all.split_at(3);
        p.frame(a.to_vec()).await;
        p.frame(b.to_vec()).await;
        assert!(matches!(p.recv().await, Packet::ConnAck(_)));
        assert!(matches!(p.recv().await, Packet::PubAck(_)));
        assert_eq!(publish_payload(s.recv().await), "hi");
        p.ws.send(Message::Text("hello".into())).await.unwrap();
        assert!(p.closed().await, "a text frame must close the connection");
    })
    .await;
}

/// The blocking example, the template for a driver with no async runtime that uses only
/// what `mqtt-session` offers without std, round-trips a message at QoS 0, 1 and 2 through
/// the broker program, under 3.1.1 and 5.0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_example_round_trips_every_qos() {
    bounded(async {
        let (tcp, _) = start().await;
        for (id, version) in [("blocking-311", V311), ("blocking-5", V5)] {
            let addr = tcp.to_string();
            let got = tokio::task::spawn_blocking(move || {
                blocking_client::round_trip(&addr, id, version)
            })
            .await
            .unwrap()
            .unwrap();
            let mut qos: Vec<QoS> = got.iter().map(|(q, _)| *q).collect();
            qos.sort();
            assert_eq!(qos, [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]);
            for (q, payload) in &got {
                assert_eq!(payload, format!("{id} at {q:?}").as_bytes());
            }
        }
    })
    .await;
}

/// The WebSocket subprotocol answered is one the client offered, as it wrote it: `mqtt`
/// ([MQTT-6.0.0-3], [MQTT-6.0.0-4]) before `mqttv3.1` (old Paho JavaScript clients offer
/// only that), and `MQTT` is answered `MQTT`, not a token the client did not offer.
#[tokio::test]
async fn the_websocket_subprotocol_answered_is_one_offered() {
    bounded(async {
        let (_, ws) = start().await;
        for (offer, expected) in [
            ("mqttv3.1", Some("mqttv3.1")),
            ("MQTT", Some("MQTT")),
            ("mqttv3.1, mqtt", Some("mqtt")),
            ("chat", None),
        ] {
            let tcp = TcpStream::connect(ws).await.unwrap();
            let mut req = format!("ws://{ws}/mqtt").into_client_request().unwrap();
            req.headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(offer));
            let answered = match tokio_tungstenite::client_async(req, tcp).await {
                Ok((_, resp)) => resp
                    .headers()
                    .get("Sec-WebSocket-Protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(String::from),
                // tungstenite refuses a server that selects none of the offered ones.
                Err(_) => None,
            };
            assert_eq!(answered.as_deref(), expected, "offered {offer:?}");
        }
    })
    .await;
}

/// Keep-alive is watched in each connection's own task now: a client that pings is kept
/// ([MQTT-3.12.4-1], PINGRESP for each PINGREQ), one silent for one and a half times its
/// keep-alive is closed ([MQTT-3.1.2-22]), under v5 after DISCONNECT 0x8D Keep Alive
/// timeout; its will is published, as for a lost connection.
#[tokio::test]
async fn keep_alive_is_kept_by_pings_and_ends_a_silent_client() {
    bounded(async {
        let (tcp, _) = start().await;
        for version in [V5, V311] {
            let mut watcher = Tcp::open(tcp, version).await;
            watcher.write(&connect("watcher", version)).await;
            assert!(matches!(watcher.recv().await, Packet::ConnAck(_)));
            watcher.write(&subscribe("wills/#", version)).await;
            assert!(matches!(watcher.recv().await, Packet::SubAck(_)));

            let mut c = Connect::new(version, MqttString::from_static("silent"));
            c.keep_alive = 1;
            c.will = Some(Will {
                topic: TopicName::from_static("wills/silent"),
                payload: Bytes::from_static(b"gone"),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Default::default(),
            });
            let mut silent = Tcp::open(tcp, version).await;
            silent
                .write(&bytes(Packet::Connect(Box::new(c)), version))
                .await;
            assert!(matches!(silent.recv().await, Packet::ConnAck(_)));

            // Pinging every 0.5 s for 2.5 s (beyond 1.5 s): answered, and not closed.
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                silent.write(&bytes(Packet::PingReq, version)).await;
                assert_eq!(silent.recv().await, Packet::PingResp);
            }
            // Then silent: closed within 1.5 s (and a little scheduling).
            let started = std::time::Instant::now();
            if version.is_v5() {
                match silent.recv().await {
                    Packet::Disconnect(d) => {
                        assert_eq!(d.reason_code, ReasonCode::KEEP_ALIVE_TIMEOUT);
                    }
                    other => panic!("expected DISCONNECT 0x8D, got {other:?}"),
                }
            }
            let n = silent.stream.read_buf(&mut silent.buf).await.unwrap_or(0);
            assert_eq!(n, 0, "the connection stays open");
            let waited = started.elapsed();
            assert!(
                waited <= Duration::from_millis(2500),
                "closed after {waited:?}"
            );
            assert_eq!(publish_payload(watcher.recv().await), "gone");
        }
    })
    .await;
}

/// A second connection with a client identifier still connected elsewhere takes the
/// session over ([MQTT-3.1.4-3]): the old connection, silent and still open, gets
/// DISCONNECT 0x8E Session taken over under v5 and is closed; the new one gets its CONNACK.
/// (The driver first lets the old connection hand over what it had received; a silent one
/// has nothing, and the takeover must still go ahead, under either version, again and
/// again.) The broker runs on a runtime of its own, so that a driver looping without
/// yielding fails this test by its time limit instead of hanging it.
#[tokio::test]
async fn a_live_connection_is_taken_over() {
    let (tcp, _) = start_elsewhere();
    bounded(async {
        for version in [V5, V311] {
            let mut old = Tcp::open(tcp, version).await;
            old.write(&connect("twin", version)).await;
            assert!(matches!(old.recv().await, Packet::ConnAck(_)));
            for _ in 0..3 {
                let mut new = Tcp::open(tcp, version).await;
                new.write(&connect("twin", version)).await;
                match new.recv().await {
                    Packet::ConnAck(a) => assert_eq!(a.reason_code, ReasonCode::SUCCESS),
                    other => panic!("expected CONNACK, got {other:?}"),
                }
                if version.is_v5() {
                    match old.recv().await {
                        Packet::Disconnect(d) => {
                            assert_eq!(d.reason_code, ReasonCode::SESSION_TAKEN_OVER);
                        }
                        other => panic!("expected DISCONNECT 0x8E, got {other:?}"),
                    }
                }
                let n = old.stream.read_buf(&mut old.buf).await.unwrap_or(0);
                assert_eq!(n, 0, "the old connection stays open");
                old = new;
            }
        }
    })
    .await;
}

/// [MQTT-3.14.4-3], 3.1.1 [MQTT-3.1.2-10]: a client that sends DISCONNECT 0x00, closes and
/// connects again at once, 100 times under each version, never has its will published,
/// although its new CONNECT may reach the hub before its old connection's DISCONNECT (the
/// old connection hands over what it received first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immediate_reconnect_after_disconnect_never_publishes_the_will() {
    bounded(async {
        let (tcp, _) = start().await;
        let mut watcher = Tcp::open(tcp, V5).await;
        watcher.write(&connect("will-watcher", V5)).await;
        assert!(matches!(watcher.recv().await, Packet::ConnAck(_)));
        watcher.write(&subscribe("wills/#", V5)).await;
        assert!(matches!(watcher.recv().await, Packet::SubAck(_)));
        for version in [V311, V5] {
            let mut c = Connect::new(version, MqttString::from_static("quick"));
            c.will = Some(Will {
                topic: TopicName::from_static("wills/quick"),
                payload: Bytes::from_static(b"gone"),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Default::default(),
            });
            let hello = bytes(Packet::Connect(Box::new(c)), version);
            let bye = bytes(Packet::Disconnect(Disconnect::default()), version);
            let mut s = Tcp::open(tcp, version).await;
            s.write(&hello).await;
            for _ in 0..100 {
                assert!(matches!(s.recv().await, Packet::ConnAck(_)));
                // DISCONNECT and the next CONNECT go out back to back.
                s.write(&bye).await;
                let next = Tcp::open(tcp, version).await;
                drop(std::mem::replace(&mut s, next));
                s.write(&hello).await;
            }
            assert!(matches!(s.recv().await, Packet::ConnAck(_)));
            s.write(&bye).await;
        }
        watcher.write(&bytes(Packet::PingReq, V5)).await;
        match watcher.recv().await {
            Packet::PingResp => {}
            Packet::Publish(p) => panic!("a will was published: {p:?}"),
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
}

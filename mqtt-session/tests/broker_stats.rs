//! The broker's statistics as operators read them: the `$SYS/broker/...` topics (mosquitto's
//! names) and the Prometheus `/metrics` endpoint, moving as clients connect, publish, are
//! refused and leave.
#![allow(clippy::disallowed_methods)] // a test may read the clock

#[path = "common/events.rs"]
mod events;

use events::{next_disconnection, next_message};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use mqtt_session::broker::{BrokerConfig, ConnectRequest};
use mqtt_session::client::{ClientConfig, Message};
use mqtt_session::driver::{AsyncClient, ClientOptions, Events, Notification};
use mqtt_session::mqtt_codec::{
    MqttString, ProtocolVersion, QoS, ReasonCode, TopicFilter, TopicName,
};
use mqtt_session::server::{Peer, Server, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn config(id: &str) -> ClientConfig {
    let mut c = ClientConfig::new(ProtocolVersion::V5, MqttString::new(id).unwrap());
    c.keep_alive = 10;
    c
}

async fn connect(addr: SocketAddr, id: &str) -> (AsyncClient, Events) {
    let (client, mut events) = AsyncClient::start(ClientOptions::new(addr.to_string(), config(id)));
    let connected = tokio::time::timeout(Duration::from_secs(10), events.connected()).await;
    connected
        .expect("no CONNACK in time")
        .expect("the client stopped");
    (client, events)
}

/// The `$SYS` values seen so far, by topic.
struct Sys {
    events: Events,
    seen: HashMap<String, String>,
}

impl Sys {
    /// Reads `$SYS` messages until `topic`'s value satisfies `ok`; returns it.
    async fn until(&mut self, topic: &str, ok: impl Fn(&str) -> bool) -> String {
        let topic = format!("$SYS/broker/{topic}");
        let wait = async {
            loop {
                if let Some(v) = self.seen.get(&topic)
                    && ok(v)
                {
                    return v.clone();
                }
                match self.events.recv().await {
                    Some(Notification::Message(m)) => {
                        let v = String::from_utf8(m.payload.to_vec()).unwrap();
                        self.seen.insert(m.topic.to_string(), v);
                    }
                    Some(_) => {}
                    None => panic!("the watcher stopped"),
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), wait).await {
            Ok(v) => v,
            Err(_) => panic!(
                "{topic} never satisfied the test: {:?}",
                self.seen.get(&topic)
            ),
        }
    }
}

/// One HTTP request to the metrics listener: the status line and the body.
async fn http(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    let read = s.read_to_string(&mut text);
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .unwrap()
        .unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of one sample of `/metrics` (name with labels, as written).
async fn metric(addr: SocketAddr, sample: &str) -> u64 {
    let (status, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: broker\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    body.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in\n{body}"))
}

fn at_least(n: u64) -> impl Fn(&str) -> bool {
    move |v: &str| v.parse::<u64>().is_ok_and(|v| v >= n)
}

/// `$SYS/broker/...` is published every `sys_interval` as retained messages, reaches a
/// `$SYS/#` subscriber but not a `#` one ([MQTT-4.7.2-1]), and its counts follow the
/// clients; `/metrics` shows the same, plus refusals by reason code; other paths get 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_topics_and_metrics_follow_the_clients() {
    let run = async {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refuse_bad = |r: &ConnectRequest, _: &Peer<'_>| match r.client_id.as_str() {
            "bad" => Err(ReasonCode::NOT_AUTHORIZED),
            _ => Ok(None),
        };
        let server = Server::new(BrokerConfig::default())
            .listener(tcp, Transport::Tcp)
            .metrics(metrics)
            .sys_interval(Duration::from_millis(100))
            .authenticator(refuse_bad)
            .start()
            .await
            .unwrap();
        let (addr, maddr) = (server.local_addrs()[0], server.metrics_addr().unwrap());

        let (watcher, events) = connect(addr, "watcher").await;
        watcher
            .subscribe(TopicFilter::new("$SYS/broker/#").unwrap(), QoS::AtMostOnce)
            .await
            .unwrap();
        let mut sys = Sys {
            events,
            seen: HashMap::new(),
        };
        sys.until("clients/connected", |v| v == "1").await;
        let version = sys.until("version", |_| true).await;
        assert!(version.starts_with("mqtt-session "), "{version}");
        assert_eq!(metric(maddr, "mqtt_clients_connected").await, 1);

        // Two more clients; one subscribes to everything, the other publishes five messages.
        let (all, mut all_events) = connect(addr, "all").await;
        all.subscribe(TopicFilter::new("#").unwrap(), QoS::AtMostOnce)
            .await
            .unwrap();
        let (publisher, _p) = connect(addr, "publisher").await;
        for i in 0..5 {
            let msg = Message::new(TopicName::new("t").unwrap(), format!("{i}"))
                .with_qos(QoS::AtLeastOnce);
            publisher.publish(msg).await.unwrap();
        }
        sys.until("clients/connected", |v| v == "3").await;
        sys.until("clients/maximum", |v| v == "3").await;
        sys.until("publish/messages/received", at_least(5)).await;
        sys.until("publish/messages/sent", at_least(5)).await;
        sys.until("subscriptions/count", |v| v == "2").await;
        sys.until("bytes/received", at_least(100)).await;
        sys.until("load/publish/received/1min", |v| {
            v.parse::<f64>().is_ok_and(|v| v > 0.0)
        })
        .await;
        assert_eq!(metric(maddr, "mqtt_clients_connected").await, 3);
        assert!(metric(maddr, "mqtt_publish_received_total").await >= 5);
        assert!(metric(maddr, "mqtt_bytes_sent_total").await > 0);
        assert_eq!(metric(maddr, "mqtt_subscriptions").await, 2);
        assert_eq!(server.stats().clients_connected, 3);

        // The `#` subscriber got the five messages and nothing of $SYS.
        let mut got = Vec::new();
        while got.len() < 5 {
            match tokio::time::timeout(Duration::from_secs(5), all_events.recv()).await {
                Ok(Some(Notification::Message(m))) => got.push(m.topic.to_string()),
                Ok(Some(_)) => {}
                other => panic!("the `#` subscriber: {other:?}"),
            }
        }
        assert_eq!(got, ["t"; 5]);
        // Several $SYS intervals pass: nothing more comes.
        let more = tokio::time::timeout(Duration::from_millis(400), all_events.recv()).await;
        if let Ok(Some(Notification::Message(m))) = more {
            panic!("`#` received {}", m.topic);
        }

        // A refused client, and one that leaves.
        let (bad, mut bad_events) =
            AsyncClient::start(ClientOptions::new(addr.to_string(), config("bad")));
        next_disconnection(&mut bad_events).await;
        drop(bad);
        publisher.disconnect().await.unwrap();
        sys.until("clients/connected", |v| v == "2").await;
        sys.until("clients/maximum", |v| v == "3").await;
        assert_eq!(
            metric(maddr, "mqtt_connects_refused_total{reason_code=\"0x87\"}").await,
            1
        );

        // No client publishes under $SYS/: the broker's own topics ([MQTT-4.7.2-1] lets a
        // server refuse them; mosquitto does).
        let forged = Message::new(TopicName::new("$SYS/broker/version").unwrap(), "forged")
            .with_qos(QoS::AtLeastOnce)
            .with_retain(true);
        let refused = connect(addr, "publisher-2")
            .await
            .0
            .publish(forged)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(refused.reason_code, ReasonCode::NOT_AUTHORIZED);

        // A late subscriber gets the retained values at once.
        let (late, mut late_events) = connect(addr, "late").await;
        late.subscribe(
            TopicFilter::new("$SYS/broker/version").unwrap(),
            QoS::AtMostOnce,
        )
        .await
        .unwrap();
        let m = next_message(&mut late_events).await;
        assert!(m.retain, "retained");
        assert_eq!(&m.payload[..], version.as_bytes());

        let (status, _) = http(maddr, "GET / HTTP/1.1\r\n\r\n").await;
        assert_eq!(status, "HTTP/1.1 404 Not Found");
        let (status, _) = http(maddr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
        server.shutdown().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the test took too long");
}

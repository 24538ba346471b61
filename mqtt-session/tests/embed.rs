//! The embeddable broker (`mqtt_session::server`) in a program of its own: one `Server` with
//! TCP, TLS, WebSocket and secure WebSocket listeners, an authenticator and an authoriser
//! of the program's own, served until a `CancellationToken` is cancelled, and talked to by
//! our async client and by paho-mqtt (Python) over each transport. paho-mqtt comes from
//! PyPI (CI installs it); without it the test fails and says so.
#![allow(clippy::disallowed_methods)] // a test may read the clock

#[path = "common/events.rs"]
mod events;
#[path = "common/pki.rs"]
mod pki;

use events::{next_disconnection, next_message};
use pki::pki;
use std::collections::BTreeSet;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use mqtt_session::broker::{Authorizer, BrokerConfig, ClientInfo, ConnectRequest};
use mqtt_session::client::{ClientConfig, Message};
use mqtt_session::driver::{AsyncClient, ClientOptions, Events, Notification, Tls};
use mqtt_session::mqtt_codec::{
    MqttString, ProtocolVersion, QoS, ReasonCode, TopicFilter, TopicName,
};
use mqtt_session::server::{CancellationToken, Peer, Server, Transport, tls_acceptor};
use tokio::net::{TcpListener, TcpStream};

/// The program's own rule: nobody publishes under `forbidden/`.
struct NoForbidden;

impl Authorizer for NoForbidden {
    fn may_publish(&self, _: &ClientInfo<'_>, topic: &TopicName) -> bool {
        !topic.as_str().starts_with("forbidden/")
    }
}

/// The program's own authentication: user `tester`, password `pw`.
fn authenticate(r: &ConnectRequest, _: &Peer<'_>) -> Result<Option<MqttString>, ReasonCode> {
    let user = r.username.as_ref().map(|u| u.as_str());
    match (user, r.password.as_deref()) {
        (Some("tester"), Some(b"pw")) => Ok(None),
        _ => Err(ReasonCode::NOT_AUTHORIZED),
    }
}

fn config(id: &str, password: &str) -> ClientConfig {
    let mut c = ClientConfig::new(ProtocolVersion::V5, MqttString::new(id).unwrap());
    c.keep_alive = 10;
    c.username = Some(MqttString::from_static("tester"));
    c.password = Some(password.to_string().into_bytes().into());
    c
}

/// Our async client, connected over `options`' transport.
async fn connect(options: ClientOptions) -> (AsyncClient, Events) {
    let (client, mut events) = AsyncClient::start(options);
    let connected = tokio::time::timeout(Duration::from_secs(10), events.connected()).await;
    connected
        .expect("no CONNACK in time")
        .expect("the client stopped");
    (client, events)
}

/// paho-mqtt's side, in a thread: its output lines, sent as they come.
fn paho(
    ports: [u16; 4],
    ca_file: &std::path::Path,
) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let available = Command::new("python3")
        .args(["-c", "import paho.mqtt"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        available,
        "paho-mqtt is not installed for python3 (`python3 -m pip install paho-mqtt`)"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/embed/paho_peer.py");
    let mut child = Command::new("timeout")
        .arg("60")
        .arg("python3")
        .arg(script)
        .args(ports.map(|p| p.to_string()))
        .arg(ca_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
        let status = child.wait().unwrap();
        let _ = tx.send(format!("exit {}", status.code().unwrap_or(-1)));
    });
    rx
}

/// The README's embedding, end to end: paho and our client, each over every transport,
/// reach each other through one embedded broker; the program's authenticator refuses a
/// wrong password (CONNACK 0x87) and its authoriser a forbidden topic (PUBACK 0x87); the
/// token's cancellation sends connected v5 clients DISCONNECT 0x8B (Server shutting down)
/// and `serve` returns `Ok`, its listeners closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_embeds_the_broker() {
    tokio::time::timeout(Duration::from_secs(90), embed())
        .await
        .expect("the test took too long");
}

async fn embed() {
    let (ca, chain, key) = pki();
    let dir = std::env::temp_dir().join(format!("mqtt-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();

    // The embedding, as a program writes it.
    let acceptor = tls_acceptor(chain.as_bytes(), key.as_bytes(), None).unwrap();
    let bind = || TcpListener::bind("127.0.0.1:0");
    let (tcp, tls, ws, wss) = (
        bind().await.unwrap(),
        bind().await.unwrap(),
        bind().await.unwrap(),
        bind().await.unwrap(),
    );
    let addrs = [&tcp, &tls, &ws, &wss].map(|l| l.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let broker = Server::new(BrokerConfig::default())
        .listener(tcp, Transport::Tcp)
        .listener(tls, Transport::Tls(acceptor.clone()))
        .listener(ws, Transport::WebSocket)
        .listener(wss, Transport::SecureWebSocket(acceptor))
        .authenticator(authenticate)
        .authorizer(NoForbidden)
        .serve(shutdown.clone());
    let broker = tokio::spawn(broker);

    let [tcp, tls, ws, _] = addrs.map(|a| a.to_string());
    let secure = || Tls::with_ca_pem(ca.as_bytes(), None, "localhost").unwrap();
    let (sub, mut sub_events) =
        connect(ClientOptions::new(&ws, config("rust-sub", "pw")).with_websocket("/mqtt")).await;
    sub.subscribe(TopicFilter::new("embed/#").unwrap(), QoS::AtLeastOnce)
        .await
        .unwrap();

    let mut paho = paho(addrs.map(|a| a.port()), &ca_file);
    let line = paho.recv().await.unwrap();
    assert_eq!(line, "subscribed", "paho's subscriber did not subscribe");

    let publishers = [
        ("tcp", ClientOptions::new(&tcp, config("rust-tcp", "pw"))),
        (
            "tls",
            ClientOptions::new(&tls, config("rust-tls", "pw")).with_tls(secure()),
        ),
        (
            "ws",
            ClientOptions::new(&ws, config("rust-ws", "pw")).with_websocket("/mqtt"),
        ),
    ];
    for (name, options) in publishers {
        let (c, _events) = connect(options).await;
        let topic = TopicName::new(format!("embed/rust/{name}")).unwrap();
        let msg = Message::new(topic, format!("from rust over {name}")).with_qos(QoS::AtLeastOnce);
        let published = c.publish(msg).await.unwrap().unwrap();
        assert_eq!(published.reason_code, ReasonCode::SUCCESS, "over {name}");
        if name == "tls" {
            let topic = TopicName::new("forbidden/x").unwrap();
            let msg = Message::new(topic, "no").with_qos(QoS::AtLeastOnce);
            let refused = c.publish(msg).await.unwrap().unwrap();
            assert_eq!(refused.reason_code, ReasonCode::NOT_AUTHORIZED);
        }
        c.disconnect().await.unwrap();
    }

    // A wrong password: the program's authenticator refuses it.
    let (wrong, mut wrong_events) =
        AsyncClient::start(ClientOptions::new(&tcp, config("rust-wrong", "nope")));
    let refused = loop {
        match wrong_events.recv().await {
            Some(Notification::Disconnected(d)) => break d,
            Some(Notification::Connected(_)) => panic!("a wrong password was accepted"),
            _ => {}
        }
    };
    // Dropped, it stops trying: each failure counts against 127.0.0.1 (the Throttle).
    drop(wrong);
    assert_eq!(refused.reason_code, Some(ReasonCode::NOT_AUTHORIZED));

    // What each side received, and what paho says of its own publishes.
    let mut paho_lines = Vec::new();
    while let Some(line) = paho.recv().await {
        let done = line.starts_with("exit ");
        paho_lines.push(line);
        if done {
            break;
        }
    }
    assert_eq!(
        paho_lines.last().map(String::as_str),
        Some("exit 0"),
        "{paho_lines:#?}"
    );
    let want: BTreeSet<String> = [
        "paho/tcp", "paho/tls", "paho/wss", "rust/tcp", "rust/tls", "rust/ws",
    ]
    .iter()
    .map(|t| {
        let (who, how) = t.split_once('/').unwrap();
        format!("received embed/{t} from {who} over {how}")
    })
    .collect();
    let got: BTreeSet<String> = paho_lines
        .iter()
        .filter(|l| l.starts_with("received "))
        .cloned()
        .collect();
    assert_eq!(got, want, "paho's subscriber (over WebSocket)");
    for name in ["tcp", "tls", "wss"] {
        assert!(
            paho_lines.contains(&format!("published {name}")),
            "{paho_lines:#?}"
        );
    }
    let refused = paho_lines
        .iter()
        .find(|l| l.starts_with("refused "))
        .unwrap();
    assert_eq!(refused, "refused Not authorized", "paho's wrong password");

    let mut ours = BTreeSet::new();
    while ours.len() < want.len() {
        let m = tokio::time::timeout(Duration::from_secs(10), next_message(&mut sub_events))
            .await
            .expect("a message did not reach our subscriber");
        let payload = String::from_utf8(m.payload.to_vec()).unwrap();
        ours.insert(format!("received {} {payload}", m.topic));
    }
    assert_eq!(ours, want, "our subscriber (over WebSocket)");

    // The program stops the broker.
    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(10), broker).await;
    stopped.expect("serve did not return").unwrap().unwrap();
    let goodbye = next_disconnection(&mut sub_events).await;
    assert_eq!(goodbye.reason_code, Some(ReasonCode::SERVER_SHUTTING_DOWN));
    assert!(
        TcpStream::connect(addrs[0]).await.is_err(),
        "the listener is closed"
    );
    let _ = std::fs::remove_dir_all(dir);
}

//! The example client (`examples/client`) against aedes, a broker that speaks only MQTT
//! 3.1.1 (the successor of Mosca): QoS 0/1/2 round trips, a retained message and a will,
//! each with a client configured for 3.1.1 and one configured for "5.0, else 3.1.1", which
//! falls back; a 5.0-only client hears that the server does not support 5.0.
//!
//! Each test starts its own aedes (`tests/aedes/broker.mjs`, on a port the system picks
//! on 127.0.0.1) and kills it at the end. It needs `node` (20 or later) on the PATH and
//! aedes installed beside the script, `npm ci --prefix mqtt-session/tests/aedes`, which
//! `.ci/run` does. Without them the tests fail, saying so: they never pass without
//! having run.
#![allow(clippy::disallowed_methods)] // tests may read the clock

#[path = "../examples/client/cli.rs"]
#[allow(dead_code)]
mod cli;
#[path = "../examples/client/driver.rs"]
#[allow(dead_code)]
mod driver;
#[path = "common/example_client.rs"]
mod example_client;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use mqtt_codec::{MqttString, ProtocolVersion, QoS, ReasonCode, TopicName, Will};
use mqtt_session::client::{Client, ClientConfig, Event, Message};
use mqtt_session::event::CloseCause;

use example_client::{Output, WAIT, args, finish, run, subscribe};

/// An aedes process, killed on drop.
struct Aedes {
    child: Child,
    port: u16,
}

impl Drop for Aedes {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aedes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aedes")
}

const INSTALL: &str = "install it with `npm ci --prefix mqtt-session/tests/aedes` \
                       (needs node 20 or later and npm; .ci/run does this)";

/// Starts aedes and waits for it to listen; fails the test, saying what to install, when
/// node or aedes is missing.
fn start() -> Aedes {
    let dir = aedes_dir();
    assert!(
        dir.join("node_modules/aedes/package.json").is_file(),
        "aedes is not installed in {}: {INSTALL}",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg("broker.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): {INSTALL}"));
    let stdout = child.stdout.take().expect("piped stdout");
    // Wait for `listening PORT`, bounded in time; the node process is killed on drop.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut aedes = Aedes { child, port: 0 };
    let line = rx
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("aedes did not start listening within {WAIT:?}"));
    aedes.port = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("aedes did not start ({line:?}): {INSTALL}"));
    aedes
}

/// The client's two configurations that work with a 3.1.1-only server: 3.1.1, and 5.0
/// falling back to 3.1.1. Both end up speaking 3.1.1.
const PROTOCOLS: [&str; 2] = ["3.1.1", "5-or-3.1.1"];

#[tokio::test(flavor = "current_thread")]
async fn qos_0_1_2_round_trips() {
    let a = start();
    for p in PROTOCOLS {
        for q in ["0", "1", "2"] {
            let topic = format!("rt/{p}/{q}");
            let (sub, out) =
                subscribe(args(a.port, p, &format!("--qos {q} sub --count 2 {topic}"))).await;
            for text in ["first", "second"] {
                let got = run(args(a.port, p, &format!("--qos {q} pub {topic} {text}"))).await;
                assert_eq!(got, ProtocolVersion::V3_1_1);
            }
            assert_eq!(finish(sub).await, ProtocolVersion::V3_1_1);
            assert_eq!(
                out.lines(),
                [format!("{topic} first"), format!("{topic} second")],
                "--protocol {p} --qos {q}"
            );
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn retained_message_reaches_a_later_subscriber() {
    let a = start();
    for p in PROTOCOLS {
        let topic = format!("ret/{p}");
        run(args(
            a.port,
            p,
            &format!("--qos 1 --retain pub {topic} kept"),
        ))
        .await;
        let (sub, out) = subscribe(args(a.port, p, &format!("sub --count 1 {topic}"))).await;
        finish(sub).await;
        assert_eq!(out.lines(), [format!("{topic} kept")], "--protocol {p}");
    }
}

/// Connects `client` through the example driver, taking the fallback to 3.1.1 the way an
/// application does: on `UnsupportedProtocolVersion` with a fallback, a new transport.
/// Returns the driver and every event seen before `Connected`.
async fn connect(addr: &str, client: Client) -> (driver::Driver, Vec<Event>) {
    let mut d = driver::Driver::connect(addr, client).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(WAIT, d.next_event())
            .await
            .expect("CONNACK in time")
            .unwrap();
        match event {
            Some(Event::Connected(c)) => {
                seen.push(Event::Connected(c));
                return (d, seen);
            }
            Some(Event::Disconnected(why)) => {
                let fallback = seen.iter().any(|e| {
                    matches!(
                        e,
                        Event::UnsupportedProtocolVersion {
                            fallback: Some(_),
                            ..
                        }
                    )
                });
                assert!(fallback, "refused without a fallback: {seen:?} {why:?}");
                seen.push(Event::Disconnected(why));
                d = driver::Driver::connect(addr, d.into_client())
                    .await
                    .unwrap();
            }
            Some(e) => seen.push(e),
            None => panic!("closed before CONNACK: {seen:?}"),
        }
    }
}

fn config(fallback: bool, id: &'static str) -> ClientConfig {
    let version = if fallback {
        ProtocolVersion::V5
    } else {
        ProtocolVersion::V3_1_1
    };
    let mut c = ClientConfig::new(version, MqttString::from_static(id));
    c.fallback_to_v3_1_1 = fallback;
    c
}

#[tokio::test(flavor = "current_thread")]
async fn will_is_published_on_abrupt_close() {
    let a = start();
    let addr = format!("127.0.0.1:{}", a.port);
    for (p, fallback) in [("3.1.1", false), ("5-or-3.1.1", true)] {
        let topic = format!("will/{p}");
        let (sub, out) =
            subscribe(args(a.port, p, &format!("--qos 1 sub --count 1 {topic}"))).await;
        let mut c = config(fallback, "dying");
        c.will = Some(Will {
            topic: TopicName::new(topic.clone()).unwrap(),
            payload: "gone".into(),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Default::default(),
        });
        let (d, _) = connect(&addr, Client::new(c)).await;
        // Drop the TCP connection without DISCONNECT.
        let _session = d.abort();
        finish(sub).await;
        assert_eq!(out.lines(), [format!("{topic} gone")], "--protocol {p}");
    }
}

/// aedes answers a 5.0 CONNECT with the 3.1.1 CONNACK `20 02 00 01` (3.1.1
/// [MQTT-3.1.2-2]: return code 1, then it closes). A 5.0-only client reports that the
/// server does not support 5.0, not a malformed packet.
#[tokio::test(flavor = "current_thread")]
async fn v5_only_client_hears_that_aedes_does_not_support_v5() {
    let a = start();
    let addr = format!("127.0.0.1:{}", a.port);
    let client = Client::new(ClientConfig::new(
        ProtocolVersion::V5,
        MqttString::from_static("v5-only"),
    ));
    let mut d = driver::Driver::connect(&addr, client).await.unwrap();
    let mut events = Vec::new();
    while let Some(e) = tokio::time::timeout(WAIT, d.next_event())
        .await
        .expect("an answer in time")
        .unwrap()
    {
        events.push(e);
    }
    let [
        Event::UnsupportedProtocolVersion { refused, fallback },
        Event::Disconnected(why),
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((*refused, *fallback), (ProtocolVersion::V5, None));
    assert_eq!(why.cause, CloseCause::Refused);
    assert_eq!(
        why.reason_code,
        Some(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION)
    );
    // The example client says so.
    let mut sink = Output::default();
    let err = tokio::time::timeout(
        WAIT,
        cli::run(&args(a.port, "5", "pub t x"), &mut sink, None),
    )
    .await
    .expect("in time")
    .unwrap_err();
    assert!(err.contains("does not support MQTT 5.0"), "{err}");
}

/// The fallback carries the session over: a QoS 1 message published before the first
/// connection waits through the refused 5.0 connection and goes out on the 3.1.1 one.
#[tokio::test(flavor = "current_thread")]
async fn fallback_keeps_the_session_and_reports_the_version() {
    let a = start();
    let addr = format!("127.0.0.1:{}", a.port);
    let topic = "fallback/queued";
    let (sub, out) = subscribe(args(
        a.port,
        "3.1.1",
        &format!("--qos 1 sub --count 1 {topic}"),
    ))
    .await;
    let mut client = Client::new(config(true, "falling"));
    let msg = Message::new(TopicName::from_static(topic), "waited").with_qos(QoS::AtLeastOnce);
    client.publish(driver::now(), msg).unwrap();
    let (mut d, seen) = connect(&addr, client).await;
    let [
        Event::UnsupportedProtocolVersion { refused, fallback },
        Event::Disconnected(why),
        Event::Connected(c),
    ] = &seen[..]
    else {
        panic!("{seen:?}")
    };
    assert_eq!(
        (*refused, *fallback),
        (ProtocolVersion::V5, Some(ProtocolVersion::V3_1_1))
    );
    assert_eq!(why.cause, CloseCause::Refused);
    assert_eq!(c.protocol, ProtocolVersion::V3_1_1);
    assert_eq!(d.client().protocol(), ProtocolVersion::V3_1_1);
    loop {
        match tokio::time::timeout(WAIT, d.next_event())
            .await
            .expect("PUBACK in time")
            .unwrap()
        {
            Some(Event::Published(p)) => {
                assert_eq!(p.reason_code, ReasonCode::SUCCESS);
                break;
            }
            Some(Event::Disconnected(why)) => panic!("{why:?}"),
            Some(_) => {}
            None => panic!("closed"),
        }
    }
    finish(sub).await;
    assert_eq!(out.lines(), [format!("{topic} waited")]);
}

//! The example client (`examples/client`) against a real mosquitto, for MQTT 3.1.1 and 5.0:
//! QoS 0/1/2 round trips, a retained message, a will on abrupt close, and session resume
//! with queued QoS 1 messages after a reconnect; a client configured for "5.0, else 3.1.1"
//! gets 5.0.
//!
//! Each test starts its own mosquitto on a free 127.0.0.1 port with a generated
//! configuration, and kills it at the end. When no `mosquitto` binary is installed the
//! tests fail, saying how to install it (`.ci/run` does): they never pass without having
//! run.
#![allow(clippy::disallowed_methods)] // tests may read the clock

#[path = "../examples/client/cli.rs"]
#[allow(dead_code)]
mod cli;
#[path = "../examples/client/driver.rs"]
#[allow(dead_code)]
mod driver;
#[path = "common/example_client.rs"]
mod example_client;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mqtt_codec::{MqttString, ProtocolVersion, QoS, TopicName, Will};
use mqtt_session::client::{Client, ClientConfig, Event, Message};

use example_client::{Output, args, finish, run, subscribe};

/// A mosquitto process on its own port, killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mosquitto_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.push("/usr/local/sbin".into());
    dirs.into_iter()
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

/// Starts mosquitto; fails the test when it is not installed.
fn start(test: &str) -> Mosquitto {
    let Some(bin) = mosquitto_binary() else {
        panic!("{test}: the mosquitto binary is not installed (apt-get install mosquitto)");
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir =
        std::env::temp_dir().join(format!("mqtt-session-{test}-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 100\nlog_dest none\n"
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto starts");
    let m = Mosquitto { child, port, dir };
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "mosquitto did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    m
}

const PROTOCOLS: [&str; 2] = ["3.1.1", "5"];

#[tokio::test(flavor = "current_thread")]
async fn qos_0_1_2_round_trips() {
    let m = start("round_trips");
    for p in PROTOCOLS {
        for q in ["0", "1", "2"] {
            let topic = format!("rt/{p}/{q}");
            let (sub, out) =
                subscribe(args(m.port, p, &format!("--qos {q} sub --count 2 {topic}"))).await;
            run(args(m.port, p, &format!("--qos {q} pub {topic} first"))).await;
            run(args(m.port, p, &format!("--qos {q} pub {topic} second"))).await;
            finish(sub).await;
            assert_eq!(
                out.lines(),
                [format!("{topic} first"), format!("{topic} second")]
            );
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn retained_message_reaches_a_later_subscriber() {
    let m = start("retained");
    for p in PROTOCOLS {
        let topic = format!("ret/{p}");
        run(args(
            m.port,
            p,
            &format!("--qos 1 --retain pub {topic} kept"),
        ))
        .await;
        let (sub, out) = subscribe(args(m.port, p, &format!("sub --count 1 {topic}"))).await;
        finish(sub).await;
        assert_eq!(out.lines(), [format!("{topic} kept")]);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn will_is_published_on_abrupt_close() {
    let m = start("will");
    let addr = format!("127.0.0.1:{}", m.port);
    for (p, version) in [
        ("3.1.1", ProtocolVersion::V3_1_1),
        ("5", ProtocolVersion::V5),
    ] {
        let topic = format!("will/{p}");
        let (sub, out) =
            subscribe(args(m.port, p, &format!("--qos 1 sub --count 1 {topic}"))).await;
        let mut config = ClientConfig::new(version, MqttString::from_static("dying"));
        config.will = Some(Will {
            topic: TopicName::new(topic.clone()).unwrap(),
            payload: "gone".into(),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Default::default(),
        });
        let mut d = driver::Driver::connect(&addr, Client::new(config))
            .await
            .unwrap();
        loop {
            match d.next_event().await.unwrap() {
                Some(Event::Connected(_)) => break,
                other => assert!(other.is_some(), "closed before CONNACK"),
            }
        }
        // Drop the TCP connection without DISCONNECT.
        let _session = d.abort();
        finish(sub).await;
        assert_eq!(out.lines(), [format!("{topic} gone")]);
    }
}

/// A subscriber with a lasting session goes away; QoS 1 messages published meanwhile are
/// queued by the server and delivered when it reconnects and resumes the session.
#[tokio::test(flavor = "current_thread")]
async fn session_resume_delivers_queued_qos1() {
    let m = start("resume");
    for p in PROTOCOLS {
        let topic = format!("resume/{p}");
        let session = format!(
            "--id keeper{} --no-clean --session-expiry 300 --qos 1",
            p.len()
        );
        // Subscribe, then disconnect, leaving the session at the server.
        let (sub, _) =
            subscribe(args(m.port, p, &format!("{session} sub --count 0 {topic}"))).await;
        finish(sub).await;
        run(args(
            m.port,
            p,
            &format!("--qos 1 pub {topic} while-away-1"),
        ))
        .await;
        run(args(
            m.port,
            p,
            &format!("--qos 1 pub {topic} while-away-2"),
        ))
        .await;
        let (sub, out) =
            subscribe(args(m.port, p, &format!("{session} sub --count 2 {topic}"))).await;
        finish(sub).await;
        assert_eq!(
            out.lines(),
            [
                format!("{topic} while-away-1"),
                format!("{topic} while-away-2")
            ]
        );
    }
}

/// The client side of resume: QoS 1 messages published while the client has no connection
/// wait in its queue and go out after it reconnects with its session.
#[tokio::test(flavor = "current_thread")]
async fn client_queue_is_sent_after_reconnect() {
    let m = start("client_queue");
    let addr = format!("127.0.0.1:{}", m.port);
    for (p, version) in [
        ("3.1.1", ProtocolVersion::V3_1_1),
        ("5", ProtocolVersion::V5),
    ] {
        let topic = format!("queued/{p}");
        let (sub, out) =
            subscribe(args(m.port, p, &format!("--qos 1 sub --count 2 {topic}"))).await;
        // One client identifier per version: a fresh client holds no session state and
        // refuses a session the server kept for an earlier run ([MQTT-3.2.2-4]).
        let id = MqttString::new(format!("queuer-{p}")).unwrap();
        let mut config = ClientConfig::new(version, id);
        config.clean_start = false;
        config.properties.session_expiry_interval = version.is_v5().then_some(300);
        let mut d = driver::Driver::connect(&addr, Client::new(config))
            .await
            .unwrap();
        loop {
            match d.next_event().await.unwrap() {
                Some(Event::Connected(_)) => break,
                Some(Event::Disconnected(why)) => panic!("{why:?}"),
                Some(_) => {}
                None => panic!("closed before CONNACK"),
            }
        }
        // The connection breaks; the application keeps publishing.
        let mut client = d.abort();
        for text in ["q1", "q2"] {
            let msg = Message::new(TopicName::new(topic.clone()).unwrap(), text)
                .with_qos(QoS::AtLeastOnce);
            client.publish(driver::now(), msg).unwrap();
        }
        assert_eq!(client.queued(), 2);
        let mut d = driver::Driver::connect(&addr, client).await.unwrap();
        let mut done = 0;
        while done < 2 {
            match tokio::time::timeout(Duration::from_secs(10), d.next_event())
                .await
                .unwrap()
                .unwrap()
            {
                Some(Event::Published(_)) => done += 1,
                Some(Event::Disconnected(why)) => panic!("{why:?}"),
                Some(_) => {}
                None => panic!("closed"),
            }
        }
        finish(sub).await;
        assert_eq!(out.lines(), [format!("{topic} q1"), format!("{topic} q2")]);
    }
}

/// mosquitto speaks 5.0: a client configured for "5.0, else 3.1.1" gets 5.0 and keeps it.
#[tokio::test(flavor = "current_thread")]
async fn five_or_three_gets_five() {
    let m = start("fallback");
    let topic = "fallback/none";
    let (sub, out) = subscribe(args(
        m.port,
        "5-or-3.1.1",
        &format!("--qos 1 sub --count 1 {topic}"),
    ))
    .await;
    let mut sink = Output::default();
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        cli::run(
            &args(m.port, "5-or-3.1.1", &format!("--qos 1 pub {topic} v5")),
            &mut sink,
            None,
        ),
    )
    .await
    .expect("in time")
    .unwrap();
    assert_eq!(got, ProtocolVersion::V5);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), sub)
            .await
            .expect("subscriber finishes in time")
            .unwrap(),
        Ok(ProtocolVersion::V5)
    );
    assert_eq!(out.lines(), [format!("{topic} v5")]);
}

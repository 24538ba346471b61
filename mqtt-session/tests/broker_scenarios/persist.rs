//! The broker's store on disk (`persist` feature): it holds what the Persist actions
//! describe, nothing uncommitted, and counts intervals down while the broker is down.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use mqtt_codec::*;
use mqtt_session::broker::{Broker, BrokerConfig, StoreOp};
use mqtt_session::persist::BrokerStore;

use crate::common::{Harness, lines, pid};
use crate::snapshot::{normalized, story};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// A fresh directory for one test's database, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mqtt-persist-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn db(&self) -> PathBuf {
        self.0.join("broker.redb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// Applies `ops` at wall-clock `at`, committing after every `every` operations and at the
/// end.
fn store_all(path: &PathBuf, ops: &[StoreOp], every: usize, at: SystemTime) {
    let mut store = BrokerStore::open(path).unwrap();
    for (i, op) in ops.iter().enumerate() {
        store.apply(op, at).unwrap();
        if (i + 1) % every == 0 {
            store.commit(at).unwrap();
        }
    }
    store.commit(at).unwrap();
}

/// The file, reopened, holds exactly what the operations describe (the in-memory reference
/// store's snapshot), whatever the grouping of commits.
#[test]
fn the_store_on_disk_holds_what_the_operations_describe() {
    let mut h = Harness::new(BrokerConfig::default());
    story(&mut h);
    let expected = normalized(h.store.snapshot());
    assert!(!expected.sessions.is_empty() && !expected.retained.is_empty());
    for every in [1, 3, usize::MAX] {
        let dir = TempDir::new(&format!("describe-{every}"));
        store_all(&dir.db(), &h.persisted, every, t0());
        let store = BrokerStore::open(dir.db()).unwrap();
        assert_eq!(
            normalized(store.snapshot(t0()).unwrap()),
            expected,
            "every {every}"
        );
    }
}

/// A crash loses only what was not committed: the file holds the state after the last
/// commit, never part of a transaction.
#[test]
fn what_was_not_committed_is_not_there() {
    let mut h = Harness::new(BrokerConfig::default());
    story(&mut h);
    let ops = &h.persisted;
    for cut in [0, 1, ops.len() / 3, ops.len() / 2, ops.len() - 1] {
        let dir = TempDir::new(&format!("cut-{cut}"));
        let mut reference = mqtt_session::broker::MemoryStore::new();
        {
            let mut store = BrokerStore::open(dir.db()).unwrap();
            for op in &ops[..cut] {
                store.apply(op, t0()).unwrap();
                reference.apply(op);
            }
            store.commit(t0()).unwrap();
            for op in &ops[cut..] {
                store.apply(op, t0()).unwrap();
            }
            assert_eq!(store.pending(), ops.len() - cut);
            // Dropped without a commit, as by a crash.
        }
        let store = BrokerStore::open(dir.db()).unwrap();
        assert_eq!(
            normalized(store.snapshot(t0()).unwrap()),
            normalized(reference.snapshot()),
            "cut at {cut}"
        );
    }
}

/// A broker restored from the file resumes its sessions: the queued and in-flight
/// messages go out again with DUP ([MQTT-4.4.0-1], [MQTT-3.3.1-1]), the PUBREL first.
#[test]
fn a_broker_restored_from_the_file_resumes_its_sessions() {
    let mut h = Harness::new(BrokerConfig::default());
    story(&mut h);
    let dir = TempDir::new("restore");
    store_all(&dir.db(), &h.persisted, 4, t0());
    let snapshot = BrokerStore::open(dir.db()).unwrap().snapshot(t0()).unwrap();
    let broker = Broker::restore(BrokerConfig::default(), snapshot, h.now).unwrap();
    let mut h = Harness::with_broker(broker, h.now);
    h.connect_v5_session("dev", false, 3600);
    assert_eq!(
        h.transcript(),
        lines(
            "
            dev -> CONNECT 5.0 id=dev clean=0 expiry=3600
            dev <- CONNACK 0x00 sp=1
            dev <- PUBREL 1
            dev <- PUBLISH jobs q1 id=3 dup 'j'
            dev <- PUBLISH cmd/c q1 id=4 dup 'three'
            dev <- PUBLISH cmd/y q1 id=5 dup 'why'
            "
        )
    );
}

/// Time passes while the broker is down, and counts: a session's expiry and its will's
/// delay run from when it lost its connection, a message's expiry from when it was
/// stored ([MQTT-3.3.2-5]: an expired message is not delivered; [MQTT-3.3.2-6]: one that is
/// goes with what is left of its interval).
#[test]
fn intervals_count_down_while_the_broker_is_down() {
    let mut h = Harness::new(BrokerConfig::default());
    let mut c = Connect::new(V5, MqttString::from_static("dev"));
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(600);
    let mut w = Will {
        topic: TopicName::from_static("status/dev"),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: WillProperties::default(),
    };
    w.properties.will_delay_interval = Some(300);
    c.will = Some(w);
    h.connect_with("dev", c);
    h.subscribe("dev", 1, &[("m/#", QoS::AtLeastOnce)]);
    h.sever("dev");
    h.connect("op", V5, true);
    for (n, expiry) in [(1u16, 100u32), (2, 1000)] {
        let mut p = Publish::new(TopicName::from_static("m/x"), format!("e{expiry}"));
        p.qos_pid = QosPid::AtLeastOnce(pid(n));
        p.retain = true;
        p.properties.message_expiry_interval = Some(expiry);
        h.send("op", Packet::Publish(p));
    }
    let mut keep = Publish::new(TopicName::from_static("r/keep"), "k");
    keep.retain = true;
    keep.properties.message_expiry_interval = Some(100);
    h.send("op", Packet::Publish(keep));
    let dir = TempDir::new("intervals");
    store_all(&dir.db(), &h.persisted, usize::MAX, t0());
    let store = BrokerStore::open(dir.db()).unwrap();

    let later = store.snapshot(t0() + Duration::from_secs(40)).unwrap();
    let dev = &later.sessions[&MqttString::from_static("dev")];
    assert_eq!(dev.expiry_interval, 560);
    assert_eq!(
        dev.will.as_ref().unwrap().properties.will_delay_interval,
        Some(260)
    );
    let expiries: Vec<_> = dev
        .state
        .outgoing
        .iter()
        .map(|e| match &e.state {
            mqtt_session::store::OutgoingState::Publish { publish, .. } => {
                publish.properties.message_expiry_interval
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(expiries, [Some(60), Some(960)]);
    assert_eq!(
        later.retained[&TopicName::from_static("r/keep")]
            .publish
            .properties
            .message_expiry_interval,
        Some(60)
    );

    let much_later = store.snapshot(t0() + Duration::from_secs(700)).unwrap();
    let dev = &much_later.sessions[&MqttString::from_static("dev")];
    assert_eq!(
        dev.expiry_interval, 1,
        "expired while down: it ends just after the restart"
    );
    assert_eq!(
        dev.will.as_ref().unwrap().properties.will_delay_interval,
        Some(0)
    );
    assert_eq!(
        dev.state.outgoing.len(),
        1,
        "the message with 100 s has expired"
    );
    assert!(
        !much_later
            .retained
            .contains_key(&TopicName::from_static("r/keep"))
    );
    assert_eq!(much_later.retained.len(), 1, "m/x, its expiry 1000 s");

    // Restored then, the session ends at once and its will goes out.
    let broker = Broker::restore(BrokerConfig::default(), much_later, h.now).unwrap();
    let mut h = Harness::with_broker(broker, h.now);
    h.connect("watch", V5, true);
    h.subscribe("watch", 1, &[("status/#", QoS::AtLeastOnce)]);
    h.transcript();
    h.advance(Duration::from_secs(1));
    assert_eq!(
        h.transcript(),
        lines("watch <- PUBLISH status/dev q1 id=1 'offline'")
    );
}

/// A session still connected when the broker stopped lost its connection at the last
/// commit: its expiry counts from there.
#[test]
fn a_session_connected_at_the_crash_counts_from_the_last_commit() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("dev", false, 600);
    h.subscribe("dev", 1, &[("m/#", QoS::AtLeastOnce)]);
    let dir = TempDir::new("connected");
    store_all(
        &dir.db(),
        &h.persisted,
        usize::MAX,
        t0() + Duration::from_secs(100),
    );
    let store = BrokerStore::open(dir.db()).unwrap();
    let s = store.snapshot(t0() + Duration::from_secs(150)).unwrap();
    assert_eq!(
        s.sessions[&MqttString::from_static("dev")].expiry_interval,
        550
    );
}

/// [`StoreOp::SessionOffline`] marks the moment a durable session lost its connection,
/// and only a durable one.
#[test]
fn a_durable_session_going_offline_is_persisted() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("dev", false, 600);
    h.connect("tmp", V5, true);
    h.persisted.clear();
    h.sever("tmp");
    h.sever("dev");
    assert_eq!(
        h.persisted,
        [StoreOp::SessionOffline(MqttString::from_static("dev"))]
    );
}

/// A shutdown takes every durable session offline at that moment, so that its expiry
/// counts from the shutdown, not from some earlier commit.
#[test]
fn a_shutdown_takes_durable_sessions_offline() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("dev", false, 600);
    h.connect("tmp", V5, true);
    h.persisted.clear();
    h.broker.shutdown(h.now);
    h.drain();
    assert_eq!(
        h.persisted,
        [StoreOp::SessionOffline(MqttString::from_static("dev"))]
    );
}

/// A heartbeat moves the moment a connected session is counted as disconnected at a crash.
#[test]
fn a_heartbeat_keeps_the_count_of_a_connected_session_close() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("dev", false, 600);
    let dir = TempDir::new("heartbeat");
    store_all(&dir.db(), &h.persisted, usize::MAX, t0());
    let mut store = BrokerStore::open(dir.db()).unwrap();
    store.heartbeat(t0() + Duration::from_secs(300)).unwrap();
    drop(store);
    let store = BrokerStore::open(dir.db()).unwrap();
    let s = store.snapshot(t0() + Duration::from_secs(310)).unwrap();
    assert_eq!(
        s.sessions[&MqttString::from_static("dev")].expiry_interval,
        590
    );
}

/// A retained message that arrived as a resent PUBLISH (DUP set) is stored as a message:
/// no packet identifier and no DUP ([MQTT-3.3.1-2]: DUP on a QoS 0 PUBLISH is malformed),
/// and the store on disk takes it. Found by the crash test, where the store refused it and
/// the broker stopped.
#[test]
fn a_resent_retained_message_is_stored_without_dup() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("op", V5, true);
    let mut p = Publish::new(TopicName::from_static("state"), "on");
    p.retain = true;
    p.dup = true;
    p.qos_pid = QosPid::AtLeastOnce(pid(3));
    h.send("op", Packet::Publish(p));
    let stored: Vec<_> = h
        .persisted
        .iter()
        .filter_map(|op| match op {
            StoreOp::PutRetained { publish, qos } => Some((publish.clone(), *qos)),
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].0.dup);
    assert_eq!(stored[0].0.qos_pid, QosPid::AtMostOnce);
    assert_eq!(stored[0].1, QoS::AtLeastOnce);
    let dir = TempDir::new("retained-dup");
    store_all(&dir.db(), &h.persisted, 1, t0());
    let s = BrokerStore::open(dir.db()).unwrap().snapshot(t0()).unwrap();
    assert_eq!(
        s.retained[&TopicName::from_static("state")].publish.payload,
        "on"
    );
}

mod model {
    //! The store on disk against the in-memory reference, over random operations and commit
    //! points, with client ids that share prefixes ("a", "ab") so that a session's range of
    //! records is tested against its neighbours'.

    use super::*;
    use mqtt_session::broker::MemoryStore;
    use mqtt_session::store::{OutgoingEntry, OutgoingState, SessionOp};
    use proptest::prelude::*;

    const IDS: [&str; 3] = ["a", "ab", "b"];
    const FILTERS: [&str; 3] = ["x/#", "x/+", "$share/g/y"];

    #[derive(Debug, Clone)]
    enum Step {
        Op(u8, usize, usize, u16),
        Commit,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            8 => (0u8..12, 0..IDS.len(), 0..FILTERS.len(), 1u16..6)
                .prop_map(|(k, c, f, p)| Step::Op(k, c, f, p)),
            1 => Just(Step::Commit),
        ]
    }

    fn op(kind: u8, c: usize, f: usize, p: u16, seq: u64) -> StoreOp {
        let client_id = MqttString::from_static(IDS[c]);
        let message = |qos: QoS| {
            let mut m = Publish::new(TopicName::from_static("x/1"), format!("{seq}"));
            m.qos_pid = match qos {
                QoS::AtLeastOnce => QosPid::AtLeastOnce(pid(p)),
                _ => QosPid::ExactlyOnce(pid(p)),
            };
            m.properties.user_properties.push((
                MqttString::from_static("n"),
                MqttString::new(format!("{seq}")).unwrap(),
            ));
            m
        };
        let session = |op| StoreOp::Session {
            client_id: client_id.clone(),
            op,
        };
        match kind {
            0 => StoreOp::PutSession {
                client_id,
                expiry_interval: 100 + p as u32,
                username: p.is_multiple_of(2).then(|| MqttString::from_static("user")),
            },
            1 => StoreOp::RemoveSession(client_id),
            2 => StoreOp::PutSubscription {
                client_id,
                filter: TopicFilter::from_static(FILTERS[f]),
                options: SubscriptionOptions::qos(QoS::AtLeastOnce),
                id: SubscriptionId::new(p as u32),
            },
            3 => StoreOp::RemoveSubscription {
                client_id,
                filter: TopicFilter::from_static(FILTERS[f]),
            },
            4 => session(SessionOp::PutOutgoing(OutgoingEntry {
                seq,
                packet_id: pid(p),
                sent: false,
                on_wire: false,
                state: OutgoingState::Publish {
                    publish: message(if f == 0 {
                        QoS::AtLeastOnce
                    } else {
                        QoS::ExactlyOnce
                    }),
                },
            })),
            5 => session(SessionOp::PutOutgoing(OutgoingEntry {
                seq,
                packet_id: pid(p),
                sent: true,
                on_wire: false,
                state: OutgoingState::PubRel,
            })),
            6 => session(SessionOp::RemoveOutgoing(pid(p))),
            7 => session(SessionOp::PutIncoming(pid(p))),
            8 => session(SessionOp::RemoveIncoming(pid(p))),
            9 => StoreOp::PutWill {
                client_id,
                will: Box::new(Will {
                    topic: TopicName::from_static("w"),
                    payload: Bytes::from(format!("{seq}")),
                    qos: QoS::AtLeastOnce,
                    retain: p.is_multiple_of(2),
                    properties: WillProperties::default(),
                }),
            },
            10 => StoreOp::RemoveWill(client_id),
            _ if p.is_multiple_of(2) => StoreOp::RemoveRetained(TopicName::from_static("r")),
            _ => {
                let mut r = Publish::new(TopicName::from_static("r"), format!("{seq}"));
                r.retain = true;
                StoreOp::PutRetained {
                    publish: r,
                    qos: QoS::AtLeastOnce,
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(64),
            ..ProptestConfig::default()
        })]

        /// Reopened after a drop (a crash), the file holds what the reference holds after
        /// the operations up to the last commit, and nothing after it.
        #[test]
        fn the_file_matches_the_reference_at_the_last_commit(
            steps in proptest::collection::vec(step(), 1..60)
        ) {
            let dir = TempDir::new("model");
            let mut committed = MemoryStore::new();
            let mut current = MemoryStore::new();
            {
                let mut store = BrokerStore::open(dir.db()).unwrap();
                for (seq, s) in steps.iter().enumerate() {
                    match s {
                        Step::Op(k, c, f, p) => {
                            let op = op(*k, *c, *f, *p, seq as u64);
                            store.apply(&op, t0()).unwrap();
                            current.apply(&op);
                        }
                        Step::Commit => {
                            store.commit(t0()).unwrap();
                            committed = current.clone();
                        }
                    }
                }
            }
            let store = BrokerStore::open(dir.db()).unwrap();
            prop_assert_eq!(
                normalized(store.snapshot(t0()).unwrap()),
                normalized(committed.snapshot())
            );
        }
    }
}

//! Session resume: resending after reconnect, discarding when the server has no session,
//! snapshots, write-ahead persistence and restoring in a new process.

use core::time::Duration;

use mqtt_codec::{ConnAck, MqttString, Packet, ProtocolVersion, PubResponse, QoS};

use super::*;
use crate::client::ResumeError;
use crate::inflight::OutgoingState;
use crate::store::{MemorySessionStore, SessionState};

fn present() -> ConnAck {
    let mut ack = ConnAck::default();
    ack.session_present = true;
    ack
}

/// Three messages in three states when the connection drops: QoS 1 sent, QoS 2 released,
/// QoS 1 never sent.
fn interrupted() -> Harness {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.properties.session_expiry_interval = Some(3600);
    let mut h = Harness::new(config);
    h.connect_with(connack_with(|p| {
        p.receive_maximum = std::num::NonZeroU16::new(2)
    }));
    h.publish("a", "1", QoS::AtLeastOnce);
    h.publish("b", "2", QoS::ExactlyOnce);
    h.publish("c", "3", QoS::AtLeastOnce);
    h.recv(Packet::PubRec(PubResponse::new(id(2))));
    h.client.handle_closed(h.now);
    assert_eq!(h.drain(), ["event disconnected TransportClosed"]);
    h
}

/// [MQTT-4.4.0-1], [MQTT-4.6.0-1], [MQTT-3.3.1-1]: with a session present, unacknowledged
/// PUBLISH go again with their identifiers and DUP set, in their original order, and PUBREL
/// goes again; a message never sent goes with DUP 0.
#[test]
fn resume_resends_in_order_with_dup() {
    let mut h = interrupted();
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=c1 clean=0 keep_alive=60"]);
    assert_eq!(
        h.recv(Packet::ConnAck(Box::new(present()))),
        [
            "event connected present=1 id=c1",
            "send PUBREL 2",
            "send PUBLISH 'a' qos=1 id=1 dup=1 retain=0",
            "send PUBLISH 'c' qos=1 id=3 dup=0 retain=0"
        ]
    );
    assert_eq!(
        h.recv(Packet::PubComp(PubResponse::new(id(2)))),
        ["persist rm-out 2", "event published 2"]
    );
}

/// [MQTT-3.2.2-5]: no session at the server: the client discards what it had sent (and
/// says so); a message never sent is still sent.
#[test]
fn no_session_present_discards_sent_messages() {
    let mut h = interrupted();
    h.recv(Packet::PingResp); // ignored while disconnected
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(
        h.recv(Packet::ConnAck(Box::default())),
        [
            "persist rm-out 1",
            "event dropped 1 SessionLost",
            "persist rm-out 2",
            "event dropped 2 SessionLost",
            "persist client-id c1",
            "event connected present=0 id=c1",
            "send PUBLISH 'c' qos=1 id=3 dup=0 retain=0"
        ]
    );
}

/// Incoming QoS 2 state is session state too: kept across a resumed connection (the
/// duplicate is still suppressed), dropped when the server has no session.
#[test]
fn incoming_qos2_survives_resume() {
    let mut h = Harness::v5();
    h.connect();
    h.recv(incoming("t", "m", QoS::ExactlyOnce, 4));
    h.client.handle_closed(h.now);
    h.drain();
    h.connect_with(present());
    let Packet::Publish(mut p) = incoming("t", "m", QoS::ExactlyOnce, 4) else {
        panic!()
    };
    p.dup = true;
    assert_eq!(h.recv(Packet::Publish(p)), ["send PUBREC 4"]);
    h.client.handle_closed(h.now);
    h.drain();
    let out = h.connect_with(ConnAck::default());
    assert_eq!(out[0], "persist rm-in 4");
    assert_eq!(
        h.recv(incoming("t", "new", QoS::ExactlyOnce, 4))[1],
        "event message 't' new qos=2"
    );
}

/// Subscribes to `x`, leaving the SUBSCRIBE unanswered.
fn subscribe_x(h: &mut Harness) {
    h.client
        .subscribe(
            h.now,
            vec![(
                mqtt_codec::TopicFilter::from_static("x"),
                mqtt_codec::SubscriptionOptions::default(),
            )],
            Default::default(),
        )
        .unwrap();
    h.drain();
}

/// Write-ahead: every `Persist` comes before the packet that depends on it, and applying
/// them in order to a store gives the same state as the snapshot.
#[test]
fn persisted_operations_match_the_snapshot() {
    let mut h = interrupted();
    h.recv(incoming("t", "m", QoS::ExactlyOnce, 9)); // ignored: disconnected
    h.client.connect(h.now).unwrap();
    h.drain();
    h.recv(Packet::ConnAck(Box::new(present())));
    h.recv(incoming("t", "m", QoS::ExactlyOnce, 9));
    h.recv(Packet::PubAck(PubResponse::new(id(1))));
    subscribe_x(&mut h);

    let mut store = MemorySessionStore::new();
    for a in &h.actions {
        if let Action::Persist(op) = a {
            store.apply(op);
        }
    }
    let stored = store.state();
    let snap = h.client.session_state();
    let ids = |s: &SessionState| s.outgoing.iter().map(|e| e.packet_id).collect::<Vec<_>>();
    assert_eq!(ids(&stored), ids(&snap));
    // A released message moves behind the PUBLISH entries: PUBRELs keep the order of
    // their PUBRECs ([MQTT-4.6.0-4]).
    assert_eq!(ids(&snap), [id(3), id(2)]);
    assert!(matches!(stored.outgoing[1].state, OutgoingState::PubRel));
    assert_eq!(stored.incoming_qos2, snap.incoming_qos2);
    assert_eq!(snap.incoming_qos2, [id(9)]);
    assert_eq!(stored.requests, snap.requests);
    assert_eq!(stored.client_id, snap.client_id);

    // The PUBLISH of message 3 came after its Persist.
    let pos = |want: &str| {
        h.actions
            .iter()
            .position(|a| describe(a).starts_with(want))
            .unwrap()
    };
    assert!(pos("persist put-out 3") < pos("send PUBLISH 'c' qos=1 id=3"));
    assert!(pos("persist put-out 2 pubrel") < pos("send PUBREL 2"));
    assert!(pos("persist put-in 9") < pos("send PUBREC 9"));
}

/// A snapshot restores the session in a new client ("a new process"): it asks to resume
/// and resends with DUP.
#[test]
fn resume_from_a_snapshot_in_a_new_client() {
    let h = interrupted();
    let state = h.client.session_state();
    let config = h.client.config().clone();
    let mut h = Harness::with_client(Client::resume(config, state).unwrap());
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=c1 clean=0 keep_alive=60"]);
    assert_eq!(
        h.recv(Packet::ConnAck(Box::new(present())))[1..],
        [
            "send PUBREL 2",
            "send PUBLISH 'a' qos=1 id=1 dup=1 retain=0",
            "send PUBLISH 'c' qos=1 id=3 dup=0 retain=0"
        ]
    );
    // New identifiers do not collide with restored ones.
    assert_eq!(
        h.publish("d", "4", QoS::AtLeastOnce)[0],
        "persist put-out 4 publish"
    );
}

/// A store rebuilt from persisted operations resumes too; its messages go with DUP set,
/// since the store cannot know whether they reached the wire.
#[test]
fn resume_from_a_memory_store() {
    let mut h = Harness::v5();
    h.connect();
    h.publish("a", "1", QoS::AtLeastOnce);
    let mut store = MemorySessionStore::new();
    for a in &h.actions {
        if let Action::Persist(op) = a {
            store.apply(op);
        }
    }
    let config = h.client.config().clone();
    let mut h = Harness::with_client(Client::resume(config, store.state()).unwrap());
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(
        h.recv(Packet::ConnAck(Box::new(present())))[1],
        "send PUBLISH 'a' qos=1 id=1 dup=1 retain=0"
    );
}

#[test]
fn resume_refuses_duplicate_identifiers() {
    let h = interrupted();
    let mut state = h.client.session_state();
    state.outgoing.push(state.outgoing[0].clone());
    let config = h.client.config().clone();
    assert_eq!(
        Client::resume(config, state).err(),
        Some(ResumeError::DuplicatePacketId(1))
    );
}

fn no_clean(version: ProtocolVersion) -> ClientConfig {
    let mut config = ClientConfig::new(version, MqttString::from_static("c1"));
    config.clean_start = false;
    config
}

/// [MQTT-3.2.2-4]: a client made fresh with Clean Start 0 has no session state; Session
/// Present 1 ends the connection, under v5 with DISCONNECT 0x82 first.
#[test]
fn session_present_without_session_state_closes_v5() {
    let mut h = Harness::new(no_clean(ProtocolVersion::V5));
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=c1 clean=0 keep_alive=60"]);
    assert_eq!(
        h.recv(Packet::ConnAck(Box::new(present()))),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.2.2-4",
            "close"
        ]
    );
    // Still no session state: the next attempt is refused the same way, and one without
    // a session at the server is taken.
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=c1 clean=0 keep_alive=60"]);
    assert_eq!(
        h.recv(Packet::ConnAck(Box::new(present())))[1],
        "event disconnected ProtocolViolation rc=0x82 MQTT-3.2.2-4"
    );
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(
        h.recv(Packet::ConnAck(Box::default())),
        ["persist client-id c1", "event connected present=0 id=c1"]
    );
}

/// The same under 3.1.1, whose section 3.2.2.2 leaves the choice to the client (no
/// numbered statement): a fresh client with Clean Session 0 closes on Session Present 1,
/// without a DISCONNECT (3.1.1 has no reason codes to send).
#[test]
fn session_present_without_session_state_closes_v311() {
    let mut h = Harness::new(no_clean(ProtocolVersion::V3_1_1));
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=c1 clean=0 keep_alive=60"]);
    assert_eq!(
        h.recv(Packet::ConnAck(Box::new(present()))),
        ["event disconnected ProtocolViolation rc=0x82", "close"]
    );
    let Some(Action::Event(Event::Disconnected(d))) = h.actions.iter().rev().nth(1) else {
        panic!()
    };
    assert!(d.rule.unwrap().contains("no session state"), "{d:?}");
}

/// [MQTT-3.2.2-4]: a client resumed from a snapshot has session state, even an empty
/// one: the way to take up a session the server kept without a local store. Both
/// versions accept Session Present 1 then.
#[test]
fn resumed_from_an_empty_state_accepts_session_present() {
    for version in [ProtocolVersion::V5, ProtocolVersion::V3_1_1] {
        let client = Client::resume(no_clean(version), SessionState::default()).unwrap();
        let mut h = Harness::with_client(client);
        h.client.connect(h.now).unwrap();
        assert_eq!(h.drain(), ["send CONNECT id=c1 clean=0 keep_alive=60"]);
        assert_eq!(
            h.recv(Packet::ConnAck(Box::new(present()))),
            ["event connected present=1 id=c1"],
            "{version:?}"
        );
        // The server's queued QoS 1 message is taken and acknowledged.
        assert_eq!(
            h.recv(incoming("t", "queued", QoS::AtLeastOnce, 1)),
            ["event message 't' queued qos=1", "send PUBACK 1"]
        );
    }
}

/// [MQTT-3.2.2-4]: a client that had a connection accepted in this process holds the
/// session state and accepts Session Present 1 when it reconnects, under both versions.
#[test]
fn reconnecting_client_has_session_state() {
    for version in [ProtocolVersion::V5, ProtocolVersion::V3_1_1] {
        let mut h = Harness::new(no_clean(version));
        h.connect();
        h.client.handle_closed(h.now);
        h.drain();
        assert_eq!(
            h.connect_with(present()),
            ["event connected present=1 id=c1"],
            "{version:?}"
        );
    }
}

/// [MQTT-3.2.2-5]: with Session State and Session Present 0 the client discards that state
/// and carries on: the message it had sent is dropped, the incoming QoS 2 identifier
/// forgotten; the message it never sent (not session state) goes out on the new session.
#[test]
fn session_present_0_discards_the_session_state() {
    let mut h = Harness::new(no_clean(ProtocolVersion::V5));
    let one = || connack_with(|p| p.receive_maximum = std::num::NonZeroU16::new(1));
    h.connect_with(one());
    h.publish("a", "1", QoS::AtLeastOnce);
    assert_eq!(
        h.publish("b", "2", QoS::AtLeastOnce),
        ["persist put-out 2 publish"]
    );
    h.recv(incoming("t", "m", QoS::ExactlyOnce, 8));
    h.client.handle_closed(h.now);
    h.drain();
    assert_eq!(
        h.connect_with(one()),
        [
            "persist rm-out 1",
            "event dropped 1 SessionLost",
            "persist rm-in 8",
            "persist client-id c1",
            "event connected present=0 id=c1",
            "send PUBLISH 'b' qos=1 id=2 dup=0 retain=0"
        ]
    );
    let snap = h.client.session_state();
    assert!(snap.incoming_qos2.is_empty());
    let ids: Vec<_> = snap.outgoing.iter().map(|e| e.packet_id).collect();
    assert_eq!(ids, [id(2)]);
    // A PUBLISH with the forgotten incoming identifier is a new message.
    assert_eq!(
        h.recv(incoming("t", "new", QoS::ExactlyOnce, 8))[1],
        "event message 't' new qos=2"
    );
}

/// The 3.1.1 client makes the same choice on Session Present 0 after Clean Session 0
/// (section 3.2.2.2): it proceeds without the state the server no longer has.
#[test]
fn session_present_0_discards_the_session_state_v311() {
    let mut h = Harness::new(no_clean(ProtocolVersion::V3_1_1));
    h.connect();
    h.publish("a", "1", QoS::AtLeastOnce);
    h.client.handle_closed(h.now);
    h.drain();
    assert_eq!(
        h.connect(),
        [
            "persist rm-out 1",
            "event dropped 1 SessionLost",
            "persist client-id c1",
            "event connected present=0 id=c1"
        ]
    );
    assert!(h.client.session_state().outgoing.is_empty());
}

// 3.1.1 [MQTT-3.1.2-6]: with Clean Session 1 the client discards the previous session and
// never reuses its state: the unacknowledged QoS 1 message is not sent again (the
// application hears it was dropped) and the incoming QoS 2 identifier that awaited PUBREL
// starts a new message.
#[test]
fn v311_clean_session_discards_the_previous_session() {
    let mut h = Harness::v3();
    h.connect();
    h.publish("a", "1", QoS::AtLeastOnce);
    h.recv(incoming("t", "m", QoS::ExactlyOnce, 6));
    h.client.handle_closed(h.now);
    h.drain();
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=c1 clean=1 keep_alive=60"]);
    assert_eq!(
        h.recv(Packet::ConnAck(Box::default())),
        [
            "persist rm-out 1",
            "event dropped 1 SessionLost",
            "persist rm-in 6",
            "persist client-id c1",
            "event connected present=0 id=c1"
        ]
    );
    assert_eq!(
        h.recv(incoming("t", "n", QoS::ExactlyOnce, 6))[1],
        "event message 't' n qos=2"
    );
    assert_eq!(h.client.session_state().outgoing, []);
}

/// [MQTT-4.1.0-1]: no session state is discarded while the connection is open, however
/// long it stays open: after an hour of keep-alive traffic the QoS 1 message still awaits
/// its PUBACK and the incoming QoS 2 identifier still marks duplicates.
// 3.1.1 [MQTT-4.1.0-2]: the 3.1.1 session (Clean Session 1 here) lasts as long as the
// connection, with the same state kept throughout.
#[test]
fn session_state_lasts_while_the_connection_is_open() {
    for mut h in [Harness::v5(), Harness::v3()] {
        h.connect();
        h.publish("a", "1", QoS::AtLeastOnce);
        h.recv(incoming("t", "m", QoS::ExactlyOnce, 6));
        for _ in 0..60 {
            assert_eq!(h.advance(Duration::from_secs(60)), ["send PINGREQ"]);
            assert_eq!(h.recv(Packet::PingResp), Vec::<String>::new());
        }
        let Packet::Publish(mut p) = incoming("t", "m", QoS::ExactlyOnce, 6) else {
            panic!()
        };
        p.dup = true;
        assert_eq!(h.recv(Packet::Publish(p)), ["send PUBREC 6"]);
        assert_eq!(
            h.recv(Packet::PubAck(PubResponse::new(id(1)))),
            ["persist rm-out 1", "event published 1"]
        );
    }
}

// 3.1.1 [MQTT-4.1.0-1]: with Clean Session 0 the session outlives the connection: its
// state is kept while disconnected and taken up again by the next connection.
// 3.1.1 [MQTT-4.4.0-1]: the unacknowledged PUBLISH and PUBREL go again with their
// original identifiers.
#[test]
fn v311_session_outlives_the_connection() {
    let mut h = Harness::new(no_clean(ProtocolVersion::V3_1_1));
    h.connect();
    h.publish("a", "1", QoS::AtLeastOnce);
    h.publish("b", "2", QoS::ExactlyOnce);
    h.recv(Packet::PubRec(PubResponse::new(id(2))));
    h.recv(incoming("t", "m", QoS::ExactlyOnce, 6));
    h.client.handle_closed(h.now);
    h.drain();
    let snap = h.client.session_state();
    assert_eq!(snap.outgoing.len(), 2);
    assert_eq!(snap.incoming_qos2, [id(6)]);
    assert_eq!(
        h.connect_with(present()),
        [
            "event connected present=1 id=c1",
            "send PUBREL 2",
            "send PUBLISH 'a' qos=1 id=1 dup=1 retain=0"
        ]
    );
    let Packet::Publish(mut p) = incoming("t", "m", QoS::ExactlyOnce, 6) else {
        panic!()
    };
    p.dup = true;
    assert_eq!(h.recv(Packet::Publish(p)), ["send PUBREC 6"]);
}

/// The store on disk (`persist` feature) holds what the operations describe, reopened as
/// after a crash, and a client resumed from it sends everything again: the PUBREL, then
/// every PUBLISH with DUP ([MQTT-4.4.0-1], [MQTT-3.3.1-1]).
#[cfg(feature = "persist")]
#[test]
fn resume_from_the_store_on_disk() {
    use crate::persist::ClientStore;

    let mut h = interrupted();
    h.client.connect(h.now).unwrap();
    h.drain();
    h.recv(Packet::ConnAck(Box::new(present())));
    h.recv(incoming("t", "m", QoS::ExactlyOnce, 9));
    subscribe_x(&mut h);

    let dir = std::env::temp_dir().join(format!("mqtt-client-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("client.redb");
    let mut reference = MemorySessionStore::new();
    {
        let mut store = ClientStore::open(&path).unwrap();
        for a in &h.actions {
            if let Action::Persist(op) = a {
                store.apply(op).unwrap();
                reference.apply(op);
            }
        }
        store.commit().unwrap();
        // A PUBACK's removal applied and never committed: the crash loses it.
        store
            .apply(&crate::store::SessionOp::RemoveOutgoing(id(1)))
            .unwrap();
    }
    let state = ClientStore::open(&path).unwrap().state().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let mut expected = reference.state();
    assert!(state.next_packet_id > 3);
    expected.next_packet_id = state.next_packet_id;
    assert_eq!(state, expected);
    assert_eq!(state.client_id.as_str(), "c1");
    assert_eq!(state.incoming_qos2, [id(9)]);
    assert_eq!(state.requests.len(), 1, "the SUBSCRIBE awaits its SUBACK");

    let config = h.client.config().clone();
    let mut h = Harness::with_client(Client::resume(config, state).unwrap());
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=c1 clean=0 keep_alive=60"]);
    let sent = h.recv(Packet::ConnAck(Box::new(present())));
    assert_eq!(
        sent[1..4],
        [
            "send PUBREL 2",
            "send PUBLISH 'a' qos=1 id=1 dup=1 retain=0",
            "send PUBLISH 'c' qos=1 id=3 dup=1 retain=0"
        ]
    );
}

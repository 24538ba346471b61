//! Message ordering (section 4.6): resends in their original order, acknowledgements in the
//! order of what they acknowledge. Each story runs under both versions.

use mqtt_codec::{ConnAck, MqttString, Packet, ProtocolVersion, PubResponse, QoS};

use super::*;
use crate::store::MemorySessionStore;

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V5, ProtocolVersion::V3_1_1];

fn lasting(version: ProtocolVersion) -> Harness {
    let mut config = ClientConfig::new(version, MqttString::from_static("c1"));
    config.clean_start = false;
    if version.is_v5() {
        config.properties.session_expiry_interval = Some(600);
    }
    Harness::new(config)
}

fn present() -> ConnAck {
    let mut ack = ConnAck::default();
    ack.session_present = true;
    ack
}

/// The packets a transcript sends, without the rest.
fn sent(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .filter(|l| l.starts_with("send"))
        .collect()
}

// [MQTT-4.6.0-1]; 3.1.1 [MQTT-4.6.0-1]: resent PUBLISH packets go in the order the
// originals were sent, whatever order the acknowledgements came in.
#[test]
fn resent_publishes_keep_their_original_order() {
    for v in VERSIONS {
        let mut h = lasting(v);
        h.connect();
        h.publish("a", "x", QoS::AtLeastOnce);
        h.publish("b", "x", QoS::ExactlyOnce);
        h.publish("c", "x", QoS::AtLeastOnce);
        h.publish("d", "x", QoS::ExactlyOnce);
        h.recv(Packet::PubAck(PubResponse::new(id(3))));
        h.client.handle_closed(h.now);
        h.drain();
        assert_eq!(
            sent(h.connect_with(present())),
            [
                "send PUBLISH 'a' qos=1 id=1 dup=1 retain=0",
                "send PUBLISH 'b' qos=2 id=2 dup=1 retain=0",
                "send PUBLISH 'd' qos=2 id=4 dup=1 retain=0"
            ],
            "{v:?}"
        );
    }
}

// [MQTT-4.6.0-2]; 3.1.1 [MQTT-4.6.0-2]: PUBACKs go in the order the QoS 1 PUBLISH packets
// arrived, and
// [MQTT-4.6.0-3]; 3.1.1 [MQTT-4.6.0-3]: PUBRECs in the order the QoS 2 ones arrived, with the
// two kinds interleaved as they came.
#[test]
fn acknowledgements_follow_the_order_of_arrival() {
    for v in VERSIONS {
        let mut h = lasting(v);
        h.connect();
        let mut acks = Vec::new();
        for (pid, qos) in [
            (9, QoS::ExactlyOnce),
            (4, QoS::AtLeastOnce),
            (2, QoS::ExactlyOnce),
            (7, QoS::AtLeastOnce),
            (1, QoS::AtLeastOnce),
        ] {
            acks.extend(sent(h.recv(incoming("t", "m", qos, pid))));
        }
        assert_eq!(
            acks,
            [
                "send PUBREC 9",
                "send PUBACK 4",
                "send PUBREC 2",
                "send PUBACK 7",
                "send PUBACK 1"
            ],
            "{v:?}"
        );
    }
}

// [MQTT-4.6.0-4]; 3.1.1 [MQTT-4.6.0-4]: PUBRELs go in the order their PUBRECs arrived: on
// the connection, when sent again after a reconnect, and after a restart from the
// persisted operations.
#[test]
fn pubrels_follow_the_order_of_pubrecs() {
    for v in VERSIONS {
        let mut h = lasting(v);
        h.connect();
        for t in ["a", "b", "c"] {
            h.publish(t, "x", QoS::ExactlyOnce);
        }
        let mut rels = Vec::new();
        for pid in [3, 1, 2] {
            rels.extend(sent(h.recv(Packet::PubRec(PubResponse::new(id(pid))))));
        }
        assert_eq!(rels, ["send PUBREL 3", "send PUBREL 1", "send PUBREL 2"]);
        h.client.handle_closed(h.now);
        h.drain();
        assert_eq!(
            sent(h.connect_with(present())),
            ["send PUBREL 3", "send PUBREL 1", "send PUBREL 2"],
            "{v:?}"
        );

        let mut store = MemorySessionStore::new();
        for a in &h.actions {
            if let Action::Persist(op) = a {
                store.apply(op);
            }
        }
        let config = h.client.config().clone();
        let mut h = Harness::with_client(Client::resume(config, store.state()).unwrap());
        assert_eq!(
            sent(h.connect_with(present())),
            ["send PUBREL 3", "send PUBREL 1", "send PUBREL 2"],
            "{v:?}"
        );
    }
}

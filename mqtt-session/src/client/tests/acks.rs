//! Manual acknowledgement: the application answers incoming QoS 1/2 messages with the
//! reason code and properties it chooses.

use std::num::{NonZeroU16, NonZeroU32};

use mqtt_codec::{ConnAck, MqttString, Packet, ProtocolVersion, PubResponse, QoS, ReasonCode};

use super::*;
use crate::client::AckError;

fn manual(version: ProtocolVersion) -> Harness {
    let mut config = ClientConfig::new(version, MqttString::from_static("c1"));
    config.manual_acks = true;
    config.clean_start = false;
    if version.is_v5() {
        config.properties.session_expiry_interval = Some(600);
    }
    Harness::new(config)
}

fn answer(pid: u16, code: ReasonCode, reason: Option<&'static str>) -> PubResponse {
    let mut a = PubResponse::new(id(pid));
    a.reason_code = code;
    a.properties.reason_string = reason.map(MqttString::from_static);
    a
}

fn sent_ack(h: &Harness) -> PubResponse {
    h.actions
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::Send(Packet::PubAck(a) | Packet::PubRec(a)) => Some(a.clone()),
            _ => None,
        })
        .unwrap()
}

/// The message is delivered at once; the PUBACK waits for the application, and carries
/// its reason code and Reason String.
#[test]
fn the_application_answers_qos1() {
    let mut h = manual(ProtocolVersion::V5);
    h.connect();
    assert_eq!(
        h.recv(incoming("t", "m", QoS::AtLeastOnce, 5)),
        ["event message 't' m qos=1"]
    );
    let a = answer(5, ReasonCode::NO_MATCHING_SUBSCRIBERS, Some("no one here"));
    h.client.acknowledge(h.now, a.clone()).unwrap();
    assert_eq!(h.drain(), ["send PUBACK 5 rc=0x10"]);
    assert_eq!(sent_ack(&h), a);
    assert_eq!(h.client.acknowledge(h.now, a), Err(AckError::NotPending(5)));
}

/// [MQTT-4.6.0-2], [MQTT-4.6.0-3]: answers given out of order still go out in the order
/// the messages arrived, QoS 1 and QoS 2 interleaved.
// 3.1.1 [MQTT-4.6.0-2], 3.1.1 [MQTT-4.6.0-3]: the same under 3.1.1.
#[test]
fn answers_go_in_arrival_order() {
    for v in [ProtocolVersion::V5, ProtocolVersion::V3_1_1] {
        let mut h = manual(v);
        h.connect();
        h.recv(incoming("t", "a", QoS::AtLeastOnce, 1));
        h.recv(incoming("t", "b", QoS::ExactlyOnce, 2));
        h.recv(incoming("t", "c", QoS::AtLeastOnce, 3));
        let ok = |pid| PubResponse::new(id(pid));
        h.client.acknowledge(h.now, ok(3)).unwrap();
        h.client.acknowledge(h.now, ok(2)).unwrap();
        assert_eq!(h.drain(), Vec::<String>::new(), "{v:?}");
        h.client.acknowledge(h.now, ok(1)).unwrap();
        assert_eq!(
            h.drain(),
            ["send PUBACK 1", "send PUBREC 2", "send PUBACK 3"],
            "{v:?}"
        );
    }
}

/// [MQTT-4.3.3-9]: after a PUBREC with a reason code of 0x80 or above, a PUBLISH with that
/// identifier is a new message; after a PUBREC with Success it is a duplicate until PUBREL.
#[test]
fn refused_qos2_frees_the_identifier() {
    let mut h = manual(ProtocolVersion::V5);
    h.connect();
    h.recv(incoming("t", "m", QoS::ExactlyOnce, 4));
    h.client
        .acknowledge(h.now, answer(4, ReasonCode::QUOTA_EXCEEDED, None))
        .unwrap();
    assert_eq!(h.drain(), ["persist rm-in 4", "send PUBREC 4 rc=0x97"]);
    assert_eq!(
        h.recv(incoming("t", "again", QoS::ExactlyOnce, 4)),
        ["persist put-in 4", "event message 't' again qos=2"]
    );
    h.client
        .acknowledge(h.now, PubResponse::new(id(4)))
        .unwrap();
    assert_eq!(h.drain(), ["send PUBREC 4"]);
    let Packet::Publish(mut dup) = incoming("t", "again", QoS::ExactlyOnce, 4) else {
        panic!()
    };
    dup.dup = true;
    assert_eq!(h.recv(Packet::Publish(dup)), ["send PUBREC 4"]);
}

/// [MQTT-3.4.2-2], [MQTT-3.4.2-3]: a PUBACK goes without its Reason String and User
/// Properties when they would make it exceed the server's Maximum Packet Size; the reason
/// code stays. A small one goes whole.
#[test]
fn puback_properties_dropped_to_fit() {
    let mut h = manual(ProtocolVersion::V5);
    h.connect_with(connack_with(|p| {
        p.maximum_packet_size = NonZeroU32::new(24)
    }));
    h.recv(incoming("t", "m", QoS::AtLeastOnce, 1));
    h.recv(incoming("t", "m", QoS::AtLeastOnce, 2));
    let mut big = answer(
        1,
        ReasonCode::NOT_AUTHORIZED,
        Some("not for you, not today"),
    );
    big.properties
        .user_properties
        .push((MqttString::from_static("k"), MqttString::from_static("v")));
    h.client.acknowledge(h.now, big).unwrap();
    h.drain();
    assert_eq!(sent_ack(&h), answer(1, ReasonCode::NOT_AUTHORIZED, None));
    let small = answer(2, ReasonCode::NOT_AUTHORIZED, Some("no"));
    h.client.acknowledge(h.now, small.clone()).unwrap();
    h.drain();
    assert_eq!(sent_ack(&h), small);
}

/// [MQTT-3.5.2-2], [MQTT-3.5.2-3]: the same for PUBREC.
#[test]
fn pubrec_properties_dropped_to_fit() {
    let mut h = manual(ProtocolVersion::V5);
    h.connect_with(connack_with(|p| {
        p.maximum_packet_size = NonZeroU32::new(24)
    }));
    h.recv(incoming("t", "m", QoS::ExactlyOnce, 1));
    let mut big = answer(1, ReasonCode::SUCCESS, None);
    big.properties.user_properties.push((
        MqttString::from_static("trace"),
        MqttString::from_static("0123456789abcdef"),
    ));
    h.client.acknowledge(h.now, big).unwrap();
    h.drain();
    assert_eq!(sent_ack(&h), PubResponse::new(id(1)));
    h.recv(incoming("t", "m", QoS::ExactlyOnce, 2));
    let small = answer(2, ReasonCode::SUCCESS, Some("ok"));
    h.client.acknowledge(h.now, small.clone()).unwrap();
    h.drain();
    assert_eq!(sent_ack(&h), small);
}

/// Answers given while disconnected go after the next CONNACK; a message the server sends
/// again while its answer is pending is not delivered twice. Without a session at the
/// server, no answer is awaited any more.
#[test]
fn answers_across_connections() {
    let mut h = manual(ProtocolVersion::V5);
    h.connect();
    h.recv(incoming("t", "one", QoS::AtLeastOnce, 1));
    h.recv(incoming("t", "two", QoS::ExactlyOnce, 2));
    h.client.handle_closed(h.now);
    h.drain();
    h.client
        .acknowledge(h.now, PubResponse::new(id(1)))
        .unwrap();
    assert_eq!(h.drain(), Vec::<String>::new());
    let mut present = ConnAck::default();
    present.session_present = true;
    assert_eq!(
        h.connect_with(present),
        ["event connected present=1 id=c1", "send PUBACK 1"]
    );
    let Packet::Publish(mut dup) = incoming("t", "two", QoS::ExactlyOnce, 2) else {
        panic!()
    };
    dup.dup = true;
    assert_eq!(h.recv(Packet::Publish(dup)), Vec::<String>::new());
    h.client.handle_closed(h.now);
    h.drain();
    assert_eq!(h.connect_with(ConnAck::default())[0], "persist rm-in 2");
    assert_eq!(
        h.client.acknowledge(h.now, PubResponse::new(id(2))),
        Err(AckError::NotPending(2))
    );
}

/// Local errors: manual acknowledgement off, a reason code a PUBACK cannot carry, and under
/// 3.1.1 anything but a bare Success.
#[test]
fn acknowledge_refusals() {
    let mut h = Harness::v5();
    h.connect();
    h.recv(incoming("t", "m", QoS::AtLeastOnce, 1));
    assert_eq!(
        h.client.acknowledge(h.now, PubResponse::new(id(1))),
        Err(AckError::ManualAcksOff)
    );
    let mut h = manual(ProtocolVersion::V5);
    h.connect();
    h.recv(incoming("t", "m", QoS::AtLeastOnce, 1));
    let wrong = answer(1, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND, None);
    assert_eq!(
        h.client.acknowledge(h.now, wrong),
        Err(AckError::ReasonCode(
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        ))
    );
    let mut h = manual(ProtocolVersion::V3_1_1);
    h.connect();
    h.recv(incoming("t", "m", QoS::AtLeastOnce, 1));
    assert!(matches!(
        h.client
            .acknowledge(h.now, answer(1, ReasonCode::NOT_AUTHORIZED, None)),
        Err(AckError::Encode(_))
    ));
    h.client
        .acknowledge(h.now, PubResponse::new(id(1)))
        .unwrap();
    assert_eq!(h.drain(), ["send PUBACK 1"]);
}

/// [MQTT-3.3.4-9]: unanswered QoS 1 messages count against the client's Receive Maximum
/// too; a PUBREL before this client's PUBREC is a Protocol Error.
#[test]
fn server_violations_under_manual_acks() {
    let mut h = manual(ProtocolVersion::V5);
    h.client.config.properties.receive_maximum = NonZeroU16::new(2);
    h.connect();
    h.recv(incoming("t", "m", QoS::AtLeastOnce, 1));
    h.recv(incoming("t", "m", QoS::ExactlyOnce, 2));
    assert_eq!(
        h.recv(incoming("t", "m", QoS::AtLeastOnce, 3))[..2],
        [
            "send DISCONNECT 0x93",
            "event disconnected ProtocolViolation rc=0x93 MQTT-3.3.4-9"
        ]
    );
    let mut h = manual(ProtocolVersion::V5);
    h.connect();
    h.recv(incoming("t", "m", QoS::ExactlyOnce, 2));
    assert_eq!(
        h.recv(Packet::PubRel(PubResponse::new(id(2))))[..2],
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82"
        ]
    );
}

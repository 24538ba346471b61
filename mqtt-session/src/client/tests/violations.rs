//! A server's protocol violations end the connection with the right reason code; the
//! session survives them.

use mqtt_codec::{
    BytesMut, ConnAck, DecodeContext, MqttString, Packet, ProtocolVersion, PubResponse, QoS,
    Subscribe, SubscriptionOptions, TopicFilter,
};

use super::*;
use crate::client::ConnectionState;

/// [MQTT-3.2.0-1]: nothing but CONNACK (or AUTH) before CONNACK. v5 says why in a
/// DISCONNECT; 3.1.1 just closes.
#[test]
fn packet_before_connack() {
    let mut h = Harness::v5();
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(
        h.recv(incoming("t", "x", QoS::AtMostOnce, 0)),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.2.0-1",
            "close"
        ]
    );
    // 3.1.1 [MQTT-3.2.0-1]: the first packet from the server must be CONNACK.
    let mut h = Harness::v3();
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(
        h.recv(Packet::PingResp),
        [
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.2.0-1",
            "close"
        ]
    );
}

/// [MQTT-3.2.0-2]: one CONNACK per connection.
#[test]
fn second_connack() {
    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.recv(Packet::ConnAck(Box::new(ConnAck::default()))),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.2.0-2",
            "close"
        ]
    );
}

/// [MQTT-2.2.1-5] (3.1.1 [MQTT-2.3.1-6]): an acknowledgement must match a message in flight.
#[test]
fn ack_for_nothing_in_flight() {
    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.recv(Packet::PubAck(PubResponse::new(id(3)))),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-2.2.1-5",
            "close"
        ]
    );
    let mut h = Harness::v3();
    h.connect();
    h.publish("a", "1", QoS::AtLeastOnce);
    // A PUBCOMP for a QoS 1 message is as wrong as one for no message.
    assert_eq!(
        h.recv(Packet::PubComp(PubResponse::new(id(1)))),
        [
            "event disconnected ProtocolViolation rc=0x82 MQTT-2.3.1-6",
            "close"
        ]
    );
}

/// Section 2.1.2: a server does not send SUBSCRIBE.
#[test]
fn packet_flowing_the_wrong_way() {
    let mut h = Harness::v5();
    h.connect();
    let s = Subscribe::new(
        id(1),
        vec![(
            TopicFilter::from_static("a"),
            SubscriptionOptions::default(),
        )],
    );
    assert_eq!(
        h.recv(Packet::Subscribe(s)),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82",
            "close"
        ]
    );
}

/// A 3.1.1 server never sends DISCONNECT (the packet is client-to-server only there).
#[test]
fn v311_server_disconnect_is_a_violation() {
    let mut h = Harness::v3();
    h.connect();
    h.client
        .handle_packet(h.now, Packet::Disconnect(Default::default()));
    assert_eq!(
        h.drain(),
        ["event disconnected ProtocolViolation rc=0x82", "close"]
    );
}

/// [MQTT-3.3.2-2] via the codec: an undecodable packet closes with the decoder's reason
/// code (0x81 Malformed Packet) and rule.
#[test]
fn decode_error_closes_with_its_reason_code() {
    let mut h = Harness::v5();
    h.connect();
    let bad = [0x30, 0x06, 0x00, 0x03, b'a', b'/', b'#', 0x00];
    let err = Packet::decode(
        &mut BytesMut::from(&bad[..]),
        &DecodeContext::new(ProtocolVersion::V5),
    )
    .unwrap_err();
    h.client.handle_decode_error(h.now, &err);
    assert_eq!(
        h.drain(),
        [
            "send DISCONNECT 0x81",
            "event disconnected ProtocolViolation rc=0x81 MQTT-3.3.2-2",
            "close"
        ]
    );
}

/// [MQTT-3.2.2-15] seen from the client: a packet above the client's own Maximum Packet
/// Size is refused by the decoder before it is buffered, and the client closes with 0x95.
#[test]
fn packet_too_large_for_the_client() {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.properties.maximum_packet_size = std::num::NonZeroU32::new(16);
    let mut h = Harness::new(config);
    h.connect();
    let big = incoming(
        "t",
        "a payload longer than sixteen bytes",
        QoS::AtMostOnce,
        0,
    )
    .to_bytes(ProtocolVersion::V5)
    .unwrap();
    let err = Packet::decode(&mut big.clone(), &h.client.config().decode_context()).unwrap_err();
    h.client.handle_decode_error(h.now, &err);
    assert_eq!(
        h.drain()[..2],
        [
            "send DISCONNECT 0x95",
            "event disconnected ProtocolViolation rc=0x95 MQTT-3.2.2-15"
        ]
    );
}

/// A violation ends the connection, not the session: a QoS 1 message in flight is resent
/// on the next connection.
#[test]
fn the_session_survives_a_violation() {
    let mut h = Harness::v5();
    h.connect();
    h.publish("a", "1", QoS::AtLeastOnce);
    h.recv(Packet::ConnAck(Box::default()));
    assert_eq!(h.client.state(), ConnectionState::Disconnected);
    h.client.connect(h.now).unwrap();
    h.drain();
    let mut ack = ConnAck::default();
    ack.session_present = true;
    assert_eq!(
        h.recv(Packet::ConnAck(Box::new(ack)))[1],
        "send PUBLISH 'a' qos=1 id=1 dup=1 retain=0"
    );
}

/// [MQTT-3.14.2-1]: the DISCONNECT carries only a DISCONNECT reason code: a CONNECT from
/// the server that the decoder refuses with 0x84 closes with 0x82.
#[test]
fn decode_error_code_not_allowed_in_disconnect() {
    let mut h = Harness::v5();
    h.connect();
    let connect = [0x10, 0x07, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x09];
    let err = Packet::decode(
        &mut BytesMut::from(&connect[..]),
        &DecodeContext::new(ProtocolVersion::V5),
    )
    .unwrap_err();
    assert_eq!(err.reason_code().0, 0x84);
    h.client.handle_decode_error(h.now, &err);
    assert_eq!(
        h.drain(),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.1.2-2",
            "close"
        ]
    );
}

// 3.1.1 [MQTT-2.2.2-2]: a packet with invalid fixed-header flags (here a PUBACK with flags
// 1 instead of 0) makes the receiver close the connection.
#[test]
fn v311_invalid_flags_close_the_connection() {
    let mut h = Harness::v3();
    h.connect();
    let err = Packet::decode(
        &mut BytesMut::from(&[0x41, 0x02, 0x00, 0x01][..]),
        &DecodeContext::new(ProtocolVersion::V3_1_1),
    )
    .unwrap_err();
    assert_eq!(err.rule_id(), Some("MQTT-2.2.2-1"));
    h.client.handle_decode_error(h.now, &err);
    assert_eq!(
        h.drain(),
        [
            "event disconnected ProtocolViolation rc=0x81 MQTT-2.2.2-1",
            "close"
        ]
    );
    assert_eq!(h.client.state(), ConnectionState::Disconnected);
}

// 3.1.1 [MQTT-4.8.0-1]: a protocol violation by the server closes the connection it came
// on (3.1.1 has no DISCONNECT from the client to say why): a second CONNACK, a PUBREC for
// a QoS 1 message, an UNSUBACK nobody asked for, and a QoS 2 PUBLISH with packet
// identifier 0 (which the decoder refuses).
#[test]
fn v311_violations_close_the_connection() {
    type Violation = Box<dyn Fn(&mut Harness)>;
    let violations: Vec<Violation> = vec![
        Box::new(|h| {
            h.client
                .handle_packet(h.now, Packet::ConnAck(Box::default()))
        }),
        Box::new(|h| {
            h.publish("a", "1", QoS::AtLeastOnce);
            h.client
                .handle_packet(h.now, Packet::PubRec(PubResponse::new(id(1))));
        }),
        Box::new(|h| {
            let ack = mqtt_codec::UnsubAck {
                packet_id: id(5),
                properties: Default::default(),
                reason_codes: vec![],
            };
            h.client.handle_packet(h.now, Packet::UnsubAck(ack));
        }),
        Box::new(|h| {
            let bytes = [0x34, 0x05, 0x00, 0x01, b't', 0x00, 0x00];
            let err = Packet::decode(
                &mut BytesMut::from(&bytes[..]),
                &DecodeContext::new(ProtocolVersion::V3_1_1),
            )
            .unwrap_err();
            h.client.handle_decode_error(h.now, &err);
        }),
    ];
    for (i, violate) in violations.iter().enumerate() {
        let mut h = Harness::v3();
        h.connect();
        violate(&mut h);
        let out = h.drain();
        assert_eq!(
            out.last().map(String::as_str),
            Some("close"),
            "{i}: {out:?}"
        );
        assert!(
            out[out.len() - 2].starts_with("event disconnected ProtocolViolation"),
            "{i}: {out:?}"
        );
        assert!(!out.iter().any(|l| l.starts_with("send")), "{i}: {out:?}");
        assert_eq!(h.client.state(), ConnectionState::Disconnected);
    }
}

// 3.1.1 [MQTT-2.3.1-7]: a SUBACK or UNSUBACK must carry the identifier of its request; one
// that matches no request awaiting it is a protocol violation.
#[test]
fn v311_suback_for_unknown_identifier() {
    let mut h = Harness::v3();
    h.connect();
    let sub = vec![(
        TopicFilter::from_static("a"),
        SubscriptionOptions::default(),
    )];
    h.client.subscribe(h.now, sub, Default::default()).unwrap();
    h.drain();
    let ack = mqtt_codec::SubAck {
        packet_id: id(2),
        properties: Default::default(),
        reason_codes: vec![mqtt_codec::ReasonCode::SUCCESS],
    };
    assert_eq!(
        h.recv(Packet::SubAck(ack)),
        [
            "event disconnected ProtocolViolation rc=0x82 MQTT-2.3.1-7",
            "close"
        ]
    );
}

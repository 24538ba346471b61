//! What the encoder writes, checked byte by byte against the forms that normative
//! statements prescribe (the decoding side of the same statements is in
//! `testdata/spec-coverage-*.txt`). Expected bytes are written out from the specification.

use mqtt_codec::{
    Bytes, Connect, DecodeContext, MqttString, Packet, PacketId, ProtocolVersion, Publish, QoS,
    QosPid, StringError, Subscribe, SubscriptionOptions, TopicFilter, TopicName, Will,
};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V3_1_1: ProtocolVersion = ProtocolVersion::V3_1_1;

fn bytes(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
    p.to_bytes(v).unwrap().to_vec()
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn decode(b: Vec<u8>, v: ProtocolVersion) -> Packet {
    Packet::decode_exact(Bytes::from(b), &DecodeContext::new(v)).unwrap()
}

fn connect(v: ProtocolVersion, id: &'static str) -> Connect {
    Connect::new(v, MqttString::from_static(id))
}

/// [MQTT-2.2.1-2]: a QoS 0 PUBLISH goes without a Packet Identifier: the topic, the
/// Property Length, the payload; a QoS 1 one has the two identifier bytes in between.
#[test]
fn qos0_publish_has_no_packet_identifier() {
    let mut p = Publish::new(TopicName::from_static("a/b"), "hi");
    assert_eq!(
        bytes(&Packet::Publish(p.clone()), V5),
        hex("30 08  00 03 61 2f 62  00  68 69")
    );
    p.qos_pid = QosPid::AtLeastOnce(PacketId::new(0x0102).unwrap());
    assert_eq!(
        bytes(&Packet::Publish(p), V5),
        hex("32 0a  00 03 61 2f 62  01 02  00  68 69")
    );
}

/// [MQTT-3.3.2-1]: the Topic Name is the first field of the variable header, as a
/// length-prefixed UTF-8 string.
// 3.1.1 [MQTT-3.3.2-1]: the same in 3.1.1, where the payload follows the topic directly.
#[test]
fn publish_topic_is_the_first_field() {
    let p = Packet::Publish(Publish::new(TopicName::from_static("é/x"), "m"));
    assert_eq!(bytes(&p, V5), hex("30 08  00 04 c3 a9 2f 78  00  6d"));
    assert_eq!(bytes(&p, V3_1_1), hex("30 07  00 04 c3 a9 2f 78  6d"));
}

/// [MQTT-3.1.2-16], [MQTT-3.1.2-17]: the User Name Flag is set exactly when a User Name
/// follows; [MQTT-3.1.2-18]: the Password Flag likewise for the Password.
#[test]
fn user_name_and_password_flags_match_the_payload() {
    let mut c = connect(V5, "c");
    let flags = |c: &Connect| bytes(&Packet::Connect(Box::new(c.clone())), V5)[9];
    assert_eq!(flags(&c) & 0xc0, 0x00);
    assert_eq!(
        bytes(&Packet::Connect(Box::new(c.clone())), V5),
        hex("10 0e  00 04 4d 51 54 54  05  02  00 3c  00  00 01 63")
    );
    c.username = Some(MqttString::from_static("u"));
    assert_eq!(flags(&c) & 0xc0, 0x80);
    assert_eq!(
        bytes(&Packet::Connect(Box::new(c.clone())), V5),
        hex("10 11  00 04 4d 51 54 54  05  82  00 3c  00  00 01 63  00 01 75")
    );
    c.password = Some(Bytes::from_static(b"pw"));
    assert_eq!(flags(&c) & 0xc0, 0xc0);
    // v5 allows a Password without a User Name.
    c.username = None;
    assert_eq!(
        bytes(&Packet::Connect(Box::new(c)), V5),
        hex("10 12  00 04 4d 51 54 54  05  42  00 3c  00  00 01 63  00 02 70 77")
    );
}

/// [MQTT-3.1.3-1]: the payload fields go in the order Client Identifier, Will Properties,
/// Will Topic, Will Payload, User Name, Password; [MQTT-3.1.3-3]: the Client Identifier
/// first, also when it is empty.
#[test]
fn connect_payload_order() {
    let mut c = connect(V5, "c");
    c.will = Some(Will {
        topic: TopicName::from_static("t"),
        payload: Bytes::from_static(b"m"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Default::default(),
    });
    c.username = Some(MqttString::from_static("u"));
    c.password = Some(Bytes::from_static(b"p"));
    let p = Packet::Connect(Box::new(c));
    let b = bytes(&p, V5);
    assert_eq!(
        b,
        hex(concat!(
            "10 1b  00 04 4d 51 54 54  05  c6  00 3c  00",
            "  00 01 63  00  00 01 74  00 01 6d  00 01 75  00 01 70"
        ))
    );
    assert_eq!(decode(b, V5), p);

    let empty = Packet::Connect(Box::new(Connect::new(V5, MqttString::empty())));
    assert_eq!(
        bytes(&empty, V5),
        hex("10 0d  00 04 4d 51 54 54  05  02  00 3c  00  00 00")
    );
}

// 3.1.1 [MQTT-3.1.3-3]: the Client Identifier is the first payload field, also empty.
// 3.1.1 [MQTT-3.1.2-11]: without a Will, the Will QoS and Will Retain bits are 0 and no
// Will Topic or Will Message is written.
#[test]
fn v311_connect_client_id_first_and_no_will_fields() {
    let c = Packet::Connect(Box::new(connect(V3_1_1, "c")));
    let b = bytes(&c, V3_1_1);
    assert_eq!(b, hex("10 0d  00 04 4d 51 54 54  04  02  00 3c  00 01 63"));
    assert_eq!(b[9] & 0x3c, 0);
    let empty = Packet::Connect(Box::new(Connect::new(V3_1_1, MqttString::empty())));
    assert_eq!(
        bytes(&empty, V3_1_1),
        hex("10 0c  00 04 4d 51 54 54  04  02  00 3c  00 00")
    );
}

// 3.1.1 [MQTT-3.1.2-21]: with the Password Flag set the Password is written, after the
// User Name (3.1.1 needs both).
#[test]
fn v311_password_follows_its_flag() {
    let mut c = connect(V3_1_1, "c");
    c.username = Some(MqttString::from_static("u"));
    c.password = Some(Bytes::from_static(b"pw"));
    let p = Packet::Connect(Box::new(c.clone()));
    let b = bytes(&p, V3_1_1);
    assert_eq!(
        b,
        hex("10 14  00 04 4d 51 54 54  04  c2  00 3c  00 01 63  00 01 75  00 02 70 77")
    );
    assert_eq!(decode(b, V3_1_1), p);
    c.username = None;
    assert!(Packet::Connect(Box::new(c)).to_bytes(V3_1_1).is_err());
}

// 3.1.1 [MQTT-4.7.3-3]: topic names and filters are at most 65,535 bytes: one that long
// is accepted and survives the wire, one byte more is refused before it can be encoded.
#[test]
fn v311_topics_are_at_most_65535_bytes() {
    let longest = "a".repeat(65_535);
    let name = TopicName::new(longest.clone()).unwrap();
    let p = Packet::Publish(Publish::new(name, "x"));
    assert_eq!(decode(bytes(&p, V3_1_1), V3_1_1), p);
    assert_eq!(
        TopicName::new("a".repeat(65_536)),
        Err(StringError::TooLong)
    );
    let filter = TopicFilter::new(longest).unwrap();
    let s = Packet::Subscribe(Subscribe::new(
        PacketId::new(1).unwrap(),
        vec![(filter, SubscriptionOptions::default())],
    ));
    assert_eq!(decode(bytes(&s, V3_1_1), V3_1_1), s);
    assert_eq!(
        TopicFilter::new("a/".repeat(32_768)),
        Err(StringError::TooLong)
    );
}

// 3.1.1 [MQTT-4.7.3-2]: no U+0000 in a topic name or filter, refused before encoding (the
// decoder refuses it on the wire: testdata/spec-coverage-v311.txt).
#[test]
fn v311_topics_have_no_null_character() {
    assert_eq!(TopicName::new("a\0b"), Err(StringError::Null));
    assert_eq!(TopicFilter::new("a/\0/#"), Err(StringError::Null));
}

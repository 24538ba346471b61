//! Servers that speak only 3.1.1 (aedes, Mosca before it, and many more): a 5.0 CONNECT is
//! answered with the 3.1.1 CONNACK `20 02 00 01`, return code 1. The client reports that the
//! server does not support 5.0 and, when configured to, falls back to 3.1.1. These stories
//! feed the client the server's bytes and read the bytes it sends.

use mqtt_codec::{
    Bytes, EncodeError, MqttString, PacketType, ProtocolVersion, PublishProperties, QoS,
    SubscriptionOptions, TopicFilter, TopicName, UserProperty, Will,
};

use super::*;
use crate::client::{ConnectError, ConnectionState, PublishError};

/// What a 3.1.1 server sends when it does not support the protocol level of a CONNECT.
const V311_REFUSAL: [u8; 4] = [0x20, 0x02, 0x00, 0x01];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The bytes of every packet sent from action `from` on, encoded with the client's version.
fn sent_bytes(h: &Harness, from: usize) -> Vec<String> {
    h.actions[from..]
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(hex(&p.to_bytes(h.client.protocol()).unwrap())),
            _ => None,
        })
        .collect()
}

fn config(fallback: bool) -> ClientConfig {
    let mut c = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    c.fallback_to_v3_1_1 = fallback;
    c
}

/// A v5 CONNECT for client `c1`, clean start, keep-alive 60, no properties.
const V5_CONNECT: &str = "100f00044d5154540502003c0000026331";
/// The same CONNECT in 3.1.1: protocol level 4 and no Property Length.
const V311_CONNECT: &str = "100e00044d5154540402003c00026331";

/// 3.1.1 [MQTT-3.1.2-2]: a server that does not support the protocol level answers with
/// return code 0x01 and disconnects. A 5.0 client hears it as what it is, the server does
/// not support MQTT 5.0: not a malformed packet, so no DISCONNECT goes back.
#[test]
fn v311_refusal_of_a_v5_connect_is_unsupported_version_not_a_violation() {
    let mut h = Harness::new(config(false));
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=c1 clean=1 keep_alive=60"]);
    assert_eq!(sent_bytes(&h, 0), [V5_CONNECT]);
    assert_eq!(
        h.recv_bytes(&V311_REFUSAL),
        [
            "event unsupported-version refused=5.0 fallback=none",
            "event disconnected Refused rc=0x84",
            "close"
        ]
    );
    let Some(Action::Event(Event::Disconnected(d))) = h.actions.iter().rev().nth(1) else {
        panic!("{:?}", h.actions)
    };
    assert_eq!(
        d.reason_code,
        Some(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION)
    );
    assert_eq!(d.rule, None);
    // Without the fallback the client stays with 5.0.
    assert_eq!(h.client.state(), ConnectionState::Disconnected);
    assert_eq!(h.client.protocol(), ProtocolVersion::V5);
    let n = h.actions.len();
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(sent_bytes(&h, n), [V5_CONNECT]);
}

/// v5 [MQTT-3.1.2-2]: a 5.0 server may refuse a version with CONNACK 0x84 (Unsupported
/// Protocol Version) and close. Said in 5.0's own format, it means the same.
#[test]
fn v5_connack_0x84_is_unsupported_version_too() {
    let mut h = Harness::new(config(true));
    h.client.connect(h.now).unwrap();
    h.drain();
    // CONNACK, remaining length 3: flags 0, reason code 0x84, Property Length 0.
    assert_eq!(
        h.recv_bytes(&[0x20, 0x03, 0x00, 0x84, 0x00]),
        [
            "event unsupported-version refused=5.0 fallback=3.1.1",
            "event disconnected Refused rc=0x84",
            "close"
        ]
    );
    assert_eq!(h.client.protocol(), ProtocolVersion::V3_1_1);
}

/// The fallback, told on the wire: a 5.0 CONNECT refused the 3.1.1 way (3.1.1
/// [MQTT-3.1.2-2]), a 3.1.1 CONNECT on the next transport, accepted; then the connection
/// is plain 3.1.1 both ways.
#[test]
fn fallback_reconnects_with_v311_and_stays_there() {
    let mut h = Harness::new(config(true));
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(sent_bytes(&h, 0), [V5_CONNECT]);
    assert_eq!(
        h.recv_bytes(&V311_REFUSAL),
        [
            "event unsupported-version refused=5.0 fallback=3.1.1",
            "event disconnected Refused rc=0x84",
            "close"
        ]
    );
    assert_eq!(h.client.protocol(), ProtocolVersion::V3_1_1);
    assert_eq!(
        h.client.decode_context().version,
        Some(ProtocolVersion::V3_1_1)
    );

    // The driver opens a new transport and connects again.
    let n = h.actions.len();
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=c1 clean=1 keep_alive=60"]);
    assert_eq!(sent_bytes(&h, n), [V311_CONNECT]);
    // A 3.1.1 CONNACK accepting it: remaining length 2, return code 0.
    assert_eq!(
        h.recv_bytes(&[0x20, 0x02, 0x00, 0x00]),
        ["persist client-id c1", "event connected present=0 id=c1"]
    );
    let Some(Action::Event(Event::Connected(c))) = h.actions.last() else {
        panic!("{:?}", h.actions)
    };
    assert_eq!(c.protocol, ProtocolVersion::V3_1_1);

    // QoS 1 out, PUBACK in; SUBSCRIBE out, SUBACK in: all in 3.1.1's format.
    let n = h.actions.len();
    h.publish("t", "hi", QoS::AtLeastOnce);
    let filter = TopicFilter::new("f/#").unwrap();
    h.client
        .subscribe(
            h.now,
            vec![(filter, SubscriptionOptions::qos(QoS::AtLeastOnce))],
            Default::default(),
        )
        .unwrap();
    h.drain();
    assert_eq!(
        sent_bytes(&h, n),
        [
            // PUBLISH QoS 1, topic "t", id 1, payload "hi": no Property Length.
            "3207000174000168 69".replace(' ', ""),
            // SUBSCRIBE id 2, "f/#" at QoS 1: no Property Length.
            "82080002000366 2f2301".replace(' ', ""),
        ]
    );
    assert_eq!(
        h.recv_bytes(&[0x40, 0x02, 0x00, 0x01, 0x90, 0x03, 0x00, 0x02, 0x01]),
        [
            "persist rm-out 1",
            "event published 1",
            "persist rm-req 2",
            "event subscribed 2 0x01"
        ]
    );

    // A later connection stays with 3.1.1.
    h.client.handle_closed(h.now);
    h.drain();
    let n = h.actions.len();
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(sent_bytes(&h, n), [V311_CONNECT]);
}

/// The 3.1.1 form drops the v5 properties that only tune a connection: the CONNECT after
/// the fallback is the plain 3.1.1 one.
#[test]
fn fallback_drops_connection_tuning_properties() {
    let mut c = config(true);
    c.properties.session_expiry_interval = Some(600);
    c.properties.receive_maximum = std::num::NonZeroU16::new(10);
    c.properties.maximum_packet_size = std::num::NonZeroU32::new(4096);
    c.properties.topic_alias_maximum = Some(5);
    c.properties.request_problem_information = Some(false);
    c.properties.request_response_information = Some(true);
    let mut h = Harness::new(c);
    h.client.connect(h.now).unwrap();
    h.drain();
    h.recv_bytes(&V311_REFUSAL);
    assert_eq!(h.client.config().protocol, ProtocolVersion::V3_1_1);
    assert!(h.client.config().properties.is_empty());
    let n = h.actions.len();
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(sent_bytes(&h, n), [V311_CONNECT]);
}

/// Options 3.1.1 cannot carry make a configuration that may fall back fail at `connect`,
/// before any server is asked; the same configuration without the fallback connects.
#[test]
fn options_without_a_v311_form_are_refused_up_front() {
    let user: UserProperty = (MqttString::from_static("k"), MqttString::from_static("v"));
    let will = |delay| Will {
        topic: TopicName::from_static("w"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: mqtt_codec::WillProperties {
            will_delay_interval: delay,
            ..Default::default()
        },
    };
    type Setting = Box<dyn Fn(&mut ClientConfig)>;
    let cases: Vec<(&str, Setting)> = vec![
        (
            "enhanced authentication (Authentication Method and Data)",
            Box::new(|c| c.properties.authentication_method = Some(MqttString::from_static("X"))),
        ),
        (
            "CONNECT User Properties",
            Box::new(move |c| c.properties.user_properties = vec![user.clone()].into()),
        ),
        (
            "Will Properties",
            Box::new(move |c| c.will = Some(will(Some(30)))),
        ),
        (
            "a password without a user name ([MQTT-3.1.2-22] in 3.1.1)",
            Box::new(|c| c.password = Some(Bytes::from_static(b"secret"))),
        ),
        (
            "an empty client identifier without clean start ([MQTT-3.1.3-7] in 3.1.1)",
            Box::new(|c| {
                c.client_id = MqttString::empty();
                c.clean_start = false;
            }),
        ),
    ];
    for (option, set) in cases {
        let mut c = config(true);
        set(&mut c);
        let mut h = Harness::new(c.clone());
        assert_eq!(
            h.client.connect(h.now),
            Err(ConnectError::NotInV3_1_1(option)),
            "{option}"
        );
        assert_eq!(h.drain(), Vec::<String>::new(), "{option}");
        assert_eq!(h.client.state(), ConnectionState::Disconnected);
        c.fallback_to_v3_1_1 = false;
        let mut h = Harness::new(c);
        assert_eq!(h.client.connect(h.now), Ok(()), "{option}");
    }
    // A will without properties has a 3.1.1 form.
    let mut c = config(true);
    c.will = Some(will(None));
    assert_eq!(Harness::new(c).client.connect(crate::test_epoch()), Ok(()));
}

/// A message queued before the version is settled may go out under 3.1.1, so it must fit
/// 3.1.1; once a 5.0 connection was accepted, v5 properties are fine.
#[test]
fn messages_queued_before_the_version_is_settled_must_fit_v311() {
    let mut h = Harness::new(config(true));
    let mut m = super::super::Message::new(topic("t"), "x").with_qos(QoS::AtLeastOnce);
    m.properties = PublishProperties {
        content_type: Some(MqttString::from_static("text/plain")),
        ..Default::default()
    };
    assert_eq!(
        h.client.publish(h.now, m.clone()),
        Err(PublishError::Encode(EncodeError::NotInVersion {
            packet: PacketType::Publish,
            field: "properties",
            version: ProtocolVersion::V3_1_1,
        }))
    );
    h.connect();
    assert_eq!(h.client.publish(h.now, m), Ok(Some(id(1))));
}

/// The fallback only happens before any connection of the client was accepted: a session
/// begun under 5.0 is not carried on under 3.1.1. A later refusal is reported without one.
#[test]
fn no_fallback_once_a_v5_connection_was_accepted() {
    let mut h = Harness::new(config(true));
    h.connect();
    h.client.handle_closed(h.now);
    h.drain();
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(
        h.recv_bytes(&V311_REFUSAL),
        [
            "event unsupported-version refused=5.0 fallback=none",
            "event disconnected Refused rc=0x84",
            "close"
        ]
    );
    assert_eq!(h.client.protocol(), ProtocolVersion::V5);
}

/// After falling back, a server that refuses 3.1.1 too (3.1.1 [MQTT-3.1.2-2]: a 3.1-only
/// server) is reported with no further fallback.
#[test]
fn a_refusal_of_v311_after_the_fallback_ends_there() {
    let mut h = Harness::new(config(true));
    h.client.connect(h.now).unwrap();
    h.drain();
    h.recv_bytes(&V311_REFUSAL);
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(
        h.recv_bytes(&V311_REFUSAL),
        [
            "event unsupported-version refused=3.1.1 fallback=none",
            "event disconnected Refused rc=0x84",
            "close"
        ]
    );
    assert_eq!(h.client.protocol(), ProtocolVersion::V3_1_1);
}

/// The refusal may arrive in pieces: the client waits for the whole packet.
#[test]
fn the_refusal_split_across_reads() {
    let mut h = Harness::new(config(true));
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(h.recv_bytes(&V311_REFUSAL[..3]), Vec::<String>::new());
    assert_eq!(h.client.state(), ConnectionState::Connecting);
    assert_eq!(
        h.recv_bytes(&V311_REFUSAL[3..]),
        [
            "event unsupported-version refused=5.0 fallback=3.1.1",
            "event disconnected Refused rc=0x84",
            "close"
        ]
    );
}

/// The codec stays strict: only the exact 3.1.1 refusal, and only in answer to a 5.0
/// CONNECT, is read as 3.1.1. Any other 3.1.1 CONNACK is a malformed v5 CONNACK
/// ([MQTT-3.2.2-8] for a code no v5 CONNACK has, else a missing Property Length).
#[test]
fn other_v311_connacks_stay_malformed() {
    for (bytes, rule) in [
        // Return code 5, not authorized: 0x05 is no v5 CONNACK reason code.
        ([0x20, 0x02, 0x00, 0x05], "MQTT-3.2.2-8"),
        // Session Present with return code 1 (3.1.1 [MQTT-3.2.2-4] forbids it).
        ([0x20, 0x02, 0x01, 0x01], "MQTT-3.2.2-8"),
    ] {
        let mut h = Harness::new(config(true));
        h.client.connect(h.now).unwrap();
        h.drain();
        assert_eq!(
            h.recv_bytes(&bytes),
            [
                "send DISCONNECT 0x81".to_string(),
                format!("event disconnected ProtocolViolation rc=0x81 {rule}"),
                "close".to_string()
            ],
            "{bytes:02x?}"
        );
        assert_eq!(h.client.protocol(), ProtocolVersion::V5);
    }
    // Accepted the 3.1.1 way: no Property Length, so the v5 reader runs short.
    let mut h = Harness::new(config(true));
    h.client.connect(h.now).unwrap();
    h.drain();
    let out = h.recv_bytes(&[0x20, 0x02, 0x00, 0x00]);
    assert_eq!(out[0], "send DISCONNECT 0x81");
    assert!(out[1].starts_with("event disconnected ProtocolViolation rc=0x81"));
    // On an open 5.0 connection the four bytes are no refusal either.
    let mut h = Harness::new(config(true));
    h.connect();
    let out = h.recv_bytes(&V311_REFUSAL);
    assert_eq!(out[0], "send DISCONNECT 0x81");
}

/// A 3.1.1 client reads the same bytes with its own codec: the server refused 3.1.1.
#[test]
fn v311_client_hears_the_refusal_of_its_own_version() {
    let mut h = Harness::v3();
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(
        h.recv_bytes(&V311_REFUSAL),
        [
            "event unsupported-version refused=3.1.1 fallback=none",
            "event disconnected Refused rc=0x84",
            "close"
        ]
    );
}

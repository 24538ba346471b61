//! Strategies for the property tests: valid packets of every type for MQTT 3.1, 3.1.1 and
//! 5.0, with every property a v5 packet may carry, strings mixing ASCII, multi-byte UTF-8
//! and U+FEFF, topic names and filters with legally placed wildcards (and `$share/` filters),
//! every reason code each packet allows, packet identifiers 1..=65535 and payloads of
//! various sizes.
//!
//! The generators build packets from the specification's rules, not from the codec's own
//! checks: the reason code tables below are copied from the specification, and the test
//! `reason_code_tables_match_allowed_in` compares them with `ReasonCode::allowed_in`.
#![allow(dead_code)] // each test file uses a different part of this module

use std::borrow::Cow;
use std::num::{NonZeroU16, NonZeroU32};
use std::ops::RangeInclusive;

use mqtt_codec::{
    AckProperties, Auth, AuthProperties, Bytes, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, Disconnect, DisconnectProperties, MqttString, Packet, PacketId,
    ProtocolVersion, PubResponse, Publish, PublishProperties, QoS, QosPid, ReasonCode,
    RetainHandling, SubAck, Subscribe, SubscribeProperties, SubscriptionId, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, Unsubscribe, UnsubscribeProperties, UserProperty, Will,
    WillProperties,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;

/// The configuration every property test uses: `cases` cases unless `PROPTEST_CASES` says
/// otherwise. A failing case is saved next to the test file (`tests/NAME.regressions`,
/// replayed first on the next run) and its seed printed; `PROPTEST_RNG_SEED=N` replays a
/// whole run.
pub fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

// --- reason codes, as the tables of the MQTT 5.0 specification list them ---

/// Section 3.2.2.2, Connect Reason Codes.
pub const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
/// Section 3.2.2.3 of MQTT 3.1.1: the return codes 0 to 5, as the reason codes they map to.
pub const CONNACK_V3_CODES: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];
/// Sections 3.4.2.1 and 3.5.2.1, PUBACK and PUBREC Reason Codes.
pub const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
/// Sections 3.6.2.1 and 3.7.2.1, PUBREL and PUBCOMP Reason Codes.
pub const PUBREL_CODES: &[u8] = &[0x00, 0x92];
/// Section 3.9.3, SUBACK Reason Codes.
pub const SUBACK_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
/// Section 3.9.3 of MQTT 3.1.1: granted QoS 0 to 2, and 0x80 Failure.
pub const SUBACK_V3_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80];
/// Section 3.11.3, UNSUBACK Reason Codes.
pub const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
/// Section 3.14.2.1, Disconnect Reason Codes.
pub const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
/// Section 3.15.2.1, Authenticate Reason Codes.
pub const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];

fn reason(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> + Clone {
    select(codes).prop_map(ReasonCode)
}

// --- primitives ---

/// The three versions the codec speaks (3.1 only differs in CONNECT).
pub fn version() -> impl Strategy<Value = ProtocolVersion> + Clone {
    select(
        &[
            ProtocolVersion::V3_1,
            ProtocolVersion::V3_1_1,
            ProtocolVersion::V5,
        ][..],
    )
}

/// A packet identifier, 1..=65535 ([MQTT-2.2.1-3]).
pub fn packet_id() -> impl Strategy<Value = PacketId> + Clone {
    (1..=u16::MAX).prop_map(|n| PacketId::new(n).unwrap())
}

pub fn nz16() -> impl Strategy<Value = NonZeroU16> + Clone {
    (1..=u16::MAX).prop_map(|n| NonZeroU16::new(n).unwrap())
}

pub fn nz32() -> impl Strategy<Value = NonZeroU32> + Clone {
    (1..=u32::MAX).prop_map(|n| NonZeroU32::new(n).unwrap())
}

pub fn qos() -> impl Strategy<Value = QoS> + Clone {
    select(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][..])
}

pub fn qos_pid() -> impl Strategy<Value = QosPid> + Clone {
    prop_oneof![
        Just(QosPid::AtMostOnce),
        packet_id().prop_map(QosPid::AtLeastOnce),
        packet_id().prop_map(QosPid::ExactlyOnce),
    ]
}

/// Binary data of mostly small sizes.
pub fn binary() -> impl Strategy<Value = Bytes> + Clone {
    prop_oneof![
        4 => vec(any::<u8>(), 0..16),
        1 => vec(any::<u8>(), 0..400),
    ]
    .prop_map(Bytes::from)
}

/// A payload: mostly small, sometimes around the one- and two-byte remaining length
/// boundaries, now and then a few kilobytes.
pub fn payload() -> impl Strategy<Value = Bytes> + Clone {
    prop_oneof![
        6 => vec(any::<u8>(), 0..24),
        2 => vec(any::<u8>(), 100..300),
        1 => vec(any::<u8>(), 16_000..17_000),
        1 => vec(any::<u8>(), 0..4_000),
    ]
    .prop_map(Bytes::from)
}

/// A character of a UTF-8 string: any but U+0000 ([MQTT-1.5.4-2]), weighted towards ASCII,
/// the encoding length boundaries of UTF-8, and U+FEFF, which must survive as is
/// ([MQTT-1.5.4-3]).
pub fn text_char() -> impl Strategy<Value = char> + Clone {
    chars(
        &[
            'A', 'Z', '0', '9', ' ', '-', '_', '.', '$', '/', '+', '#', '\u{1}', '\u{7F}',
        ],
        &['\u{1}'..=char::MAX],
    )
}

/// Characters weighted as `text_char` describes: `ascii` are the chosen ASCII ones, and
/// `ranges` all that may appear.
fn chars(
    ascii: &'static [char],
    ranges: &'static [RangeInclusive<char>],
) -> impl Strategy<Value = char> + Clone {
    prop_oneof![
        4 => prop::char::range('a', 'e'),
        1 => select(ascii),
        2 => select(&[
            '\u{80}', 'é', 'ß', 'я', '\u{7FF}', '\u{800}', '中', '\u{FEFF}', '\u{FFFF}',
            '\u{10000}', '😀', '\u{10FFFF}',
        ][..]),
        1 => prop::char::ranges(Cow::Borrowed(ranges)),
    ]
}

/// An MQTT string: short, or now and then a few hundred characters.
pub fn mqtt_string() -> impl Strategy<Value = MqttString> + Clone {
    prop_oneof![
        8 => vec(text_char(), 0..10),
        1 => vec(text_char(), 0..300),
    ]
    .prop_map(|cs| MqttString::new(String::from_iter(cs)).unwrap())
}

pub fn user_properties() -> impl Strategy<Value = Vec<UserProperty>> + Clone {
    prop_oneof![
        1 => Just(Vec::new()),
        2 => vec((mqtt_string(), mqtt_string()), 1..4),
    ]
}

// --- topics ---

/// A character of a topic level: anything but the separator and the wildcards.
fn level_char() -> impl Strategy<Value = char> + Clone {
    chars(
        &[
            'A', 'Z', '0', '9', ' ', '-', '_', '.', '$', '\u{1}', '\u{7F}',
        ],
        &['\u{1}'..='"', '$'..='*', ','..='.', '0'..=char::MAX],
    )
}

/// One topic level. A small vocabulary (with the empty level and `$` levels) makes filters
/// and names meet often; random levels cover the rest.
pub fn topic_level() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => select(&["a", "b", "sport", "tennis", "", "$SYS", "$", "a$", "\u{FEFF}", "é"][..])
            .prop_map(String::from),
        1 => vec(level_char(), 0..6).prop_map(String::from_iter),
    ]
}

/// A non-empty topic name ([MQTT-4.7.3-1]) without wildcards ([MQTT-3.3.2-2]).
pub fn topic_name() -> impl Strategy<Value = TopicName> + Clone {
    vec(topic_level(), 1..6).prop_map(|mut levels| {
        if levels == [""] {
            levels.push(String::new()); // "/": a lone empty level is an empty topic
        }
        TopicName::new(levels.join("/")).unwrap()
    })
}

/// A topic filter: `+` filling whole levels anywhere ([MQTT-4.7.1-2]), `#` only as the whole
/// last level ([MQTT-4.7.1-1]), at least one character ([MQTT-4.7.3-1]).
pub fn plain_topic_filter() -> impl Strategy<Value = TopicFilter> + Clone {
    let level = prop_oneof![3 => topic_level(), 1 => Just("+".to_string())];
    let levels = (vec(level, 1..6), any::<bool>()).prop_map(|(mut levels, hash)| {
        // A lone empty level is an empty filter: "#" after it makes "/#".
        if hash || levels == [""] {
            levels.push("#".to_string());
        }
        levels.join("/")
    });
    prop_oneof![1 => Just("#".to_string()), 10 => levels].prop_map(|s| TopicFilter::new(s).unwrap())
}

/// A shared subscription filter `$share/{ShareName}/{filter}` ([MQTT-4.8.2-1],
/// [MQTT-4.8.2-2]).
pub fn shared_topic_filter() -> impl Strategy<Value = TopicFilter> + Clone {
    (vec(level_char(), 1..6), plain_topic_filter()).prop_map(|(name, filter)| {
        let name = String::from_iter(name);
        TopicFilter::new(format!("$share/{name}/{}", filter.as_str())).unwrap()
    })
}

/// Any filter a v5 SUBSCRIBE may carry: plain or shared. (Random levels could spell an
/// invalid `$share/` prefix by chance; those are left out.)
pub fn topic_filter() -> impl Strategy<Value = TopicFilter> + Clone {
    prop_oneof![4 => plain_topic_filter(), 1 => shared_topic_filter()]
        .prop_filter("invalid $share/ filter", |f| {
            !matches!(f.shared(), Some(Err(_)))
        })
}

// --- properties ---

/// `Just(default)` half the time, so that packets without properties stay common.
fn or_empty<T: Default + Clone + std::fmt::Debug + 'static>(
    full: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![Just(T::default()), full].boxed()
}

/// An Authentication Method with optional Authentication Data, or neither: CONNECT and
/// CONNACK carry no data without a method.
fn auth_method_and_data() -> impl Strategy<Value = (Option<MqttString>, Option<Bytes>)> + Clone {
    prop_oneof![
        Just((None, None)),
        (mqtt_string(), option::of(binary())).prop_map(|(m, d)| (Some(m), d)),
    ]
}

pub fn connect_properties() -> BoxedStrategy<ConnectProperties> {
    or_empty(some_connect_properties())
}

/// Each property present or not at random (rarely none of them).
pub fn some_connect_properties() -> BoxedStrategy<ConnectProperties> {
    (
        option::of(any::<u32>()),
        option::of(nz16()),
        option::of(nz32()),
        option::of(any::<u16>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        auth_method_and_data(),
        user_properties(),
    )
        .prop_map(
            |(sei, rm, mps, tam, rri, rpi, (am, ad), up)| ConnectProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                authentication_method: am,
                authentication_data: ad,
                user_properties: up.into(),
            },
        )
        .boxed()
}

pub fn will_properties() -> BoxedStrategy<WillProperties> {
    or_empty(some_will_properties())
}

/// Each property present or not at random (rarely none of them).
pub fn some_will_properties() -> BoxedStrategy<WillProperties> {
    (
        option::of(any::<u32>()),
        option::of(any::<bool>()),
        option::of(any::<u32>()),
        option::of(mqtt_string()),
        option::of(topic_name()),
        option::of(binary()),
        user_properties(),
    )
        .prop_map(|(wdi, pfi, mei, ct, rt, cd, up)| WillProperties {
            will_delay_interval: wdi,
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd,
            user_properties: up.into(),
        })
        .boxed()
}

pub fn connack_properties() -> BoxedStrategy<ConnAckProperties> {
    or_empty(some_connack_properties())
}

/// Each property present or not at random (rarely none of them).
pub fn some_connack_properties() -> BoxedStrategy<ConnAckProperties> {
    // Maximum QoS is 0 or 1 (section 3.2.2.3.4).
    let max_qos = select(&[QoS::AtMostOnce, QoS::AtLeastOnce][..]);
    (
        (
            option::of(any::<u32>()),
            option::of(nz16()),
            option::of(max_qos),
            option::of(any::<bool>()),
            option::of(nz32()),
            option::of(mqtt_string()),
            option::of(any::<u16>()),
            option::of(mqtt_string()),
        ),
        (
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<u16>()),
            option::of(mqtt_string()),
            option::of(mqtt_string()),
            auth_method_and_data(),
            user_properties(),
        ),
    )
        .prop_map(
            |((sei, rm, mq, ra, mps, aci, tam, rs), (wsa, sia, ssa, ska, ri, sr, (am, ad), up))| {
                ConnAckProperties {
                    session_expiry_interval: sei,
                    receive_maximum: rm,
                    maximum_qos: mq,
                    retain_available: ra,
                    maximum_packet_size: mps,
                    assigned_client_identifier: aci,
                    topic_alias_maximum: tam,
                    reason_string: rs,
                    wildcard_subscription_available: wsa,
                    subscription_identifiers_available: sia,
                    shared_subscription_available: ssa,
                    server_keep_alive: ska,
                    response_information: ri,
                    server_reference: sr,
                    authentication_method: am,
                    authentication_data: ad,
                    user_properties: up.into(),
                }
            },
        )
        .boxed()
}

pub fn subscription_id() -> impl Strategy<Value = SubscriptionId> + Clone {
    prop_oneof![
        1..128u32,
        1..=SubscriptionId::MAX,
        select(
            &[
                127,
                128,
                16_383,
                16_384,
                2_097_151,
                2_097_152,
                SubscriptionId::MAX
            ][..]
        ),
    ]
    .prop_map(|n| SubscriptionId::new(n).unwrap())
}

pub fn publish_properties() -> BoxedStrategy<PublishProperties> {
    or_empty(some_publish_properties())
}

/// Each property present or not at random (rarely none of them).
pub fn some_publish_properties() -> BoxedStrategy<PublishProperties> {
    (
        option::of(any::<bool>()),
        option::of(any::<u32>()),
        option::of(nz16()),
        option::of(topic_name()),
        option::of(binary()),
        option::of(mqtt_string()),
        user_properties(),
        vec(subscription_id(), 0..4),
    )
        .prop_map(|(pfi, mei, ta, rt, cd, ct, up, si)| PublishProperties {
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            topic_alias: ta,
            response_topic: rt,
            correlation_data: cd,
            content_type: ct,
            user_properties: up.into(),
            subscription_identifiers: si.into(),
        })
        .boxed()
}

pub fn ack_properties() -> BoxedStrategy<AckProperties> {
    or_empty(some_ack_properties())
}

/// Each property present or not at random (rarely none of them).
pub fn some_ack_properties() -> BoxedStrategy<AckProperties> {
    (option::of(mqtt_string()), user_properties())
        .prop_map(|(rs, up)| AckProperties {
            reason_string: rs,
            user_properties: up.into(),
        })
        .boxed()
}

pub fn subscribe_properties() -> BoxedStrategy<SubscribeProperties> {
    or_empty(some_subscribe_properties())
}

/// Each property present or not at random (rarely none of them).
pub fn some_subscribe_properties() -> BoxedStrategy<SubscribeProperties> {
    (option::of(subscription_id()), user_properties())
        .prop_map(|(si, up)| SubscribeProperties {
            subscription_identifier: si,
            user_properties: up.into(),
        })
        .boxed()
}

pub fn unsubscribe_properties() -> BoxedStrategy<UnsubscribeProperties> {
    or_empty(some_unsubscribe_properties())
}

/// Each property present or not at random (rarely none of them).
pub fn some_unsubscribe_properties() -> BoxedStrategy<UnsubscribeProperties> {
    user_properties()
        .prop_map(|up| UnsubscribeProperties {
            user_properties: up.into(),
        })
        .boxed()
}

pub fn disconnect_properties() -> BoxedStrategy<DisconnectProperties> {
    or_empty(some_disconnect_properties())
}

/// Each property present or not at random (rarely none of them).
pub fn some_disconnect_properties() -> BoxedStrategy<DisconnectProperties> {
    (
        option::of(any::<u32>()),
        option::of(mqtt_string()),
        option::of(mqtt_string()),
        user_properties(),
    )
        .prop_map(|(sei, rs, sr, up)| DisconnectProperties {
            session_expiry_interval: sei,
            reason_string: rs,
            server_reference: sr,
            user_properties: up.into(),
        })
        .boxed()
}

/// AUTH properties with an Authentication Method, which every AUTH but a bare Success
/// needs (section 3.15.2.2.2).
pub fn auth_properties() -> impl Strategy<Value = AuthProperties> + Clone {
    (
        mqtt_string(),
        option::of(binary()),
        option::of(mqtt_string()),
        user_properties(),
    )
        .prop_map(|(am, ad, rs, up)| AuthProperties {
            authentication_method: Some(am),
            authentication_data: ad,
            reason_string: rs,
            user_properties: up.into(),
        })
}

// --- packets ---

/// A CONNECT in `protocol`. MQTT 3.1 and 3.1.1 need a user name with a password
/// ([MQTT-3.1.2-22]); only v5 carries properties.
pub fn connect(protocol: ProtocolVersion) -> BoxedStrategy<Connect> {
    let v5 = protocol.is_v5();
    let will = (
        topic_name(),
        binary(),
        qos(),
        any::<bool>(),
        will_properties(),
    )
        .prop_map(move |(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties: if v5 { properties } else { Default::default() },
        });
    (
        any::<bool>(),
        any::<u16>(),
        connect_properties(),
        mqtt_string(),
        option::of(will),
        option::of(mqtt_string()),
        option::of(binary()),
    )
        .prop_map(
            move |(clean_start, keep_alive, properties, client_id, will, username, password)| {
                Connect {
                    protocol,
                    clean_start,
                    keep_alive,
                    properties: if v5 { properties } else { Default::default() },
                    client_id,
                    will,
                    password: if v5 || username.is_some() {
                        password
                    } else {
                        None
                    },
                    username,
                }
            },
        )
        .boxed()
}

/// A CONNACK; Session Present only with Success ([MQTT-3.2.2-6]).
pub fn connack(v5: bool) -> BoxedStrategy<ConnAck> {
    let codes = if v5 { CONNACK_CODES } else { CONNACK_V3_CODES };
    (any::<bool>(), reason(codes), connack_properties())
        .prop_map(move |(sp, reason_code, properties)| ConnAck {
            session_present: sp && reason_code == ReasonCode::SUCCESS,
            reason_code,
            properties: if v5 { properties } else { Default::default() },
        })
        .boxed()
}

/// A PUBLISH; DUP only with QoS 1 or 2 ([MQTT-3.3.1-2]); in v5 the topic may be empty when
/// a Topic Alias stands for it.
pub fn publish(v5: bool) -> BoxedStrategy<Publish> {
    let topic = if v5 {
        prop_oneof![6 => topic_name(), 1 => Just(TopicName::default())].boxed()
    } else {
        topic_name().boxed()
    };
    (
        any::<bool>(),
        qos_pid(),
        any::<bool>(),
        topic,
        publish_properties(),
        nz16(),
        payload(),
    )
        .prop_map(
            move |(dup, qos_pid, retain, topic, mut properties, alias, payload)| {
                if !v5 {
                    properties = Default::default();
                } else if topic.is_empty() && properties.topic_alias.is_none() {
                    properties.topic_alias = Some(alias);
                }
                Publish {
                    dup: dup && qos_pid != QosPid::AtMostOnce,
                    qos_pid,
                    retain,
                    topic,
                    properties: properties.into(),
                    payload,
                }
            },
        )
        .boxed()
}

/// A PUBACK, PUBREC, PUBREL or PUBCOMP with a reason code from `codes` (v5 only).
pub fn pub_response(v5: bool, codes: &'static [u8]) -> BoxedStrategy<PubResponse> {
    (packet_id(), reason(codes), ack_properties())
        .prop_map(move |(packet_id, reason_code, properties)| {
            if v5 {
                PubResponse {
                    packet_id,
                    reason_code,
                    properties,
                }
            } else {
                PubResponse::new(packet_id)
            }
        })
        .boxed()
}

/// Subscription options; under 3.1.1 only the QoS. No Local is never set on a shared
/// subscription ([MQTT-3.8.3-4]).
fn subscription(v5: bool) -> BoxedStrategy<(TopicFilter, SubscriptionOptions)> {
    let filter = if v5 {
        topic_filter().boxed()
    } else {
        // A 3.1.1 server reads `$share/...` as an ordinary filter.
        prop_oneof![4 => plain_topic_filter(), 1 => shared_topic_filter()].boxed()
    };
    let handling = select(
        &[
            RetainHandling::SendAtSubscribe,
            RetainHandling::SendAtSubscribeIfNew,
            RetainHandling::DoNotSend,
        ][..],
    );
    (filter, qos(), any::<bool>(), any::<bool>(), handling)
        .prop_map(move |(f, qos, nl, rap, rh)| {
            let options = if v5 {
                SubscriptionOptions {
                    qos,
                    no_local: nl && f.shared().is_none(),
                    retain_as_published: rap,
                    retain_handling: rh,
                }
            } else {
                SubscriptionOptions::qos(qos)
            };
            (f, options)
        })
        .boxed()
}

pub fn subscribe(v5: bool) -> BoxedStrategy<Subscribe> {
    (
        packet_id(),
        subscribe_properties(),
        vec(subscription(v5), 1..5),
    )
        .prop_map(move |(packet_id, properties, filters)| Subscribe {
            packet_id,
            properties: if v5 { properties } else { Default::default() },
            filters,
        })
        .boxed()
}

pub fn suback(v5: bool) -> BoxedStrategy<SubAck> {
    let codes = if v5 { SUBACK_CODES } else { SUBACK_V3_CODES };
    (packet_id(), ack_properties(), vec(reason(codes), 1..8))
        .prop_map(move |(packet_id, properties, reason_codes)| SubAck {
            packet_id,
            properties: if v5 { properties } else { Default::default() },
            reason_codes,
        })
        .boxed()
}

pub fn unsubscribe(v5: bool) -> BoxedStrategy<Unsubscribe> {
    let filter = if v5 {
        topic_filter().boxed()
    } else {
        plain_topic_filter().boxed()
    };
    (packet_id(), unsubscribe_properties(), vec(filter, 1..5))
        .prop_map(move |(packet_id, properties, filters)| Unsubscribe {
            packet_id,
            properties: if v5 { properties } else { Default::default() },
            filters,
        })
        .boxed()
}

/// An UNSUBACK: v5 has one reason code per filter, 3.1.1 none.
pub fn unsuback(v5: bool) -> BoxedStrategy<UnsubAck> {
    (
        packet_id(),
        ack_properties(),
        vec(reason(UNSUBACK_CODES), 1..8),
    )
        .prop_map(move |(packet_id, properties, reason_codes)| {
            if v5 {
                UnsubAck {
                    packet_id,
                    properties,
                    reason_codes,
                }
            } else {
                UnsubAck {
                    packet_id,
                    properties: Default::default(),
                    reason_codes: Vec::new(),
                }
            }
        })
        .boxed()
}

pub fn disconnect(v5: bool) -> BoxedStrategy<Disconnect> {
    if !v5 {
        return Just(Disconnect::default()).boxed();
    }
    (reason(DISCONNECT_CODES), disconnect_properties())
        .prop_map(|(reason_code, properties)| Disconnect {
            reason_code,
            properties: properties.into(),
        })
        .boxed()
}

/// An AUTH: the bare Success, or a reason code with an Authentication Method.
pub fn auth() -> BoxedStrategy<Auth> {
    prop_oneof![
        1 => Just(Auth::default()),
        4 => (reason(AUTH_CODES), auth_properties()).prop_map(|(reason_code, properties)| {
            Auth {
                reason_code,
                properties: properties.into(),
            }
        }),
    ]
    .boxed()
}

/// Any packet `version` can carry, each type about equally likely.
pub fn packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    packet_of_types(version, true)
}

/// Any packet `version` can carry but PINGREQ and PINGRESP, which are a fixed header alone.
pub fn packet_other_than_ping(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    packet_of_types(version, false)
}

fn packet_of_types(version: ProtocolVersion, ping: bool) -> BoxedStrategy<Packet> {
    let v5 = version.is_v5();
    let mut all = vec![
        connect(version)
            .prop_map(|c| Packet::Connect(Box::new(c)))
            .boxed(),
        connack(v5)
            .prop_map(move |mut c| {
                // The Connect Acknowledge Flags are reserved in MQTT 3.1.
                c.session_present &= version != ProtocolVersion::V3_1;
                Packet::ConnAck(Box::new(c))
            })
            .boxed(),
        publish(v5).prop_map(Packet::Publish).boxed(),
        pub_response(v5, PUBACK_CODES)
            .prop_map(Packet::PubAck)
            .boxed(),
        pub_response(v5, PUBACK_CODES)
            .prop_map(Packet::PubRec)
            .boxed(),
        pub_response(v5, PUBREL_CODES)
            .prop_map(Packet::PubRel)
            .boxed(),
        pub_response(v5, PUBREL_CODES)
            .prop_map(Packet::PubComp)
            .boxed(),
        subscribe(v5).prop_map(Packet::Subscribe).boxed(),
        suback(v5).prop_map(Packet::SubAck).boxed(),
        unsubscribe(v5).prop_map(Packet::Unsubscribe).boxed(),
        unsuback(v5).prop_map(Packet::UnsubAck).boxed(),
    ];
    if ping {
        all.push(Just(Packet::PingReq).boxed());
        all.push(Just(Packet::PingResp).boxed());
    }
    all.push(disconnect(v5).prop_map(Packet::Disconnect).boxed());
    if v5 {
        all.push(auth().prop_map(Packet::Auth).boxed());
    }
    proptest::strategy::Union::new(all).boxed()
}

/// A version and a packet it can carry.
pub fn versioned_packet() -> BoxedStrategy<(ProtocolVersion, Packet)> {
    version().prop_flat_map(|v| (Just(v), packet(v))).boxed()
}

/// A version and a few packets it can carry, as a peer might send them back to back.
pub fn versioned_packets(max: usize) -> BoxedStrategy<(ProtocolVersion, Vec<Packet>)> {
    version()
        .prop_flat_map(move |v| (Just(v), vec(packet(v), 1..=max)))
        .boxed()
}

/// The length of the fixed header at the start of an encoded packet (read here from the
/// bytes, independently of the codec).
pub fn fixed_header_len(encoded: &[u8]) -> usize {
    1 + encoded[1..].iter().position(|b| b & 0x80 == 0).unwrap() + 1
}

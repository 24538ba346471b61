//! Property: encoding then decoding is the identity, for every packet type of MQTT 3.1,
//! 3.1.1 and 5.0; and what 3.1.1 cannot carry is an `EncodeError`, never bytes.

mod strategies;

use std::fmt::Debug;

use mqtt_codec::{
    AckProperties, Bytes, BytesMut, ConnAckProperties, ConnectProperties, DecodeContext,
    DisconnectProperties, EncodeError, Packet, PacketRef, PacketType, ProtocolVersion, PubResponse,
    Publish, PublishProperties, QoS, ReasonCode, RetainHandling, SubscribeProperties, TopicName,
    UnsubscribeProperties, UserProperty, Will, WillProperties,
};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use strategies::*;

/// Encodes `p` for `version` and checks that the length promised is the length written.
fn encode(p: &Packet, version: ProtocolVersion) -> Bytes {
    let len = p.encoded_len(version).unwrap();
    let mut buf = BytesMut::new();
    p.encode(version, &mut buf).unwrap();
    assert_eq!(buf.len(), len, "encoded_len differs from the bytes written");
    assert_eq!(p.to_bytes(version).unwrap(), buf);
    buf.freeze()
}

proptest! {
    #![proptest_config(config(512))]

    /// Every packet decodes to itself: from a stream buffer, exactly, and (a CONNECT) on a
    /// connection that has not chosen its version yet.
    #[test]
    fn encode_then_decode_is_identity((version, packet) in versioned_packet()) {
        let wire = encode(&packet, version);
        let cx = DecodeContext::new(version);

        prop_assert_eq!(&Packet::decode_exact(wire.clone(), &cx).unwrap(), &packet);

        let mut stream = BytesMut::from(&wire[..]);
        stream.extend_from_slice(b"\x30"); // the start of the next packet stays behind
        prop_assert_eq!(Packet::decode(&mut stream, &cx).unwrap(), Some(packet.clone()));
        prop_assert_eq!(&stream[..], b"\x30");

        if let Packet::Connect(_) = packet {
            let fresh = DecodeContext::awaiting_connect();
            prop_assert_eq!(&Packet::decode_exact(wire.clone(), &fresh).unwrap(), &packet);
        }

        // Borrowed: a PUBLISH as a view over `stream`'s bytes, the rest owned.
        let mut stream = wire.to_vec();
        stream.push(0x30);
        let (view, len) = PacketRef::decode(&stream, &cx).unwrap().unwrap();
        prop_assert_eq!(len, wire.len());
        prop_assert_eq!(view.packet_type(), packet.packet_type());
        if let (PacketRef::Publish(v), Packet::Publish(p)) = (&view, &packet) {
            prop_assert_eq!(v.topic, p.topic.as_str());
            prop_assert_eq!(v.payload, &p.payload[..]);
        }
        prop_assert_eq!(view.to_packet().unwrap(), packet);
    }

    /// `encode` checks the room it needs before it writes: one byte short is an error and
    /// the buffer is untouched.
    #[test]
    fn encode_into_a_buffer_one_byte_short_writes_nothing(
        (version, packet) in versioned_packet(),
    ) {
        let len = packet.encoded_len(version).unwrap();
        let mut exact = vec![0u8; len];
        packet.encode(version, &mut &mut exact[..]).unwrap();
        prop_assert_eq!(&exact[..], &encode(&packet, version)[..]);

        let mut short = vec![0u8; len - 1];
        let err = packet.encode(version, &mut &mut short[..]).unwrap_err();
        prop_assert_eq!(err, EncodeError::BufferTooSmall { needed: len, available: len - 1 });
        prop_assert!(short.iter().all(|&b| b == 0));
    }

    /// Every way `encode` can write gives the same bytes: in place, into a buffer's spare
    /// room in one piece (after what it holds already); and, when the room is split (a
    /// chain of two slices, cut anywhere), staged on the stack or field by field.
    #[test]
    fn encode_writes_the_same_bytes_whatever_the_buffer(
        (version, packet) in versioned_packet(),
        cut in any::<Index>(),
    ) {
        let want = encode(&packet, version);
        let len = want.len();

        let mut after = BytesMut::with_capacity(3 + len);
        after.extend_from_slice(b"abc");
        packet.encode(version, &mut after).unwrap();
        prop_assert_eq!(&after[..3], b"abc");
        prop_assert_eq!(&after[3..], &want[..]);

        let mut vec = Vec::new();
        packet.encode(version, &mut vec).unwrap();
        prop_assert_eq!(&vec[..], &want[..]);

        let cut = cut.index(len);
        let (mut a, mut b) = (vec![0u8; cut], vec![0u8; len - cut]);
        let mut chain = bytes::BufMut::chain_mut(&mut a[..], &mut b[..]);
        packet.encode(version, &mut chain).unwrap();
        prop_assert_eq!(&a[..], &want[..cut]);
        prop_assert_eq!(&b[..], &want[cut..]);

        if let Packet::Publish(publish) = &packet {
            let head_len = len - publish.payload.len();
            let mut head = vec![0u8; head_len];
            publish.encode_head(version, &mut &mut head[..]).unwrap();
            prop_assert_eq!(&head[..], &want[..head_len]);
            let (mut a, mut b) = (vec![0u8; cut.min(head_len)], vec![0u8; head_len - cut.min(head_len)]);
            let mut chain = bytes::BufMut::chain_mut(&mut a[..], &mut b[..]);
            publish.encode_head(version, &mut chain).unwrap();
            prop_assert_eq!([a, b].concat(), &want[..head_len]);
        }
    }

    /// `Publish::encode_head` writes everything before the payload: head then payload is
    /// the packet `encode` writes.
    #[test]
    fn publish_head_then_payload_is_the_whole_packet(
        (version, publish) in version().prop_flat_map(|v| (Just(v), publish(v.is_v5()))),
    ) {
        let mut head = BytesMut::new();
        publish.encode_head(version, &mut head).unwrap();
        head.extend_from_slice(&publish.payload);
        prop_assert_eq!(head.freeze(), encode(&Packet::Publish(publish), version));
    }

    /// A v5 packet either fits MQTT 3.1.1 (and then round-trips there too) or encoding it
    /// for 3.1.1 fails before a byte is written. Whether it fits is decided here from the
    /// specification: properties, reason codes other than 3.1.1's, v5 subscription
    /// options, an empty topic with a Topic Alias, a password without a user name
    /// ([MQTT-3.1.2-22]) and AUTH exist only in v5.
    #[test]
    fn v5_only_content_is_an_encode_error_for_3_1_1(mut packet in packet(ProtocolVersion::V5)) {
        if let Packet::Connect(c) = &mut packet {
            c.protocol = ProtocolVersion::V3_1_1;
        }
        let v3 = ProtocolVersion::V3_1_1;
        let mut buf = BytesMut::new();
        let result = packet.encode(v3, &mut buf);
        if needs_v5(&packet) {
            prop_assert!(result.is_err(), "encoded for 3.1.1: {:?}", packet);
            prop_assert!(buf.is_empty());
            prop_assert!(packet.encoded_len(v3).is_err());
        } else {
            prop_assert!(result.is_ok(), "{:?} for {:?}", result, packet);
            let got = Packet::decode_exact(buf.freeze(), &DecodeContext::new(v3)).unwrap();
            prop_assert_eq!(got, packet);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A 3.1.1 packet given exactly one thing that only MQTT 5.0 has: encoding it for
    /// 3.1.1 is an error and writes nothing (never a silent drop), while MQTT 5.0 carries
    /// it and gets it back.
    #[test]
    fn one_v5_only_field_is_an_encode_error_for_3_1_1((packet, what) in with_one_v5_feature()) {
        let v3 = ProtocolVersion::V3_1_1;
        let mut buf = BytesMut::new();
        let result = packet.encode(v3, &mut buf);
        prop_assert!(result.is_err(), "{} encoded for 3.1.1: {:?}", what, packet);
        prop_assert!(buf.is_empty());
        prop_assert!(packet.encoded_len(v3).is_err());

        let mut packet = packet;
        if let Packet::Connect(c) = &mut packet {
            c.protocol = ProtocolVersion::V5;
        }
        let wire = encode(&packet, ProtocolVersion::V5);
        let cx = DecodeContext::new(ProtocolVersion::V5);
        prop_assert_eq!(Packet::decode_exact(wire, &cx).unwrap(), packet);
    }
}

/// A 3.1.1 packet (or an AUTH, which 3.1.1 lacks) with one v5-only field set, and what
/// that field is.
fn with_one_v5_feature() -> BoxedStrategy<(Packet, &'static str)> {
    prop_oneof![
        8 => packet_other_than_ping(ProtocolVersion::V3_1_1).prop_flat_map(|p| add_v5_feature(&p)),
        1 => auth().prop_map(|a| (Packet::Auth(a), "AUTH")),
    ]
    .boxed()
}

/// `base` changed by `f` with a value from `values`.
fn edit<T: Debug + Clone + 'static>(
    base: &Packet,
    what: &'static str,
    values: impl Strategy<Value = T> + 'static,
    f: fn(&mut Packet, T),
) -> BoxedStrategy<(Packet, &'static str)> {
    let base = base.clone();
    values
        .prop_map(move |v| {
            let mut p = base.clone();
            f(&mut p, v);
            (p, what)
        })
        .boxed()
}

/// Properties from `s` (each present or not at random), never none: a draw without any
/// becomes `with_user_property` of one user property. Drawn, not filtered, so that long
/// runs reject nothing.
fn non_empty<T: Default + PartialEq + Debug + Clone + 'static>(
    s: BoxedStrategy<T>,
    with_user_property: fn(UserProperty) -> T,
) -> impl Strategy<Value = T> {
    (s, (mqtt_string(), mqtt_string())).prop_map(move |(v, user_property)| {
        if v == T::default() {
            with_user_property(user_property)
        } else {
            v
        }
    })
}

/// Reason codes of `codes` that 3.1.1 (which knows `v3`) cannot express.
fn v5_only_code(codes: &[u8], v3: &[u8]) -> impl Strategy<Value = ReasonCode> + use<> {
    let only: Vec<u8> = codes.iter().copied().filter(|c| !v3.contains(c)).collect();
    select(only).prop_map(ReasonCode)
}

fn pub_response(p: &mut Packet) -> &mut PubResponse {
    match p {
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => r,
        _ => unreachable!(),
    }
}

fn add_v5_feature(p: &Packet) -> BoxedStrategy<(Packet, &'static str)> {
    match p {
        Packet::Connect(_) => prop_oneof![
            edit(
                p,
                "CONNECT properties",
                non_empty(some_connect_properties(), |up| ConnectProperties {
                    user_properties: vec![up].into(),
                    ..Default::default()
                }),
                |p, v| {
                    if let Packet::Connect(c) = p {
                        c.properties = v;
                    }
                }
            ),
            edit(
                p,
                "Will properties",
                (
                    non_empty(some_will_properties(), |up| WillProperties {
                        user_properties: vec![up].into(),
                        ..Default::default()
                    }),
                    topic_name()
                ),
                |p, (v, topic)| {
                    if let Packet::Connect(c) = p {
                        let will = c.will.get_or_insert(Will {
                            topic,
                            payload: Bytes::new(),
                            qos: QoS::AtMostOnce,
                            retain: false,
                            properties: Default::default(),
                        });
                        will.properties = v;
                    }
                }
            ),
            // [MQTT-3.1.2-22]
            edit(p, "a password without a user name", binary(), |p, v| {
                if let Packet::Connect(c) = p {
                    c.username = None;
                    c.password = Some(v);
                }
            }),
        ]
        .boxed(),
        Packet::ConnAck(_) => prop_oneof![
            edit(
                p,
                "CONNACK properties",
                non_empty(some_connack_properties(), |up| ConnAckProperties {
                    user_properties: vec![up].into(),
                    ..Default::default()
                }),
                |p, v| {
                    if let Packet::ConnAck(c) = p {
                        c.properties = v;
                    }
                }
            ),
            edit(
                p,
                "a v5 Connect Reason Code",
                v5_only_code(CONNACK_CODES, CONNACK_V3_CODES),
                |p, v| {
                    if let Packet::ConnAck(c) = p {
                        c.reason_code = v;
                        c.session_present = false;
                    }
                }
            ),
        ]
        .boxed(),
        Packet::Publish(_) => prop_oneof![
            edit(
                p,
                "PUBLISH properties",
                non_empty(some_publish_properties(), |up| PublishProperties {
                    user_properties: vec![up].into(),
                    ..Default::default()
                }),
                |p, v| {
                    if let Packet::Publish(m) = p {
                        m.properties = v.into();
                    }
                }
            ),
            edit(p, "an empty topic with a Topic Alias", nz16(), |p, v| {
                if let Packet::Publish(m) = p {
                    m.topic = TopicName::default();
                    m.properties.topic_alias = Some(v);
                }
            }),
        ]
        .boxed(),
        Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => {
            let codes = match p {
                Packet::PubAck(_) | Packet::PubRec(_) => PUBACK_CODES,
                _ => PUBREL_CODES,
            };
            prop_oneof![
                edit(
                    p,
                    "acknowledgement properties",
                    non_empty(some_ack_properties(), |up| AckProperties {
                        user_properties: vec![up].into(),
                        ..Default::default()
                    }),
                    |p, v| {
                        pub_response(p).properties = v;
                    }
                ),
                edit(p, "a reason code", v5_only_code(codes, &[0]), |p, v| {
                    pub_response(p).reason_code = v;
                }),
            ]
            .boxed()
        }
        Packet::Subscribe(_) => {
            let option = (any::<Index>(), 0..4u8);
            prop_oneof![
                edit(
                    p,
                    "SUBSCRIBE properties",
                    non_empty(some_subscribe_properties(), |up| SubscribeProperties {
                        user_properties: vec![up].into(),
                        ..Default::default()
                    }),
                    |p, v| {
                        if let Packet::Subscribe(s) = p {
                            s.properties = v;
                        }
                    }
                ),
                edit(p, "a v5 subscription option", option, |p, (i, which)| {
                    if let Packet::Subscribe(s) = p {
                        let i = i.index(s.filters.len());
                        let (filter, o) = &mut s.filters[i];
                        match which {
                            // [MQTT-3.8.3-4]: No Local only on a non-shared filter
                            0 if filter.shared().is_none() => o.no_local = true,
                            0 | 1 => o.retain_as_published = true,
                            2 => o.retain_handling = RetainHandling::SendAtSubscribeIfNew,
                            _ => o.retain_handling = RetainHandling::DoNotSend,
                        }
                    }
                }),
            ]
            .boxed()
        }
        Packet::SubAck(_) => prop_oneof![
            edit(
                p,
                "SUBACK properties",
                non_empty(some_ack_properties(), |up| AckProperties {
                    user_properties: vec![up].into(),
                    ..Default::default()
                }),
                |p, v| {
                    if let Packet::SubAck(s) = p {
                        s.properties = v;
                    }
                }
            ),
            edit(
                p,
                "a v5 SUBACK reason code",
                (any::<Index>(), v5_only_code(SUBACK_CODES, SUBACK_V3_CODES)),
                |p, (i, v)| {
                    if let Packet::SubAck(s) = p {
                        let i = i.index(s.reason_codes.len());
                        s.reason_codes[i] = v;
                    }
                }
            ),
        ]
        .boxed(),
        Packet::Unsubscribe(_) => edit(
            p,
            "UNSUBSCRIBE properties",
            non_empty(some_unsubscribe_properties(), |up| UnsubscribeProperties {
                user_properties: vec![up].into(),
            }),
            |p, v| {
                if let Packet::Unsubscribe(u) = p {
                    u.properties = v;
                }
            },
        ),
        Packet::UnsubAck(_) => prop_oneof![
            edit(
                p,
                "UNSUBACK properties",
                non_empty(some_ack_properties(), |up| AckProperties {
                    user_properties: vec![up].into(),
                    ..Default::default()
                }),
                |p, v| {
                    if let Packet::UnsubAck(u) = p {
                        u.properties = v;
                        u.reason_codes = vec![ReasonCode::SUCCESS]; // v5 needs one per filter
                    }
                }
            ),
            edit(
                p,
                "UNSUBACK reason codes",
                proptest::collection::vec(select(UNSUBACK_CODES), 1..4),
                |p, v| {
                    if let Packet::UnsubAck(u) = p {
                        u.reason_codes = v.into_iter().map(ReasonCode).collect();
                    }
                }
            ),
        ]
        .boxed(),
        Packet::Disconnect(_) => prop_oneof![
            edit(
                p,
                "DISCONNECT properties",
                non_empty(some_disconnect_properties(), |up| DisconnectProperties {
                    user_properties: vec![up].into(),
                    ..Default::default()
                }),
                |p, v| {
                    if let Packet::Disconnect(d) = p {
                        d.properties = v.into();
                    }
                }
            ),
            edit(
                p,
                "a Disconnect Reason Code",
                v5_only_code(DISCONNECT_CODES, &[0]),
                |p, v| {
                    if let Packet::Disconnect(d) = p {
                        d.reason_code = v;
                    }
                }
            ),
        ]
        .boxed(),
        Packet::PingReq | Packet::PingResp | Packet::Auth(_) => unreachable!(),
    }
}

/// Whether `p` holds something only MQTT 5.0 can carry.
fn needs_v5(p: &Packet) -> bool {
    const V3_CONNACK: &[u8] = CONNACK_V3_CODES;
    match p {
        Packet::Connect(c) => {
            !c.properties.is_empty()
                || c.will.as_ref().is_some_and(|w| !w.properties.is_empty())
                || (c.password.is_some() && c.username.is_none())
        }
        Packet::ConnAck(c) => !c.properties.is_empty() || !V3_CONNACK.contains(&c.reason_code.0),
        Packet::Publish(p) => !p.properties.is_empty() || p.topic.is_empty(),
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            r.reason_code != ReasonCode::SUCCESS || !r.properties.is_empty()
        }
        Packet::Subscribe(s) => {
            !s.properties.is_empty()
                || s.filters.iter().any(|(_, o)| {
                    o.no_local
                        || o.retain_as_published
                        || o.retain_handling != RetainHandling::SendAtSubscribe
                })
        }
        Packet::SubAck(s) => {
            !s.properties.is_empty()
                || s.reason_codes
                    .iter()
                    .any(|c| !SUBACK_V3_CODES.contains(&c.0))
        }
        Packet::Unsubscribe(u) => !u.properties.is_empty(),
        Packet::UnsubAck(u) => !u.properties.is_empty() || !u.reason_codes.is_empty(),
        Packet::PingReq | Packet::PingResp => false,
        Packet::Disconnect(d) => d.reason_code != ReasonCode::SUCCESS || !d.properties.is_empty(),
        Packet::Auth(_) => true,
    }
}

/// The reason code tables the strategies use (copied from the specification) are the ones
/// the codec enforces, for every one of the 256 values.
#[test]
fn reason_code_tables_match_allowed_in() {
    let tables = [
        (PacketType::ConnAck, CONNACK_CODES),
        (PacketType::PubAck, PUBACK_CODES),
        (PacketType::PubRec, PUBACK_CODES),
        (PacketType::PubRel, PUBREL_CODES),
        (PacketType::PubComp, PUBREL_CODES),
        (PacketType::SubAck, SUBACK_CODES),
        (PacketType::UnsubAck, UNSUBACK_CODES),
        (PacketType::Disconnect, DISCONNECT_CODES),
        (PacketType::Auth, AUTH_CODES),
    ];
    for (packet, table) in tables {
        for code in 0..=255u8 {
            assert_eq!(
                ReasonCode(code).allowed_in(packet),
                table.contains(&code),
                "{packet} and reason code 0x{code:02X}"
            );
        }
    }
}

/// Remaining lengths at the edges of the one-, two-, three- and four-byte variable byte
/// integer (section 1.5.5) encode to the length promised and decode back.
#[test]
fn remaining_length_boundaries_round_trip() {
    let topic = TopicName::new("a/b").unwrap();
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let head = Packet::Publish(Publish::new(topic.clone(), ""))
            .encoded_len(version)
            .unwrap()
            - 2;
        for edge in [127usize, 16_383, 2_097_151] {
            for remaining in [edge - 1, edge, edge + 1, edge + 2] {
                let publish = Publish::new(topic.clone(), vec![0xA5; remaining - head]);
                let packet = Packet::Publish(publish);
                let wire = encode(&packet, version);
                let header = fixed_header_len(&wire);
                assert_eq!(wire.len(), header + remaining);
                let var_int_len =
                    (edge.ilog2() as usize) / 7 + if remaining <= edge { 1 } else { 2 };
                let want_header = 1 + var_int_len;
                assert_eq!(header, want_header, "remaining length {remaining}");
                let cx = DecodeContext::new(version);
                assert_eq!(Packet::decode_exact(wire, &cx).unwrap(), packet);
            }
        }
    }
}

/// MQTT 3.1 has no Session Present: the CONNACK's flags byte is reserved there, so setting
/// it is an encode error under 3.1 and not under 3.1.1 (3.1.1 [MQTT-3.2.2-2]).
#[test]
fn session_present_is_not_in_mqtt_3_1() {
    let ack = Packet::ConnAck(Box::new(mqtt_codec::ConnAck {
        session_present: true,
        ..Default::default()
    }));
    assert_eq!(
        ack.to_bytes(ProtocolVersion::V3_1).unwrap_err(),
        EncodeError::NotInVersion {
            packet: PacketType::ConnAck,
            field: "Session Present",
            version: ProtocolVersion::V3_1,
        }
    );
    assert_eq!(
        &ack.to_bytes(ProtocolVersion::V3_1_1).unwrap()[..],
        [0x20, 2, 1, 0]
    );
    // Read back strictly too: Malformed under 3.1.
    let bytes = Bytes::from_static(&[0x20, 2, 1, 0]);
    let cx = DecodeContext::new(ProtocolVersion::V3_1);
    let err = Packet::decode_exact(bytes.clone(), &cx).unwrap_err();
    assert_eq!(err.reason_code(), mqtt_codec::ReasonCode::MALFORMED_PACKET);
    let cx = DecodeContext::new(ProtocolVersion::V3_1_1);
    assert!(Packet::decode_exact(bytes, &cx).is_ok());
}

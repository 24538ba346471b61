//! Property: encoding then decoding is the identity, for every packet type of MQTT 3.1,
//! 3.1.1 and 5.0; and what 3.1.1 cannot carry is an `EncodeError`, never bytes.

mod strategies;

use mqtt_codec::{
    Bytes, BytesMut, DecodeContext, EncodeError, Packet, PacketType, ProtocolVersion, Publish,
    ReasonCode, RetainHandling, TopicName,
};
use proptest::prelude::*;
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

//! Properties of decoding input a peer controls: arbitrary bytes, arbitrary bodies behind a
//! valid fixed header, and valid packets with random bytes changed never panic, under every
//! decode context; whatever decodes re-encodes to a packet that decodes equal; and a packet
//! larger than the Maximum Packet Size is refused from its fixed header alone.

mod strategies;

use mqtt_codec::{
    Bytes, BytesMut, DecodeContext, DecodeError, DecodeErrorKind, Decoded, Frame, MAX_PACKET_SIZE,
    MAX_VARIABLE_BYTE_INTEGER, Packet, PacketRef, PacketType, ProtocolVersion, ReasonCode,
    check_frame,
};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use strategies::*;

/// A decode context: no version yet (only CONNECT), 3.1, 3.1.1 or 5.0, with the protocol's
/// maximum packet size or a small one.
fn context() -> impl Strategy<Value = DecodeContext> {
    let version = select(
        &[
            None,
            Some(ProtocolVersion::V3_1),
            Some(ProtocolVersion::V3_1_1),
            Some(ProtocolVersion::V5),
        ][..],
    );
    let max = prop_oneof![
        2 => Just(MAX_PACKET_SIZE),
        1 => select(&[0u32, 1, 2, 3, 4, 5, 8, 16, 64, 300][..]),
    ];
    (version, max).prop_map(|(version, max_packet_size)| DecodeContext {
        version,
        max_packet_size,
    })
}

/// The version a decoded packet was read in: a CONNECT's own, else the connection's.
fn version_of(p: &Packet, cx: &DecodeContext) -> ProtocolVersion {
    match p {
        Packet::Connect(c) => c.protocol,
        _ => cx
            .version
            .expect("only a CONNECT decodes before the version is known"),
    }
}

/// What every decode error must offer: one of the four reason codes a receiver sends,
/// a rule in words, and a message.
fn check_error(e: &DecodeError) {
    let code = e.reason_code();
    let expected = match e.kind() {
        DecodeErrorKind::Malformed => ReasonCode::MALFORMED_PACKET,
        DecodeErrorKind::ProtocolError => ReasonCode::PROTOCOL_ERROR,
        DecodeErrorKind::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
        DecodeErrorKind::UnsupportedProtocolVersion { .. } => {
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
        }
        other => panic!("unexpected error kind {other:?}"),
    };
    assert_eq!(code, expected);
    assert!(!e.rule().is_empty());
    assert!(!e.to_string().is_empty());
    if let Some(id) = e.rule_id() {
        assert!(id.starts_with("MQTT-"), "rule id {id:?}");
    }
}

/// A decoded packet re-encodes in its version, and those bytes decode to an equal packet.
fn check_reencodes(p: &Packet, cx: &DecodeContext) {
    let version = version_of(p, cx);
    let wire = p
        .to_bytes(version)
        .unwrap_or_else(|e| panic!("decoded packet does not re-encode: {e}: {p:?}"));
    let again = Packet::decode_exact(wire.freeze(), &DecodeContext::new(version))
        .unwrap_or_else(|e| panic!("re-encoded packet does not decode: {e}: {p:?}"));
    assert_eq!(&again, p);
}

/// Decodes `input` every way there is under `cx` and checks what each way promises.
fn decode_all_ways(input: &[u8], cx: &DecodeContext) {
    // The stream decoder: packets until it needs more bytes or fails.
    let mut buf = BytesMut::from(input);
    loop {
        let before = buf.clone();
        let frame = check_frame(&buf, cx);
        // The borrowing decoder runs the same checks: the same packet, the same error.
        let borrowed = PacketRef::decode(&before, cx)
            .map(|o| o.map(|(p, len)| (p.to_packet().expect("a decoded topic is valid"), len)));
        match Packet::decode_stream(&mut buf, cx) {
            Ok(Decoded::Packet(p)) => {
                let used = before.len() - buf.len();
                assert!(used as u64 <= u64::from(cx.max_packet_size));
                assert_eq!(&before[used..], &buf[..]);
                match frame {
                    Ok(Frame::Complete {
                        packet, total_len, ..
                    }) => {
                        assert_eq!(packet, p.packet_type());
                        assert_eq!(total_len, used);
                    }
                    other => panic!("decoded {p:?} but check_frame said {other:?}"),
                }
                assert_eq!(borrowed, Ok(Some((p.clone(), used))));
                check_reencodes(&p, cx);
            }
            Ok(Decoded::Incomplete { needed }) => {
                assert_eq!(borrowed, Ok(None));
                // Nothing consumed, and the answer is the one check_frame gives.
                assert_eq!(buf, before);
                assert!(needed > 0);
                assert_eq!(frame, Ok(Frame::Incomplete { needed }));
                break;
            }
            Err(e) => {
                check_error(&e);
                assert_eq!(borrowed, Err(e.clone()), "the borrowing decoder disagrees");
                if let Err(fe) = frame {
                    assert_eq!(fe, e, "check_frame and decode disagree");
                }
                break;
            }
        }
    }

    // The exact decoder: one whole packet or an error.
    match Packet::decode_exact(Bytes::copy_from_slice(input), cx) {
        Ok(p) => {
            // Exactly one whole packet: nothing missing, nothing left over.
            let whole = matches!(
                check_frame(input, cx),
                Ok(Frame::Complete { total_len, .. }) if total_len == input.len()
            );
            assert!(whole, "decode_exact accepted {input:02x?}");
            assert!(input.len() as u64 <= u64::from(cx.max_packet_size));
            check_reencodes(&p, cx);
        }
        Err(e) => check_error(&e),
    }
}

/// A first byte with a packet type and the flags it must carry (any flags for PUBLISH).
fn first_byte() -> impl Strategy<Value = u8> {
    (1u8..=15, 0u8..16).prop_map(|(t, publish_flags)| {
        let flags = match PacketType::from_nibble(t).unwrap().fixed_flags() {
            Some(f) => f,
            None => publish_flags,
        };
        (t << 4) | flags
    })
}

fn var_int(mut v: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v % 128) as u8;
        v /= 128;
        out.push(if v > 0 { b | 0x80 } else { b });
        if v == 0 {
            return out;
        }
    }
}

/// Body prefixes that lead the decoder past its first checks: CONNECT protocol names and
/// levels with random flags, and packet identifiers.
fn body_prefix() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        (select(&[3u8, 4, 5][..]), any::<u8>()).prop_map(|(level, flags)| {
            let name: &[u8] = if level == 3 {
                b"\0\x06MQIsdp"
            } else {
                b"\0\x04MQTT"
            };
            [name, &[level, flags & 0xFE, 0, 60]].concat()
        }),
        (1u16..).prop_map(|id| id.to_be_bytes().to_vec()),
    ]
}

/// One random change to a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    Set(Index, u8),
    Flip(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Mutation::Flip(i, bit)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<Index>().prop_map(Mutation::Remove),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Set(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Flip(i, bit) => {
            let i = i.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        Mutation::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
        Mutation::Remove(i) => {
            bytes.remove(i.index(bytes.len()));
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(
        input in proptest::collection::vec(any::<u8>(), 0..300),
        cx in context(),
    ) {
        decode_all_ways(&input, &cx);
    }

    /// A valid fixed header whose remaining length covers an arbitrary body.
    #[test]
    fn arbitrary_body_after_a_valid_fixed_header_never_panics(
        b0 in first_byte(),
        prefix in body_prefix(),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        trailing in proptest::collection::vec(any::<u8>(), 0..4),
        cx in context(),
    ) {
        let body = [prefix, body].concat();
        let mut input = vec![b0];
        input.extend(var_int(body.len() as u32));
        input.extend(&body);
        decode_all_ways(&input, &cx);
        input.extend(trailing);
        decode_all_ways(&input, &cx);
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Valid packets with a few random changes: decoding never panics, and what it accepts
    /// is a packet that round-trips.
    #[test]
    fn mutated_packets_never_panic(
        (version, packet) in versioned_packet(),
        mutations in proptest::collection::vec(mutation(), 1..4),
        cx in context(),
    ) {
        let mut wire = packet.to_bytes(version).unwrap().to_vec();
        for m in &mutations {
            apply(&mut wire, m);
        }
        decode_all_ways(&wire, &cx);
        decode_all_ways(&wire, &DecodeContext { version: Some(version), ..cx });
    }

    /// A packet larger than the receiver's maximum is refused when only its fixed header
    /// has arrived: the declared size is checked before the body is buffered
    /// ([MQTT-3.2.2-15]). At or under the maximum, the same bytes ask for exactly the rest.
    #[test]
    fn too_large_is_refused_from_the_fixed_header(
        (version, packet) in versioned_packet(),
        under in any::<Index>(),
    ) {
        let wire = packet.to_bytes(version).unwrap();
        let total = wire.len();
        let header = fixed_header_len(&wire);
        let cx = DecodeContext::new(version).with_max_packet_size(under.index(total) as u32);

        let mut head = BytesMut::from(&wire[..header]);
        let capacity = head.capacity();
        let err = Packet::decode(&mut head, &cx).unwrap_err();
        prop_assert_eq!(
            err.kind(),
            DecodeErrorKind::PacketTooLarge { size: total as u64, max: cx.max_packet_size }
        );
        prop_assert_eq!(err.packet(), Some(packet.packet_type()));
        prop_assert_eq!(err.reason_code(), ReasonCode::PACKET_TOO_LARGE);
        prop_assert_eq!(head.capacity(), capacity);

        // (A packet without a body is whole once its header is in.)
        for max in [total as u32, MAX_PACKET_SIZE].into_iter().filter(|_| total > header) {
            let cx = cx.with_max_packet_size(max);
            let mut head = BytesMut::from(&wire[..header]);
            prop_assert_eq!(
                Packet::decode_stream(&mut head, &cx).unwrap(),
                Decoded::Incomplete { needed: total - header }
            );
            prop_assert_eq!(&head[..], &wire[..header]);
        }
    }

    /// A remaining length padded to more bytes than it needs is Malformed (v5
    /// [MQTT-1.5.5-1], 3.1.1 section 2.2.3: the minimum number of bytes must be used),
    /// even though the packet after it is valid.
    #[test]
    fn remaining_length_not_in_shortest_form_is_malformed(
        (version, packet) in versioned_packet(),
        pad in any::<Index>(),
    ) {
        let wire = packet.to_bytes(version).unwrap();
        let header = fixed_header_len(&wire);
        let mut length = wire[1..header].to_vec();
        // 1 to 3 more bytes, up to the 4 a remaining length may take: the packets drawn
        // are under 2,097,152 bytes, so their remaining length takes at most 3.
        let pad = 1 + pad.index(4 - length.len());
        // Continuation bit on the last byte, then zero groups, the last without it.
        *length.last_mut().unwrap() |= 0x80;
        length.extend(std::iter::repeat_n(0x80, pad - 1));
        length.push(0x00);
        let padded = [&wire[..1], &length, &wire[header..]].concat();
        let cx = DecodeContext::new(version);
        let err = Packet::decode(&mut BytesMut::from(&padded[..]), &cx).unwrap_err();
        prop_assert_eq!(err.kind(), DecodeErrorKind::Malformed);
        if version.is_v5() {
            prop_assert_eq!(err.rule_id(), Some("MQTT-1.5.5-1"));
        }
    }

    /// The same for any size a fixed header can declare, up to 268,435,455 bytes of body:
    /// the decoder answers from the header and reserves nothing.
    #[test]
    fn declared_size_is_checked_before_anything_is_buffered(
        b0 in first_byte(),
        remaining in prop_oneof![0..1000u32, 0..=MAX_VARIABLE_BYTE_INTEGER],
        max in prop_oneof![0..2000u32, 0..=MAX_PACKET_SIZE],
    ) {
        let cx = DecodeContext::new(ProtocolVersion::V5).with_max_packet_size(max);
        let header = [vec![b0], var_int(remaining)].concat();
        let total = header.len() as u64 + u64::from(remaining);
        let mut buf = BytesMut::from(&header[..]);
        let capacity = buf.capacity();
        let result = Packet::decode_stream(&mut buf, &cx);
        if total > u64::from(max) {
            let err = result.unwrap_err();
            prop_assert_eq!(err.kind(), DecodeErrorKind::PacketTooLarge { size: total, max });
            prop_assert_eq!(buf.capacity(), capacity);
        } else if remaining == 0 {
            // PINGREQ, PINGRESP, DISCONNECT, AUTH and PUBLISH-without-topic land here:
            // whatever the answer, it is not "need more".
            let incomplete = matches!(result, Ok(Decoded::Incomplete { .. }));
            prop_assert!(!incomplete, "{:?}", result);
        } else {
            prop_assert_eq!(result.unwrap(), Decoded::Incomplete { needed: remaining as usize });
            prop_assert_eq!(buf.capacity(), capacity);
        }
    }
}

/// Acknowledgements and PINGs take a short path in the stream and borrowing decoders,
/// while `decode_exact` reads every body with the general reader. Every packet type with
/// every body of up to three bytes (packet identifier 0 among them, [MQTT-2.3.1-1] and
/// [MQTT-2.2.1-3]) decodes to the same packet, or fails with the same error, on every
/// path, in every version.
#[test]
fn short_bodies_decode_alike_on_every_path() {
    const BYTES: [u8; 5] = [0x00, 0x01, 0x02, 0x80, 0xFF];
    let mut decoded = 0;
    for version in [
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ] {
        let cx = DecodeContext::new(version);
        for t in 1u8..=15 {
            let Some(packet) = PacketType::from_nibble(t) else {
                continue;
            };
            let first = (t << 4) | packet.fixed_flags().unwrap_or(0);
            for len in 0..=3u32 {
                for code in 0..BYTES.len().pow(len) {
                    let mut wire = vec![first, len as u8];
                    let mut c = code;
                    for _ in 0..len {
                        wire.push(BYTES[c % BYTES.len()]);
                        c /= BYTES.len();
                    }
                    let exact = Packet::decode_exact(Bytes::copy_from_slice(&wire), &cx);
                    let mut buf = BytesMut::from(&wire[..]);
                    let stream = match Packet::decode_stream(&mut buf, &cx) {
                        Ok(Decoded::Packet(p)) => Ok(p),
                        Ok(Decoded::Incomplete { needed }) => panic!("{wire:02x?}: {needed}"),
                        Err(e) => Err(e),
                    };
                    assert_eq!(stream, exact, "{version:?} {wire:02x?}");
                    let plain = Packet::decode(&mut BytesMut::from(&wire[..]), &cx)
                        .map(|p| p.expect("a whole packet"));
                    assert_eq!(plain, exact, "{version:?} {wire:02x?}");
                    let borrowed = PacketRef::decode(&wire, &cx).map(|p| {
                        let (p, used) = p.expect("a whole packet");
                        assert_eq!(used, wire.len());
                        p.to_packet().expect("valid")
                    });
                    assert_eq!(borrowed, exact, "{version:?} {wire:02x?}");
                    decoded += usize::from(exact.is_ok());
                }
            }
        }
    }
    // Plain acknowledgements and PINGs at least, in all three versions.
    assert!(decoded > 3 * (4 * 24 + 2), "{decoded}");
}

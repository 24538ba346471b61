//! Decodes arbitrary bytes as a peer's stream and as one whole packet, on a fresh
//! connection (only CONNECT) and on MQTT 3.1, 3.1.1 and 5.0 connections, with the protocol's
//! maximum packet size and a small one.
//!
//! Checks, besides "no panic": "need more" consumes nothing; check_frame agrees with the
//! decoder; no packet exceeds the maximum size; every decode error carries one of the four
//! reason codes a receiver sends; every packet that decodes re-encodes in its version
//! to bytes that decode to an equal packet; and the borrowing decoder (`PacketRef`) gives
//! the same packet, or the same error, as the owned one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_codec::{
    Bytes, BytesMut, DecodeContext, DecodeError, Decoded, Frame, MAX_PACKET_SIZE, Packet,
    PacketRef, ProtocolVersion, ReasonCode, check_frame,
};

const VERSIONS: [Option<ProtocolVersion>; 4] = [
    None,
    Some(ProtocolVersion::V3_1),
    Some(ProtocolVersion::V3_1_1),
    Some(ProtocolVersion::V5),
];

fuzz_target!(|data: &[u8]| {
    for version in VERSIONS {
        for max_packet_size in [MAX_PACKET_SIZE, 64] {
            let cx = DecodeContext {
                version,
                max_packet_size,
            };
            decode_stream(data, &cx);
            decode_exact(data, &cx);
        }
    }
});

fn decode_stream(data: &[u8], cx: &DecodeContext) {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.clone();
        let frame = check_frame(&buf, cx);
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
                assert_eq!(borrowed, Ok(Some((p.clone(), used))), "PacketRef disagrees");
                check_reencodes(&p, cx);
            }
            Ok(Decoded::Incomplete { needed }) => {
                assert_eq!(borrowed, Ok(None), "PacketRef disagrees");
                assert_eq!(buf, before, "Incomplete consumed bytes");
                assert!(needed > 0);
                assert_eq!(frame, Ok(Frame::Incomplete { needed }));
                return;
            }
            Err(e) => {
                check_error(&e);
                assert_eq!(borrowed, Err(e.clone()), "PacketRef disagrees");
                if let Err(fe) = frame {
                    assert_eq!(fe, e, "check_frame and decode disagree");
                }
                return;
            }
        }
    }
}

fn decode_exact(data: &[u8], cx: &DecodeContext) {
    match Packet::decode_exact(Bytes::copy_from_slice(data), cx) {
        Ok(p) => {
            // Exactly one whole packet: nothing missing, nothing left over.
            let whole = matches!(
                check_frame(data, cx),
                Ok(Frame::Complete { total_len, .. }) if total_len == data.len()
            );
            assert!(whole, "decode_exact accepted {data:02x?}");
            assert!(data.len() as u64 <= u64::from(cx.max_packet_size));
            check_reencodes(&p, cx);
        }
        Err(e) => check_error(&e),
    }
}

fn check_error(e: &DecodeError) {
    let code = e.reason_code();
    assert!(
        [
            ReasonCode::MALFORMED_PACKET,
            ReasonCode::PROTOCOL_ERROR,
            ReasonCode::PACKET_TOO_LARGE,
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        ]
        .contains(&code),
        "{e}"
    );
    assert!(!e.to_string().is_empty());
}

/// A decoded packet re-encodes in the version it was read in (a CONNECT's own, else the
/// connection's), as many bytes as `encoded_len` says, and those decode to an equal packet.
fn check_reencodes(p: &Packet, cx: &DecodeContext) {
    let version = match p {
        Packet::Connect(c) => c.protocol,
        _ => cx
            .version
            .expect("only a CONNECT decodes before the version is known"),
    };
    let wire = p
        .to_bytes(version)
        .unwrap_or_else(|e| panic!("decoded packet does not re-encode: {e}: {p:?}"));
    assert_eq!(Ok(wire.len()), p.encoded_len(version));
    let again = Packet::decode_exact(wire.freeze(), &DecodeContext::new(version))
        .unwrap_or_else(|e| panic!("re-encoded packet does not decode: {e}: {p:?}"));
    assert_eq!(&again, p);
}

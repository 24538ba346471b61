//! This workspace's `mqtt-codec`.

use bytes::{Bytes, BytesMut};
use mqtt_codec::{DecodeContext, Packet, PacketRef, ProtocolVersion};

use crate::Codec;

/// `mqtt-codec`: `Packet::decode` in a loop over a `BytesMut`, `Packet::encode` into a
/// reused `BytesMut`.
pub struct Ours;

fn decode_all(
    input: &mut BytesMut,
    version: ProtocolVersion,
    sink: &mut dyn FnMut(Packet),
) -> Result<usize, String> {
    let cx = DecodeContext::new(version);
    let mut n = 0;
    while !input.is_empty() {
        match Packet::decode(input, &cx) {
            Ok(Some(p)) => sink(p),
            Ok(None) => return Err("buffer ends inside a packet".into()),
            Err(e) => return Err(e.to_string()),
        }
        n += 1;
    }
    Ok(n)
}

impl Codec for Ours {
    const NAME: &'static str = "mqtt-codec (ours)";
    type Packet<'a> = Packet;
    type Input = BytesMut;
    type EncodeInput = ();
    type Output = BytesMut;

    fn unsupported(_: ProtocolVersion) -> Option<&'static str> {
        None
    }

    fn input(wire: &Bytes) -> BytesMut {
        BytesMut::from(&wire[..])
    }

    fn decode_all(
        input: &mut BytesMut,
        version: ProtocolVersion,
        sink: &mut dyn FnMut(Packet),
    ) -> Result<usize, String> {
        decode_all(input, version, sink)
    }

    fn encode_input(_: &[Packet]) {}

    fn output(capacity: usize) -> BytesMut {
        BytesMut::with_capacity(capacity)
    }

    fn encode_all(
        packets: &[Packet],
        _: &mut (),
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), String> {
        out.clear();
        for p in packets {
            p.encode(version, out).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn output_bytes(out: &BytesMut) -> Vec<u8> {
        out.to_vec()
    }
}

/// `mqtt-codec`'s borrowing decoder: `PacketRef::decode` in a loop over a byte slice, a
/// PUBLISH as a view over it and every other packet owned, as a router that reads each
/// packet without keeping it would drive it. Decode only: it encodes as [`Ours`] does.
pub struct OursBorrowed;

impl Codec for OursBorrowed {
    const NAME: &'static str = "mqtt-codec (ours), borrowed";
    const ENCODES: bool = false;
    type Packet<'a> = PacketRef<'a>;
    type Input = Bytes;
    type EncodeInput = ();
    type Output = ();

    fn unsupported(_: ProtocolVersion) -> Option<&'static str> {
        None
    }

    fn input(wire: &Bytes) -> Bytes {
        // Decoding reads a slice and never writes it, so the input needs no copy.
        wire.clone()
    }

    fn decode_all<'a>(
        input: &'a mut Bytes,
        version: ProtocolVersion,
        sink: &mut dyn FnMut(PacketRef<'a>),
    ) -> Result<usize, String> {
        let cx = DecodeContext::new(version);
        let mut rest: &'a [u8] = input;
        let mut n = 0;
        while !rest.is_empty() {
            match PacketRef::decode(rest, &cx) {
                Ok(Some((p, len))) => {
                    sink(p);
                    rest = &rest[len..];
                }
                Ok(None) => return Err("buffer ends inside a packet".into()),
                Err(e) => return Err(e.to_string()),
            }
            n += 1;
        }
        Ok(n)
    }

    fn encode_input(_: &[PacketRef<'_>]) {}

    fn output(_: usize) {}

    fn encode_all(
        _: &[PacketRef<'_>],
        _: &mut (),
        _: ProtocolVersion,
        _: &mut (),
    ) -> Result<(), String> {
        Err("decode only".into())
    }

    fn output_bytes(_: &()) -> Vec<u8> {
        Vec::new()
    }
}

/// `mqtt-codec` encoding for a vectored write: `Publish::encode_head` writes the header
/// into the buffer and the payload is passed on by reference, never copied.
pub struct OursVectored;

/// Headers in one buffer and, for each PUBLISH, where its header ends and which packet's
/// payload follows: what a sender hands to a vectored write, the payloads by reference.
pub struct Segments {
    heads: BytesMut,
    payloads: Vec<(usize, usize)>,
    /// Only for checking: the payloads themselves (the timed runs leave this empty).
    kept: Option<Vec<Bytes>>,
}

impl Codec for OursVectored {
    const NAME: &'static str = "mqtt-codec (ours), encode_head + payload";
    type Packet<'a> = Packet;
    type Input = BytesMut;
    type EncodeInput = ();
    type Output = Segments;

    fn unsupported(_: ProtocolVersion) -> Option<&'static str> {
        None
    }

    fn input(wire: &Bytes) -> BytesMut {
        BytesMut::from(&wire[..])
    }

    fn decode_all(
        input: &mut BytesMut,
        version: ProtocolVersion,
        sink: &mut dyn FnMut(Packet),
    ) -> Result<usize, String> {
        decode_all(input, version, sink)
    }

    fn encode_input(_: &[Packet]) {}

    fn output(capacity: usize) -> Segments {
        Segments {
            heads: BytesMut::with_capacity(capacity.min(64 * 1024)),
            payloads: Vec::with_capacity(1024),
            kept: None,
        }
    }

    fn checked_output(capacity: usize) -> Segments {
        Segments {
            kept: Some(Vec::new()),
            ..Self::output(capacity)
        }
    }

    fn encode_all(
        packets: &[Packet],
        _: &mut (),
        version: ProtocolVersion,
        out: &mut Segments,
    ) -> Result<(), String> {
        out.heads.clear();
        out.payloads.clear();
        for (i, p) in packets.iter().enumerate() {
            match p {
                Packet::Publish(p) => {
                    p.encode_head(version, &mut out.heads)
                        .map_err(|e| e.to_string())?;
                    out.payloads.push((out.heads.len(), i));
                    if let Some(kept) = &mut out.kept {
                        kept.push(p.payload.clone());
                    }
                }
                p => p
                    .encode(version, &mut out.heads)
                    .map_err(|e| e.to_string())?,
            }
        }
        Ok(())
    }

    fn output_bytes(out: &Segments) -> Vec<u8> {
        let mut v = Vec::new();
        let mut at = 0;
        let kept = out.kept.as_deref().unwrap_or_default();
        for ((end, _), payload) in out.payloads.iter().zip(kept) {
            v.extend_from_slice(&out.heads[at..*end]);
            v.extend_from_slice(payload);
            at = *end;
        }
        v.extend_from_slice(&out.heads[at..]);
        v
    }
}

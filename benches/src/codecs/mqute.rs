//! mqute-codec (MQTT 3.1, 3.1.1 and 5.0).

use bytes::{Bytes, BytesMut};
use mqtt_codec::ProtocolVersion;
use mqute_codec::codec::PacketCodec;
use mqute_codec::protocol::{v4, v5};

use crate::Codec;

/// mqute-codec: `PacketCodec::try_decode` splits a frame off the `BytesMut`, then
/// `Packet::decode` of the version's module; `Packet::encode` into a reused `BytesMut`.
pub struct Mqute;

/// A packet of either version.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // as the codec returns them
pub enum MqutePacket {
    /// MQTT 3.1.1.
    V4(v4::Packet),
    /// MQTT 5.0.
    V5(v5::Packet),
}

impl Codec for Mqute {
    const NAME: &'static str = "mqute-codec 0.4";
    type Packet<'a> = MqutePacket;
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
        sink: &mut dyn FnMut(MqutePacket),
    ) -> Result<usize, String> {
        let codec = PacketCodec::new(None, None);
        let mut n = 0;
        while !input.is_empty() {
            let raw = codec.try_decode(input).map_err(|e| e.to_string())?;
            let p = if version.is_v5() {
                MqutePacket::V5(v5::Packet::decode(raw).map_err(|e| e.to_string())?)
            } else {
                MqutePacket::V4(v4::Packet::decode(raw).map_err(|e| e.to_string())?)
            };
            sink(p);
            n += 1;
        }
        Ok(n)
    }

    fn encode_input(_: &[MqutePacket]) {}

    fn output(capacity: usize) -> BytesMut {
        BytesMut::with_capacity(capacity)
    }

    fn encode_all(
        packets: &[MqutePacket],
        _: &mut (),
        _: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), String> {
        out.clear();
        for p in packets {
            match p {
                MqutePacket::V4(p) => p.encode(out),
                MqutePacket::V5(p) => p.encode(out),
            }
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn output_bytes(out: &BytesMut) -> Vec<u8> {
        out.to_vec()
    }
}

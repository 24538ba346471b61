//! rumqttc's codecs: `mqttbytes::v4` (3.1.1) and `v5::mqttbytes::v5` (5.0).

use bytes::{Bytes, BytesMut};
use mqtt_codec::ProtocolVersion;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

use crate::Codec;

/// rumqttc: `Packet::read` in a loop over a `BytesMut`, `Packet::write` into a reused
/// `BytesMut`.
pub struct Rumqttc;

/// A packet of either of rumqttc's codecs.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // as the codec returns them
pub enum RumqttcPacket {
    /// From `mqttbytes::v4`.
    V4(v4::Packet),
    /// From `v5::mqttbytes::v5`.
    V5(v5::Packet),
}

const MAX: usize = 1 << 28;

impl Codec for Rumqttc {
    const NAME: &'static str = "rumqttc 0.25";
    type Packet<'a> = RumqttcPacket;
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
        sink: &mut dyn FnMut(RumqttcPacket),
    ) -> Result<usize, String> {
        let mut n = 0;
        while !input.is_empty() {
            let p = if version.is_v5() {
                RumqttcPacket::V5(
                    v5::Packet::read(input, Some(MAX as u32)).map_err(|e| e.to_string())?,
                )
            } else {
                RumqttcPacket::V4(v4::Packet::read(input, MAX).map_err(|e| e.to_string())?)
            };
            sink(p);
            n += 1;
        }
        Ok(n)
    }

    fn encode_input(_: &[RumqttcPacket]) {}

    fn output(capacity: usize) -> BytesMut {
        BytesMut::with_capacity(capacity)
    }

    fn encode_all(
        packets: &[RumqttcPacket],
        _: &mut (),
        _: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), String> {
        out.clear();
        for p in packets {
            match p {
                RumqttcPacket::V4(p) => p.write(out, MAX).map_err(|e| e.to_string())?,
                RumqttcPacket::V5(p) => {
                    p.write(out, Some(MAX as u32)).map_err(|e| e.to_string())?
                }
            };
        }
        Ok(())
    }

    fn output_bytes(out: &BytesMut) -> Vec<u8> {
        out.to_vec()
    }
}

//! mqtt-protocol-core (MQTT 3.1.1 and 5.0).

use bytes::Bytes;
use mqtt::common::Cursor;
use mqtt::connection::{PacketBuildResult, PacketBuilder, PacketData, RawPacket};
use mqtt::packet::{GenericPacketTrait, Packet, v3_1_1 as v3, v5_0 as v5};
use mqtt::result_code::MqttError;
use mqtt_codec::ProtocolVersion;
use mqtt_protocol_core::mqtt;

use crate::Codec;

/// mqtt-protocol-core: its `PacketBuilder` splits frames off a byte stream (copying each
/// body into an owned buffer), then the packet type's `parse` decodes it, as its
/// connection does on receive. Encoding copies `to_buffers()` into a reused `Vec`.
pub struct MqttProtocolCore;

fn parse(raw: &RawPacket, v5: bool) -> Result<Packet, MqttError> {
    let flags = raw.flags();
    let data = raw.data_as_slice();
    let publish = || match &raw.data {
        PacketData::Publish(arc) => Ok(arc.clone()),
        PacketData::Normal(_) => Err(MqttError::MalformedPacket),
    };
    Ok(match (v5, raw.packet_type()) {
        (false, 1) => Packet::V3_1_1Connect(v3::Connect::parse(data)?.0),
        (false, 2) => Packet::V3_1_1Connack(v3::Connack::parse(data)?.0),
        (false, 3) => Packet::V3_1_1Publish(v3::Publish::parse(flags, publish()?)?.0),
        (false, 4) => Packet::V3_1_1Puback(v3::Puback::parse(data)?.0),
        (false, 5) => Packet::V3_1_1Pubrec(v3::Pubrec::parse(data)?.0),
        (false, 6) => Packet::V3_1_1Pubrel(v3::Pubrel::parse(data)?.0),
        (false, 7) => Packet::V3_1_1Pubcomp(v3::Pubcomp::parse(data)?.0),
        (false, 8) => Packet::V3_1_1Subscribe(v3::Subscribe::parse(data)?.0),
        (false, 9) => Packet::V3_1_1Suback(v3::Suback::parse(data)?.0),
        (false, 10) => Packet::V3_1_1Unsubscribe(v3::Unsubscribe::parse(data)?.0),
        (false, 11) => Packet::V3_1_1Unsuback(v3::Unsuback::parse(data)?.0),
        (false, 12) => Packet::V3_1_1Pingreq(v3::Pingreq::parse(data)?.0),
        (false, 13) => Packet::V3_1_1Pingresp(v3::Pingresp::parse(data)?.0),
        (false, 14) => Packet::V3_1_1Disconnect(v3::Disconnect::parse(data)?.0),
        (true, 1) => Packet::V5_0Connect(v5::Connect::parse(data)?.0),
        (true, 2) => Packet::V5_0Connack(v5::Connack::parse(data)?.0),
        (true, 3) => Packet::V5_0Publish(v5::Publish::parse(flags, publish()?)?.0),
        (true, 4) => Packet::V5_0Puback(v5::Puback::parse(data)?.0),
        (true, 5) => Packet::V5_0Pubrec(v5::Pubrec::parse(data)?.0),
        (true, 6) => Packet::V5_0Pubrel(v5::Pubrel::parse(data)?.0),
        (true, 7) => Packet::V5_0Pubcomp(v5::Pubcomp::parse(data)?.0),
        (true, 8) => Packet::V5_0Subscribe(v5::Subscribe::parse(data)?.0),
        (true, 9) => Packet::V5_0Suback(v5::Suback::parse(data)?.0),
        (true, 10) => Packet::V5_0Unsubscribe(v5::Unsubscribe::parse(data)?.0),
        (true, 11) => Packet::V5_0Unsuback(v5::Unsuback::parse(data)?.0),
        (true, 12) => Packet::V5_0Pingreq(v5::Pingreq::parse(data)?.0),
        (true, 13) => Packet::V5_0Pingresp(v5::Pingresp::parse(data)?.0),
        (true, 14) => Packet::V5_0Disconnect(v5::Disconnect::parse(data)?.0),
        (true, 15) => Packet::V5_0Auth(v5::Auth::parse(data)?.0),
        _ => return Err(MqttError::MalformedPacket),
    })
}

fn decode_all(
    input: &Bytes,
    version: ProtocolVersion,
    sink: &mut dyn FnMut(Packet),
) -> Result<usize, String> {
    let mut builder = PacketBuilder::new();
    let mut cursor = Cursor::new(&input[..]);
    let mut n = 0;
    while cursor.position() < input.len() as u64 {
        match builder.feed(&mut cursor) {
            PacketBuildResult::Complete(raw) => {
                sink(parse(&raw, version.is_v5()).map_err(|e| e.to_string())?);
                n += 1;
            }
            PacketBuildResult::Incomplete => return Err("buffer ends inside a packet".into()),
            PacketBuildResult::Error(e) => return Err(e.to_string()),
        }
    }
    Ok(n)
}

impl Codec for MqttProtocolCore {
    const NAME: &'static str = "mqtt-protocol-core 0.7";
    type Packet<'a> = Packet;
    type Input = Bytes;
    type EncodeInput = ();
    type Output = Vec<u8>;

    fn unsupported(_: ProtocolVersion) -> Option<&'static str> {
        None
    }

    fn input(wire: &Bytes) -> Bytes {
        // The packet builder copies out of the slice it reads; the input needs no copy.
        wire.clone()
    }

    fn decode_all(
        input: &mut Bytes,
        version: ProtocolVersion,
        sink: &mut dyn FnMut(Packet),
    ) -> Result<usize, String> {
        decode_all(input, version, sink)
    }

    fn encode_input(_: &[Packet]) {}

    fn output(capacity: usize) -> Vec<u8> {
        Vec::with_capacity(capacity)
    }

    fn encode_all(
        packets: &[Packet],
        _: &mut (),
        _: ProtocolVersion,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.clear();
        for p in packets {
            for s in p.to_buffers() {
                out.extend_from_slice(&s);
            }
        }
        Ok(())
    }

    fn output_bytes(out: &Vec<u8>) -> Vec<u8> {
        out.clone()
    }
}

/// mqtt-protocol-core's vectored encoding: `to_buffers()` lists the packet's parts,
/// payload included, for `write_vectored`; nothing is copied.
pub struct MqttProtocolCoreVectored;

impl Codec for MqttProtocolCoreVectored {
    const NAME: &'static str = "mqtt-protocol-core 0.7, to_buffers";
    type Packet<'a> = Packet;
    type Input = Bytes;
    type EncodeInput = ();
    /// Total bytes listed, and a copy made only for checking.
    type Output = (usize, Vec<u8>, bool);

    fn unsupported(_: ProtocolVersion) -> Option<&'static str> {
        None
    }

    fn input(wire: &Bytes) -> Bytes {
        wire.clone()
    }

    fn decode_all(
        input: &mut Bytes,
        version: ProtocolVersion,
        sink: &mut dyn FnMut(Packet),
    ) -> Result<usize, String> {
        decode_all(input, version, sink)
    }

    fn encode_input(_: &[Packet]) {}

    fn output(_: usize) -> (usize, Vec<u8>, bool) {
        (0, Vec::new(), false)
    }

    fn checked_output(_: usize) -> (usize, Vec<u8>, bool) {
        (0, Vec::new(), true)
    }

    fn encode_all(
        packets: &[Packet],
        _: &mut (),
        _: ProtocolVersion,
        out: &mut (usize, Vec<u8>, bool),
    ) -> Result<(), String> {
        out.0 = 0;
        out.1.clear();
        for p in packets {
            // The slices borrow from the packet: a sender writes them out here. The race
            // counts what listing them costs; the check keeps a copy.
            let bufs = p.to_buffers();
            for s in &bufs {
                out.0 += s.len();
                if out.2 {
                    out.1.extend_from_slice(s);
                }
            }
            std::hint::black_box(&bufs);
        }
        Ok(())
    }

    fn output_bytes(out: &(usize, Vec<u8>, bool)) -> Vec<u8> {
        out.1.clone()
    }
}

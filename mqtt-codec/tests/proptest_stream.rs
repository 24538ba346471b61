//! Property: a byte stream of several packets decodes to the same packets however it is cut
//! into reads. "Need more" consumes nothing, and once a fixed header is complete it says
//! exactly how many bytes the packet still lacks.

mod strategies;

use mqtt_codec::{Bytes, BytesMut, DecodeContext, Decoded, Packet, ProtocolVersion};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use strategies::*;

/// Encodes `packets` back to back; also returns where each packet ends and the length of
/// its fixed header.
fn stream(packets: &[Packet], version: ProtocolVersion) -> (Bytes, Vec<(usize, usize)>) {
    let mut wire = BytesMut::new();
    let mut bounds = Vec::new();
    for p in packets {
        let start = wire.len();
        p.encode(version, &mut wire).unwrap();
        bounds.push((wire.len(), fixed_header_len(&wire[start..])));
    }
    (wire.freeze(), bounds)
}

/// A receiver fed the stream in `chunks`: decodes after every read and checks each
/// "need more" against the packet boundaries it knows.
fn receive(
    wire: &[u8],
    bounds: &[(usize, usize)],
    chunks: impl Iterator<Item = usize>,
    cx: &DecodeContext,
) -> Result<Vec<Packet>, TestCaseError> {
    let mut buf = BytesMut::new();
    let mut fed: usize = 0; // bytes handed to the decoder so far
    let mut got = Vec::new();
    for chunk in chunks.chain(std::iter::once(usize::MAX)) {
        let end = fed.saturating_add(chunk).min(wire.len());
        buf.extend_from_slice(&wire[fed..end]);
        fed = end;
        loop {
            let before = (buf.as_ptr(), buf.len());
            match Packet::decode_stream(&mut buf, cx).unwrap() {
                Decoded::Packet(p) => got.push(p),
                Decoded::Incomplete { needed } => {
                    prop_assert_eq!(
                        (buf.as_ptr(), buf.len()),
                        before,
                        "Incomplete consumed bytes"
                    );
                    if fed == wire.len() && buf.is_empty() {
                        break; // every packet is out
                    }
                    // The packet being read starts where the previous one ended.
                    let start = fed - buf.len();
                    let (end, header) = bounds
                        .iter()
                        .copied()
                        .find(|&(end, _)| end > start)
                        .expect("Incomplete after the last packet");
                    let header_end = start + header;
                    if fed >= header_end {
                        prop_assert_eq!(needed, end - fed, "needed is not exact");
                    } else {
                        prop_assert!(needed >= 1 && fed + needed <= end, "needed overshoots");
                    }
                    break;
                }
            }
        }
        if fed == wire.len() {
            break;
        }
    }
    prop_assert!(buf.is_empty(), "bytes left after the last packet");
    Ok(got)
}

proptest! {
    #![proptest_config(config(256))]

    /// Cut once anywhere: the first part yields the packets it holds whole, the second
    /// the rest.
    #[test]
    fn stream_cut_at_any_point_decodes_the_same(
        (version, packets) in versioned_packets(5),
        cut in any::<Index>(),
    ) {
        let (wire, bounds) = stream(&packets, version);
        let cut = cut.index(wire.len() + 1);
        let cx = DecodeContext::new(version);
        let got = receive(&wire, &bounds, [cut].into_iter(), &cx)?;
        prop_assert_eq!(got, packets);
    }

    /// Fed in reads of random sizes (many of them one or two bytes, so every byte of
    /// every fixed header gets to be the last one read).
    #[test]
    fn stream_fed_in_random_chunks_decodes_the_same(
        (version, packets) in versioned_packets(5),
        chunks in vec(prop_oneof![3 => 1usize..3, 2 => 1usize..40, 1 => 1usize..5000], 1..200),
    ) {
        let (wire, bounds) = stream(&packets, version);
        let cx = DecodeContext::new(version);
        let got = receive(&wire, &bounds, chunks.into_iter().cycle(), &cx)?;
        prop_assert_eq!(got, packets);
    }

    /// Feeding exactly the bytes a complete fixed header asks for completes the packet.
    #[test]
    fn feeding_exactly_needed_completes_the_packet(
        (version, packet) in versioned_packet(),
        extra in any::<Index>(),
    ) {
        let wire = packet.to_bytes(version).unwrap();
        let header = fixed_header_len(&wire);
        let have = header + extra.index(wire.len() - header + 1);
        let cx = DecodeContext::new(version);
        let mut buf = BytesMut::from(&wire[..have]);
        let needed = match Packet::decode_stream(&mut buf, &cx).unwrap() {
            Decoded::Incomplete { needed } => needed,
            Decoded::Packet(p) => {
                prop_assert_eq!(have, wire.len());
                prop_assert_eq!(p, packet);
                return Ok(());
            }
        };
        buf.extend_from_slice(&wire[have..have + needed]);
        prop_assert_eq!(Packet::decode(&mut buf, &cx).unwrap(), Some(packet));
        prop_assert!(buf.is_empty());
    }
}

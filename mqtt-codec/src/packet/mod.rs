//! The control packets, the fixed header, and the streaming decoder.

mod ack;
mod connect;
mod publish;
mod subscribe;

pub use ack::{Auth, Disconnect, PubResponse, SubAck, UnsubAck};
pub use connect::{ConnAck, Connect, Will};
pub use publish::{Publish, PublishRef};
pub use subscribe::{RetainHandling, Subscribe, SubscriptionOptions, Unsubscribe};

use alloc::boxed::Box;

use bytes::{BufMut, Bytes, BytesMut};

use crate::coding::{
    Body, MAX_VARIABLE_BYTE_INTEGER, Reader, put_var_int, read_var_int, rule, var_int_len,
};
use crate::in_place::{check_room, put_array, write_in_place};
use crate::{DecodeError, DecodeErrorKind, EncodeError, PacketType, ProtocolVersion};

/// The largest packet MQTT can describe: a five-byte fixed header and a remaining length
/// of 268,435,455 bytes.
pub const MAX_PACKET_SIZE: u32 = 1 + 4 + MAX_VARIABLE_BYTE_INTEGER;

/// What the decoder needs to know about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeContext {
    /// The negotiated protocol version; `None` until a CONNECT has decided it, when only a
    /// CONNECT can be decoded.
    pub version: Option<ProtocolVersion>,
    /// The largest whole packet (fixed header included) this receiver accepts. Checked from
    /// the fixed header, before the body is buffered.
    pub max_packet_size: u32,
}

impl DecodeContext {
    /// A context for a connection whose version is known, accepting packets up to the
    /// protocol maximum.
    pub const fn new(version: ProtocolVersion) -> Self {
        Self {
            version: Some(version),
            max_packet_size: MAX_PACKET_SIZE,
        }
    }

    /// A context for a server's fresh connection: only a CONNECT can be decoded until the
    /// version is set.
    pub const fn awaiting_connect() -> Self {
        Self {
            version: None,
            max_packet_size: MAX_PACKET_SIZE,
        }
    }

    /// The same context with another maximum packet size.
    pub const fn with_max_packet_size(mut self, max: u32) -> Self {
        self.max_packet_size = max;
        self
    }
}

impl Default for DecodeContext {
    fn default() -> Self {
        Self::awaiting_connect()
    }
}

/// The outcome of looking at the start of a buffer for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole packet is in the buffer: its type, fixed header length and total length.
    Complete {
        /// The packet type from the first byte.
        packet: PacketType,
        /// Bytes of the fixed header (2 to 5).
        header_len: usize,
        /// Bytes of the whole packet, fixed header included.
        total_len: usize,
    },
    /// More bytes are needed: at least `needed` more (exactly that many once the fixed
    /// header is complete).
    Incomplete {
        /// How many more bytes to read before trying again.
        needed: usize,
    },
}

/// Reads the fixed header at the start of `buf` and checks it: the packet type exists in
/// `cx.version`, its reserved flags are right, and its size is within `cx.max_packet_size`.
/// Nothing is consumed and nothing is allocated, so a receiver can call this before it
/// buffers (or reserves room for) the body.
// Always inlined: with two decoders calling it, the compiler kept it out of line, and
// returning the `Result<Frame, _>` through memory cost 30 instructions per packet
// (callgrind, `benches` compare).
#[inline(always)]
pub fn check_frame(buf: &[u8], cx: &DecodeContext) -> Result<Frame, DecodeError> {
    let Some(&b0) = buf.first() else {
        return Ok(Frame::Incomplete { needed: 2 });
    };
    let Some(packet) = PacketType::from_nibble(b0 >> 4) else {
        // Table 2-1 (3.1.1 Table 2.1) marks it reserved; no normative statement names it.
        return Err(DecodeError::malformed(None, "packet type 0 is reserved"));
    };
    let version = match cx.version {
        Some(v) => v,
        None if packet == PacketType::Connect => ProtocolVersion::V5,
        None => {
            return Err(DecodeError::protocol(
                Some(packet),
                "[MQTT-3.1.0-1] the first packet must be CONNECT",
            ));
        }
    };
    if packet == PacketType::Auth && !version.is_v5() {
        return Err(DecodeError::malformed(
            None,
            "packet type 15 is reserved in MQTT 3.1.1 (section 2.2.1)",
        ));
    }
    if let Some(flags) = packet.fixed_flags()
        && b0 & 0x0F != flags
    {
        return Err(DecodeError::malformed(
            Some(packet),
            reserved_flags_rule(packet, version),
        ));
    }
    let (remaining, n) = match read_var_int(&buf[1..]) {
        Ok(Some(v)) => v,
        Ok(None) => return Ok(Frame::Incomplete { needed: 1 }),
        Err(e) => return Err(DecodeError::malformed(Some(packet), e.rule(version))),
    };
    let header_len = 1 + n;
    let total = header_len as u64 + u64::from(remaining);
    if total > u64::from(cx.max_packet_size) {
        return Err(DecodeError::new(
            DecodeErrorKind::PacketTooLarge {
                size: total,
                max: cx.max_packet_size,
            },
            Some(packet),
            // 3.1.1 has no Maximum Packet Size: the limit is the receiver's own.
            rule(
                version,
                "[MQTT-3.2.2-15] packet larger than the Maximum Packet Size",
                "packet larger than the receiver's maximum packet size",
            ),
        ));
    }
    let total_len = total as usize;
    if buf.len() < total_len {
        return Ok(Frame::Incomplete {
            needed: total_len - buf.len(),
        });
    }
    Ok(Frame::Complete {
        packet,
        header_len,
        total_len,
    })
}

/// The rule a fixed header with wrong reserved flags breaks: both versions name it again
/// for some packets.
fn reserved_flags_rule(packet: PacketType, version: ProtocolVersion) -> &'static str {
    if version.is_v5() {
        return match packet {
            PacketType::PubRel => "[MQTT-3.6.1-1] PUBREL fixed header flags must be 0010",
            PacketType::Subscribe => "[MQTT-3.8.1-1] SUBSCRIBE fixed header flags must be 0010",
            PacketType::Unsubscribe => {
                "[MQTT-3.10.1-1] UNSUBSCRIBE fixed header flags must be 0010"
            }
            PacketType::Disconnect => "[MQTT-3.14.1-1] DISCONNECT fixed header flags must be 0",
            PacketType::Auth => "[MQTT-3.15.1-1] AUTH fixed header flags must be 0",
            _ => "[MQTT-2.1.3-1] reserved fixed header flags have the wrong value",
        };
    }
    match packet {
        PacketType::PubRel => "[MQTT-3.6.1-1] PUBREL fixed header flags must be 0010",
        PacketType::Subscribe => "[MQTT-3.8.1-1] SUBSCRIBE fixed header flags must be 0010",
        PacketType::Unsubscribe => "[MQTT-3.10.1-1] UNSUBSCRIBE fixed header flags must be 0010",
        PacketType::Disconnect => "[MQTT-3.14.1-1] DISCONNECT fixed header flags must be 0",
        _ => "[MQTT-2.2.2-1] reserved fixed header flags have the wrong value",
    }
}

/// One step of streaming decoding: a packet, or how many more bytes are needed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // boxing the packet would cost an allocation per decode
pub enum Decoded {
    /// A whole packet, removed from the buffer.
    Packet(Packet),
    /// The buffer ends inside a packet; nothing was consumed. Read at least `needed` more
    /// bytes and try again.
    Incomplete {
        /// Bytes still missing (exact once the fixed header is complete).
        needed: usize,
    },
}

/// An MQTT control packet of either protocol version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "type"))]
pub enum Packet {
    /// CONNECT (boxed: it is large and rare).
    Connect(Box<Connect>),
    /// CONNACK (boxed: it is large and rare).
    ConnAck(Box<ConnAck>),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(PubResponse),
    /// PUBREC.
    PubRec(PubResponse),
    /// PUBREL.
    PubRel(PubResponse),
    /// PUBCOMP.
    PubComp(PubResponse),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (MQTT 5.0 only).
    Auth(Auth),
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }

    /// Decodes one packet from the front of `buf`.
    ///
    /// `Ok(Some(packet))` removes the packet's bytes from `buf`; the packet's strings and
    /// payload are slices of them (no copy). `Ok(None)` means `buf` ends inside a packet and
    /// nothing was consumed (see [`Packet::decode_stream`] for how many bytes are missing).
    /// Call in a loop to drain a buffer holding several packets. An error is fatal to the
    /// connection: the peer broke the protocol, and what is left in `buf` is not to be
    /// decoded further.
    #[inline]
    pub fn decode(buf: &mut BytesMut, cx: &DecodeContext) -> Result<Option<Packet>, DecodeError> {
        match check_frame(buf, cx)? {
            Frame::Incomplete { .. } => Ok(None),
            Frame::Complete {
                packet,
                header_len,
                total_len,
            } => decode_frame(buf, packet, header_len, total_len, cx, Some),
        }
    }

    /// Like [`Packet::decode`], saying how many more bytes are needed when `buf` ends
    /// inside a packet.
    #[inline]
    pub fn decode_stream(buf: &mut BytesMut, cx: &DecodeContext) -> Result<Decoded, DecodeError> {
        match check_frame(buf, cx)? {
            Frame::Incomplete { needed } => Ok(Decoded::Incomplete { needed }),
            Frame::Complete {
                packet,
                header_len,
                total_len,
            } => decode_frame(buf, packet, header_len, total_len, cx, Decoded::Packet),
        }
    }

    /// Decodes exactly one whole packet from `bytes` (for example a WebSocket message or a
    /// test vector). Bytes missing or left over are Malformed.
    pub fn decode_exact(bytes: Bytes, cx: &DecodeContext) -> Result<Packet, DecodeError> {
        match check_frame(&bytes, cx)? {
            Frame::Incomplete { .. } => Err(DecodeError::malformed(
                PacketType::from_nibble(bytes.first().copied().unwrap_or(0) >> 4),
                "packet ends before its last field",
            )),
            Frame::Complete {
                packet,
                header_len,
                total_len,
            } => {
                if total_len != bytes.len() {
                    return Err(DecodeError::malformed(
                        Some(packet),
                        "bytes left over after the packet's last field",
                    ));
                }
                let flags = bytes[0] & 0x0F;
                decode_body(packet, flags, bytes.slice(header_len..), cx, |p| p)
            }
        }
    }

    /// The number of bytes [`Packet::encode`] writes for `version`, or why it cannot.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        Ok(packet_len(self.remaining_len(version)?))
    }

    /// Encodes the packet for `version` into `buf`.
    ///
    /// Everything is checked before the first byte is written: a field `version` cannot
    /// carry, a value out of range or a buffer without room is an error and `buf` is left
    /// as it was.
    // Always inlined into the caller's loop: called, it saved and restored the registers
    // its PUBLISH path uses on every packet, about a sixth of a small packet's cost
    // (callgrind, `benches` compare). The rare packets stay out of line.
    #[inline(always)]
    pub fn encode(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        // The packets a stream is made of take paths of their own, kept short; the rest
        // are measured, checked and written by one general path.
        match self {
            Self::Publish(p) => p.encode(version, buf),
            Self::PubAck(a) | Self::PubRec(a) | Self::PubRel(a) | Self::PubComp(a)
                if a.is_plain() =>
            {
                a.encode_plain(self.first_byte(), buf)
            }
            Self::PingReq | Self::PingResp => put_array(buf, [self.first_byte(), 0]),
            _ => self.encode_other(version, buf),
        }
    }

    /// The general path of [`Packet::encode`], out of line.
    #[inline(never)]
    fn encode_other(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        let remaining = self.remaining_len(version)?;
        self.write_checked(version, remaining, buf)
    }

    /// Writes a packet whose checks [`Packet::remaining_len`] passed with `remaining`.
    #[inline]
    fn write_checked(
        &self,
        version: ProtocolVersion,
        remaining: usize,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        let total = packet_len(remaining);
        if write_in_place(buf, total, |w| self.write_whole(version, remaining, w)) {
            return Ok(());
        }
        check_room(buf, total)?;
        if total <= STAGE {
            // Without the room in one piece (a full growable buffer, a chain), a small
            // packet is written into a stack buffer first and handed to `buf` in one call
            // rather than one call per field, each of which checks the room again.
            let mut stage = [0u8; STAGE];
            self.write_whole(version, remaining, &mut &mut stage[..]);
            buf.put_slice(&stage[..total]);
            return Ok(());
        }
        self.write_whole(version, remaining, buf);
        Ok(())
    }

    /// Writes the fixed header and the body.
    #[inline]
    fn write_whole(&self, version: ProtocolVersion, remaining: usize, buf: &mut impl BufMut) {
        buf.put_u8(self.first_byte());
        put_var_int(buf, remaining as u32);
        self.write_body(version, buf);
    }

    /// Encodes into a new [`BytesMut`] of exactly the right size.
    pub fn to_bytes(&self, version: ProtocolVersion) -> Result<BytesMut, EncodeError> {
        let remaining = self.remaining_len(version)?;
        let mut buf = BytesMut::with_capacity(packet_len(remaining));
        self.write_checked(version, remaining, &mut buf)?;
        Ok(buf)
    }

    fn first_byte(&self) -> u8 {
        let t = (self.packet_type() as u8) << 4;
        match self {
            Self::Publish(p) => t | p.flags(),
            _ => t | self.packet_type().fixed_flags().unwrap_or(0),
        }
    }

    /// Checks the packet for `version` and returns its remaining length.
    #[inline]
    fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let n = match self {
            Self::Connect(c) => c.body_len(version)?,
            Self::ConnAck(c) => c.body_len(version)?,
            Self::Publish(p) => p.body_len(version)?,
            Self::PubAck(a) => a.body_len(PacketType::PubAck, version)?,
            Self::PubRec(a) => a.body_len(PacketType::PubRec, version)?,
            Self::PubRel(a) => a.body_len(PacketType::PubRel, version)?,
            Self::PubComp(a) => a.body_len(PacketType::PubComp, version)?,
            Self::Subscribe(s) => s.body_len(version)?,
            Self::SubAck(s) => s.body_len(version)?,
            Self::Unsubscribe(u) => u.body_len(version)?,
            Self::UnsubAck(u) => u.body_len(version)?,
            Self::PingReq | Self::PingResp => 0,
            Self::Disconnect(d) => d.body_len(version)?,
            Self::Auth(a) => a.body_len(version)?,
        };
        if n > MAX_VARIABLE_BYTE_INTEGER as usize {
            return Err(EncodeError::TooLarge {
                packet: self.packet_type(),
                remaining_length: n,
            });
        }
        Ok(n)
    }

    fn write_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        match self {
            Self::Connect(c) => c.write(buf),
            Self::ConnAck(c) => c.write(version, buf),
            Self::Publish(p) => p.write(version, buf),
            Self::PubAck(a) | Self::PubRec(a) | Self::PubRel(a) | Self::PubComp(a) => {
                a.write(version, buf)
            }
            Self::Subscribe(s) => s.write(version, buf),
            Self::SubAck(s) => s.write(version, buf),
            Self::Unsubscribe(u) => u.write(version, buf),
            Self::UnsubAck(u) => u.write(version, buf),
            Self::PingReq | Self::PingResp => {}
            Self::Disconnect(d) => d.write(version, buf),
            Self::Auth(a) => a.write(buf),
        }
    }
}

/// A whole packet's size for a remaining length: the first byte, the length's own bytes,
/// and the rest.
#[inline]
fn packet_len(remaining: usize) -> usize {
    1 + var_int_len(remaining as u32) + remaining
}

/// Packets up to this size are encoded on the stack, then copied to the caller's buffer.
const STAGE: usize = 256;

/// Removes a whole packet that `check_frame` found from the front of `buf`: returns the
/// fixed header's flags and the body, sharing `buf`'s memory.
#[inline]
fn split_body(buf: &mut BytesMut, header_len: usize, total_len: usize) -> (u8, Bytes) {
    let flags = buf[0] & 0x0F;
    // Skipping the fixed header only moves the start of the body; splitting it off as a
    // buffer of its own would take and release a reference to the shared memory.
    let mut body = buf.split_to(total_len).freeze();
    bytes::Buf::advance(&mut body, header_len);
    (flags, body)
}

/// Decodes the whole packet `check_frame` found at the front of `buf` and removes it
/// from `buf`: a packet that carries no more than a packet identifier in place, any other
/// from its body split off as a shared buffer.
#[inline]
fn decode_frame<T>(
    buf: &mut BytesMut,
    packet: PacketType,
    header_len: usize,
    total_len: usize,
    cx: &DecodeContext,
    wrap: impl FnOnce(Packet) -> T,
) -> Result<T, DecodeError> {
    if packet != PacketType::Publish
        && let Some(p) = decode_plain(packet, &buf[header_len..total_len])
    {
        bytes::Buf::advance(buf, total_len);
        return Ok(wrap(p));
    }
    let (flags, body) = split_body(buf, header_len, total_len);
    decode_body(packet, flags, body, cx, wrap)
}

/// The packets of a busy stream that carry no more than a packet identifier, decoded
/// without the general reader: a PUBACK, PUBREC, PUBREL or PUBCOMP of two bytes (Success
/// without properties, in either version) and a PINGREQ or PINGRESP. `None` for anything
/// else, an identifier of 0 included: the general decoder then reports what is wrong.
/// `check_frame` has checked the fixed header's flags.
#[inline(always)]
fn decode_plain(packet: PacketType, body: &[u8]) -> Option<Packet> {
    match (packet, body) {
        (PacketType::PingReq, []) => Some(Packet::PingReq),
        (PacketType::PingResp, []) => Some(Packet::PingResp),
        (_, &[hi, lo]) => {
            let ack = PubResponse::new(crate::PacketId::new(u16::from_be_bytes([hi, lo]))?);
            match packet {
                PacketType::PubAck => Some(Packet::PubAck(ack)),
                PacketType::PubRec => Some(Packet::PubRec(ack)),
                PacketType::PubRel => Some(Packet::PubRel(ack)),
                PacketType::PubComp => Some(Packet::PubComp(ack)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Decodes a body whose fixed header `check_frame` accepted.
#[inline]
fn decode_body<T>(
    packet: PacketType,
    flags: u8,
    body: Bytes,
    cx: &DecodeContext,
    wrap: impl FnOnce(Packet) -> T,
) -> Result<T, DecodeError> {
    // A CONNECT sets the reader's version from its own protocol level; `check_frame`
    // refused every other type while the version is unknown.
    let version = cx.version.unwrap_or(ProtocolVersion::V5);
    let mut r = Reader::new(body, packet, version);
    if packet == PacketType::Publish {
        // The payload is the rest of the body, so nothing is left over to check; returning
        // here also builds the packet straight into the result instead of moving it again.
        return Publish::decode(flags, &mut r).map(|p| wrap(Packet::Publish(p)));
    }
    decode_other(packet, r, wrap)
}

/// Decodes a body other than a PUBLISH's, from a shared buffer or a borrowed slice: the
/// one decoder of every such packet, for [`Packet`] and [`PacketRef`] alike.
// Out of line: inlined into a receiver's loop, it made the PUBLISH path around it 15-30
// instructions per packet slower (callgrind, `benches` compare), more than the call costs
// the packets that take it.
#[inline(never)]
fn decode_other<B: Body, T>(
    packet: PacketType,
    mut r: Reader<B>,
    wrap: impl FnOnce(Packet) -> T,
) -> Result<T, DecodeError> {
    let p = match packet {
        // What keeps strings of its own needs them in a shared buffer: the same one, or
        // for a borrowed slice a copy of the body.
        PacketType::Connect | PacketType::Subscribe | PacketType::Unsubscribe => {
            let mut r = r.into_owned();
            let p = match packet {
                PacketType::Connect => Packet::Connect(Connect::decode(&mut r)?),
                PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(&mut r)?),
                _ => Packet::Unsubscribe(Unsubscribe::decode(&mut r)?),
            };
            r.finish()?;
            return Ok(wrap(p));
        }
        // Both callers decode a PUBLISH themselves and never come here with one. A second
        // call of the PUBLISH decoder here made the compiler keep it out of line under fat
        // LTO, which cost the owned decoder's PUBLISH path.
        PacketType::Publish => {
            return Err(r.malformed("a PUBLISH reached the decoder of other packets"));
        }
        PacketType::ConnAck => Packet::ConnAck(Box::new(ConnAck::decode(&mut r)?)),
        PacketType::PubAck => Packet::PubAck(PubResponse::decode(&mut r)?),
        PacketType::PubRec => Packet::PubRec(PubResponse::decode(&mut r)?),
        PacketType::PubRel => Packet::PubRel(PubResponse::decode(&mut r)?),
        PacketType::PubComp => Packet::PubComp(PubResponse::decode(&mut r)?),
        PacketType::SubAck => Packet::SubAck(SubAck::decode(&mut r)?),
        PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(&mut r)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(&mut r)?),
        PacketType::Auth => Packet::Auth(Auth::decode(&mut r)?),
    };
    r.finish()?;
    Ok(wrap(p))
}

/// A packet decoded without taking ownership of the buffer it is read from: a PUBLISH as
/// a view whose topic and payload borrow from that buffer, any other packet owned.
///
/// A PUBLISH view takes no reference count and costs nothing to drop, so a router that
/// reads a message and forwards or discards it skips the cost of owning it; [`Packet::decode`] is for a
/// receiver that keeps what it decodes. Both run the same checks and return the same
/// errors, and a PUBLISH without properties, an acknowledgement or a PING allocates
/// nothing. CONNECT, SUBSCRIBE and UNSUBSCRIBE, which keep strings of their own, and v5
/// properties, are copied out of the buffer.
///
/// ```
/// use bytes::{Buf, BytesMut};
/// use mqtt_codec::{DecodeContext, Packet, PacketRef, ProtocolVersion, Publish, TopicName};
///
/// let v = ProtocolVersion::V3_1_1;
/// let mut buf = BytesMut::new();
/// Packet::Publish(Publish::new(TopicName::new("sensors/1")?, "21.5")).encode(v, &mut buf)?;
/// Packet::PingReq.encode(v, &mut buf)?;
///
/// let cx = DecodeContext::new(v);
/// let mut seen = Vec::new();
/// while let Some((packet, len)) = PacketRef::decode(&buf, &cx)? {
///     match packet {
///         PacketRef::Publish(p) => seen.push(format!("{} {:?}", p.topic, p.payload)),
///         PacketRef::Packet(p) => seen.push(format!("{:?}", p.packet_type())),
///     }
///     buf.advance(len); // the view borrowed `buf` until here
/// }
/// assert_eq!(seen, ["sensors/1 [50, 49, 46, 53]", "PingReq"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketRef<'a> {
    /// A PUBLISH, borrowed.
    Publish(PublishRef<'a>),
    /// Any other packet, owned.
    Packet(Packet),
}

impl<'a> PacketRef<'a> {
    /// Decodes one packet from the front of `buf` without consuming it.
    ///
    /// `Ok(Some((packet, len)))`: a whole packet of `len` bytes was at the front of `buf`;
    /// drop the first `len` bytes once done with it. `Ok(None)`: `buf` ends inside a
    /// packet ([`check_frame`] says how many bytes are missing). An error is fatal to the
    /// connection, as for [`Packet::decode`].
    #[inline]
    pub fn decode(
        buf: &'a [u8],
        cx: &DecodeContext,
    ) -> Result<Option<(PacketRef<'a>, usize)>, DecodeError> {
        match check_frame(buf, cx)? {
            Frame::Incomplete { .. } => Ok(None),
            Frame::Complete {
                packet,
                header_len,
                total_len,
            } => {
                let flags = buf[0] & 0x0F;
                let version = cx.version.unwrap_or(ProtocolVersion::V5);
                let body = &buf[header_len..total_len];
                let mut r = Reader::new(body, packet, version);
                let p = if packet == PacketType::Publish {
                    PacketRef::Publish(PublishRef::decode(flags, &mut r)?)
                } else if let Some(p) = decode_plain(packet, body) {
                    PacketRef::Packet(p)
                } else {
                    decode_other(packet, r, PacketRef::Packet)?
                };
                Ok(Some((p, total_len)))
            }
        }
    }

    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Publish(_) => PacketType::Publish,
            Self::Packet(p) => p.packet_type(),
        }
    }

    /// The packet, owned: a PUBLISH's topic and payload are copied (see
    /// [`PublishRef::to_publish`]).
    pub fn to_packet(&self) -> Result<Packet, crate::StringError> {
        match self {
            Self::Publish(p) => p.to_publish().map(Packet::Publish),
            Self::Packet(p) => Ok(p.clone()),
        }
    }
}

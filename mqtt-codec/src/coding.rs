//! Checked primitive reads and writes: integers, variable byte integers, strings, binary.
//!
//! A [`Reader`] is bounded to one packet's body: running out of bytes inside it is a
//! Malformed Packet, never a request for more input.

use bytes::{BufMut, Bytes};

use crate::{
    DecodeError, MqttString, PacketType, ProtocolVersion, StringError, TopicFilter, TopicName,
};

/// The largest value a variable byte integer can hold (section 1.5.5).
pub const MAX_VARIABLE_BYTE_INTEGER: u32 = 268_435_455;

/// Picks the rule text for the version being decoded: `v5` cites the MQTT 5.0 id, `v3` the
/// MQTT 3.1.1 id of the same rule.
#[inline]
pub(crate) const fn rule(
    version: ProtocolVersion,
    v5: &'static str,
    v3: &'static str,
) -> &'static str {
    if version.is_v5() { v5 } else { v3 }
}

/// Why a variable byte integer cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarIntError {
    /// A fifth byte would follow (section 1.5.5; 3.1.1 section 2.2.3).
    TooLong,
    /// Not in its shortest form.
    NotShortest,
}

impl VarIntError {
    /// The rule broken, for `version`: only MQTT 5.0 has a statement for the shortest form
    /// ([MQTT-1.5.5-1]); 3.1.1 shows the encoding (section 2.2.3) without one.
    pub(crate) const fn rule(self, version: ProtocolVersion) -> &'static str {
        match self {
            Self::TooLong => "variable byte integer longer than four bytes",
            Self::NotShortest => rule(
                version,
                "[MQTT-1.5.5-1] variable byte integer not in its shortest form",
                "remaining length not in its shortest form (section 2.2.3)",
            ),
        }
    }
}

/// Decodes a variable byte integer at the start of `b`.
///
/// `Ok(None)`: `b` ends inside the integer. `Ok(Some((value, len)))` otherwise. Errors when
/// the integer runs past four bytes or is not in its shortest form.
#[inline]
pub(crate) fn read_var_int(b: &[u8]) -> Result<Option<(u32, usize)>, VarIntError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&byte) = b.get(i) else {
            return Ok(None);
        };
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(VarIntError::NotShortest);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    Err(VarIntError::TooLong)
}

/// Bytes a variable byte integer of `v` takes (v at most [`MAX_VARIABLE_BYTE_INTEGER`]).
#[inline]
pub(crate) const fn var_int_len(v: u32) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `v` as a variable byte integer; `v` must be at most [`MAX_VARIABLE_BYTE_INTEGER`].
#[inline]
pub(crate) fn put_var_int(buf: &mut impl BufMut, mut v: u32) {
    loop {
        let mut byte = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if v == 0 {
            break;
        }
    }
}

/// Writes a two-byte length then the bytes; the caller has checked `b.len() <= 65535`.
#[inline]
pub(crate) fn put_binary(buf: &mut impl BufMut, b: &[u8]) {
    buf.put_u16(b.len() as u16);
    buf.put_slice(b);
}

/// What a [`Reader`] reads from: a shared buffer ([`Bytes`], whose slices keep the
/// memory alive and so can be kept in owned packets) or a borrowed slice (for a view that
/// lives no longer than the read buffer). The packet decoders are written once over this.
pub(crate) trait Body: core::ops::Deref<Target = [u8]> + Default + Sized {
    /// Drops the first `n` bytes (`n` at most the length).
    fn advance(&mut self, n: usize);
    /// Splits off and returns the first `n` bytes (`n` at most the length).
    fn split_to(&mut self, n: usize) -> Self;
    /// The bytes as a shared buffer, for what an owned value keeps (v5 properties): the
    /// same memory for `Bytes`, a copy for a borrowed slice.
    fn into_bytes(self) -> Bytes;
}

impl Body for Bytes {
    #[inline]
    fn advance(&mut self, n: usize) {
        bytes::Buf::advance(self, n);
    }

    #[inline]
    fn split_to(&mut self, n: usize) -> Self {
        Bytes::split_to(self, n)
    }

    #[inline]
    fn into_bytes(self) -> Bytes {
        self
    }
}

impl Body for &[u8] {
    #[inline]
    fn advance(&mut self, n: usize) {
        *self = &self[n..];
    }

    #[inline]
    fn split_to(&mut self, n: usize) -> Self {
        let (head, tail) = self.split_at(n);
        *self = tail;
        head
    }

    #[inline]
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

/// A cursor over one packet's body.
pub(crate) struct Reader<B = Bytes> {
    buf: B,
    pub(crate) packet: PacketType,
    pub(crate) version: ProtocolVersion,
}

impl<B: Body> Reader<B> {
    #[inline]
    pub(crate) fn new(buf: B, packet: PacketType, version: ProtocolVersion) -> Self {
        Self {
            buf,
            packet,
            version,
        }
    }

    #[inline]
    pub(crate) fn malformed(&self, rule: &'static str) -> DecodeError {
        DecodeError::malformed(Some(self.packet), rule)
    }

    #[inline]
    pub(crate) fn protocol(&self, rule: &'static str) -> DecodeError {
        DecodeError::protocol(Some(self.packet), rule)
    }

    /// A malformed-packet error citing the v5 or 3.1.1 id of the same rule.
    #[inline]
    pub(crate) fn malformed_v(&self, v5: &'static str, v3: &'static str) -> DecodeError {
        self.malformed(rule(self.version, v5, v3))
    }

    #[inline]
    pub(crate) fn is_v5(&self) -> bool {
        self.version.is_v5()
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    #[inline]
    fn short(&self) -> DecodeError {
        self.malformed("packet ends before its last field")
    }

    /// Errors unless every byte of the body was read.
    #[inline]
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.malformed("bytes left over after the packet's last field"))
        }
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let Some(&b) = self.buf.first() else {
            return Err(self.short());
        };
        self.buf.advance(1);
        Ok(b)
    }

    #[inline]
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        match *self.buf {
            [a, b, ..] => {
                self.buf.advance(2);
                Ok(u16::from_be_bytes([a, b]))
            }
            _ => Err(self.short()),
        }
    }

    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        match *self.buf {
            [a, b, c, d, ..] => {
                self.buf.advance(4);
                Ok(u32::from_be_bytes([a, b, c, d]))
            }
            _ => Err(self.short()),
        }
    }

    /// Skips a zero byte at the front (a variable byte integer of value 0) and says
    /// whether there was one.
    #[inline]
    pub(crate) fn skip_zero(&mut self) -> bool {
        if self.buf.first() == Some(&0) {
            self.buf.advance(1);
            true
        } else {
            false
        }
    }

    /// A variable byte integer inside the body.
    #[inline]
    pub(crate) fn var_int(&mut self) -> Result<u32, DecodeError> {
        match read_var_int(&self.buf) {
            Ok(Some((v, n))) => {
                self.buf.advance(n);
                Ok(v)
            }
            Ok(None) => Err(self.short()),
            Err(e) => Err(self.malformed(e.rule(self.version))),
        }
    }

    /// The next `n` bytes, sharing the packet's buffer.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<B, DecodeError> {
        if n > self.buf.len() {
            return Err(self.short());
        }
        Ok(self.buf.split_to(n))
    }

    /// How many length-prefixed fields, each followed by `gap` bytes, the rest of the body
    /// holds (counting a last, truncated one): the capacity to reserve for a list of them,
    /// bounded by the bytes actually received.
    #[inline]
    pub(crate) fn count_prefixed(&self, gap: usize) -> usize {
        let b = &self.buf[..];
        let (mut at, mut n) = (0, 0);
        while let [hi, lo, ..] = b[at.min(b.len())..] {
            at += 2 + usize::from(u16::from_be_bytes([hi, lo])) + gap;
            n += 1;
        }
        n
    }

    /// A reader over the rest of the body in a shared buffer: this one's for [`Bytes`], a
    /// copy for a borrowed slice.
    #[inline]
    pub(crate) fn into_owned(self) -> Reader {
        Reader::new(self.buf.into_bytes(), self.packet, self.version)
    }

    /// Everything left in the body.
    #[inline]
    pub(crate) fn rest(&mut self) -> B {
        core::mem::take(&mut self.buf)
    }

    /// Binary Data: a two-byte length and that many bytes.
    #[inline]
    pub(crate) fn binary(&mut self) -> Result<B, DecodeError> {
        let n = self.u16()? as usize;
        self.take(n)
    }

    /// A packet identifier, which must not be 0 ([MQTT-2.2.1-3], 3.1.1 [MQTT-2.3.1-1]).
    #[inline]
    pub(crate) fn packet_id(&mut self) -> Result<crate::PacketId, DecodeError> {
        let n = self.u16()?;
        crate::PacketId::new(n).ok_or_else(|| {
            self.protocol(rule(
                self.version,
                "[MQTT-2.2.1-3] packet identifier is 0",
                "[MQTT-2.3.1-1] packet identifier is 0",
            ))
        })
    }

    pub(crate) fn string_error(&self, e: StringError) -> DecodeError {
        let r = match (e, self.is_v5()) {
            (StringError::NotUtf8, false) => "[MQTT-1.5.3-1] ill-formed UTF-8",
            (StringError::Null, false) => "[MQTT-1.5.3-2] string contains U+0000",
            (StringError::EmptyTopic, _) => "[MQTT-4.7.3-1] topic is empty",
            (StringError::WildcardInTopicName, _) => {
                "[MQTT-3.3.2-2] topic name contains a wildcard"
            }
            // 3.1.1 numbers the wildcard rules of section 4.7.1 one higher than 5.0 does.
            (StringError::MisplacedMultiLevelWildcard, true) => {
                "[MQTT-4.7.1-1] '#' must be the whole last level of a topic filter"
            }
            (StringError::MisplacedMultiLevelWildcard, false) => {
                "[MQTT-4.7.1-2] '#' must be the whole last level of a topic filter"
            }
            (StringError::MisplacedSingleLevelWildcard, true) => {
                "[MQTT-4.7.1-2] '+' must fill a whole level of a topic filter"
            }
            (StringError::MisplacedSingleLevelWildcard, false) => {
                "[MQTT-4.7.1-3] '+' must fill a whole level of a topic filter"
            }
            (StringError::InvalidSharedSubscription, _) => {
                "[MQTT-4.8.2-2] shared subscription needs $share/{ShareName}/{filter}"
            }
            (StringError::EmptyShareName, _) => {
                "[MQTT-4.8.2-1] shared subscription has an empty ShareName"
            }
            (StringError::NotUtf8, true) => "[MQTT-1.5.4-1] ill-formed UTF-8",
            (StringError::Null, true) => "[MQTT-1.5.4-2] string contains U+0000",
            (StringError::TooLong, _) => "[MQTT-1.5.4-1] string longer than 65,535 bytes",
        };
        self.malformed(r)
    }
}

impl Reader<Bytes> {
    /// A UTF-8 Encoded String.
    #[inline]
    pub(crate) fn string(&mut self) -> Result<MqttString, DecodeError> {
        let b = self.binary()?;
        MqttString::from_wire(b).map_err(|e| self.string_error(e))
    }

    /// A topic name (possibly empty; the caller decides whether empty is allowed).
    #[inline]
    pub(crate) fn topic_name(&mut self) -> Result<TopicName, DecodeError> {
        let b = self.binary()?;
        TopicName::from_wire(b).map_err(|e| self.string_error(e))
    }

    /// A topic name outside a PUBLISH (the Will Topic), where a wildcard breaks the general
    /// rule of section 4.7 rather than PUBLISH's own [MQTT-3.3.2-2]: `wildcard_rule` is what
    /// to cite then.
    pub(crate) fn topic_name_citing(
        &mut self,
        wildcard_rule: &'static str,
    ) -> Result<TopicName, DecodeError> {
        let b = self.binary()?;
        TopicName::from_wire(b).map_err(|e| match e {
            StringError::WildcardInTopicName => self.malformed(wildcard_rule),
            e => self.string_error(e),
        })
    }

    /// A topic filter. In v5 a shared subscription's ShareName is checked first, so that a
    /// wildcard in it is reported as the ShareName's fault ([MQTT-4.8.2-2]).
    #[inline]
    pub(crate) fn topic_filter(&mut self) -> Result<TopicFilter, DecodeError> {
        let b = self.binary()?;
        if self.is_v5()
            && let Some(Err(e)) = crate::string::split_shared(&b)
        {
            return Err(self.string_error(e));
        }
        TopicFilter::from_wire(b).map_err(|e| self.string_error(e))
    }
}

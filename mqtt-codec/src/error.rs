//! Decode and encode errors.

use core::fmt;

use crate::{PacketType, ReasonCode};

/// What kind of rule a decoded packet broke.
///
/// Each kind maps to the MQTT 5.0 reason code the receiver sends back (see
/// [`DecodeError::reason_code`]); under MQTT 3.1.1 every kind simply closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The bytes do not form a packet the specification allows (reason code 0x81).
    Malformed,
    /// The packet is well formed but breaks a protocol rule (reason code 0x82).
    ProtocolError,
    /// The fixed header declares a packet larger than the receiver's maximum (reason code 0x95).
    PacketTooLarge {
        /// The whole packet's size in bytes, fixed header included, as declared.
        size: u64,
        /// The maximum the receiver accepts.
        max: u32,
    },
    /// A CONNECT names a protocol or protocol level this codec does not speak (reason code
    /// 0x84; 3.1.1 return code 0x01).
    UnsupportedProtocolVersion {
        /// The protocol level byte the CONNECT carried (0 when the name itself was wrong).
        level: u8,
    },
}

/// A packet could not be decoded: what went wrong, in which packet, and the rule it broke.
///
/// Every decode error is fatal to the connection that produced it: MQTT has no way to skip
/// a bad packet. [`reason_code`](Self::reason_code) gives the code to put in the CONNACK or
/// DISCONNECT that a v5 receiver sends before closing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DecodeError {
    kind: DecodeErrorKind,
    packet: Option<PacketType>,
    rule: &'static str,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed packet"),
            Self::ProtocolError => f.write_str("protocol error"),
            Self::PacketTooLarge { size, max } => {
                write!(f, "packet too large ({size} bytes, maximum {max})")
            }
            Self::UnsupportedProtocolVersion { level } => {
                write!(f, "unsupported protocol version (level {level})")
            }
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.packet {
            Some(p) => write!(f, "{} in {}: {}", self.kind, p, self.rule),
            None => write!(f, "{}: {}", self.kind, self.rule),
        }
    }
}

impl DecodeError {
    pub(crate) const fn new(
        kind: DecodeErrorKind,
        packet: Option<PacketType>,
        rule: &'static str,
    ) -> Self {
        Self { kind, packet, rule }
    }

    pub(crate) const fn malformed(packet: Option<PacketType>, rule: &'static str) -> Self {
        Self::new(DecodeErrorKind::Malformed, packet, rule)
    }

    pub(crate) const fn protocol(packet: Option<PacketType>, rule: &'static str) -> Self {
        Self::new(DecodeErrorKind::ProtocolError, packet, rule)
    }

    /// What kind of rule was broken.
    pub fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// The packet type being decoded, when the fixed header got that far.
    pub fn packet(&self) -> Option<PacketType> {
        self.packet
    }

    /// The rule that was broken, in words, starting with its normative statement id in
    /// brackets where the specification gives one (for example
    /// `"[MQTT-3.3.2-2] topic name contains a wildcard"`).
    pub fn rule(&self) -> &'static str {
        self.rule
    }

    /// The normative statement id the error cites, without brackets (`"MQTT-3.3.2-2"`), if any.
    pub fn rule_id(&self) -> Option<&'static str> {
        let rest = self.rule.strip_prefix('[')?;
        let end = rest.find(']')?;
        Some(&rest[..end])
    }

    /// The MQTT 5.0 reason code a receiver sends for this error (in a CONNACK when the
    /// CONNECT was bad, else in a DISCONNECT).
    pub fn reason_code(&self) -> ReasonCode {
        match self.kind {
            DecodeErrorKind::Malformed => ReasonCode::MALFORMED_PACKET,
            DecodeErrorKind::ProtocolError => ReasonCode::PROTOCOL_ERROR,
            DecodeErrorKind::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeErrorKind::UnsupportedProtocolVersion { .. } => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
        }
    }
}

/// A packet could not be encoded: it holds something the chosen protocol version cannot
/// carry, or a value outside what the specification allows.
///
/// Encoding never writes partial output for a packet that fails: every check runs before
/// the first byte is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The field has no representation in this protocol version (for example v5
    /// properties, or a non-success reason code on a 3.1.1 PUBACK).
    #[error("{packet} cannot carry {field} in MQTT {version}")]
    NotInVersion {
        /// The packet being encoded.
        packet: PacketType,
        /// The field that cannot be carried.
        field: &'static str,
        /// The protocol version asked for.
        version: crate::ProtocolVersion,
    },
    /// A value is outside the range the specification allows.
    #[error("{packet}: {rule}")]
    InvalidValue {
        /// The packet being encoded.
        packet: PacketType,
        /// The rule the value breaks, citing its normative id where there is one.
        rule: &'static str,
    },
    /// The packet's remaining length would exceed 268,435,455 bytes.
    #[error("{packet} too large to encode: remaining length {remaining_length}")]
    TooLarge {
        /// The packet being encoded.
        packet: PacketType,
        /// The remaining length it would need.
        remaining_length: usize,
    },
    /// The buffer had less room than the packet's encoded length.
    #[error("buffer too small: {needed} bytes needed, {available} available")]
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes the buffer has room for.
        available: usize,
    },
}

//! The acknowledgements and the packets that carry only a reason code and properties:
//! PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT and AUTH.

use alloc::vec::Vec;

use bytes::BufMut;

use crate::coding::{Body, Reader, rule};
use crate::in_place::put_array;
use crate::properties::{Properties, PropertySet, encoded_props_len};
use crate::{
    AckProperties, AuthProperties, DecodeError, DisconnectProperties, EncodeError, PacketId,
    PacketType, ProtocolVersion, ReasonCode,
};

/// PUBACK, PUBREC, PUBREL or PUBCOMP (sections 3.4 to 3.7): which one is the [`Packet`]
/// variant that holds it.
///
/// [`Packet`]: crate::Packet
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PubResponse {
    /// The identifier of the PUBLISH (or PUBREC, PUBREL) being answered.
    pub packet_id: PacketId,
    /// Reason code (v5); 3.1.1 can only carry Success.
    pub reason_code: ReasonCode,
    /// v5 properties (must be empty for 3.1.1).
    pub properties: AckProperties,
}

fn reason_rule(packet: PacketType) -> &'static str {
    match packet {
        PacketType::PubAck => "[MQTT-3.4.2-1] not a PUBACK reason code",
        PacketType::PubRec => "[MQTT-3.5.2-1] not a PUBREC reason code",
        PacketType::PubRel => "[MQTT-3.6.2-1] not a PUBREL reason code",
        PacketType::PubComp => "[MQTT-3.7.2-1] not a PUBCOMP reason code",
        PacketType::SubAck => "[MQTT-3.9.3-2] not a SUBACK reason code",
        PacketType::UnsubAck => "[MQTT-3.11.3-2] not an UNSUBACK reason code",
        PacketType::Disconnect => "[MQTT-3.14.2-1] not a DISCONNECT reason code",
        PacketType::Auth => "[MQTT-3.15.2-1] not an AUTH reason code",
        _ => "reason code not valid for this packet",
    }
}

/// Reads a reason code that `r.packet` must allow.
fn read_reason<B: Body>(r: &mut Reader<B>) -> Result<ReasonCode, DecodeError> {
    let rc = ReasonCode(r.u8()?);
    if !rc.allowed_in(r.packet) {
        return Err(r.malformed(reason_rule(r.packet)));
    }
    Ok(rc)
}

fn check_reason(rc: ReasonCode, packet: PacketType) -> Result<(), EncodeError> {
    if rc.allowed_in(packet) {
        Ok(())
    } else {
        Err(EncodeError::InvalidValue {
            packet,
            rule: reason_rule(packet),
        })
    }
}

/// Reads what follows the fixed part of a v5 PUBACK-like, DISCONNECT or AUTH packet: a
/// reason code and properties, either of which the sender may leave out when it has the
/// default value (Success, no properties).
fn read_reason_and_props<B: Body, P: Default>(
    r: &mut Reader<B>,
    decode: fn(&mut Reader<B>) -> Result<P, DecodeError>,
) -> Result<(ReasonCode, P), DecodeError> {
    if r.is_empty() {
        return Ok((ReasonCode::SUCCESS, P::default()));
    }
    let rc = read_reason(r)?;
    if r.is_empty() {
        return Ok((rc, P::default()));
    }
    Ok((rc, decode(r)?))
}

/// Length of a reason code and properties written in their shortest form.
fn reason_and_props_len(
    rc: ReasonCode,
    props: &impl PropertySet,
    packet: PacketType,
) -> Result<usize, EncodeError> {
    check_reason(rc, packet)?;
    Ok(if props.is_empty() {
        usize::from(rc != ReasonCode::SUCCESS)
    } else {
        1 + encoded_props_len(props, packet, ProtocolVersion::V5)?
    })
}

fn write_reason_and_props(rc: ReasonCode, props: &impl PropertySet, buf: &mut impl BufMut) {
    if props.is_empty() {
        if rc != ReasonCode::SUCCESS {
            buf.put_u8(rc.0);
        }
    } else {
        buf.put_u8(rc.0);
        props.write(buf);
    }
}

fn v3_only_success(
    rc: ReasonCode,
    props: &impl PropertySet,
    packet: PacketType,
    version: ProtocolVersion,
) -> Result<(), EncodeError> {
    if rc != ReasonCode::SUCCESS {
        return Err(EncodeError::NotInVersion {
            packet,
            field: "a reason code",
            version,
        });
    }
    encoded_props_len(props, packet, version).map(|_| ())
}

impl PubResponse {
    /// A successful response with no properties.
    pub fn new(packet_id: PacketId) -> Self {
        Self {
            packet_id,
            reason_code: ReasonCode::SUCCESS,
            properties: AckProperties::default(),
        }
    }

    pub(crate) fn decode<B: Body>(r: &mut Reader<B>) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let (reason_code, properties) = if r.is_v5() {
            read_reason_and_props(r, AckProperties::decode)?
        } else {
            (ReasonCode::SUCCESS, AckProperties::default())
        };
        Ok(Self {
            packet_id,
            reason_code,
            properties,
        })
    }

    pub(crate) fn body_len(
        &self,
        packet: PacketType,
        version: ProtocolVersion,
    ) -> Result<usize, EncodeError> {
        if version.is_v5() {
            Ok(2 + reason_and_props_len(self.reason_code, &self.properties, packet)?)
        } else {
            v3_only_success(self.reason_code, &self.properties, packet, version)?;
            Ok(2)
        }
    }

    /// Whether this is the common acknowledgement, Success without properties: the same
    /// four bytes in both versions, valid for each of the four packets.
    #[inline]
    pub(crate) fn is_plain(&self) -> bool {
        self.reason_code == ReasonCode::SUCCESS && self.properties.is_empty()
    }

    /// Encodes a plain acknowledgement (see [`PubResponse::is_plain`]) whose fixed
    /// header's first byte is `first`: nothing to measure or check but the room.
    #[inline]
    pub(crate) fn encode_plain(&self, first: u8, buf: &mut impl BufMut) -> Result<(), EncodeError> {
        let [hi, lo] = self.packet_id.get().to_be_bytes();
        put_array(buf, [first, 2, hi, lo])
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            write_reason_and_props(self.reason_code, &self.properties, buf);
        }
    }
}

/// SUBACK: the server's answer to a SUBSCRIBE (section 3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SubAck {
    /// The SUBSCRIBE's identifier.
    pub packet_id: PacketId,
    /// v5 properties (must be empty for 3.1.1).
    pub properties: AckProperties,
    /// One code per requested filter, in order: the granted QoS (0x00 to 0x02) or a failure.
    /// 3.1.1 has only 0x00, 0x01, 0x02 and 0x80 (Failure).
    pub reason_codes: Vec<ReasonCode>,
}

fn v3_suback_code(rc: ReasonCode) -> bool {
    matches!(rc.0, 0x00 | 0x01 | 0x02 | 0x80)
}

impl SubAck {
    pub(crate) fn decode<B: Body>(r: &mut Reader<B>) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = if r.is_v5() {
            AckProperties::decode(r)?
        } else {
            AckProperties::default()
        };
        if r.is_empty() {
            return Err(r.malformed_v(
                "[MQTT-3.9.3-2] SUBACK has no reason code",
                "[MQTT-3.8.4-5] SUBACK has no return code",
            ));
        }
        let mut reason_codes = Vec::with_capacity(r.remaining());
        while !r.is_empty() {
            let rc = ReasonCode(r.u8()?);
            let ok = if r.is_v5() {
                rc.allowed_in(PacketType::SubAck)
            } else {
                v3_suback_code(rc)
            };
            if !ok {
                return Err(r.malformed(rule(
                    r.version,
                    "[MQTT-3.9.3-2] not a SUBACK reason code",
                    "[MQTT-3.9.3-2] SUBACK return code is reserved",
                )));
            }
            reason_codes.push(rc);
        }
        Ok(Self {
            packet_id,
            properties,
            reason_codes,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        const P: PacketType = PacketType::SubAck;
        if self.reason_codes.is_empty() {
            return Err(EncodeError::InvalidValue {
                packet: P,
                rule: "[MQTT-3.9.3-2] SUBACK needs a reason code per filter",
            });
        }
        for &rc in &self.reason_codes {
            if version.is_v5() {
                check_reason(rc, P)?;
            } else if !v3_suback_code(rc) {
                return Err(EncodeError::NotInVersion {
                    packet: P,
                    field: "this reason code",
                    version,
                });
            }
        }
        Ok(2 + encoded_props_len(&self.properties, P, version)? + self.reason_codes.len())
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write(buf);
        }
        for rc in &self.reason_codes {
            buf.put_u8(rc.0);
        }
    }
}

/// UNSUBACK: the server's answer to an UNSUBSCRIBE (section 3.11).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct UnsubAck {
    /// The UNSUBSCRIBE's identifier.
    pub packet_id: PacketId,
    /// v5 properties (must be empty for 3.1.1).
    pub properties: AckProperties,
    /// v5: one code per filter, in order. 3.1.1 carries none, so this must be empty there.
    pub reason_codes: Vec<ReasonCode>,
}

impl UnsubAck {
    pub(crate) fn decode<B: Body>(r: &mut Reader<B>) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        if !r.is_v5() {
            return Ok(Self {
                packet_id,
                properties: AckProperties::default(),
                reason_codes: Vec::new(),
            });
        }
        let properties = AckProperties::decode(r)?;
        if r.is_empty() {
            return Err(r.malformed("[MQTT-3.11.3-2] UNSUBACK has no reason code"));
        }
        let mut reason_codes = Vec::with_capacity(r.remaining());
        while !r.is_empty() {
            reason_codes.push(read_reason(r)?);
        }
        Ok(Self {
            packet_id,
            properties,
            reason_codes,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        const P: PacketType = PacketType::UnsubAck;
        if !version.is_v5() {
            if !self.reason_codes.is_empty() {
                return Err(EncodeError::NotInVersion {
                    packet: P,
                    field: "reason codes",
                    version,
                });
            }
            encoded_props_len(&self.properties, P, version)?;
            return Ok(2);
        }
        if self.reason_codes.is_empty() {
            return Err(EncodeError::InvalidValue {
                packet: P,
                rule: "[MQTT-3.11.3-2] UNSUBACK needs a reason code per filter",
            });
        }
        for &rc in &self.reason_codes {
            check_reason(rc, P)?;
        }
        Ok(2 + encoded_props_len(&self.properties, P, version)? + self.reason_codes.len())
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write(buf);
            for rc in &self.reason_codes {
                buf.put_u8(rc.0);
            }
        }
    }
}

/// DISCONNECT (section 3.14). Under 3.1.1 only the client sends it and it carries nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Disconnect {
    /// Disconnect Reason Code (v5); 0x00 Normal disconnection.
    pub reason_code: ReasonCode,
    /// v5 properties (must be empty for 3.1.1).
    pub properties: Properties<DisconnectProperties>,
}

impl Disconnect {
    /// A DISCONNECT with this reason code and no properties.
    pub fn new(reason_code: ReasonCode) -> Self {
        Self {
            reason_code,
            properties: Properties::none(),
        }
    }

    pub(crate) fn decode<B: Body>(r: &mut Reader<B>) -> Result<Self, DecodeError> {
        let (reason_code, properties) = if r.is_v5() {
            read_reason_and_props(r, Properties::<DisconnectProperties>::decode)?
        } else {
            (ReasonCode::SUCCESS, Properties::none())
        };
        Ok(Self {
            reason_code,
            properties,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        const P: PacketType = PacketType::Disconnect;
        if version.is_v5() {
            reason_and_props_len(self.reason_code, &self.properties, P)
        } else {
            v3_only_success(self.reason_code, &self.properties, P, version)?;
            Ok(0)
        }
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        if version.is_v5() {
            write_reason_and_props(self.reason_code, &self.properties, buf);
        }
    }
}

/// AUTH: a step of v5 enhanced authentication (section 3.15).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Auth {
    /// 0x00 Success, 0x18 Continue authentication or 0x19 Re-authenticate.
    pub reason_code: ReasonCode,
    /// Properties; the Authentication Method is required unless the packet is a bare
    /// Success (section 3.15.2.2.2).
    pub properties: Properties<AuthProperties>,
}

impl Auth {
    pub(crate) fn decode<B: Body>(r: &mut Reader<B>) -> Result<Self, DecodeError> {
        // The Reason Code and Property Length may be left out only together (section
        // 3.15.2.1): unlike PUBACK or DISCONNECT, a lone Reason Code is cut short.
        if r.is_empty() {
            return Ok(Self::default());
        }
        let reason_code = read_reason(r)?;
        let properties = Properties::<AuthProperties>::decode(r)?;
        if properties.authentication_method.is_none() {
            return Err(r.protocol("AUTH without an Authentication Method (section 3.15.2.2.2)"));
        }
        Ok(Self {
            reason_code,
            properties,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        const P: PacketType = PacketType::Auth;
        if !version.is_v5() {
            return Err(EncodeError::NotInVersion {
                packet: P,
                field: "AUTH",
                version,
            });
        }
        check_reason(self.reason_code, P)?;
        if self.reason_code == ReasonCode::SUCCESS && self.properties.is_empty() {
            return Ok(0);
        }
        if self.properties.authentication_method.is_none() {
            return Err(EncodeError::InvalidValue {
                packet: P,
                rule: "AUTH needs an Authentication Method (section 3.15.2.2.2)",
            });
        }
        Ok(1 + encoded_props_len(&self.properties, P, version)?)
    }

    pub(crate) fn write(&self, buf: &mut impl BufMut) {
        if self.reason_code == ReasonCode::SUCCESS && self.properties.is_empty() {
            return;
        }
        buf.put_u8(self.reason_code.0);
        self.properties.write(buf);
    }
}

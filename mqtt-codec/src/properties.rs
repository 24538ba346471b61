//! MQTT 5.0 properties (section 2.2.2): one struct per packet family, holding exactly the
//! properties that packet may carry.
//!
//! Decoding rejects an identifier the packet may not carry (Malformed Packet), a property
//! given twice where only User Property and, in PUBLISH, Subscription Identifier may repeat
//! (Protocol Error), and values out of range (Protocol Error). The struct types make it
//! impossible to encode a property into a packet that may not carry it.

use alloc::sync::Arc;
use core::fmt;
use core::num::{NonZeroU16, NonZeroU32};

use bytes::{BufMut, Bytes};

use crate::coding::{
    Body, MAX_VARIABLE_BYTE_INTEGER, Reader, put_binary, put_var_int, var_int_len,
};
use crate::list::{List, Repeated, SubscriptionIds};
use crate::{DecodeError, EncodeError, MqttString, PacketType, ProtocolVersion, QoS, TopicName};

/// A property identifier (section 2.2.2.2). Unknown values are kept, shown in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PropertyId(pub u8);

macro_rules! property_ids {
    ($($name:ident = $v:literal, $text:literal;)*) => {
        impl PropertyId {
            $(#[doc = concat!($text, " (", stringify!($v), ").")] pub const $name: Self = Self($v);)*

            /// The property's name as the specification writes it.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($v => Some($text),)*
                    _ => None,
                }
            }

            /// Every property identifier MQTT 5.0 defines.
            pub const ALL: &'static [PropertyId] = &[$(Self::$name),*];
        }
    };
}

property_ids! {
    PAYLOAD_FORMAT_INDICATOR = 0x01, "Payload Format Indicator";
    MESSAGE_EXPIRY_INTERVAL = 0x02, "Message Expiry Interval";
    CONTENT_TYPE = 0x03, "Content Type";
    RESPONSE_TOPIC = 0x08, "Response Topic";
    CORRELATION_DATA = 0x09, "Correlation Data";
    SUBSCRIPTION_IDENTIFIER = 0x0B, "Subscription Identifier";
    SESSION_EXPIRY_INTERVAL = 0x11, "Session Expiry Interval";
    ASSIGNED_CLIENT_IDENTIFIER = 0x12, "Assigned Client Identifier";
    SERVER_KEEP_ALIVE = 0x13, "Server Keep Alive";
    AUTHENTICATION_METHOD = 0x15, "Authentication Method";
    AUTHENTICATION_DATA = 0x16, "Authentication Data";
    REQUEST_PROBLEM_INFORMATION = 0x17, "Request Problem Information";
    WILL_DELAY_INTERVAL = 0x18, "Will Delay Interval";
    REQUEST_RESPONSE_INFORMATION = 0x19, "Request Response Information";
    RESPONSE_INFORMATION = 0x1A, "Response Information";
    SERVER_REFERENCE = 0x1C, "Server Reference";
    REASON_STRING = 0x1F, "Reason String";
    RECEIVE_MAXIMUM = 0x21, "Receive Maximum";
    TOPIC_ALIAS_MAXIMUM = 0x22, "Topic Alias Maximum";
    TOPIC_ALIAS = 0x23, "Topic Alias";
    MAXIMUM_QOS = 0x24, "Maximum QoS";
    RETAIN_AVAILABLE = 0x25, "Retain Available";
    USER_PROPERTY = 0x26, "User Property";
    MAXIMUM_PACKET_SIZE = 0x27, "Maximum Packet Size";
    WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28, "Wildcard Subscription Available";
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29, "Subscription Identifier Available";
    SHARED_SUBSCRIPTION_AVAILABLE = 0x2A, "Shared Subscription Available";
}

impl fmt::Debug for PropertyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "PropertyId(0x{:02X} {n})", self.0),
            None => write!(f, "PropertyId(0x{:02X})", self.0),
        }
    }
}

/// A Subscription Identifier: 1 to 268,435,455 (section 3.8.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct SubscriptionId(NonZeroU32);

impl SubscriptionId {
    /// The largest subscription identifier.
    pub const MAX: u32 = MAX_VARIABLE_BYTE_INTEGER;

    /// The identifier `n`, or `None` outside 1..=268,435,455.
    pub const fn new(n: u32) -> Option<Self> {
        if n > Self::MAX {
            return None;
        }
        match NonZeroU32::new(n) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }

    /// The identifier as a number.
    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// The smallest subscription identifier, 1.
    pub const MIN: Self = Self(NonZeroU32::MIN);
}

/// A User Property: a name and a value, both UTF-8 strings. Order and repeats are kept.
pub type UserProperty = (MqttString, MqttString);

/// How one property value type reads, measures and writes itself.
pub(crate) trait Value: Sized {
    /// Reads the value; `range` is the rule to cite when the value is out of range.
    fn read(r: &mut Reader, range: &'static str) -> Result<Self, DecodeError>;
    fn len(&self) -> usize;
    fn write(&self, buf: &mut impl BufMut);
    /// Whether the value may be encoded (only types that can hold out-of-range values check).
    fn valid(&self) -> bool {
        true
    }
}

impl Value for bool {
    fn read(r: &mut Reader, range: &'static str) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(r.protocol(range)),
        }
    }
    fn len(&self) -> usize {
        1
    }
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(u8::from(*self));
    }
}

impl Value for u16 {
    fn read(r: &mut Reader, _: &'static str) -> Result<Self, DecodeError> {
        r.u16()
    }
    fn len(&self) -> usize {
        2
    }
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u16(*self);
    }
}

impl Value for u32 {
    fn read(r: &mut Reader, _: &'static str) -> Result<Self, DecodeError> {
        r.u32()
    }
    fn len(&self) -> usize {
        4
    }
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u32(*self);
    }
}

impl Value for NonZeroU16 {
    fn read(r: &mut Reader, range: &'static str) -> Result<Self, DecodeError> {
        NonZeroU16::new(r.u16()?).ok_or_else(|| r.protocol(range))
    }
    fn len(&self) -> usize {
        2
    }
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u16(self.get());
    }
}

impl Value for NonZeroU32 {
    fn read(r: &mut Reader, range: &'static str) -> Result<Self, DecodeError> {
        NonZeroU32::new(r.u32()?).ok_or_else(|| r.protocol(range))
    }
    fn len(&self) -> usize {
        4
    }
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u32(self.get());
    }
}

/// Maximum QoS: 0 or 1 only (section 3.2.2.3.4).
impl Value for QoS {
    fn read(r: &mut Reader, range: &'static str) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            _ => Err(r.protocol(range)),
        }
    }
    fn len(&self) -> usize {
        1
    }
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(*self as u8);
    }
    fn valid(&self) -> bool {
        *self != QoS::ExactlyOnce
    }
}

impl Value for MqttString {
    fn read(r: &mut Reader, _: &'static str) -> Result<Self, DecodeError> {
        r.string()
    }
    fn len(&self) -> usize {
        2 + self.as_bytes().len()
    }
    fn write(&self, buf: &mut impl BufMut) {
        put_binary(buf, self.as_bytes());
    }
}

/// Response Topic: a topic name, non-empty and without wildcards ([MQTT-3.3.2-14]).
impl Value for TopicName {
    fn read(r: &mut Reader, _: &'static str) -> Result<Self, DecodeError> {
        let s = r.string()?;
        if s.is_empty() {
            return Err(r.malformed("[MQTT-4.7.3-1] response topic is empty"));
        }
        TopicName::new(s.into_inner())
            .map_err(|_| r.malformed("[MQTT-3.3.2-14] response topic contains a wildcard"))
    }
    fn len(&self) -> usize {
        2 + self.as_mqtt_str().as_bytes().len()
    }
    fn write(&self, buf: &mut impl BufMut) {
        put_binary(buf, self.as_mqtt_str().as_bytes());
    }
    fn valid(&self) -> bool {
        !self.is_empty()
    }
}

impl Value for Bytes {
    fn read(r: &mut Reader, _: &'static str) -> Result<Self, DecodeError> {
        r.binary()
    }
    fn len(&self) -> usize {
        2 + <[u8]>::len(self)
    }
    fn write(&self, buf: &mut impl BufMut) {
        put_binary(buf, self);
    }
    fn valid(&self) -> bool {
        <[u8]>::len(self) <= u16::MAX as usize
    }
}

impl Value for SubscriptionId {
    fn read(r: &mut Reader, range: &'static str) -> Result<Self, DecodeError> {
        let v = r.var_int()?;
        SubscriptionId::new(v).ok_or_else(|| r.protocol(range))
    }
    fn len(&self) -> usize {
        var_int_len(self.get())
    }
    fn write(&self, buf: &mut impl BufMut) {
        put_var_int(buf, self.get());
    }
}

impl Value for UserProperty {
    #[inline]
    fn read(r: &mut Reader, _: &'static str) -> Result<Self, DecodeError> {
        Ok((r.string()?, r.string()?))
    }
    fn len(&self) -> usize {
        4 + self.0.as_bytes().len() + self.1.as_bytes().len()
    }
    fn write(&self, buf: &mut impl BufMut) {
        put_binary(buf, self.0.as_bytes());
        put_binary(buf, self.1.as_bytes());
    }
}

/// A packet's v5 properties behind one shared pointer, for the packets that travel most
/// (PUBLISH, DISCONNECT, AUTH): a packet without any, every 3.1.1 packet and most v5 ones,
/// holds a null pointer and allocates nothing; the packet stays small to move; and the
/// copies of a message a broker makes for each subscriber share its properties.
///
/// It reads as the property struct it holds (`publish.properties.topic_alias`), an empty
/// one when nothing is set. Writing through it (`publish.properties.topic_alias = ..`)
/// allocates the struct on the first write, and copies it first if another packet shares
/// it (copy on write): so read before writing what may already hold the value.
///
/// ```
/// use mqtt_codec::{Publish, TopicName};
///
/// let mut p = Publish::new(TopicName::new("a/b")?, "21.5");
/// assert!(p.properties.is_empty() && p.properties.get_mut().is_none());
/// p.properties.message_expiry_interval = Some(60);
/// assert_eq!(p.properties.message_expiry_interval, Some(60));
/// # Ok::<(), mqtt_codec::StringError>(())
/// ```
#[derive(Clone)]
pub struct Properties<T>(Option<Arc<T>>);

/// A property struct with an empty instance to lend while none is allocated.
pub trait EmptyProperties: Default + 'static {
    /// The empty instance.
    fn empty() -> &'static Self;

    /// Whether no property is set.
    fn is_empty(&self) -> bool;
}

impl<T> Properties<T> {
    /// No properties.
    pub const fn none() -> Self {
        Self(None)
    }

    /// The properties for changing (copied first if shared), if any were ever set; `None`
    /// allocates nothing.
    pub fn get_mut(&mut self) -> Option<&mut T>
    where
        T: Clone,
    {
        self.0.as_mut().map(Arc::make_mut)
    }

    /// The properties, moved out (copied if shared; an empty struct if none).
    pub fn into_inner(self) -> T
    where
        T: Default + Clone,
    {
        self.0.map_or_else(T::default, |p| {
            Arc::try_unwrap(p).unwrap_or_else(|p| (*p).clone())
        })
    }
}

impl<T> Default for Properties<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T: EmptyProperties> From<T> for Properties<T> {
    /// `properties` behind the pointer; none allocated if no property is set.
    fn from(properties: T) -> Self {
        if EmptyProperties::is_empty(&properties) {
            return Self(None);
        }
        Self(Some(Arc::new(properties)))
    }
}

impl<T: EmptyProperties> core::ops::Deref for Properties<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        match &self.0 {
            Some(p) => p,
            None => T::empty(),
        }
    }
}

impl<T: EmptyProperties + Clone> core::ops::DerefMut for Properties<T> {
    /// Allocates the properties if none were set, or copies them if shared.
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(self.0.get_or_insert_with(Arc::default))
    }
}

impl<T: EmptyProperties + PartialEq> PartialEq for Properties<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: EmptyProperties + Eq> Eq for Properties<T> {}

impl<T: EmptyProperties + fmt::Debug> fmt::Debug for Properties<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(feature = "serde")]
impl<T: EmptyProperties + serde::Serialize> serde::Serialize for Properties<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<T: EmptyProperties + PropertySet> PropertySet for Properties<T> {
    #[inline]
    fn body_len(&self) -> usize {
        match &self.0 {
            Some(p) => p.body_len(),
            None => 0,
        }
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(PropertySet::is_empty)
    }

    #[inline]
    fn invalid(&self) -> Option<&'static str> {
        self.0.as_deref().and_then(PropertySet::invalid)
    }

    fn write(&self, buf: &mut impl BufMut) {
        match &self.0 {
            Some(p) => p.write(buf),
            None => put_var_int(buf, 0),
        }
    }
}

/// What every packet's property struct offers the encoder.
pub(crate) trait PropertySet {
    /// Bytes the properties take, without the Property Length.
    fn body_len(&self) -> usize;
    fn is_empty(&self) -> bool;
    /// The rule broken by the first property whose value cannot be encoded.
    fn invalid(&self) -> Option<&'static str>;
    /// Writes the Property Length and the properties.
    fn write(&self, buf: &mut impl BufMut);
}

/// Checks properties for encoding in `version` and returns the bytes they take with their
/// Property Length (0 under 3.1.1, where there must be none).
#[inline]
pub(crate) fn encoded_props_len(
    p: &impl PropertySet,
    packet: PacketType,
    version: ProtocolVersion,
) -> Result<usize, EncodeError> {
    if !version.is_v5() {
        return if p.is_empty() {
            Ok(0)
        } else {
            Err(EncodeError::NotInVersion {
                packet,
                field: "properties",
                version,
            })
        };
    }
    if let Some(rule) = p.invalid() {
        return Err(EncodeError::InvalidValue { packet, rule });
    }
    let n = p.body_len();
    if n > MAX_VARIABLE_BYTE_INTEGER as usize {
        return Err(EncodeError::TooLarge {
            packet,
            remaining_length: n,
        });
    }
    Ok(var_int_len(n as u32) + n)
}

/// Reads a Property Length and returns a reader bounded to the properties: over the same
/// memory for a shared buffer, over a copy of the properties for a borrowed slice (what
/// they hold outlives the view; only packets with properties pay for it).
#[inline]
pub(crate) fn property_reader<B: Body>(r: &mut Reader<B>) -> Result<Reader, DecodeError> {
    let len = r.var_int()? as usize;
    if len > r.remaining() {
        return Err(r.malformed("property length runs past the end of the packet"));
    }
    let body = r.take(len)?;
    Ok(Reader::new(body.into_bytes(), r.packet, r.version))
}

macro_rules! properties {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* $field:ident : $ty:ty = $id:ident, )*
            $( [repeated] $(#[$rm:meta])* $rfield:ident : $rty:ty = $rid:ident, )*
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        pub struct $name {
            $( $(#[$fm])* #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))] pub $field: Option<$ty>, )*
            $( $(#[$rm])* #[cfg_attr(feature = "serde", serde(skip_serializing_if = "crate::list::no_values"))] pub $rfield: $rty, )*
        }

        impl $name {
            /// Whether no property is set.
            pub fn is_empty(&self) -> bool {
                $( self.$field.is_none() && )* $( self.$rfield.is_empty() && )* true
            }

            /// Decodes a Property Length and the properties it covers.
            pub(crate) fn decode<B: Body>(r: &mut Reader<B>) -> Result<Self, DecodeError> {
                // Most packets carry none: a Property Length of 0 needs no sub-reader.
                if r.skip_zero() {
                    return Ok(Self::default());
                }
                let mut out = Self::default();
                $( let mut $rfield = <$rty as Repeated>::Builder::default(); )*
                let mut pr = property_reader(r)?;
                #[allow(unused_mut, unused_variables)] // UnsubscribeProperties has no single-valued property
                let mut seen: u64 = 0;
                while !pr.is_empty() {
                    let id = pr.var_int()?;
                    match id {
                        $( v if v == PropertyId::$id.0 as u32 => {
                            if seen & (1 << v) != 0 {
                                return Err(pr.protocol(concat!(
                                    "property ", stringify!($id), " included more than once"
                                )));
                            }
                            seen |= 1 << v;
                            out.$field = Some(Value::read(
                                &mut pr,
                                concat!("property ", stringify!($id), " has a value out of range"),
                            )?);
                        } )*
                        $( v if v == PropertyId::$rid.0 as u32 => {
                            <$rty as Repeated>::add(&mut $rfield, Value::read(
                                &mut pr,
                                concat!("property ", stringify!($rid), " has a value out of range"),
                            )?);
                        } )*
                        _ => {
                            return Err(pr.malformed(
                                "property identifier not valid for this packet (section 2.2.2.2)",
                            ));
                        }
                    }
                }
                $( out.$rfield = <$rty as Repeated>::finish($rfield); )*
                Ok(out)
            }
        }

        impl EmptyProperties for $name {
            fn empty() -> &'static Self {
                static EMPTY: $name = $name {
                    $( $field: None, )*
                    $( $rfield: <$rty as Repeated>::EMPTY, )*
                };
                &EMPTY
            }

            fn is_empty(&self) -> bool {
                $name::is_empty(self)
            }
        }

        impl Properties<$name> {
            /// Decodes a Property Length and the properties it covers, allocating only
            /// where there are some.
            #[allow(dead_code)] // not every property struct travels behind a pointer
            pub(crate) fn decode<B: Body>(r: &mut Reader<B>) -> Result<Self, DecodeError> {
                if r.skip_zero() {
                    return Ok(Self::none());
                }
                $name::decode(r).map(|p| Self(Some(Arc::new(p))))
            }
        }

        impl PropertySet for $name {
            fn body_len(&self) -> usize {
                let mut n = 0;
                $( if let Some(v) = &self.$field { n += 1 + Value::len(v); } )*
                $( for v in self.$rfield.iter() { n += 1 + Value::len(v); } )*
                n
            }

            fn is_empty(&self) -> bool {
                $name::is_empty(self)
            }

            fn invalid(&self) -> Option<&'static str> {
                $( if let Some(v) = &self.$field { if !Value::valid(v) {
                    return Some(concat!("property ", stringify!($id), " has a value out of range"));
                } } )*
                $( for v in self.$rfield.iter() { if !Value::valid(v) {
                    return Some(concat!("property ", stringify!($rid), " has a value out of range"));
                } } )*
                None
            }

            fn write(&self, buf: &mut impl BufMut) {
                put_var_int(buf, self.body_len() as u32);
                $( if let Some(v) = &self.$field { buf.put_u8(PropertyId::$id.0); Value::write(v, buf); } )*
                $( for v in self.$rfield.iter() { buf.put_u8(PropertyId::$rid.0); Value::write(v, buf); } )*
            }
        }
    };
}

properties! {
    /// Properties of a v5 CONNECT (section 3.1.2.11).
    pub struct ConnectProperties {
        /// Session Expiry Interval in seconds (0x11); absent means 0.
        session_expiry_interval: u32 = SESSION_EXPIRY_INTERVAL,
        /// Receive Maximum (0x21); absent means 65,535.
        receive_maximum: NonZeroU16 = RECEIVE_MAXIMUM,
        /// Maximum Packet Size the client accepts (0x27); absent means no limit.
        maximum_packet_size: NonZeroU32 = MAXIMUM_PACKET_SIZE,
        /// Topic Alias Maximum the client accepts (0x22); absent means 0.
        topic_alias_maximum: u16 = TOPIC_ALIAS_MAXIMUM,
        /// Request Response Information (0x19).
        request_response_information: bool = REQUEST_RESPONSE_INFORMATION,
        /// Request Problem Information (0x17); absent means true.
        request_problem_information: bool = REQUEST_PROBLEM_INFORMATION,
        /// Authentication Method for enhanced authentication (0x15).
        authentication_method: MqttString = AUTHENTICATION_METHOD,
        /// Authentication Data (0x16); only with an Authentication Method.
        authentication_data: Bytes = AUTHENTICATION_DATA,
        [repeated]
        /// User Properties (0x26), in order.
        user_properties: List<UserProperty> = USER_PROPERTY,
    }
}

properties! {
    /// Properties of a v5 Will Message (section 3.1.3.2).
    pub struct WillProperties {
        /// Will Delay Interval in seconds (0x18).
        will_delay_interval: u32 = WILL_DELAY_INTERVAL,
        /// Payload Format Indicator (0x01): true when the payload is UTF-8.
        payload_format_indicator: bool = PAYLOAD_FORMAT_INDICATOR,
        /// Message Expiry Interval in seconds (0x02).
        message_expiry_interval: u32 = MESSAGE_EXPIRY_INTERVAL,
        /// Content Type (0x03).
        content_type: MqttString = CONTENT_TYPE,
        /// Response Topic (0x08).
        response_topic: TopicName = RESPONSE_TOPIC,
        /// Correlation Data (0x09).
        correlation_data: Bytes = CORRELATION_DATA,
        [repeated]
        /// User Properties (0x26), in order.
        user_properties: List<UserProperty> = USER_PROPERTY,
    }
}

properties! {
    /// Properties of a v5 CONNACK (section 3.2.2.3).
    pub struct ConnAckProperties {
        /// Session Expiry Interval the server uses (0x11).
        session_expiry_interval: u32 = SESSION_EXPIRY_INTERVAL,
        /// Receive Maximum of the server (0x21).
        receive_maximum: NonZeroU16 = RECEIVE_MAXIMUM,
        /// Maximum QoS the server supports (0x24): 0 or 1; absent means 2.
        maximum_qos: QoS = MAXIMUM_QOS,
        /// Retain Available (0x25); absent means true.
        retain_available: bool = RETAIN_AVAILABLE,
        /// Maximum Packet Size the server accepts (0x27).
        maximum_packet_size: NonZeroU32 = MAXIMUM_PACKET_SIZE,
        /// Assigned Client Identifier (0x12).
        assigned_client_identifier: MqttString = ASSIGNED_CLIENT_IDENTIFIER,
        /// Topic Alias Maximum the server accepts (0x22).
        topic_alias_maximum: u16 = TOPIC_ALIAS_MAXIMUM,
        /// Reason String (0x1F).
        reason_string: MqttString = REASON_STRING,
        /// Wildcard Subscription Available (0x28); absent means true.
        wildcard_subscription_available: bool = WILDCARD_SUBSCRIPTION_AVAILABLE,
        /// Subscription Identifiers Available (0x29); absent means true.
        subscription_identifiers_available: bool = SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        /// Shared Subscription Available (0x2A); absent means true.
        shared_subscription_available: bool = SHARED_SUBSCRIPTION_AVAILABLE,
        /// Server Keep Alive in seconds (0x13), which the client must use.
        server_keep_alive: u16 = SERVER_KEEP_ALIVE,
        /// Response Information (0x1A).
        response_information: MqttString = RESPONSE_INFORMATION,
        /// Server Reference (0x1C).
        server_reference: MqttString = SERVER_REFERENCE,
        /// Authentication Method (0x15).
        authentication_method: MqttString = AUTHENTICATION_METHOD,
        /// Authentication Data (0x16).
        authentication_data: Bytes = AUTHENTICATION_DATA,
        [repeated]
        /// User Properties (0x26), in order.
        user_properties: List<UserProperty> = USER_PROPERTY,
    }
}

properties! {
    /// Properties of a v5 PUBLISH (section 3.3.2.3).
    pub struct PublishProperties {
        /// Payload Format Indicator (0x01): true when the payload is UTF-8.
        payload_format_indicator: bool = PAYLOAD_FORMAT_INDICATOR,
        /// Message Expiry Interval in seconds (0x02).
        message_expiry_interval: u32 = MESSAGE_EXPIRY_INTERVAL,
        /// Topic Alias (0x23); never 0.
        topic_alias: NonZeroU16 = TOPIC_ALIAS,
        /// Response Topic (0x08).
        response_topic: TopicName = RESPONSE_TOPIC,
        /// Correlation Data (0x09).
        correlation_data: Bytes = CORRELATION_DATA,
        /// Content Type (0x03).
        content_type: MqttString = CONTENT_TYPE,
        [repeated]
        /// User Properties (0x26), in order.
        user_properties: List<UserProperty> = USER_PROPERTY,
        [repeated]
        /// Subscription Identifiers (0x0B) of the matching subscriptions (server to client).
        subscription_identifiers: SubscriptionIds = SUBSCRIPTION_IDENTIFIER,
    }
}

properties! {
    /// Properties of the v5 acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and
    /// UNSUBACK.
    pub struct AckProperties {
        /// Reason String (0x1F).
        reason_string: MqttString = REASON_STRING,
        [repeated]
        /// User Properties (0x26), in order.
        user_properties: List<UserProperty> = USER_PROPERTY,
    }
}

properties! {
    /// Properties of a v5 SUBSCRIBE (section 3.8.2.1).
    pub struct SubscribeProperties {
        /// Subscription Identifier (0x0B), at most one.
        subscription_identifier: SubscriptionId = SUBSCRIPTION_IDENTIFIER,
        [repeated]
        /// User Properties (0x26), in order.
        user_properties: List<UserProperty> = USER_PROPERTY,
    }
}

properties! {
    /// Properties of a v5 UNSUBSCRIBE (section 3.10.2.1).
    pub struct UnsubscribeProperties {
        [repeated]
        /// User Properties (0x26), in order.
        user_properties: List<UserProperty> = USER_PROPERTY,
    }
}

properties! {
    /// Properties of a v5 DISCONNECT (section 3.14.2.2).
    pub struct DisconnectProperties {
        /// Session Expiry Interval (0x11); only a client may send it.
        session_expiry_interval: u32 = SESSION_EXPIRY_INTERVAL,
        /// Reason String (0x1F).
        reason_string: MqttString = REASON_STRING,
        /// Server Reference (0x1C).
        server_reference: MqttString = SERVER_REFERENCE,
        [repeated]
        /// User Properties (0x26), in order.
        user_properties: List<UserProperty> = USER_PROPERTY,
    }
}

properties! {
    /// Properties of a v5 AUTH (section 3.15.2.2).
    pub struct AuthProperties {
        /// Authentication Method (0x15).
        authentication_method: MqttString = AUTHENTICATION_METHOD,
        /// Authentication Data (0x16).
        authentication_data: Bytes = AUTHENTICATION_DATA,
        /// Reason String (0x1F).
        reason_string: MqttString = REASON_STRING,
        [repeated]
        /// User Properties (0x26), in order.
        user_properties: List<UserProperty> = USER_PROPERTY,
    }
}

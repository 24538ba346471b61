//! The client's configuration and what the server's CONNACK allowed.

use core::time::Duration;

use mqtt_codec::{
    Bytes, ConnAckProperties, ConnectProperties, DecodeContext, MAX_PACKET_SIZE, MqttString,
    ProtocolVersion, QoS, Will,
};

use super::ConnectError;
use crate::topic_alias::AutomaticAliases;

/// How a client connects and behaves. Fields are public; [`ClientConfig::new`] gives the
/// defaults; set fields on it (new fields may come in any release).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// MQTT 3.1.1 or 5.0, used for every packet of every connection (unless
    /// [`fallback_to_v3_1_1`](Self::fallback_to_v3_1_1) lets a 5.0 client fall back).
    pub protocol: ProtocolVersion,
    /// "5.0, else 3.1.1": with `protocol` 5.0, a server that refuses 5.0 (CONNACK 0x84
    /// Unsupported Protocol Version, or a 3.1.1 server's CONNACK with return code 1,
    /// [MQTT-3.1.2-2]) before any connection of this client was accepted makes the client
    /// switch to 3.1.1 for good: it reports
    /// [`Event::UnsupportedProtocolVersion`](super::Event::UnsupportedProtocolVersion) with
    /// `fallback: Some(V3_1_1)`, closes, and its next [`connect`](super::Client::connect),
    /// on a new transport, sends a 3.1.1 CONNECT. Off by default.
    ///
    /// The 3.1.1 configuration is [`for_v3_1_1`](Self::for_v3_1_1): the v5 properties that
    /// only tune the connection are dropped, and options 3.1.1 cannot carry make
    /// `connect` fail at once with [`ConnectError::NotInV3_1_1`](super::ConnectError::NotInV3_1_1),
    /// before any server is asked, rather than on meeting a 3.1.1 server.
    pub fallback_to_v3_1_1: bool,
    /// The Client Identifier. Empty asks the server to assign one (v5: read from the
    /// CONNACK's Assigned Client Identifier; 3.1.1 requires Clean Session then,
    /// [MQTT-3.1.3-7]).
    pub client_id: MqttString,
    /// Clean Start (v5) / Clean Session (3.1.1). Under v5 it is sent on the first
    /// connection only: reconnections resume the session. Under 3.1.1 it is sent as is
    /// on every connection.
    ///
    /// A client made with [`Client::new`](super::Client::new) holds no session state, so
    /// with `false` it still refuses a CONNACK with Session Present 1 ([MQTT-3.2.2-4]):
    /// the server would resume a session whose client half is lost. To take up a session
    /// the server kept without storing anything locally (a subscriber that wants its
    /// subscriptions and queued messages back after a restart), resume from an empty
    /// state instead: `Client::resume(config, SessionState::default())`.
    pub clean_start: bool,
    /// Keep Alive in seconds (0: off). A v5 server may replace it ([MQTT-3.1.2-21]).
    pub keep_alive: u16,
    /// User Name.
    pub username: Option<MqttString>,
    /// Password (3.1.1 needs a user name with it).
    pub password: Option<Bytes>,
    /// The Will Message (v5 will properties, including Will Delay Interval, inside).
    pub will: Option<Will>,
    /// v5 CONNECT properties: Session Expiry Interval, this client's Receive Maximum,
    /// Maximum Packet Size and Topic Alias Maximum (all enforced on what arrives),
    /// Authentication Method and Data (enhanced authentication), user properties.
    pub properties: ConnectProperties,
    /// How long to wait for CONNACK before giving up.
    pub connect_timeout: Duration,
    /// How long to wait for any packet after a PINGREQ; `None` means the keep-alive
    /// interval.
    pub ping_timeout: Option<Duration>,
    /// How many QoS 1/2 messages may wait to be sent (while disconnected or while the
    /// server's Receive Maximum is used up). Beyond it `publish` fails.
    pub max_queued: usize,
    /// v5: give topics aliases automatically, within the server's Topic Alias Maximum:
    /// off (the default: only aliases the application sets), to the first topics sent, or
    /// rebinding the least recently used alias to each new topic.
    pub automatic_topic_aliases: AutomaticAliases,
    /// The application answers incoming QoS 1 and QoS 2 messages itself, with
    /// [`Client::acknowledge`](super::Client::acknowledge): a PUBACK or PUBREC with the
    /// reason code and properties it chooses (v5). Off: the client answers each with
    /// Success as it delivers it.
    pub manual_acks: bool,
}

impl ClientConfig {
    /// Defaults: no fallback to 3.1.1, clean start, keep-alive 60 s, no credentials, no
    /// will, no properties, CONNACK timeout 30 s, ping timeout the keep-alive interval,
    /// 1,000 queued messages, no automatic topic aliases, acknowledgements sent by the
    /// client.
    pub fn new(protocol: ProtocolVersion, client_id: MqttString) -> Self {
        Self {
            protocol,
            fallback_to_v3_1_1: false,
            client_id,
            clean_start: true,
            keep_alive: 60,
            username: None,
            password: None,
            will: None,
            properties: ConnectProperties::default(),
            connect_timeout: Duration::from_secs(30),
            ping_timeout: None,
            max_queued: 1000,
            automatic_topic_aliases: AutomaticAliases::Off,
            manual_acks: false,
        }
    }

    /// This client's Receive Maximum: unacknowledged QoS 2 messages it accepts at once.
    pub fn receive_maximum(&self) -> u16 {
        match self.protocol {
            ProtocolVersion::V5 => self
                .properties
                .receive_maximum
                .map_or(u16::MAX, |n| n.get()),
            _ => u16::MAX,
        }
    }

    /// The largest packet this client accepts.
    pub fn maximum_packet_size(&self) -> u32 {
        match self.protocol {
            ProtocolVersion::V5 => self
                .properties
                .maximum_packet_size
                .map_or(MAX_PACKET_SIZE, |n| n.get()),
            _ => MAX_PACKET_SIZE,
        }
    }

    /// The highest Topic Alias this client accepts (0: none).
    pub fn topic_alias_maximum(&self) -> u16 {
        match self.protocol {
            ProtocolVersion::V5 => self.properties.topic_alias_maximum.unwrap_or(0),
            _ => 0,
        }
    }

    /// How what the server sends is decoded: this version and this client's maximum packet
    /// size. A driver should decode with [`Client::decode`](super::Client::decode), which
    /// uses this context and also recognises a 3.1.1 server's refusal of a 5.0 CONNECT.
    pub fn decode_context(&self) -> DecodeContext {
        DecodeContext::new(self.protocol).with_max_packet_size(self.maximum_packet_size())
    }

    /// This configuration for MQTT 3.1.1, as a client falling back from 5.0 uses it
    /// ([`fallback_to_v3_1_1`](Self::fallback_to_v3_1_1)), or the option that 3.1.1
    /// cannot carry.
    ///
    /// Dropped, since they only tune a v5 connection and 3.1.1 has fixed rules instead:
    /// Receive Maximum, Maximum Packet Size, Topic Alias Maximum (3.1.1 has no aliases, so
    /// automatic aliasing does nothing), Request Response Information, Request Problem
    /// Information, and Session Expiry Interval (under 3.1.1 `clean_start` is Clean
    /// Session, sent as is on every connection: with `false` the server keeps the session
    /// as long as it chooses, with `true` it discards it when the connection ends).
    ///
    /// Refused, since dropping them would change what the server does: an Authentication
    /// Method or Data (enhanced authentication), CONNECT User Properties, Will Properties
    /// (a Will Delay Interval, for one), a password without a user name ([MQTT-3.1.2-22]
    /// in 3.1.1) and an empty client identifier without clean start ([MQTT-3.1.3-7] in
    /// 3.1.1).
    pub fn for_v3_1_1(&self) -> Result<ClientConfig, ConnectError> {
        let refuse = |option| Err(ConnectError::NotInV3_1_1(option));
        let p = &self.properties;
        if p.authentication_method.is_some() || p.authentication_data.is_some() {
            return refuse("enhanced authentication (Authentication Method and Data)");
        }
        if !p.user_properties.is_empty() {
            return refuse("CONNECT User Properties");
        }
        if self.will.as_ref().is_some_and(|w| !w.properties.is_empty()) {
            return refuse("Will Properties");
        }
        if self.password.is_some() && self.username.is_none() {
            return refuse("a password without a user name ([MQTT-3.1.2-22] in 3.1.1)");
        }
        if self.client_id.is_empty() && !self.clean_start {
            return refuse(
                "an empty client identifier without clean start ([MQTT-3.1.3-7] in 3.1.1)",
            );
        }
        Ok(ClientConfig {
            protocol: ProtocolVersion::V3_1_1,
            properties: ConnectProperties::default(),
            ..self.clone()
        })
    }
}

/// What the server allows on the current connection, from its CONNACK (defaults before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerLimits {
    /// QoS 1/2 messages the client may have unacknowledged ([MQTT-3.3.4-7]).
    pub receive_maximum: u16,
    /// The largest packet the client may send ([MQTT-3.2.2-15]).
    pub maximum_packet_size: u32,
    /// The highest Topic Alias the client may send (0: none, [MQTT-3.2.2-18]).
    pub topic_alias_maximum: u16,
    /// The highest QoS the client may publish at ([MQTT-3.2.2-11]).
    pub maximum_qos: QoS,
    /// Whether the client may publish retained messages ([MQTT-3.2.2-14]).
    pub retain_available: bool,
    /// Whether subscriptions may use wildcards.
    pub wildcard_subscription_available: bool,
    /// Whether SUBSCRIBE may carry a Subscription Identifier.
    pub subscription_identifiers_available: bool,
    /// Whether shared subscriptions are available.
    pub shared_subscription_available: bool,
    /// The keep-alive in force, in seconds (the server's if it sent one, [MQTT-3.1.2-21]).
    pub keep_alive: u16,
}

impl ServerLimits {
    /// What holds before a CONNACK says otherwise.
    pub fn defaults(keep_alive: u16) -> Self {
        Self {
            receive_maximum: u16::MAX,
            maximum_packet_size: MAX_PACKET_SIZE,
            topic_alias_maximum: 0,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
            keep_alive,
        }
    }

    /// The limits a CONNACK's properties set (absent properties keep their defaults).
    pub fn from_connack(p: &ConnAckProperties, keep_alive: u16) -> Self {
        let d = Self::defaults(keep_alive);
        Self {
            receive_maximum: p.receive_maximum.map_or(d.receive_maximum, |n| n.get()),
            maximum_packet_size: p
                .maximum_packet_size
                .map_or(d.maximum_packet_size, |n| n.get()),
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            maximum_qos: p.maximum_qos.unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available.unwrap_or(true),
            wildcard_subscription_available: p.wildcard_subscription_available.unwrap_or(true),
            subscription_identifiers_available: p
                .subscription_identifiers_available
                .unwrap_or(true),
            shared_subscription_available: p.shared_subscription_available.unwrap_or(true),
            keep_alive: p.server_keep_alive.unwrap_or(keep_alive),
        }
    }
}

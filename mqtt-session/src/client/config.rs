//! The client's configuration and what the server's CONNACK allowed.

use std::time::Duration;

use mqtt_codec::{
    Bytes, ConnAckProperties, ConnectProperties, DecodeContext, MAX_PACKET_SIZE, MqttString,
    ProtocolVersion, QoS, Will,
};

use crate::topic_alias::AutomaticAliases;

/// How a client connects and behaves. Fields are public; [`ClientConfig::new`] gives the
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// MQTT 3.1.1 or 5.0, used for every packet of every connection.
    pub protocol: ProtocolVersion,
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
    /// Defaults: clean start, keep-alive 60 s, no credentials, no will, no properties,
    /// CONNACK timeout 30 s, ping timeout the keep-alive interval, 1,000 queued messages,
    /// no automatic topic aliases, acknowledgements sent by the client.
    pub fn new(protocol: ProtocolVersion, client_id: MqttString) -> Self {
        Self {
            protocol,
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

    /// How a driver decodes what the server sends: this version and this client's maximum
    /// packet size.
    pub fn decode_context(&self) -> DecodeContext {
        DecodeContext::new(self.protocol).with_max_packet_size(self.maximum_packet_size())
    }
}

/// What the server allows on the current connection, from its CONNACK (defaults before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

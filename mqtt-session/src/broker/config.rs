//! What a broker allows and enforces.

use std::time::Duration;

use mqtt_codec::{DecodeContext, MAX_PACKET_SIZE, ProtocolVersion, QoS};

/// Who decides whether a CONNECT is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectPolicy {
    /// Every well-formed CONNECT is accepted at once (anonymous access). A CONNECT that asks
    /// for enhanced authentication (v5 Authentication Method) is refused with 0x8C Bad
    /// authentication method: nobody is there to run the exchange.
    AcceptAll,
    /// Every CONNECT waits for the driver: the broker emits
    /// [`Event::ConnectRequest`](super::Event::ConnectRequest) and the driver answers with
    /// [`Broker::accept`](super::Broker::accept), [`Broker::reject`](super::Broker::reject) or
    /// (v5 enhanced authentication) [`Broker::continue_auth`](super::Broker::continue_auth).
    AskDriver,
}

/// The broker's limits and features. Fields are public; [`BrokerConfig::default`] gives a
/// permissive broker: everything the protocol offers, anonymous access.
///
/// Under MQTT 5.0 each limit that differs from the protocol default is announced in the
/// CONNACK, and a client that breaks it is disconnected with the matching reason code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Who decides whether a CONNECT is accepted.
    pub connect_policy: ConnectPolicy,
    /// The largest packet accepted from a client (the decoder enforces it; announced as
    /// Maximum Packet Size).
    pub maximum_packet_size: u32,
    /// Incoming QoS 2 messages a client may have unreleased at once (Receive Maximum); one
    /// more is a Receive Maximum exceeded (0x93) disconnect ([MQTT-3.3.4-7]).
    pub receive_maximum: u16,
    /// The highest QoS accepted in a PUBLISH and granted to a subscription (Maximum QoS,
    /// [MQTT-3.2.2-9]).
    pub maximum_qos: QoS,
    /// Whether retained messages are supported (Retain Available).
    pub retain_available: bool,
    /// Whether filters with `+` or `#` may be subscribed to (Wildcard Subscription
    /// Available).
    pub wildcard_subscription_available: bool,
    /// Whether SUBSCRIBE may carry a Subscription Identifier (Subscription Identifier
    /// Available).
    pub subscription_identifiers_available: bool,
    /// Whether `$share/{ShareName}/{filter}` subscriptions are supported (Shared
    /// Subscription Available).
    pub shared_subscription_available: bool,
    /// The highest Topic Alias a v5 client may use towards the broker (0: none).
    pub topic_alias_maximum: u16,
    /// Give topics aliases automatically in PUBLISH packets towards v5 clients that accept
    /// them (their Topic Alias Maximum).
    pub outbound_topic_aliases: bool,
    /// Impose this keep-alive (seconds) on v5 clients (Server Keep Alive). 3.1.1 clients
    /// keep their own.
    pub server_keep_alive: Option<u16>,
    /// The longest Session Expiry Interval granted (seconds). A 3.1.1 session with Clean
    /// Session 0 asks for "never" (`u32::MAX`) and gets this.
    pub maximum_session_expiry: u32,
    /// Per session, the most QoS 1/2 messages held for the client (waiting or in flight).
    /// Beyond it new messages are dropped and each drop is evented.
    pub max_queued_messages: usize,
    /// How long a new connection may take from opening to CONNACK: sending CONNECT, the
    /// driver's decision and any v5 AUTH exchange.
    pub connect_timeout: Duration,
    /// Packets a client may send after CONNECT while the driver has not yet decided; one
    /// more closes the connection.
    pub max_packets_before_connack: usize,
    /// Whether an empty Client Identifier gets an assigned one ([MQTT-3.1.3-6]); if not it
    /// is refused with 0x85 Client Identifier not valid.
    pub allow_empty_client_id: bool,
    /// The prefix of assigned Client Identifiers (followed by a number).
    pub assigned_client_id_prefix: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            connect_policy: ConnectPolicy::AcceptAll,
            maximum_packet_size: MAX_PACKET_SIZE,
            receive_maximum: u16::MAX,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
            topic_alias_maximum: 0,
            outbound_topic_aliases: false,
            server_keep_alive: None,
            maximum_session_expiry: u32::MAX,
            max_queued_messages: 1000,
            connect_timeout: Duration::from_secs(10),
            max_packets_before_connack: 64,
            allow_empty_client_id: true,
            assigned_client_id_prefix: "auto-".into(),
        }
    }
}

impl BrokerConfig {
    /// How a driver decodes a connection's byte stream: before the first CONNECT pass
    /// `None` (only a CONNECT decodes), afterwards that CONNECT's `protocol`. The maximum
    /// packet size is this configuration's.
    pub fn decode_context(&self, version: Option<ProtocolVersion>) -> DecodeContext {
        DecodeContext {
            version,
            max_packet_size: self.maximum_packet_size,
        }
    }
}

//! What a broker allows and enforces.

use alloc::string::String;
use core::time::Duration;

use mqtt_codec::{DecodeContext, MAX_PACKET_SIZE, ProtocolVersion, QoS};

/// Which client identifiers the broker accepts (beyond what the protocol itself refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientIdPolicy {
    /// Any the protocol allows (the default).
    Any,
    /// Only printable ones: no control characters and no white space.
    Printable,
    /// Only what every server must accept ([MQTT-3.1.3-5]): 1 to 23 bytes of `0-9`, `a-z`
    /// and `A-Z`, for a fleet that must be able to move to any broker.
    Portable,
}

impl ClientIdPolicy {
    /// Whether `id` (not empty) passes.
    pub fn allows(self, id: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Printable => !id.chars().any(|c| c.is_control() || c.is_whitespace()),
            Self::Portable => id.len() <= 23 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        }
    }
}

/// Who decides whether a CONNECT is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectPolicy {
    /// Every well-formed CONNECT is accepted at once (anonymous access). A CONNECT that asks
    /// for enhanced authentication (v5 Authentication Method) is refused with 0x8C Bad
    /// authentication method: nobody is there to run the exchange.
    AcceptAll,
    /// Every CONNECT waits for the driver: the broker emits
    /// [`BrokerEvent::ConnectRequest`](super::BrokerEvent::ConnectRequest) and the driver answers with
    /// [`Hub::accept`](super::Hub::accept), [`Hub::reject`](super::Hub::reject) or
    /// (v5 enhanced authentication) [`Hub::continue_auth`](super::Hub::continue_auth).
    AskDriver,
}

/// A bound on how fast clients may connect: at most `connects` CONNECTs in each window of
/// `per`, counted from the first CONNECT of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ConnectRate {
    /// CONNECTs allowed in one window.
    pub connects: u32,
    /// The length of a window.
    pub per: Duration,
}

impl ConnectRate {
    /// At most `connects` CONNECTs in each window of `per`.
    pub fn new(connects: u32, per: Duration) -> Self {
        Self { connects, per }
    }
}

/// The broker's limits and features. [`BrokerConfig::default`] gives a permissive broker:
/// everything the protocol offers, anonymous access. Fields are public; set them on a
/// default (new fields may come in any release):
///
/// ```
/// let mut config = mqtt_session::broker::BrokerConfig::default();
/// config.max_sessions = 10_000;
/// config.maximum_packet_size = 1024 * 1024;
/// ```
///
/// Under MQTT 5.0 each limit that differs from the protocol default is announced in the
/// CONNACK, and a client that breaks it is disconnected with the matching reason code.
///
/// The `max_*` fields bound what clients can make the broker hold, so that a careless or
/// hostile client cannot exhaust memory; what they refuse is counted
/// ([`Hub::limit_count`](super::Hub::limit_count)) and evented
/// ([`BrokerEvent::LimitReached`](super::BrokerEvent::LimitReached)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerConfig {
    /// Who decides whether a CONNECT is accepted.
    pub connect_policy: ConnectPolicy,
    /// The largest packet accepted from a client (the decoder enforces it; announced as
    /// Maximum Packet Size). The protocol's largest by default: set it lower for clients
    /// you do not trust.
    pub maximum_packet_size: u32,
    /// The largest packet accepted before a connection's CONNECT has been decoded, the
    /// CONNECT included (at most `maximum_packet_size`): what a peer that has not yet
    /// authenticated can make a driver buffer. 64 KiB by default; a CONNECT is usually
    /// well under a kilobyte, unless its will carries a large payload.
    pub maximum_connect_size: u32,
    /// Incoming QoS 2 messages a v5 client may have unreleased at once (Receive Maximum);
    /// one more is a Receive Maximum exceeded (0x93) disconnect ([MQTT-3.3.4-7]). A 3.1.1
    /// client, which is never told this, is held only to its 65,535 packet identifiers.
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
    /// The longest keep-alive (seconds) a client may ask for (mosquitto's `max_keepalive`):
    /// a v5 client asking for more, or for none (0), is given this one as Server Keep Alive;
    /// a 3.1.1 or 3.1 client cannot be told, so it is refused (CONNACK return code 2, as
    /// mosquitto does). `None`: any.
    pub max_keep_alive: Option<u16>,
    /// Whether refusals and disconnects carry a Reason String (v5). Off, none is sent, to
    /// any client, whatever it asked for.
    pub reason_strings: bool,
    /// Refuse client identifiers, topic names and topic filters holding control characters
    /// (U+0001 to U+001F, U+007F to U+009F), which section 1.5.4 says SHOULD NOT be sent and a
    /// receiver MAY refuse: CONNACK 0x85, PUBACK/PUBREC 0x90 (a QoS 0 PUBLISH is dropped),
    /// SUBACK 0x8F.
    pub reject_control_characters: bool,
    /// The longest Session Expiry Interval granted (seconds). A 3.1.1 session with Clean
    /// Session 0 asks for "never" (`u32::MAX`) and gets this.
    pub maximum_session_expiry: u32,
    /// Per session, the most QoS 1/2 messages held for the client (waiting or in flight).
    /// Beyond it new messages are dropped and each drop is evented.
    pub max_queued_messages: usize,
    /// Per session, the most bytes (topic, payload and properties) of QoS 1/2 messages
    /// held for the client, waiting or in flight (mosquitto's `max_queued_bytes`, which
    /// counts payloads). A message that would take it beyond is dropped like one beyond
    /// `max_queued_messages` ([`Undelivered::QueueFull`](super::Undelivered::QueueFull)),
    /// except when the session holds nothing: one message of any size may always wait.
    pub max_queued_bytes: usize,
    /// How long a new connection may take from opening to CONNACK: sending CONNECT, the
    /// driver's decision and any v5 AUTH exchange.
    pub connect_timeout: Duration,
    /// Packets a client may send after CONNECT while the driver has not yet decided; one
    /// more closes the connection (v5: CONNACK 0x89 Server busy).
    pub max_packets_before_connack: usize,
    /// CONNECTs that may wait for the driver's decision (or be in an AUTH exchange) at
    /// once; one more is refused with CONNACK 0x89 Server busy (3.1.1: return code 3
    /// Server unavailable). Only [`ConnectPolicy::AskDriver`] makes CONNECTs wait.
    pub max_pending_connects: usize,
    /// At most this many CONNECTs in each window of time, all clients together; the others
    /// are refused with CONNACK 0x9F Connection rate exceeded (3.1.1: return code 3).
    /// `None`: no limit.
    pub connect_rate: Option<ConnectRate>,
    /// AUTH packets a client may send in one v5 authentication exchange (at CONNECT or when
    /// re-authenticating); one more ends it with 0x97 Quota exceeded (CONNACK or
    /// DISCONNECT).
    pub max_auth_round_trips: u32,
    /// Sessions at once, connected or waiting for their client. A CONNECT that needs a new
    /// session beyond it is refused with CONNACK 0x97 Quota exceeded (3.1.1: return code 3
    /// Server unavailable); resuming or replacing an existing session is not.
    pub max_sessions: usize,
    /// Subscriptions per session. A new filter beyond it fails with 0x97 Quota exceeded in
    /// the SUBACK (3.1.1: 0x80 Failure); subscribing to a filter the session has already
    /// replaces it and is not refused.
    pub max_subscriptions_per_session: usize,
    /// Retained messages kept at once. A retained PUBLISH that would add one more is
    /// refused and not delivered: under v5 at QoS 1/2 with 0x97 Quota exceeded in the
    /// PUBACK / PUBREC; a client that cannot be told so (v5 at QoS 0, 3.1.1) loses its
    /// connection (v5: DISCONNECT 0x97). A will is still published, only not retained.
    /// Replacing and deleting are always allowed.
    pub max_retained_messages: usize,
    /// Bytes of retained messages kept at once (topic, payload and properties), refused
    /// like `max_retained_messages`.
    pub max_retained_bytes: usize,
    /// Levels in a topic name or filter (the filter of a shared subscription counts from
    /// after its share name). Beyond it a PUBLISH is refused with 0x90 Topic Name invalid
    /// (QoS 0 and 3.1.1: acknowledged as usual and dropped), a subscription with 0x8F Topic
    /// Filter invalid (3.1.1: 0x80), and a CONNECT whose will has such a topic with
    /// CONNACK 0x90.
    pub max_topic_levels: usize,
    /// Whether an empty Client Identifier gets an assigned one ([MQTT-3.1.3-6]); if not it
    /// is refused with 0x85 Client Identifier not valid.
    pub allow_empty_client_id: bool,
    /// Which client identifiers are accepted; a refused one gets CONNACK 0x85 (3.1.1:
    /// return code 2). An empty one (to be assigned) is governed by
    /// `allow_empty_client_id` alone.
    pub client_id_policy: ClientIdPolicy,
    /// The prefix of assigned Client Identifiers (followed by a number).
    pub assigned_client_id_prefix: String,
    /// Flow control towards each connection: bytes of packets the broker hands out for a
    /// connection ([`BrokerAction::Send`](super::BrokerAction::Send)) before the driver reports them
    /// written ([`Hub::handle_written`](super::Hub::handle_written)). Beyond it,
    /// messages wait in the session (QoS 1/2 and retained messages in order, QoS 0 up to
    /// `max_queued_qos0`) and go out as the driver reports progress. `usize::MAX` turns
    /// flow control off: the driver must then buffer whatever it is handed.
    pub write_budget: usize,
    /// How long a connection may hold unwritten bytes without the driver reporting any
    /// written (a client that stopped reading). It is then closed (its will published, its
    /// QoS 0 queue freed; QoS 1/2 stay in its session), counted as
    /// [`Limit::WriteTimeout`](super::Limit::WriteTimeout). A client whose socket drains
    /// but that leaves its Receive Maximum full for this long stops slowing publishers down
    /// until it makes progress again.
    pub write_timeout: Duration,
    /// Per connected session, the most QoS 0 messages waiting for the connection's write
    /// budget; beyond it `qos0_overflow` decides which is dropped (each drop evented as
    /// [`Undelivered::QueueFull`](super::Undelivered::QueueFull)).
    pub max_queued_qos0: usize,
    /// Which QoS 0 message is dropped when `max_queued_qos0` is reached.
    pub qos0_overflow: Qos0Overflow,
    /// Backpressure: once a connected subscriber has this many messages it has yet to take
    /// (QoS 0 queued, retained messages not yet sent, QoS 1/2 not yet sent or not yet
    /// acknowledged), the connections that publish to it are asked to pause reading
    /// ([`BrokerAction::PauseReading`](super::BrokerAction::PauseReading)) until it is down to half, it
    /// closes, or it makes no progress for `write_timeout`. A publisher is never paused for
    /// its own subscriptions, nor while it is itself that far behind (so that two clients
    /// publishing to each other cannot stall each other). `usize::MAX` turns it off.
    ///
    /// Keep it well below `max_queued_messages` and `max_queued_qos0`: a driver may hand
    /// over a few packets it had already read before it pauses, and those must still find
    /// room.
    pub pause_publishers_at: usize,
    /// The most QoS 1/2 PUBLISH the broker leaves unacknowledged per client, when the
    /// client's Receive Maximum allows more. Keep it below `pause_publishers_at`: a
    /// subscriber whose publishers are paused then still has messages queued to send as its
    /// acknowledgements arrive. A client that leaves Nagle's algorithm on (rumqttc, for one)
    /// sends a PUBACK only once the broker's TCP acknowledgement of the previous one comes,
    /// and that comes at once only with data; with nothing left to send, each round waits
    /// for the delayed acknowledgement (40 ms on Linux).
    pub max_in_flight: u16,
}

/// Which QoS 0 message a congested connection loses when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Qos0Overflow {
    /// The new message is dropped; those queued go out (mosquitto's behaviour).
    DropNewest,
    /// The oldest queued QoS 0 message is dropped and the new one queued: the client sees
    /// the latest values.
    DropOldest,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            connect_policy: ConnectPolicy::AcceptAll,
            maximum_packet_size: MAX_PACKET_SIZE,
            maximum_connect_size: 64 * 1024,
            receive_maximum: u16::MAX,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
            topic_alias_maximum: 0,
            outbound_topic_aliases: false,
            server_keep_alive: None,
            max_keep_alive: None,
            reason_strings: true,
            reject_control_characters: false,
            maximum_session_expiry: u32::MAX,
            max_queued_messages: 1000,
            max_queued_bytes: 64 << 20,
            connect_timeout: Duration::from_secs(10),
            max_packets_before_connack: 64,
            max_pending_connects: 1000,
            connect_rate: None,
            max_auth_round_trips: 16,
            max_sessions: 100_000,
            max_subscriptions_per_session: 10_000,
            max_retained_messages: 100_000,
            max_retained_bytes: 256 << 20,
            max_topic_levels: 128,
            allow_empty_client_id: true,
            client_id_policy: ClientIdPolicy::Any,
            assigned_client_id_prefix: "auto-".into(),
            write_budget: 64 * 1024,
            write_timeout: Duration::from_secs(30),
            max_queued_qos0: 1000,
            qos0_overflow: Qos0Overflow::DropNewest,
            pause_publishers_at: 256,
            max_in_flight: 128,
        }
    }
}

impl BrokerConfig {
    /// How a driver decodes a connection's byte stream: before the first CONNECT pass
    /// `None` (only a CONNECT decodes, of at most `maximum_connect_size`), afterwards that
    /// CONNECT's `protocol` (packets of at most `maximum_packet_size`).
    pub fn decode_context(&self, version: Option<ProtocolVersion>) -> DecodeContext {
        decode_context(version, self.maximum_connect_size, self.maximum_packet_size)
    }
}

/// [`BrokerConfig::decode_context`] from the two limits it reads (a `ServerConnection`
/// keeps only those).
pub(crate) fn decode_context(
    version: Option<ProtocolVersion>,
    maximum_connect_size: u32,
    maximum_packet_size: u32,
) -> DecodeContext {
    let max_packet_size = match version {
        None => maximum_connect_size.min(maximum_packet_size),
        Some(_) => maximum_packet_size,
    };
    DecodeContext {
        version,
        max_packet_size,
    }
}

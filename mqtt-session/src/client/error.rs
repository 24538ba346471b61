//! Local errors: the application asked for something the client cannot do now. A server's
//! misbehaviour is never one of these; it ends the connection with an event instead.

use mqtt_codec::{EncodeError, QoS, ReasonCode};

/// Why [`Client::connect`](super::Client::connect) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A connection is already open or being opened.
    #[error("already connected or connecting")]
    AlreadyConnected,
    /// 3.1.1: an empty client identifier needs Clean Session ([MQTT-3.1.3-7]).
    #[error("[MQTT-3.1.3-7] an empty client identifier needs clean session in MQTT 3.1.1")]
    EmptyClientIdNeedsCleanSession,
    /// The CONNECT cannot be encoded for the configured version.
    #[error("CONNECT cannot be encoded: {0}")]
    Encode(#[from] EncodeError),
    /// The configuration asks to fall back to 3.1.1
    /// ([`ClientConfig::fallback_to_v3_1_1`](super::ClientConfig::fallback_to_v3_1_1)) but
    /// holds an option 3.1.1 cannot carry (see
    /// [`ClientConfig::for_v3_1_1`](super::ClientConfig::for_v3_1_1)).
    #[error("cannot fall back to MQTT 3.1.1: it has no form for {0}")]
    NotInV3_1_1(&'static str),
}

/// Why [`Client::publish`](super::Client::publish) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// QoS 0 messages are sent only on an open connection.
    #[error("not connected (QoS 0 messages are not queued)")]
    NotConnected,
    /// The queue of messages waiting to be sent is full.
    #[error("the queue of waiting messages is full")]
    QueueFull,
    /// All 65,535 packet identifiers are in use.
    #[error("no packet identifier is free")]
    PacketIdsExhausted,
    /// The server's Maximum QoS is lower ([MQTT-3.2.2-11]).
    #[error("[MQTT-3.2.2-11] QoS above the server's Maximum QoS {0:?}")]
    QosNotSupported(QoS),
    /// The server does not support retained messages ([MQTT-3.2.2-14]).
    #[error("[MQTT-3.2.2-14] the server does not support retained messages")]
    RetainNotSupported,
    /// The PUBLISH would be larger than the server's Maximum Packet Size ([MQTT-3.2.2-15]).
    #[error("[MQTT-3.2.2-15] PUBLISH of {size} bytes exceeds the server's maximum {max}")]
    PacketTooLarge {
        /// The encoded size.
        size: usize,
        /// The server's maximum.
        max: u32,
    },
    /// A client must not send a Subscription Identifier in a PUBLISH ([MQTT-3.3.4-6]).
    #[error("[MQTT-3.3.4-6] a PUBLISH from a client must not carry a Subscription Identifier")]
    SubscriptionIdentifier,
    /// The Topic Alias is above the server's Topic Alias Maximum ([MQTT-3.3.2-9]), unknown
    /// for an empty topic, or set while automatic aliasing is on.
    #[error("[MQTT-3.3.2-9] topic alias not usable: {0}")]
    TopicAlias(&'static str),
    /// The PUBLISH cannot be encoded for the configured version (for example v5
    /// properties under 3.1.1).
    #[error("PUBLISH cannot be encoded: {0}")]
    Encode(#[from] EncodeError),
}

/// Why [`Client::subscribe`](super::Client::subscribe) or
/// [`Client::unsubscribe`](super::Client::unsubscribe) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// Requests are sent only on an open connection.
    #[error("not connected")]
    NotConnected,
    /// No topic filter given ([MQTT-3.8.3-2], [MQTT-3.10.3-2]).
    #[error("[MQTT-3.8.3-2] at least one topic filter is needed")]
    NoFilters,
    /// All 65,535 packet identifiers are in use.
    #[error("no packet identifier is free")]
    PacketIdsExhausted,
    /// The server does not support wildcard subscriptions.
    #[error("the server does not support wildcard subscriptions")]
    WildcardNotSupported,
    /// The server does not support shared subscriptions.
    #[error("the server does not support shared subscriptions")]
    SharedNotSupported,
    /// The server does not support subscription identifiers.
    #[error("the server does not support subscription identifiers")]
    SubscriptionIdentifiersNotSupported,
    /// The packet would be larger than the server's Maximum Packet Size ([MQTT-3.2.2-15]).
    #[error("[MQTT-3.2.2-15] packet of {size} bytes exceeds the server's maximum {max}")]
    PacketTooLarge {
        /// The encoded size.
        size: usize,
        /// The server's maximum.
        max: u32,
    },
    /// The packet cannot be encoded for the configured version.
    #[error("cannot be encoded: {0}")]
    Encode(#[from] EncodeError),
}

/// Why [`Client::disconnect`](super::Client::disconnect) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectError {
    /// There is no connection to close.
    #[error("not connected")]
    NotConnected,
    /// v5: a non-zero Session Expiry Interval in DISCONNECT when CONNECT sent zero is a
    /// Protocol Error (section 3.14.2.2.2).
    #[error(
        "session expiry cannot be set on DISCONNECT when CONNECT had none (section 3.14.2.2.2)"
    )]
    SessionExpiry,
    /// The DISCONNECT cannot be encoded for the configured version.
    #[error("DISCONNECT cannot be encoded: {0}")]
    Encode(#[from] EncodeError),
}

/// Why an enhanced-authentication step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Enhanced authentication needs MQTT 5.0 and an Authentication Method in the
    /// configuration ([MQTT-4.12.0-7]).
    #[error("[MQTT-4.12.0-7] no Authentication Method was sent in CONNECT")]
    NoAuthenticationMethod,
    /// Re-authentication needs an open connection; continuing needs an exchange in
    /// progress.
    #[error("no authentication exchange is possible now")]
    NotNow,
}

/// Why [`Client::resume`](super::Client::resume) refused a stored session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// Two stored entries share a packet identifier.
    #[error("packet identifier {0} is used twice in the stored session")]
    DuplicatePacketId(u16),
}

/// Why [`Client::acknowledge`](super::Client::acknowledge) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The client acknowledges by itself: [`ClientConfig::manual_acks`](super::ClientConfig)
    /// is off.
    #[error("manual acknowledgements are off")]
    ManualAcksOff,
    /// No incoming message with this packet identifier awaits the application's answer
    /// (answered already, or its session was discarded).
    #[error("no message with packet identifier {0} awaits an answer")]
    NotPending(u16),
    /// The reason code is not one the PUBACK or PUBREC may carry ([MQTT-3.4.2-1],
    /// [MQTT-3.5.2-1]).
    #[error("reason code {0} cannot answer this PUBLISH")]
    ReasonCode(ReasonCode),
    /// The answer cannot be encoded for the configured version (3.1.1 carries neither
    /// reason codes nor properties).
    #[error("acknowledgement cannot be encoded: {0}")]
    Encode(#[from] EncodeError),
}

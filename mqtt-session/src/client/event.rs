//! What the client hands back: [`Action`]s, among them [`Event`]s for the application.

use alloc::{boxed::Box, vec::Vec};
use mqtt_codec::{
    AckProperties, AuthProperties, ConnAck, MqttString, Packet, PacketId, ProtocolVersion, Publish,
    QoS, ReasonCode, SubscriptionOptions, TopicFilter,
};

use super::config::ServerLimits;
use crate::event::Disconnected;
use crate::store::SessionOp;

/// One output of the client, in the order it must be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // boxing would cost an allocation per action
pub enum Action {
    /// Encode this packet (with the client's protocol version) and write it to the server.
    Send(Packet),
    /// Apply this operation to durable storage before carrying out later actions.
    ///
    /// An incoming QoS 2 message comes as `Persist(PutIncoming)`, then `Event(Message)`,
    /// then the PUBREC (the specification's Method B): hand the message on in the same
    /// transaction as the operation to receive it exactly once across a crash; applied
    /// separately, a crash between the two loses it rather than duplicating it.
    Persist(SessionOp),
    /// Tell the application.
    Event(Event),
    /// Close the transport: the connection is over (the client is now disconnected).
    Close,
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // boxing would cost an allocation per message
pub enum Event {
    /// The server accepted the connection.
    Connected(Connected),
    /// The server does not support the protocol version of the CONNECT: it refused it with
    /// CONNACK 0x84 Unsupported Protocol Version, or, as a 3.1.1 server answers a 5.0
    /// CONNECT, with the 3.1.1 CONNACK return code 1 (3.1.1 [MQTT-3.1.2-2]; 5.0
    /// [MQTT-3.1.2-2] is the same for a version a 5.0 server does not take). Not a
    /// protocol violation: [`Event::Disconnected`] with cause
    /// [`Refused`](crate::event::CloseCause::Refused) and that reason code follows, then
    /// [`Action::Close`].
    UnsupportedProtocolVersion {
        /// The version the server refused.
        refused: ProtocolVersion,
        /// The version the client uses from now on, when
        /// [`ClientConfig::fallback_to_v3_1_1`](super::ClientConfig::fallback_to_v3_1_1)
        /// let it fall back: open a new transport and call
        /// [`Client::connect`](super::Client::connect) again. `None`: no fallback.
        fallback: Option<ProtocolVersion>,
    },
    /// An application message from the server, its topic resolved from any alias. Each
    /// QoS 2 message arrives once ([MQTT-4.3.3-10]). Under
    /// [`ClientConfig::manual_acks`](super::ClientConfig::manual_acks) a QoS 1/2 message
    /// waits for [`Client::acknowledge`](super::Client::acknowledge).
    Message(Publish),
    /// An outgoing QoS 1/2 message is done: acknowledged with PUBACK or PUBCOMP, or
    /// refused with a PUBACK or PUBREC carrying an error code.
    Published(Published),
    /// An outgoing QoS 1/2 message was dropped without completing its handshake.
    PublishDropped {
        /// Its packet identifier (now free again).
        packet_id: PacketId,
        /// Why it was dropped.
        reason: DropReason,
    },
    /// A SUBSCRIBE or UNSUBSCRIBE left unanswered by an earlier connection could not be
    /// sent again (it exceeds the new connection's Maximum Packet Size): it is dropped
    /// unanswered. Its packet identifier is free again.
    RequestDropped {
        /// The request's packet identifier.
        packet_id: PacketId,
        /// Why it was dropped.
        reason: DropReason,
    },
    /// A SUBACK answered a SUBSCRIBE.
    Subscribed(Subscribed),
    /// An UNSUBACK answered an UNSUBSCRIBE.
    Unsubscribed(Unsubscribed),
    /// v5 enhanced authentication: the server sent AUTH with Continue authentication. Answer
    /// with [`Client::continue_authentication`](super::Client::continue_authentication).
    AuthChallenge(AuthProperties),
    /// v5: the server accepted a re-authentication.
    Reauthenticated(AuthProperties),
    /// The connection ended; see [`Disconnected::cause`].
    Disconnected(Disconnected),
}

/// The server accepted a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// The protocol version of the connection (3.1.1 after a fallback from 5.0).
    pub protocol: ProtocolVersion,
    /// The server had a session for this client: unacknowledged messages were resent.
    pub session_present: bool,
    /// The client identifier in use (assigned by the server if the client sent none).
    pub client_id: MqttString,
    /// What the server allows on this connection.
    pub limits: ServerLimits,
    /// The CONNACK itself, for the properties not summarised above.
    pub connack: Box<ConnAck>,
}

/// The end of an outgoing QoS 1/2 message's handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The message's packet identifier (now free again).
    pub packet_id: PacketId,
    /// QoS 1 or 2.
    pub qos: QoS,
    /// The reason code of the PUBACK, PUBREC (on failure) or PUBCOMP that ended it; 0x80 or
    /// above means the server did not accept the message.
    ///
    /// A PUBCOMP 0x92 Packet Identifier not found that answers a PUBREL sent again after a
    /// resume is reported as Success: the server completed the message before the
    /// connection was lost, and 0x92 "is not an error during recovery" (section 3.7.2.1).
    /// At other times 0x92 is reported as it came: the server's session state does not
    /// match the client's, and whether the message reached subscribers is unknown.
    pub reason_code: ReasonCode,
    /// That packet's properties (v5 reason string, user properties).
    pub properties: AckProperties,
}

/// Why an outgoing message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// It had been sent, and the server reconnected without the session: the client
    /// discards the session state ([MQTT-3.2.2-5]). Publish it again if it still matters.
    SessionLost,
    /// It is larger than the Maximum Packet Size of the server it was to go to.
    PacketTooLarge,
    /// Its QoS exceeds the Maximum QoS of the server it was to go to.
    QosNotSupported,
    /// It is retained and the server it was to go to does not support retained messages.
    RetainNotSupported,
}

/// A SUBACK matched to its SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    /// The SUBSCRIBE's identifier.
    pub packet_id: PacketId,
    /// The filters requested and, in the same order, the server's answers: the granted QoS
    /// (0x00 to 0x02) or a failure code.
    pub filters: Vec<(TopicFilter, SubscriptionOptions, ReasonCode)>,
    /// The SUBACK's properties.
    pub properties: AckProperties,
}

/// An UNSUBACK matched to its UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribed {
    /// The UNSUBSCRIBE's identifier.
    pub packet_id: PacketId,
    /// The filters and, in the same order, the server's answers (v5). 3.1.1 carries no
    /// answers: each is reported as Success.
    pub filters: Vec<(TopicFilter, ReasonCode)>,
    /// The UNSUBACK's properties.
    pub properties: AckProperties,
}

//! What the broker hands back: [`BrokerAction`]s, among them [`BrokerEvent`]s for the driver.

use alloc::boxed::Box;
use core::fmt;

use mqtt_codec::{Bytes, MqttString, Packet, ProtocolVersion, TopicName};

use super::store::StoreOp;
use crate::event::Disconnected;

/// A network connection, named by the driver.
///
/// The driver picks a fresh id for each transport it accepts (a counter will do) and never
/// reuses one: a connection exists from [`Hub::handle_opened`](super::Hub::handle_opened)
/// until the broker emits [`BrokerAction::Close`] for it or the driver reports
/// [`Hub::handle_closed`](super::Hub::handle_closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One output of the broker, in the order it must be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // boxing would cost an allocation per packet
pub enum BrokerAction {
    /// Encode `packet` with `version` and write it to `connection`.
    Send {
        /// Where to send it.
        connection: ConnectionId,
        /// The version to encode with (the connection's; for a CONNACK refusing an
        /// unsupported version, the one the client can read).
        version: ProtocolVersion,
        /// The packet.
        packet: Packet,
        /// What the packet counts against the connection's write budget: its encoded
        /// length as the hub handed it out. Report it to `handle_written` once written. (A
        /// `ServerConnection` may shorten a PUBLISH by a topic alias, and a packet a
        /// connection answers itself, PINGRESP, counts 0.)
        len: usize,
    },
    /// Close the transport of `connection` once what was sent before is written. The
    /// broker has forgotten the connection; later input for it is ignored.
    Close(ConnectionId),
    /// Apply this operation to durable storage before carrying out later actions.
    ///
    /// The operations one input hands out (from one `handle_*` call to the next) belong
    /// together: apply them as one transaction, and carry out the actions after the first
    /// of them once it is committed. A crash may then lose a whole input's operations, never
    /// part of them. Exactly-once QoS 2 needs this: a message routed to durable sessions and
    /// its publisher's packet identifier are stored by one input, and a store holding one
    /// without the other delivers the message twice (or never) when the publisher sends it
    /// again. `persist::BrokerStore` applies into a transaction and commits on `commit`.
    Persist(StoreOp),
    /// Tell the driver (log it, count it, or answer a pending decision).
    Event(BrokerEvent),
    /// Stop handing the broker packets from `connection` (and stop reading its socket): the
    /// clients it publishes to are behind. Packets already decoded may still be handed
    /// over. Undone by [`BrokerAction::ResumeReading`].
    PauseReading(ConnectionId),
    /// Read from `connection` again.
    ResumeReading(ConnectionId),
}

/// Something the driver should know, or (for [`BrokerEvent::ConnectRequest`] and
/// [`BrokerEvent::AuthRequest`]) decide.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerEvent {
    /// A CONNECT waits for the driver's decision ([`ConnectPolicy::AskDriver`]): answer
    /// with [`Hub::accept`](super::Hub::accept), [`Hub::reject`](super::Hub::reject)
    /// or [`Hub::continue_auth`](super::Hub::continue_auth).
    ///
    /// [`ConnectPolicy::AskDriver`]: super::ConnectPolicy::AskDriver
    ///
    /// (Boxed: one per CONNECT, and twice the size of the other events.)
    ConnectRequest(Box<ConnectRequest>),
    /// A v5 client sent AUTH: the next step of an authentication exchange, or a request to
    /// re-authenticate. Answer like a [`BrokerEvent::ConnectRequest`].
    AuthRequest(AuthRequest),
    /// A client is connected: the CONNACK accepting it has been sent.
    Connected(ClientConnected),
    /// A connection ended.
    ///
    /// (Boxed: one per connection, and the largest event by far; unboxed, it would make
    /// every [`BrokerAction`] 8 bytes larger.)
    Disconnected(Box<ClientDisconnected>),
    /// A session ended and its state is gone.
    SessionEnded {
        /// Its client identifier.
        client_id: MqttString,
        /// Why it ended.
        reason: SessionEnd,
    },
    /// A Will Message was published.
    WillPublished {
        /// The client whose will it was.
        client_id: MqttString,
        /// The will's topic.
        topic: TopicName,
    },
    /// A limit of the [`BrokerConfig`](super::BrokerConfig) refused something a client asked
    /// for (how it was refused is told at each limit).
    LimitReached {
        /// The connection that asked, if one did (a will has none).
        connection: Option<ConnectionId>,
        /// The client, once known.
        client_id: Option<MqttString>,
        /// Which limit.
        limit: Limit,
    },
    /// An application message meant for a client was dropped.
    MessageDropped {
        /// The client it was for.
        client_id: MqttString,
        /// Its topic.
        topic: TopicName,
        /// Why.
        reason: Undelivered,
    },
}

/// A CONNECT awaiting the driver's decision: the credentials it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The connection it arrived on.
    pub connection: ConnectionId,
    /// The protocol version.
    pub protocol: ProtocolVersion,
    /// The Client Identifier as sent (empty: one will be assigned if accepted).
    pub client_id: MqttString,
    /// User Name.
    pub username: Option<MqttString>,
    /// Password.
    pub password: Option<Bytes>,
    /// v5 Authentication Method: the client asks for enhanced authentication.
    pub authentication_method: Option<MqttString>,
    /// v5 Authentication Data.
    pub authentication_data: Option<Bytes>,
}

/// An AUTH from a client awaiting the driver's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The connection.
    pub connection: ConnectionId,
    /// The client asks to re-authenticate a connected session (reason code 0x19); else it
    /// continues the exchange of a pending CONNECT (0x18).
    pub reauthenticate: bool,
    /// The Authentication Method (the same as in the CONNECT).
    pub authentication_method: MqttString,
    /// The Authentication Data.
    pub authentication_data: Option<Bytes>,
}

/// A client connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConnected {
    /// The connection.
    pub connection: ConnectionId,
    /// The client identifier (assigned by the broker if the client sent none).
    pub client_id: MqttString,
    /// The protocol version.
    pub protocol: ProtocolVersion,
    /// An existing session was resumed.
    pub session_present: bool,
    /// The Keep Alive in force (seconds; 0 none).
    pub keep_alive: u16,
    /// The User Name of the CONNECT.
    pub username: Option<MqttString>,
}

/// A connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDisconnected {
    /// The connection.
    pub connection: ConnectionId,
    /// The client, if its CONNECT got that far.
    pub client_id: Option<MqttString>,
    /// Who ended it and why. [`CloseCause::Local`](crate::event::CloseCause::Local) is the
    /// broker's own decision (session taken over, shutdown, keep-alive is
    /// [`CloseCause::Timeout`](crate::event::CloseCause::Timeout)).
    pub disconnected: Disconnected,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionEnd {
    /// Its connection closed and its Session Expiry Interval was 0 (or Clean Session 1).
    ConnectionClosed,
    /// It expired after its Session Expiry Interval.
    Expired,
    /// The client connected again with Clean Start 1.
    CleanStart,
}

/// Why a message for a client was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Undelivered {
    /// The session already holds `max_queued_messages` QoS 1/2 messages (or
    /// `max_queued_bytes` of them), or (QoS 0) its
    /// connection already has `max_queued_qos0` waiting for its write budget.
    QueueFull,
    /// It is larger than the client's Maximum Packet Size; it counts as delivered
    /// ([MQTT-3.1.2-25]).
    PacketTooLarge,
    /// Its Message Expiry Interval passed before it could be sent ([MQTT-3.3.2-5]).
    Expired,
}

/// A limit of the [`BrokerConfig`](super::BrokerConfig), for [`BrokerEvent::LimitReached`] and
/// [`Hub::limit_count`](super::Hub::limit_count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Limit {
    /// `max_sessions`: a CONNECT needing a new session was refused.
    Sessions,
    /// `max_pending_connects`: a CONNECT was refused while too many waited for the driver.
    PendingConnects,
    /// `connect_rate`: a CONNECT came too soon after too many others.
    ConnectRate,
    /// `max_packets_before_connack`: a client sent too much before its CONNACK.
    PacketsBeforeConnack,
    /// `max_auth_round_trips`: an authentication exchange went on too long.
    AuthRoundTrips,
    /// `max_subscriptions_per_session`: a new subscription was refused.
    SubscriptionsPerSession,
    /// `max_retained_messages`: a retained message was refused or not retained.
    RetainedMessages,
    /// `max_retained_bytes`: a retained message was refused or not retained.
    RetainedBytes,
    /// `max_topic_levels`: a topic name or filter had too many levels.
    TopicLevels,
    /// `receive_maximum`: a client left too many QoS 2 messages unreleased.
    InboundQos2,
    /// `write_timeout`: a connection that took nothing written for too long was closed.
    WriteTimeout,
}

impl Limit {
    /// How many limits there are.
    pub(crate) const COUNT: usize = 11;
}

#[cfg(test)]
mod tests {
    use core::mem::size_of;

    /// An action is moved about ten times on its way to the driver: it stays small (issue
    /// 15: at most 128 bytes). The rare large parts (a CONNECT waiting for a decision, a
    /// will to persist, a connection's end) are boxed; what is left is a `Packet` (88
    /// bytes) with its connection, or a stored message with its client identifier: 32 bytes
    /// and an `OutgoingEntry` of 96 (its PUBLISH, 80, with sequence number, identifier and
    /// flags), the enum tags held in niches. Every other action must fit beside the niche
    /// that tells them apart: an event past 112 bytes (measured) makes them all 8 larger.
    #[test]
    fn an_action_is_small_to_move() {
        assert!(
            size_of::<super::BrokerAction>() <= 128,
            "{}",
            size_of::<super::BrokerAction>()
        );
        assert!(
            size_of::<super::BrokerEvent>() <= 112,
            "{}",
            size_of::<super::BrokerEvent>()
        );
        assert!(
            size_of::<crate::store::OutgoingEntry>() <= 96,
            "{}",
            size_of::<crate::store::OutgoingEntry>()
        );
    }
}

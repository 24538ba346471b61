//! One network connection: where it stands, what its client allows, and how it ends.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mqtt_codec::{Connect, MqttString, Packet, ProtocolVersion};

use super::event::{BrokerAction, ConnectionId};
use super::session::SessionKey;
use crate::topic_alias::{InboundAliases, OutboundAliases};

/// Whose move it is in an authentication exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// The driver must accept, reject or continue.
    Driver,
    /// The broker sent AUTH 0x18 and waits for the client's AUTH.
    Client,
}

/// A CONNECT that has arrived but is not yet answered.
#[derive(Debug)]
pub(crate) struct PendingConnect {
    pub(crate) connect: Box<Connect>,
    pub(crate) turn: Turn,
    /// Packets that came after the CONNECT, handled once it is accepted.
    pub(crate) buffered: VecDeque<Packet>,
}

/// How far a connection has got.
#[derive(Debug)]
pub(crate) enum Stage {
    /// Opened; no CONNECT yet.
    AwaitingConnect,
    /// CONNECT received, CONNACK not yet sent.
    Connecting(PendingConnect),
    /// CONNACK with success sent.
    Connected,
}

impl Stage {
    /// The stage as the rules table knows it.
    pub(crate) fn rules_stage(&self) -> crate::rules::Stage {
        match self {
            Self::AwaitingConnect => crate::rules::Stage::Opened,
            Self::Connecting(_) => crate::rules::Stage::Connecting,
            Self::Connected => crate::rules::Stage::Connected,
        }
    }
}

/// One network connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) stage: Stage,
    /// The CONNECT's version (v5 until one arrives).
    pub(crate) version: ProtocolVersion,
    /// Its session, once connected.
    pub(crate) session: Option<SessionKey>,
    /// The client identifier, once the CONNECT is accepted.
    pub(crate) client_id: Option<MqttString>,
    /// Keep Alive in force, seconds (0: none).
    pub(crate) keep_alive: u16,
    /// When the client last sent a packet.
    pub(crate) last_seen: Instant,
    /// The client's Receive Maximum: QoS 1/2 PUBLISH the broker may have unacknowledged.
    pub(crate) receive_maximum: u16,
    /// The client's Maximum Packet Size.
    pub(crate) maximum_packet_size: u32,
    /// The client's Request Problem Information: whether packets other than PUBLISH,
    /// CONNACK and DISCONNECT may carry a Reason String or User Properties.
    pub(crate) problem_information: bool,
    /// Topic aliases both ways, for a v5 connection that may use them (boxed: most
    /// connections never do).
    pub(crate) aliases: Option<Box<Aliases>>,
    /// v5 Authentication Method of the CONNECT.
    pub(crate) auth_method: Option<MqttString>,
    /// A re-authentication in progress.
    pub(crate) reauth: Option<Turn>,
    /// AUTH packets received in the current authentication exchange.
    pub(crate) auth_round_trips: u32,
    /// The CONNECT asked for a Session Expiry Interval of 0 (a DISCONNECT may then not
    /// set another, section 3.14.2.2.2).
    pub(crate) expiry_was_zero: bool,
    /// Flow control: what the driver has of this connection's output, and who waits for it.
    pub(crate) flow: Flow,
    /// A CONNACK with success has gone out: the stage of what the broker sends, which the
    /// rules table checks at [`hand_out`] (`stage` may run ahead of it while a CONNECT is
    /// completed).
    pub(crate) connack_sent: bool,
}

/// A connection's topic aliases.
#[derive(Debug)]
pub(crate) struct Aliases {
    /// Those the client sets, up to our Topic Alias Maximum.
    pub(crate) inbound: InboundAliases,
    /// Those the broker sets, up to the client's.
    pub(crate) outbound: OutboundAliases,
}

/// A connection's flow control: its write budget, and the backpressure it puts on
/// publishers (see `flow.rs`).
#[derive(Debug)]
pub(crate) struct Flow {
    /// Bytes handed to the driver and not yet reported written.
    pub(crate) unwritten: usize,
    /// When the driver last reported bytes written, or the client last acknowledged a
    /// message.
    pub(crate) last_progress: Instant,
    /// A [`Deadline::WriteStall`] is set.
    pub(crate) stall_armed: bool,
    /// Connections paused until this one catches up.
    pub(crate) waiters: Vec<ConnectionId>,
    /// How many connections this one is paused for (paused while above 0).
    pub(crate) paused_for: u32,
    /// It made no progress for the write timeout with its Receive Maximum full: it slows
    /// nobody down until it makes progress again.
    pub(crate) brake_off: bool,
}

impl Connection {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            stage: Stage::AwaitingConnect,
            version: ProtocolVersion::V5,
            session: None,
            client_id: None,
            keep_alive: 0,
            last_seen: now,
            receive_maximum: u16::MAX,
            maximum_packet_size: mqtt_codec::MAX_PACKET_SIZE,
            problem_information: true,
            aliases: None,
            auth_method: None,
            reauth: None,
            auth_round_trips: 0,
            expiry_was_zero: true,
            flow: Flow {
                unwritten: 0,
                last_progress: now,
                stall_armed: false,
                waiters: Vec::new(),
                paused_for: 0,
                brake_off: false,
            },
            connack_sent: false,
        }
    }

    /// How long the client may stay silent: 1.5 times its keep-alive ([MQTT-3.1.2-22]).
    pub(crate) fn silence_allowed(&self) -> Option<Duration> {
        (self.keep_alive > 0).then(|| Duration::from_millis(u64::from(self.keep_alive) * 1500))
    }
}

/// What happens to the will of a connection that ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WillOnClose {
    /// Published, after its delay ([MQTT-3.1.2-8]).
    Publish,
    /// Deleted: a DISCONNECT with 0x00 (3.1.1: any DISCONNECT) ([MQTT-3.14.4-3]).
    Discard,
}

/// Hands `packet`, `len` bytes once encoded, to the driver for `conn` (whose state is `c`),
/// counted against the connection's write budget.
pub(super) fn hand_out(
    actions: &mut VecDeque<BrokerAction>,
    c: &mut Connection,
    conn: ConnectionId,
    version: ProtocolVersion,
    packet: Packet,
    len: usize,
) {
    let kind = packet.packet_type();
    let stage = if c.connack_sent {
        crate::rules::Stage::Connected
    } else {
        crate::rules::Stage::Connecting
    };
    debug_assert_eq!(
        crate::rules::check_outbound(crate::rules::Role::Server, version, stage, kind),
        Ok(()),
        "the broker was about to send an illegal packet"
    );
    if let Packet::ConnAck(a) = &packet {
        c.connack_sent = !a.reason_code.is_error();
    }
    c.flow.unwritten += len;
    actions.push_back(BrokerAction::Send {
        connection: conn,
        version,
        packet,
    });
}

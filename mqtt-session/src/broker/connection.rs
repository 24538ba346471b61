//! What the hub keeps of one network connection, and what can be decided from it alone:
//! the stage of its CONNECT, the client's limits (Receive Maximum, Maximum Packet Size,
//! Request Problem Information) and fitting a packet to them, and the write budget. The
//! connection's own protocol (rules per stage, keep-alive, topic aliases) is its
//! `ServerConnection`'s (`server.rs`). The rest of the hub asks this; it asks nothing of
//! the hub.

use crate::collections::VecDeque;
use crate::time::Instant;
use alloc::{boxed::Box, vec::Vec};

use mqtt_codec::{Connect, MqttString, Packet, ProtocolVersion, Publish, QoS, TopicName};

use super::event::{BrokerAction, ConnectionId};
use super::session::SessionKey;

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
    /// CONNECT received, CONNACK not yet sent (boxed: a connection spends little time
    /// here, and its record is kept small for the rest of its life).
    Connecting(Box<PendingConnect>),
    /// CONNACK with success sent.
    Connected,
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
    /// The client's Receive Maximum: QoS 1/2 PUBLISH the broker may have unacknowledged.
    pub(crate) receive_maximum: u16,
    /// The client's Maximum Packet Size.
    pub(crate) maximum_packet_size: u32,
    /// The client's Request Problem Information: whether packets other than PUBLISH,
    /// CONNACK and DISCONNECT may carry a Reason String or User Properties.
    pub(crate) problem_information: bool,
    /// The connection gives topics aliases in the PUBLISH packets it sends (its
    /// `ServerConnection` does), so a PUBLISH needs room for one.
    pub(crate) outbound_aliases: bool,
    /// v5 Authentication Method of the CONNECT (boxed: few clients have one).
    pub(crate) auth_method: Option<Box<MqttString>>,
    /// A re-authentication in progress.
    pub(crate) reauth: Option<Turn>,
    /// AUTH packets received in the current authentication exchange.
    pub(crate) auth_round_trips: u32,
    /// The CONNECT asked for a Session Expiry Interval of 0 (a DISCONNECT may then not
    /// set another, section 3.14.2.2.2).
    pub(crate) expiry_was_zero: bool,
    /// Flow control: what the driver has of this connection's output, and who waits for it.
    pub(crate) flow: Flow,
    /// Whether packets to this client may carry a Reason String
    /// ([`BrokerConfig::reason_strings`](super::BrokerConfig::reason_strings)).
    pub(crate) reason_strings: bool,
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
            receive_maximum: u16::MAX,
            maximum_packet_size: mqtt_codec::MAX_PACKET_SIZE,
            problem_information: true,
            outbound_aliases: false,
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
            reason_strings: true,
        }
    }

    /// `packet` as this client may receive it, and its encoded length; `None` if it does
    /// not fit. Under 3.1.1 acknowledgements go without properties; under v5 the parts a
    /// sender may drop (Reason String, User Properties) are dropped if the packet would
    /// exceed the client's Maximum Packet Size ([MQTT-3.1.2-24] and the per-packet rules
    /// such as [MQTT-3.4.2-2]), or if the client asked for no problem information and the
    /// packet is not a CONNACK, DISCONNECT or PUBLISH ([MQTT-3.1.2-29]).
    pub(crate) fn fit(&self, mut packet: Packet) -> Option<(Packet, usize)> {
        if !self.reason_strings {
            crate::fit::drop_reason_string(&mut packet);
        }
        let version = self.version;
        let max = self.maximum_packet_size as usize;
        let fitting = |p: &Packet| p.encoded_len(version).ok().filter(|&n| n <= max);
        // 3.1.1 has no properties at all.
        let strip = !version.is_v5()
            || (!self.problem_information
                && !matches!(
                    packet,
                    Packet::ConnAck(_) | Packet::Disconnect(_) | Packet::Publish(_)
                ));
        if !strip && let Some(len) = fitting(&packet) {
            return Some((packet, len));
        }
        crate::fit::drop_optional_properties(&mut packet);
        let len = fitting(&packet)?;
        Some((packet, len))
    }

    /// A PUBLISH shaped for this client, and its encoded length (at most): no properties
    /// under 3.1.1.
    /// `Err` if it is larger than the client's Maximum Packet Size ([MQTT-3.1.2-24]). Where
    /// the connection gives topics aliases, room is kept for one (which grows the property
    /// length by at most one byte), so that its `ServerConnection` binds an alias only in a
    /// packet that really goes out.
    pub(crate) fn fit_publish(&mut self, mut p: Publish) -> Result<(Packet, usize), TooLarge> {
        let version = self.version;
        if !version.is_v5() {
            p.properties = Default::default();
        }
        let room = if self.outbound_aliases { 4 } else { 0 };
        let len = p.encoded_len(version).unwrap_or(usize::MAX);
        // Counted with that room: the budget holds what may be written.
        let counted = len.saturating_add(room);
        if counted <= self.maximum_packet_size as usize {
            return Ok((Packet::Publish(p), counted));
        }
        Err(TooLarge {
            qos: p.qos(),
            topic: p.topic,
        })
    }

    /// Hands `packet`, `len` bytes once encoded, to the driver for this connection (`conn`),
    /// counted against its write budget. (Its `ServerConnection` asserts the rules table
    /// as the packet goes out.)
    pub(crate) fn hand_out(
        &mut self,
        actions: &mut VecDeque<BrokerAction>,
        conn: ConnectionId,
        packet: Packet,
        len: usize,
    ) {
        self.flow.unwritten += len;
        actions.push_back(BrokerAction::Send {
            connection: conn,
            version: self.version,
            packet,
            len,
        });
    }
}

/// A message too large for the client it was to go to.
#[derive(Debug)]
pub(crate) struct TooLarge {
    pub(crate) topic: TopicName,
    pub(crate) qos: QoS,
}

/// What happens to the will of a connection that ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WillOnClose {
    /// Published, after its delay ([MQTT-3.1.2-8]).
    Publish,
    /// Deleted: a DISCONNECT with 0x00 (3.1.1: any DISCONNECT) ([MQTT-3.14.4-3]).
    Discard,
}

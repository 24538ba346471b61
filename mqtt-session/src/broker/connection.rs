//! One network connection's protocol state, and what can be decided from it alone: the
//! stage and the rules table, keep-alive, topic aliases both ways, fitting a packet to the
//! client's Maximum Packet Size and Request Problem Information, and the write budget.
//! The session hub (the rest of the broker) asks it; it asks nothing of the hub.

use crate::collections::VecDeque;
use crate::time::Instant;
use alloc::{boxed::Box, vec::Vec};
use core::time::Duration;

use mqtt_codec::{
    Connect, MqttString, Packet, PacketType, ProtocolVersion, Publish, QoS, TopicName,
};

use super::event::{BrokerAction, ConnectionId};
use super::session::SessionKey;
use crate::rules::{self, Role, Violation};
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
    /// Whether packets to this client may carry a Reason String
    /// ([`BrokerConfig::reason_strings`](super::BrokerConfig::reason_strings)).
    pub(crate) reason_strings: bool,
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
            reason_strings: true,
        }
    }

    /// How long the client may stay silent: 1.5 times its keep-alive ([MQTT-3.1.2-22]).
    pub(crate) fn silence_allowed(&self) -> Option<Duration> {
        (self.keep_alive > 0).then(|| Duration::from_millis(u64::from(self.keep_alive) * 1500))
    }

    /// Keep-alive at `now`: `Ok(())` if the client has been silent too long, else when to
    /// look again (`None`: no keep-alive).
    pub(crate) fn keep_alive_due(&self, now: Instant) -> Result<(), Option<Instant>> {
        let Some(allowed) = self.silence_allowed() else {
            return Err(None);
        };
        let due = self.last_seen + allowed;
        if due > now { Err(Some(due)) } else { Ok(()) }
    }

    /// A packet of `kind` arrived at `now`: the client is alive, and the packet must be
    /// one the rules table allows at this stage.
    pub(crate) fn received(&mut self, now: Instant, kind: PacketType) -> Result<(), Violation> {
        self.last_seen = now;
        rules::check_inbound(Role::Server, self.version, self.stage.rules_stage(), kind)
    }

    /// A PUBLISH from the client with its topic name restored from a Topic Alias, which
    /// must be within our Topic Alias Maximum ([MQTT-3.3.2-12]).
    pub(crate) fn resolve_topic_alias(&mut self, p: &mut Publish) -> Result<(), Violation> {
        match self.aliases.as_deref_mut() {
            Some(a) => a.inbound.resolve(p),
            // No alias is allowed: any use is refused.
            None => InboundAliases::new(0).resolve(p),
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

    /// A PUBLISH shaped for this client, and its encoded length: no properties under 3.1.1,
    /// an outbound Topic Alias where enabled. `Err` if it is larger than the client's
    /// Maximum Packet Size ([MQTT-3.1.2-24]); no alias is bound then.
    pub(crate) fn fit_publish(&mut self, mut p: Publish) -> Result<(Packet, usize), TooLarge> {
        let version = self.version;
        if !version.is_v5() {
            p.properties = Default::default();
        }
        // Sized with the full topic name, and room for a Topic Alias property (which grows
        // the property length by at most one byte), so that an alias is bound only by a
        // packet that really goes out.
        let aliases = self
            .aliases
            .as_deref_mut()
            .filter(|a| version.is_v5() && a.outbound.maximum() > 0);
        let room = if aliases.is_some() { 4 } else { 0 };
        let packet = Packet::Publish(p);
        let len = packet.encoded_len(version).unwrap_or(usize::MAX);
        let fits = len.saturating_add(room) <= self.maximum_packet_size as usize;
        match (packet, aliases) {
            (Packet::Publish(p), _) if !fits => Err(TooLarge {
                qos: p.qos(),
                topic: p.topic,
            }),
            (Packet::Publish(mut p), Some(a)) => {
                // The alias changes the size: count what will be written.
                a.outbound.apply(&mut p);
                let packet = Packet::Publish(p);
                let len = packet.encoded_len(version).unwrap_or(len);
                Ok((packet, len))
            }
            (packet, _) => Ok((packet, len)),
        }
    }

    /// Hands `packet`, `len` bytes once encoded, to the driver for this connection (`conn`),
    /// counted against its write budget. What the broker sends must be legal at this stage
    /// of the connection: the rules table is asserted.
    pub(crate) fn hand_out(
        &mut self,
        actions: &mut VecDeque<BrokerAction>,
        conn: ConnectionId,
        packet: Packet,
        len: usize,
    ) {
        let stage = if self.connack_sent {
            rules::Stage::Connected
        } else {
            rules::Stage::Connecting
        };
        debug_assert_eq!(
            rules::check_outbound(Role::Server, self.version, stage, packet.packet_type()),
            Ok(()),
            "the broker was about to send an illegal packet"
        );
        if let Packet::ConnAck(a) = &packet {
            self.connack_sent = !a.reason_code.is_error();
        }
        self.flow.unwritten += len;
        actions.push_back(BrokerAction::Send {
            connection: conn,
            version: self.version,
            packet,
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

//! One network connection: where it stands, what its client allows, and how it ends.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mqtt_codec::{ConnAck, Connect, Disconnect, MqttString, Packet, ProtocolVersion, ReasonCode};

use super::event::{BrokerEvent, ClientDisconnected, Limit};
use super::session::SessionKey;
use super::timers::Deadline;
use super::{Broker, BrokerAction, ConnectionId};
use crate::event::{CloseCause, Disconnected};
use crate::rules::Violation;
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

impl Broker {
    /// The session and version of a connection that has completed CONNECT.
    pub(super) fn connected_session(&self, conn: ConnectionId) -> Option<(SessionKey, bool)> {
        let c = self.connections.get(&conn)?;
        match c.stage {
            Stage::Connected => Some((c.session?, c.version.is_v5())),
            _ => None,
        }
    }

    pub(super) fn emit(&mut self, event: BrokerEvent) {
        self.actions.push_back(BrokerAction::Event(event));
    }

    pub(super) fn persist(&mut self, op: super::store::StoreOp) {
        self.actions.push_back(BrokerAction::Persist(op));
    }

    /// `limit` refused something `conn` (or, without a connection, the session `client_id`)
    /// asked for: counted and evented.
    pub(super) fn limit_reached_by(
        &mut self,
        connection: Option<ConnectionId>,
        client_id: Option<MqttString>,
        limit: Limit,
    ) {
        self.limit_counts[limit as usize] += 1;
        self.emit(BrokerEvent::LimitReached {
            connection,
            client_id,
            limit,
        });
    }

    /// [`limit_reached_by`](Self::limit_reached_by) a connection, its client named if known.
    pub(super) fn limit_reached(&mut self, conn: Option<ConnectionId>, limit: Limit) {
        let client_id = conn
            .and_then(|c| self.connections.get(&c))
            .and_then(|c| match &c.stage {
                Stage::Connecting(p)
                    if c.client_id.is_none() && !p.connect.client_id.is_empty() =>
                {
                    Some(p.connect.client_id.clone())
                }
                _ => c.client_id.clone(),
            });
        self.limit_reached_by(conn, client_id, limit);
    }

    /// Queues `packet` for `conn` in the connection's version (under 3.1.1 without the
    /// properties of acknowledgements). Under v5 the optional parts a
    /// sender may drop (reason strings, user properties) are dropped if the packet would
    /// exceed the client's Maximum Packet Size ([MQTT-3.1.2-24] and the per-packet rules
    /// such as [MQTT-3.4.2-2]), or if the client asked for no problem information and the
    /// packet is not a CONNACK, DISCONNECT or PUBLISH ([MQTT-3.1.2-29]); a packet that
    /// still does not fit is not sent.
    pub(super) fn send(&mut self, conn: ConnectionId, mut packet: Packet) {
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        let version = c.version;
        let max = c.maximum_packet_size as usize;
        // The encoded length, if the packet fits the client's Maximum Packet Size.
        let fitting = |p: &Packet| p.encoded_len(version).ok().filter(|&n| n <= max);
        // 3.1.1 has no properties at all.
        let strip = !version.is_v5()
            || (!c.problem_information
                && !matches!(
                    packet,
                    Packet::ConnAck(_) | Packet::Disconnect(_) | Packet::Publish(_)
                ));
        let mut len = if strip { None } else { fitting(&packet) };
        if len.is_none() {
            match &mut packet {
                Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                    a.properties = Default::default();
                }
                Packet::SubAck(a) => a.properties = Default::default(),
                Packet::UnsubAck(a) => a.properties = Default::default(),
                Packet::ConnAck(a) => {
                    a.properties.reason_string = None;
                    a.properties.user_properties.clear();
                }
                Packet::Disconnect(d) => {
                    d.properties.reason_string = None;
                    d.properties.user_properties.clear();
                }
                Packet::Auth(a) => {
                    a.properties.reason_string = None;
                    a.properties.user_properties.clear();
                }
                _ => {}
            }
            len = fitting(&packet);
        }
        let Some(len) = len else {
            return;
        };
        hand_out(&mut self.actions, c, conn, version, packet, len);
    }

    /// The broker closes `conn` because a limit was reached: under v5 a connected client
    /// gets DISCONNECT with `rc` and `reason` as its Reason String first. The will is
    /// published.
    pub(super) fn close_for_limit(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        rc: ReasonCode,
        reason: &'static str,
    ) {
        let Some(c) = self.connections.get(&conn) else {
            return;
        };
        if c.version.is_v5() && matches!(c.stage, Stage::Connected) {
            let mut d = Disconnect::new(rc);
            d.properties.reason_string = Some(MqttString::from_static(reason));
            self.send(conn, Packet::Disconnect(d));
        }
        let why = Disconnected::new(CloseCause::Local, Some(rc));
        self.end_connection(now, conn, why, WillOnClose::Publish, true);
    }

    /// The client broke a rule: the connection closes ([MQTT-4.13.1-1], 3.1.1
    /// [MQTT-4.8.0-1]), after a DISCONNECT with the reason code under v5 once CONNACK is out
    /// ([MQTT-3.14.0-1]), or a CONNACK with it before. The will is published. Other
    /// connections are not touched.
    pub(super) fn violation(&mut self, now: Instant, conn: ConnectionId, v: Violation) {
        let Some(c) = self.connections.get(&conn) else {
            return;
        };
        let v5 = c.version.is_v5();
        match c.stage {
            Stage::Connected if v5 => {
                let mut d = Disconnect::new(v.reason_code);
                d.properties.reason_string = Some(MqttString::from_static(v.rule));
                self.send(conn, Packet::Disconnect(d));
            }
            Stage::Connecting(_)
                if v5 && v.reason_code.allowed_in(mqtt_codec::PacketType::ConnAck) =>
            {
                let mut a = ConnAck {
                    reason_code: v.reason_code,
                    ..ConnAck::default()
                };
                a.properties.reason_string = Some(MqttString::from_static(v.rule));
                self.send(conn, Packet::ConnAck(Box::new(a)));
            }
            _ => {}
        }
        self.end_connection(
            now,
            conn,
            Disconnected::violation(v),
            WillOnClose::Publish,
            true,
        );
    }

    /// The connection is over: an event, [`BrokerAction::Close`] if `close` (the driver did not
    /// report it closed), and its session carries on disconnected (or ends).
    pub(super) fn end_connection(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        why: Disconnected,
        will: WillOnClose,
        close: bool,
    ) {
        let Some(c) = self.connections.remove(&conn) else {
            return;
        };
        if matches!(c.stage, Stage::Connecting(_)) {
            self.pending_connects = self.pending_connects.saturating_sub(1);
        }
        self.deadlines.cancel(Deadline::KeepAlive(conn));
        self.deadlines.cancel(Deadline::ConnectTimeout(conn));
        self.deadlines.cancel(Deadline::WriteStall(conn));
        self.release_waiters(c.flow.waiters);
        self.emit(BrokerEvent::Disconnected(ClientDisconnected {
            connection: conn,
            client_id: c.client_id.clone(),
            disconnected: why,
        }));
        if close {
            self.actions.push_back(BrokerAction::Close(conn));
        }
        if let (Stage::Connected, Some(key)) = (&c.stage, c.session) {
            self.session_disconnected(now, key, will);
        }
    }
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

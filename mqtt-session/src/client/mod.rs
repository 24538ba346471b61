//! The sans-IO MQTT client: one session with a server, over any number of connections.
//!
//! [`Client`] performs no I/O and reads no clock. Its methods sort into four kinds:
//!
//! - **inputs**, `handle_*(now, ..)`: a packet decoded from the server
//!   ([`handle_packet`](Client::handle_packet)), a decode failure
//!   ([`handle_decode_error`](Client::handle_decode_error)), a timer that fell due
//!   ([`handle_timeout`](Client::handle_timeout)), the transport closing
//!   ([`handle_closed`](Client::handle_closed));
//! - **commands** from the application: [`connect`](Client::connect),
//!   [`publish`](Client::publish), [`subscribe`](Client::subscribe),
//!   [`unsubscribe`](Client::unsubscribe), [`disconnect`](Client::disconnect) and the v5
//!   authentication steps. They return `Err` only for local misuse; the server's
//!   misbehaviour ends the connection with an [`Event::Disconnected`] instead;
//! - **outputs**: after every input or command, drain [`poll_action`](Client::poll_action)
//!   until `None` and carry the actions out in order, then ask
//!   [`poll_timeout`](Client::poll_timeout) when to call `handle_timeout` next;
//! - **getters**: [`state`](Client::state), [`session_state`](Client::session_state),
//!   [`limits`](Client::limits), and so on.
//!
//! A driver opens a transport, calls `connect`, decodes what arrives with
//! [`decode`](Client::decode) and feeds it in, and closes the transport on
//! [`Action::Close`]. To reconnect it opens a new transport and calls `connect` again: the
//! session (unacknowledged messages, QoS 2 state, pending requests) carries over.
//!
//! Servers that speak only 3.1.1: a 3.1.1 server answers a 5.0 CONNECT with the 3.1.1
//! CONNACK `20 02 00 01` (return code 1, unacceptable protocol level; 3.1.1
//! [MQTT-3.1.2-2]), which is no v5 packet (a v5 CONNACK has a Property Length, so at least
//! three bytes after the fixed header). While it waits for the CONNACK of a 5.0 CONNECT,
//! [`decode`](Client::decode) reads exactly those four bytes as the 3.1.1 packet they are,
//! CONNACK with [`ReasonCode::UNSUPPORTED_PROTOCOL_VERSION`]; everything else is decoded
//! strictly as 5.0. The client reports [`Event::UnsupportedProtocolVersion`], then the
//! refusal. With [`ClientConfig::fallback_to_v3_1_1`] it also switches to 3.1.1, and the
//! driver connects again on a new transport.
//!
//! Session state and Session Present: a client made with [`Client::new`] has no session
//! state until a CONNACK accepts its first connection, so a CONNACK with Session Present 1
//! before then ends the connection as a protocol violation ([MQTT-3.2.2-4]). A client made
//! with [`Client::resume`] has session state from the start, even from an empty
//! [`SessionState`]; that is how an application without a store resumes the session a
//! server kept for it. A CONNACK with Session Present 0 makes the client discard its
//! session state ([MQTT-3.2.2-5]): messages it had sent are dropped with
//! [`DropReason::SessionLost`], incoming QoS 2 identifiers are forgotten.

mod config;
mod connect;
mod error;
mod event;
mod publish;
mod subscribe;
#[cfg(test)]
#[allow(clippy::field_reassign_with_default, clippy::box_default)] // stories read better
mod tests;

use crate::collections::{BTreeMap, VecDeque};
use crate::time::Instant;
use core::time::Duration;

pub use crate::topic_alias::AutomaticAliases;
pub use config::{ClientConfig, ServerLimits};
pub use error::{
    AckError, AuthError, ConnectError, DisconnectError, PublishError, ResumeError, SubscribeError,
};
pub use event::{Action, Connected, DropReason, Event, Published, Subscribed, Unsubscribed};
pub use publish::Message;
use publish::PendingAck;

use mqtt_codec::{
    Bytes, BytesMut, DecodeContext, DecodeError, MqttString, Packet, PacketId, PacketType,
    ProtocolVersion, ReasonCode,
};

use crate::event::{CloseCause, Disconnected};
use crate::inflight::{InboundQos2, Outbound};
use crate::packet_ids::PacketIds;
use crate::rules::{self, Role, Stage, Violation};
use crate::store::{Request, SessionOp, SessionState};
use crate::timer::{Timer, TimerTable};
use crate::topic_alias::{InboundAliases, OutboundAliases};

/// Where the client's connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// No connection: call [`Client::connect`] on a new transport.
    Disconnected,
    /// CONNECT sent; waiting for CONNACK (v5: perhaps exchanging AUTH first).
    Connecting,
    /// CONNACK accepted the connection.
    Connected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientTimer {
    ConnAck,
    PingResp,
    KeepAlive,
}

impl Timer for ClientTimer {
    const ALL: &'static [Self] = &[Self::ConnAck, Self::PingResp, Self::KeepAlive];
    fn index(self) -> usize {
        self as usize
    }
}

/// A sans-IO MQTT 3.1.1 / 5.0 client session. See the [module documentation](self).
#[derive(Debug)]
pub struct Client {
    /// The configuration in force: the application's, or its 3.1.1 form after a fallback.
    config: ClientConfig,
    /// A CONNACK accepted a connection of this client: the protocol version is settled,
    /// and a refusal of 5.0 no longer makes it fall back to 3.1.1.
    protocol_settled: bool,
    client_id: MqttString,
    state: ConnectionState,
    /// A session exists (a CONNACK accepted one, or it was restored): v5 reconnections
    /// then use Clean Start 0.
    has_session: bool,
    /// The Clean Start flag of the current connection's CONNECT.
    sent_clean_start: bool,
    reauthenticating: bool,
    outbound: Outbound,
    /// Where the current connection began in `outbound`'s order: an entry with a lower
    /// sequence number was released on an earlier connection, so its PUBREL on this one
    /// is sent again to recover the flow (see `on_pubcomp`).
    connection_start: u64,
    inbound_qos2: InboundQos2,
    /// Under manual acknowledgement: incoming QoS 1/2 messages delivered and not yet
    /// acknowledged, in the order they arrived.
    pending_acks: VecDeque<PendingAck>,
    ids: PacketIds,
    requests: BTreeMap<PacketId, Request>,
    limits: ServerLimits,
    out_aliases: OutboundAliases,
    in_aliases: InboundAliases,
    timers: TimerTable<ClientTimer, 3>,
    actions: VecDeque<Action>,
}

impl Client {
    /// A client with no session state yet. Nothing happens until [`connect`](Self::connect).
    ///
    /// It has session state once a CONNACK accepts a connection (reconnections in the same
    /// process then resume that session). Before that, a CONNACK with Session Present 1
    /// is refused as a protocol violation ([MQTT-3.2.2-4]), even after Clean Start 0: to
    /// resume a session the server kept while holding nothing locally, use
    /// [`Client::resume`] with an empty [`SessionState`].
    pub fn new(config: ClientConfig) -> Self {
        let limits = ServerLimits::defaults(config.keep_alive);
        Self {
            client_id: config.client_id.clone(),
            in_aliases: InboundAliases::new(config.topic_alias_maximum()),
            config,
            protocol_settled: false,
            state: ConnectionState::Disconnected,
            has_session: false,
            sent_clean_start: false,
            reauthenticating: false,
            outbound: Outbound::new(),
            connection_start: 0,
            inbound_qos2: InboundQos2::new(),
            pending_acks: VecDeque::new(),
            ids: PacketIds::new(),
            requests: BTreeMap::new(),
            limits,
            out_aliases: OutboundAliases::default(),
            timers: TimerTable::new(),
            actions: VecDeque::new(),
        }
    }

    /// A client resuming a stored session (from [`session_state`](Self::session_state) or a
    /// [`MemorySessionStore`](crate::store::MemorySessionStore)-like store). Its next connection asks the
    /// server to resume the session (v5: Clean Start 0; 3.1.1: Clean Session as
    /// configured) and resends what was in flight.
    ///
    /// `SessionState::default()` is a valid, empty session: the way for an application
    /// without a store to ask for the session the server kept (its subscriptions, the
    /// messages queued for it). The client then accepts Session Present 1.
    pub fn resume(config: ClientConfig, state: SessionState) -> Result<Self, ResumeError> {
        let mut c = Self::new(config);
        if !state.client_id.is_empty() {
            c.client_id = state.client_id;
        }
        for entry in state.outgoing {
            let id = entry.packet_id;
            if !c.ids.claim(id) || c.outbound.restore(entry).is_none() {
                return Err(ResumeError::DuplicatePacketId(id.get()));
            }
        }
        for id in state.incoming_qos2 {
            c.inbound_qos2.insert(id);
        }
        for r in state.requests {
            let id = r.packet_id();
            if !c.ids.claim(id) {
                return Err(ResumeError::DuplicatePacketId(id.get()));
            }
            c.requests.insert(id, r);
        }
        c.ids.set_next(state.next_packet_id);
        c.has_session = true;
        Ok(c)
    }

    // ----- getters -------------------------------------------------------------------

    /// Where the connection stands.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// The configuration in force: the one the client was made with or, once it fell back
    /// to 3.1.1 ([`ClientConfig::fallback_to_v3_1_1`]), that configuration's
    /// [`for_v3_1_1`](ClientConfig::for_v3_1_1) form.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The protocol version of the current connection, or of the next one: the configured
    /// version, or 3.1.1 once the client fell back to it. Encode what
    /// [`Action::Send`] carries with it.
    pub fn protocol(&self) -> ProtocolVersion {
        self.config.protocol
    }

    /// How packets from the server are decoded now (see [`decode`](Self::decode)).
    pub fn decode_context(&self) -> DecodeContext {
        self.config.decode_context()
    }

    /// Decodes the next packet the server sent from the front of `buf`, for
    /// [`handle_packet`](Self::handle_packet); an error goes to
    /// [`handle_decode_error`](Self::handle_decode_error). As [`Packet::decode`] with
    /// [`decode_context`](Self::decode_context): `Ok(None)` means more bytes are needed
    /// and nothing was consumed; call it in a loop to drain `buf`.
    ///
    /// One exception keeps a 5.0 client able to tell a 3.1.1 server's refusal from
    /// garbage: while it waits for the CONNACK of a 5.0 CONNECT, the four bytes
    /// `20 02 00 01` are read as what they are, a 3.1.1 CONNACK with return code 1
    /// (unacceptable protocol level, 3.1.1 [MQTT-3.1.2-2]), giving a CONNACK with
    /// [`ReasonCode::UNSUPPORTED_PROTOCOL_VERSION`]. No v5 CONNACK has a remaining length
    /// of 2, and any other 3.1.1 CONNACK is still refused as malformed.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        if let Some(refusal) = self.v311_refusal(buf) {
            return Ok(Some(refusal));
        }
        Packet::decode(buf, &self.decode_context())
    }

    /// The 3.1.1 refusal of a 5.0 CONNECT at the front of `buf`, taken off it.
    fn v311_refusal(&self, buf: &mut BytesMut) -> Option<Packet> {
        if self.state != ConnectionState::Connecting || !self.protocol().is_v5() {
            return None;
        }
        // CONNACK, remaining length 2: a v5 CONNACK always has at least 3.
        let frame = buf.get(..4).filter(|b| b[..2] == [0x20, 0x02])?;
        let v311 = DecodeContext::new(ProtocolVersion::V3_1_1);
        match Packet::decode_exact(Bytes::copy_from_slice(frame), &v311) {
            Ok(Packet::ConnAck(ack))
                if ack.reason_code == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION =>
            {
                let _ = buf.split_to(4);
                Some(Packet::ConnAck(ack))
            }
            _ => None,
        }
    }

    /// The client identifier (the server's assignment once a CONNACK carried one).
    pub fn client_id(&self) -> &MqttString {
        &self.client_id
    }

    /// What the server allows on the current connection (defaults before CONNACK).
    pub fn limits(&self) -> &ServerLimits {
        &self.limits
    }

    /// Outgoing QoS 1/2 messages using the server's Receive Maximum right now.
    pub fn in_flight(&self) -> usize {
        self.outbound.in_flight()
    }

    /// Outgoing QoS 1/2 messages waiting to be sent.
    pub fn queued(&self) -> usize {
        self.outbound.waiting()
    }

    /// A snapshot of everything needed to resume this session in a new process with
    /// [`Client::resume`]: outgoing messages in order, incoming QoS 2 identifiers, pending
    /// requests and the packet identifier counter.
    pub fn session_state(&self) -> SessionState {
        SessionState {
            client_id: self.client_id.clone(),
            outgoing: self.outbound.iter().cloned().collect(),
            incoming_qos2: self.inbound_qos2.iter().collect(),
            requests: self.requests.values().cloned().collect(),
            next_packet_id: self.ids.next(),
        }
    }

    // ----- outputs -------------------------------------------------------------------

    /// The next action to carry out. Call until `None` after every input and command.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ----- inputs --------------------------------------------------------------------

    /// A packet decoded from the server's byte stream (use [`decode`](Self::decode)).
    /// Packets arriving while disconnected are ignored.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) {
        let stage = match self.state {
            ConnectionState::Disconnected => return,
            ConnectionState::Connecting => Stage::Connecting,
            ConnectionState::Connected => Stage::Connected,
        };
        if let Err(v) =
            rules::check_inbound(Role::Client, self.protocol(), stage, packet.packet_type())
        {
            return self.protocol_violation(now, v);
        }
        if let Err(v) = self.check_problem_information(&packet) {
            return self.protocol_violation(now, v);
        }
        // Any packet shows the server is alive.
        self.timers.stop(ClientTimer::PingResp);
        match packet {
            Packet::ConnAck(ack) => self.on_connack(now, *ack),
            Packet::Publish(p) => self.on_publish(now, p),
            Packet::PubAck(a) => self.on_puback(now, a),
            Packet::PubRec(a) => self.on_pubrec(now, a),
            Packet::PubRel(a) => self.on_pubrel(now, a),
            Packet::PubComp(a) => self.on_pubcomp(now, a),
            Packet::SubAck(a) => self.on_suback(now, a),
            Packet::UnsubAck(a) => self.on_unsuback(now, a),
            Packet::PingResp => {}
            Packet::Disconnect(d) => self.on_disconnect(now, d),
            Packet::Auth(a) => self.on_auth(now, a),
            // Refused by the rules above.
            Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq => {}
        }
    }

    /// The server's byte stream could not be decoded: the connection ends with the error's
    /// reason code (v5: in a DISCONNECT) and an event citing the rule.
    pub fn handle_decode_error(&mut self, now: Instant, error: &DecodeError) {
        if self.state == ConnectionState::Disconnected {
            return;
        }
        self.protocol_violation(now, Violation::new(error.reason_code(), error.rule()));
    }

    /// Timers that fell due at or before `now` fire: CONNACK timeout, PINGREQ when idle for
    /// the keep-alive interval ([MQTT-3.1.2-20]), and the connection declared lost when
    /// nothing came back after a PINGREQ.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(t) = self.timers.pop_expired(now) {
            match (t, self.state) {
                (ClientTimer::ConnAck, ConnectionState::Connecting)
                | (ClientTimer::PingResp, ConnectionState::Connected) => {
                    self.close(Disconnected::new(CloseCause::Timeout, None));
                    return;
                }
                (ClientTimer::KeepAlive, ConnectionState::Connected) => {
                    self.send(now, Packet::PingReq);
                    if self.timers.get(ClientTimer::PingResp).is_none() {
                        let wait = self.config.ping_timeout.unwrap_or(self.keep_alive());
                        self.timers.set(ClientTimer::PingResp, now + wait);
                    }
                }
                _ => {}
            }
        }
    }

    /// The transport closed (or failed) without the client asking. The session stays:
    /// call [`connect`](Self::connect) on a new transport to resume it.
    pub fn handle_closed(&mut self, _now: Instant) {
        if self.state == ConnectionState::Disconnected {
            return;
        }
        self.emit(Event::Disconnected(Disconnected::new(
            CloseCause::TransportClosed,
            None,
        )));
        self.connection_ended();
    }

    // ----- internals shared by the protocol files ------------------------------------

    /// [MQTT-3.1.2-29]: after Request Problem Information 0, a Reason String or User
    /// Property may come only on PUBLISH, CONNACK and DISCONNECT; anywhere else it is a
    /// Protocol Error (section 3.1.2.11.7).
    fn check_problem_information(&self, packet: &Packet) -> Result<(), Violation> {
        if self.config.properties.request_problem_information != Some(false) {
            return Ok(());
        }
        let has = |reason: &Option<MqttString>, users: &[mqtt_codec::UserProperty]| {
            reason.is_some() || !users.is_empty()
        };
        let problem = match packet {
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                has(&a.properties.reason_string, &a.properties.user_properties)
            }
            Packet::SubAck(a) => has(&a.properties.reason_string, &a.properties.user_properties),
            Packet::UnsubAck(a) => has(&a.properties.reason_string, &a.properties.user_properties),
            Packet::Auth(a) => has(&a.properties.reason_string, &a.properties.user_properties),
            _ => false,
        };
        if problem {
            return Err(Violation::protocol(
                "[MQTT-3.1.2-29] Reason String or User Property after Request Problem Information 0",
            ));
        }
        Ok(())
    }

    fn keep_alive(&self) -> Duration {
        Duration::from_secs(u64::from(self.limits.keep_alive))
    }

    fn emit(&mut self, event: Event) {
        self.actions.push_back(Action::Event(event));
    }

    fn persist(&mut self, op: SessionOp) {
        self.actions.push_back(Action::Persist(op));
    }

    /// Queues `packet` for the wire, first dropping the properties the spec lets a sender
    /// drop (reason string, user properties of acknowledgements, DISCONNECT and AUTH) if
    /// it would exceed the server's Maximum Packet Size ([MQTT-3.2.2-15]); a packet that
    /// still does not fit is not sent. Sending restarts the keep-alive interval.
    fn send(&mut self, now: Instant, mut packet: Packet) {
        let max = self.limits.maximum_packet_size as usize;
        let version = self.protocol();
        let fits = |p: &Packet| p.encoded_len(version).map_or(true, |n| n <= max);
        if !fits(&packet) {
            crate::fit::drop_optional_properties(&mut packet);
            if !fits(&packet) {
                return;
            }
        }
        let stage = match self.state {
            ConnectionState::Disconnected => Stage::Opened,
            ConnectionState::Connecting => Stage::Connecting,
            ConnectionState::Connected => Stage::Connected,
        };
        debug_assert_eq!(
            rules::check_outbound(Role::Client, version, stage, packet.packet_type()),
            Ok(()),
            "the client was about to send an illegal packet"
        );
        self.actions.push_back(Action::Send(packet));
        if self.state == ConnectionState::Connected && self.limits.keep_alive > 0 {
            self.timers
                .set(ClientTimer::KeepAlive, now + self.keep_alive());
        }
    }

    /// The server broke a rule: v5 sends DISCONNECT with the reason code (once CONNECT is
    /// out), then the connection closes with an event naming the rule.
    fn protocol_violation(&mut self, now: Instant, mut v: Violation) {
        // [MQTT-3.14.2-1]: a code DISCONNECT cannot carry (0x84 from a CONNECT the server
        // should never have sent) is reported as what it is there, a Protocol Error.
        if !v.reason_code.allowed_in(PacketType::Disconnect) {
            v.reason_code = ReasonCode::PROTOCOL_ERROR;
        }
        if self.protocol().is_v5() {
            self.send(
                now,
                Packet::Disconnect(mqtt_codec::Disconnect::new(v.reason_code)),
            );
        }
        self.close(Disconnected::violation(v));
    }

    /// Ends the connection from this side: event, then [`Action::Close`].
    fn close(&mut self, why: Disconnected) {
        self.emit(Event::Disconnected(why));
        self.actions.push_back(Action::Close);
        self.connection_ended();
    }

    /// Per-connection state ends; the session stays.
    fn connection_ended(&mut self) {
        self.state = ConnectionState::Disconnected;
        self.reauthenticating = false;
        self.timers.stop_all();
        self.outbound.connection_lost();
        self.out_aliases = OutboundAliases::default();
        self.in_aliases = InboundAliases::new(self.config.topic_alias_maximum());
    }

    fn release_id(&mut self, id: PacketId) {
        self.ids.release(id);
    }
}

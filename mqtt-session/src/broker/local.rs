//! The whole broker in one value: a [`Hub`] and a [`ServerConnection`] for each of its
//! connections, for a driver that runs them all on one thread (a test, a simulation, a
//! microcontroller's main loop). A driver that gives each connection a task of its own
//! keeps the `ServerConnection` in that task and shares only the `Hub`.

use crate::collections::{HashMap, VecDeque};
use crate::time::Instant;
use alloc::boxed::Box;

use mqtt_codec::{
    Bytes, DecodeContext, DecodeError, MqttString, Packet, ProtocolVersion, ReasonCode,
};

use super::server::{Inbound, ServerConnection};
use super::timers::{Deadline, Deadlines};
use super::{
    Authorizer, BrokerAction, BrokerConfig, BrokerSnapshot, ConnectionId, DecisionError, Hub,
    Limit, RestoreError,
};
use crate::topic_tree::BuildLevelHasher;

/// A sans-IO MQTT broker for a single-threaded driver: a [`Hub`] and the
/// [`ServerConnection`] of each connection, behind the hub's methods. See the
/// [module documentation](super).
pub struct Broker {
    hub: Hub,
    connections: HashMap<ConnectionId, ServerConnection, BuildLevelHasher>,
    /// The keep-alive of each connected connection (checked lazily: a deadline that falls
    /// due asks the connection, which may have heard from its client since).
    keep_alive: Deadlines,
    /// Actions of the connections themselves (PINGRESP), in order with the hub's: before
    /// one is queued, the hub's pending actions move here.
    queued: VecDeque<BrokerAction>,
}

impl core::fmt::Debug for Broker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.hub.fmt(f)
    }
}

impl Broker {
    /// A broker with no connections, sessions or retained messages.
    pub fn new(config: BrokerConfig) -> Self {
        Self::from_hub(Hub::new(config))
    }

    /// Installs the hook that decides who may publish and subscribe where (default: all).
    pub fn set_authorizer(&mut self, authorizer: Box<dyn Authorizer>) {
        self.hub.set_authorizer(authorizer);
    }

    /// The session hub, for its getters ([`Hub::queued`], [`Hub::snapshot`], ...).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    // ----- getters -------------------------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        self.hub.config()
    }

    /// Open connections (connected or not yet).
    pub fn connection_count(&self) -> usize {
        self.hub.connection_count()
    }

    /// Sessions, connected or waiting for their client.
    pub fn session_count(&self) -> usize {
        self.hub.session_count()
    }

    /// Subscriptions of all sessions.
    pub fn subscription_count(&self) -> usize {
        self.hub.subscription_count()
    }

    /// Retained messages (expired ones are counted until they are next looked at).
    pub fn retained_count(&self) -> usize {
        self.hub.retained_count()
    }

    /// The protocol version of a connection, once its CONNECT arrived.
    pub fn protocol(&self, conn: ConnectionId) -> Option<ProtocolVersion> {
        self.hub.protocol(conn)
    }

    /// How to decode the next packet of `conn` (see [`ServerConnection::decode_context`]).
    pub fn decode_context(&self, conn: ConnectionId) -> DecodeContext {
        match self.connections.get(&conn) {
            Some(c) => c.decode_context(),
            None => self.hub.config().decode_context(None),
        }
    }

    /// The client identifier of a connected connection.
    pub fn client_id(&self, conn: ConnectionId) -> Option<&MqttString> {
        self.hub.client_id(conn)
    }

    /// Whether a session exists for `client_id`.
    pub fn has_session(&self, client_id: &str) -> bool {
        self.hub.has_session(client_id)
    }

    /// See [`Hub::queued`].
    pub fn queued(&self, client_id: &str) -> Option<(usize, u64)> {
        self.hub.queued(client_id)
    }

    /// See [`Hub::limit_count`].
    pub fn limit_count(&self, limit: Limit) -> u64 {
        self.hub.limit_count(limit)
    }

    /// See [`Hub::unwritten`].
    pub fn unwritten(&self, conn: ConnectionId) -> Option<usize> {
        self.hub.unwritten(conn)
    }

    /// See [`Hub::snapshot`].
    pub fn snapshot(&self) -> BrokerSnapshot {
        self.hub.snapshot()
    }

    /// A broker resuming from `snapshot` at `now` (see [`Hub::restore`]).
    pub fn restore(
        config: BrokerConfig,
        snapshot: BrokerSnapshot,
        now: Instant,
    ) -> Result<Self, RestoreError> {
        Ok(Self::from_hub(Hub::restore(config, snapshot, now)?))
    }

    /// A broker around `hub` (as [`Hub::restore`] gives it), with no connections.
    pub fn from_hub(hub: Hub) -> Self {
        Self {
            hub,
            connections: HashMap::default(),
            keep_alive: Deadlines::default(),
            queued: VecDeque::new(),
        }
    }

    // ----- outputs -------------------------------------------------------------------

    /// The next action to carry out. Call until `None` after every input and decision.
    pub fn poll_action(&mut self) -> Option<BrokerAction> {
        if let Some(a) = self.queued.pop_front() {
            return Some(a);
        }
        let action = self.hub.poll_action()?;
        Some(self.through_connection(action))
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.hub.poll_timeout(), self.keep_alive.next()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A hub action as the driver carries it out: what goes to a connection passes its
    /// [`ServerConnection`], and a connection the hub closes is forgotten.
    fn through_connection(&mut self, mut action: BrokerAction) -> BrokerAction {
        match &mut action {
            BrokerAction::Send {
                connection, packet, ..
            } => {
                let aliases = self.hub.config().outbound_topic_aliases;
                if ServerConnection::shapes(aliases, packet)
                    && let Some(c) = self.connections.get_mut(connection)
                {
                    let was_connected = c.is_connected();
                    c.outgoing(packet);
                    if !was_connected && let Some(at) = c.poll_timeout() {
                        self.keep_alive.set(Deadline::KeepAlive(*connection), at);
                    }
                }
            }
            BrokerAction::Close(conn) => {
                let conn = *conn;
                self.forget(conn);
            }
            _ => {}
        }
        action
    }

    fn forget(&mut self, conn: ConnectionId) {
        self.connections.remove(&conn);
        self.keep_alive.cancel(Deadline::KeepAlive(conn));
    }

    // ----- inputs --------------------------------------------------------------------

    /// A transport was accepted (see [`Hub::handle_opened`]).
    pub fn handle_opened(&mut self, now: Instant, conn: ConnectionId) {
        let c = ServerConnection::new(now, self.hub.config());
        self.connections.insert(conn, c);
        self.hub.handle_opened(now, conn);
    }

    /// A packet decoded from `conn`'s byte stream: its [`ServerConnection`] checks it, then
    /// the hub takes it. Packets for a connection the broker does not know (never opened,
    /// or already closed) are ignored.
    pub fn handle_packet(&mut self, now: Instant, conn: ConnectionId, mut packet: Packet) {
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        match c.handle_packet(now, &mut packet) {
            Inbound::ToHub => self.hub.handle_packet(now, conn, packet),
            Inbound::Violation(v) => self.hub.handle_violation(now, conn, v),
            Inbound::PingResp => {
                let version = c.protocol().unwrap_or(ProtocolVersion::V5);
                while let Some(a) = self.hub.poll_action() {
                    let a = self.through_connection(a);
                    self.queued.push_back(a);
                }
                self.queued.push_back(BrokerAction::Send {
                    connection: conn,
                    version,
                    packet: Packet::PingResp,
                    len: 0,
                });
            }
        }
    }

    /// `conn`'s byte stream could not be decoded (see [`Hub::handle_decode_error`]).
    pub fn handle_decode_error(&mut self, now: Instant, conn: ConnectionId, error: &DecodeError) {
        self.hub.handle_decode_error(now, conn, error);
    }

    /// The transport of `conn` closed or failed without the broker asking (see
    /// [`Hub::handle_closed`]).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnectionId) {
        self.forget(conn);
        self.hub.handle_closed(now, conn);
    }

    /// Deadlines that fell due at or before `now` fire: keep-alive ([MQTT-3.1.2-22]: a
    /// client silent for 1.5 times its keep-alive is closed as if lost, so its will is
    /// published), then the hub's (see [`Hub::handle_timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(d) = self.keep_alive.pop_due(now) {
            let Deadline::KeepAlive(conn) = d else {
                continue;
            };
            let Some(c) = self.connections.get_mut(&conn) else {
                continue;
            };
            if c.handle_timeout(now) {
                self.hub.handle_keep_alive_timeout(now, conn);
            } else if let Some(at) = c.poll_timeout() {
                self.keep_alive.set(d, at);
            }
        }
        self.hub.handle_timeout(now);
    }

    /// The driver wrote `bytes` more of `conn`'s output (see [`Hub::handle_written`]).
    pub fn handle_written(&mut self, now: Instant, conn: ConnectionId, bytes: usize) {
        self.hub.handle_written(now, conn, bytes);
    }

    // ----- decisions and commands ----------------------------------------------------

    /// See [`Hub::accept`].
    pub fn accept(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        auth_data: Option<Bytes>,
    ) -> Result<(), DecisionError> {
        self.hub.accept(now, conn, auth_data)
    }

    /// See [`Hub::accept_as`].
    pub fn accept_as(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        username: Option<MqttString>,
    ) -> Result<(), DecisionError> {
        self.hub.accept_as(now, conn, username)
    }

    /// See [`Hub::reject`].
    pub fn reject(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        reason_code: ReasonCode,
    ) -> Result<(), DecisionError> {
        self.hub.reject(now, conn, reason_code)
    }

    /// See [`Hub::continue_auth`].
    pub fn continue_auth(
        &mut self,
        conn: ConnectionId,
        auth_data: Option<Bytes>,
    ) -> Result<(), DecisionError> {
        self.hub.continue_auth(conn, auth_data)
    }

    /// See [`Hub::disconnect`].
    pub fn disconnect(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        reason_code: ReasonCode,
    ) -> Result<(), DecisionError> {
        self.hub.disconnect(now, conn, reason_code)
    }

    /// See [`Hub::shutdown`].
    pub fn shutdown(&mut self, now: Instant) {
        self.hub.shutdown(now);
    }

    /// See [`Hub::publish_own`].
    pub fn publish_own(
        &mut self,
        now: Instant,
        msg: mqtt_codec::Publish,
        qos: mqtt_codec::QoS,
    ) -> usize {
        self.hub.publish_own(now, msg, qos)
    }
}

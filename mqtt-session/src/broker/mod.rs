//! The sans-IO MQTT broker: connections, sessions, subscriptions, retained messages and
//! wills, for MQTT 3.1.1 and 5.0 clients side by side (and MQTT 3.1 CONNECTs).
//!
//! Two machines, split where a connection's own protocol ends and shared state begins:
//!
//! - a [`ServerConnection`] per connection, the server-side mirror of
//!   [`Client`](crate::client::Client): how to decode its bytes, which packet may come at
//!   which stage, keep-alive, topic aliases both ways, PINGREQ. A driver that gives each
//!   connection a task runs it there, without touching shared state;
//! - the [`Hub`]: sessions, client identifiers, the subscription tree, retained messages,
//!   wills, expiry, authorisation and the `Persist` stream, for every connection at once.
//!   It takes what the `ServerConnection`s pass on, and sends each connection what it has
//!   room for (flow control, below).
//!
//! [`Broker`] composes the two for a driver that runs everything on one thread (a test, a
//! simulation, a main loop), behind the hub's methods. Neither performs I/O or reads a
//! clock. The methods sort into four kinds:
//!
//! - **inputs**, `handle_*(now, ..)`: a connection opened
//!   ([`handle_opened`](Broker::handle_opened)), a packet decoded from it
//!   ([`handle_packet`](Broker::handle_packet)), a decode failure
//!   ([`handle_decode_error`](Broker::handle_decode_error)), the transport closing
//!   ([`handle_closed`](Broker::handle_closed)), bytes written
//!   ([`handle_written`](Broker::handle_written)), deadlines falling due
//!   ([`handle_timeout`](Broker::handle_timeout));
//! - **decisions** the driver makes when asked by a [`BrokerEvent`]: [`accept`](Broker::accept),
//!   [`reject`](Broker::reject), [`continue_auth`](Broker::continue_auth); and commands of
//!   its own: [`disconnect`](Broker::disconnect), [`shutdown`](Broker::shutdown). They
//!   return `Err` only for misuse;
//! - **outputs**: after every input or decision, drain [`poll_action`](Broker::poll_action)
//!   until `None` and carry the actions out in order (send a packet to a connection, close
//!   one, persist a change, pause or resume reading, note an event), then ask
//!   [`poll_timeout`](Broker::poll_timeout) when to call `handle_timeout` next;
//! - **getters** and snapshots: [`Hub::snapshot`] and [`Broker::restore`] for durable
//!   state, counts for monitoring.
//!
//! With the machines apart, a driver: hands each decoded packet to the connection's
//! [`ServerConnection::handle_packet`] and does what the [`Inbound`] says (hand it to
//! [`Hub::handle_packet`], write a PINGRESP, or report the violation to
//! [`Hub::handle_violation`]); passes every [`BrokerAction::Send`] through
//! [`ServerConnection::outgoing`] before encoding it; and reports a keep-alive that ran
//! out ([`ServerConnection::handle_timeout`]) to [`Hub::handle_keep_alive_timeout`].
//!
//! **Flow control.** The hub hands a connection packets only while the bytes the driver
//! has not yet reported written stay under [`BrokerConfig::write_budget`]; what does not
//! fit waits in the session (QoS 1/2 in its queue, QoS 0 in a bounded queue with a stated
//! overflow policy, retained messages for a new subscription pulled as room allows).
//! Publishers to a subscriber that falls behind are paused ([`BrokerAction::PauseReading`]),
//! and a connection that makes no write progress for [`BrokerConfig::write_timeout`] is
//! closed.
//!
//! A client's misbehaviour is never an `Err`: the broker closes that connection (under v5
//! after a DISCONNECT or CONNACK with the reason code) and says why in an
//! [`BrokerEvent::Disconnected`]; other connections are not disturbed.
//!
//! A driver decodes each connection's bytes with [`ServerConnection::decode_context`]
//! ([`Broker::decode_context`]): until the first CONNECT, only a CONNECT; then that
//! CONNECT's protocol.
//!
//! ```
//! use mqtt_codec::*;
//! use mqtt_session::broker::{BrokerAction, Broker, BrokerConfig, ConnectionId};
//! use mqtt_session::time::Instant;
//!
//! let now = Instant::ZERO; // the driver's clock (see `mqtt_session::time`)
//! let mut broker = Broker::new(BrokerConfig::default());
//! let (sub, publisher) = (ConnectionId(1), ConnectionId(2));
//! for (conn, id) in [(sub, "sub"), (publisher, "pub")] {
//!     broker.handle_opened(now, conn);
//!     let connect = Connect::new(ProtocolVersion::V5, MqttString::new(id)?);
//!     broker.handle_packet(now, conn, Packet::Connect(Box::new(connect)));
//! }
//! let filter = (TopicFilter::new("sensors/+")?, SubscriptionOptions::qos(QoS::AtLeastOnce));
//! let subscribe = Subscribe::new(PacketId::new(1).unwrap(), vec![filter]);
//! broker.handle_packet(now, sub, Packet::Subscribe(subscribe));
//! broker.handle_packet(now, publisher, Packet::Publish(Publish::new(TopicName::new("sensors/1")?, "21.5")));
//!
//! let mut sent = Vec::new();
//! while let Some(action) = broker.poll_action() {
//!     if let BrokerAction::Send { connection, packet, .. } = action {
//!         sent.push((connection, packet.packet_type()));
//!     }
//! }
//! assert_eq!(sent, [
//!     (sub, PacketType::ConnAck),
//!     (publisher, PacketType::ConnAck),
//!     (sub, PacketType::SubAck),
//!     (sub, PacketType::Publish),
//! ]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::{boxed::Box, vec::Vec};

mod auth;
mod config;
mod connect;
mod connection;
mod deliver;
mod event;
mod flow;
mod local;
mod output;
mod owned;
mod publish;
mod retained;
mod router;
mod server;
mod session;
mod snapshot;
mod store;
mod subscribe;
mod timers;
mod will;

use crate::collections::{HashMap, VecDeque};
use crate::time::Instant;

use mqtt_codec::{
    Bytes, DecodeError, DecodeErrorKind, Disconnect, MqttString, Packet, ProtocolVersion, Publish,
    QoS, ReasonCode,
};

pub use crate::rules::Violation;
pub use auth::{AllowAll, Authorizer, ClientInfo};
pub use config::{BrokerConfig, ClientIdPolicy, ConnectPolicy, ConnectRate, Qos0Overflow};
pub use event::{
    AuthRequest, BrokerAction, BrokerEvent, ClientConnected, ClientDisconnected, ConnectRequest,
    ConnectionId, Limit, SessionEnd, Undelivered,
};
pub use local::Broker;
pub use server::{Inbound, ServerConnection};
pub use store::{
    BrokerSnapshot, MemoryStore, RestoreError, RetainedMessage, SessionSnapshot, StoreOp,
    StoredSubscription,
};

use crate::event::{CloseCause, Disconnected};
use crate::topic_tree::BuildLevelHasher;
use connection::{Connection, Stage, WillOnClose};
use retained::RetainedStore;
use router::{Router, Target};
use session::{Session, SessionKey};
use timers::{Deadline, Deadlines};

/// A decision method was called when it does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecisionError {
    /// No such connection (it may have closed meanwhile).
    #[error("no such connection")]
    UnknownConnection,
    /// The connection waits for no decision.
    #[error("the connection waits for no decision")]
    NothingPending,
    /// The reason code does not refuse (below 0x80), or the packet cannot carry it.
    #[error("{0:?} cannot refuse here")]
    NotARefusal(ReasonCode),
    /// AUTH can only be sent to a client that asked for enhanced authentication
    /// ([MQTT-4.12.0-6]).
    #[error("the client did not ask for enhanced authentication")]
    NoAuthenticationMethod,
}

/// The session hub: sessions, client identifiers, subscriptions, retained messages, wills,
/// expiry, authorisation and the `Persist` stream, for every connection at once. Each
/// connection's own protocol (decoding, rules per stage, keep-alive, topic aliases, PINGREQ)
/// is a [`ServerConnection`]'s; the hub takes what those pass on. See the
/// [module documentation](self).
pub struct Hub {
    config: BrokerConfig,
    authorizer: Box<dyn Authorizer>,
    // Boxed values: a table grows by doubling, and its empty slots would each cost a whole
    // `Connection` or `Session` (together about a kilobyte per connection at half load).
    connections: HashMap<ConnectionId, Box<Connection>, BuildLevelHasher>,
    sessions: HashMap<SessionKey, Box<Session>, BuildLevelHasher>,
    by_client_id: HashMap<MqttString, SessionKey, BuildLevelHasher>,
    next_session: u64,
    next_assigned: u64,
    router: Router,
    retained: RetainedStore,
    deadlines: Deadlines,
    actions: VecDeque<BrokerAction>,
    /// Scratch space for routing, reused by every publish.
    targets: Vec<Target>,
    /// Connections whose CONNECT waits for the driver or an AUTH exchange.
    pending_connects: usize,
    /// The current window of [`BrokerConfig::connect_rate`]: its start and its CONNECTs.
    connect_window: Option<(Instant, u32)>,
    /// What each [`Limit`] refused so far.
    limit_counts: [u64; Limit::COUNT],
}

impl core::fmt::Debug for Hub {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hub")
            .field("connections", &self.connections.len())
            .field("sessions", &self.sessions.len())
            .field("subscriptions", &self.router.tree.len())
            .field("retained", &self.retained.len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A broker with no connections, sessions or retained messages.
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            config,
            authorizer: Box::new(AllowAll),
            connections: HashMap::default(),
            sessions: HashMap::default(),
            by_client_id: HashMap::default(),
            next_session: 0,
            next_assigned: 0,
            router: Router::default(),
            retained: RetainedStore::default(),
            deadlines: Deadlines::default(),
            actions: VecDeque::new(),
            targets: Vec::new(),
            pending_connects: 0,
            connect_window: None,
            limit_counts: [0; Limit::COUNT],
        }
    }

    /// Installs the hook that decides who may publish and subscribe where (default: all).
    pub fn set_authorizer(&mut self, authorizer: Box<dyn Authorizer>) {
        self.authorizer = authorizer;
    }

    // ----- getters -------------------------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Open connections (connected or not yet).
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Sessions, connected or waiting for their client.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Subscriptions of all sessions.
    pub fn subscription_count(&self) -> usize {
        self.router.tree.len()
    }

    /// Retained messages (expired ones are counted until they are next looked at).
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// The protocol version of a connection, once its CONNECT arrived.
    pub fn protocol(&self, conn: ConnectionId) -> Option<ProtocolVersion> {
        let c = self.connections.get(&conn)?;
        (!matches!(c.stage, Stage::AwaitingConnect)).then_some(c.version)
    }

    /// The client identifier of a connected connection.
    pub fn client_id(&self, conn: ConnectionId) -> Option<&MqttString> {
        self.connections.get(&conn)?.client_id.as_ref()
    }

    /// The connection `client_id` is connected on, if it is.
    pub fn connection_of(&self, client_id: &str) -> Option<ConnectionId> {
        let id = MqttString::new(client_id).ok()?;
        self.sessions.get(self.by_client_id.get(&id)?)?.connection
    }

    /// Whether a session exists for `client_id`.
    pub fn has_session(&self, client_id: &str) -> bool {
        MqttString::new(client_id).is_ok_and(|id| self.by_client_id.contains_key(&id))
    }

    /// QoS 1/2 messages a session holds for its client (waiting, in flight or awaiting
    /// PUBCOMP), and how many were dropped for it so far.
    pub fn queued(&self, client_id: &str) -> Option<(usize, u64)> {
        let id = MqttString::new(client_id).ok()?;
        let s = self.sessions.get(self.by_client_id.get(&id)?)?;
        Some((s.outbound.len(), s.dropped))
    }

    /// How many times `limit` refused something since the broker started (each also an
    /// [`BrokerEvent::LimitReached`]).
    pub fn limit_count(&self, limit: Limit) -> u64 {
        self.limit_counts[limit as usize]
    }

    // ----- outputs -------------------------------------------------------------------

    /// The next action to carry out. Call until `None` after every input and decision.
    pub fn poll_action(&mut self) -> Option<BrokerAction> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.next()
    }

    // ----- inputs --------------------------------------------------------------------

    /// A transport was accepted: `conn` has [`BrokerConfig::connect_timeout`] to send
    /// CONNECT and complete it (the driver's decision and any AUTH exchange included).
    pub fn handle_opened(&mut self, now: Instant, conn: ConnectionId) {
        let mut c = Box::new(Connection::new(now));
        c.reason_strings = self.config.reason_strings;
        self.connections.insert(conn, c);
        self.deadlines.set(
            Deadline::ConnectTimeout(conn),
            now + self.config.connect_timeout,
        );
    }

    /// A packet from `conn` that its [`ServerConnection`] passed on
    /// ([`Inbound::ToHub`]): legal at this stage of the connection, its topic alias
    /// resolved. Packets for a connection the hub does not know (never opened, or already
    /// closed) are ignored, as are those a [`ServerConnection`] handles itself (PINGREQ).
    pub fn handle_packet(&mut self, now: Instant, conn: ConnectionId, packet: Packet) {
        let max_buffered = self.config.max_packets_before_connack;
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        match &mut c.stage {
            Stage::AwaitingConnect => match packet {
                Packet::Connect(connect) => self.on_connect(now, conn, connect),
                // A ServerConnection refuses anything else before CONNECT.
                _ => {
                    let v = Violation::protocol("[MQTT-3.1.0-1] the first packet is not CONNECT");
                    self.handle_violation(now, conn, v);
                }
            },
            Stage::Connecting(pending) => match packet {
                Packet::Auth(a) => self.on_auth(now, conn, a),
                Packet::Disconnect(_) => {
                    let why = Disconnected::new(CloseCause::Remote, None);
                    self.end_connection(now, conn, why, WillOnClose::Discard, true);
                }
                // (Its ServerConnection refuses all but AUTH and DISCONNECT during enhanced
                // authentication, [MQTT-3.1.2-30].)
                other => {
                    if pending.buffered.len() >= max_buffered {
                        self.limit_reached(Some(conn), Limit::PacketsBeforeConnack);
                        return self.violation(
                            now,
                            conn,
                            Violation::new(
                                ReasonCode::SERVER_BUSY,
                                "too many packets before CONNACK",
                            ),
                        );
                    }
                    pending.buffered.push_back(other);
                }
            },
            Stage::Connected => match packet {
                Packet::Publish(p) => self.on_publish(now, conn, p),
                p @ (Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_)) => {
                    self.on_client_ack(now, conn, p);
                }
                Packet::PubRel(a) => self.on_pubrel(conn, a),
                Packet::Subscribe(s) => self.on_subscribe(now, conn, s),
                Packet::Unsubscribe(u) => self.on_unsubscribe(conn, u),
                Packet::Disconnect(d) => self.on_disconnect(now, conn, d),
                Packet::Auth(a) => self.on_auth(now, conn, a),
                // [MQTT-3.12.4-1] A ServerConnection answers PINGREQ itself once connected;
                // one sent before CONNACK waits here with the other early packets.
                Packet::PingReq => self.send(conn, Packet::PingResp),
                // Refused by the ServerConnection's rules check.
                Packet::Connect(_)
                | Packet::ConnAck(_)
                | Packet::SubAck(_)
                | Packet::UnsubAck(_)
                | Packet::PingResp => {}
            },
        }
    }

    /// The client of `conn` broke a rule its [`ServerConnection`] checks
    /// ([`Inbound::Violation`]): the connection closes ([MQTT-4.13.1-1], 3.1.1
    /// [MQTT-4.8.0-1]), under v5 after a DISCONNECT with the reason code once CONNACK is out
    /// ([MQTT-3.14.0-1]) or a CONNACK with it before; before any CONNECT, with nothing sent
    /// ([MQTT-3.1.4-1]). The will is published.
    pub fn handle_violation(&mut self, now: Instant, conn: ConnectionId, violation: Violation) {
        let Some(c) = self.connections.get(&conn) else {
            return;
        };
        if matches!(c.stage, Stage::AwaitingConnect) {
            let why = Disconnected::violation(violation);
            return self.end_connection(now, conn, why, WillOnClose::Discard, true);
        }
        self.violation(now, conn, violation);
    }

    /// The client of `conn` stayed silent for one and a half times its keep-alive, as its
    /// [`ServerConnection::handle_timeout`] found ([MQTT-3.1.2-22]): the connection closes
    /// as if lost (under v5 after DISCONNECT 0x8D Keep Alive timeout), so the will is
    /// published.
    pub fn handle_keep_alive_timeout(&mut self, now: Instant, conn: ConnectionId) {
        let Some(c) = self.connections.get(&conn) else {
            return;
        };
        let rc = ReasonCode::KEEP_ALIVE_TIMEOUT;
        if c.version.is_v5() && matches!(c.stage, Stage::Connected) {
            self.send(conn, Packet::Disconnect(Disconnect::new(rc)));
        }
        let why = Disconnected::new(CloseCause::Timeout, Some(rc));
        self.end_connection(now, conn, why, WillOnClose::Publish, true);
    }

    /// `conn`'s byte stream could not be decoded. Before a CONNECT: an unsupported protocol
    /// version gets CONNACK 0x84 (3.1.1: return code 1, [MQTT-3.1.2-2]); anything else closes
    /// without a CONNACK ([MQTT-3.1.4-1]). Afterwards it is a protocol violation with the
    /// error's reason code.
    pub fn handle_decode_error(&mut self, now: Instant, conn: ConnectionId, error: &DecodeError) {
        let Some(c) = self.connections.get(&conn) else {
            return;
        };
        let v = Violation::new(error.reason_code(), error.rule());
        if !matches!(c.stage, Stage::AwaitingConnect) {
            return self.violation(now, conn, v);
        }
        if let DecodeErrorKind::UnsupportedProtocolVersion { level } = error.kind() {
            // A client of a later version reads a v5 CONNACK; an earlier one a 3.1.1 one.
            let version = if level >= 5 {
                ProtocolVersion::V5
            } else {
                ProtocolVersion::V3_1_1
            };
            let rc = ReasonCode::UNSUPPORTED_PROTOCOL_VERSION;
            let packet = Packet::ConnAck(Box::new(mqtt_codec::ConnAck {
                reason_code: rc,
                ..Default::default()
            }));
            let len = packet.encoded_len(version).unwrap_or(0);
            self.actions.push_back(BrokerAction::Send {
                connection: conn,
                version,
                packet,
                len,
            });
            let why = Disconnected::new(CloseCause::Refused, Some(rc));
            return self.end_connection(now, conn, why, WillOnClose::Discard, true);
        }
        self.end_connection(
            now,
            conn,
            Disconnected::violation(v),
            WillOnClose::Discard,
            true,
        );
    }

    /// The transport of `conn` closed or failed without the broker asking: the will is
    /// published (after its delay) and the session carries on without a connection.
    pub fn handle_closed(&mut self, now: Instant, conn: ConnectionId) {
        let why = Disconnected::new(CloseCause::TransportClosed, None);
        self.end_connection(now, conn, why, WillOnClose::Publish, false);
    }

    /// Deadlines that fell due at or before `now` fire: CONNECT timeouts, write stalls, will
    /// delays and session expiry. (Keep-alive is each [`ServerConnection`]'s.)
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(d) = self.deadlines.pop_due(now) {
            match d {
                Deadline::ConnectTimeout(conn) => {
                    let why = Disconnected::new(CloseCause::Timeout, None);
                    self.end_connection(now, conn, why, WillOnClose::Discard, true);
                }
                Deadline::WriteStall(conn) => self.write_stall_due(now, conn),
                d => self.session_deadline(now, d),
            }
        }
    }

    /// A DISCONNECT from a connected client. Under v5 a reason code 0x00 deletes the will
    /// ([MQTT-3.14.4-3]) and any other (0x04 Disconnect with Will Message among them) keeps
    /// it; under 3.1.1 every DISCONNECT deletes it (3.1.1 [MQTT-3.14.4-3]). A v5 client may
    /// change its Session Expiry Interval, but not from 0 (section 3.14.2.2.2).
    fn on_disconnect(&mut self, now: Instant, conn: ConnectionId, d: Disconnect) {
        let Some((key, v5)) = self.connected_session(conn) else {
            return;
        };
        if let (true, Some(n)) = (v5, d.properties.session_expiry_interval) {
            if self
                .connections
                .get(&conn)
                .is_some_and(|c| c.expiry_was_zero)
                && n != 0
            {
                return self.violation(
                    now,
                    conn,
                    Violation::protocol("DISCONNECT sets a Session Expiry Interval after 0 in CONNECT (section 3.14.2.2.2)"),
                );
            }
            self.set_session_expiry(key, n.min(self.config.maximum_session_expiry));
        }
        let will = if v5 && d.reason_code != ReasonCode::NORMAL_DISCONNECTION {
            WillOnClose::Publish
        } else {
            WillOnClose::Discard
        };
        let mut why = Disconnected::new(CloseCause::Remote, v5.then_some(d.reason_code));
        why.reason_string = d.properties.into_inner().reason_string;
        self.end_connection(now, conn, why, will, true);
    }

    fn set_session_expiry(&mut self, key: SessionKey, expiry: u32) {
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        let was = s.durable();
        s.expiry_interval = expiry;
        let (client_id, username) = (s.client_id.clone(), s.username.clone());
        if s.durable() {
            self.persist(StoreOp::PutSession {
                client_id,
                expiry_interval: expiry,
                username,
            });
        } else if was {
            self.persist(StoreOp::RemoveSession(client_id));
        }
    }

    // ----- decisions and commands ----------------------------------------------------

    /// Accepts what `conn` waits for: its CONNECT (the CONNACK follows, with `auth_data` as
    /// its v5 Authentication Data), or its re-authentication (AUTH 0x00).
    pub fn accept(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        auth_data: Option<Bytes>,
    ) -> Result<(), DecisionError> {
        self.decide_accept(now, conn, auth_data)
    }

    /// Accepts `conn`'s pending CONNECT as [`accept`](Self::accept) does, with `username` as
    /// its User Name from then on, whatever the CONNECT carried: for an identity the driver
    /// established another way, such as the subject of a TLS client certificate. The
    /// authoriser sees it, and the session keeps it.
    pub fn accept_as(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        username: Option<MqttString>,
    ) -> Result<(), DecisionError> {
        let c = self
            .connections
            .get_mut(&conn)
            .ok_or(DecisionError::UnknownConnection)?;
        match &mut c.stage {
            Stage::Connecting(p) if p.turn == connection::Turn::Driver => {
                p.connect.username = username;
                self.decide_accept(now, conn, None)
            }
            _ => Err(DecisionError::NothingPending),
        }
    }

    /// Refuses what `conn` waits for with `reason_code` (0x80 or above): a CONNECT gets a
    /// CONNACK with it (3.1.1: the nearest return code, such as 4 for 0x86 Bad User Name or
    /// Password), at any point of its authentication exchange, even while the client's AUTH
    /// is awaited; a re-authentication a DISCONNECT. The connection closes.
    pub fn reject(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        reason_code: ReasonCode,
    ) -> Result<(), DecisionError> {
        self.decide_reject(now, conn, reason_code)
    }

    /// v5 enhanced authentication: sends the client AUTH 0x18 Continue authentication with
    /// `auth_data`; its answer comes as [`BrokerEvent::AuthRequest`].
    pub fn continue_auth(
        &mut self,
        conn: ConnectionId,
        auth_data: Option<Bytes>,
    ) -> Result<(), DecisionError> {
        self.decide_continue(conn, auth_data)
    }

    /// Closes `conn` on the broker's own initiative (an administrator, a slow consumer):
    /// v5 clients get DISCONNECT with `reason_code` first. The will is published.
    pub fn disconnect(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        reason_code: ReasonCode,
    ) -> Result<(), DecisionError> {
        let c = self
            .connections
            .get(&conn)
            .ok_or(DecisionError::UnknownConnection)?;
        if !reason_code.allowed_in(mqtt_codec::PacketType::Disconnect) {
            return Err(DecisionError::NotARefusal(reason_code));
        }
        if matches!(c.stage, Stage::Connected) && c.version.is_v5() {
            self.send(conn, Packet::Disconnect(Disconnect::new(reason_code)));
        }
        let why = Disconnected::new(CloseCause::Local, Some(reason_code));
        self.end_connection(now, conn, why, WillOnClose::Publish, true);
        Ok(())
    }

    /// Publishes a message of the broker's own, such as its `$SYS` statistics: delivered to
    /// every matching subscription as a client's message would be (a topic starting with
    /// `$` reaches only filters that begin with `$` too, [MQTT-4.7.2-1]), with no publisher
    /// to acknowledge or slow down, and no check by the [`Authorizer`]'s `may_publish`
    /// (its `may_receive` still applies). With `retain` set (and Retain Available), it
    /// replaces the retained message of its topic, within the retained limits, in memory
    /// only: no store operation is emitted, so a restarted broker starts without it and
    /// publishes its own again. Returns how many subscriptions it went to.
    pub fn publish_own(&mut self, now: Instant, msg: Publish, qos: QoS) -> usize {
        if msg.retain && self.config.retain_available {
            // Over the retained limits it is still published, only not retained.
            let _ = self.keep_retained(now, &msg, qos);
        }
        self.route(now, None, None, &msg, qos, true)
    }

    /// Closes every connection before the process stops: v5 clients get DISCONNECT 0x8B
    /// Server shutting down. Wills are not published; sessions, their wills and retained
    /// messages stay as they are, for [`snapshot`](Self::snapshot).
    pub fn shutdown(&mut self, now: Instant) {
        let mut conns: Vec<ConnectionId> = self.connections.keys().copied().collect();
        conns.sort();
        let rc = ReasonCode::SERVER_SHUTTING_DOWN;
        for conn in conns {
            let Some(c) = self.connections.get(&conn) else {
                continue;
            };
            let session = c.session;
            if matches!(c.stage, Stage::Connected) && c.version.is_v5() {
                self.send(conn, Packet::Disconnect(Disconnect::new(rc)));
            }
            let why = Disconnected::new(CloseCause::Local, Some(rc));
            // Detach the session first so that ending the connection leaves it alone.
            if let Some(c) = self.connections.get_mut(&conn) {
                c.session = None;
            }
            self.end_connection(now, conn, why, WillOnClose::Discard, true);
            if let Some(key) = session {
                self.pending_on_disconnect(key);
            }
            if let Some(s) = session.and_then(|k| self.sessions.get_mut(&k)) {
                s.connection = None;
                s.outbound.connection_lost();
                if s.durable() {
                    let client_id = s.client_id.clone();
                    self.persist(StoreOp::SessionOffline(client_id));
                }
            }
        }
    }
}

//! CONNECT: checks, the driver's decision and v5 authentication exchanges, session takeover,
//! Clean Start and the CONNACK.

use crate::time::Instant;
use alloc::{boxed::Box, format};
use core::num::{NonZeroU16, NonZeroU32};

use mqtt_codec::{
    Auth, AuthProperties, Bytes, ConnAck, ConnAckProperties, Connect, Disconnect, MAX_PACKET_SIZE,
    MqttString, Packet, ProtocolVersion, QoS, ReasonCode,
};

use super::config::ConnectPolicy;
use super::connection::{PendingConnect, Stage, Turn, WillOnClose};
use super::event::{AuthRequest, BrokerEvent, ClientConnected, ConnectRequest, Limit, SessionEnd};
use super::owned;
use super::router::{has_control_characters, too_deep};
use super::session::{NEVER, Session, SessionKey};
use super::store::StoreOp;
use super::timers::Deadline;
use super::{ConnectionId, DecisionError, Hub};
use crate::event::{CloseCause, Disconnected};
use crate::rules::Violation;

/// The 3.1.1 CONNACK code closest to a v5 one: 3.1.1 has only six.
fn v3_connack_code(rc: ReasonCode) -> ReasonCode {
    if rc.to_v3_connack().is_some() {
        return rc;
    }
    match rc {
        ReasonCode::SERVER_BUSY
        | ReasonCode::SERVER_SHUTTING_DOWN
        | ReasonCode::USE_ANOTHER_SERVER
        | ReasonCode::SERVER_MOVED
        | ReasonCode::CONNECTION_RATE_EXCEEDED
        | ReasonCode::QUOTA_EXCEEDED => ReasonCode::SERVER_UNAVAILABLE,
        _ => ReasonCode::NOT_AUTHORIZED,
    }
}

impl Hub {
    /// A CONNECT on a connection that has not sent one.
    pub(super) fn on_connect(&mut self, now: Instant, conn: ConnectionId, connect: Box<Connect>) {
        let ask = self.config.connect_policy == ConnectPolicy::AskDriver;
        let over = if !self.connect_rate_allows(now) {
            Some((
                Limit::ConnectRate,
                ReasonCode::CONNECTION_RATE_EXCEEDED,
                "too many CONNECTs: try again later",
            ))
        } else if ask && self.pending_connects >= self.config.max_pending_connects {
            Some((
                Limit::PendingConnects,
                ReasonCode::SERVER_BUSY,
                "too many CONNECTs wait for a decision: try again later",
            ))
        } else if connect
            .will
            .as_ref()
            .is_some_and(|w| too_deep(w.topic.as_str(), self.config.max_topic_levels))
        {
            Some((
                Limit::TopicLevels,
                ReasonCode::TOPIC_NAME_INVALID,
                "the will topic has too many levels",
            ))
        } else {
            None
        };
        let refusal = match over {
            Some((_, rc, why)) => Some((rc, why)),
            None => self.check_connect(&connect),
        };
        let request = ask.then(|| ConnectRequest {
            connection: conn,
            protocol: connect.protocol,
            client_id: connect.client_id.clone(),
            username: connect.username.clone(),
            password: connect.password.clone(),
            authentication_method: connect.properties.authentication_method.clone(),
            authentication_data: connect.properties.authentication_data.clone(),
        });
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        c.version = connect.protocol;
        c.auth_method = connect
            .properties
            .authentication_method
            .clone()
            .map(Box::new);
        if connect.protocol.is_v5() {
            let p = &connect.properties;
            c.maximum_packet_size = p.maximum_packet_size.map_or(MAX_PACKET_SIZE, |n| n.get());
            c.problem_information = p.request_problem_information != Some(false);
        }
        c.stage = Stage::Connecting(Box::new(PendingConnect {
            connect,
            turn: Turn::Driver,
            buffered: Default::default(),
        }));
        self.pending_connects += 1;
        if let Some((limit, ..)) = over {
            self.limit_reached(Some(conn), limit);
        }
        if let Some((rc, why)) = refusal {
            return self.refuse(now, conn, rc, Some(why));
        }
        match request {
            Some(r) => self.emit(BrokerEvent::ConnectRequest(Box::new(r))),
            None => self.complete_connect(now, conn, None),
        }
    }

    /// Whether [`BrokerConfig::connect_rate`](super::BrokerConfig::connect_rate) lets one
    /// more CONNECT in at `now`; if so it is counted.
    fn connect_rate_allows(&mut self, now: Instant) -> bool {
        let Some(rate) = self.config.connect_rate else {
            return true;
        };
        let window = match self.connect_window {
            Some((start, n)) if now.saturating_duration_since(start) < rate.per => (start, n),
            _ => (now, 0),
        };
        if window.1 >= rate.connects {
            self.connect_window = Some(window);
            return false;
        }
        self.connect_window = Some((window.0, window.1 + 1));
        true
    }

    /// What the broker itself refuses in a CONNECT, before anyone decides on credentials.
    /// What the broker itself refuses in a CONNECT, before anyone decides on credentials:
    /// the reason code and a Reason String.
    fn check_connect(&self, c: &Connect) -> Option<(ReasonCode, &'static str)> {
        let v5 = c.protocol.is_v5();
        let invalid_id = ReasonCode::CLIENT_IDENTIFIER_NOT_VALID;
        if c.protocol == ProtocolVersion::V3_1 && (c.client_id.is_empty() || c.client_id.len() > 23)
        {
            return Some((invalid_id, "MQTT 3.1 allows 1 to 23 characters"));
        }
        if c.client_id.is_empty() && !self.config.allow_empty_client_id {
            return Some((invalid_id, "a Client Identifier is required"));
        }
        if !c.client_id.is_empty() && !self.config.client_id_policy.allows(&c.client_id) {
            return Some((invalid_id, "the Client Identifier is not allowed here"));
        }
        if self.config.reject_control_characters && has_control_characters(&c.client_id) {
            return Some((invalid_id, "the Client Identifier holds control characters"));
        }
        if let Some(max) = self.config.max_keep_alive
            && !v5
            && (c.keep_alive == 0 || c.keep_alive > max)
        {
            // 3.1.1 cannot be told a Server Keep Alive.
            return Some((
                invalid_id,
                "the keep-alive is longer than the broker allows",
            ));
        }
        if c.client_id.is_empty() && !v5 && !c.clean_start {
            return Some((
                invalid_id,
                "[MQTT-3.1.3-8] an empty Client Identifier needs Clean Session 1",
            ));
        }
        if let Some(w) = &c.will
            && v5
        {
            if w.qos > self.config.maximum_qos {
                return Some((
                    ReasonCode::QOS_NOT_SUPPORTED,
                    "[MQTT-3.2.2-12] Will QoS above the Maximum QoS",
                ));
            }
            if w.retain && !self.config.retain_available {
                return Some((
                    ReasonCode::RETAIN_NOT_SUPPORTED,
                    "[MQTT-3.2.2-13] Will Retain without Retain Available",
                ));
            }
        }
        if c.properties.authentication_method.is_some()
            && self.config.connect_policy == ConnectPolicy::AcceptAll
        {
            // [MQTT-4.12.0-1] no authentication method is supported without a driver.
            return Some((
                ReasonCode::BAD_AUTHENTICATION_METHOD,
                "no authentication method is supported",
            ));
        }
        None
    }

    /// Refuses a pending CONNECT: CONNACK with `rc` (3.1.1: the nearest return code),
    /// `reason` as its v5 Reason String and Session Present 0 ([MQTT-3.2.2-6]), then close
    /// ([MQTT-3.2.2-7]).
    pub(super) fn refuse(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        rc: ReasonCode,
        reason: Option<&'static str>,
    ) {
        let Some(c) = self.connections.get(&conn) else {
            return;
        };
        let v5 = c.version.is_v5();
        let rc = if v5 { rc } else { v3_connack_code(rc) };
        let mut properties = ConnAckProperties::default();
        if v5
            && matches!(
                rc,
                ReasonCode::QOS_NOT_SUPPORTED | ReasonCode::RETAIN_NOT_SUPPORTED
            )
        {
            // Say which limit the will broke ([MQTT-3.2.2-9]).
            if self.config.maximum_qos != QoS::ExactlyOnce {
                properties.maximum_qos = Some(self.config.maximum_qos);
            }
            if !self.config.retain_available {
                properties.retain_available = Some(false);
            }
        }
        if v5 {
            properties.reason_string = reason.map(MqttString::from_static);
        }
        self.send(
            conn,
            Packet::ConnAck(Box::new(ConnAck {
                reason_code: rc,
                properties,
                ..ConnAck::default()
            })),
        );
        let why = Disconnected::new(CloseCause::Refused, Some(rc));
        self.end_connection(now, conn, why, WillOnClose::Discard, true);
    }

    /// The driver's "yes" to whatever `conn` waits for.
    pub(super) fn decide_accept(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        auth_data: Option<Bytes>,
    ) -> Result<(), DecisionError> {
        let c = self
            .connections
            .get_mut(&conn)
            .ok_or(DecisionError::UnknownConnection)?;
        match &c.stage {
            Stage::Connecting(p) if p.turn == Turn::Driver => {
                self.complete_connect(now, conn, auth_data);
                Ok(())
            }
            Stage::Connected if c.reauth == Some(Turn::Driver) => {
                c.reauth = None;
                c.auth_round_trips = 0;
                let method = c.auth_method.as_deref().cloned();
                self.send_auth(conn, ReasonCode::SUCCESS, method, auth_data);
                Ok(())
            }
            _ => Err(DecisionError::NothingPending),
        }
    }

    /// The driver's "no".
    pub(super) fn decide_reject(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        rc: ReasonCode,
    ) -> Result<(), DecisionError> {
        let c = self
            .connections
            .get(&conn)
            .ok_or(DecisionError::UnknownConnection)?;
        match &c.stage {
            // [MQTT-4.12.0-4] at any point of the exchange, also while the client's turn.
            Stage::Connecting(_) => {
                if !rc.is_error() || !rc.allowed_in(mqtt_codec::PacketType::ConnAck) {
                    return Err(DecisionError::NotARefusal(rc));
                }
                self.refuse(now, conn, rc, None);
                Ok(())
            }
            Stage::Connected if c.reauth == Some(Turn::Driver) => {
                if !rc.is_error() || !rc.allowed_in(mqtt_codec::PacketType::Disconnect) {
                    return Err(DecisionError::NotARefusal(rc));
                }
                // [MQTT-4.12.1-2] a failed re-authentication closes the connection.
                self.send(conn, Packet::Disconnect(Disconnect::new(rc)));
                let why = Disconnected::new(CloseCause::Local, Some(rc));
                self.end_connection(now, conn, why, WillOnClose::Publish, true);
                Ok(())
            }
            _ => Err(DecisionError::NothingPending),
        }
    }

    /// The driver asks the client for more: AUTH 0x18 with `data` ([MQTT-4.12.0-2]).
    pub(super) fn decide_continue(
        &mut self,
        conn: ConnectionId,
        data: Option<Bytes>,
    ) -> Result<(), DecisionError> {
        let c = self
            .connections
            .get_mut(&conn)
            .ok_or(DecisionError::UnknownConnection)?;
        // [MQTT-4.12.0-6] no AUTH to a client that did not ask for enhanced authentication.
        let Some(method) = c.auth_method.as_deref().cloned() else {
            return Err(DecisionError::NoAuthenticationMethod);
        };
        match &mut c.stage {
            Stage::Connecting(p) if p.turn == Turn::Driver => p.turn = Turn::Client,
            Stage::Connected if c.reauth == Some(Turn::Driver) => c.reauth = Some(Turn::Client),
            _ => return Err(DecisionError::NothingPending),
        }
        self.send_auth(
            conn,
            ReasonCode::CONTINUE_AUTHENTICATION,
            Some(method),
            data,
        );
        Ok(())
    }

    fn send_auth(
        &mut self,
        conn: ConnectionId,
        rc: ReasonCode,
        method: Option<MqttString>,
        data: Option<Bytes>,
    ) {
        let auth = Auth {
            reason_code: rc,
            properties: AuthProperties {
                // [MQTT-4.12.0-5] the method of the CONNECT.
                authentication_method: method,
                authentication_data: data,
                ..AuthProperties::default()
            }
            .into(),
        };
        self.send(conn, Packet::Auth(auth));
    }

    /// AUTH from the client: the next step of the CONNECT's exchange (0x18), or a
    /// re-authentication (0x19, then 0x18 steps).
    pub(super) fn on_auth(&mut self, now: Instant, conn: ConnectionId, auth: Auth) {
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        let Some(method) = c.auth_method.as_deref().cloned() else {
            return self.violation(
                now,
                conn,
                Violation::protocol(
                    "[MQTT-4.12.0-7] AUTH from a client whose CONNECT had no Authentication Method",
                ),
            );
        };
        if auth.properties.authentication_method.as_ref() != Some(&method) {
            return self.violation(
                now,
                conn,
                Violation::protocol(
                    "[MQTT-4.12.1-1] AUTH with another Authentication Method than the CONNECT's",
                ),
            );
        }
        c.auth_round_trips += 1;
        if c.auth_round_trips > self.config.max_auth_round_trips {
            return self.over_auth_round_trips(now, conn);
        }
        let rc = auth.reason_code;
        let reauthenticate = match &mut c.stage {
            Stage::Connecting(p)
                if p.turn == Turn::Client && rc == ReasonCode::CONTINUE_AUTHENTICATION =>
            {
                p.turn = Turn::Driver;
                false
            }
            Stage::Connected
                if (c.reauth.is_none() && rc == ReasonCode::REAUTHENTICATE)
                    || (c.reauth == Some(Turn::Client)
                        && rc == ReasonCode::CONTINUE_AUTHENTICATION) =>
            {
                c.reauth = Some(Turn::Driver);
                true
            }
            _ => {
                return self.violation(
                    now,
                    conn,
                    Violation::protocol(
                        "AUTH out of turn or with the wrong reason code (section 4.12)",
                    ),
                );
            }
        };
        self.emit(BrokerEvent::AuthRequest(AuthRequest {
            connection: conn,
            reauthenticate,
            authentication_method: method,
            authentication_data: auth.properties.into_inner().authentication_data,
        }));
    }

    /// An authentication exchange went on for more than `max_auth_round_trips` AUTH packets
    /// from the client: a pending CONNECT is refused, a re-authentication ends the
    /// connection, both with 0x97 Quota exceeded.
    fn over_auth_round_trips(&mut self, now: Instant, conn: ConnectionId) {
        self.limit_reached(Some(conn), Limit::AuthRoundTrips);
        let rc = ReasonCode::QUOTA_EXCEEDED;
        let why = "too many AUTH round trips";
        let Some(c) = self.connections.get(&conn) else {
            return;
        };
        if matches!(c.stage, Stage::Connecting(_)) {
            return self.refuse(now, conn, rc, Some(why));
        }
        self.close_for_limit(now, conn, rc, why);
    }

    /// A fresh client identifier not used by any session ([MQTT-3.1.3-6], [MQTT-3.2.2-16]).
    fn assign_client_id(&mut self) -> MqttString {
        loop {
            self.next_assigned += 1;
            let n = self.next_assigned;
            // A configured prefix that makes no valid string falls back to the default one.
            let id = MqttString::new(format!("{}{n}", self.config.assigned_client_id_prefix))
                .or_else(|_| MqttString::new(format!("auto-{n}")));
            if let Ok(id) = id
                && !self.by_client_id.contains_key(&id)
            {
                return id;
            }
        }
    }

    /// Accepts the pending CONNECT of `conn`: takeover, Clean Start, the session, the
    /// CONNACK, resending what was in flight, and the packets that arrived meanwhile.
    fn complete_connect(&mut self, now: Instant, conn: ConnectionId, auth_data: Option<Bytes>) {
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        let Stage::Connecting(pending) = core::mem::replace(&mut c.stage, Stage::AwaitingConnect)
        else {
            return;
        };
        self.pending_connects = self.pending_connects.saturating_sub(1);
        let PendingConnect {
            connect, buffered, ..
        } = *pending;
        let v5 = connect.protocol.is_v5();
        let assigned = connect.client_id.is_empty();
        let client_id = if assigned {
            self.assign_client_id()
        } else {
            owned::string(&connect.client_id)
        };
        if !self.by_client_id.contains_key(&client_id)
            && self.sessions.len() >= self.config.max_sessions
        {
            self.limit_reached_by(Some(conn), Some(client_id), Limit::Sessions);
            return self.refuse(
                now,
                conn,
                ReasonCode::QUOTA_EXCEEDED,
                Some("too many sessions: try again later"),
            );
        }
        let requested = if v5 {
            connect.properties.session_expiry_interval.unwrap_or(0)
        } else if connect.clean_start {
            0
        } else {
            NEVER
        };
        let expiry = requested.min(self.config.maximum_session_expiry);

        // [MQTT-3.1.4-3] (3.1.1 [MQTT-3.1.4-2]): the client connected elsewhere is closed.
        let old_conn = self
            .by_client_id
            .get(&client_id)
            .and_then(|k| self.sessions.get(k))
            .and_then(|s| s.connection);
        if let Some(old) = old_conn {
            self.take_over(now, old);
        }

        // [MQTT-3.1.2-4] .. [MQTT-3.1.2-6] (3.1.1 [MQTT-3.1.2-4], [MQTT-3.1.2-6]).
        let existing = self.by_client_id.get(&client_id).copied();
        if let Some(key) = existing {
            // [MQTT-3.1.3-9], [MQTT-3.1.2-8]: a new connection for the client identifier
            // came before the Will Delay ran out, so the will waiting for it is not sent,
            // with Clean Start 1 too (the session ends, but the connection came in time; so
            // mosquitto and the Eclipse reference broker read it too).
            self.deadlines.cancel(Deadline::WillDelay(key));
            if let Some(s) = self.sessions.get_mut(&key)
                && s.connection.is_none()
                && s.will.take().is_some()
                && s.durable()
            {
                let id = s.client_id.clone();
                self.persist(StoreOp::RemoveWill(id));
            }
        }
        let resumed = match existing {
            Some(key) if !connect.clean_start => {
                self.deadlines.cancel(Deadline::SessionExpiry(key));
                Some(key)
            }
            Some(key) => {
                self.end_session(now, key, SessionEnd::CleanStart);
                None
            }
            None => None,
        };
        let session_present = resumed.is_some();
        let key = resumed.unwrap_or_else(|| {
            self.next_session += 1;
            let key = SessionKey(self.next_session);
            self.sessions
                .insert(key, Box::new(Session::new(client_id.clone(), 0)));
            self.by_client_id.insert(client_id.clone(), key);
            key
        });

        // Kept with the session: copied out of the CONNECT's read buffer.
        let mut will = connect
            .will
            .as_ref()
            .map(|w| owned::will(w).unwrap_or_else(|| w.clone()));
        if let Some(w) = &mut will
            && !v5
        {
            // 3.1.1 cannot be told the limits: the will is held to them instead.
            w.qos = w.qos.min(self.config.maximum_qos);
            w.retain &= self.config.retain_available;
        }
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        let was_durable = s.durable();
        s.expiry_interval = expiry;
        s.username = connect.username.as_ref().map(owned::string);
        s.connection = Some(conn);
        s.will = will.clone().map(Box::new);
        if s.durable() {
            self.persist(StoreOp::PutSession {
                client_id: client_id.clone(),
                expiry_interval: expiry,
                username: connect.username.clone(),
            });
            if let Some(w) = will {
                self.persist(StoreOp::PutWill {
                    client_id: client_id.clone(),
                    will: Box::new(w),
                });
            }
        } else if was_durable {
            self.persist(StoreOp::RemoveSession(client_id.clone()));
        }

        let cfg = &self.config;
        let keep_alive = match (cfg.server_keep_alive, cfg.max_keep_alive) {
            (Some(ka), _) if v5 => ka,
            (None, Some(max)) if v5 && (connect.keep_alive == 0 || connect.keep_alive > max) => max,
            _ => connect.keep_alive,
        };
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        c.stage = Stage::Connected;
        self.deadlines.cancel(Deadline::ConnectTimeout(conn));
        c.session = Some(key);
        c.client_id = Some(client_id.clone());
        c.expiry_was_zero = requested == 0;
        if v5 {
            let p = &connect.properties;
            c.receive_maximum = p.receive_maximum.map_or(u16::MAX, |n| n.get());
            c.maximum_packet_size = p.maximum_packet_size.map_or(MAX_PACKET_SIZE, |n| n.get());
            c.outbound_aliases =
                cfg.outbound_topic_aliases && p.topic_alias_maximum.is_some_and(|n| n > 0);
        }
        let mut props = ConnAckProperties::default();
        if v5 {
            if expiry != requested {
                props.session_expiry_interval = Some(expiry);
            }
            if cfg.receive_maximum != u16::MAX {
                props.receive_maximum = NonZeroU16::new(cfg.receive_maximum.max(1));
            }
            if cfg.maximum_qos != QoS::ExactlyOnce {
                props.maximum_qos = Some(cfg.maximum_qos);
            }
            if !cfg.retain_available {
                props.retain_available = Some(false);
            }
            if cfg.maximum_packet_size < MAX_PACKET_SIZE {
                props.maximum_packet_size = NonZeroU32::new(cfg.maximum_packet_size);
            }
            if assigned {
                props.assigned_client_identifier = Some(client_id.clone());
            }
            if cfg.topic_alias_maximum > 0 {
                props.topic_alias_maximum = Some(cfg.topic_alias_maximum);
            }
            if !cfg.wildcard_subscription_available {
                props.wildcard_subscription_available = Some(false);
            }
            if !cfg.subscription_identifiers_available {
                props.subscription_identifiers_available = Some(false);
            }
            if !cfg.shared_subscription_available {
                props.shared_subscription_available = Some(false);
            }
            if cfg.server_keep_alive.is_some() || keep_alive != connect.keep_alive {
                props.server_keep_alive = Some(keep_alive);
            }
            if c.auth_method.is_some() {
                props.authentication_method = c.auth_method.as_deref().cloned();
                props.authentication_data = auth_data;
            }
        }
        let connack = Packet::ConnAck(Box::new(ConnAck {
            // The Connect Acknowledge Flags are all reserved in MQTT 3.1.
            session_present: session_present && connect.protocol != ProtocolVersion::V3_1,
            reason_code: ReasonCode::SUCCESS,
            properties: props,
        }));
        let Some((connack, len)) = c.fit(connack) else {
            // [MQTT-3.1.2-24] forbids sending a CONNACK larger than the client's Maximum
            // Packet Size, and [MQTT-3.2.0-1] anything else before it: the connection
            // closes, with no will, since the client never got to be connected.
            let why = Disconnected::new(CloseCause::Local, Some(ReasonCode::PACKET_TOO_LARGE));
            return self.end_connection(now, conn, why, WillOnClose::Discard, true);
        };
        c.hand_out(&mut self.actions, conn, connack, len);
        self.emit(BrokerEvent::Connected(ClientConnected {
            connection: conn,
            client_id,
            protocol: connect.protocol,
            session_present,
            keep_alive,
            username: connect.username.clone(),
        }));
        // [MQTT-4.4.0-1] what was unacknowledged goes again, in order, with DUP.
        self.pump(now, key);
        for p in buffered {
            if !self.connections.contains_key(&conn) {
                break;
            }
            self.handle_packet(now, conn, p);
        }
    }

    /// Closes the connection a new CONNECT with the same client identifier replaces: v5
    /// DISCONNECT 0x8E Session taken over ([MQTT-3.1.4-3]). It ends as if lost, so its will
    /// follows the usual rules.
    fn take_over(&mut self, now: Instant, old: ConnectionId) {
        if self
            .connections
            .get(&old)
            .is_some_and(|c| c.version.is_v5())
        {
            self.send(
                old,
                Packet::Disconnect(Disconnect::new(ReasonCode::SESSION_TAKEN_OVER)),
            );
        }
        let why = Disconnected::new(CloseCause::Local, Some(ReasonCode::SESSION_TAKEN_OVER));
        self.end_connection(now, old, why, WillOnClose::Publish, true);
    }
}

//! Opening and closing connections: CONNECT/CONNACK, v5 enhanced authentication (AUTH),
//! and DISCONNECT in both directions.

use crate::time::Instant;
use alloc::boxed::Box;

use mqtt_codec::{
    Auth, AuthProperties, Bytes, ConnAck, Connect, Disconnect, Packet, ProtocolVersion, ReasonCode,
};

use super::{
    AuthError, Client, ClientTimer, ConnectError, Connected, ConnectionState, DisconnectError,
    DropReason, Event, ServerLimits,
};
use crate::event::{CloseCause, Disconnected};
use crate::rules::Violation;
use crate::store::SessionOp;
use crate::topic_alias::{InboundAliases, OutboundAliases};

impl Client {
    /// Starts a connection on a freshly opened transport: sends CONNECT and starts the
    /// CONNACK timeout. Under v5 the first connection uses the configured Clean Start and
    /// later ones resume the session (Clean Start 0); under 3.1.1 Clean Session is always
    /// as configured. The version is [`protocol`](Self::protocol): 3.1.1 once the client
    /// fell back to it.
    ///
    /// A configuration that may fall back to 3.1.1 but holds an option 3.1.1 cannot carry
    /// is refused here, before any server is asked ([`ConnectError::NotInV3_1_1`]).
    pub fn connect(&mut self, now: Instant) -> Result<(), ConnectError> {
        if self.state != ConnectionState::Disconnected {
            return Err(ConnectError::AlreadyConnected);
        }
        if self.may_fall_back() {
            self.config.for_v3_1_1()?;
        }
        let v5 = self.protocol().is_v5();
        let clean_start = if v5 {
            self.config.clean_start && !self.has_session
        } else {
            self.config.clean_start
        };
        if !v5 && self.client_id.is_empty() && !clean_start {
            return Err(ConnectError::EmptyClientIdNeedsCleanSession);
        }
        let connect = Connect {
            protocol: self.protocol(),
            clean_start,
            keep_alive: self.config.keep_alive,
            properties: self.config.properties.clone(),
            client_id: self.client_id.clone(),
            will: self.config.will.clone(),
            username: self.config.username.clone(),
            password: self.config.password.clone(),
        };
        let packet = Packet::Connect(Box::new(connect));
        packet.encoded_len(self.protocol())?;
        self.limits = ServerLimits::defaults(self.config.keep_alive);
        self.out_aliases = OutboundAliases::default();
        self.in_aliases = InboundAliases::new(self.config.topic_alias_maximum());
        self.sent_clean_start = clean_start;
        self.send(now, packet);
        self.state = ConnectionState::Connecting;
        self.timers
            .set(ClientTimer::ConnAck, now + self.config.connect_timeout);
        Ok(())
    }

    /// A refusal of 5.0 would make this client fall back to 3.1.1: it is configured so,
    /// and no connection of it has been accepted yet (a session begun under 5.0 is not
    /// carried on under 3.1.1).
    pub(super) fn may_fall_back(&self) -> bool {
        self.config.fallback_to_v3_1_1 && self.protocol().is_v5() && !self.protocol_settled
    }

    pub(super) fn on_connack(&mut self, now: Instant, ack: ConnAck) {
        let v5 = self.protocol().is_v5();
        if ack.reason_code == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION {
            // 3.1.1 [MQTT-3.1.2-2] (return code 1) and 5.0 [MQTT-3.1.2-2] (0x84): the
            // server does not take this version. That is an answer, not a violation.
            let refused = self.protocol();
            let fallback = if self.may_fall_back() {
                // `connect` checked that the 3.1.1 form exists; without it, no fallback.
                self.config.for_v3_1_1().ok()
            } else {
                None
            };
            self.emit(Event::UnsupportedProtocolVersion {
                refused,
                fallback: fallback.as_ref().map(|c| c.protocol),
            });
            if let Some(config) = fallback {
                self.config = config;
            }
        }
        if ack.reason_code != ReasonCode::SUCCESS {
            // [MQTT-3.2.2-7] (3.1.1 [MQTT-3.2.2-5]): the server closes after a refusal.
            return self.close(Disconnected {
                reason_string: ack.properties.reason_string.clone(),
                server_reference: ack.properties.server_reference.clone(),
                ..Disconnected::new(CloseCause::Refused, Some(ack.reason_code))
            });
        }
        if let Err(v) = self.check_auth_method(ack.properties.authentication_method.as_ref()) {
            return self.protocol_violation(now, v);
        }
        if ack.session_present && self.sent_clean_start {
            return self.protocol_violation(
                now,
                Violation::protocol(if v5 {
                    "[MQTT-3.2.2-2] Session Present set in answer to Clean Start 1"
                } else {
                    "[MQTT-3.2.2-1] Session Present set in answer to Clean Session 1"
                }),
            );
        }
        // [MQTT-3.2.2-4]: a client without session state that hears Session Present 1
        // closes (3.1.1, section 3.2.2.2, leaves the choice to the client: the same
        // choice is made). A client made with `Client::new` has no session state until a
        // CONNACK accepts a connection; one made with `Client::resume` has it, even when
        // resumed from an empty `SessionState`.
        if ack.session_present && !self.has_session {
            return self.protocol_violation(
                now,
                Violation::protocol(if v5 {
                    "[MQTT-3.2.2-4] Session Present set but the client has no session state"
                } else {
                    "Session Present set but the client has no session state (section 3.2.2.2)"
                }),
            );
        }
        // [MQTT-3.1.2-28]: Response Information only when the client asked for it.
        if ack.properties.response_information.is_some()
            && self.config.properties.request_response_information != Some(true)
        {
            return self.protocol_violation(
                now,
                Violation::protocol(
                    "[MQTT-3.1.2-28] Response Information the client did not request",
                ),
            );
        }
        if let Some(id) = &ack.properties.assigned_client_identifier {
            self.client_id = id.clone();
        } else if v5 && self.client_id.is_empty() {
            return self.protocol_violation(
                now,
                Violation::protocol(
                    "[MQTT-3.2.2-16] no Assigned Client Identifier for an empty client identifier",
                ),
            );
        }
        self.limits = if v5 {
            ServerLimits::from_connack(&ack.properties, self.config.keep_alive)
        } else {
            ServerLimits::defaults(self.config.keep_alive)
        };
        self.out_aliases = OutboundAliases::with_policy(
            self.limits.topic_alias_maximum,
            self.config.automatic_topic_aliases,
        );
        self.state = ConnectionState::Connected;
        self.connection_start = self.outbound.next_seq();
        self.has_session = true;
        self.protocol_settled = true;
        self.timers.stop(ClientTimer::ConnAck);
        if self.limits.keep_alive > 0 {
            self.timers
                .set(ClientTimer::KeepAlive, now + self.keep_alive());
        }
        if !ack.session_present {
            // [MQTT-3.2.2-5]: the server has no session, so neither does the client.
            for entry in self.outbound.discard_sent() {
                self.release_id(entry.packet_id);
                self.persist(SessionOp::RemoveOutgoing(entry.packet_id));
                self.emit(Event::PublishDropped {
                    packet_id: entry.packet_id,
                    reason: DropReason::SessionLost,
                });
            }
            for id in self.inbound_qos2.take() {
                self.persist(SessionOp::RemoveIncoming(id));
            }
            self.forget_pending_acks();
            self.persist(SessionOp::SetClientId(self.client_id.clone()));
        }
        self.emit(Event::Connected(Connected {
            protocol: self.protocol(),
            session_present: ack.session_present,
            client_id: self.client_id.clone(),
            limits: self.limits,
            connack: Box::new(ack),
        }));
        // [MQTT-4.4.0-1]: unacknowledged PUBLISH and PUBREL go again; then the requests
        // that were never answered, then whatever waited; the application's answers to
        // incoming messages given while disconnected go too.
        self.flush(now);
        self.send_answers(now);
        self.resend_requests(now);
    }

    /// [MQTT-4.12.0-5] / [MQTT-4.12.0-6]: the server's Authentication Method must be the
    /// one the client sent, and absent if it sent none.
    fn check_auth_method(&self, got: Option<&mqtt_codec::MqttString>) -> Result<(), Violation> {
        match (&self.config.properties.authentication_method, got) {
            (None, None) => Ok(()),
            (Some(sent), Some(got)) if sent == got => Ok(()),
            (None, Some(_)) => Err(Violation::protocol(
                "[MQTT-4.12.0-6] Authentication Method from the server when the client sent none",
            )),
            _ => Err(Violation::protocol(
                "[MQTT-4.12.0-5] Authentication Method differs from the one in CONNECT",
            )),
        }
    }

    pub(super) fn on_disconnect(&mut self, now: Instant, d: Disconnect) {
        if d.properties.session_expiry_interval.is_some() {
            return self.protocol_violation(
                now,
                Violation::protocol(
                    "[MQTT-3.14.2-2] Session Expiry Interval on a DISCONNECT from the server",
                ),
            );
        }
        let properties = d.properties.into_inner();
        self.close(Disconnected {
            reason_string: properties.reason_string,
            server_reference: properties.server_reference,
            ..Disconnected::new(CloseCause::Remote, Some(d.reason_code))
        });
    }

    /// Ends the connection: sends `disconnect` (3.1.1: a bare DISCONNECT, so only Success
    /// and no properties), reports [`CloseCause::Local`] and closes. A v5 reason code 0x04
    /// (Disconnect with Will Message) asks the server to publish the will.
    pub fn disconnect(
        &mut self,
        now: Instant,
        disconnect: Disconnect,
    ) -> Result<(), DisconnectError> {
        if self.state == ConnectionState::Disconnected {
            return Err(DisconnectError::NotConnected);
        }
        let sent_expiry = self.config.properties.session_expiry_interval.unwrap_or(0);
        if self.protocol() == ProtocolVersion::V5
            && sent_expiry == 0
            && disconnect.properties.session_expiry_interval.unwrap_or(0) != 0
        {
            return Err(DisconnectError::SessionExpiry);
        }
        let rc = disconnect.reason_code;
        let packet = Packet::Disconnect(disconnect);
        packet.encoded_len(self.protocol())?;
        self.send(now, packet);
        self.close(Disconnected::new(CloseCause::Local, Some(rc)));
        Ok(())
    }

    /// An AUTH with `reason_code` and `properties`, under the configured method
    /// ([MQTT-4.12.0-5], [MQTT-4.12.1-1]).
    fn auth_packet(
        &self,
        reason_code: ReasonCode,
        mut properties: AuthProperties,
    ) -> Result<Packet, AuthError> {
        let method = match (
            &self.config.properties.authentication_method,
            self.protocol(),
        ) {
            (Some(m), ProtocolVersion::V5) => m.clone(),
            _ => return Err(AuthError::NoAuthenticationMethod),
        };
        properties.authentication_method = Some(method);
        Ok(Packet::Auth(Auth {
            reason_code,
            properties: properties.into(),
        }))
    }

    fn data(data: Option<Bytes>) -> AuthProperties {
        AuthProperties {
            authentication_data: data,
            ..AuthProperties::default()
        }
    }

    /// v5: answers the server's AUTH challenge ([`Event::AuthChallenge`]) with AUTH
    /// Continue authentication and the next authentication data ([MQTT-4.12.0-3]).
    pub fn continue_authentication(
        &mut self,
        now: Instant,
        data: Option<Bytes>,
    ) -> Result<(), AuthError> {
        self.continue_authentication_with(now, Self::data(data))
    }

    /// v5: like [`continue_authentication`](Self::continue_authentication), with every
    /// property of the AUTH (data, Reason String, User Properties). The Authentication
    /// Method is always the configured one. A Reason String or User Properties that would
    /// make the AUTH exceed the server's Maximum Packet Size are left out
    /// ([MQTT-3.15.2-2], [MQTT-3.15.2-3]).
    pub fn continue_authentication_with(
        &mut self,
        now: Instant,
        properties: AuthProperties,
    ) -> Result<(), AuthError> {
        let packet = self.auth_packet(ReasonCode::CONTINUE_AUTHENTICATION, properties)?;
        let in_exchange = self.state == ConnectionState::Connecting
            || (self.state == ConnectionState::Connected && self.reauthenticating);
        if !in_exchange {
            return Err(AuthError::NotNow);
        }
        self.send(now, packet);
        Ok(())
    }

    /// v5: starts a re-authentication on an open connection with AUTH Re-authenticate
    /// ([MQTT-4.12.1-1]); the server answers with challenges or Success.
    pub fn reauthenticate(&mut self, now: Instant, data: Option<Bytes>) -> Result<(), AuthError> {
        self.reauthenticate_with(now, Self::data(data))
    }

    /// v5: like [`reauthenticate`](Self::reauthenticate), with every property of the AUTH,
    /// left out as [`continue_authentication_with`](Self::continue_authentication_with)
    /// says when they do not fit.
    pub fn reauthenticate_with(
        &mut self,
        now: Instant,
        properties: AuthProperties,
    ) -> Result<(), AuthError> {
        let packet = self.auth_packet(ReasonCode::REAUTHENTICATE, properties)?;
        if self.state != ConnectionState::Connected {
            return Err(AuthError::NotNow);
        }
        self.reauthenticating = true;
        self.send(now, packet);
        Ok(())
    }

    pub(super) fn on_auth(&mut self, now: Instant, auth: Auth) {
        if self.config.properties.authentication_method.is_none() {
            return self.protocol_violation(
                now,
                Violation::protocol(
                    "[MQTT-4.12.0-6] AUTH from the server when CONNECT had no Authentication Method",
                ),
            );
        }
        if let Err(v) = self.check_auth_method(auth.properties.authentication_method.as_ref()) {
            return self.protocol_violation(now, v);
        }
        let connecting = self.state == ConnectionState::Connecting;
        match auth.reason_code {
            ReasonCode::CONTINUE_AUTHENTICATION if connecting || self.reauthenticating => {
                self.emit(Event::AuthChallenge(auth.properties.into_inner()));
            }
            ReasonCode::SUCCESS if !connecting && self.reauthenticating => {
                self.reauthenticating = false;
                self.emit(Event::Reauthenticated(auth.properties.into_inner()));
            }
            _ => self.protocol_violation(
                now,
                Violation::protocol(
                    "AUTH reason code not expected at this point of the exchange (section 4.12)",
                ),
            ),
        }
    }
}

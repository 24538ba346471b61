//! One client's connection as the server sees it: the server-side mirror of
//! [`Client`](crate::client::Client), run by the driver next to the connection's socket.
//!
//! It owns what concerns that connection alone: how to decode its bytes, which packet may
//! come at which stage (`rules.rs`, both directions), keep-alive, topic aliases both ways,
//! and PINGREQ. It learns what it needs by watching the CONNECT that comes in and the
//! CONNACK the hub sends out, so it needs no channel of its own to the hub: everything
//! else goes to the [`Hub`](super::Hub) in session terms.

use crate::time::Instant;
use alloc::boxed::Box;
use core::time::Duration;

use mqtt_codec::{DecodeContext, Packet, PacketType, ProtocolVersion};

use super::config::BrokerConfig;
use crate::rules::{self, Role, Stage, Violation};
use crate::topic_alias::{InboundAliases, OutboundAliases};

/// What became of a packet a [`ServerConnection`] received.
#[derive(Debug)]
#[must_use]
pub enum Inbound {
    /// Hand the packet to [`Hub::handle_packet`](super::Hub::handle_packet).
    ToHub,
    /// A PINGREQ, answered here: write a PINGRESP to the client ([MQTT-3.12.4-1]); the hub
    /// need not see it. The PINGRESP does not count against the hub's write budget.
    PingResp,
    /// The client broke a rule: hand it to
    /// [`Hub::handle_violation`](super::Hub::handle_violation), which closes the connection.
    Violation(Violation),
}

/// One client's connection, as the server sees it: see the [broker module](super) for how
/// it sits beside the [`Hub`](super::Hub).
///
/// A driver keeps one per connection, next to its socket:
/// - it decodes the connection's bytes with [`decode_context`](Self::decode_context) and
///   hands each packet to [`handle_packet`](Self::handle_packet), then does what the
///   [`Inbound`] says;
/// - every packet the hub sends to the connection
///   ([`BrokerAction::Send`](super::BrokerAction::Send)) goes through
///   [`outgoing`](Self::outgoing) before it is encoded;
/// - it calls [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout),
///   and tells the hub when the client's keep-alive ran out.
#[derive(Debug)]
pub struct ServerConnection {
    /// The CONNECT's version, once it arrived.
    version: Option<ProtocolVersion>,
    /// How far the connection has got, as the rules table knows it.
    stage: Stage,
    /// Largest packet before CONNECT, and after.
    maximum_connect_size: u32,
    maximum_packet_size: u32,
    /// Whether the broker gives topics aliases in what it sends.
    outbound_topic_aliases: bool,
    /// The client's Topic Alias Maximum, from its CONNECT.
    client_alias_maximum: u16,
    /// The CONNECT named an Authentication Method: until CONNACK only AUTH and DISCONNECT
    /// may come ([MQTT-3.1.2-30]).
    enhanced_auth: bool,
    /// Keep Alive in force, seconds (0: none).
    keep_alive: u16,
    /// When the client last sent a packet.
    last_seen: Instant,
    /// Topic aliases both ways, for a v5 connection that may use them (boxed: most
    /// connections never do).
    aliases: Option<Box<Aliases>>,
}

#[derive(Debug)]
struct Aliases {
    /// Those the client sets, up to our Topic Alias Maximum.
    inbound: InboundAliases,
    /// Those the broker sets, up to the client's.
    outbound: OutboundAliases,
}

impl ServerConnection {
    /// A connection just accepted at `now`, under the hub's configuration.
    pub fn new(now: Instant, config: &BrokerConfig) -> Self {
        Self {
            version: None,
            stage: Stage::Opened,
            maximum_connect_size: config.maximum_connect_size,
            maximum_packet_size: config.maximum_packet_size,
            outbound_topic_aliases: config.outbound_topic_aliases,
            client_alias_maximum: 0,
            enhanced_auth: false,
            keep_alive: 0,
            last_seen: now,
            aliases: None,
        }
    }

    /// The CONNECT's protocol version, once it arrived.
    pub fn protocol(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Whether a CONNACK with success has gone out.
    pub fn is_connected(&self) -> bool {
        self.stage == Stage::Connected
    }

    /// How to decode the next packet: before CONNECT, only a CONNECT of at most
    /// [`BrokerConfig::maximum_connect_size`]; afterwards, that CONNECT's version and
    /// [`BrokerConfig::maximum_packet_size`].
    pub fn decode_context(&self) -> DecodeContext {
        super::config::decode_context(
            self.version,
            self.maximum_connect_size,
            self.maximum_packet_size,
        )
    }

    /// A packet decoded from the connection at `now`. The client is alive; the packet must
    /// be one the rules table allows at this stage; a PUBLISH's Topic Alias must be within
    /// our maximum, and its topic name is restored from it in place ([MQTT-3.3.2-12]).
    pub fn handle_packet(&mut self, now: Instant, packet: &mut Packet) -> Inbound {
        self.last_seen = now;
        let version = self.version.unwrap_or(ProtocolVersion::V5);
        let kind = packet.packet_type();
        if let Err(v) = rules::check_inbound(Role::Server, version, self.stage, kind) {
            return Inbound::Violation(v);
        }
        if self.enhanced_auth
            && self.stage == Stage::Connecting
            && !matches!(kind, PacketType::Auth | PacketType::Disconnect)
        {
            return Inbound::Violation(Violation::protocol(
                "[MQTT-3.1.2-30] a packet other than AUTH or DISCONNECT before CONNACK during enhanced authentication",
            ));
        }
        match packet {
            Packet::Connect(c) => {
                self.version = Some(c.protocol);
                self.stage = Stage::Connecting;
                self.keep_alive = c.keep_alive;
                self.enhanced_auth = c.properties.authentication_method.is_some();
                if c.protocol.is_v5() && self.outbound_topic_aliases {
                    self.client_alias_maximum = c.properties.topic_alias_maximum.unwrap_or(0);
                }
                Inbound::ToHub
            }
            Packet::Publish(p) if version.is_v5() && p.properties.topic_alias.is_some() => {
                let resolved = match self.aliases.as_deref_mut() {
                    Some(a) => a.inbound.resolve(p),
                    // No alias is allowed: any use is refused.
                    None => InboundAliases::new(0).resolve(p),
                };
                match resolved {
                    Ok(()) => Inbound::ToHub,
                    Err(v) => Inbound::Violation(v),
                }
            }
            // Before CONNACK the hub holds it with the other early packets, and answers it
            // once the CONNACK is out.
            Packet::PingReq if self.stage == Stage::Connected => Inbound::PingResp,
            _ => Inbound::ToHub,
        }
    }

    /// A packet the hub sends to this connection, as it goes out: a PUBLISH gets its
    /// outbound Topic Alias where the client accepts them, and a CONNACK starts the
    /// connected stage (with the keep-alive and Topic Alias Maximum it announces). What the
    /// broker sends must be legal at this stage: the rules table is asserted.
    pub fn outgoing(&mut self, packet: &mut Packet) {
        let version = self.version.unwrap_or(ProtocolVersion::V5);
        debug_assert_eq!(
            rules::check_outbound(Role::Server, version, self.stage, packet.packet_type()),
            Ok(()),
            "the broker was about to send an illegal packet"
        );
        match packet {
            Packet::Publish(p) => {
                if let Some(a) = self.aliases.as_deref_mut()
                    && a.outbound.maximum() > 0
                {
                    a.outbound.apply(p);
                }
            }
            Packet::ConnAck(a) if !a.reason_code.is_error() && self.stage == Stage::Connecting => {
                self.stage = Stage::Connected;
                if let Some(ka) = a.properties.server_keep_alive {
                    self.keep_alive = ka;
                }
                let inbound = a.properties.topic_alias_maximum.unwrap_or(0);
                let outbound = self.client_alias_maximum;
                let v5 = self.version.is_some_and(|v| v.is_v5());
                self.aliases = (v5 && (inbound > 0 || outbound > 0)).then(|| {
                    Box::new(Aliases {
                        inbound: InboundAliases::new(inbound),
                        outbound: OutboundAliases::new(outbound, true),
                    })
                });
            }
            _ => {}
        }
    }

    /// Whether [`outgoing`](Self::outgoing) can change `packet` or the connection, for a
    /// broker configured with `outbound_topic_aliases`: a driver that holds every
    /// connection in one table may skip looking the connection up otherwise. (Debug
    /// builds always look, to assert the rules table.)
    pub(crate) fn shapes(outbound_topic_aliases: bool, packet: &Packet) -> bool {
        cfg!(debug_assertions)
            || matches!(packet, Packet::ConnAck(_))
            || (outbound_topic_aliases && matches!(packet, Packet::Publish(_)))
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due: the keep-alive, once
    /// connected.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let allowed = self.silence_allowed()?;
        (self.stage == Stage::Connected).then(|| self.last_seen + allowed)
    }

    /// Whether the client has been silent for one and a half times its keep-alive at `now`
    /// ([MQTT-3.1.2-22]); if so, tell the hub
    /// ([`Hub::handle_keep_alive_timeout`](super::Hub::handle_keep_alive_timeout)).
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        self.poll_timeout().is_some_and(|due| due <= now)
    }

    /// How long the client may stay silent: 1.5 times its keep-alive.
    fn silence_allowed(&self) -> Option<Duration> {
        (self.keep_alive > 0).then(|| Duration::from_millis(u64::from(self.keep_alive) * 1500))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::num::NonZeroU16;
    use mqtt_codec::{Auth, ConnAck, Connect, MqttString, Publish, ReasonCode, TopicName};

    fn at(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    fn connect(version: ProtocolVersion, keep_alive: u16) -> Packet {
        let mut c = Connect::new(version, MqttString::new("c").unwrap());
        c.keep_alive = keep_alive;
        Packet::Connect(Box::new(c))
    }

    fn connack(f: impl FnOnce(&mut ConnAck)) -> Packet {
        let mut a = ConnAck::default();
        f(&mut a);
        Packet::ConnAck(Box::new(a))
    }

    fn publish(topic: &str, alias: Option<u16>) -> Packet {
        let mut p = Publish::new(TopicName::new(topic).unwrap(), "x");
        p.properties.topic_alias = alias.and_then(NonZeroU16::new);
        Packet::Publish(p)
    }

    /// A v5 connection through CONNECT (`keep_alive`) and a successful CONNACK.
    fn connected(
        config: &BrokerConfig,
        keep_alive: u16,
        ack: impl FnOnce(&mut ConnAck),
    ) -> ServerConnection {
        let mut c = ServerConnection::new(at(0), config);
        assert!(matches!(
            recv(&mut c, at(0), connect(ProtocolVersion::V5, keep_alive)).0,
            Inbound::ToHub
        ));
        let _ = send(&mut c, connack(ack));
        assert!(c.is_connected());
        c
    }

    /// `packet` received by `c`: what became of it, and the packet as the hub would get it.
    fn recv(c: &mut ServerConnection, now: Instant, mut packet: Packet) -> (Inbound, Packet) {
        (c.handle_packet(now, &mut packet), packet)
    }

    /// `packet` sent through `c`, as it goes out.
    fn send(c: &mut ServerConnection, mut packet: Packet) -> Packet {
        c.outgoing(&mut packet);
        packet
    }

    fn rule(inbound: Inbound) -> &'static str {
        match inbound {
            Inbound::Violation(v) => v.rule,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn before_connect_only_a_connect_decodes_and_passes() {
        let config = BrokerConfig::default();
        let mut c = ServerConnection::new(at(0), &config);
        let cx = c.decode_context();
        assert_eq!(cx.version, None);
        assert_eq!(cx.max_packet_size, config.maximum_connect_size);
        // [MQTT-3.1.0-1] the first packet from the client is CONNECT.
        assert!(rule(recv(&mut c, at(0), Packet::PingReq).0).contains("MQTT-3.1.0-1"));
        let mut c = ServerConnection::new(at(0), &config);
        assert!(matches!(
            recv(&mut c, at(0), connect(ProtocolVersion::V3_1_1, 0)),
            (Inbound::ToHub, Packet::Connect(_))
        ));
        let cx = c.decode_context();
        assert_eq!(cx.version, Some(ProtocolVersion::V3_1_1));
        assert_eq!(cx.max_packet_size, config.maximum_packet_size);
        // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
        assert!(
            rule(recv(&mut c, at(0), connect(ProtocolVersion::V3_1_1, 0)).0)
                .contains("MQTT-3.1.0-2")
        );
    }

    #[test]
    fn pingreq_is_answered_here_once_connected_and_held_for_the_hub_before() {
        let config = BrokerConfig::default();
        let mut c = ServerConnection::new(at(0), &config);
        let _ = recv(&mut c, at(0), connect(ProtocolVersion::V5, 0)).0;
        // Before CONNACK the hub holds it with the other early packets.
        assert!(matches!(
            recv(&mut c, at(0), Packet::PingReq),
            (Inbound::ToHub, Packet::PingReq)
        ));
        let _ = send(&mut c, connack(|_| {}));
        // [MQTT-3.12.4-1] the server sends PINGRESP in response to PINGREQ.
        assert!(matches!(
            recv(&mut c, at(1), Packet::PingReq).0,
            Inbound::PingResp
        ));
    }

    #[test]
    fn during_enhanced_authentication_only_auth_and_disconnect_come_before_connack() {
        let config = BrokerConfig::default();
        let mut c = ServerConnection::new(at(0), &config);
        let mut connect = Connect::new(ProtocolVersion::V5, MqttString::new("c").unwrap());
        connect.properties.authentication_method = Some(MqttString::new("SCRAM").unwrap());
        let _ = recv(&mut c, at(0), Packet::Connect(Box::new(connect))).0;
        let auth = Packet::Auth(Auth {
            reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: Default::default(),
        });
        assert!(matches!(
            recv(&mut c, at(0), auth),
            (Inbound::ToHub, Packet::Auth(_))
        ));
        // [MQTT-3.1.2-30]
        assert!(rule(recv(&mut c, at(0), publish("a", None)).0).contains("MQTT-3.1.2-30"));
        assert!(rule(recv(&mut c, at(0), Packet::PingReq).0).contains("MQTT-3.1.2-30"));
    }

    #[test]
    fn a_refusing_connack_does_not_connect() {
        let config = BrokerConfig::default();
        let mut c = ServerConnection::new(at(0), &config);
        let _ = recv(&mut c, at(0), connect(ProtocolVersion::V5, 10)).0;
        let _ = send(
            &mut c,
            connack(|a| a.reason_code = ReasonCode::NOT_AUTHORIZED),
        );
        assert!(!c.is_connected());
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn keep_alive_runs_out_after_one_and_a_half_times_its_value() {
        let config = BrokerConfig::default();
        let mut c = connected(&config, 10, |_| {});
        // [MQTT-3.1.2-22] silent for 1.5 times the Keep Alive: 15 s.
        assert_eq!(c.poll_timeout(), Some(at(15)));
        assert!(!c.handle_timeout(at(14)));
        // A packet is a sign of life.
        let _ = recv(&mut c, at(10), Packet::PingReq).0;
        assert_eq!(c.poll_timeout(), Some(at(25)));
        assert!(!c.handle_timeout(at(15)));
        assert!(c.handle_timeout(at(25)));
        // Keep Alive 0: no deadline at all.
        let c = connected(&config, 0, |_| {});
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn the_server_keep_alive_of_the_connack_is_the_one_in_force() {
        // [MQTT-3.2.2-21] the client uses the Server Keep Alive: so does the server.
        let c = connected(&BrokerConfig::default(), 100, |a| {
            a.properties.server_keep_alive = Some(4)
        });
        assert_eq!(c.poll_timeout(), Some(at(6)));
    }

    #[test]
    fn inbound_topic_aliases_are_resolved_within_our_maximum() {
        let config = BrokerConfig::default();
        let mut c = connected(&config, 0, |a| a.properties.topic_alias_maximum = Some(2));
        let (Inbound::ToHub, Packet::Publish(p)) = recv(&mut c, at(0), publish("a/b", Some(1)))
        else {
            panic!("a PUBLISH setting an alias passes");
        };
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("a/b", None));
        let (Inbound::ToHub, Packet::Publish(p)) = recv(&mut c, at(0), publish("", Some(1))) else {
            panic!("a PUBLISH using an alias passes");
        };
        assert_eq!(p.topic.as_str(), "a/b");
        // Above our Topic Alias Maximum: 0x94 Topic Alias invalid.
        let Inbound::Violation(v) = recv(&mut c, at(0), publish("a", Some(3))).0 else {
            panic!("an alias above the maximum is refused");
        };
        assert_eq!(v.reason_code, ReasonCode::TOPIC_ALIAS_INVALID);
        // [MQTT-3.3.2-12]... and with no maximum announced, any alias is refused.
        let mut c = connected(&config, 0, |_| {});
        assert!(matches!(
            recv(&mut c, at(0), publish("a", Some(1))).0,
            Inbound::Violation(_)
        ));
    }

    #[test]
    fn outbound_topic_aliases_stay_within_the_clients_maximum() {
        let config = BrokerConfig {
            outbound_topic_aliases: true,
            ..Default::default()
        };
        let mut c = ServerConnection::new(at(0), &config);
        let mut connect = Connect::new(ProtocolVersion::V5, MqttString::new("c").unwrap());
        connect.properties.topic_alias_maximum = Some(1);
        let _ = recv(&mut c, at(0), Packet::Connect(Box::new(connect))).0;
        let _ = send(&mut c, connack(|_| {}));
        let out = |c: &mut ServerConnection, topic: &str| match send(c, publish(topic, None)) {
            Packet::Publish(p) => (
                p.topic.as_str().to_string(),
                p.properties.topic_alias.map(|a| a.get()),
            ),
            other => panic!("{other:?}"),
        };
        // [MQTT-3.3.2-9] no alias above the client's Topic Alias Maximum: one, then reused.
        assert_eq!(out(&mut c, "x/y"), ("x/y".to_string(), Some(1)));
        assert_eq!(out(&mut c, "x/y"), (String::new(), Some(1)));
        let (topic, alias) = out(&mut c, "other");
        assert_eq!(topic, "other");
        assert!(alias.is_none_or(|a| a <= 1));
    }
}

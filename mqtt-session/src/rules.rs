//! Which packet may arrive from which side, at which stage of a connection: the legality
//! table of the protocol in one place, for both roles and both versions.
//!
//! [`check_inbound`] answers for a packet that has been decoded (the codec has already
//! checked its form). What it refuses is a [`Violation`]: the reason code to close with and
//! the rule that was broken. Checks that need session state (an acknowledgement for an
//! identifier that is not in flight, an unknown Topic Alias) live with that state.

use mqtt_codec::{PacketType, ProtocolVersion, ReasonCode};

/// Which end of the connection a state machine plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    /// The client: sends CONNECT, receives CONNACK.
    Client,
    /// The server: receives CONNECT, sends CONNACK.
    Server,
}

impl Role {
    /// The other end.
    const fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

/// How far a connection has got, the same for both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Stage {
    /// Nothing exchanged yet: the client has not sent CONNECT.
    Opened,
    /// CONNECT sent, CONNACK not yet (v5: AUTH packets may go either way meanwhile).
    Connecting,
    /// A CONNACK with success has been sent.
    Connected,
}

/// A peer broke a rule: the connection must be closed ([MQTT-4.13.1-1], 3.1.1
/// [MQTT-4.8.0-1]), under v5 after a DISCONNECT (or CONNACK) carrying `reason_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Violation {
    /// The reason code to send: 0x81 Malformed Packet, 0x82 Protocol Error, or a more
    /// specific code such as 0x93 Receive Maximum exceeded or 0x94 Topic Alias invalid.
    pub reason_code: ReasonCode,
    /// The rule broken, starting with its normative statement id in brackets where the
    /// specification gives one (or the section otherwise).
    pub rule: &'static str,
}

impl Violation {
    /// A Protocol Error (0x82) citing `rule`.
    pub(crate) const fn protocol(rule: &'static str) -> Self {
        Self {
            reason_code: ReasonCode::PROTOCOL_ERROR,
            rule,
        }
    }

    /// A violation with a specific reason code.
    pub(crate) const fn new(reason_code: ReasonCode, rule: &'static str) -> Self {
        Self { reason_code, rule }
    }

    #[cfg(test)]
    /// The normative statement id cited, without brackets (`"MQTT-3.2.0-2"`), if any.
    pub(crate) fn rule_id(&self) -> Option<&'static str> {
        let rest = self.rule.strip_prefix('[')?;
        Some(&rest[..rest.find(']')?])
    }
}

impl core::fmt::Display for Violation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.reason_code, self.rule)
    }
}

const fn pick(version: ProtocolVersion, v5: &'static str, v3: &'static str) -> &'static str {
    if version.is_v5() { v5 } else { v3 }
}

/// Whether `packet`, received by `receiver` at `stage` of a `version` connection, is allowed
/// to arrive at all.
pub(crate) fn check_inbound(
    receiver: Role,
    version: ProtocolVersion,
    stage: Stage,
    packet: PacketType,
) -> Result<(), Violation> {
    check(receiver.peer(), version, stage, packet)
}

/// Whether `sender` may send `packet` at `stage` of a `version` connection. A machine that
/// is about to break this has a bug: it is a debug assertion at each machine's send path.
pub(crate) fn check_outbound(
    sender: Role,
    version: ProtocolVersion,
    stage: Stage,
    packet: PacketType,
) -> Result<(), Violation> {
    check(sender, version, stage, packet)
}

/// The table: may `sender` send `packet` at `stage`?
fn check(
    sender: Role,
    version: ProtocolVersion,
    stage: Stage,
    packet: PacketType,
) -> Result<(), Violation> {
    use PacketType as P;
    use Role::{Client, Server};
    use Stage::{Connected, Connecting, Opened};
    let wrong_way = |rule| Err(Violation::protocol(rule));
    match (sender, packet, stage) {
        // Packets that only flow from client to server (section 2.1.2).
        (Server, P::Connect, _) => wrong_way("CONNECT is sent only by a client (section 2.1.2)"),
        (Server, P::Subscribe, _) => {
            wrong_way("SUBSCRIBE is sent only by a client (section 2.1.2)")
        }
        (Server, P::Unsubscribe, _) => {
            wrong_way("UNSUBSCRIBE is sent only by a client (section 2.1.2)")
        }
        (Server, P::PingReq, _) => wrong_way("PINGREQ is sent only by a client (section 2.1.2)"),
        // Packets that only flow from server to client.
        (Client, P::ConnAck, _) => wrong_way("CONNACK is sent only by a server (section 2.1.2)"),
        (Client, P::SubAck, _) => wrong_way("SUBACK is sent only by a server (section 2.1.2)"),
        (Client, P::UnsubAck, _) => wrong_way("UNSUBACK is sent only by a server (section 2.1.2)"),
        (Client, P::PingResp, _) => wrong_way("PINGRESP is sent only by a server (section 2.1.2)"),
        // AUTH exists only in v5.
        (_, P::Auth, _) if !version.is_v5() => Err(Violation::new(
            ReasonCode::MALFORMED_PACKET,
            "[MQTT-2.2.2-1] packet type 15 is reserved in MQTT 3.1.1",
        )),
        // The client opens with CONNECT, once; after it, it need not wait for the CONNACK
        // (section 3.1.4).
        (Client, P::Connect, Opened) => Ok(()),
        (Client, P::Connect, Connecting | Connected) => Err(Violation::protocol(
            "[MQTT-3.1.0-2] a second CONNECT on one connection",
        )),
        (Client, _, Opened) => Err(Violation::protocol(
            "[MQTT-3.1.0-1] the first packet from the client must be CONNECT",
        )),
        (Client, _, Connecting | Connected) => Ok(()),
        // The server answers with CONNACK, once, AUTH before it under v5.
        (Server, P::ConnAck, Opened | Connecting) | (Server, P::Auth, _) => Ok(()),
        (Server, P::ConnAck, Connected) => Err(Violation::protocol(pick(
            version,
            "[MQTT-3.2.0-2] a second CONNACK on one connection",
            "[MQTT-3.2.0-1] a second CONNACK on one connection",
        ))),
        // A 3.1.1 server never sends DISCONNECT; a v5 one only after a successful CONNACK.
        (Server, P::Disconnect, _) if !version.is_v5() => Err(Violation::protocol(
            "a 3.1.1 server does not send DISCONNECT (section 3.14)",
        )),
        (Server, P::Disconnect, Opened | Connecting) => Err(Violation::protocol(
            "[MQTT-3.14.0-1] DISCONNECT from the server before a successful CONNACK",
        )),
        (Server, _, Opened | Connecting) => Err(Violation::protocol(pick(
            version,
            "[MQTT-3.2.0-1] the server sent a packet other than AUTH before CONNACK",
            "[MQTT-3.2.0-1] the first packet from the server must be CONNACK",
        ))),
        (Server, _, Connected) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion::{V3_1_1, V5};

    #[test]
    fn a_client_accepts_only_connack_and_auth_before_connack() {
        // [MQTT-3.2.0-1]
        assert!(check_inbound(Role::Client, V5, Stage::Connecting, PacketType::ConnAck).is_ok());
        assert!(check_inbound(Role::Client, V5, Stage::Connecting, PacketType::Auth).is_ok());
        let v = check_inbound(Role::Client, V5, Stage::Connecting, PacketType::Publish);
        assert_eq!(v.unwrap_err().rule_id(), Some("MQTT-3.2.0-1"));
        let v = check_inbound(
            Role::Client,
            V3_1_1,
            Stage::Connecting,
            PacketType::PingResp,
        );
        assert_eq!(v.unwrap_err().rule_id(), Some("MQTT-3.2.0-1"));
    }

    #[test]
    fn second_connack_and_second_connect_are_protocol_errors() {
        // [MQTT-3.2.0-2], [MQTT-3.1.0-2]
        let v = check_inbound(Role::Client, V5, Stage::Connected, PacketType::ConnAck);
        assert_eq!(v.unwrap_err().rule_id(), Some("MQTT-3.2.0-2"));
        let v = check_inbound(Role::Server, V5, Stage::Connected, PacketType::Connect);
        assert_eq!(v.unwrap_err().rule_id(), Some("MQTT-3.1.0-2"));
        assert_eq!(v.unwrap_err().reason_code, ReasonCode::PROTOCOL_ERROR);
    }

    #[test]
    fn packets_flowing_the_wrong_way_are_refused() {
        for p in [
            PacketType::Connect,
            PacketType::Subscribe,
            PacketType::Unsubscribe,
            PacketType::PingReq,
        ] {
            assert!(
                check_inbound(Role::Client, V5, Stage::Connected, p).is_err(),
                "{p}"
            );
        }
        for p in [
            PacketType::ConnAck,
            PacketType::SubAck,
            PacketType::UnsubAck,
            PacketType::PingResp,
        ] {
            assert!(
                check_inbound(Role::Server, V5, Stage::Connected, p).is_err(),
                "{p}"
            );
        }
    }

    #[test]
    fn disconnect_from_a_server_only_in_v5_after_connack() {
        assert!(check_inbound(Role::Client, V5, Stage::Connected, PacketType::Disconnect).is_ok());
        assert!(
            check_inbound(
                Role::Client,
                V3_1_1,
                Stage::Connected,
                PacketType::Disconnect
            )
            .is_err()
        );
        let v = check_inbound(Role::Client, V5, Stage::Connecting, PacketType::Disconnect);
        assert_eq!(v.unwrap_err().rule_id(), Some("MQTT-3.14.0-1"));
        assert!(
            check_inbound(
                Role::Server,
                V3_1_1,
                Stage::Connected,
                PacketType::Disconnect
            )
            .is_ok()
        );
    }

    #[test]
    fn a_server_needs_connect_first() {
        // [MQTT-3.1.0-1]
        let v = check_inbound(Role::Server, V5, Stage::Opened, PacketType::Publish);
        assert_eq!(v.unwrap_err().rule_id(), Some("MQTT-3.1.0-1"));
        assert!(check_inbound(Role::Server, V5, Stage::Opened, PacketType::Connect).is_ok());
        // [MQTT-3.1.0-2], before the CONNACK too.
        let v = check_inbound(Role::Server, V5, Stage::Connecting, PacketType::Connect);
        assert_eq!(v.unwrap_err().rule_id(), Some("MQTT-3.1.0-2"));
        // A client need not wait for the CONNACK (section 3.1.4).
        assert!(check_inbound(Role::Server, V5, Stage::Connecting, PacketType::Publish).is_ok());
    }

    #[test]
    fn what_a_machine_may_send() {
        use PacketType as P;
        // The server's first packet is CONNACK, or AUTH under v5 ([MQTT-3.2.0-1]).
        let v = check_outbound(Role::Server, V5, Stage::Connecting, P::Publish);
        assert_eq!(v.unwrap_err().rule_id(), Some("MQTT-3.2.0-1"));
        assert!(check_outbound(Role::Server, V5, Stage::Connecting, P::Auth).is_ok());
        // Never a CONNECT twice ([MQTT-3.1.0-2]).
        let v = check_outbound(Role::Client, V3_1_1, Stage::Connected, P::Connect);
        assert_eq!(v.unwrap_err().rule_id(), Some("MQTT-3.1.0-2"));
    }
}

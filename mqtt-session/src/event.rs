//! How a connection ended: who closed it and why. Shared by the client and the broker.

use mqtt_codec::{MqttString, ReasonCode};

use crate::rules::Violation;

/// Who or what ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCause {
    /// This side's application asked to disconnect.
    Local,
    /// The peer ended the connection with a DISCONNECT.
    Remote,
    /// The server refused the connection in its CONNACK.
    Refused,
    /// The peer broke the protocol; this side closed (under v5 after a DISCONNECT with the
    /// reason code).
    ProtocolViolation,
    /// The peer did not answer in time (CONNACK, or PINGRESP under keep-alive).
    Timeout,
    /// The transport closed or failed underneath the session.
    TransportClosed,
}

/// A connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnected {
    /// Who or what ended it.
    pub cause: CloseCause,
    /// The reason code sent (local close, protocol violation) or received (DISCONNECT or
    /// refusing CONNACK from the peer); `None` when no packet carried one.
    pub reason_code: Option<ReasonCode>,
    /// The peer's Reason String, if its DISCONNECT or CONNACK had one.
    pub reason_string: Option<MqttString>,
    /// The peer's Server Reference (another server to use), if any.
    pub server_reference: Option<MqttString>,
    /// For a protocol violation: the rule broken, citing its normative statement id.
    pub rule: Option<&'static str>,
}

impl Disconnected {
    /// A close with only a cause and perhaps a reason code.
    pub fn new(cause: CloseCause, reason_code: Option<ReasonCode>) -> Self {
        Self {
            cause,
            reason_code,
            reason_string: None,
            server_reference: None,
            rule: None,
        }
    }

    /// A close because the peer broke the rule in `violation`.
    pub(crate) fn violation(violation: Violation) -> Self {
        Self {
            rule: Some(violation.rule),
            ..Self::new(CloseCause::ProtocolViolation, Some(violation.reason_code))
        }
    }
}

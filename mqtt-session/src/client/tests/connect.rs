//! CONNECT / CONNACK / DISCONNECT.

use core::time::Duration;

use mqtt_codec::{
    ConnAck, Disconnect, DisconnectProperties, MqttString, Packet, ProtocolVersion, PubResponse,
    QoS, ReasonCode,
};

use super::*;
use crate::client::{ConnectError, ConnectionState, DisconnectError};
use crate::event::CloseCause;

#[test]
fn connect_and_connack_v5() {
    let mut h = Harness::v5();
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=c1 clean=1 keep_alive=60"]);
    assert_eq!(h.client.state(), ConnectionState::Connecting);
    let out = h.recv(Packet::ConnAck(Box::new(ConnAck::default())));
    assert_eq!(
        out,
        ["persist client-id c1", "event connected present=0 id=c1"]
    );
    assert_eq!(h.client.state(), ConnectionState::Connected);
}

/// [MQTT-3.2.2-16] / section 3.2.2.3.7: an empty client identifier is replaced by the one
/// the server assigns.
#[test]
fn server_assigned_client_identifier() {
    let mut h = Harness::new(ClientConfig::new(ProtocolVersion::V5, MqttString::empty()));
    let out = h.connect_with(connack_with(|p| {
        p.assigned_client_identifier = Some(MqttString::from_static("auto-7"));
    }));
    assert_eq!(
        out,
        [
            "persist client-id auto-7",
            "event connected present=0 id=auto-7"
        ]
    );
    assert_eq!(h.client.client_id().as_str(), "auto-7");
}

/// [MQTT-3.2.2-16]: a server must assign an identifier when the client sent none.
#[test]
fn missing_assigned_identifier_is_a_protocol_error() {
    let mut h = Harness::new(ClientConfig::new(ProtocolVersion::V5, MqttString::empty()));
    let out = h.connect();
    assert_eq!(
        out,
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.2.2-16",
            "close"
        ]
    );
}

/// [MQTT-3.2.2-7]: a refusing CONNACK ends the connection; the reason reaches the
/// application.
#[test]
fn refused_connack_becomes_an_event() {
    let mut h = Harness::v5();
    let mut ack = ConnAck::default();
    ack.reason_code = ReasonCode::BAD_USER_NAME_OR_PASSWORD;
    ack.properties.reason_string = Some(MqttString::from_static("who are you"));
    let out = h.connect_with(ack);
    assert_eq!(out, ["event disconnected Refused rc=0x86", "close"]);
    let Some(Action::Event(Event::Disconnected(d))) = h.actions.iter().rev().nth(1) else {
        panic!()
    };
    assert_eq!(d.reason_string.as_deref(), Some("who are you"));
    assert_eq!(h.client.state(), ConnectionState::Disconnected);
}

/// 3.1.1 return code 5 (not authorized) maps to reason code 0x87.
#[test]
fn refused_connack_v311() {
    let mut h = Harness::v3();
    let mut ack = ConnAck::default();
    ack.reason_code = ReasonCode::NOT_AUTHORIZED;
    assert_eq!(
        h.connect_with(ack),
        ["event disconnected Refused rc=0x87", "close"]
    );
}

/// [MQTT-3.1.2-21]: the server's keep-alive replaces the client's; the CONNACK's limits are
/// adopted.
#[test]
fn connack_limits_are_adopted() {
    let mut h = Harness::v5();
    h.connect_with(connack_with(|p| {
        p.server_keep_alive = Some(10);
        p.receive_maximum = std::num::NonZeroU16::new(5);
        p.maximum_qos = Some(QoS::AtLeastOnce);
        p.retain_available = Some(false);
        p.maximum_packet_size = std::num::NonZeroU32::new(1000);
        p.topic_alias_maximum = Some(3);
        p.wildcard_subscription_available = Some(false);
    }));
    let l = h.client.limits();
    assert_eq!(l.keep_alive, 10);
    assert_eq!(l.receive_maximum, 5);
    assert_eq!(l.maximum_qos, QoS::AtLeastOnce);
    assert!(!l.retain_available);
    assert_eq!(l.maximum_packet_size, 1000);
    assert_eq!(l.topic_alias_maximum, 3);
    assert!(!l.wildcard_subscription_available);
    assert_eq!(
        h.client.poll_timeout(),
        Some(h.now + Duration::from_secs(10))
    );
}

#[test]
fn connack_timeout() {
    let mut h = Harness::v5();
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(h.advance(Duration::from_secs(29)), Vec::<String>::new());
    assert_eq!(
        h.advance(Duration::from_secs(1)),
        ["event disconnected Timeout", "close"]
    );
    assert_eq!(h.client.state(), ConnectionState::Disconnected);
}

/// [MQTT-3.2.2-2] (3.1.1 [MQTT-3.2.2-1]): Session Present in answer to Clean Start 1 is a
/// server error.
#[test]
fn session_present_after_clean_start_is_a_protocol_error() {
    let mut h = Harness::v5();
    let mut ack = ConnAck::default();
    ack.session_present = true;
    assert_eq!(
        h.connect_with(ack.clone()),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.2.2-2",
            "close"
        ]
    );
    let mut h = Harness::v3();
    assert_eq!(
        h.connect_with(ack),
        [
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.2.2-1",
            "close"
        ]
    );
}

#[test]
fn connect_twice_is_a_local_error() {
    let mut h = Harness::v5();
    h.client.connect(h.now).unwrap();
    assert_eq!(h.client.connect(h.now), Err(ConnectError::AlreadyConnected));
}

/// [MQTT-3.1.3-7] (3.1.1): an empty client identifier needs Clean Session 1.
#[test]
fn v311_empty_client_id_needs_clean_session() {
    let mut config = ClientConfig::new(ProtocolVersion::V3_1_1, MqttString::empty());
    config.clean_start = false;
    let mut h = Harness::new(config);
    assert_eq!(
        h.client.connect(h.now),
        Err(ConnectError::EmptyClientIdNeedsCleanSession)
    );
}

/// v5 resumes the session on reconnection (Clean Start 0); 3.1.1 keeps Clean Session as
/// configured, so a clean-session client does not leave sessions behind.
#[test]
fn reconnect_clean_start_flags() {
    let mut h = Harness::v5();
    h.connect();
    h.client.handle_closed(h.now);
    h.drain();
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=c1 clean=0 keep_alive=60"]);

    let mut h = Harness::v3();
    h.connect();
    h.client.handle_closed(h.now);
    assert_eq!(h.drain(), ["event disconnected TransportClosed"]);
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=c1 clean=1 keep_alive=60"]);
}

/// [MQTT-3.14.4-1], [MQTT-3.14.4-2]: after DISCONNECT nothing more is sent and the
/// connection closes.
#[test]
fn local_disconnect() {
    let mut h = Harness::v5();
    h.connect();
    h.client
        .disconnect(h.now, Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL))
        .unwrap();
    assert_eq!(
        h.drain(),
        [
            "send DISCONNECT 0x04",
            "event disconnected Local rc=0x04",
            "close"
        ]
    );
    assert_eq!(h.client.poll_timeout(), None);
    assert_eq!(
        h.client.disconnect(h.now, Disconnect::default()),
        Err(DisconnectError::NotConnected)
    );
    // Nothing is sent on a closed connection.
    h.client.handle_packet(h.now, Packet::PingResp);
    assert_eq!(h.drain(), Vec::<String>::new());
}

/// Section 3.14.2.2.2: a session expiry on DISCONNECT needs one on CONNECT.
#[test]
fn disconnect_session_expiry_needs_one_in_connect() {
    let mut h = Harness::v5();
    h.connect();
    let d = Disconnect {
        reason_code: ReasonCode::SUCCESS,
        properties: DisconnectProperties {
            session_expiry_interval: Some(60),
            ..Default::default()
        }
        .into(),
    };
    assert_eq!(
        h.client.disconnect(h.now, d),
        Err(DisconnectError::SessionExpiry)
    );
}

#[test]
fn v311_disconnect_cannot_carry_a_reason() {
    let mut h = Harness::v3();
    h.connect();
    assert!(matches!(
        h.client
            .disconnect(h.now, Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL)),
        Err(DisconnectError::Encode(_))
    ));
    h.client.disconnect(h.now, Disconnect::default()).unwrap();
    assert_eq!(
        h.drain(),
        [
            "send DISCONNECT 0x00",
            "event disconnected Local rc=0x00",
            "close"
        ]
    );
}

/// A server DISCONNECT ends the connection with an event saying who closed and why.
#[test]
fn server_disconnect() {
    let mut h = Harness::v5();
    h.connect();
    let mut d = Disconnect::new(ReasonCode::SERVER_SHUTTING_DOWN);
    d.properties.reason_string = Some(MqttString::from_static("maintenance"));
    assert_eq!(
        h.recv(Packet::Disconnect(d)),
        ["event disconnected Remote rc=0x8B", "close"]
    );
    let Some(Action::Event(Event::Disconnected(d))) = h.actions.iter().rev().nth(1) else {
        panic!()
    };
    assert_eq!(d.cause, CloseCause::Remote);
    assert_eq!(d.reason_string.as_deref(), Some("maintenance"));
}

/// [MQTT-3.1.2-28]: without Request Response Information 1 the server must not send
/// Response Information; the client holds it to that (Protocol Error, 0x82). Asked for, it
/// reaches the application with the CONNACK.
#[test]
fn response_information_only_when_requested() {
    let info =
        || connack_with(|p| p.response_information = Some(MqttString::from_static("reply/here")));
    let mut h = Harness::v5();
    assert_eq!(
        h.connect_with(info()),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.1.2-28",
            "close"
        ]
    );
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.properties.request_response_information = Some(true);
    let mut h = Harness::new(config);
    assert_eq!(
        h.connect_with(info()),
        ["persist client-id c1", "event connected present=0 id=c1"]
    );
    let Some(Action::Event(Event::Connected(c))) = h.actions.last() else {
        panic!()
    };
    assert_eq!(
        c.connack.properties.response_information.as_deref(),
        Some("reply/here")
    );
}

/// [MQTT-3.1.2-29]: after Request Problem Information 0 a Reason String or User Property
/// may come on PUBLISH, CONNACK and DISCONNECT only; on an acknowledgement it is a
/// Protocol Error (0x82). With the default (1) the same acknowledgement is fine.
#[test]
fn problem_information_only_where_allowed() {
    let quiet = || {
        let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
        config.properties.request_problem_information = Some(false);
        Harness::new(config)
    };
    let why = |pid| {
        let mut a = PubResponse::new(id(pid));
        a.reason_code = ReasonCode::NO_MATCHING_SUBSCRIBERS;
        a.properties.reason_string = Some(MqttString::from_static("nobody listens"));
        a
    };
    let user = |pid| {
        let mut a = PubResponse::new(id(pid));
        a.properties
            .user_properties
            .push((MqttString::from_static("k"), MqttString::from_static("v")));
        a
    };
    // Allowed: a CONNACK with a Reason String, a PUBLISH with User Properties.
    let mut h = quiet();
    let ok = connack_with(|p| p.reason_string = Some(MqttString::from_static("welcome")));
    assert_eq!(h.connect_with(ok)[1], "event connected present=0 id=c1");
    let Packet::Publish(mut p) = incoming("t", "m", QoS::AtMostOnce, 0) else {
        panic!()
    };
    p.properties.user_properties = user(1).properties.user_properties;
    assert_eq!(h.recv(Packet::Publish(p)), ["event message 't' m qos=0"]);
    // Refused: a PUBACK with a Reason String, a PUBREC with a User Property.
    h.publish("a", "1", QoS::AtLeastOnce);
    assert_eq!(
        h.recv(Packet::PubAck(why(1))),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.1.2-29",
            "close"
        ]
    );
    let mut h = quiet();
    h.connect();
    h.publish("a", "2", QoS::ExactlyOnce);
    assert_eq!(
        h.recv(Packet::PubRec(user(1)))[1],
        "event disconnected ProtocolViolation rc=0x82 MQTT-3.1.2-29"
    );
    // Requested (the default): the reason reaches the application.
    let mut h = Harness::v5();
    h.connect();
    h.publish("a", "1", QoS::AtLeastOnce);
    assert_eq!(
        h.recv(Packet::PubAck(why(1))),
        ["persist rm-out 1", "event published 1 rc=0x10"]
    );
}

/// [MQTT-4.13.2-1]: a Reason Code of 0x80 or above in CONNACK or DISCONNECT means the
/// connection is closed, whichever side sent it: the client closes after a refusing
/// CONNACK, after a server DISCONNECT 0x80+, and after its own DISCONNECT 0x80+ (for a
/// violation, or asked by the application).
#[test]
fn reason_codes_from_0x80_close_the_connection() {
    let mut h = Harness::v5();
    let mut ack = ConnAck::default();
    ack.reason_code = ReasonCode::SERVER_BUSY;
    assert_eq!(
        h.connect_with(ack),
        ["event disconnected Refused rc=0x89", "close"]
    );

    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.recv(Packet::Disconnect(Disconnect::new(
            ReasonCode::ADMINISTRATIVE_ACTION
        ))),
        ["event disconnected Remote rc=0x98", "close"]
    );

    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.recv(Packet::ConnAck(Box::default())),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.2.0-2",
            "close"
        ]
    );

    let mut h = Harness::v5();
    h.connect();
    h.client
        .disconnect(h.now, Disconnect::new(ReasonCode::MESSAGE_RATE_TOO_HIGH))
        .unwrap();
    assert_eq!(
        h.drain(),
        [
            "send DISCONNECT 0x96",
            "event disconnected Local rc=0x96",
            "close"
        ]
    );
    assert_eq!(h.client.state(), ConnectionState::Disconnected);
}

// 3.1.1 [MQTT-3.14.4-1]: after sending DISCONNECT the client closes the connection;
// 3.1.1 [MQTT-3.14.4-2]: and sends nothing more on it: no PINGREQ when the keep-alive
// interval passes, no PUBLISH, no acknowledgement of what still arrives.
#[test]
fn v311_nothing_after_disconnect() {
    let mut h = Harness::v3();
    h.connect();
    h.client.disconnect(h.now, Disconnect::default()).unwrap();
    assert_eq!(
        h.drain(),
        [
            "send DISCONNECT 0x00",
            "event disconnected Local rc=0x00",
            "close"
        ]
    );
    assert_eq!(h.advance(Duration::from_secs(600)), Vec::<String>::new());
    let m = crate::client::Message::new(topic("a"), "x");
    assert!(h.client.publish(h.now, m).is_err());
    h.client
        .handle_packet(h.now, incoming("t", "late", QoS::AtLeastOnce, 1));
    assert_eq!(h.drain(), Vec::<String>::new());
}

/// [MQTT-3.1.3-2]: the client identifier names the session state. A server-assigned
/// identifier is stored (`Persist`), used by every later CONNECT so the server finds the
/// session, and carried by the snapshot into a resumed client.
#[test]
fn the_client_identifier_names_the_session() {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::empty());
    config.properties.session_expiry_interval = Some(600);
    let mut h = Harness::new(config);
    let out = h.connect_with(connack_with(|p| {
        p.assigned_client_identifier = Some(MqttString::from_static("auto-1"));
    }));
    assert_eq!(out[0], "persist client-id auto-1");
    h.client.handle_closed(h.now);
    h.drain();
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=auto-1 clean=0 keep_alive=60"]);

    let state = h.client.session_state();
    assert_eq!(state.client_id.as_str(), "auto-1");
    let config = h.client.config().clone();
    let mut h = Harness::with_client(Client::resume(config, state).unwrap());
    h.client.connect(h.now).unwrap();
    assert_eq!(h.drain(), ["send CONNECT id=auto-1 clean=0 keep_alive=60"]);
}

// 3.1.1 [MQTT-3.1.3-2]: the same under 3.1.1: the stored identifier, not the configured
// one, names the session a resumed client asks for.
#[test]
fn v311_the_client_identifier_names_the_session() {
    let mut config = ClientConfig::new(ProtocolVersion::V3_1_1, MqttString::from_static("c1"));
    config.clean_start = false;
    let state = crate::store::SessionState {
        client_id: MqttString::from_static("stored-id"),
        ..Default::default()
    };
    let mut h = Harness::with_client(Client::resume(config, state).unwrap());
    h.client.connect(h.now).unwrap();
    assert_eq!(
        h.drain(),
        ["send CONNECT id=stored-id clean=0 keep_alive=60"]
    );
}

/// [MQTT-3.14.2-2]: a server sends no Session Expiry Interval on DISCONNECT; one that does
/// breaks the protocol, and the client closes saying so (0x82) rather than as a normal
/// remote close.
#[test]
fn server_disconnect_with_session_expiry_is_a_protocol_error() {
    let mut h = Harness::v5();
    h.connect();
    let mut d = Disconnect::new(ReasonCode::SERVER_SHUTTING_DOWN);
    d.properties.session_expiry_interval = Some(0);
    assert_eq!(
        h.recv(Packet::Disconnect(d)),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.14.2-2",
            "close"
        ]
    );
}

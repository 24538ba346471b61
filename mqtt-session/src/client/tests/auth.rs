//! v5 enhanced authentication (section 4.12).

use mqtt_codec::{
    Auth, AuthProperties, Bytes, ConnAck, MqttString, Packet, ProtocolVersion, ReasonCode,
};

use super::*;
use crate::client::AuthError;

fn scram() -> Harness {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.properties.authentication_method = Some(MqttString::from_static("SCRAM"));
    config.properties.authentication_data = Some(Bytes::from_static(b"client-first"));
    Harness::new(config)
}

fn server_auth(code: ReasonCode, method: &'static str, data: &'static str) -> Packet {
    Packet::Auth(Auth {
        reason_code: code,
        properties: AuthProperties {
            authentication_method: Some(MqttString::from_static(method)),
            authentication_data: Some(Bytes::from_static(data.as_bytes())),
            ..Default::default()
        }
        .into(),
    })
}

fn connack_scram() -> ConnAck {
    connack_with(|p| p.authentication_method = Some(MqttString::from_static("SCRAM")))
}

/// [MQTT-4.12.0-2], [MQTT-4.12.0-3], [MQTT-4.12.0-5]: the server challenges with AUTH
/// Continue, the application answers through the client, and CONNACK ends the exchange
/// with the same method.
#[test]
fn enhanced_authentication_exchange() {
    let mut h = scram();
    h.client.connect(h.now).unwrap();
    h.drain();
    let Some(Action::Send(Packet::Connect(c))) = h.actions.first() else {
        panic!()
    };
    assert_eq!(c.properties.authentication_method.as_deref(), Some("SCRAM"));
    assert_eq!(
        h.recv(server_auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            "SCRAM",
            "server-first"
        )),
        ["event auth-challenge server-first"]
    );
    h.client
        .continue_authentication(h.now, Some(Bytes::from_static(b"client-final")))
        .unwrap();
    assert_eq!(h.drain(), ["send AUTH 0x18 client-final"]);
    assert_eq!(
        h.recv(Packet::ConnAck(Box::new(connack_scram()))),
        ["persist client-id c1", "event connected present=0 id=c1"]
    );
}

/// [MQTT-4.12.0-5]: a successful CONNACK must carry the CONNECT's method.
#[test]
fn connack_without_the_method_is_a_protocol_error() {
    let mut h = scram();
    assert_eq!(
        h.connect(),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-4.12.0-5",
            "close"
        ]
    );
}

/// [MQTT-4.12.0-5]: AUTH with another method.
#[test]
fn auth_with_another_method_is_a_protocol_error() {
    let mut h = scram();
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(
        h.recv(server_auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            "PLAIN",
            "x"
        ))[1],
        "event disconnected ProtocolViolation rc=0x82 MQTT-4.12.0-5"
    );
}

/// [MQTT-4.12.0-6]: no method in CONNECT, no AUTH from the server.
#[test]
fn auth_without_a_method_in_connect_is_a_protocol_error() {
    let mut h = Harness::v5();
    h.client.connect(h.now).unwrap();
    h.drain();
    assert_eq!(
        h.recv(server_auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            "SCRAM",
            "x"
        ))[1],
        "event disconnected ProtocolViolation rc=0x82 MQTT-4.12.0-6"
    );
}

/// [MQTT-4.12.0-7]: a client without a method sends no AUTH.
#[test]
fn no_auth_without_a_method() {
    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.client.reauthenticate(h.now, None),
        Err(AuthError::NoAuthenticationMethod)
    );
    assert_eq!(
        h.client.continue_authentication(h.now, None),
        Err(AuthError::NoAuthenticationMethod)
    );
}

/// [MQTT-4.12.1-1]: re-authentication on an open connection starts with AUTH 0x19 and ends
/// with the server's AUTH Success.
#[test]
fn reauthentication() {
    let mut h = scram();
    h.connect_with(connack_scram());
    assert_eq!(
        h.client.continue_authentication(h.now, None),
        Err(AuthError::NotNow)
    );
    h.client
        .reauthenticate(h.now, Some(Bytes::from_static(b"again")))
        .unwrap();
    assert_eq!(h.drain(), ["send AUTH 0x19 again"]);
    assert_eq!(
        h.recv(server_auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            "SCRAM",
            "prove it"
        )),
        ["event auth-challenge prove it"]
    );
    h.client
        .continue_authentication(h.now, Some(Bytes::from_static(b"proof")))
        .unwrap();
    assert_eq!(h.drain(), ["send AUTH 0x18 proof"]);
    assert_eq!(
        h.recv(server_auth(ReasonCode::SUCCESS, "SCRAM", "ok")),
        ["event reauthenticated"]
    );
    // An unsolicited AUTH Success afterwards is out of place.
    assert_eq!(
        h.recv(server_auth(ReasonCode::SUCCESS, "SCRAM", "ok"))[1],
        "event disconnected ProtocolViolation rc=0x82"
    );
}

/// [MQTT-3.1.2-30]: with an Authentication Method in CONNECT the client sends nothing but
/// AUTH (or DISCONNECT) until CONNACK: a QoS 1 message waits, QoS 0 and SUBSCRIBE are
/// refused, no PINGREQ goes however long the exchange takes; after CONNACK the message goes.
#[test]
fn only_auth_before_connack() {
    let mut h = scram();
    h.client.config.keep_alive = 5;
    h.client.connect(h.now).unwrap();
    h.drain();
    h.recv(server_auth(
        ReasonCode::CONTINUE_AUTHENTICATION,
        "SCRAM",
        "server-first",
    ));
    let m = crate::client::Message::new(topic("a"), "x");
    assert!(h.client.publish(h.now, m.clone()).is_err());
    let sub = vec![(
        mqtt_codec::TopicFilter::from_static("a"),
        mqtt_codec::SubscriptionOptions::default(),
    )];
    assert!(h.client.subscribe(h.now, sub, Default::default()).is_err());
    h.client
        .publish(h.now, m.with_qos(mqtt_codec::QoS::AtLeastOnce))
        .unwrap();
    assert_eq!(h.drain(), ["persist put-out 1 publish"]);
    assert_eq!(
        h.advance(core::time::Duration::from_secs(20)),
        Vec::<String>::new()
    );
    h.client
        .continue_authentication(h.now, Some(Bytes::from_static(b"client-final")))
        .unwrap();
    assert_eq!(h.drain(), ["send AUTH 0x18 client-final"]);
    assert_eq!(
        h.recv(Packet::ConnAck(Box::new(connack_scram())))[2..],
        ["send PUBLISH 'a' qos=1 id=1 dup=0 retain=0"]
    );
    let sent: Vec<_> = h
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(p.packet_type()),
            _ => None,
        })
        .collect();
    use mqtt_codec::PacketType as T;
    assert_eq!(sent, [T::Connect, T::Auth, T::Publish]);
}

/// [MQTT-3.1.2-30]: DISCONNECT may still go during the exchange: the application gives up.
#[test]
fn disconnect_during_the_exchange() {
    let mut h = scram();
    h.client.connect(h.now).unwrap();
    h.drain();
    h.client
        .disconnect(
            h.now,
            mqtt_codec::Disconnect::new(ReasonCode::NOT_AUTHORIZED),
        )
        .unwrap();
    assert_eq!(
        h.drain(),
        [
            "send DISCONNECT 0x87",
            "event disconnected Local rc=0x87",
            "close"
        ]
    );
}

/// [MQTT-4.12.1-2]: a failed re-authentication closes the connection: the server says so
/// with a DISCONNECT, or answers out of turn and the client sends DISCONNECT 0x82. A new
/// re-authentication can start on the next connection.
#[test]
fn failed_reauthentication_closes_the_connection() {
    let mut h = scram();
    h.connect_with(connack_scram());
    h.client.reauthenticate(h.now, None).unwrap();
    h.drain();
    assert_eq!(
        h.recv(Packet::Disconnect(mqtt_codec::Disconnect::new(
            ReasonCode::NOT_AUTHORIZED
        ))),
        ["event disconnected Remote rc=0x87", "close"]
    );
    assert_eq!(
        h.client.continue_authentication(h.now, None),
        Err(AuthError::NotNow)
    );

    h.connect_with(connack_scram());
    h.client.reauthenticate(h.now, None).unwrap();
    h.drain();
    assert_eq!(
        h.recv(server_auth(ReasonCode::REAUTHENTICATE, "SCRAM", "?")),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82",
            "close"
        ]
    );
}

/// [MQTT-3.15.2-2], [MQTT-3.15.2-3]: the client's AUTH goes without its Reason String and
/// User Properties when they would make it exceed the server's Maximum Packet Size; the
/// method and data stay. Small enough, they go.
#[test]
fn auth_properties_dropped_to_fit() {
    let mut h = scram();
    let mut ack = connack_scram();
    ack.properties.maximum_packet_size = std::num::NonZeroU32::new(40);
    h.connect_with(ack);
    let props = |reason: &'static str| AuthProperties {
        // The method is the configured one whatever is given here.
        authentication_method: Some(MqttString::from_static("OTHER")),
        authentication_data: Some(Bytes::from_static(b"again")),
        reason_string: Some(MqttString::from_static(reason)),
        user_properties: vec![(MqttString::from_static("k"), MqttString::from_static("v"))].into(),
    };
    let sent_auth = |h: &Harness| match h.actions.last() {
        Some(Action::Send(Packet::Auth(a))) => a.clone(),
        other => panic!("{other:?}"),
    };
    h.client
        .reauthenticate_with(h.now, props("a reason too long to fit in forty bytes"))
        .unwrap();
    h.drain();
    let a = sent_auth(&h);
    assert_eq!(a.reason_code, ReasonCode::REAUTHENTICATE);
    assert_eq!(
        a.properties,
        AuthProperties {
            authentication_method: Some(MqttString::from_static("SCRAM")),
            authentication_data: Some(Bytes::from_static(b"again")),
            ..Default::default()
        }
        .into()
    );
    h.recv(server_auth(
        ReasonCode::CONTINUE_AUTHENTICATION,
        "SCRAM",
        "go on",
    ));
    h.client
        .continue_authentication_with(h.now, props("ok"))
        .unwrap();
    h.drain();
    let a = sent_auth(&h);
    assert_eq!(a.reason_code, ReasonCode::CONTINUE_AUTHENTICATION);
    assert_eq!(a.properties.reason_string.as_deref(), Some("ok"));
    assert_eq!(a.properties.user_properties.len(), 1);
    assert_eq!(a.properties.authentication_method.as_deref(), Some("SCRAM"));
}

//! Authentication as the driver's decision: pending CONNECTs, enhanced authentication,
//! re-authentication.

use mqtt_codec::*;
use mqtt_session::broker::{
    AuthRequest, BrokerConfig, BrokerEvent, ConnectPolicy, ConnectRequest, ConnectionId,
    DecisionError,
};

use crate::common::{Harness, lines};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

fn asking() -> Harness {
    Harness::new({
        let mut c = BrokerConfig::default();
        c.connect_policy = ConnectPolicy::AskDriver;
        c
    })
}

fn requests(h: &mut Harness) -> Vec<ConnectRequest> {
    h.take_events()
        .into_iter()
        .filter_map(|e| match e {
            BrokerEvent::ConnectRequest(r) => Some(*r),
            _ => None,
        })
        .collect()
}

fn auth_requests(h: &mut Harness) -> Vec<AuthRequest> {
    h.take_events()
        .into_iter()
        .filter_map(|e| match e {
            BrokerEvent::AuthRequest(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn with_credentials(
    version: ProtocolVersion,
    id: &'static str,
    user: &'static str,
    pass: &'static str,
) -> Connect {
    let mut c = Connect::new(version, MqttString::from_static(id));
    c.username = Some(MqttString::from_static(user));
    c.password = Some(Bytes::from_static(pass.as_bytes()));
    c
}

/// [MQTT-3.1.4-2]: the driver checks the credentials; a refusal is a CONNACK with the
/// reason (3.1.1: return code 4 for 0x86 Bad User Name or Password) and a close.
#[test]
fn the_driver_accepts_or_rejects_credentials() {
    let mut h = asking();
    let good = h.connect_with("good", with_credentials(V5, "good", "alice", "secret"));
    let bad = h.connect_with("bad", with_credentials(V5, "bad", "mallory", "guess"));
    let bad3 = h.connect_with("bad3", with_credentials(V311, "bad3", "mallory", "guess"));
    let r = requests(&mut h);
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].connection, good);
    assert_eq!(r[0].username.as_deref(), Some("alice"));
    assert_eq!(r[0].password.as_deref(), Some(&b"secret"[..]));
    let now = h.now;
    h.broker.accept(now, good, None).unwrap();
    h.broker
        .reject(now, bad, ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        .unwrap();
    h.broker
        .reject(now, bad3, ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        .unwrap();
    h.drain();
    assert_eq!(
        h.transcript(),
        lines(
            "
            good -> CONNECT 5.0 id=good clean=1
            bad -> CONNECT 5.0 id=bad clean=1
            bad3 -> CONNECT 3.1.1 id=bad3 clean=1
            good <- CONNACK 0x00 sp=0
            bad <- CONNACK 0x86 sp=0
            bad <- [closed]
            bad3 <- CONNACK 0x86 sp=0
            bad3 <- [closed]
            "
        )
    );
    // Misuse is an error, not a protocol event.
    assert_eq!(
        h.broker.accept(now, good, None),
        Err(DecisionError::NothingPending)
    );
    assert_eq!(
        h.broker.accept(now, bad, None),
        Err(DecisionError::UnknownConnection)
    );
    assert_eq!(
        h.broker.reject(now, ConnectionId(99), ReasonCode::SUCCESS),
        Err(DecisionError::UnknownConnection)
    );
}

/// Packets a client sends right after CONNECT wait for the decision and are handled once
/// it is accepted ([MQTT-3.1.4-6]: not at all if it is refused); the same for clients
/// of the older protocol: 3.1.1 [MQTT-3.1.4-5].
#[test]
fn packets_before_the_decision_wait_for_it() {
    let mut h = asking();
    let a = h.connect("a", V311, true);
    h.subscribe("a", 1, &[("t", QoS::AtMostOnce)]);
    h.publish("a", "t", "early", QoS::AtMostOnce, 0);
    let b = h.connect("b", V311, true);
    h.publish("b", "t", "never", QoS::AtMostOnce, 0);
    let c = h.connect("c", V5, true);
    h.publish("c", "t", "never", QoS::AtLeastOnce, 1);
    let now = h.now;
    h.broker.accept(now, a, None).unwrap();
    h.broker.reject(now, b, ReasonCode::NOT_AUTHORIZED).unwrap();
    h.broker.reject(now, c, ReasonCode::NOT_AUTHORIZED).unwrap();
    h.drain();
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> CONNECT 3.1.1 id=a clean=1
            a -> SUBSCRIBE 1 t:0
            a -> PUBLISH t q0 'early'
            b -> CONNECT 3.1.1 id=b clean=1
            b -> PUBLISH t q0 'never'
            c -> CONNECT 5.0 id=c clean=1
            c -> PUBLISH t q1 id=1 'never'
            a <- CONNACK 0x00 sp=0
            a <- SUBACK 1 0x00
            a <- PUBLISH t q0 'early'
            b <- CONNACK 0x87 sp=0
            b <- [closed]
            c <- CONNACK 0x87 sp=0
            c <- [closed]
            "
        )
    );
}

/// [MQTT-4.12.0-2], [MQTT-4.12.0-5]: enhanced authentication; the broker sends AUTH 0x18
/// with the CONNECT's method when the driver continues, each client AUTH comes to the
/// driver, and the CONNACK carries the method. [MQTT-4.12.1-1]: re-authentication with
/// AUTH 0x19 ends with AUTH 0x00.
#[test]
fn enhanced_authentication_and_reauthentication() {
    let mut h = asking();
    let method = MqttString::from_static("SCRAM-SHA-1");
    let mut c = Connect::new(V5, MqttString::from_static("e"));
    c.properties.authentication_method = Some(method.clone());
    c.properties.authentication_data = Some(Bytes::from_static(b"client-first"));
    let e = h.connect_with("e", c);
    let r = requests(&mut h);
    assert_eq!(
        r[0].authentication_data.as_deref(),
        Some(&b"client-first"[..])
    );
    h.broker
        .continue_auth(e, Some(Bytes::from_static(b"server-first")))
        .unwrap();
    h.drain();
    let auth = |rc, data: &'static [u8]| {
        Packet::Auth(Auth {
            reason_code: rc,
            properties: AuthProperties {
                authentication_method: Some(method.clone()),
                authentication_data: Some(Bytes::from_static(data)),
                ..AuthProperties::default()
            }
            .into(),
        })
    };
    h.send(
        "e",
        auth(ReasonCode::CONTINUE_AUTHENTICATION, b"client-final"),
    );
    let r = auth_requests(&mut h);
    assert!(!r[0].reauthenticate);
    assert_eq!(
        r[0].authentication_data.as_deref(),
        Some(&b"client-final"[..])
    );
    let now = h.now;
    h.broker
        .accept(now, e, Some(Bytes::from_static(b"server-final")))
        .unwrap();
    h.drain();
    h.send("e", auth(ReasonCode::REAUTHENTICATE, b"again"));
    assert!(auth_requests(&mut h)[0].reauthenticate);
    h.broker.accept(now, e, None).unwrap();
    h.drain();
    assert_eq!(
        h.transcript(),
        lines(
            "
            e -> CONNECT 5.0 id=e clean=1
            e <- AUTH 0x18 server-first
            e -> AUTH 0x18 client-final
            e <- CONNACK 0x00 sp=0 auth=SCRAM-SHA-1 data=server-final
            e -> AUTH 0x19 again
            e <- AUTH 0x00
            "
        )
    );
}

/// [MQTT-4.12.0-1] without a driver no method is supported: 0x8C. [MQTT-4.12.0-7]: AUTH
/// from a client that named no method is a Protocol Error.
#[test]
fn authentication_methods_nobody_handles() {
    let mut h = Harness::new(BrokerConfig::default());
    let mut c = Connect::new(V5, MqttString::from_static("x"));
    c.properties.authentication_method = Some(MqttString::from_static("KERBEROS"));
    h.connect_with("x", c);
    h.connect("y", V5, true);
    h.send(
        "y",
        Packet::Auth(Auth {
            reason_code: ReasonCode::REAUTHENTICATE,
            properties: AuthProperties {
                authentication_method: Some(MqttString::from_static("KERBEROS")),
                ..AuthProperties::default()
            }
            .into(),
        }),
    );
    assert_eq!(
        h.transcript(),
        lines(
            "
            x -> CONNECT 5.0 id=x clean=1
            x <- CONNACK 0x8C sp=0 reason='no authentication method is supported'
            x <- [closed]
            y -> CONNECT 5.0 id=y clean=1
            y <- CONNACK 0x00 sp=0
            y -> AUTH 0x19
            y <- DISCONNECT 0x82
            y <- [closed]
            "
        )
    );
}

/// [MQTT-3.1.2-30]: during enhanced authentication only AUTH and DISCONNECT may precede the
/// CONNACK; anything else is refused with CONNACK 0x82.
#[test]
fn only_auth_before_connack_during_enhanced_authentication() {
    let mut h = asking();
    let mut c = Connect::new(V5, MqttString::from_static("e"));
    c.properties.authentication_method = Some(MqttString::from_static("M"));
    h.connect_with("e", c);
    h.send("e", Packet::PingReq);
    assert_eq!(
        h.transcript(),
        lines(
            "
            e -> CONNECT 5.0 id=e clean=1
            e -> PINGREQ
            e <- CONNACK 0x82 sp=0 reason='[MQTT-3.1.2-30] a packet other than AUTH or DISCONNECT before CONNACK during enhanced authentication'
            e <- [closed]
            "
        )
    );
}

/// The connect timeout runs until the CONNACK: a client that leaves an AUTH exchange
/// hanging is closed.
#[test]
fn a_stalled_authentication_exchange_times_out() {
    let mut h = asking();
    let mut c = Connect::new(V5, MqttString::from_static("e"));
    c.properties.authentication_method = Some(MqttString::from_static("M"));
    let e = h.connect_with("e", c);
    h.broker.continue_auth(e, None).unwrap();
    h.drain();
    h.advance(std::time::Duration::from_secs(10));
    assert_eq!(
        h.transcript(),
        lines(
            "
            e -> CONNECT 5.0 id=e clean=1
            e <- AUTH 0x18
            e <- [closed]
            "
        )
    );
}

/// [MQTT-4.12.0-4]: the driver may reject an authentication exchange at any point, also
/// while the client's next AUTH is awaited: a CONNACK with the reason code, then the close.
#[test]
fn authentication_can_be_rejected_at_any_point() {
    let mut h = asking();
    let mut c = Connect::new(V5, MqttString::from_static("e"));
    c.properties.authentication_method = Some(MqttString::from_static("M"));
    let e = h.connect_with("e", c);
    h.broker.continue_auth(e, None).unwrap();
    h.drain();
    let now = h.now;
    h.broker.reject(now, e, ReasonCode::NOT_AUTHORIZED).unwrap();
    h.drain();
    assert_eq!(
        h.transcript(),
        lines(
            "
            e -> CONNECT 5.0 id=e clean=1
            e <- AUTH 0x18
            e <- CONNACK 0x87 sp=0
            e <- [closed]
            "
        )
    );
    assert_eq!(
        h.broker.reject(now, e, ReasonCode::NOT_AUTHORIZED),
        Err(DecisionError::UnknownConnection)
    );
}

/// Each client may publish only under its own user name.
struct OwnUserName;

impl mqtt_session::broker::Authorizer for OwnUserName {
    fn may_publish(&self, c: &mqtt_session::broker::ClientInfo<'_>, topic: &TopicName) -> bool {
        c.username
            .is_some_and(|u| topic.starts_with(&format!("{}/", u.as_str())))
    }
}

/// `accept_as`: the driver accepts a CONNECT under an identity it established itself (a
/// TLS client certificate, say): the user name the CONNECT claimed is replaced, for the
/// authoriser and the session alike. Without a pending CONNECT it is misuse.
#[test]
fn the_driver_may_accept_under_an_identity_of_its_own() {
    let mut h = asking();
    h.broker.set_authorizer(Box::new(OwnUserName));
    let c = h.connect_with("d", with_credentials(V5, "d", "admin", ""));
    let now = h.now;
    h.broker
        .accept_as(now, c, Some(MqttString::from_static("device-1")))
        .unwrap();
    assert_eq!(
        h.broker.accept_as(now, c, None),
        Err(DecisionError::NothingPending)
    );
    h.drain();
    h.transcript();
    h.publish("d", "admin/reboot", "now", QoS::AtLeastOnce, 1);
    h.publish("d", "device-1/temp", "21", QoS::AtLeastOnce, 2);
    assert_eq!(
        h.transcript(),
        lines(
            "
            d -> PUBLISH admin/reboot q1 id=1 'now'
            d <- PUBACK 1 0x87 reason='not authorized'
            d -> PUBLISH device-1/temp q1 id=2 '21'
            d <- PUBACK 2 0x10
            "
        )
    );
}

//! A QoS 2 message recovered after a cut. The client sends its PUBREL again on the resumed
//! session ([MQTT-4.4.0-1]); a server that completed the message before the cut (its
//! PUBCOMP lost with the connection) no longer knows the identifier and answers PUBCOMP
//! 0x92. MQTT 5.0 section 3.7.2.1, Packet Identifier not found: "This is not an error
//! during recovery, but at other times indicates a mismatch between the Session State on
//! the Client and Server".

use mqtt_codec::{ConnAck, MqttString, Packet, ProtocolVersion, PubResponse, QoS};

use super::*;

fn present() -> ConnAck {
    let mut ack = ConnAck::default();
    ack.session_present = true;
    ack
}

/// A v5 client with a lasting session whose QoS 2 message 1 is released: PUBREC came,
/// PUBREL went, PUBCOMP has not come.
fn released() -> Harness {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.properties.session_expiry_interval = Some(3600);
    let mut h = Harness::new(config);
    h.connect();
    h.publish("a", "1", QoS::ExactlyOnce);
    assert_eq!(
        h.recv(Packet::PubRec(PubResponse::new(id(1)))),
        ["persist put-out 1 pubrel", "send PUBREL 1"]
    );
    h
}

/// Section 3.7.2.1: PUBCOMP 0x92 for the PUBREL sent again after the resume is not an
/// error: the message was delivered, and the application hears so.
#[test]
fn pubcomp_0x92_for_a_pubrel_sent_again_reports_delivery() {
    let mut h = released();
    h.client.handle_closed(h.now);
    assert_eq!(h.drain(), ["event disconnected TransportClosed"]);
    assert_eq!(
        h.connect_with(present()),
        ["event connected present=1 id=c1", "send PUBREL 1"]
    );
    assert_eq!(
        h.recv(Packet::PubComp(with_rc(1, 0x92))),
        ["persist rm-out 1", "event published 1"]
    );
    assert_eq!(h.client.in_flight(), 0);
}

/// The same after a restart: a client resumed from the stored session state sends the
/// PUBREL again, and PUBCOMP 0x92 reports delivery.
#[test]
fn pubcomp_0x92_after_a_restart_reports_delivery() {
    let h = released();
    let state = h.client.session_state();
    let config = h.client.config().clone();
    let mut h = Harness::with_client(Client::resume(config, state).unwrap());
    assert_eq!(
        h.connect_with(present()),
        ["event connected present=1 id=c1", "send PUBREL 1"]
    );
    assert_eq!(
        h.recv(Packet::PubComp(with_rc(1, 0x92))),
        ["persist rm-out 1", "event published 1"]
    );
}

/// Section 3.7.2.1, "at other times": the server acknowledged the PUBLISH with PUBREC on
/// this connection, so PUBCOMP 0x92 for the PUBREL that followed means the two sessions
/// disagree. The message is done (its identifier is free again) but reported with 0x92:
/// whether it reached subscribers is unknown.
#[test]
fn pubcomp_0x92_in_the_normal_flow_reports_the_mismatch() {
    let mut h = released();
    assert_eq!(
        h.recv(Packet::PubComp(with_rc(1, 0x92))),
        ["persist rm-out 1", "event published 1 rc=0x92"]
    );
}

/// A PUBLISH sent again after the resume starts the flow on the new connection: its
/// PUBREC comes on this connection, so PUBCOMP 0x92 for its PUBREL is a mismatch too, not
/// recovery.
#[test]
fn pubcomp_0x92_after_a_pubrec_on_the_resumed_connection_reports_the_mismatch() {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.properties.session_expiry_interval = Some(3600);
    let mut h = Harness::new(config);
    h.connect();
    h.publish("a", "1", QoS::ExactlyOnce);
    h.client.handle_closed(h.now);
    h.drain();
    assert_eq!(
        h.connect_with(present()),
        [
            "event connected present=1 id=c1",
            "send PUBLISH 'a' qos=2 id=1 dup=1 retain=0"
        ]
    );
    h.recv(Packet::PubRec(PubResponse::new(id(1))));
    assert_eq!(
        h.recv(Packet::PubComp(with_rc(1, 0x92))),
        ["persist rm-out 1", "event published 1 rc=0x92"]
    );
}

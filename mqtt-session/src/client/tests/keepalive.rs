//! Keep-alive under simulated time.

use core::time::Duration;

use mqtt_codec::{MqttString, Packet, ProtocolVersion, QoS};

use super::*;

fn with_keep_alive(secs: u16) -> Harness {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.keep_alive = secs;
    Harness::new(config)
}

/// [MQTT-3.1.2-20] (3.1.1 [MQTT-3.1.2-23]): PINGREQ when nothing else was sent for the
/// keep-alive interval; sending anything restarts the interval.
#[test]
fn pingreq_after_idle_interval() {
    let mut h = with_keep_alive(10);
    h.connect();
    assert_eq!(h.advance(Duration::from_secs(5)), Vec::<String>::new());
    h.publish("a", "x", QoS::AtMostOnce);
    assert_eq!(
        h.client.poll_timeout(),
        Some(h.now + Duration::from_secs(10))
    );
    assert_eq!(h.advance(Duration::from_secs(9)), Vec::<String>::new());
    assert_eq!(h.advance(Duration::from_secs(1)), ["send PINGREQ"]);
    // The PINGRESP arrives: the connection lives on, and the next ping is due an interval
    // after the last one.
    assert_eq!(h.recv(Packet::PingResp), Vec::<String>::new());
    assert_eq!(h.advance(Duration::from_secs(10)), ["send PINGREQ"]);
}

/// The connection is lost when nothing answers a PINGREQ in time.
#[test]
fn no_pingresp_means_connection_lost() {
    let mut h = with_keep_alive(10);
    h.connect();
    assert_eq!(h.advance(Duration::from_secs(10)), ["send PINGREQ"]);
    assert_eq!(h.advance(Duration::from_secs(9)), Vec::<String>::new());
    assert_eq!(
        h.advance(Duration::from_secs(1)),
        ["event disconnected Timeout", "close"]
    );
    assert_eq!(h.client.poll_timeout(), None);
}

/// Any packet from the server counts as an answer.
#[test]
fn any_packet_answers_a_ping() {
    let mut h = with_keep_alive(4);
    h.client.config.ping_timeout = Some(Duration::from_secs(2));
    h.connect();
    assert_eq!(h.advance(Duration::from_secs(4)), ["send PINGREQ"]);
    h.recv(incoming("t", "x", QoS::AtMostOnce, 0));
    assert_eq!(h.advance(Duration::from_secs(3)), Vec::<String>::new());
    assert_eq!(h.advance(Duration::from_secs(1)), ["send PINGREQ"]);
}

#[test]
fn keep_alive_zero_means_no_pings() {
    let mut h = with_keep_alive(0);
    h.connect();
    assert_eq!(h.client.poll_timeout(), None);
    assert_eq!(h.advance(Duration::from_secs(3600)), Vec::<String>::new());
}

/// [MQTT-3.1.2-21]: Server Keep Alive replaces the client's value, even 0.
#[test]
fn server_keep_alive_zero_turns_pings_off() {
    let mut h = with_keep_alive(30);
    h.connect_with(connack_with(|p| p.server_keep_alive = Some(0)));
    assert_eq!(h.client.poll_timeout(), None);
}

/// A spurious early `handle_timeout` does nothing.
#[test]
fn early_timeout_call_is_harmless() {
    let mut h = with_keep_alive(10);
    h.connect();
    h.client.handle_timeout(h.now + Duration::from_secs(1));
    assert_eq!(h.drain(), Vec::<String>::new());
}

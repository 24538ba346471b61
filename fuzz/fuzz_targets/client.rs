//! Drives the sans-IO client with arbitrary operations: application commands, packets
//! decoded from arbitrary server bytes (or their decode errors), dropped connections and
//! time steps, under MQTT 3.1.1 and 5.0.
//!
//! Checks, besides "no panic": every packet the client sends encodes and decodes again;
//! never more QoS 1/2 messages in flight than the server's Receive Maximum; a new PUBLISH
//! never takes an identifier that is in flight; nothing is sent after Close.
#![no_main]

use mqtt_session::time::Instant;
use std::collections::BTreeSet;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mqtt_codec::{
    Bytes, DecodeContext, Disconnect, MqttString, Packet, ProtocolVersion, QoS,
    SubscriptionOptions, TopicFilter, TopicName,
};
use mqtt_session::client::{Action, Client, ClientConfig, Event, Message};

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let version = if first & 1 == 0 {
        ProtocolVersion::V3_1_1
    } else {
        ProtocolVersion::V5
    };
    let mut config = ClientConfig::new(version, MqttString::from_static("fuzz"));
    config.max_queued = 8;
    config.keep_alive = 10;
    if version.is_v5() {
        config.properties.topic_alias_maximum = Some(4);
        config.properties.receive_maximum = std::num::NonZeroU16::new(4);
        if first & 2 != 0 {
            config.properties.authentication_method = Some(MqttString::from_static("M"));
        }
    }
    let mut client = Client::new(config);
    let mut now = Instant::ZERO;
    let cx = DecodeContext::new(version);
    let mut in_flight_ids = BTreeSet::new();

    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let arg = rest.first().copied().unwrap_or(0);
        match op % 9 {
            0 => {
                let _ = client.connect(now);
            }
            1 => {
                let qos = QoS::from_u8(arg % 3).unwrap_or_default();
                let msg = Message::new(TopicName::from_static("t/x"), "p").with_qos(qos);
                let _ = client.publish(now, msg);
            }
            2 => {
                let f = vec![(
                    TopicFilter::from_static("t/#"),
                    SubscriptionOptions::default(),
                )];
                let _ = client.subscribe(now, f, Default::default());
            }
            3 => now += Duration::from_secs(u64::from(arg)),
            4 => client.handle_closed(now),
            5 => {
                let _ = client.disconnect(now, Disconnect::default());
            }
            6 => {
                let _ = client.continue_authentication(now, Some(Bytes::from_static(b"d")));
                let _ = client.reauthenticate(now, None);
            }
            _ => {
                // A packet from the server: a length byte, then that many bytes.
                let len = usize::from(arg).min(rest.len().saturating_sub(1));
                let bytes = Bytes::copy_from_slice(rest.get(1..1 + len).unwrap_or(&[]));
                rest = rest.get(1 + len..).unwrap_or(&[]);
                match Packet::decode_exact(bytes, &cx) {
                    Ok(p) => client.handle_packet(now, p),
                    Err(e) => client.handle_decode_error(now, &e),
                }
            }
        }
        if client.poll_timeout().is_some_and(|t| t <= now) {
            client.handle_timeout(now);
        }
        let mut closed = false;
        while let Some(a) = client.poll_action() {
            match a {
                Action::Send(p) => {
                    assert!(!closed, "sent after Close");
                    let bytes = p.to_bytes(version).expect("client packets encode").freeze();
                    let back = Packet::decode_exact(bytes, &cx).expect("client packets decode");
                    assert_eq!(back.packet_type(), p.packet_type());
                    if let Packet::Publish(p) = &p
                        && let Some(id) = p.qos_pid.packet_id()
                        && !p.dup
                    {
                        assert!(in_flight_ids.insert(id), "identifier {id} reused in flight");
                    }
                }
                Action::Event(Event::Published(done)) => {
                    in_flight_ids.remove(&done.packet_id);
                }
                Action::Event(Event::PublishDropped { packet_id, .. }) => {
                    in_flight_ids.remove(&packet_id);
                }
                Action::Close => closed = true,
                Action::Event(_) | Action::Persist(_) => {}
            }
        }
        assert!(client.in_flight() <= usize::from(client.limits().receive_maximum));
    }
});

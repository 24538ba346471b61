//! Writes the seed corpus of the `decode` target into `fuzz/seeds/`: one file per packet
//! type and version (with properties set in v5), and one stream of several packets per
//! version.
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```

use std::num::{NonZeroU16, NonZeroU32};
use std::{fs, path::PathBuf};

use mqtt_codec::{
    AckProperties, Auth, AuthProperties, Bytes, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, Disconnect, DisconnectProperties, List, MqttString, Packet, PacketId,
    ProtocolVersion, PubResponse, Publish, PublishProperties, QoS, QosPid, ReasonCode,
    RetainHandling, SubAck, Subscribe, SubscribeProperties, SubscriptionId, SubscriptionIds,
    SubscriptionOptions, TopicFilter, TopicName, UnsubAck, Unsubscribe, UnsubscribeProperties,
    Will, WillProperties,
};

fn s(text: &str) -> MqttString {
    MqttString::new(text).unwrap()
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn user() -> List<(MqttString, MqttString)> {
    List::from([(s("k"), s("v\u{FEFF}")), (s("k"), s("é"))])
}

/// Every packet type `version` has, named; v5 packets carry properties.
fn packets(version: ProtocolVersion) -> Vec<(&'static str, Packet)> {
    let v5 = version.is_v5();
    let ack_props = if v5 {
        AckProperties {
            reason_string: Some(s("why")),
            user_properties: user(),
        }
    } else {
        AckProperties::default()
    };

    let mut connect = Connect::new(version, s("client-1"));
    connect.will = Some(Will {
        topic: TopicName::new("will/topic").unwrap(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: if v5 {
            WillProperties {
                will_delay_interval: Some(5),
                payload_format_indicator: Some(true),
                message_expiry_interval: Some(60),
                content_type: Some(s("text/plain")),
                response_topic: Some(TopicName::new("re/sponse").unwrap()),
                correlation_data: Some(Bytes::from_static(b"\x01\x02")),
                user_properties: user(),
            }
        } else {
            WillProperties::default()
        },
    });
    connect.username = Some(s("user"));
    connect.password = Some(Bytes::from_static(b"secret"));
    if v5 {
        connect.properties = ConnectProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: NonZeroU16::new(10),
            maximum_packet_size: NonZeroU32::new(1024),
            topic_alias_maximum: Some(8),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            authentication_method: Some(s("SCRAM-SHA-1")),
            authentication_data: Some(Bytes::from_static(b"client-first")),
            user_properties: user(),
        };
    }

    let connack = ConnAck {
        session_present: true,
        reason_code: ReasonCode::SUCCESS,
        properties: if v5 {
            ConnAckProperties {
                session_expiry_interval: Some(60),
                receive_maximum: NonZeroU16::new(20),
                maximum_qos: Some(QoS::AtLeastOnce),
                retain_available: Some(false),
                maximum_packet_size: NonZeroU32::new(4096),
                assigned_client_identifier: Some(s("auto-1")),
                topic_alias_maximum: Some(4),
                reason_string: Some(s("ok")),
                wildcard_subscription_available: Some(true),
                subscription_identifiers_available: Some(true),
                shared_subscription_available: Some(false),
                server_keep_alive: Some(30),
                response_information: Some(s("resp/")),
                server_reference: Some(s("other:1883")),
                authentication_method: Some(s("SCRAM-SHA-1")),
                authentication_data: Some(Bytes::from_static(b"server-final")),
                user_properties: user(),
            }
        } else {
            ConnAckProperties::default()
        },
    };

    let mut publish = Publish::new(TopicName::new("sensors/kitchen/temp").unwrap(), "21.5");
    publish.qos_pid = QosPid::ExactlyOnce(pid(7));
    publish.dup = true;
    publish.retain = true;
    if v5 {
        publish.properties = PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(30),
            topic_alias: NonZeroU16::new(3),
            response_topic: Some(TopicName::new("reply/here").unwrap()),
            correlation_data: Some(Bytes::from_static(b"corr")),
            content_type: Some(s("text/plain")),
            user_properties: user(),
            subscription_identifiers: SubscriptionIds::from([
                SubscriptionId::new(1).unwrap(),
                SubscriptionId::new(SubscriptionId::MAX).unwrap(),
            ]),
        }
        .into();
    }

    let response = |code| PubResponse {
        packet_id: pid(7),
        reason_code: if v5 { code } else { ReasonCode::SUCCESS },
        properties: ack_props.clone(),
    };

    let options = |qos| {
        if v5 {
            SubscriptionOptions {
                qos,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            }
        } else {
            SubscriptionOptions::qos(qos)
        }
    };
    let subscribe = Subscribe {
        packet_id: pid(9),
        properties: if v5 {
            SubscribeProperties {
                subscription_identifier: SubscriptionId::new(300),
                user_properties: user(),
            }
        } else {
            SubscribeProperties::default()
        },
        filters: vec![
            (
                TopicFilter::new("sport/+/player1/#").unwrap(),
                options(QoS::ExactlyOnce),
            ),
            (
                TopicFilter::new("$SYS/#").unwrap(),
                options(QoS::AtMostOnce),
            ),
            (
                TopicFilter::new("$share/group/a/+").unwrap(),
                SubscriptionOptions::qos(QoS::AtLeastOnce),
            ),
        ],
    };
    let suback = SubAck {
        packet_id: pid(9),
        properties: ack_props.clone(),
        reason_codes: vec![
            ReasonCode::GRANTED_QOS_2,
            ReasonCode::GRANTED_QOS_0,
            ReasonCode::UNSPECIFIED_ERROR,
        ],
    };
    let unsubscribe = Unsubscribe {
        packet_id: pid(10),
        properties: if v5 {
            UnsubscribeProperties {
                user_properties: user(),
            }
        } else {
            UnsubscribeProperties::default()
        },
        filters: vec![
            TopicFilter::new("sport/#").unwrap(),
            TopicFilter::new("+").unwrap(),
        ],
    };
    let unsuback = UnsubAck {
        packet_id: pid(10),
        properties: ack_props.clone(),
        reason_codes: if v5 {
            vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED]
        } else {
            Vec::new()
        },
    };
    let disconnect = if v5 {
        Disconnect {
            reason_code: ReasonCode::DISCONNECT_WITH_WILL,
            properties: DisconnectProperties {
                session_expiry_interval: Some(0),
                reason_string: Some(s("bye")),
                server_reference: Some(s("other:1883")),
                user_properties: user(),
            }
            .into(),
        }
    } else {
        Disconnect::default()
    };

    let mut all = vec![
        ("connect", Packet::Connect(Box::new(connect))),
        ("connack", Packet::ConnAck(Box::new(connack))),
        ("publish", Packet::Publish(publish)),
        (
            "puback",
            Packet::PubAck(response(ReasonCode::NO_MATCHING_SUBSCRIBERS)),
        ),
        (
            "pubrec",
            Packet::PubRec(response(ReasonCode::QUOTA_EXCEEDED)),
        ),
        (
            "pubrel",
            Packet::PubRel(response(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)),
        ),
        ("pubcomp", Packet::PubComp(response(ReasonCode::SUCCESS))),
        ("subscribe", Packet::Subscribe(subscribe)),
        ("suback", Packet::SubAck(suback)),
        ("unsubscribe", Packet::Unsubscribe(unsubscribe)),
        ("unsuback", Packet::UnsubAck(unsuback)),
        ("pingreq", Packet::PingReq),
        ("pingresp", Packet::PingResp),
        ("disconnect", Packet::Disconnect(disconnect)),
    ];
    if v5 {
        all.push((
            "auth",
            Packet::Auth(Auth {
                reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
                properties: AuthProperties {
                    authentication_method: Some(s("SCRAM-SHA-1")),
                    authentication_data: Some(Bytes::from_static(b"challenge")),
                    reason_string: Some(s("more")),
                    user_properties: user(),
                }
                .into(),
            }),
        ));
    }
    all
}

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds"));
    fs::create_dir_all(&dir).unwrap();
    let mut written = 0;
    for (tag, version) in [
        ("v31", ProtocolVersion::V3_1),
        ("v311", ProtocolVersion::V3_1_1),
        ("v5", ProtocolVersion::V5),
    ] {
        let mut stream = Vec::new();
        for (name, packet) in packets(version) {
            let wire = packet.to_bytes(version).unwrap();
            fs::write(dir.join(format!("{tag}-{name}")), &wire).unwrap();
            stream.extend_from_slice(&wire);
            written += 1;
        }
        fs::write(dir.join(format!("{tag}-stream")), &stream).unwrap();
        written += 1;
    }
    println!("wrote {written} seeds to {}", dir.display());
}

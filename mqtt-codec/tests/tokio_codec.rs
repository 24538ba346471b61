//! `MqttCodec`, the tokio-util framing: packets cut anywhere arrive whole, a server learns
//! the version from the CONNECT, and the maximum packet size holds from the fixed header.

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use mqtt_codec::*;
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};

fn packets() -> Vec<Packet> {
    let mut p = Publish::new(TopicName::new("a/b").unwrap(), vec![7u8; 300]);
    p.qos_pid = QosPid::AtLeastOnce(PacketId::new(3).unwrap());
    vec![
        Packet::Publish(p),
        Packet::PubAck(PubResponse::new(PacketId::new(9).unwrap())),
        Packet::PingReq,
        Packet::Publish(Publish::new(TopicName::new("c").unwrap(), "x")),
    ]
}

/// Encoded one after another, then decoded from the stream cut into pieces of every size
/// from 1 to 17 bytes: the same packets, in order, each once.
#[test]
fn packets_cut_anywhere_arrive_whole() {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let mut codec = MqttCodec::new(version);
        let mut wire = BytesMut::new();
        for p in packets() {
            codec.encode(&p, &mut wire).unwrap();
        }
        for piece in 1..=17 {
            let mut rx = MqttCodec::new(version);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(piece) {
                buf.extend_from_slice(chunk);
                while let Some(p) = rx.decode(&mut buf).unwrap() {
                    got.push(p);
                }
            }
            assert_eq!(got, packets(), "{version:?}, pieces of {piece}");
            assert!(buf.is_empty());
        }
    }
}

/// [MQTT-3.1.0-1]: a server's codec decodes only a CONNECT first, then the packets of the
/// CONNECT's version, and encodes nothing before it knows that version.
#[test]
fn a_server_codec_takes_the_version_from_the_connect() {
    let mut server = MqttCodec::server();
    assert!(matches!(
        server.encode(Packet::PingResp, &mut BytesMut::new()),
        Err(CodecError::NoVersion)
    ));
    let mut early = BytesMut::new();
    MqttCodec::new(ProtocolVersion::V3_1_1)
        .encode(Packet::PingReq, &mut early)
        .unwrap();
    let err = server.decode(&mut early).unwrap_err();
    let CodecError::Decode(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.rule_id(), Some("MQTT-3.1.0-1"));

    let mut server = MqttCodec::server();
    let mut client = MqttCodec::new(ProtocolVersion::V3_1_1);
    let mut wire = BytesMut::new();
    let connect = Connect::new(ProtocolVersion::V3_1_1, MqttString::new("c").unwrap());
    client
        .encode(Packet::Connect(Box::new(connect)), &mut wire)
        .unwrap();
    client.encode(Packet::PingReq, &mut wire).unwrap();
    assert!(matches!(
        server.decode(&mut wire),
        Ok(Some(Packet::Connect(_)))
    ));
    assert_eq!(server.version(), Some(ProtocolVersion::V3_1_1));
    assert_eq!(server.decode(&mut wire).unwrap(), Some(Packet::PingReq));
    let mut out = BytesMut::new();
    server.encode(Packet::PingResp, &mut out).unwrap();
    assert_eq!(&out[..], [0xD0, 0x00]);
}

/// [MQTT-3.1.2-24] (the receiver's side of Maximum Packet Size): a packet larger than the
/// codec accepts is refused from its fixed header, before its body arrives, and the codec
/// reserves no room for it.
#[test]
fn an_oversized_packet_is_refused_from_its_header() {
    let mut rx = MqttCodec::new(ProtocolVersion::V5).with_max_packet_size(1024);
    // A PUBLISH announcing 1 MiB of remaining length; only its fixed header has arrived.
    let mut buf = BytesMut::from(&[0x30, 0x80, 0x80, 0x40][..]);
    let err = rx.decode(&mut buf).unwrap_err();
    let CodecError::Decode(e) = err else {
        panic!("{err:?}")
    };
    assert!(matches!(e.kind(), DecodeErrorKind::PacketTooLarge { .. }));
    assert!(buf.capacity() < 1024);
    // Within the limit, it waits for the rest.
    let mut p = Publish::new(TopicName::new("t").unwrap(), vec![1u8; 900]);
    p.qos_pid = QosPid::AtMostOnce;
    let mut wire = BytesMut::new();
    MqttCodec::new(ProtocolVersion::V5)
        .encode(Packet::Publish(p.clone()), &mut wire)
        .unwrap();
    let mut part = BytesMut::from(&wire[..10]);
    assert_eq!(rx.decode(&mut part).unwrap(), None);
    part.extend_from_slice(&wire[10..]);
    assert_eq!(rx.decode(&mut part).unwrap(), Some(Packet::Publish(p)));
}

/// A field 3.1.1 cannot carry is an encoding error, and nothing is written.
#[test]
fn what_a_version_cannot_carry_is_an_error() {
    let mut ack = PubResponse::new(PacketId::new(1).unwrap());
    ack.reason_code = ReasonCode::NO_MATCHING_SUBSCRIBERS;
    let mut out = BytesMut::new();
    let err = MqttCodec::new(ProtocolVersion::V3_1_1).encode(Packet::PubAck(ack), &mut out);
    assert!(matches!(err, Err(CodecError::Encode(_))));
    assert!(out.is_empty());
}

/// Over a tokio stream with `FramedWrite` and `FramedRead`: a client's packets reach a
/// server's codec in order, and the stream's end ends the framed stream.
#[tokio::test]
async fn framed_over_a_tokio_stream() {
    let (a, b) = tokio::io::duplex(64);
    let mut tx = FramedWrite::new(a, MqttCodec::new(ProtocolVersion::V5));
    let mut rx = FramedRead::new(b, MqttCodec::server());
    let connect = Connect::new(ProtocolVersion::V5, MqttString::new("c").unwrap());
    let mut sent = vec![Packet::Connect(Box::new(connect))];
    sent.extend(packets());
    let sender = async {
        for p in &sent {
            tx.send(p).await.unwrap();
        }
        drop(tx);
    };
    let receiver = async {
        let mut got = Vec::new();
        while let Some(p) = rx.next().await {
            got.push(p.unwrap());
        }
        got
    };
    let ((), got) = tokio::join!(sender, receiver);
    assert_eq!(got, sent);
}

//! `-d`: a line on stdout for each packet sent and received, in libmosquitto's words.

use std::io::Write;
use std::sync::Mutex;

use mqtt_session::driver::Direction;
use mqtt_session::mqtt_codec::{Packet, ProtocolVersion};

/// What the lines need to remember: the client identifier (the server's, once it assigns
/// one) and the last message id, which a QoS 0 PUBLISH takes the next of (as libmosquitto
/// numbers every message).
struct State {
    client_id: String,
    last_mid: u16,
}

/// The function that prints the packets of a client with `client_id` (empty: "(null)"
/// until the server assigns one).
pub(crate) fn printer(
    client_id: String,
    protocol: ProtocolVersion,
) -> impl Fn(Direction, &Packet) + Send + Sync + 'static {
    let state = Mutex::new(State {
        client_id: if client_id.is_empty() {
            "(null)".into()
        } else {
            client_id
        },
        last_mid: 0,
    });
    move |direction, packet| {
        let Ok(mut s) = state.lock() else { return };
        let mut lines = Vec::new();
        let id = s.client_id.clone();
        let mut line = |text: String| lines.push(format!("Client {id} {text}"));
        match (direction, packet) {
            (Direction::Sent, Packet::Connect(_)) => line("sending CONNECT".into()),
            (Direction::Received, Packet::ConnAck(ack)) => {
                let code = if protocol.is_v5() {
                    ack.reason_code.0
                } else {
                    ack.reason_code.to_v3_connack().unwrap_or(ack.reason_code.0)
                };
                if let Some(assigned) = &ack.properties.assigned_client_identifier {
                    s.client_id = assigned.as_str().to_string();
                }
                lines.push(format!("Client {} received CONNACK ({code})", s.client_id));
            }
            (dir, Packet::Publish(p)) => {
                let mid = match p.qos_pid.packet_id() {
                    Some(id) => id.get(),
                    None if dir == Direction::Sent => {
                        s.last_mid = s.last_mid.wrapping_add(1).max(1);
                        s.last_mid
                    }
                    None => 0,
                };
                let verb = if dir == Direction::Sent {
                    "sending"
                } else {
                    "received"
                };
                line(format!(
                    "{verb} PUBLISH (d{}, q{}, r{}, m{mid}, '{}', ... ({} bytes))",
                    u8::from(p.dup),
                    p.qos_pid.qos() as u8,
                    u8::from(p.retain),
                    p.topic,
                    p.payload.len()
                ));
            }
            (Direction::Sent, Packet::PubAck(r)) => line(format!(
                "sending PUBACK (m{}, rc{})",
                r.packet_id.get(),
                r.reason_code.0
            )),
            (Direction::Sent, Packet::PubRec(r)) => line(format!(
                "sending PUBREC (m{}, rc{})",
                r.packet_id.get(),
                r.reason_code.0
            )),
            (Direction::Sent, Packet::PubRel(r)) => {
                line(format!("sending PUBREL (m{})", r.packet_id.get()))
            }
            (Direction::Sent, Packet::PubComp(r)) => {
                line(format!("sending PUBCOMP (m{})", r.packet_id.get()))
            }
            (Direction::Received, Packet::PubAck(r)) => line(format!(
                "received PUBACK (Mid: {}, RC:{})",
                r.packet_id.get(),
                r.reason_code.0
            )),
            (Direction::Received, Packet::PubComp(r)) => line(format!(
                "received PUBCOMP (Mid: {}, RC:{})",
                r.packet_id.get(),
                r.reason_code.0
            )),
            (Direction::Received, Packet::PubRec(r)) => {
                line(format!("received PUBREC (Mid: {})", r.packet_id.get()))
            }
            (Direction::Received, Packet::PubRel(r)) => {
                line(format!("received PUBREL (Mid: {})", r.packet_id.get()))
            }
            (Direction::Sent, Packet::Subscribe(sub)) => {
                for (filter, o) in &sub.filters {
                    let options = u8::from(o.no_local) << 2
                        | u8::from(o.retain_as_published) << 3
                        | (o.retain_handling as u8) << 4;
                    line(format!(
                        "sending SUBSCRIBE (Mid: {}, Topic: {filter}, QoS: {}, Options: 0x{options:02x})",
                        sub.packet_id.get(),
                        o.qos as u8
                    ));
                }
            }
            (Direction::Sent, Packet::Unsubscribe(u)) => {
                for filter in &u.filters {
                    line(format!(
                        "sending UNSUBSCRIBE (Mid: {}, Topic: {filter})",
                        u.packet_id.get()
                    ));
                }
            }
            (Direction::Received, Packet::SubAck(_)) => line("received SUBACK".into()),
            (Direction::Received, Packet::UnsubAck(_)) => line("received UNSUBACK".into()),
            (Direction::Sent, Packet::PingReq) => line("sending PINGREQ".into()),
            (Direction::Received, Packet::PingResp) => line("received PINGRESP".into()),
            (Direction::Sent, Packet::Disconnect(_)) => line("sending DISCONNECT".into()),
            (Direction::Received, Packet::Disconnect(_)) => line("received DISCONNECT".into()),
            (Direction::Sent, Packet::Auth(_)) => line("sending AUTH".into()),
            (Direction::Received, Packet::Auth(_)) => line("received AUTH".into()),
            _ => {}
        }
        if let Some(id) = packet_id_sent(direction, packet) {
            s.last_mid = id;
        }
        let mut out = std::io::stdout().lock();
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
        let _ = out.flush();
    }
}

/// The packet identifier of a packet this client numbered.
fn packet_id_sent(direction: Direction, packet: &Packet) -> Option<u16> {
    match (direction, packet) {
        (Direction::Sent, Packet::Publish(p)) => p.qos_pid.packet_id().map(|id| id.get()),
        (Direction::Sent, Packet::Subscribe(s)) => Some(s.packet_id.get()),
        (Direction::Sent, Packet::Unsubscribe(u)) => Some(u.packet_id.get()),
        _ => None,
    }
}

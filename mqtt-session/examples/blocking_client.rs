//! A client in a plain blocking loop, with no async runtime: the shape of a driver on a
//! microcontroller (a main loop, embassy or RTIC), here over `std::net::TcpStream`.
//!
//! It uses only what `mqtt-session` offers without std: the time it hands the client is an
//! `Instant::from_micros` of a monotonic count (here the microseconds since the program
//! started; on a microcontroller, the timer's count), never `time::Clock`. Swap the
//! `TcpStream` for the board's socket and the `std::time::Instant` for its timer, and
//! nothing else changes.
//!
//! It connects, subscribes to `blocking/#` at QoS 2, publishes one message at each QoS to
//! itself, waits for all three and for the QoS 1 and 2 handshakes, and disconnects:
//!
//! ```sh
//! cargo run -p mqtt-session --features cli --bin mqtt-broker &
//! cargo run -p mqtt-session --example blocking_client -- 127.0.0.1:1883
//! ```

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mqtt_session::client::{Action, Client, ClientConfig, Event, Message};
use mqtt_session::mqtt_codec::{
    BytesMut, Disconnect, MqttString, ProtocolVersion, QoS, SubscribeProperties,
    SubscriptionOptions, TopicFilter, TopicName,
};
use mqtt_session::time::Instant;

/// How long the round trip may take before it gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// One client on one TCP connection, driven by blocking reads and writes.
struct Blocking {
    client: Client,
    stream: TcpStream,
    rx: BytesMut,
    /// The clock: what a microcontroller's timer would count.
    started: std::time::Instant,
    events: Vec<Event>,
}

impl Blocking {
    /// The current time as the client takes it: microseconds since the program started.
    fn now(&self) -> Instant {
        let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Instant::from_micros(micros)
    }

    /// Carries out what the client asked for, in order: writes packets, keeps events.
    fn flush(&mut self) -> io::Result<()> {
        let mut out = BytesMut::new();
        while let Some(action) = self.client.poll_action() {
            match action {
                Action::Send(packet) => packet
                    .encode(self.client.protocol(), &mut out)
                    .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?,
                // A device that must not lose messages across a reset writes these to flash.
                Action::Persist(_) => {}
                Action::Event(e) => self.events.push(e),
                Action::Close => {
                    self.stream.write_all(&out)?;
                    out.clear();
                    let _ = self.stream.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        self.stream.write_all(&out)
    }

    /// Runs the loop until an event satisfies `done`, reading with a timeout set by the
    /// client's next deadline.
    fn until(&mut self, mut done: impl FnMut(&Event) -> bool) -> io::Result<Event> {
        let give_up = self.now() + PATIENCE;
        loop {
            self.flush()?;
            if let Some(i) = self.events.iter().position(&mut done) {
                return Ok(self.events.remove(i));
            }
            if let Some(Event::Disconnected(d)) = self
                .events
                .iter()
                .find(|e| matches!(e, Event::Disconnected(_)))
            {
                return Err(io::Error::new(
                    ErrorKind::ConnectionAborted,
                    format!("disconnected: {d:?}"),
                ));
            }
            let now = self.now();
            if now >= give_up {
                return Err(io::Error::new(ErrorKind::TimedOut, "no answer in time"));
            }
            let wake = self
                .client
                .poll_timeout()
                .map_or(give_up, |t| t.min(give_up));
            let wait = (wake - now).max(Duration::from_millis(1));
            self.stream.set_read_timeout(Some(wait))?;
            let mut buf = [0u8; 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.client.handle_closed(self.now());
                }
                Ok(n) => {
                    self.rx.extend_from_slice(&buf[..n]);
                    loop {
                        match self.client.decode(&mut self.rx) {
                            Ok(Some(packet)) => self.client.handle_packet(self.now(), packet),
                            Ok(None) => break,
                            Err(e) => {
                                self.client.handle_decode_error(self.now(), &e);
                                break;
                            }
                        }
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.client.handle_timeout(self.now());
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Where the clock starts: the one place this driver reads the system's time.
#[allow(clippy::disallowed_methods)]
fn clock_start() -> std::time::Instant {
    std::time::Instant::now()
}

/// Connects to `addr` as `client_id` under `version`, publishes one message at each QoS
/// to a topic it subscribes to, and returns the three messages as they came back (QoS and
/// payload), in the order they arrived.
pub fn round_trip(
    addr: &str,
    client_id: &'static str,
    version: ProtocolVersion,
) -> io::Result<Vec<(QoS, Vec<u8>)>> {
    let invalid =
        |e: &dyn std::fmt::Display| io::Error::new(ErrorKind::InvalidInput, e.to_string());
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let config = ClientConfig::new(version, MqttString::from_static(client_id));
    let mut b = Blocking {
        client: Client::new(config),
        stream,
        rx: BytesMut::new(),
        started: clock_start(),
        events: Vec::new(),
    };
    let now = b.now();
    b.client.connect(now).map_err(|e| invalid(&e))?;
    b.until(|e| matches!(e, Event::Connected(_) | Event::Disconnected(_)))
        .and_then(|e| match e {
            Event::Connected(_) => Ok(()),
            other => Err(io::Error::other(format!("not connected: {other:?}"))),
        })?;

    let filter = TopicFilter::from_static("blocking/#");
    let options = SubscriptionOptions::qos(QoS::ExactlyOnce);
    let now = b.now();
    b.client
        .subscribe(now, vec![(filter, options)], SubscribeProperties::default())
        .map_err(|e| invalid(&e))?;
    b.until(|e| matches!(e, Event::Subscribed(_)))?;

    for (qos, topic) in [
        (QoS::AtMostOnce, "blocking/0"),
        (QoS::AtLeastOnce, "blocking/1"),
        (QoS::ExactlyOnce, "blocking/2"),
    ] {
        let payload = format!("{client_id} at {qos:?}");
        let msg = Message::new(TopicName::from_static(topic), payload).with_qos(qos);
        let now = b.now();
        b.client.publish(now, msg).map_err(|e| invalid(&e))?;
    }
    let mut received = Vec::new();
    let mut acknowledged = 0;
    while received.len() < 3 || acknowledged < 2 {
        match b.until(|e| matches!(e, Event::Message(_) | Event::Published(_)))? {
            Event::Message(p) => received.push((p.qos(), p.payload.to_vec())),
            _ => acknowledged += 1,
        }
    }
    let now = b.now();
    b.client
        .disconnect(now, Disconnect::default())
        .map_err(|e| invalid(&e))?;
    b.flush()?;
    Ok(received)
}

#[allow(dead_code)] // a test runs `round_trip` on its own
fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1883".into());
    match round_trip(&addr, "blocking-example", ProtocolVersion::V5) {
        Ok(messages) => {
            for (qos, payload) in messages {
                println!("{qos:?}: {}", String::from_utf8_lossy(&payload));
            }
        }
        Err(e) => {
            eprintln!("blocking_client: {e}");
            std::process::exit(1);
        }
    }
}

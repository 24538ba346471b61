//! Sans-IO MQTT session state machines, built on [`mqtt_codec`].
//!
//! Nothing here performs I/O, spawns a task or reads a clock: a driver feeds in decoded
//! packets and the current time, and carries out the actions that come back. The same
//! machine therefore runs under tokio, in a blocking loop, or in a test with simulated
//! time.
//!
//! - [`client`]: the MQTT 3.1.1 / 5.0 client session ([`client::Client`]).
//! - [`time`]: the [`time::Instant`] every input takes, made from any monotonic clock (with
//!   std, [`time::Clock`] makes it from `std::time::Instant`).
//! - Shared by the client and the broker: [`store`] (write-ahead persistence and session
//!   snapshots) and [`event`] (how a connection ended). The building blocks behind them
//!   (which packet may arrive when, QoS 1/2 delivery state, packet identifiers, topic
//!   aliases, timers) are private.
//! - [`mqtt_codec`], re-exported: the packets the machines take and give.
//! - [`broker`]: the broker side.
//! - [`topic_tree`]: topic filters matched against topic names.
//!
//! A client publishing at QoS 1, with the server's side played by hand:
//!
//! ```
//! use core::time::Duration;
//! use mqtt_codec::{ConnAck, MqttString, Packet, ProtocolVersion, PubResponse, QoS, TopicName};
//! use mqtt_session::client::{Action, Client, ClientConfig, Event, Message};
//! use mqtt_session::time::Instant;
//!
//! // The driver's clock: here simulated time (with std, `time::Clock` reads the real one).
//! let now = Instant::ZERO;
//! let config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("sensor-1"));
//! let mut client = Client::new(config);
//!
//! client.connect(now)?;
//! let Some(Action::Send(Packet::Connect(_))) = client.poll_action() else { panic!() };
//! client.handle_packet(now, Packet::ConnAck(Box::new(ConnAck::default())));
//! // A driver carries out every action in order: store, tell the application, send.
//! let actions: Vec<Action> = core::iter::from_fn(|| client.poll_action()).collect();
//! assert!(matches!(actions.last(), Some(Action::Event(Event::Connected(_)))));
//!
//! let msg = Message::new(TopicName::from_static("sensors/temp"), "21.5").with_qos(QoS::AtLeastOnce);
//! let id = client.publish(now, msg)?.unwrap();
//! // Write-ahead: the message is handed to storage before it goes on the wire.
//! assert!(matches!(client.poll_action(), Some(Action::Persist(_))));
//! let Some(Action::Send(Packet::Publish(p))) = client.poll_action() else { panic!() };
//! assert_eq!(p.qos_pid.packet_id(), Some(id));
//!
//! client.handle_packet(now, Packet::PubAck(PubResponse::new(id)));
//! assert!(matches!(client.poll_action(), Some(Action::Persist(_)))); // forget it
//! let Some(Action::Event(Event::Published(done))) = client.poll_action() else { panic!() };
//! assert_eq!(done.packet_id, id);
//!
//! // Keep-alive: after 60 idle seconds the client pings.
//! assert_eq!(client.poll_timeout(), Some(now + Duration::from_secs(60)));
//! client.handle_timeout(now + Duration::from_secs(60));
//! assert_eq!(client.poll_action(), Some(Action::Send(Packet::PingReq)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

// The library is written against `core` and `alloc`, imported explicitly, so that it
// builds the same with and without std (unit tests have std's prelude); std adds
// `time::Clock` and a random hash key.
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod broker;
pub mod client;
mod collections;
#[cfg(feature = "tokio")]
pub mod driver;
pub mod event;
mod fit;
mod inflight;
mod packet_ids;
#[cfg(feature = "persist")]
pub mod persist;
mod rules;
#[cfg(feature = "tokio")]
pub mod server;

/// The README's Rust examples, compiled (and those not marked `no_run`, run) as doctests.
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
pub mod store;
pub mod time;
mod timer;
mod topic_alias;
pub mod topic_tree;

/// The codec this crate speaks through, so that a driver names one dependency.
pub use mqtt_codec;

/// A starting instant for unit tests, some way after the clock's origin.
#[cfg(test)]
pub(crate) fn test_epoch() -> time::Instant {
    time::Instant::from_secs(1_000)
}

//! Waiting for what the async client tells the application.
#![allow(dead_code)] // each test binary uses part of it

use mqtt_session::driver::{Events, Notification};
use mqtt_session::event::Disconnected;
use mqtt_session::mqtt_codec::Publish;

/// The next application message; the driver stopping first fails the test (rather than
/// spinning until its time limit).
pub async fn next_message(events: &mut Events) -> Publish {
    loop {
        match events.recv().await {
            Some(Notification::Message(m)) => return m,
            Some(_) => {}
            None => panic!("the driver stopped before a message came"),
        }
    }
}

/// The next end of a connection (a refused CONNECT included); the driver stopping first
/// fails the test.
pub async fn next_disconnection(events: &mut Events) -> Disconnected {
    loop {
        match events.recv().await {
            Some(Notification::Disconnected(d)) => return d,
            Some(_) => {}
            None => panic!("the driver stopped without a disconnection"),
        }
    }
}

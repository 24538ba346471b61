//! Runs the example client (`examples/client`, included by the test as `cli`) in-process
//! against a broker on 127.0.0.1: what its `sub` prints, and its `pub` and `sub` runs, each
//! bounded in time. Shared by the tests against real brokers.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqtt_codec::ProtocolVersion;

use crate::cli;

/// Every wait on the client ends after this long.
pub const WAIT: Duration = Duration::from_secs(10);

/// What a `sub` prints, shared with the test.
#[derive(Clone, Default)]
pub struct Output(Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Output {
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The client's arguments: `--port PORT --protocol PROTOCOL`, then `rest` split at spaces.
pub fn args(port: u16, protocol: &str, rest: &str) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "--port".into(),
        port.to_string(),
        "--protocol".into(),
        protocol.into(),
    ];
    v.extend(rest.split_whitespace().map(str::to_owned));
    v
}

/// Runs the example client to the end; returns the version its connection got.
pub async fn run(a: Vec<String>) -> ProtocolVersion {
    let mut sink = Output::default();
    tokio::time::timeout(WAIT, cli::run(&a, &mut sink, None))
        .await
        .expect("in time")
        .unwrap_or_else(|e| panic!("client {a:?}: {e}"))
}

/// A `sub` running in the background; it ends with the version its connection got.
pub type Running = tokio::task::JoinHandle<Result<ProtocolVersion, String>>;

/// Starts `sub` in the background and waits for its SUBACK.
pub async fn subscribe(a: Vec<String>) -> (Running, Output) {
    let out = Output::default();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut sink = out.clone();
    let task = tokio::spawn(async move { cli::run(&a, &mut sink, Some(tx)).await });
    tokio::time::timeout(WAIT, rx)
        .await
        .expect("SUBACK in time")
        .expect("subscribed");
    (task, out)
}

/// Waits for a background `sub` to end; returns the version its connection got.
pub async fn finish(task: Running) -> ProtocolVersion {
    tokio::time::timeout(WAIT, task)
        .await
        .expect("subscriber finishes in time")
        .unwrap()
        .unwrap()
}

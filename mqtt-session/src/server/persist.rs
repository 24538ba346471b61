//! Persistence in a directory: the hub's write-ahead operations go to a `BrokerStore` in
//! `DIR/broker.redb`, and nothing that depends on them leaves before they are committed.
//!
//! A turn of the hub (one input, under the lock) collects its operations and, from the
//! first operation on, the packets and closes that follow them, into a batch. The batch
//! goes to the store thread, which commits every batch waiting (one sync for all: group
//! commit), then carries out their sends in order. While any batch waits, later turns queue
//! behind it too, so no connection's packets overtake each other. A PUBACK, a PUBREC or a
//! CONNACK with Session Present is therefore never written before what it acknowledges is
//! on disk.
//!
//! The store counts intervals across a restart in wall-clock time, which this driver reads.
#![allow(clippy::disallowed_methods)]

// The crate is no_std underneath; this module has std.
use std::boxed::Box;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tracing::error;

use super::Failure;

use crate::broker::{BrokerSnapshot, StoreOp};
use crate::persist::BrokerStore;

/// How often an idle store notes that the broker is alive (a session connected at a crash
/// counts as disconnected from then).
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Something to carry out once the batch's operations are committed.
pub(crate) type Deferred = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Batch {
    ops: Vec<StoreOp>,
    then: Vec<Deferred>,
}

/// The store thread and the batch of the current turn.
pub(crate) struct Persistence {
    dir: PathBuf,
    tx: Option<mpsc::Sender<Batch>>,
    /// Batches handed to the store thread and not yet carried out.
    waiting: Arc<AtomicUsize>,
    batch: Batch,
    thread: Option<JoinHandle<()>>,
}

impl Persistence {
    /// Opens (or creates) the store in `dir`, and returns what it holds, counted at the
    /// wall-clock time of now. `window`: how long the store thread waits after a batch
    /// arrives for more to commit with it. Should the store fail later, `failed` says so
    /// and nothing more is committed or carried out: what was acknowledged is on disk, and
    /// nothing that waited for a commit is acknowledged.
    pub(crate) fn open(
        dir: &Path,
        window: Duration,
        failed: Arc<Failure>,
    ) -> Result<(Self, BrokerSnapshot), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let store = BrokerStore::open(dir.join("broker.redb")).map_err(|e| e.to_string())?;
        let snapshot = store
            .snapshot(SystemTime::now())
            .map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let thread = {
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name("store".into())
                .spawn(move || {
                    if let Err(e) = run(store, rx, waiting, window) {
                        error!("persistence failed, stopping: {e}");
                        failed.set(e.to_string());
                    }
                })
                .map_err(|e| e.to_string())?
        };
        let p = Self {
            dir: dir.to_path_buf(),
            tx: Some(tx),
            waiting,
            batch: Batch::default(),
            thread: Some(thread),
        };
        Ok((p, snapshot))
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// An operation of this turn.
    pub(crate) fn op(&mut self, op: StoreOp) {
        self.batch.ops.push(op);
    }

    /// Whether what the hub sends now must wait for a commit: this turn stored something,
    /// or an earlier batch is still waiting (and must not be overtaken).
    pub(crate) fn holds(&self) -> bool {
        !self.batch.ops.is_empty()
            || !self.batch.then.is_empty()
            || self.waiting.load(Ordering::Acquire) > 0
    }

    /// Carries out `f` after the commit of this turn's batch.
    pub(crate) fn defer(&mut self, f: Deferred) {
        self.batch.then.push(f);
    }

    /// The end of a turn: its batch goes to the store thread.
    pub(crate) fn flush(&mut self) {
        if self.batch.ops.is_empty() && self.batch.then.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        if let Some(tx) = &self.tx {
            self.waiting.fetch_add(1, Ordering::AcqRel);
            // The thread ends when this sender is dropped, or when the store fails (then
            // the batch, and what waits for it, is dropped: nothing more is acknowledged).
            let _ = tx.send(batch);
        }
    }

    /// Commits what is waiting and stops the store thread.
    pub(crate) fn finish(&mut self) {
        self.flush();
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Commits batches until the sender is dropped (`Ok`) or the store fails.
fn run(
    mut store: BrokerStore,
    rx: mpsc::Receiver<Batch>,
    waiting: Arc<AtomicUsize>,
    window: Duration,
) -> Result<(), crate::persist::StoreError> {
    loop {
        let first = match rx.recv_timeout(HEARTBEAT) {
            Ok(b) => b,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                store.heartbeat(SystemTime::now())?;
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        if !window.is_zero() {
            std::thread::sleep(window);
        }
        let mut batches = vec![first];
        batches.extend(rx.try_iter());
        let now = SystemTime::now();
        for b in &batches {
            for op in &b.ops {
                store.apply(op, now)?;
            }
        }
        store.commit(now)?;
        for b in batches {
            for f in b.then {
                f();
            }
            waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

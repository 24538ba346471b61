//! `--persist DIR`: the hub's write-ahead operations go to a `BrokerStore` in
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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use mqtt_session::broker::{BrokerSnapshot, StoreOp};
use mqtt_session::persist::BrokerStore;

/// How often an idle store notes that the broker is alive (a session connected at a crash
/// counts as disconnected from then).
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Something to carry out once the batch's operations are committed.
pub type Deferred = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Batch {
    ops: Vec<StoreOp>,
    then: Vec<Deferred>,
}

/// The store thread and the batch of the current turn.
pub struct Persistence {
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
    /// arrives for more to commit with it.
    pub fn open(dir: &Path, window: Duration) -> Result<(Self, BrokerSnapshot), String> {
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
                .spawn(move || run(store, rx, waiting, window))
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

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An operation of this turn.
    pub fn op(&mut self, op: StoreOp) {
        self.batch.ops.push(op);
    }

    /// Whether what the hub sends now must wait for a commit: this turn stored something,
    /// or an earlier batch is still waiting (and must not be overtaken).
    pub fn holds(&self) -> bool {
        !self.batch.ops.is_empty()
            || !self.batch.then.is_empty()
            || self.waiting.load(Ordering::Acquire) > 0
    }

    /// Carries out `f` after the commit of this turn's batch.
    pub fn defer(&mut self, f: Deferred) {
        self.batch.then.push(f);
    }

    /// The end of a turn: its batch goes to the store thread.
    pub fn flush(&mut self) {
        if self.batch.ops.is_empty() && self.batch.then.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        if let Some(tx) = &self.tx {
            self.waiting.fetch_add(1, Ordering::AcqRel);
            // The thread ends only when this sender is dropped, or exits the process.
            let _ = tx.send(batch);
        }
    }

    /// Commits what is waiting and stops the store thread.
    pub fn finish(&mut self) {
        self.flush();
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    mut store: BrokerStore,
    rx: mpsc::Receiver<Batch>,
    waiting: Arc<AtomicUsize>,
    window: Duration,
) {
    loop {
        let first = match rx.recv_timeout(HEARTBEAT) {
            Ok(b) => b,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = store.heartbeat(SystemTime::now()) {
                    fail(&e);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if !window.is_zero() {
            std::thread::sleep(window);
        }
        let mut batches = vec![first];
        batches.extend(rx.try_iter());
        let now = SystemTime::now();
        for b in &batches {
            for op in &b.ops {
                if let Err(e) = store.apply(op, now) {
                    fail(&e);
                }
            }
        }
        if let Err(e) = store.commit(now) {
            fail(&e);
        }
        for b in batches {
            for f in b.then {
                f();
            }
            waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The store failed: nothing more can be acknowledged, and what was committed is safe.
fn fail(e: &mqtt_session::persist::StoreError) -> ! {
    error!("persistence failed, stopping: {e}");
    std::process::exit(1);
}

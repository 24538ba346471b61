//! Crash-safe stores for the write-ahead operations the machines emit, on
//! [redb](https://docs.rs/redb), an embedded transactional key-value database in pure Rust
//! (copy-on-write B-trees, checksummed commits: a commit that returned survives a crash,
//! one that did not is not seen). Behind the `persist` feature; the machines themselves
//! never touch them.
//!
//! - [`BrokerStore`] carries out the broker's [`StoreOp`](crate::broker::StoreOp)s and hands
//!   back the [`BrokerSnapshot`](crate::broker::BrokerSnapshot) to restore a
//!   [`Hub`](crate::broker::Hub) from, with what was left of every interval when the broker
//!   stopped: it keeps the wall-clock time at which each message was stored and each
//!   session lost its connection.
//! - [`ClientStore`] carries out a client's [`SessionOp`](crate::store::SessionOp)s and
//!   hands back the [`SessionState`](crate::store::SessionState) to resume a
//!   [`Client`](crate::client::Client) from.
//!
//! Operations go into a transaction in progress ([`BrokerStore::apply`]); nothing is
//! durable before [`commit`](BrokerStore::commit), which writes them all with one sync. A
//! driver that must acknowledge nothing it could lose (a PUBACK, a PUBREC, a CONNACK with
//! Session Present) applies the operations of a turn, commits, and only then sends what
//! followed them: one commit serves every operation applied since the last (group commit).
//!
//! The file's format is versioned ([`FORMAT_VERSION`]); a file of another version, of the
//! other kind of store, or damaged, is an error on opening, never an empty start.
//!
//! ```
//! use std::time::SystemTime;
//! use mqtt_session::broker::{BrokerConfig, Hub, StoreOp};
//! use mqtt_session::mqtt_codec::MqttString;
//! use mqtt_session::persist::BrokerStore;
//! use mqtt_session::time::Instant;
//!
//! let dir = std::env::temp_dir().join(format!("persist-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("broker.redb");
//! let now = SystemTime::now();
//! {
//!     let mut store = BrokerStore::open(&path)?;
//!     let client_id = MqttString::from_static("sensor-1");
//!     store.apply(&StoreOp::PutSession { client_id, expiry_interval: 3600, username: None }, now)?;
//!     store.commit(now)?; // durable from here on
//! }
//! // After a restart (or a crash): the session is back, with its expiry still to run.
//! let store = BrokerStore::open(&path)?;
//! let snapshot = store.snapshot(now)?;
//! assert_eq!(snapshot.sessions.len(), 1);
//! let hub = Hub::restore(BrokerConfig::default(), snapshot, Instant::ZERO)?;
//! assert_eq!(hub.session_count(), 1);
//! # drop(store);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod broker;
mod client;
mod record;

use alloc::string::String;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

pub use broker::BrokerStore;
pub use client::ClientStore;

/// The version of the file format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Why a store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (an I/O error, a full disk, a file that is not a database or
    /// whose checksums do not match).
    #[error("{path}: {source}")]
    Database {
        /// The store's file.
        path: PathBuf,
        /// What the database reported.
        #[source]
        source: redb::Error,
    },
    /// The file was written in another version of the format.
    #[error("{path}: store format version {found}; this build reads version {FORMAT_VERSION}")]
    Version {
        /// The store's file.
        path: PathBuf,
        /// The version found in it.
        found: u32,
    },
    /// The file holds the other kind of store (a client's where a broker's was expected).
    #[error("{path}: a {found} store, where a {expected} store was expected")]
    Kind {
        /// The store's file.
        path: PathBuf,
        /// What the file holds.
        found: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A record could not be read back, or an operation could not be written.
    #[error("{path}: {table}: {detail}")]
    Damaged {
        /// The store's file.
        path: PathBuf,
        /// The table of the record.
        table: &'static str,
        /// What was wrong with it.
        detail: String,
    },
}

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The database file, with what every error names.
struct File {
    path: PathBuf,
    db: Database,
}

impl File {
    /// Opens (or creates) the database at `path` holding a store of `kind`, with the tables
    /// `init` creates.
    fn open(
        path: &Path,
        kind: &'static str,
        init: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::TableError>,
    ) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        if !path.exists() {
            Self::create(&path, kind, init)?;
        }
        let db = Database::open(&path).map_err(|e| StoreError::Database {
            path: path.clone(),
            source: e.into(),
        })?;
        let file = Self { path, db };
        let read = file.db.begin_read().map_err(|e| file.err(e))?;
        let found = match read.open_table(META) {
            Ok(t) => {
                let version = t.get("format").map_err(|e| file.err(e))?;
                let found_kind = t.get("kind").map_err(|e| file.err(e))?;
                match (version, found_kind) {
                    (Some(v), Some(k)) => Some((v.value().to_vec(), k.value().to_vec())),
                    _ => return Err(file.damaged("meta", "no format version")),
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(file.err(e)),
        };
        drop(read);
        match found {
            Some((version, found_kind)) => {
                let version = <[u8; 4]>::try_from(version.as_slice())
                    .map(u32::from_be_bytes)
                    .map_err(|_| file.damaged("meta", "bad format version"))?;
                if version != FORMAT_VERSION {
                    return Err(StoreError::Version {
                        path: file.path,
                        found: version,
                    });
                }
                if found_kind != kind.as_bytes() {
                    return Err(StoreError::Kind {
                        found: String::from_utf8_lossy(&found_kind).into_owned(),
                        path: file.path,
                        expected: kind,
                    });
                }
            }
            // A database, but not one this module made.
            None => return Err(file.damaged("meta", "not a store: no format version")),
        }
        Ok(file)
    }

    /// Creates the store at `path` whole or not at all: built and committed under a
    /// temporary name beside it, then renamed into place (a process killed while creating
    /// the file would otherwise leave a partial file that is not a database). A temporary
    /// file left by such a kill is replaced.
    fn create(
        path: &Path,
        kind: &'static str,
        init: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::TableError>,
    ) -> Result<(), StoreError> {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".creating");
        let tmp = path.with_file_name(name);
        let io = |e: std::io::Error| StoreError::Database {
            path: path.to_path_buf(),
            source: redb::StorageError::Io(e).into(),
        };
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        {
            let db = Database::create(&tmp).map_err(|e| StoreError::Database {
                path: tmp.clone(),
                source: e.into(),
            })?;
            let file = Self {
                path: tmp.clone(),
                db,
            };
            let w = file.db.begin_write().map_err(|e| file.err(e))?;
            {
                let mut meta = w.open_table(META).map_err(|e| file.err(e))?;
                meta.insert("format", FORMAT_VERSION.to_be_bytes().as_slice())
                    .map_err(|e| file.err(e))?;
                meta.insert("kind", kind.as_bytes())
                    .map_err(|e| file.err(e))?;
            }
            init(&w).map_err(|e| file.err(e))?;
            w.commit().map_err(|e| file.err(e))?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        // The rename itself is made durable with the directory.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }

    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Database {
            path: self.path.clone(),
            source: e.into(),
        }
    }

    fn damaged(&self, table: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::Damaged {
            path: self.path.clone(),
            table,
            detail: detail.into(),
        }
    }
}

/// The file with its transaction in progress: what both stores do with operations.
struct Store {
    file: File,
    txn: Option<WriteTransaction>,
    pending: usize,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.file.path)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Store {
    fn new(file: File) -> Self {
        Self {
            file,
            txn: None,
            pending: 0,
        }
    }

    /// Begins a transaction if none is in progress.
    fn begin(&mut self) -> Result<(), StoreError> {
        if self.txn.is_none() {
            let t = self.file.db.begin_write().map_err(|e| self.file.err(e))?;
            self.txn = Some(t);
        }
        Ok(())
    }

    /// Adds one operation, written by `write`, to the transaction in progress. After an
    /// error the transaction is dropped: the file holds what the last commit wrote.
    fn apply(
        &mut self,
        write: impl FnOnce(&File, &WriteTransaction) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.begin()?;
        let result = match &self.txn {
            Some(txn) => write(&self.file, txn),
            None => Ok(()),
        };
        if result.is_err() {
            self.txn = None;
            self.pending = 0;
        } else {
            self.pending += 1;
        }
        result
    }

    /// Commits the transaction in progress, after `last` adds to it what goes with every
    /// commit; nothing when there is none.
    fn commit(
        &mut self,
        last: impl FnOnce(&File, &WriteTransaction) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.pending = 0;
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        last(&self.file, &txn)?;
        txn.commit().map_err(|e| self.file.err(e))
    }
}

/// Milliseconds since the Unix epoch (0 for a clock set before it).
fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whole seconds from `since` to `now` (milliseconds since the epoch); none if the clock
/// went back.
fn secs_between(since: u64, now: u64) -> u32 {
    u32::try_from(now.saturating_sub(since) / 1000).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("mqtt-store-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_newer_format_is_refused_not_emptied() {
        let dir = TempDir::new("version");
        let path = dir.0.join("b.redb");
        drop(BrokerStore::open(&path).unwrap());
        {
            let db = Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            w.open_table(META)
                .unwrap()
                .insert("format", 2u32.to_be_bytes().as_slice())
                .unwrap();
            w.commit().unwrap();
        }
        let err = BrokerStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Version { found: 2, .. }), "{err}");
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn the_other_kind_of_store_is_refused() {
        let dir = TempDir::new("kind");
        let path = dir.0.join("c.redb");
        drop(ClientStore::open(&path).unwrap());
        let err = BrokerStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Kind { .. }), "{err}");
        assert!(ClientStore::open(&path).is_ok());
    }

    #[test]
    fn a_file_that_is_not_a_store_is_refused() {
        let dir = TempDir::new("garbage");
        let path = dir.0.join("g.redb");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let err = BrokerStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Database { .. }), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            vec![0x5a; 8192],
            "left as it was"
        );
    }

    /// A file is created whole or not at all: what a process killed while creating it left
    /// (a partial file under the temporary name) is replaced, and the store's own name
    /// appears only once it is a store.
    #[test]
    fn creation_leaves_no_partial_file() {
        let dir = TempDir::new("create");
        let path = dir.0.join("c.redb");
        let tmp = dir.0.join("c.redb.creating");
        std::fs::write(&tmp, b"half a header").unwrap();
        drop(ClientStore::open(&path).unwrap());
        assert!(!tmp.exists());
        assert!(
            ClientStore::open(&path)
                .unwrap()
                .state()
                .unwrap()
                .outgoing
                .is_empty()
        );
    }

    /// A database this module did not make is not taken for an empty store.
    #[test]
    fn a_foreign_database_is_refused() {
        let dir = TempDir::new("foreign");
        let path = dir.0.join("f.redb");
        drop(Database::create(&path).unwrap());
        let err = BrokerStore::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::Damaged { table: "meta", .. }),
            "{err}"
        );
    }

    #[test]
    fn a_damaged_record_is_an_error_naming_its_table() {
        let dir = TempDir::new("damaged");
        let path = dir.0.join("d.redb");
        drop(BrokerStore::open(&path).unwrap());
        {
            let db = Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            w.open_table(TableDefinition::<&str, &[u8]>::new("retained"))
                .unwrap()
                .insert("t", [0u8, 1, 2].as_slice())
                .unwrap();
            w.commit().unwrap();
        }
        let store = BrokerStore::open(&path).unwrap();
        let err = store.snapshot(UNIX_EPOCH).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Damaged {
                    table: "retained",
                    ..
                }
            ),
            "{err}"
        );
    }
}

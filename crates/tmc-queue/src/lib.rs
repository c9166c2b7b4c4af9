//! Durable SQLite stores for the data path.
//!
//! - [`RelayQueue`]: the relay's store-and-forward queue, MQTT → radio. A message is acknowledged to the broker
//!   only after [`RelayQueue::push`] (or [`RelayQueue::push_batch`]) returned, and deleted only after the
//!   gateway acknowledged the frame that carried it ([`RelayQueue::ack`]).
//! - [`Inbox`]: the receiver's exactly-once journal. The envelope's replay state (highest counter and window per
//!   sender) and the readings of a token are committed in one SQLite transaction, and every output (stdout, the
//!   JSON-lines file, the upstream MQTT outbox) reads the journal through its own persisted cursor.
//!
//! # Durability: WAL with `synchronous=FULL`
//! Both stores run SQLite in WAL mode with `synchronous=FULL`: every commit fsyncs the write-ahead log before
//! [`RelayQueue::push`] or [`Inbox::commit`] returns.
//!
//! With `synchronous=NORMAL`, WAL mode stays consistent and survives a process crash (`kill -9`: the WAL is in
//! the page cache, the kernel writes it), but a *power loss* can roll back the last transactions before the
//! next checkpoint. That is exactly the failure that matters here: a Pi on a mast loses power, and the relay
//! has already acknowledged those messages to mosquitto (which then forgets them) or the receiver has already
//! sent the radio ACK (so the relay deletes them). NORMAL would turn "acknowledged" into "maybe". FULL costs one
//! fsync per transaction; the relay amortises it by storing the messages that arrived together in one
//! transaction ([`RelayQueue::push_batch`]) and acknowledging them to the broker after the commit, which keeps
//! ingest far above what LoRa can carry (see `benches/ingest.rs`).
//!
//! Power-loss semantics, stated precisely: after `push`/`push_batch`/`ack`/`stage`/`commit` returns, the change
//! survives a crash or power loss *if the storage honours flush requests* (SD cards with a volatile write cache
//! that ignore flushes can lose it: use industrial cards or a UPS where that matters). A transaction that had
//! not returned is either entirely present or entirely absent after the restart.
//!
//! # One writer per file
//! Each store takes an advisory lock on `<file>.lock` while open, so two relays (or two receivers) never share
//! a store; [`QueueError::Locked`] says which file. Read-only observers (`tmc-relay status`) use
//! [`RelayQueue::status`], which takes no lock and never writes.

mod inbox;
mod relay;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

pub use inbox::{legacy_sender, Committed, Cursor, Inbox, Record, LEGACY_SENDER_BASE};
pub use relay::{
    delivery_mark, DeliveryMark, Entry, EntryId, FullPolicy, NewEntry, QueueStatus, RelayQueue,
    Staged, REMEMBERED_DELIVERIES,
};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: in use by another process (lock {lock} is held)")]
    Locked { path: String, lock: String },
    #[error("queue is full ({capacity} entries): not stored, do not acknowledge it")]
    Full { capacity: u64 },
    #[error("entry {0} cannot be staged: it does not exist or already belongs to a token")]
    NotStageable(EntryId),
    #[error("{path}: stored state is corrupt: {message}")]
    Corrupt { path: String, message: String },
    #[error("{path}: schema version {found} is newer than this program understands ({supported})")]
    Schema {
        path: String,
        found: i64,
        supported: i64,
    },
}

/// Opens (creating if needed) a store file with the pragmas every store uses, under an exclusive lock.
pub(crate) struct Db {
    pub(crate) conn: Connection,
    pub(crate) path: String,
    _lock: File,
}

impl Db {
    pub(crate) fn open(path: &Path, schema: &str, version: i64) -> Result<Db, QueueError> {
        let shown = path.display().to_string();
        let lock_path = lock_path(path);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| QueueError::Io {
                path: lock_path.display().to_string(),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(QueueError::Locked {
                    path: shown,
                    lock: lock_path.display().to_string(),
                })
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(QueueError::Io {
                    path: lock_path.display().to_string(),
                    source,
                })
            }
        }
        let conn = Connection::open(path).map_err(sql(&shown))?;
        let db = Db {
            conn,
            path: shown,
            _lock: lock,
        };
        db.conn
            .busy_timeout(Duration::from_secs(5))
            .map_err(db.err())?;
        // journal_mode returns a row; pragma_update would refuse that.
        let mode: String = db
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(db.err())?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(QueueError::Corrupt {
                path: db.path.clone(),
                message: format!("cannot switch to WAL mode (journal_mode is {mode})"),
            });
        }
        db.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(db.err())?;
        let found: i64 = db
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db.err())?;
        if found > version {
            return Err(QueueError::Schema {
                path: db.path.clone(),
                found,
                supported: version,
            });
        }
        db.conn.execute_batch(schema).map_err(db.err())?;
        db.conn
            .pragma_update(None, "user_version", version)
            .map_err(db.err())?;
        Ok(db)
    }

    pub(crate) fn err(&self) -> impl Fn(rusqlite::Error) -> QueueError + '_ {
        move |source| QueueError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

pub(crate) fn sql(path: &str) -> impl Fn(rusqlite::Error) -> QueueError + '_ {
    move |source| QueueError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// SQLite integers are i64; times and counters are u64 on our side. The bit pattern round-trips.
pub(crate) fn to_sql(v: u64) -> i64 {
    v.cast_signed()
}

pub(crate) fn from_sql(v: i64) -> u64 {
    v.cast_unsigned()
}

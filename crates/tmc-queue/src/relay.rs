//! The relay's queue: MQTT messages waiting for the radio.
//!
//! # Life of an entry
//! 1. `push` (or `push_batch`): stored durably; only now may the MQTT message be acknowledged to the broker.
//! 2. `peek_batch`: the sender reads the oldest entries that no token carries yet, and seals some of them.
//! 3. `stage(ids, token)`: the sealed token is stored with its entries *before* it is first put on air.
//! 4. `ack(ids)`: after the gateway's radio ACK, the entries (and their token) are deleted.
//!
//! Staging is what makes delivery exactly-once across relay crashes: after a restart the sender first resends
//! every [`staged`](RelayQueue::staged) token byte for byte. The token keeps its (sender, counter), so a gateway
//! that had already received it refuses the copy as a replay (and acknowledges it) instead of outputting the
//! readings a second time, which would happen if the relay re-sealed them under a new counter.
//!
//! # When the queue is full
//! [`FullPolicy::Refuse`] (the default) is back-pressure: `push` fails with [`QueueError::Full`], the relay does
//! not acknowledge the MQTT message, and the broker keeps it (QoS 1, persistent session) and stops sending once
//! the client's receive maximum of unacknowledged messages is reached. Nothing the broker handed over and got
//! an acknowledgement for is ever lost by the relay; the relay retries the refused messages as the radio drains
//! the queue. Refusals are counted ([`RelayQueue::refused`], in memory: a refused message was not lost).
//!
//! [`FullPolicy::DropOldest`] is for sites that prefer fresh readings to complete history: the oldest entry
//! that no token carries is deleted to make room, and counted in a persisted [`RelayQueue::dropped`] counter.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::{from_sql, now_ms, sql, to_sql, Db, QueueError};

/// An entry's id: increasing, never reused (SQLite AUTOINCREMENT), so a late ack cannot hit a newer entry.
pub type EntryId = i64;

const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tokens (
    tid   INTEGER PRIMARY KEY AUTOINCREMENT,
    token BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topic       TEXT    NOT NULL,
    time        INTEGER NOT NULL,
    payload     BLOB    NOT NULL,
    enqueued_ms INTEGER NOT NULL,
    token       INTEGER REFERENCES tokens(tid)
);
CREATE INDEX IF NOT EXISTS entries_by_token ON entries(token) WHERE token IS NOT NULL;
CREATE TABLE IF NOT EXISTS deliveries (
    mark INTEGER PRIMARY KEY,
    seq  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_seq ON deliveries(seq);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// Identifies a stored message so that a copy can be recognised: a digest of topic and payload
/// ([`delivery_mark`]). A broker resends (DUP flag) the QoS 1 messages it has no PUBACK for when the session
/// resumes, so a relay killed between storing a message and acknowledging it gets that message again; a sensor
/// re-publishes a reading whose PUBACK a broker restart swallowed. Neither copy may be queued twice.
pub type DeliveryMark = u64;

/// How many delivery marks the queue keeps: far more than any receive maximum the broker may have in flight.
pub const REMEMBERED_DELIVERIES: i64 = 65_536;

/// The mark of a message: 64 bits of SHA-256 over topic and payload.
pub fn delivery_mark(topic: &str, payload: &[u8]) -> DeliveryMark {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update((topic.len() as u64).to_be_bytes());
    hash.update(topic.as_bytes());
    hash.update(payload);
    let digest = hash.finalize();
    let mut mark = [0u8; 8];
    mark.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(mark)
}

/// What to do with a push when the queue holds `capacity` entries (`[queue] when_full` in `relay.toml`).
pub use tmc_config::FullPolicy;

/// A message to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEntry<'a> {
    pub topic: &'a str,
    /// Time of the reading, Unix seconds.
    pub time: u64,
    pub payload: &'a [u8],
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: EntryId,
    pub topic: String,
    pub time: u64,
    pub payload: Vec<u8>,
    /// When it was stored, Unix milliseconds.
    pub enqueued_ms: u64,
}

/// A sealed token stored with the entries it carries, waiting for the radio ACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    pub token: Vec<u8>,
    /// Its entries, oldest first.
    pub ids: Vec<EntryId>,
}

/// A snapshot for `tmc-relay status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStatus {
    /// Entries stored (staged or not).
    pub len: u64,
    /// Entries carried by staged tokens.
    pub staged: u64,
    /// When the oldest entry was stored, Unix milliseconds.
    pub oldest_enqueued_ms: Option<u64>,
    /// Entries dropped by [`FullPolicy::DropOldest`] since the queue was created.
    pub dropped: u64,
}

struct Inner {
    db: Db,
    len: u64,
    refused: u64,
}

/// The relay's durable queue. `Send + Sync`: share it between the MQTT and radio threads with an `Arc`.
pub struct RelayQueue {
    inner: Mutex<Inner>,
    capacity: u64,
    policy: FullPolicy,
}

impl RelayQueue {
    /// Opens or creates the queue at `path`, holding at most `capacity` entries (≥ 1).
    pub fn open(path: &Path, capacity: u64, policy: FullPolicy) -> Result<Self, QueueError> {
        let db = Db::open(path, SCHEMA, SCHEMA_VERSION)?;
        let len: i64 = db
            .conn
            .query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
            .map_err(db.err())?;
        Ok(RelayQueue {
            inner: Mutex::new(Inner {
                db,
                len: from_sql(len),
                refused: 0,
            }),
            capacity: capacity.max(1),
            policy,
        })
    }

    /// Reads the state of a queue another process has open, without locking or writing.
    pub fn status(path: &Path) -> Result<QueueStatus, QueueError> {
        let shown = path.display().to_string();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql(&shown))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(sql(&shown))?;
        read_status(&conn).map_err(sql(&shown))
    }

    /// The configured bound.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The configured policy when full.
    pub fn policy(&self) -> FullPolicy {
        self.policy
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-done transaction behind (it rolls back on drop),
        // so the data behind a poisoned lock is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores one message; durable when this returns. Refused with [`QueueError::Full`] under
    /// [`FullPolicy::Refuse`] when the queue is full.
    pub fn push(&self, topic: &str, time: u64, payload: &[u8]) -> Result<EntryId, QueueError> {
        let ids = self.push_batch(&[NewEntry {
            topic,
            time,
            payload,
        }])?;
        ids.first().copied().ok_or(QueueError::Full {
            capacity: self.capacity,
        })
    }

    /// Stores messages in one transaction (one fsync); durable when this returns. Returns the ids of the
    /// messages stored, in order: a prefix of `entries`. Under [`FullPolicy::Refuse`] the prefix stops where the
    /// queue is full (acknowledge only that many to the broker); under [`FullPolicy::DropOldest`] it is shorter
    /// only when every stored entry is staged.
    pub fn push_batch(&self, entries: &[NewEntry<'_>]) -> Result<Vec<EntryId>, QueueError> {
        self.push_batch_marked(entries, &[])
    }

    /// [`push_batch`](Self::push_batch) that also remembers a [`DeliveryMark`] per stored entry (`marks[i]`
    /// for `entries[i]`; missing marks are not remembered), in the same transaction. The last
    /// [`REMEMBERED_DELIVERIES`] marks are kept, whether or not their entries are still queued.
    pub fn push_batch_marked(
        &self,
        entries: &[NewEntry<'_>],
        marks: &[DeliveryMark],
    ) -> Result<Vec<EntryId>, QueueError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let now = to_sql(now_ms());
        let mut len = inner.len;
        let mut dropped = 0u64;
        let mut ids = Vec::with_capacity(entries.len());
        let tx = inner
            .db
            .conn
            .unchecked_transaction()
            .map_err(inner.db.err())?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO entries (topic, time, payload, enqueued_ms) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(inner.db.err())?;
            for e in entries {
                if len >= self.capacity {
                    if self.policy == FullPolicy::Refuse {
                        break;
                    }
                    let victim: Option<i64> = tx
                        .query_row(
                            "SELECT id FROM entries WHERE token IS NULL ORDER BY id LIMIT 1",
                            [],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(inner.db.err())?;
                    let Some(victim) = victim else { break };
                    tx.execute("DELETE FROM entries WHERE id = ?1", [victim])
                        .map_err(inner.db.err())?;
                    len -= 1;
                    dropped += 1;
                }
                insert
                    .execute(params![e.topic, to_sql(e.time), e.payload, now])
                    .map_err(inner.db.err())?;
                let id = tx.last_insert_rowid();
                if let Some(mark) = marks.get(ids.len()) {
                    tx.execute(
                        "INSERT INTO deliveries (mark, seq) VALUES (?1, ?2)
                         ON CONFLICT(mark) DO UPDATE SET seq = excluded.seq",
                        params![to_sql(*mark), id],
                    )
                    .map_err(inner.db.err())?;
                }
                ids.push(id);
                len += 1;
            }
        }
        if !marks.is_empty() {
            tx.execute(
                "DELETE FROM deliveries WHERE seq <= (SELECT MAX(seq) FROM deliveries) - ?1",
                [REMEMBERED_DELIVERIES],
            )
            .map_err(inner.db.err())?;
        }
        if dropped > 0 {
            tx.execute(
                "INSERT INTO counters (name, value) VALUES ('dropped', ?1)
                 ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                [to_sql(dropped)],
            )
            .map_err(inner.db.err())?;
        }
        tx.commit().map_err(inner.db.err())?;
        inner.len = len;
        inner.refused += (entries.len() - ids.len()) as u64;
        Ok(ids)
    }

    /// Whether a message with this mark was stored (among the last [`REMEMBERED_DELIVERIES`]).
    pub fn remembers(&self, mark: DeliveryMark) -> Result<bool, QueueError> {
        let guard = self.lock();
        guard
            .db
            .conn
            .query_row(
                "SELECT 1 FROM deliveries WHERE mark = ?1",
                [to_sql(mark)],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(guard.db.err())
    }

    /// Up to `max` of the oldest entries that no staged token carries, oldest first. Changes nothing.
    pub fn peek_batch(&self, max: usize) -> Result<Vec<Entry>, QueueError> {
        let inner = self.lock();
        let mut stmt = inner
            .db
            .conn
            .prepare_cached(
                "SELECT id, topic, time, payload, enqueued_ms FROM entries
                 WHERE token IS NULL ORDER BY id LIMIT ?1",
            )
            .map_err(inner.db.err())?;
        let rows = stmt
            .query_map([i64::try_from(max).unwrap_or(i64::MAX)], |r| {
                Ok(Entry {
                    id: r.get(0)?,
                    topic: r.get(1)?,
                    time: from_sql(r.get(2)?),
                    payload: r.get(3)?,
                    enqueued_ms: from_sql(r.get(4)?),
                })
            })
            .map_err(inner.db.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(inner.db.err())
    }

    /// Stores the sealed `token` as carrying `ids`, durably, before it is put on air. Fails without changing
    /// anything if an id is unknown or already staged.
    pub fn stage(&self, ids: &[EntryId], token: &[u8]) -> Result<(), QueueError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let tx = inner
            .db
            .conn
            .unchecked_transaction()
            .map_err(inner.db.err())?;
        tx.execute("INSERT INTO tokens (token) VALUES (?1)", [token])
            .map_err(inner.db.err())?;
        let tid = tx.last_insert_rowid();
        {
            let mut mark = tx
                .prepare_cached("UPDATE entries SET token = ?1 WHERE id = ?2 AND token IS NULL")
                .map_err(inner.db.err())?;
            for &id in ids {
                if mark.execute([tid, id]).map_err(inner.db.err())? != 1 {
                    return Err(QueueError::NotStageable(id));
                }
            }
        }
        tx.commit().map_err(inner.db.err())
    }

    /// Tokens staged and not yet acknowledged, oldest first: resend these, unchanged, before anything new.
    pub fn staged(&self) -> Result<Vec<Staged>, QueueError> {
        let inner = self.lock();
        let conn = &inner.db.conn;
        let mut tokens = conn
            .prepare_cached("SELECT tid, token FROM tokens ORDER BY tid")
            .map_err(inner.db.err())?;
        let mut ids = conn
            .prepare_cached("SELECT id FROM entries WHERE token = ?1 ORDER BY id")
            .map_err(inner.db.err())?;
        let rows = tokens
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(inner.db.err())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(inner.db.err())?;
        let mut out = Vec::with_capacity(rows.len());
        for (tid, token) in rows {
            let ids = ids
                .query_map([tid], |r| r.get(0))
                .map_err(inner.db.err())?
                .collect::<Result<Vec<EntryId>, _>>()
                .map_err(inner.db.err())?;
            out.push(Staged { token, ids });
        }
        Ok(out)
    }

    /// Deletes `ids` (after the radio ACK), and every staged token left without entries. Unknown ids are
    /// ignored (already acknowledged, or dropped). Returns how many entries were deleted.
    pub fn ack(&self, ids: &[EntryId]) -> Result<u64, QueueError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let tx = inner
            .db
            .conn
            .unchecked_transaction()
            .map_err(inner.db.err())?;
        let mut removed = 0u64;
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM entries WHERE id = ?1")
                .map_err(inner.db.err())?;
            for &id in ids {
                removed += delete.execute([id]).map_err(inner.db.err())? as u64;
            }
        }
        tx.execute(
            "DELETE FROM tokens WHERE tid NOT IN (SELECT token FROM entries WHERE token IS NOT NULL)",
            [],
        )
        .map_err(inner.db.err())?;
        tx.commit().map_err(inner.db.err())?;
        inner.len -= removed.min(inner.len);
        Ok(removed)
    }

    /// Entries stored, staged or not.
    pub fn len(&self) -> u64 {
        self.lock().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long the oldest entry has waited, by the system clock (zero if the clock went back).
    pub fn oldest_age(&self) -> Result<Option<Duration>, QueueError> {
        Ok(self
            .oldest_enqueued_ms()?
            .map(|t| Duration::from_millis(now_ms().saturating_sub(t))))
    }

    /// When the oldest entry was stored, Unix milliseconds.
    pub fn oldest_enqueued_ms(&self) -> Result<Option<u64>, QueueError> {
        let inner = self.lock();
        oldest(&inner.db.conn).map_err(inner.db.err())
    }

    /// Entries dropped by [`FullPolicy::DropOldest`] over the queue's life (persisted).
    pub fn dropped(&self) -> Result<u64, QueueError> {
        let inner = self.lock();
        dropped(&inner.db.conn).map_err(inner.db.err())
    }

    /// Messages refused because the queue was full, since this handle was opened.
    pub fn refused(&self) -> u64 {
        self.lock().refused
    }

    /// A status snapshot (as [`RelayQueue::status`] gives another process).
    pub fn snapshot(&self) -> Result<QueueStatus, QueueError> {
        let inner = self.lock();
        read_status(&inner.db.conn).map_err(inner.db.err())
    }
}

fn oldest(conn: &Connection) -> rusqlite::Result<Option<u64>> {
    conn.query_row(
        "SELECT enqueued_ms FROM entries ORDER BY id LIMIT 1",
        [],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|t| t.map(from_sql))
}

fn dropped(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT value FROM counters WHERE name = 'dropped'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|v| v.map_or(0, from_sql))
}

fn read_status(conn: &Connection) -> rusqlite::Result<QueueStatus> {
    // One read transaction, so the numbers agree with each other.
    conn.execute_batch("BEGIN")?;
    let result = (|| {
        let len: i64 = conn.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))?;
        let staged: i64 = conn.query_row(
            "SELECT COUNT(*) FROM entries WHERE token IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(QueueStatus {
            len: from_sql(len),
            staged: from_sql(staged),
            oldest_enqueued_ms: oldest(conn)?,
            dropped: dropped(conn)?,
        })
    })();
    conn.execute_batch("COMMIT")?;
    result
}

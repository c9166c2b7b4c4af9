//! The receiver's exactly-once journal and per-output cursors (the upstream MQTT outbox is one of them).
//!
//! # Exactly once
//! A token is identified by (sender, counter): the relay never seals two tokens with one counter, and it resends
//! a token it is unsure about byte for byte (see the relay queue's staging). [`Inbox::commit`] writes, in one
//! SQLite transaction, the token's readings to the journal *and* the envelope's [`ReplayGuard`] with the token's
//! counter accepted. After any crash, either both are stored or neither is: a token is in the journal exactly
//! when the persisted guard knows its counter, so a copy received later (the relay did not get our radio ACK, or
//! resent after its own restart) is recognised as [`Committed::Duplicate`] and not stored again.
//!
//! The guard is also checked here, against the committed copy, before anything is written: the receiver builds
//! its `tmc_envelope::Opener` from [`Inbox::replay_guard`] at start, and if a commit fails it must rebuild the
//! opener from the inbox again (the opener's in-memory guard already moved on).
//!
//! # Outputs
//! Each output (say `stdout`, `file`, `mqtt`) has a cursor: the last journal sequence number it has delivered,
//! and a free `mark` committed with it. An output reads [`Inbox::pending`] records, delivers them, then calls
//! [`Inbox::delivered`]. Records that every output has delivered are deleted.
//! - Upstream MQTT (the durable outbox): publish QoS 1, advance the cursor over the prefix whose PUBACKs came
//!   back. An unreachable upstream only lets the journal grow; nothing is lost. After a crash the records after
//!   the cursor are published again: at-least-once towards the broker, with the (sender, counter, index) in the
//!   record for upstream consumers that de-duplicate.
//! - JSON-lines file: write, fsync, then `delivered(seq, mark = file length)`. At start, truncate the file to the
//!   cursor's mark and continue from the cursor: lines written after the last cursor commit are rewritten once,
//!   so the file holds each reading exactly once even across crashes.
//! - stdout: at-least-once across a crash between the write and the cursor commit (a pipe cannot be rewound).
//!
//! # Legacy frames
//! The existing deployment's frames ([`Inbox::commit_legacy`]) carry no sender id and no counter, so nothing can
//! tell a copy from a new reading: they are journalled as they come, without replay protection. They get a sender
//! id of their own, [`legacy_sender`]`(node)` = `0x8000_0000 | node`, so that they never collide with a secure
//! sender's (sender, counter, index) (secure sender ids are expected below `0x8000_0000`), and a counter that the
//! inbox keeps per legacy sender (it survives the pruning of the journal, so upstream consumers that de-duplicate
//! on (sender, counter, index) never see a number twice).

use std::path::Path;

use rusqlite::{params, OptionalExtension, Transaction};
use tmc_envelope::{Encoding, Opened, Reading, ReplayError, ReplayGuard};

use crate::{from_sql, now_ms, to_sql, Db, QueueError};

const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS replay (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    sender      INTEGER NOT NULL,
    counter     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    kid         INTEGER NOT NULL,
    encoding    TEXT    NOT NULL,
    topic       TEXT    NOT NULL,
    time        INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    received_ms INTEGER NOT NULL,
    UNIQUE (sender, counter, idx)
);
CREATE TABLE IF NOT EXISTS cursors (
    output TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL,
    mark   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS legacy (
    sender INTEGER PRIMARY KEY,
    next   INTEGER NOT NULL
);
";

/// The `encoding` column of a legacy record.
const LEGACY_ENCODING: &str = "legacy";

/// Sender ids from here up belong to legacy frames ([`legacy_sender`]).
pub const LEGACY_SENDER_BASE: u32 = 0x8000_0000;

/// The journal's sender id for legacy frames from radio node `node`.
pub fn legacy_sender(node: u8) -> u32 {
    LEGACY_SENDER_BASE | u32::from(node)
}

/// One reading in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Journal sequence number: increasing, never reused.
    pub seq: u64,
    pub sender: u32,
    pub counter: u32,
    /// Position of the reading in its token.
    pub index: u32,
    /// Key id (0 for a legacy record).
    pub kid: u8,
    /// How the token was on air (a legacy frame is an ASCII JWT: [`Encoding::Text`]).
    pub encoding: Encoding,
    /// A legacy frame ([`Inbox::commit_legacy`]): no authenticated sender, no replay protection.
    pub legacy: bool,
    pub topic: String,
    pub time: u64,
    pub data: Vec<u8>,
    /// When the token was committed, Unix milliseconds.
    pub received_ms: u64,
}

/// What [`Inbox::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// New token: its readings are journal records `first..=last` (`first > last` for a token without
    /// readings, which the envelope never produces).
    Stored { first: u64, last: u64 },
    /// Already committed (or too old to tell): nothing written. Acknowledge it on the radio, output nothing.
    Duplicate(ReplayError),
}

/// An output's position in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Last sequence number delivered (0: none).
    pub seq: u64,
    /// The output's own bookmark, committed with `seq` (the file output keeps its length here).
    pub mark: u64,
}

/// The receiver's store.
pub struct Inbox {
    db: Db,
    guard: ReplayGuard,
}

impl Inbox {
    /// Opens or creates the inbox at `path`; `window` is the replay window (configuration: it overrides the
    /// stored one, as `ReplayGuard::load_or_new` does).
    pub fn open(path: &Path, window: u32) -> Result<Self, QueueError> {
        let db = Db::open(path, SCHEMA, SCHEMA_VERSION)?;
        let fresh = ReplayGuard::new(window).map_err(|e| QueueError::Corrupt {
            path: db.path.clone(),
            message: e.to_string(),
        })?;
        let stored: Option<String> = db
            .conn
            .query_row("SELECT state FROM replay WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(db.err())?;
        let guard = match stored {
            None => fresh,
            Some(text) => {
                let corrupt = |message: String| QueueError::Corrupt {
                    path: db.path.clone(),
                    message: format!("replay state: {message}"),
                };
                let mut value: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
                let Some(obj) = value.as_object_mut() else {
                    return Err(corrupt("not a JSON object".into()));
                };
                obj.insert("window".into(), window.into());
                serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?
            }
        };
        Ok(Inbox { db, guard })
    }

    /// The committed replay state: build the receiver's `Opener` from a clone of it.
    pub fn replay_guard(&self) -> &ReplayGuard {
        &self.guard
    }

    /// Commits an opened token: its readings and its counter, atomically. Durable when this returns Ok, and only
    /// then may the readings be output (from the journal).
    pub fn commit(&mut self, opened: &Opened) -> Result<Committed, QueueError> {
        if let Err(e) = self.guard.check(opened.sender, opened.counter) {
            return Ok(Committed::Duplicate(e));
        }
        let mut next = self.guard.clone();
        next.accept(opened.sender, opened.counter);
        let state = serde_json::to_string(&next).map_err(|e| QueueError::Corrupt {
            path: self.db.path.clone(),
            message: format!("replay state does not serialise: {e}"),
        })?;
        let now = to_sql(now_ms());
        let err = self.db.err();
        let tx = self.db.conn.unchecked_transaction().map_err(&err)?;
        let encoding = opened.encoding.to_string();
        let (first, last) = journal(
            &tx,
            (opened.sender, opened.counter, opened.kid, &encoding),
            &opened.readings,
            now,
        )
        .map_err(&err)?;
        tx.execute(
            "INSERT INTO replay (id, state) VALUES (1, ?1)
             ON CONFLICT(id) DO UPDATE SET state = excluded.state",
            [&state],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        self.guard = next;
        Ok(Committed::Stored { first, last })
    }

    /// Journals the readings of a legacy frame from radio node `node`, under sender [`legacy_sender`]`(node)` and
    /// the next counter of that sender. There is no replay check: a legacy frame has no counter (see the module
    /// docs). Durable when this returns.
    pub fn commit_legacy(
        &mut self,
        node: u8,
        readings: &[Reading],
    ) -> Result<Committed, QueueError> {
        let sender = legacy_sender(node);
        let now = to_sql(now_ms());
        let err = self.db.err();
        let tx = self.db.conn.unchecked_transaction().map_err(&err)?;
        let counter: u32 = tx
            .query_row("SELECT next FROM legacy WHERE sender = ?1", [sender], |r| {
                r.get(0)
            })
            .optional()
            .map_err(&err)?
            .unwrap_or(0);
        let (first, last) =
            journal(&tx, (sender, counter, 0, LEGACY_ENCODING), readings, now).map_err(&err)?;
        // u32 like every counter; after 2³² legacy frames from one node the numbers wrap (the journal is pruned
        // long before, and legacy senders are meant to be migrated away).
        tx.execute(
            "INSERT INTO legacy (sender, next) VALUES (?1, ?2)
             ON CONFLICT(sender) DO UPDATE SET next = excluded.next",
            params![sender, counter.wrapping_add(1)],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(Committed::Stored { first, last })
    }

    /// Registers an output; a new one starts at the beginning of what the journal still holds. Idempotent.
    pub fn add_output(&mut self, output: &str) -> Result<(), QueueError> {
        self.db
            .conn
            .execute(
                "INSERT OR IGNORE INTO cursors (output, seq, mark) VALUES (?1, 0, 0)",
                [output],
            )
            .map_err(self.db.err())?;
        Ok(())
    }

    /// Forgets an output (no longer configured), so that it no longer holds records back.
    pub fn remove_output(&mut self, output: &str) -> Result<(), QueueError> {
        let err = self.db.err();
        let tx = self.db.conn.unchecked_transaction().map_err(&err)?;
        tx.execute("DELETE FROM cursors WHERE output = ?1", [output])
            .map_err(&err)?;
        prune(&tx).map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// The registered outputs.
    pub fn outputs(&self) -> Result<Vec<String>, QueueError> {
        let mut stmt = self
            .db
            .conn
            .prepare_cached("SELECT output FROM cursors ORDER BY output")
            .map_err(self.db.err())?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(self.db.err())?;
        rows.collect::<Result<_, _>>().map_err(self.db.err())
    }

    /// An output's cursor; `None` if it is not registered.
    pub fn cursor(&self, output: &str) -> Result<Option<Cursor>, QueueError> {
        self.db
            .conn
            .query_row(
                "SELECT seq, mark FROM cursors WHERE output = ?1",
                [output],
                |r| {
                    Ok(Cursor {
                        seq: from_sql(r.get(0)?),
                        mark: from_sql(r.get(1)?),
                    })
                },
            )
            .optional()
            .map_err(self.db.err())
    }

    /// Up to `max` records after `output`'s cursor, oldest first.
    pub fn pending(&self, output: &str, max: usize) -> Result<Vec<Record>, QueueError> {
        let Some(cursor) = self.cursor(output)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .db
            .conn
            .prepare_cached(
                "SELECT seq, sender, counter, idx, kid, encoding, topic, time, data, received_ms
                 FROM journal WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(self.db.err())?;
        let rows = stmt
            .query_map(
                params![to_sql(cursor.seq), i64::try_from(max).unwrap_or(i64::MAX)],
                |r| {
                    Ok((
                        from_sql(r.get(0)?),
                        r.get::<_, u32>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, u32>(3)?,
                        r.get::<_, u8>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        from_sql(r.get(7)?),
                        r.get::<_, Vec<u8>>(8)?,
                        from_sql(r.get(9)?),
                    ))
                },
            )
            .map_err(self.db.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, sender, counter, index, kid, encoding, topic, time, data, received_ms) =
                row.map_err(self.db.err())?;
            let legacy = encoding == LEGACY_ENCODING;
            let encoding = if legacy {
                Encoding::Text
            } else {
                encoding
                    .parse::<Encoding>()
                    .map_err(|_| QueueError::Corrupt {
                        path: self.db.path.clone(),
                        message: format!("journal record {seq}: unknown encoding {encoding:?}"),
                    })?
            };
            out.push(Record {
                seq,
                sender,
                counter,
                index,
                kid,
                encoding,
                legacy,
                topic,
                time,
                data,
                received_ms,
            });
        }
        Ok(out)
    }

    /// Records after `output`'s cursor.
    pub fn backlog(&self, output: &str) -> Result<u64, QueueError> {
        let Some(cursor) = self.cursor(output)? else {
            return Ok(0);
        };
        let n: i64 = self
            .db
            .conn
            .query_row(
                "SELECT COUNT(*) FROM journal WHERE seq > ?1",
                [to_sql(cursor.seq)],
                |r| r.get(0),
            )
            .map_err(self.db.err())?;
        Ok(from_sql(n))
    }

    /// `output` has delivered every record up to `seq`; `mark` is committed with it. A cursor never moves back
    /// (a smaller `seq` changes only the mark). Records every output has delivered are deleted.
    pub fn delivered(&mut self, output: &str, seq: u64, mark: u64) -> Result<(), QueueError> {
        let err = self.db.err();
        let tx = self.db.conn.unchecked_transaction().map_err(&err)?;
        tx.execute(
            "UPDATE cursors SET seq = MAX(seq, ?2), mark = ?3 WHERE output = ?1",
            params![output, to_sql(seq), to_sql(mark)],
        )
        .map_err(&err)?;
        prune(&tx).map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Records in the journal (not yet delivered by every output).
    pub fn len(&self) -> Result<u64, QueueError> {
        let n: i64 = self
            .db
            .conn
            .query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))
            .map_err(self.db.err())?;
        Ok(from_sql(n))
    }

    pub fn is_empty(&self) -> Result<bool, QueueError> {
        Ok(self.len()? == 0)
    }
}

fn prune(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    // With no output registered, MIN is NULL and nothing is deleted.
    tx.execute(
        "DELETE FROM journal WHERE seq <= (SELECT MIN(seq) FROM cursors)",
        [],
    )?;
    Ok(())
}

/// Inserts a token's readings into the journal as (sender, counter, kid, encoding); returns the first and last
/// sequence numbers given (`first > last` for no readings).
fn journal(
    tx: &Transaction<'_>,
    (sender, counter, kid, encoding): (u32, u32, u8, &str),
    readings: &[Reading],
    now: i64,
) -> rusqlite::Result<(u64, u64)> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO journal (sender, counter, idx, kid, encoding, topic, time, data, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut first = None;
    let mut last = 0;
    for (index, r) in readings.iter().enumerate() {
        insert.execute(params![
            sender,
            counter,
            to_sql(index as u64),
            kid,
            encoding,
            r.topic,
            to_sql(r.time),
            r.data,
            now
        ])?;
        let seq = from_sql(tx.last_insert_rowid());
        first.get_or_insert(seq);
        last = seq;
    }
    Ok((first.unwrap_or(last + 1), last))
}

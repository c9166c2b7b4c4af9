//! The ledger: one JSON line per reading the broker acknowledged with PUBACK reason Success.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One acknowledged reading, as a ledger line:
/// `{"sensor":"sensor1","topic":"sensors/sensor1/reading","seq":17,"payload":"{\"id\":...}"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntry {
    pub sensor: String,
    pub topic: String,
    pub seq: u64,
    /// The payload exactly as published (it is JSON text, so it is kept as a string).
    pub payload: String,
}

/// A ledger problem.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("ledger {} line {line}: {error}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        error: serde_json::Error,
    },
    #[error("ledger entry for {sensor} #{seq}: {error}")]
    Encode {
        sensor: String,
        seq: u64,
        error: serde_json::Error,
    },
}

/// The ledger file, opened for appending (a run that continues with `--first-seq` adds to it).
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: File,
}

impl Ledger {
    /// Opens (or creates) `path` for appending.
    pub fn append_to(path: &Path) -> Result<Self, LedgerError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| LedgerError::Io {
                path: path.to_owned(),
                error,
            })?;
        Ok(Ledger {
            path: path.to_owned(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line with a single write, then flushes.
    pub fn append(&mut self, entry: &LedgerEntry) -> Result<(), LedgerError> {
        let mut line = serde_json::to_string(entry).map_err(|error| LedgerError::Encode {
            sensor: entry.sensor.clone(),
            seq: entry.seq,
            error,
        })?;
        line.push('\n');
        let io = |error| LedgerError::Io {
            path: self.path.clone(),
            error,
        };
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.flush().map_err(io)
    }
}

/// Every entry of a ledger file, in file order.
pub fn read_ledger(path: &Path) -> Result<Vec<LedgerEntry>, LedgerError> {
    let text = std::fs::read_to_string(path).map_err(|error| LedgerError::Io {
        path: path.to_owned(),
        error,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|error| LedgerError::Parse {
                path: path.to_owned(),
                line: i + 1,
                error,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_documented_shape_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let entry = LedgerEntry {
            sensor: "sensor1".into(),
            topic: "sensors/sensor1/reading".into(),
            seq: 17,
            payload: String::from_utf8(crate::payload("sensor1", 17)).unwrap(),
        };
        {
            let mut ledger = Ledger::append_to(&path).unwrap();
            ledger.append(&entry).unwrap();
        }
        // Appending, not truncating.
        Ledger::append_to(&path).unwrap().append(&entry).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            format!(
                "{{\"sensor\":\"sensor1\",\"topic\":\"sensors/sensor1/reading\",\"seq\":17,\"payload\":{}}}",
                serde_json::Value::String(entry.payload.clone())
            )
        );
        assert_eq!(read_ledger(&path).unwrap(), vec![entry.clone(), entry]);
        std::fs::write(&path, "{\"sensor\":1}\n").unwrap();
        let err = read_ledger(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}

//! Numbers that must never be handed out twice, not even across a crash or a power cut: the envelope's message
//! counters, the radio's header IDs.
//!
//! The file holds one decimal number: the first number not yet reserved. Opening it moves past every number an
//! earlier process may have used; taking a number beyond the reservation first writes a new bound `block`
//! further, durably (see [`write_private`](crate::write_private)). So a crash skips at most `block` numbers and
//! never repeats one, and the file is written once per `block` numbers taken, never while nothing is taken.

use std::path::{Path, PathBuf};

use crate::{read_private_string, write_private, Overwrite, SecretFileError};

#[derive(Debug, thiserror::Error)]
pub enum SequenceError {
    #[error("{}: expected one decimal number, found {found:?}", path.display())]
    Malformed { path: PathBuf, found: String },
    #[error("{}: every number up to {limit} is used", path.display())]
    Exhausted { path: PathBuf, limit: u64 },
    #[error(transparent)]
    File(#[from] SecretFileError),
}

/// A persisted sequence, reserved in blocks ahead of use.
#[derive(Debug)]
pub struct ReservedSequence {
    path: PathBuf,
    next: u64,
    reserved_until: u64,
    block: u64,
    limit: u64,
}

impl ReservedSequence {
    /// Opens (or, if missing, starts at 0) the sequence in `path`. Numbers below `limit` are handed out.
    pub fn open(path: &Path, block: u64, limit: u64) -> Result<Self, SequenceError> {
        let next = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            _ => {
                let text = read_private_string(path)?;
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| SequenceError::Malformed {
                        path: path.to_path_buf(),
                        found: text.trim().to_owned(),
                    })?
            }
        };
        if next > limit {
            return Err(SequenceError::Exhausted {
                path: path.to_path_buf(),
                limit,
            });
        }
        Ok(ReservedSequence {
            path: path.to_path_buf(),
            next,
            reserved_until: next,
            block: block.max(1),
            limit,
        })
    }

    /// The number the next [`take`](Self::take) returns.
    pub fn peek(&self) -> u64 {
        self.next
    }

    /// Takes the next number; no process gets it again.
    pub fn take(&mut self) -> Result<u64, SequenceError> {
        if self.next >= self.limit {
            return Err(SequenceError::Exhausted {
                path: self.path.clone(),
                limit: self.limit,
            });
        }
        if self.next >= self.reserved_until {
            let bound = self.next.saturating_add(self.block).min(self.limit);
            write_private(
                &self.path,
                format!("{bound}\n").as_bytes(),
                Overwrite::Replace,
            )?;
            self.reserved_until = bound;
        }
        let n = self.next;
        self.next += 1;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_sequence_goes_on_past_everything_reserved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq");
        let mut s = ReservedSequence::open(&path, 4, u64::MAX).unwrap();
        assert!(!path.exists(), "opening alone writes nothing");
        assert_eq!((s.take().unwrap(), s.take().unwrap()), (0, 1));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4\n");
        // A crash now: the next process starts at the reserved bound, never at 2.
        let mut s = ReservedSequence::open(&path, 4, u64::MAX).unwrap();
        assert_eq!(s.peek(), 4);
        for want in 4..9 {
            assert_eq!(s.take().unwrap(), want);
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "12\n");
    }

    #[test]
    fn the_limit_is_never_handed_out_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq");
        let mut s = ReservedSequence::open(&path, 64, 2).unwrap();
        assert_eq!((s.take().unwrap(), s.take().unwrap()), (0, 1));
        assert!(matches!(
            s.take(),
            Err(SequenceError::Exhausted { limit: 2, .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "2\n");

        write_private(&path, b"12x\n", Overwrite::Replace).unwrap();
        let err = ReservedSequence::open(&path, 1, 10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("seq: expected one decimal number, found \"12x\""),
            "{err}"
        );
        write_private(&path, b"11\n", Overwrite::Replace).unwrap();
        assert!(matches!(
            ReservedSequence::open(&path, 1, 10),
            Err(SequenceError::Exhausted { limit: 10, .. })
        ));
    }
}

//! The duty-cycle ledger on disk: the airtime a sender used in the last window, kept across restarts so that a
//! relay restarted within the hour cannot spend its budget twice.
//!
//! The limiter counts on a monotonic clock that starts again with each process; the file holds wall-clock
//! (unix) times. Conversions round toward over-counting: a start is rounded up to the next millisecond (it then
//! leaves the window later), a time on air up to the next microsecond, and a start in the future (the wall
//! clock was set back, e.g. a Pi without RTC before NTP) counts as now. What cannot be guarded against here is
//! a wall clock that was behind when the ledger was written and is correct when it is read.
//!
//! ```text
//! # tmc duty-cycle ledger v1: start (unix ms) and time on air (us) of each transmission in the window
//! 1718000000123 41216
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tmc_radio::PastTransmission;
use tmc_secret_file::{Overwrite, SecretFileError};

const HEADER: &str =
    "# tmc duty-cycle ledger v1: start (unix ms) and time on air (us) of each transmission in the window";

/// Why a ledger could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("reading the duty-cycle ledger {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("duty-cycle ledger {path}, line {line}: not a ledger of this format ({reason})")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: &'static str,
    },
}

/// The ledger file (one small file, atomically replaced and fsync'd on each write: it is state).
#[derive(Debug, Clone)]
pub struct AirtimeLedgerFile {
    path: PathBuf,
}

impl AirtimeLedgerFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AirtimeLedgerFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The transmissions in the file, aged at `unix_now` (the time since the unix epoch). A missing file is an
    /// empty ledger: nothing was sent.
    pub fn load(&self, unix_now: Duration) -> Result<Vec<PastTransmission>, LedgerError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(LedgerError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let corrupt = |line: usize, reason| LedgerError::Corrupt {
            path: self.path.clone(),
            line,
            reason,
        };
        let mut lines = text.lines().enumerate();
        if lines.next().map(|(_, l)| l) != Some(HEADER) {
            return Err(corrupt(1, "unknown header"));
        }
        lines
            .map(|(index, line)| {
                let mut fields = line.split(' ');
                let (Some(start), Some(airtime), None) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    return Err(corrupt(index + 1, "not two numbers"));
                };
                let (Ok(start_ms), Ok(airtime_us)) = (start.parse::<u64>(), airtime.parse::<u64>())
                else {
                    return Err(corrupt(index + 1, "not two numbers"));
                };
                Ok(PastTransmission {
                    age: unix_now.saturating_sub(Duration::from_millis(start_ms)),
                    airtime: Duration::from_micros(airtime_us),
                })
            })
            .collect()
    }

    /// Replaces the file with `ledger`, whose ages count back from `unix_now`.
    pub fn save(
        &self,
        ledger: &[PastTransmission],
        unix_now: Duration,
    ) -> Result<(), SecretFileError> {
        let mut text = format!("{HEADER}\n");
        for past in ledger {
            let start = unix_now.saturating_sub(past.age);
            let _ = writeln!(
                text,
                "{} {}",
                start.as_nanos().div_ceil(1_000_000),
                past.airtime.as_nanos().div_ceil(1_000)
            );
        }
        tmc_secret_file::write_atomic(&self.path, text.as_bytes(), 0o644, Overwrite::Replace)
    }
}

/// The wall clock as the ledger counts it: the time since the unix epoch (zero if the clock is before it).
pub fn unix_time() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_saved_ledger_loads_with_ages_at_the_new_instant_never_younger_ones_lost() {
        let dir = tempfile::tempdir().unwrap();
        let file = AirtimeLedgerFile::new(dir.path().join("ledger"));
        assert_eq!(file.load(S(1_000_000)).unwrap(), vec![]);
        let saved_at = Duration::from_nanos(1_700_000_000_123_456_789);
        let ledger = [
            PastTransmission {
                age: Duration::from_millis(1_500_250),
                airtime: Duration::from_nanos(41_216_001),
            },
            PastTransmission {
                age: Duration::ZERO,
                airtime: Duration::from_micros(56_576),
            },
        ];
        file.save(&ledger, saved_at).unwrap();
        // Read back 20 s later: each transmission is 20 s older, rounded toward counting longer.
        let loaded = file.load(saved_at + S(20)).unwrap();
        assert_eq!(loaded.len(), 2);
        for (was, is) in ledger.iter().zip(&loaded) {
            let aged = was.age + S(20);
            assert!(
                is.age <= aged && aged - is.age < Duration::from_millis(1),
                "{is:?}"
            );
            assert!(
                is.airtime >= was.airtime && is.airtime - was.airtime < Duration::from_micros(1)
            );
        }
        // Read with a wall clock set back before the transmissions: they count as just made.
        let loaded = file.load(saved_at - S(3600)).unwrap();
        assert!(loaded.iter().all(|p| p.age.is_zero()));
    }

    #[test]
    fn a_corrupt_ledger_is_an_error_naming_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger");
        let file = AirtimeLedgerFile::new(&path);
        for (text, line) in [
            ("garbage", 1),
            (&format!("{HEADER}\n1 2\n3\n") as &str, 3),
            (&format!("{HEADER}\n1 -2\n"), 2),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = file.load(S(10)).unwrap_err();
            assert!(
                matches!(err, LedgerError::Corrupt { line: l, .. } if l == line),
                "{err}"
            );
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
    }
}

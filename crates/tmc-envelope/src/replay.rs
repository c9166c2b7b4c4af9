//! Replay protection: per sender, the highest counter accepted and which of the counters just below
//! it have been seen (a sliding bitmap, as in IPsec/DTLS anti-replay).
//!
//! A token is accepted when its counter is above the highest accepted for its sender, or at most
//! `window` below it and not seen yet (LoRa retries and batching can reorder a little). Everything
//! else is a replay. The state is persisted so that a restart does not reopen old counters.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tmc_secret_file::{Overwrite, SecretFileError};

/// The largest reordering window the bitmap can track.
pub const MAX_WINDOW: u32 = 63;
/// Default reordering window.
pub const DEFAULT_WINDOW: u32 = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("replayed token: sender {sender} counter {counter} was already accepted")]
    Replayed { sender: u32, counter: u32 },
    #[error("stale token: sender {sender} counter {counter} is more than {window} behind the newest accepted ({highest})")]
    Stale {
        sender: u32,
        counter: u32,
        highest: u32,
        window: u32,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayStateError {
    #[error("reordering window {0} is larger than the maximum {MAX_WINDOW}")]
    Window(u32),
    #[error(transparent)]
    File(#[from] SecretFileError),
    #[error("{path}: not a replay state file: {message}")]
    Syntax { path: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct SenderWindow {
    highest: u32,
    /// Bit i set: counter `highest − i` was accepted.
    seen: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayGuard {
    window: u32,
    senders: BTreeMap<u32, SenderWindow>,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        ReplayGuard {
            window: DEFAULT_WINDOW,
            senders: BTreeMap::new(),
        }
    }
}

impl ReplayGuard {
    pub fn new(window: u32) -> Result<Self, ReplayStateError> {
        if window > MAX_WINDOW {
            return Err(ReplayStateError::Window(window));
        }
        Ok(ReplayGuard {
            window,
            senders: BTreeMap::new(),
        })
    }

    pub fn window(&self) -> u32 {
        self.window
    }

    /// The highest counter accepted from `sender`.
    pub fn highest(&self, sender: u32) -> Option<u32> {
        self.senders.get(&sender).map(|w| w.highest)
    }

    /// Would a token from `sender` with `counter` be fresh? Changes nothing.
    pub fn check(&self, sender: u32, counter: u32) -> Result<(), ReplayError> {
        let Some(w) = self.senders.get(&sender) else {
            return Ok(());
        };
        if counter > w.highest {
            return Ok(());
        }
        let behind = w.highest - counter;
        if behind < 64 && w.seen & (1u64 << behind) != 0 {
            return Err(ReplayError::Replayed { sender, counter });
        }
        if behind > self.window {
            return Err(ReplayError::Stale {
                sender,
                counter,
                highest: w.highest,
                window: self.window,
            });
        }
        Ok(())
    }

    /// Records `counter` as accepted. Call only after [`check`](Self::check) passed and the token
    /// was verified and decrypted.
    pub fn accept(&mut self, sender: u32, counter: u32) {
        let w = self.senders.entry(sender).or_insert(SenderWindow {
            highest: counter,
            seen: 0,
        });
        if counter > w.highest {
            let ahead = counter - w.highest;
            w.seen = if ahead >= 64 { 0 } else { w.seen << ahead };
            w.highest = counter;
        }
        let behind = w.highest - counter;
        if behind < 64 {
            w.seen |= 1u64 << behind;
        }
    }

    /// Loads persisted state; a missing file is a fresh guard with `window`.
    /// The window from the caller wins over the stored one (it is configuration, not state).
    pub fn load_or_new(path: &Path, window: u32) -> Result<Self, ReplayStateError> {
        let mut guard = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Self::new(window),
            _ => {
                let text = tmc_secret_file::read_private_string(path)?;
                serde_json::from_str::<ReplayGuard>(&text).map_err(|e| {
                    ReplayStateError::Syntax {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    }
                })?
            }
        };
        if window > MAX_WINDOW {
            return Err(ReplayStateError::Window(window));
        }
        guard.window = window;
        Ok(guard)
    }

    /// Persists the state atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), ReplayStateError> {
        let text = serde_json::to_string(self).expect("replay state always serialises");
        tmc_secret_file::write_private(path, text.as_bytes(), Overwrite::Replace)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(g: &mut ReplayGuard, s: u32, c: u32) -> Result<(), ReplayError> {
        g.check(s, c)?;
        g.accept(s, c);
        Ok(())
    }

    #[test]
    fn in_order_counters_pass_and_repeats_fail() {
        let mut g = ReplayGuard::new(0).unwrap();
        for c in [0, 1, 2, 10] {
            accept(&mut g, 10, c).unwrap();
        }
        assert_eq!(
            accept(&mut g, 10, 10),
            Err(ReplayError::Replayed {
                sender: 10,
                counter: 10
            })
        );
        assert!(matches!(
            accept(&mut g, 10, 9),
            Err(ReplayError::Stale {
                highest: 10,
                window: 0,
                ..
            })
        ));
        // Senders are independent.
        accept(&mut g, 11, 0).unwrap();
    }

    #[test]
    fn reordering_within_the_window_is_accepted_once() {
        let mut g = ReplayGuard::new(4).unwrap();
        accept(&mut g, 1, 10).unwrap();
        accept(&mut g, 1, 8).unwrap();
        assert_eq!(
            accept(&mut g, 1, 8),
            Err(ReplayError::Replayed {
                sender: 1,
                counter: 8
            })
        );
        accept(&mut g, 1, 6).unwrap();
        assert!(matches!(
            accept(&mut g, 1, 5),
            Err(ReplayError::Stale { .. })
        ));
        // Sliding forward keeps what was seen.
        accept(&mut g, 1, 12).unwrap();
        assert_eq!(
            accept(&mut g, 1, 10),
            Err(ReplayError::Replayed {
                sender: 1,
                counter: 10
            })
        );
        accept(&mut g, 1, 9).unwrap();
        // A big jump forgets the old bitmap but the old counters are stale anyway.
        accept(&mut g, 1, 1000).unwrap();
        assert!(matches!(
            accept(&mut g, 1, 12),
            Err(ReplayError::Stale { .. })
        ));
    }

    #[test]
    fn state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.json");
        let mut g = ReplayGuard::load_or_new(&path, 8).unwrap();
        accept(&mut g, 3, 41).unwrap();
        accept(&mut g, 3, 40).unwrap();
        g.save(&path).unwrap();
        let mut again = ReplayGuard::load_or_new(&path, 8).unwrap();
        assert_eq!(again.highest(3), Some(41));
        assert!(accept(&mut again, 3, 40).is_err());
        accept(&mut again, 3, 39).unwrap();
        assert!(matches!(
            ReplayGuard::new(64),
            Err(ReplayStateError::Window(64))
        ));
        tmc_secret_file::write_private(&path, b"{}", Overwrite::Replace).unwrap();
        assert!(matches!(
            ReplayGuard::load_or_new(&path, 8),
            Err(ReplayStateError::Syntax { .. })
        ));
    }
}

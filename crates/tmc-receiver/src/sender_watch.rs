//! Notices a sender id that two relays share.
//!
//! The envelope's IV is sender ‖ counter under the site key, so two relays sealing with one sender id repeat
//! each other's keystream, and the replay window (kept per sender) refuses whichever of them is behind. The
//! provisioning tool prevents it; this catches a site set up by hand, a copied configuration or a restored
//! counter file. Two signs, both impossible for one honest relay, which resends a token only byte for byte and
//! numbers its tokens upwards:
//! - a token whose (sender, counter) was already taken by a token with **other bytes**;
//! - a token far behind the sender's newest (stale): a second counter sequence, or a counter that went back.
//!
//! Each such token is counted per sender; at [`WARN_AFTER`] the receiver logs one warning naming the sender.
//! What the receiver accepts does not change. The memory is the last [`REMEMBERED`] tokens per sender, in RAM:
//! a copy heard after a restart is not judged (it is refused as a replay as before).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

/// Conflicting tokens from one sender before the warning.
pub const WARN_AFTER: u64 = 3;
/// Tokens remembered per sender (counter and a hash of the bytes).
pub const REMEMBERED: usize = 64;

/// Per-sender memory of recent tokens and conflicts.
#[derive(Debug, Default)]
pub struct SenderWatch {
    recent: HashMap<u32, VecDeque<(u32, u64)>>,
    conflicts: HashMap<u32, u64>,
}

/// What one token says about its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing unusual.
    Fine,
    /// A conflicting token: the sender's count so far, and whether it just reached [`WARN_AFTER`].
    Conflict { count: u64, warn: bool },
}

fn digest(token: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    token.hash(&mut h);
    h.finish()
}

impl SenderWatch {
    /// A token stored under (sender, counter).
    pub fn stored(&mut self, sender: u32, counter: u32, token: &[u8]) {
        let recent = self.recent.entry(sender).or_default();
        if recent.len() == REMEMBERED {
            recent.pop_front();
        }
        recent.push_back((counter, digest(token)));
    }

    /// A token refused as a replay of (sender, counter): a resend if its bytes are the stored token's.
    pub fn replayed(&mut self, sender: u32, counter: u32, token: &[u8]) -> Verdict {
        let known = self
            .recent
            .get(&sender)
            .and_then(|r| r.iter().find(|(c, _)| *c == counter).map(|(_, d)| *d));
        match known {
            Some(d) if d != digest(token) => self.conflict(sender),
            _ => Verdict::Fine,
        }
    }

    /// A token refused as stale.
    pub fn stale(&mut self, sender: u32) -> Verdict {
        self.conflict(sender)
    }

    fn conflict(&mut self, sender: u32) -> Verdict {
        let count = self.conflicts.entry(sender).or_default();
        *count += 1;
        Verdict::Conflict {
            count: *count,
            warn: *count == WARN_AFTER,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_are_fine_other_bytes_and_stale_tokens_are_conflicts() {
        let mut w = SenderWatch::default();
        w.stored(10, 0, b"a0");
        w.stored(10, 1, b"a1");
        // The relay resends byte for byte (after a lost ACK or a restart): nothing to see.
        assert_eq!(w.replayed(10, 1, b"a1"), Verdict::Fine);
        // Not remembered (a restart since): not judged.
        assert_eq!(w.replayed(10, 7, b"zz"), Verdict::Fine);
        // A second relay on sender 10: counter 0 with other bytes, then stale tokens.
        assert_eq!(
            w.replayed(10, 0, b"b0"),
            Verdict::Conflict {
                count: 1,
                warn: false
            }
        );
        assert_eq!(
            w.stale(10),
            Verdict::Conflict {
                count: 2,
                warn: false
            }
        );
        assert_eq!(
            w.stale(10),
            Verdict::Conflict {
                count: 3,
                warn: true
            }
        );
        assert_eq!(
            w.stale(10),
            Verdict::Conflict {
                count: 4,
                warn: false
            }
        );
        // Other senders are judged on their own.
        assert_eq!(w.replayed(11, 0, b"a0"), Verdict::Fine);
    }

    #[test]
    fn memory_per_sender_is_bounded() {
        let mut w = SenderWatch::default();
        for c in 0..1000u32 {
            w.stored(10, c, &c.to_be_bytes());
        }
        assert_eq!(w.recent[&10].len(), REMEMBERED);
        assert_eq!(
            w.replayed(10, 999, b"other"),
            Verdict::Conflict {
                count: 1,
                warn: false
            }
        );
        assert_eq!(w.replayed(10, 0, b"other"), Verdict::Fine);
    }
}

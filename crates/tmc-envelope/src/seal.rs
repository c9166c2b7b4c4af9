//! Sealing: readings → encrypted, signed token that fits one LoRa frame.
//!
//! ## Why a counter-derived IV
//! AES-128-CTR's IV is `sender (32 bit BE) ‖ counter (32 bit BE) ‖ block counter (64 bit BE, from 0)`.
//! The (sender, counter) pair is already in every token for replay protection, so deriving the IV
//! from it costs no bytes on air, where a random IV would cost 16 (or 8) of the 251. It is never
//! reused under one key as long as (a) every sender sharing a key ring has its own sender id and
//! (b) a sender never hands out a counter twice: [`CounterFile`] reserves counters on disk (fsync)
//! *before* they are used, so a crash or power loss skips counters but never repeats one.
//! Counters are per sender across keys; at 2³²−1 the sender refuses to seal (rotate the sender id).

use std::path::{Path, PathBuf};

use aes::cipher::{KeyIvInit, StreamCipher};
use tmc_secret_file::{ReservedSequence, SecretFileError, SequenceError};

use crate::keys::{KeyRing, SiteKey};
use crate::reading::{self, Reading};
use crate::token::{self, TokenFields};
use crate::{jws, Encoding, MAX_TOKEN_LEN};

pub(crate) type Aes128Ctr = ctr::Ctr64BE<aes::Aes128>;

pub(crate) fn ctr_iv(sender: u32, counter: u32) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&sender.to_be_bytes());
    iv[4..8].copy_from_slice(&counter.to_be_bytes());
    iv
}

pub(crate) fn apply_ctr(key: &SiteKey, sender: u32, counter: u32, buf: &mut [u8]) {
    let mut cipher = Aes128Ctr::new(&key.aes.into(), &ctr_iv(sender, counter).into());
    cipher.apply_keystream(buf);
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("nothing to seal: the batch has no readings")]
    Empty,
    #[error("token would be {size} bytes on air ({encoding}), more than the {max} one LoRa frame carries; send fewer or smaller readings")]
    TooLarge {
        size: usize,
        max: usize,
        encoding: Encoding,
    },
    #[error("message counter exhausted for sender {sender}: give this sender a new sender id")]
    CounterExhausted { sender: u32 },
    #[error("counter file {path}: {message}")]
    CounterFile { path: PathBuf, message: String },
    #[error(transparent)]
    File(#[from] SecretFileError),
}

/// Hands out message counters, never the same one twice.
pub trait CounterSource {
    /// The counter the next [`take`](Self::take) will return (for sizing a token).
    fn peek(&self) -> u32;
    /// Takes the next counter; it is never returned again.
    fn take(&mut self) -> Result<u32, SealError>;
}

/// Counters kept in memory only: tests and benchmarks. A real sender uses [`CounterFile`].
#[derive(Debug, Clone)]
pub struct MemoryCounter {
    sender: u32,
    next: u32,
}

impl MemoryCounter {
    pub fn starting_at(sender: u32, next: u32) -> Self {
        MemoryCounter { sender, next }
    }
}

impl CounterSource for MemoryCounter {
    fn peek(&self) -> u32 {
        self.next
    }
    fn take(&mut self) -> Result<u32, SealError> {
        let c = self.next;
        self.next = c.checked_add(1).ok_or(SealError::CounterExhausted {
            sender: self.sender,
        })?;
        Ok(c)
    }
}

/// Counters persisted in a file, reserved in blocks ahead of use ([`ReservedSequence`]): a crash skips at most
/// `block` counters and never repeats one. The counter `u32::MAX` is never used.
#[derive(Debug)]
pub struct CounterFile {
    sequence: ReservedSequence,
    sender: u32,
}

impl CounterFile {
    /// Opens (or creates, starting at 0) the counter file of `sender`.
    pub fn open(path: &Path, sender: u32, block: u32) -> Result<Self, SealError> {
        let sequence = ReservedSequence::open(path, u64::from(block), u64::from(u32::MAX))
            .map_err(|e| counter_error(e, sender))?;
        Ok(CounterFile { sequence, sender })
    }
}

fn counter_error(e: SequenceError, sender: u32) -> SealError {
    match e {
        SequenceError::Exhausted { .. } => SealError::CounterExhausted { sender },
        SequenceError::Malformed { path, found } => SealError::CounterFile {
            path,
            message: format!("expected one decimal number, found {found:?}"),
        },
        SequenceError::File(e) => SealError::File(e),
    }
}

impl CounterSource for CounterFile {
    fn peek(&self) -> u32 {
        // The sequence never goes beyond its limit, u32::MAX.
        u32::try_from(self.sequence.peek()).unwrap_or(u32::MAX)
    }

    fn take(&mut self) -> Result<u32, SealError> {
        let n = self
            .sequence
            .take()
            .map_err(|e| counter_error(e, self.sender))?;
        u32::try_from(n).map_err(|_| SealError::CounterExhausted {
            sender: self.sender,
        })
    }
}

/// A token ready to transmit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub encoding: Encoding,
    /// The bytes to put in the LoRa frame (ASCII for `text`).
    pub bytes: Vec<u8>,
    pub kid: u8,
    pub sender: u32,
    pub counter: u32,
    pub issued_at: u64,
}

/// Seals batches of readings for one sender with the key ring's sealing key.
pub struct Sealer<C> {
    key: SiteKey,
    sender: u32,
    counter: C,
}

impl<C: CounterSource> Sealer<C> {
    pub fn new(ring: &KeyRing, sender: u32, counter: C) -> Self {
        Sealer {
            key: ring.seal_key().clone(),
            sender,
            counter,
        }
    }

    pub fn sender(&self) -> u32 {
        self.sender
    }

    /// Bytes on air the next token for `readings` would take, without sealing (and without
    /// using a counter). The relay uses it to decide how many readings go in one token.
    pub fn on_air_size(&self, readings: &[Reading], iat: u64, encoding: Encoding) -> usize {
        let ct = reading::encoded_len(readings, iat);
        let ctr = self.counter.peek();
        match encoding {
            Encoding::Text => token::text_len(self.key.kid(), self.sender, ctr, iat, ct),
            Encoding::Packed => token::packed_len(self.sender, ctr, iat, ct),
        }
    }

    /// Which of `candidates` (queued readings, oldest first) the next token carries, as indices in order.
    ///
    /// The oldest always goes (so nothing waits behind newer readings for ever). Then topic by topic, in
    /// order of first appearance (the oldest's topic first), each topic's readings in order while the token
    /// still fits one frame, at most `max` in all. Gathering one topic's readings is what lets the batch
    /// layout name its topic and keys once ([`reading::encode`]); stopping a topic at its first reading
    /// that does not fit keeps every topic's readings in order from token to token. The caller checks
    /// that the oldest alone fits.
    pub fn choose(
        &self,
        candidates: &[Reading],
        iat: u64,
        encoding: Encoding,
        max: usize,
    ) -> Vec<usize> {
        let Some(oldest) = candidates.first() else {
            return Vec::new();
        };
        let mut topics: Vec<&str> = vec![&oldest.topic];
        for r in candidates {
            if !topics.contains(&r.topic.as_str()) {
                topics.push(&r.topic);
            }
        }
        let mut chosen = vec![0];
        for topic in topics {
            for (i, _) in candidates
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, r)| r.topic == topic)
            {
                if chosen.len() >= max {
                    return chosen;
                }
                let mut trial = chosen.clone();
                let at = trial.partition_point(|&j| j < i);
                trial.insert(at, i);
                let readings: Vec<Reading> = trial.iter().map(|&j| candidates[j].clone()).collect();
                if self.on_air_size(&readings, iat, encoding) > MAX_TOKEN_LEN {
                    break;
                }
                chosen = trial;
            }
        }
        chosen
    }

    /// Seals `readings` into one token issued at `iat` (Unix seconds).
    pub fn seal(
        &mut self,
        readings: &[Reading],
        iat: u64,
        encoding: Encoding,
    ) -> Result<Sealed, SealError> {
        if readings.is_empty() {
            return Err(SealError::Empty);
        }
        // Size first, so that a refused batch does not use a counter.
        let size = self.on_air_size(readings, iat, encoding);
        if size > MAX_TOKEN_LEN {
            return Err(SealError::TooLarge {
                size,
                max: MAX_TOKEN_LEN,
                encoding,
            });
        }
        let counter = self.counter.take()?;
        let mut ciphertext = reading::encode(readings, iat);
        apply_ctr(&self.key, self.sender, counter, &mut ciphertext);
        let fields = TokenFields {
            kid: self.key.kid(),
            sid: self.sender,
            ctr: counter,
            iat,
            ciphertext,
        };
        // The JWS signature is the MAC of encrypt-then-MAC: it covers the ciphertext and the
        // sender, counter and time, under a key independent of the AES key.
        let signature = jws::sign(&self.key.mac, fields.signing_input().as_bytes());
        let bytes = match encoding {
            Encoding::Text => fields.to_text(&signature).into_bytes(),
            Encoding::Packed => fields.to_packed(&signature),
        };
        debug_assert_eq!(bytes.len(), size);
        Ok(Sealed {
            encoding,
            bytes,
            kid: fields.kid,
            sender: self.sender,
            counter,
            issued_at: iat,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmc_secret_file::Overwrite;

    #[test]
    fn counter_file_never_repeats_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr");
        let mut a = CounterFile::open(&path, 10, 4).unwrap();
        let first: Vec<u32> = (0..3).map(|_| a.take().unwrap()).collect();
        assert_eq!(first, [0, 1, 2]);
        // A crash now: the reopened file starts past the whole reserved block.
        drop(a);
        let mut b = CounterFile::open(&path, 10, 4).unwrap();
        assert_eq!(b.take().unwrap(), 4);
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), "8");
    }

    #[test]
    fn exhausted_counter_refuses() {
        let mut c = MemoryCounter::starting_at(5, u32::MAX);
        assert!(matches!(
            c.take(),
            Err(SealError::CounterExhausted { sender: 5 })
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr");
        tmc_secret_file::write_private(
            &path,
            format!("{}\n", u32::MAX).as_bytes(),
            Overwrite::Refuse,
        )
        .unwrap();
        let mut f = CounterFile::open(&path, 5, 1).unwrap();
        assert!(matches!(
            f.take(),
            Err(SealError::CounterExhausted { sender: 5 })
        ));
        tmc_secret_file::write_private(&path, b"twelve", Overwrite::Replace).unwrap();
        let err = CounterFile::open(&path, 5, 1).unwrap_err().to_string();
        assert!(err.contains("expected one decimal number"), "{err}");
    }
}

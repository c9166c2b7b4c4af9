//! Opening: bytes from a LoRa frame → verified, fresh, decrypted readings.
//!
//! Order matters: the signature is verified before anything inside the claims is trusted, the
//! replay check runs before decryption, and the replay state only moves forward once the token has
//! been fully opened (a token that fails later leaves no trace).

use crate::format::{detect, TokenFormat};
use crate::keys::{KeyRing, Kid};
use crate::reading::{self, BatchError, Reading};
use crate::replay::{ReplayError, ReplayGuard};
use crate::seal::apply_ctr;
use crate::token;
use crate::{jws, Encoding};

/// Why a token was refused. Each variant is one clear reason, fit for a one-line log or exit message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("empty token")]
    Empty,
    #[error("malformed token: {part} {reason}")]
    Malformed { part: &'static str, reason: String },
    #[error("unsupported algorithm {0:?}: only HS256 is accepted")]
    UnsupportedAlg(String),
    #[error("unknown key id {kid} (the key ring has {known})")]
    UnknownKid { kid: Kid, known: String },
    #[error("bad signature: the token was forged, corrupted, or sealed with another key")]
    BadSignature,
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("signed token with an invalid payload (sender bug?): {0}")]
    Payload(#[from] BatchError),
    #[error("legacy token: {0}")]
    Legacy(String),
    #[error("header has no kid: a legacy token, which only the legacy profile opens")]
    LegacyFormat,
}

impl OpenError {
    pub(crate) fn malformed(part: &'static str, reason: impl Into<String>) -> Self {
        OpenError::Malformed {
            part,
            reason: reason.into(),
        }
    }
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub encoding: Encoding,
    pub kid: Kid,
    pub sender: u32,
    pub counter: u32,
    pub issued_at: u64,
    pub readings: Vec<Reading>,
}

/// Opens tokens with a key ring, keeping replay state.
pub struct Opener {
    ring: KeyRing,
    replay: ReplayGuard,
}

impl Opener {
    pub fn new(ring: KeyRing, replay: ReplayGuard) -> Self {
        Opener { ring, replay }
    }

    /// The replay state, to persist after accepting tokens.
    pub fn replay_state(&self) -> &ReplayGuard {
        &self.replay
    }

    /// Opens a token in either encoding. One trailing NUL (as RadioHead senders add to strings)
    /// is tolerated on text tokens. Legacy tokens are refused ([`OpenError::LegacyFormat`]).
    pub fn open(&mut self, bytes: &[u8]) -> Result<Opened, OpenError> {
        let encoding = match detect(bytes)? {
            TokenFormat::Secure(encoding) => encoding,
            TokenFormat::Legacy => return Err(OpenError::LegacyFormat),
        };
        let text = match encoding {
            Encoding::Packed => token::unpack(bytes)?,
            Encoding::Text => {
                let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
                std::str::from_utf8(bytes)
                    .map_err(|_| OpenError::malformed("token", "text token is not ASCII"))?
                    .to_owned()
            }
        };
        let mut opened = self.open_text(&text)?;
        opened.encoding = encoding;
        Ok(opened)
    }

    fn open_text(&mut self, text: &str) -> Result<Opened, OpenError> {
        let parsed = token::split_text(text)?;
        let key = self
            .ring
            .get(parsed.kid)
            .ok_or_else(|| OpenError::UnknownKid {
                kid: parsed.kid,
                known: self
                    .ring
                    .kids()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        jws::verify(&key.mac, parsed.signing_input.as_bytes(), &parsed.signature)?;
        let f = parsed.claims()?;
        self.replay.check(f.sid, f.ctr)?;
        let mut plaintext = f.ciphertext;
        apply_ctr(key, f.sid, f.ctr, &mut plaintext);
        let readings = reading::decode(&plaintext, f.iat)?;
        self.replay.accept(f.sid, f.ctr);
        Ok(Opened {
            encoding: Encoding::Text,
            kid: f.kid,
            sender: f.sid,
            counter: f.ctr,
            issued_at: f.iat,
            readings,
        })
    }
}

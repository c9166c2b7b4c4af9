//! # tmc-envelope
//!
//! Turns sensor readings into a token that fits one LoRa frame, and back. The relay seals; the
//! receiver opens. Nothing here knows about radios or MQTT.
//!
//! - **Crypto**: AES-128-CTR with a counter-derived IV (see [`seal`](crate::seal) for why it never
//!   repeats), then HMAC-SHA256 over the ciphertext and metadata as the JWS (HS256) signature:
//!   encrypt-then-MAC, with AES and MAC keys derived independently from one site secret by HKDF.
//! - **Token**: a standard compact JWT (`{"alg":"HS256","kid":"…"}`, claims `sid`, `ctr`, `iat`,
//!   `dat`), sent either as ASCII ([`Encoding::Text`]) or losslessly packed ([`Encoding::Packed`]).
//! - **Open**: signature, key id, replay window, decryption, batch decoding — every failure a
//!   distinct [`OpenError`].
//! - **Legacy**: the existing deployment's tokens, opt-in, in [`legacy`].
//!
//! The byte-level format is specified in `docs/wire-format.md`, with test vectors.
//!
//! ```
//! use tmc_envelope::{Encoding, KeyRing, MemoryCounter, Opener, Reading, ReplayGuard, Sealer};
//!
//! let ring = KeyRing::generate(1).unwrap();
//! let mut sealer = Sealer::new(&ring, 10, MemoryCounter::starting_at(10, 0));
//! let reading = Reading::new("/esp8266", 1_763_766_000, b"t=21.5".to_vec());
//! let token = sealer.seal(&[reading.clone()], 1_763_766_000, Encoding::Packed).unwrap();
//!
//! let mut opener = Opener::new(ring, ReplayGuard::default());
//! let opened = opener.open(&token.bytes).unwrap();
//! assert_eq!(opened.readings, vec![reading]);
//! assert!(opener.open(&token.bytes).is_err()); // a replay
//! ```

mod batch;
pub mod format;
mod jws;
pub mod keys;
pub mod legacy;
mod open;
pub mod reading;
pub mod replay;
pub mod seal;
mod token;
mod varint;

pub use format::{detect, parse_printed, printed, PrintedTokenError, TokenFormat};
pub use keys::{KeyRing, KeyRingError, Kid, SiteKey};
pub use open::{OpenError, Opened, Opener};
pub use reading::{BatchError, Reading};
pub use replay::{ReplayError, ReplayGuard, ReplayStateError};
pub use seal::{CounterFile, CounterSource, MemoryCounter, SealError, Sealed, Sealer};
pub use tmc_secret_file::Overwrite;
pub use token::{pack, unpack, PACKED_V1};

/// Largest token one LoRa frame carries: RadioHead's 255-byte payload minus its 4-byte header.
pub const MAX_TOKEN_LEN: usize = 251;

/// How a token is put on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The compact JWT as ASCII: what any JWT library (and the existing receivers' parsers) read.
    Text,
    /// The same JWS packed in binary: raw signature, one-byte header id and kid, varint claims.
    Packed,
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoding::Text => "text",
            Encoding::Packed => "packed",
        })
    }
}

impl std::str::FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Encoding::Text),
            "packed" => Ok(Encoding::Packed),
            other => Err(format!(
                "unknown encoding {other:?} (expected text or packed)"
            )),
        }
    }
}

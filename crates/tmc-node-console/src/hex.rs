//! SHA-256 fingerprints as the console prints them.

use core::fmt;

use sha2::{Digest, Sha256};

/// SHA-256 of some bytes, shown as 64 lowercase hex digits (what `sha256sum` of the DER prints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sha256Hex(pub [u8; 32]);

impl Sha256Hex {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Sha256Hex(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

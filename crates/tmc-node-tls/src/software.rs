//! [`SoftwareKey`]: the [`SecureElement`] seam done in software with `p256` (Linux, the simulator,
//! tests). The key is in RAM, so this is only for machines where that is acceptable.

use core::fmt;

use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

use crate::SecureElement;

/// A P-256 key in memory.
#[derive(Clone)]
pub struct SoftwareKey {
    key: SigningKey,
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private key.
        f.debug_struct("SoftwareKey").finish_non_exhaustive()
    }
}

/// What a [`SoftwareKey`] can fail at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftwareKeyError {
    /// The 32 bytes are not a valid P-256 private scalar.
    BadPrivateKey,
    /// The public key to verify with is not a point on P-256.
    BadPublicKey,
    /// Signing failed (only for a degenerate digest, practically never).
    SignFailed,
}

impl fmt::Display for SoftwareKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SoftwareKeyError::BadPrivateKey => "not a P-256 private key",
            SoftwareKeyError::BadPublicKey => "public key is not a P-256 point",
            SoftwareKeyError::SignFailed => "signing failed",
        })
    }
}

impl SoftwareKey {
    pub fn new(key: SigningKey) -> Self {
        SoftwareKey { key }
    }

    /// From the 32-byte big-endian private scalar.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Self, SoftwareKeyError> {
        SigningKey::from_slice(secret)
            .map(Self::new)
            .map_err(|_| SoftwareKeyError::BadPrivateKey)
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl SecureElement for SoftwareKey {
    type Error = SoftwareKeyError;

    fn public_key(&mut self) -> Result<[u8; 64], Self::Error> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let mut xy = [0u8; 64];
        // Uncompressed SEC1: 0x04 ‖ X ‖ Y.
        xy.copy_from_slice(
            point
                .as_bytes()
                .get(1..65)
                .ok_or(SoftwareKeyError::BadPrivateKey)?,
        );
        Ok(xy)
    }

    fn sign_digest(&mut self, digest: &[u8; 32]) -> Result<[u8; 64], Self::Error> {
        // Deterministic (RFC 6979): no RNG needed, like the chip's Sign command from the caller's view.
        let signature: Signature = self
            .key
            .sign_prehash(digest)
            .map_err(|_| SoftwareKeyError::SignFailed)?;
        Ok(signature.to_bytes().into())
    }

    fn verify_digest(
        &mut self,
        public_key: &[u8; 64],
        digest: &[u8; 32],
        signature: &[u8; 64],
    ) -> Result<bool, Self::Error> {
        let mut sec1 = [0u8; 65];
        sec1[0] = 0x04;
        sec1[1..].copy_from_slice(public_key);
        let key =
            VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| SoftwareKeyError::BadPublicKey)?;
        // r or s zero or out of range: a signature that does not verify, not a failure.
        let Ok(signature) = Signature::from_slice(signature) else {
            return Ok(false);
        };
        Ok(key.verify_prehash(digest, &signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_its_own_digests() {
        let mut key = SoftwareKey::from_bytes(&[7u8; 32]).expect("valid scalar");
        let public = key.public_key().expect("public key");
        let digest = [0x5au8; 32];
        let sig = key.sign_digest(&digest).expect("sign");
        assert_eq!(key.verify_digest(&public, &digest, &sig), Ok(true));
        let mut other = digest;
        other[0] ^= 1;
        assert_eq!(key.verify_digest(&public, &other, &sig), Ok(false));
        assert_eq!(key.verify_digest(&public, &digest, &[0u8; 64]), Ok(false));
        assert_eq!(
            key.verify_digest(&[1u8; 64], &digest, &sig),
            Err(SoftwareKeyError::BadPublicKey)
        );
        assert_eq!(
            SoftwareKey::from_bytes(&[0u8; 32]).map(|_| ()),
            Err(SoftwareKeyError::BadPrivateKey)
        );
    }
}

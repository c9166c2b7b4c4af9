//! Compact JWS with HS256 (RFC 7515 §7.1, RFC 7518 §3.2): split, sign, verify.
//!
//! Shared by the secure and the legacy profile. Verification compares MACs in constant time
//! (`Mac::verify_slice`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::OpenError;

pub(crate) const SIG_LEN: usize = 32;
/// base64url length of a 32-byte HS256 signature, unpadded.
pub(crate) const SIG_B64_LEN: usize = 43;

type HmacSha256 = Hmac<Sha256>;

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Unpadded base64url length of `n` bytes.
pub(crate) fn b64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

pub(crate) fn b64_decode(text: &str, part: &'static str) -> Result<Vec<u8>, OpenError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| OpenError::malformed(part, format!("not base64url: {e}")))
}

fn mac(key: &[u8], signing_input: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(signing_input);
    mac
}

pub(crate) fn sign(key: &[u8], signing_input: &[u8]) -> [u8; SIG_LEN] {
    mac(key, signing_input).finalize().into_bytes().into()
}

pub(crate) fn verify(key: &[u8], signing_input: &[u8], signature: &[u8]) -> Result<(), OpenError> {
    mac(key, signing_input)
        .verify_slice(signature)
        .map_err(|_| OpenError::BadSignature)
}

/// The three parts of a compact JWS.
pub(crate) struct Compact<'a> {
    /// `header.claims`, the bytes the signature covers.
    pub signing_input: &'a str,
    pub header: Vec<u8>,
    pub claims: Vec<u8>,
    pub signature: Vec<u8>,
}

pub(crate) fn split(token: &str) -> Result<Compact<'_>, OpenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let n = token.split('.').count();
        return Err(OpenError::malformed(
            "token",
            format!("has {n} dot-separated parts, a compact JWS has 3"),
        ));
    };
    let signature = b64_decode(s, "signature")?;
    if signature.len() != SIG_LEN {
        return Err(OpenError::malformed(
            "signature",
            format!("is {} bytes, HS256 gives {SIG_LEN}", signature.len()),
        ));
    }
    Ok(Compact {
        signing_input: &token[..h.len() + 1 + c.len()],
        header: b64_decode(h, "header")?,
        claims: b64_decode(c, "claims")?,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7515 Appendix A.1: the HS256 example, byte for byte.
    #[test]
    fn rfc7515_appendix_a1() {
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let parts = split(token).unwrap();
        verify(&key, parts.signing_input.as_bytes(), &parts.signature).unwrap();
        assert_eq!(
            b64(&sign(&key, parts.signing_input.as_bytes())),
            token.rsplit('.').next().unwrap()
        );
        let mut forged = parts.signature.clone();
        forged[0] ^= 1;
        assert!(matches!(
            verify(&key, parts.signing_input.as_bytes(), &forged),
            Err(OpenError::BadSignature)
        ));
    }

    #[test]
    fn b64_len_matches_the_encoder() {
        for n in 0..100 {
            assert_eq!(b64_len(n), b64(&vec![0u8; n]).len());
        }
    }
}

//! The secure token: its canonical JSON, and the two on-air encodings of the same JWS.
//!
//! ```text
//! header  {"alg":"HS256","kid":"<kid>"}
//! claims  {"sid":<sender>,"ctr":<counter>,"iat":<unix s>,"dat":"<base64url ciphertext>"}
//! text    base64url(header) "." base64url(claims) "." base64url(HMAC-SHA256)     (ASCII)
//! packed  0x01 kid varint(sid) varint(ctr) varint(iat) ciphertext signature[32]   (binary)
//! ```
//!
//! Both encodings are rendered from the same [`TokenFields`], so a packed token always rebuilds the
//! exact compact JWT that was signed. `pack` refuses a compact JWT that is not in this canonical
//! form, because it could not be rebuilt byte for byte.

use serde::Deserialize;

use crate::jws::{self, SIG_B64_LEN, SIG_LEN};
use crate::keys::Kid;
use crate::varint;
use crate::OpenError;

/// First byte of a packed token: format and header template (`{"alg":"HS256","kid":…}`), v1.
/// It can never start a text token (those start with `eyJ`) or a legacy one.
pub const PACKED_V1: u8 = 0x01;
/// Fixed bytes of a packed token: format byte, kid, signature.
const PACKED_FIXED: usize = 2 + SIG_LEN;

/// Everything a token says, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenFields {
    pub kid: Kid,
    pub sid: u32,
    pub ctr: u32,
    pub iat: u64,
    pub ciphertext: Vec<u8>,
}

fn header_json(kid: Kid) -> String {
    format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#)
}

fn claims_json(f: &TokenFields) -> String {
    format!(
        r#"{{"sid":{},"ctr":{},"iat":{},"dat":"{}"}}"#,
        f.sid,
        f.ctr,
        f.iat,
        jws::b64(&f.ciphertext)
    )
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

impl TokenFields {
    /// `base64url(header).base64url(claims)`: what the signature covers.
    pub fn signing_input(&self) -> String {
        format!(
            "{}.{}",
            jws::b64(header_json(self.kid).as_bytes()),
            jws::b64(claims_json(self).as_bytes())
        )
    }

    pub fn to_text(&self, signature: &[u8; SIG_LEN]) -> String {
        format!("{}.{}", self.signing_input(), jws::b64(signature))
    }

    pub fn to_packed(&self, signature: &[u8; SIG_LEN]) -> Vec<u8> {
        let mut out = Vec::with_capacity(packed_len(
            self.sid,
            self.ctr,
            self.iat,
            self.ciphertext.len(),
        ));
        out.push(PACKED_V1);
        out.push(self.kid);
        varint::put(&mut out, u64::from(self.sid));
        varint::put(&mut out, u64::from(self.ctr));
        varint::put(&mut out, self.iat);
        out.extend_from_slice(&self.ciphertext);
        out.extend_from_slice(signature);
        out
    }
}

/// On-air length of a text token, computed without building it.
pub(crate) fn text_len(kid: Kid, sid: u32, ctr: u32, iat: u64, ciphertext_len: usize) -> usize {
    let header = header_json(kid).len();
    // {"sid":,"ctr":,"iat":,"dat":""} is 31 bytes around the values.
    let claims =
        31 + digits(sid.into()) + digits(ctr.into()) + digits(iat) + jws::b64_len(ciphertext_len);
    jws::b64_len(header) + 1 + jws::b64_len(claims) + 1 + SIG_B64_LEN
}

/// On-air length of a packed token, computed without building it.
pub(crate) fn packed_len(sid: u32, ctr: u32, iat: u64, ciphertext_len: usize) -> usize {
    PACKED_FIXED
        + varint::len(sid.into())
        + varint::len(ctr.into())
        + varint::len(iat)
        + ciphertext_len
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sid: u32,
    ctr: u32,
    iat: u64,
    dat: String,
}

/// A text token split, with its header parsed: enough to pick the key and verify the signature.
/// The claims stay raw bytes until [`claims`](Self::claims) is called, after verification, so
/// unauthenticated input reaches no more than the header parser.
pub(crate) struct SplitText<'a> {
    pub kid: Kid,
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
    claims_json: Vec<u8>,
}

impl SplitText<'_> {
    /// Parses the claims. Call after the signature was verified.
    pub fn claims(&self) -> Result<TokenFields, OpenError> {
        let claims: Claims = serde_json::from_slice(&self.claims_json)
            .map_err(|e| OpenError::malformed("claims", e.to_string()))?;
        Ok(TokenFields {
            kid: self.kid,
            sid: claims.sid,
            ctr: claims.ctr,
            iat: claims.iat,
            ciphertext: jws::b64_decode(&claims.dat, "claims dat")?,
        })
    }
}

/// Splits a text token and parses its header. Any JSON layout is accepted (it is a standard JWT);
/// the signature is checked over the bytes as received.
pub(crate) fn split_text(token: &str) -> Result<SplitText<'_>, OpenError> {
    let parts = jws::split(token)?;
    let header: Header = serde_json::from_slice(&parts.header)
        .map_err(|e| OpenError::malformed("header", format!("not a JWS header: {e}")))?;
    if header.alg != "HS256" {
        return Err(OpenError::UnsupportedAlg(header.alg));
    }
    let kid_text = header.kid.ok_or_else(|| {
        OpenError::malformed("header", "has no kid (is this a legacy-profile token?)")
    })?;
    let kid: Kid = kid_text.parse().map_err(|_| {
        OpenError::malformed("header", format!("kid {kid_text:?} is not a number 0–255"))
    })?;
    Ok(SplitText {
        kid,
        signing_input: parts.signing_input,
        signature: parts.signature,
        claims_json: parts.claims,
    })
}

/// Packs a text token losslessly; fails when it is not in the canonical form `seal` writes.
pub fn pack(token: &str) -> Result<Vec<u8>, OpenError> {
    let parsed = split_text(token)?;
    let fields = parsed.claims()?;
    if fields.signing_input() != parsed.signing_input {
        return Err(OpenError::malformed(
            "token",
            "its JSON is not in TMC's canonical form, so it cannot be packed losslessly",
        ));
    }
    let signature: [u8; SIG_LEN] = parsed
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| OpenError::malformed("signature", "is not 32 bytes"))?;
    Ok(fields.to_packed(&signature))
}

/// Rebuilds the exact compact JWT a packed token stands for.
pub fn unpack(packed: &[u8]) -> Result<String, OpenError> {
    if packed.len() < PACKED_FIXED + 3 {
        return Err(OpenError::malformed(
            "packed token",
            format!(
                "is {} bytes, shorter than the {} a token needs",
                packed.len(),
                PACKED_FIXED + 3
            ),
        ));
    }
    if packed[0] != PACKED_V1 {
        return Err(OpenError::malformed(
            "packed token",
            format!(
                "starts with 0x{:02x}, not the format byte 0x{PACKED_V1:02x}",
                packed[0]
            ),
        ));
    }
    let kid = packed[1];
    let (body, signature) = packed[2..].split_at(packed.len() - PACKED_FIXED);
    let mut rest = body;
    let mut field = |name: &'static str| {
        varint::take(&mut rest)
            .map_err(|e| OpenError::malformed("packed token", format!("{name}: {e}")))
    };
    let sid = field("sid")?;
    let ctr = field("ctr")?;
    let iat = field("iat")?;
    let fields = TokenFields {
        kid,
        sid: u32::try_from(sid)
            .map_err(|_| OpenError::malformed("packed token", "sid exceeds 32 bits"))?,
        ctr: u32::try_from(ctr)
            .map_err(|_| OpenError::malformed("packed token", "ctr exceeds 32 bits"))?,
        iat,
        ciphertext: rest.to_vec(),
    };
    let signature: &[u8; SIG_LEN] = signature
        .try_into()
        .map_err(|_| OpenError::malformed("packed token", "signature is not 32 bytes"))?;
    Ok(fields.to_text(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(ct_len: usize) -> TokenFields {
        TokenFields {
            kid: 7,
            sid: 10,
            ctr: 300,
            iat: 1_763_766_000,
            ciphertext: (0..ct_len as u8).collect(),
        }
    }

    #[test]
    fn computed_lengths_match_the_encodings() {
        for ct in [0, 1, 2, 3, 16, 31, 100, 200] {
            let f = fields(ct);
            let sig = [9u8; 32];
            assert_eq!(
                f.to_text(&sig).len(),
                text_len(f.kid, f.sid, f.ctr, f.iat, ct)
            );
            assert_eq!(f.to_packed(&sig).len(), packed_len(f.sid, f.ctr, f.iat, ct));
        }
    }

    #[test]
    fn pack_and_unpack_are_inverse() {
        let f = fields(20);
        let sig = [0xa5u8; 32];
        let text = f.to_text(&sig);
        let packed = pack(&text).unwrap();
        assert_eq!(packed, f.to_packed(&sig));
        assert_eq!(unpack(&packed).unwrap(), text);
    }

    #[test]
    fn non_canonical_json_cannot_be_packed() {
        let sig = jws::b64(&[0u8; 32]);
        let header = jws::b64(br#"{"kid":"7","alg":"HS256"}"#);
        let claims = jws::b64(br#"{"sid":10,"ctr":1,"iat":5,"dat":""}"#);
        let err = pack(&format!("{header}.{claims}.{sig}")).unwrap_err();
        assert!(err.to_string().contains("canonical"), "{err}");
    }
}

//! The legacy profile: tokens of the existing deployment, read and written for migration only.
//!
//! ```text
//! header  {"typ":"JWT","alg":"HS256"}
//! claims  {"data":"<base64(AES-128-CBC(plaintext NUL-padded to 16))>"}     standard base64, padded
//! key     "tmctmctmctmctmcA"   IV "0123456789123456" (fixed)   JWT secret "MQTT"
//! on air  the compact JWT as ASCII, then one NUL byte
//! ```
//!
//! It is insecure by construction: a fixed IV, published keys, no sender, no counter, so no replay
//! protection. Every use is logged as a warning.

use std::sync::Once;

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::{jws, OpenError, MAX_TOKEN_LEN};

/// AES-128 key of the existing deployment.
pub const LEGACY_AES_KEY: &[u8; 16] = b"tmctmctmctmctmcA";
/// Fixed CBC IV of the existing deployment.
pub const LEGACY_IV: &[u8; 16] = b"0123456789123456";
/// HS256 secret of the existing deployment.
pub const LEGACY_JWT_SECRET: &[u8] = b"MQTT";
/// Topic legacy readings are reported under: the legacy sensor only ever published there.
pub const LEGACY_TOPIC: &str = "/esp8266";

const HEADER_JSON: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;
type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

static WARN_ONCE: Once = Once::new();

fn warn_insecure() {
    WARN_ONCE.call_once(|| {
        tracing::warn!(
            "legacy profile in use: fixed public key and IV, no replay protection; migrate senders to the secure profile"
        );
    });
}

/// The legacy keys. The defaults are the existing deployment's; a site that changed them sets its own.
#[derive(Clone)]
pub struct LegacyKeys {
    pub aes_key: [u8; 16],
    pub iv: [u8; 16],
    pub jwt_secret: Vec<u8>,
}

impl Default for LegacyKeys {
    fn default() -> Self {
        LegacyKeys {
            aes_key: *LEGACY_AES_KEY,
            iv: *LEGACY_IV,
            jwt_secret: LEGACY_JWT_SECRET.to_vec(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    data: String,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LegacySealError {
    #[error("nothing to seal: the reading is empty")]
    Empty,
    #[error(
        "legacy token would be {size} bytes on air, more than the {max} one LoRa frame carries"
    )]
    TooLarge { size: usize, max: usize },
}

/// Seals `plaintext` as the existing deployment did: the frame bytes, ending in NUL.
pub fn seal(keys: &LegacyKeys, plaintext: &[u8]) -> Result<Vec<u8>, LegacySealError> {
    warn_insecure();
    if plaintext.is_empty() {
        return Err(LegacySealError::Empty);
    }
    let mut buf = plaintext.to_vec();
    buf.resize(plaintext.len().div_ceil(16) * 16, 0);
    let n = buf.len();
    let ciphertext = Aes128CbcEnc::new(&keys.aes_key.into(), &keys.iv.into())
        .encrypt_padded_mut::<NoPadding>(&mut buf, n)
        .expect("buffer is a whole number of blocks");
    let claims = serde_json::to_string(&Claims {
        data: STANDARD.encode(ciphertext),
    })
    .expect("claims always serialise");
    let signing_input = format!(
        "{}.{}",
        jws::b64(HEADER_JSON.as_bytes()),
        jws::b64(claims.as_bytes())
    );
    let signature = jws::sign(&keys.jwt_secret, signing_input.as_bytes());
    let mut frame = format!("{signing_input}.{}", jws::b64(&signature)).into_bytes();
    frame.push(0);
    if frame.len() > MAX_TOKEN_LEN {
        return Err(LegacySealError::TooLarge {
            size: frame.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    Ok(frame)
}

/// Opens a legacy frame (with or without its trailing NUL) and returns the plaintext without its padding
/// (trailing NULs, or PKCS#7: see [`unpad`]).
pub fn open(keys: &LegacyKeys, frame: &[u8]) -> Result<Vec<u8>, OpenError> {
    warn_insecure();
    let bytes = frame.strip_suffix(&[0]).unwrap_or(frame);
    if bytes.is_empty() {
        return Err(OpenError::Empty);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| OpenError::malformed("token", "legacy token is not ASCII"))?;
    let parts = jws::split(text)?;
    let header: Header = serde_json::from_slice(&parts.header)
        .map_err(|e| OpenError::malformed("header", format!("not a JWS header: {e}")))?;
    if header.alg != "HS256" {
        return Err(OpenError::UnsupportedAlg(header.alg));
    }
    jws::verify(
        &keys.jwt_secret,
        parts.signing_input.as_bytes(),
        &parts.signature,
    )?;
    let claims: Claims = serde_json::from_slice(&parts.claims)
        .map_err(|e| OpenError::malformed("claims", e.to_string()))?;
    // Senders of the old deployment used several base64 flavours; all decode to the same bytes.
    let mut buf = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(&claims.data).ok())
        .ok_or_else(|| OpenError::Legacy("data is not base64".into()))?;
    if buf.is_empty() || buf.len() % 16 != 0 {
        return Err(OpenError::Legacy(format!(
            "ciphertext is {} bytes, not a whole number of 16-byte AES blocks",
            buf.len()
        )));
    }
    let plaintext = Aes128CbcDec::new(&keys.aes_key.into(), &keys.iv.into())
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .map_err(|_| OpenError::Legacy("ciphertext does not decrypt".into()))?;
    Ok(unpad(plaintext).to_vec())
}

/// The plaintext without its padding. The old deployment's senders padded with NULs; some used PKCS#7 (the
/// last byte `n`, 1–16, repeated `n` times). A block that ends in such a run is taken for PKCS#7, the rest
/// loses its trailing NULs. Legacy readings are text, so a reading that really ends in bytes 0x01–0x10 at a
/// block boundary does not occur; if it did, those bytes would be taken for padding.
fn unpad(plaintext: &[u8]) -> &[u8] {
    if let Some(&n) = plaintext.last() {
        let n = usize::from(n);
        if (1..=16).contains(&n)
            && n <= plaintext.len()
            && plaintext[plaintext.len() - n..]
                .iter()
                .all(|&b| usize::from(b) == n)
        {
            return &plaintext[..plaintext.len() - n];
        }
    }
    let end = plaintext.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &plaintext[..end]
}

//! The site key ring: which keys may open tokens, and which one seals.
//!
//! File format (TOML, mode 0600, see `docs/wire-format.md`):
//!
//! ```toml
//! seal_kid = 2            # optional; default: the highest kid
//!
//! [[key]]
//! kid = 1                 # 0–255, travels in the token header
//! secret = "<64 hex>"     # 32-byte site secret
//!
//! [[key]]
//! kid = 2
//! secret = "<64 hex>"
//! ```
//!
//! Each secret is the input of HKDF-SHA256; the AES-128 key and the HMAC-SHA256 key are expanded
//! from it with different labels, so they are independent and only one value has to be shared.
//! Several keys may be listed during a rotation: all of them open, only `seal_kid` seals.

use std::collections::BTreeMap;
use std::path::Path;

use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tmc_secret_file::{Overwrite, SecretFileError};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of a site secret.
pub const SECRET_LEN: usize = 32;
/// HKDF salt: binds the derived keys to this protocol and its version.
const HKDF_SALT: &[u8] = b"tmc-envelope/v1";
const HKDF_INFO_AES: &[u8] = b"aes-128-ctr";
const HKDF_INFO_MAC: &[u8] = b"hmac-sha256";

/// Key id as it travels in the token header (`"kid":"<n>"`) and in the packed encoding (one byte).
pub type Kid = u8;

/// The keys derived from one site secret. Debug output never shows key bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SiteKey {
    #[zeroize(skip)]
    kid: Kid,
    pub(crate) aes: [u8; 16],
    pub(crate) mac: [u8; 32],
}

impl std::fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SiteKey {
    /// Derives the AES and MAC keys from a site secret.
    pub fn derive(kid: Kid, secret: &[u8; SECRET_LEN]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret);
        let mut key = SiteKey {
            kid,
            aes: [0; 16],
            mac: [0; 32],
        };
        // expand() only fails for outputs longer than 255 hash lengths.
        hk.expand(HKDF_INFO_AES, &mut key.aes)
            .expect("16 bytes is a valid HKDF-SHA256 output length");
        hk.expand(HKDF_INFO_MAC, &mut key.mac)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        key
    }

    pub fn kid(&self) -> Kid {
        self.kid
    }
}

/// Why a key ring could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    File(#[from] SecretFileError),
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}: key {index} (kid {kid}): secret must be {expected} hex characters ({bytes} bytes), found {found}")]
    SecretLength {
        path: String,
        index: usize,
        kid: u16,
        expected: usize,
        bytes: usize,
        found: usize,
    },
    #[error("{path}: key {index} (kid {kid}): secret is not hexadecimal")]
    SecretNotHex {
        path: String,
        index: usize,
        kid: u16,
    },
    #[error("{path}: key {index}: kid {kid} is out of range (0–255)")]
    KidRange {
        path: String,
        index: usize,
        kid: u16,
    },
    #[error("{path}: kid {kid} is listed twice")]
    DuplicateKid { path: String, kid: Kid },
    #[error("{path}: no [[key]] entries")]
    Empty { path: String },
    #[error("{path}: seal_kid = {kid} but no key has that kid")]
    UnknownSealKid { path: String, kid: u16 },
    #[error("the system random source failed: {0}")]
    Random(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRingFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    seal_kid: Option<u16>,
    #[serde(rename = "key", default)]
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    kid: u16,
    secret: Zeroizing<String>,
}

/// All keys a site accepts, and the one it seals with.
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: BTreeMap<Kid, SiteKey>,
    secrets: BTreeMap<Kid, Zeroizing<[u8; SECRET_LEN]>>,
    seal_kid: Kid,
}

impl KeyRing {
    /// A ring holding one freshly generated key.
    pub fn generate(kid: Kid) -> Result<Self, KeyRingError> {
        let mut ring = KeyRing {
            keys: BTreeMap::new(),
            secrets: BTreeMap::new(),
            seal_kid: kid,
        };
        ring.insert(kid, random_secret()?);
        Ok(ring)
    }

    /// A ring from explicit secrets (tests, provisioning tools). The last one seals.
    pub fn from_secrets(secrets: &[(Kid, [u8; SECRET_LEN])]) -> Option<Self> {
        let (last, _) = secrets.last()?;
        let mut ring = KeyRing {
            keys: BTreeMap::new(),
            secrets: BTreeMap::new(),
            seal_kid: *last,
        };
        for (kid, secret) in secrets {
            ring.insert(*kid, *secret);
        }
        Some(ring)
    }

    fn insert(&mut self, kid: Kid, secret: [u8; SECRET_LEN]) {
        self.keys.insert(kid, SiteKey::derive(kid, &secret));
        self.secrets.insert(kid, Zeroizing::new(secret));
    }

    /// Adds a new random key with the next kid and makes it the sealing key (rotation step 1:
    /// distribute the new ring to every receiver first, then to the relays).
    pub fn rotate(&mut self) -> Result<Kid, KeyRingError> {
        let next = self
            .keys
            .keys()
            .next_back()
            .map_or(Some(0), |k| k.checked_add(1))
            .or_else(|| (0..=Kid::MAX).find(|k| !self.keys.contains_key(k)))
            .ok_or_else(|| {
                KeyRingError::Random("all 256 kids are in use; remove old keys".into())
            })?;
        self.insert(next, random_secret()?);
        self.seal_kid = next;
        Ok(next)
    }

    /// Removes a retired key (rotation step 2, once no sender uses it any more).
    pub fn remove(&mut self, kid: Kid) -> bool {
        if kid == self.seal_kid {
            return false;
        }
        self.secrets.remove(&kid);
        self.keys.remove(&kid).is_some()
    }

    pub fn seal_key(&self) -> &SiteKey {
        // Invariant kept by every constructor: seal_kid is in the map.
        &self.keys[&self.seal_kid]
    }

    pub fn get(&self, kid: Kid) -> Option<&SiteKey> {
        self.keys.get(&kid)
    }

    pub fn kids(&self) -> impl Iterator<Item = Kid> + '_ {
        self.keys.keys().copied()
    }

    /// Parses a key ring; `origin` names the source in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, KeyRingError> {
        let path = origin.to_string();
        let file: KeyRingFile = toml::from_str(text).map_err(|e| KeyRingError::Syntax {
            path: path.clone(),
            message: e.message().to_string(),
        })?;
        if file.keys.is_empty() {
            return Err(KeyRingError::Empty { path });
        }
        let mut ring = KeyRing {
            keys: BTreeMap::new(),
            secrets: BTreeMap::new(),
            seal_kid: 0,
        };
        for (index, entry) in file.keys.iter().enumerate() {
            let kid = Kid::try_from(entry.kid).map_err(|_| KeyRingError::KidRange {
                path: path.clone(),
                index,
                kid: entry.kid,
            })?;
            let hex_text = entry.secret.trim();
            if hex_text.len() != 2 * SECRET_LEN {
                return Err(KeyRingError::SecretLength {
                    path,
                    index,
                    kid: entry.kid,
                    expected: 2 * SECRET_LEN,
                    bytes: SECRET_LEN,
                    found: hex_text.len(),
                });
            }
            let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
            hex::decode_to_slice(hex_text, &mut secret[..]).map_err(|_| {
                KeyRingError::SecretNotHex {
                    path: path.clone(),
                    index,
                    kid: entry.kid,
                }
            })?;
            if ring.keys.contains_key(&kid) {
                return Err(KeyRingError::DuplicateKid { path, kid });
            }
            ring.insert(kid, *secret);
        }
        ring.seal_kid = match file.seal_kid {
            Some(k) => Kid::try_from(k)
                .ok()
                .filter(|k| ring.keys.contains_key(k))
                .ok_or(KeyRingError::UnknownSealKid {
                    path: path.clone(),
                    kid: k,
                })?,
            None => *ring.keys.keys().next_back().unwrap_or(&0),
        };
        Ok(ring)
    }

    /// Loads a key ring file, refusing it when group or others can read it.
    pub fn load(path: &Path) -> Result<Self, KeyRingError> {
        let text = Zeroizing::new(tmc_secret_file::read_private_string(path)?);
        Self::parse(&text, &path.display().to_string())
    }

    /// The file text of this ring.
    pub fn to_toml(&self) -> Zeroizing<String> {
        let file = KeyRingFile {
            seal_kid: Some(u16::from(self.seal_kid)),
            keys: self
                .secrets
                .iter()
                .map(|(kid, secret)| KeyEntry {
                    kid: u16::from(*kid),
                    secret: Zeroizing::new(hex::encode(&secret[..])),
                })
                .collect(),
        };
        let body = Zeroizing::new(toml::to_string(&file).expect("a key ring always serialises"));
        Zeroizing::new(format!(
            "# TMC envelope key ring: secret, keep it mode 0600 and out of version control.\n\
             # Each secret feeds HKDF-SHA256, which derives the AES-128 and HMAC-SHA256 keys.\n\
             # All keys open tokens; seal_kid seals. See docs/wire-format.md.\n{}",
            *body
        ))
    }

    /// Writes the ring with mode 0600 (atomically; `overwrite` says whether a file may be replaced).
    pub fn save(&self, path: &Path, overwrite: Overwrite) -> Result<(), KeyRingError> {
        tmc_secret_file::write_private(path, self.to_toml().as_bytes(), overwrite)?;
        Ok(())
    }
}

fn random_secret() -> Result<[u8; SECRET_LEN], KeyRingError> {
    let mut secret = [0u8; SECRET_LEN];
    getrandom::fill(&mut secret).map_err(|e| KeyRingError::Random(e.to_string()))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn derived_keys_are_independent_and_stable() {
        let secret: [u8; 32] = std::array::from_fn(|i| i as u8);
        let key = SiteKey::derive(1, &secret);
        assert_ne!(&key.aes[..], &key.mac[..16]);
        // Pinned so that a change to the derivation cannot go unnoticed (it would break every site).
        assert_eq!(hex::encode(key.aes), "6802657f6318277a1d79be8a01f79bde");
        assert_eq!(
            hex::encode(key.mac),
            "fbc7224c9d8882f4e13920a99058573304c055b2d977c506f5bbefc2f8e48fde"
        );
        assert!(!format!("{key:?}").contains("aes"));
    }

    #[test]
    fn parses_and_picks_the_highest_kid_to_seal() {
        let text = format!("[[key]]\nkid = 3\nsecret = \"{SECRET_HEX}\"\n[[key]]\nkid = 7\nsecret = \"{SECRET_HEX}\"\n");
        let ring = KeyRing::parse(&text, "k.toml").unwrap();
        assert_eq!(ring.seal_key().kid(), 7);
        assert_eq!(ring.kids().collect::<Vec<_>>(), [3, 7]);
        let with_seal = format!("seal_kid = 3\n{text}");
        assert_eq!(KeyRing::parse(&with_seal, "k").unwrap().seal_key().kid(), 3);
    }

    #[test]
    fn round_trips_through_its_file_text() {
        let mut ring = KeyRing::generate(1).unwrap();
        let kid = ring.rotate().unwrap();
        assert_eq!(kid, 2);
        let again = KeyRing::parse(&ring.to_toml(), "x").unwrap();
        assert_eq!(again.seal_key().kid(), 2);
        assert_eq!(again.get(1).unwrap().aes, ring.get(1).unwrap().aes);
        assert_eq!(again.get(2).unwrap().mac, ring.get(2).unwrap().mac);
    }

    #[test]
    fn every_bad_ring_gets_a_precise_error() {
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "k.toml: no [[key]] entries"),
            ("[[key]]\nkid = 1\n".into(), "k.toml: missing field `secret`"),
            (format!("[[key]]\nkid = 300\nsecret = \"{SECRET_HEX}\""), "kid 300 is out of range"),
            ("[[key]]\nkid = 1\nsecret = \"abcd\"".into(), "must be 64 hex characters (32 bytes), found 4"),
            (format!("[[key]]\nkid = 1\nsecret = \"{}\"", "zz".repeat(32)), "secret is not hexadecimal"),
            (format!("[[key]]\nkid = 1\nsecret = \"{SECRET_HEX}\"\n[[key]]\nkid = 1\nsecret = \"{SECRET_HEX}\""), "kid 1 is listed twice"),
            (format!("seal_kid = 9\n[[key]]\nkid = 1\nsecret = \"{SECRET_HEX}\""), "seal_kid = 9 but no key has that kid"),
            (format!("[[key]]\nkid = 1\nsecret = \"{SECRET_HEX}\"\nextra = 1"), "unknown field `extra`"),
        ];
        for (text, expected) in cases {
            let err = KeyRing::parse(&text, "k.toml").unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{text:?}: got {err:?}, want {expected:?}"
            );
            assert!(err.starts_with("k.toml"), "{err}");
            assert!(
                !err.contains(SECRET_HEX),
                "secret leaked into an error: {err}"
            );
        }
    }

    #[test]
    fn saved_ring_is_private_and_open_copies_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let ring = KeyRing::generate(1).unwrap();
        ring.save(&path, Overwrite::Refuse).unwrap();
        assert_eq!(KeyRing::load(&path).unwrap().seal_key().kid(), 1);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = KeyRing::load(&path).unwrap_err().to_string();
        assert!(err.contains("mode 0644"), "{err}");
    }
}

//! The MQTT client key in an ATECC508A/608A secure element (feature `atecc`): a rustls signing key whose
//! signatures the chip makes, so the private key never leaves the chip.
//!
//! - [`ChipKey`] is a handle on one thread that owns the chip. The chip is created *inside* that thread by a
//!   `Send` factory, so a driver that is not `Send` (the simulator shares state through `Rc<RefCell<_>>`)
//!   works as well as the Linux one; the handle is `Send + Sync`, as rustls needs. At start the thread reads
//!   the slot's public key; after that it serves sign requests one at a time (a real chip is single-owner
//!   and takes tens of milliseconds per signature).
//! - Every request to the chip has a deadline ([`DEFAULT_TIMEOUT`]): a chip that does not answer fails the
//!   TLS handshake with a logged reason, it never blocks the relay for longer than that.
//! - TLS: ECDSA with P-256 and SHA-256 only (`ecdsa_secp256r1_sha256`): the message is hashed here, the chip
//!   signs the digest (Nonce pass-through + Sign external), and its R‖S is DER-encoded for TLS.
//! - [`ChipKey::client_config`] builds the rustls client configuration: the site CA as the only root and the
//!   chip key with its certificate as client identity, after checking that the certificate is for the key
//!   in the chip's slot.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;
use rumqttc::tokio_rustls::rustls;
use rumqttc::{TlsConfiguration, Transport};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{alg_id, CertificateDer, SubjectPublicKeyInfoDer};
use rustls::sign::{CertifiedKey, Signer, SigningKey, SingleCertAndKey};
use rustls::{ClientConfig, InconsistentKeys, RootCertStore, SignatureAlgorithm, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::{BrokerConfig, ChipKeyConfig, MqttConfigError};

/// How long one request to the chip (the public key at start, one signature) may take. A real chip needs
/// well under 200 ms for either, wake-up included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sign requests that may wait for the chip. A handshake makes one; more waiting means the chip is stuck.
const QUEUE: usize = 4;

/// What the chip thread needs from a chip: the P-256 public key of a slot and signatures of digests.
/// Implemented for the driver [`tmc_atecc::Atecc`] on any embedded-hal bus; tests may bring their own.
pub trait KeyChip {
    /// The public key X‖Y of the private key in `slot`.
    fn public_key(&mut self, slot: u8) -> Result<[u8; 64], String>;
    /// ECDSA signature R‖S of a SHA-256 digest with the key in `slot`.
    fn sign_digest(&mut self, slot: u8, digest: &[u8; 32]) -> Result<[u8; 64], String>;
}

impl<I: I2c, D: DelayNs> KeyChip for tmc_atecc::Atecc<I, D> {
    fn public_key(&mut self, slot: u8) -> Result<[u8; 64], String> {
        tmc_atecc::Atecc::public_key(self, slot).map_err(|e| e.to_string())
    }

    fn sign_digest(&mut self, slot: u8, digest: &[u8; 32]) -> Result<[u8; 64], String> {
        tmc_atecc::Atecc::sign_digest(self, slot, digest).map_err(|e| e.to_string())
    }
}

/// The chip key could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum ChipKeyError {
    #[error("{chip}: {reason}")]
    Chip { chip: String, reason: String },
    #[error("{chip} did not answer within {} ms", timeout.as_millis())]
    Timeout { chip: String, timeout: Duration },
    #[error("{chip} is still busy with earlier requests that did not finish")]
    Busy { chip: String },
    #[error("{chip}: the thread that owns the chip has ended")]
    Gone { chip: String },
    #[error("cannot start the thread for {chip}: {source}")]
    Thread {
        chip: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the certificate in cert ({}) is not for the key in the chip's slot {slot} ({chip})",
        cert.display()
    )]
    Mismatch {
        cert: PathBuf,
        slot: u8,
        chip: String,
    },
    #[error("{what} {}: {reason}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("TLS client configuration: {0}")]
    Tls(#[source] rustls::Error),
}

/// One sign request: the digest and where the answer goes.
struct Request {
    digest: [u8; 32],
    reply: SyncSender<Result<[u8; 64], String>>,
}

/// A P-256 key in a chip, served by the chip's own thread. Cloning shares the thread; it ends when the last
/// clone is dropped (after the request it may be working on).
#[derive(Clone)]
pub struct ChipKey {
    inner: Arc<Inner>,
}

struct Inner {
    requests: SyncSender<Request>,
    label: String,
    slot: u8,
    public_key: [u8; 64],
    spki: SubjectPublicKeyInfoDer<'static>,
    timeout: Duration,
}

impl fmt::Debug for ChipKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChipKey")
            .field("chip", &self.inner.label)
            .field("slot", &self.inner.slot)
            .finish_non_exhaustive()
    }
}

impl ChipKey {
    /// Starts the chip's thread: `factory` makes the chip there, then the key's public half is read from
    /// `slot`. `label` names the chip in errors ("ATECC 0x60 on /dev/i2c-1"); `timeout` bounds each request.
    pub fn spawn<C, F>(
        label: impl Into<String>,
        slot: u8,
        timeout: Duration,
        factory: F,
    ) -> Result<Self, ChipKeyError>
    where
        C: KeyChip,
        F: FnOnce() -> Result<C, String> + Send + 'static,
    {
        let label = label.into();
        let (requests, incoming) = mpsc::sync_channel::<Request>(QUEUE);
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("atecc".into())
            .spawn(move || {
                let mut chip = match factory() {
                    Ok(chip) => chip,
                    Err(reason) => {
                        let _ = ready_tx.send(Err(reason));
                        return;
                    }
                };
                let _ = ready_tx.send(chip.public_key(slot));
                for request in incoming {
                    // The requester may have given up (timeout); its answer then goes nowhere.
                    let _ = request.reply.send(chip.sign_digest(slot, &request.digest));
                }
            })
            .map_err(|source| ChipKeyError::Thread {
                chip: label.clone(),
                source,
            })?;
        let public_key = match ready_rx.recv_timeout(timeout) {
            Ok(Ok(key)) => key,
            Ok(Err(reason)) => {
                return Err(ChipKeyError::Chip {
                    chip: label,
                    reason,
                })
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(ChipKeyError::Timeout {
                    chip: label,
                    timeout,
                })
            }
            Err(RecvTimeoutError::Disconnected) => return Err(ChipKeyError::Gone { chip: label }),
        };
        let mut point = [0u8; 65];
        point[0] = 0x04; // uncompressed SEC1 point
        point[1..].copy_from_slice(&public_key);
        let spki = rustls::sign::public_key_to_spki(&alg_id::ECDSA_P256, point);
        Ok(ChipKey {
            inner: Arc::new(Inner {
                requests,
                label,
                slot,
                public_key,
                spki,
                timeout,
            }),
        })
    }

    /// The chip described by `config` on a Linux I²C bus (`/dev/i2c-N`), with [`DEFAULT_TIMEOUT`].
    pub fn open_linux(config: &ChipKeyConfig) -> Result<Self, ChipKeyError> {
        let label = format!(
            "ATECC {:#04x} on {}",
            config.address,
            config.device.display()
        );
        let (device, address) = (config.device.clone(), config.address);
        Self::spawn(label, config.slot, DEFAULT_TIMEOUT, move || {
            tmc_atecc::linux::open(&device, address).map_err(|e| e.to_string())
        })
    }

    /// Which chip, for logs.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The key slot.
    pub fn slot(&self) -> u8 {
        self.inner.slot
    }

    /// The public key X‖Y, as read from the chip at start.
    pub fn public_key(&self) -> [u8; 64] {
        self.inner.public_key
    }

    /// The public key as an X.509 SubjectPublicKeyInfo (DER), what a certificate for it contains.
    pub fn spki_der(&self) -> &[u8] {
        self.inner.spki.as_ref()
    }

    /// The chip's signature R‖S of a SHA-256 digest.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], ChipKeyError> {
        let chip = || self.inner.label.clone();
        let (reply, answer) = mpsc::sync_channel(1);
        self.inner
            .requests
            .try_send(Request {
                digest: *digest,
                reply,
            })
            .map_err(|e| match e {
                TrySendError::Full(_) => ChipKeyError::Busy { chip: chip() },
                TrySendError::Disconnected(_) => ChipKeyError::Gone { chip: chip() },
            })?;
        match answer.recv_timeout(self.inner.timeout) {
            Ok(Ok(signature)) => Ok(signature),
            Ok(Err(reason)) => Err(ChipKeyError::Chip {
                chip: chip(),
                reason,
            }),
            Err(RecvTimeoutError::Timeout) => Err(ChipKeyError::Timeout {
                chip: chip(),
                timeout: self.inner.timeout,
            }),
            Err(RecvTimeoutError::Disconnected) => Err(ChipKeyError::Gone { chip: chip() }),
        }
    }

    /// ECDSA P-256 with SHA-256 over `message`, DER-encoded (`Ecdsa-Sig-Value`, what TLS and X.509 carry).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ChipKeyError> {
        let digest: [u8; 32] = Sha256::digest(message).into();
        let rs = self.sign_digest(&digest)?;
        // r and s in 1..n-1, or the broker could only say "decrypt error".
        let signature =
            p256::ecdsa::Signature::from_slice(&rs).map_err(|_| ChipKeyError::Chip {
                chip: self.inner.label.clone(),
                reason: "the chip's signature is not a valid ECDSA signature".into(),
            })?;
        Ok(signature.to_der().as_bytes().to_vec())
    }

    /// The key with its certificate chain (PEM, end entity first, read from `cert_path`), after checking
    /// that the certificate is for this key.
    pub fn certified(
        &self,
        cert_pem: &[u8],
        cert_path: &Path,
    ) -> Result<CertifiedKey, ChipKeyError> {
        let file_error = |reason: String| ChipKeyError::File {
            what: "client certificate",
            path: cert_path.to_owned(),
            reason,
        };
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| file_error(format!("not PEM certificates: {e}")))?;
        if chain.is_empty() {
            return Err(file_error("holds no certificate".into()));
        }
        let certified = CertifiedKey::new(chain, Arc::new(ChipSigningKey(self.clone())));
        match certified.keys_match() {
            Ok(()) => Ok(certified),
            Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
                Err(ChipKeyError::Mismatch {
                    cert: cert_path.to_owned(),
                    slot: self.inner.slot,
                    chip: self.inner.label.clone(),
                })
            }
            Err(e) => Err(file_error(e.to_string())),
        }
    }

    /// rustls client configuration: `ca_pem` (the site CA, from `ca_path`) is the only root; this key and
    /// the certificate in `cert_pem` (from `cert_path`) are the client identity.
    pub fn client_config(
        &self,
        ca_pem: &[u8],
        ca_path: &Path,
        cert_pem: &[u8],
        cert_path: &Path,
    ) -> Result<Arc<ClientConfig>, ChipKeyError> {
        let ca_error = |reason: String| ChipKeyError::File {
            what: "CA certificate",
            path: ca_path.to_owned(),
            reason,
        };
        let mut roots = RootCertStore::empty();
        let cas = CertificateDer::pem_slice_iter(ca_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ca_error(format!("not PEM certificates: {e}")))?;
        let (_, unusable) = roots.add_parsable_certificates(cas);
        if roots.is_empty() {
            return Err(ca_error("holds no usable certificate".into()));
        }
        if unusable > 0 {
            tracing::warn!(
                "CA certificate {}: {unusable} certificate(s) in it are not usable",
                ca_path.display()
            );
        }
        let resolver: Arc<dyn ResolvesClientCert> =
            Arc::new(SingleCertAndKey::from(self.certified(cert_pem, cert_path)?));
        // ring, like the rest of the workspace's TLS (it cross-builds for aarch64 without cmake).
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(ChipKeyError::Tls)?
            .with_root_certificates(roots)
            .with_client_cert_resolver(resolver);
        Ok(Arc::new(config))
    }
}

/// The rumqttc transport for `broker` (its `ca` and `cert` files) with the client key in `key`.
pub fn transport(broker: &BrokerConfig, key: ChipKey) -> Result<Transport, MqttConfigError> {
    let (Some(ca), Some(cert)) = (&broker.ca, &broker.cert) else {
        return Err(MqttConfigError::Invalid(
            "a key in an ATECC chip needs `ca` and `cert`".into(),
        ));
    };
    let ca_pem = crate::read("CA certificate", ca)?;
    let cert_pem = crate::read("client certificate", cert)?;
    let config = key.client_config(&ca_pem, ca, &cert_pem, cert)?;
    tracing::info!(
        "MQTT client key: {} slot {} (certificate {})",
        key.label(),
        key.slot(),
        cert.display()
    );
    Ok(Transport::tls_with_config(TlsConfiguration::Rustls(config)))
}

/// The rustls face of a [`ChipKey`].
#[derive(Debug)]
struct ChipSigningKey(ChipKey);

impl SigningKey for ChipSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Box::new(ChipSigner(self.0.clone())) as Box<dyn Signer>)
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(self.0.inner.spki.clone())
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct ChipSigner(ChipKey);

impl Signer for ChipSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.0.sign(message).map_err(|e| {
            // rustls turns this into a failed handshake; the reason would otherwise be lost.
            tracing::warn!("TLS client signature failed: {e}");
            rustls::Error::General(format!("client key: {e}"))
        })
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Stuck;
    impl KeyChip for Stuck {
        fn public_key(&mut self, _slot: u8) -> Result<[u8; 64], String> {
            Ok([7; 64])
        }
        fn sign_digest(&mut self, _slot: u8, _digest: &[u8; 32]) -> Result<[u8; 64], String> {
            // A chip (or bus) that never answers: parked until the test process ends.
            loop {
                std::thread::park();
            }
        }
    }

    #[test]
    fn a_chip_that_does_not_answer_is_a_timeout_not_a_hang() {
        let timeout = Duration::from_millis(200);
        let key = ChipKey::spawn("stuck chip", 3, timeout, || Ok(Stuck)).unwrap();
        assert_eq!(key.public_key(), [7; 64]);
        let started = std::time::Instant::now();
        let err = key.sign(b"hello").unwrap_err().to_string();
        assert!(started.elapsed() < timeout * 10);
        assert_eq!(err, "stuck chip did not answer within 200 ms");
        // Later requests queue behind the stuck one and time out too, then the queue is full.
        let mut errors = Vec::new();
        for _ in 0..QUEUE + 1 {
            errors.push(key.sign_digest(&[0; 32]).unwrap_err());
        }
        assert!(
            matches!(errors.last(), Some(ChipKeyError::Busy { .. })),
            "{errors:?}"
        );
    }

    #[test]
    fn chip_errors_at_start_are_reported() {
        let err = ChipKey::spawn("ATECC 0x60 on /dev/i2c-9", 0, DEFAULT_TIMEOUT, || {
            Err::<Stuck, _>("cannot open I2C bus /dev/i2c-9: No such file".to_string())
        })
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "ATECC 0x60 on /dev/i2c-9: cannot open I2C bus /dev/i2c-9: No such file"
        );
        let err = ChipKey::spawn(
            "panicky",
            0,
            DEFAULT_TIMEOUT,
            || -> Result<Stuck, String> { panic!("factory failed") },
        )
        .unwrap_err();
        assert!(matches!(err, ChipKeyError::Gone { .. }), "{err}");
    }

    #[test]
    fn the_simulated_chip_signs_through_the_driver() {
        use tmc_atecc::sim::{Model, SimAtecc};
        let (generated_tx, generated_rx) = mpsc::channel();
        let key = ChipKey::spawn("simulated ATECC608A", 2, DEFAULT_TIMEOUT, move || {
            let sim = SimAtecc::new(Model::Atecc608a);
            let mut chip = tmc_atecc::Atecc::new(sim.i2c(), sim.delay());
            let public = chip.generate_key(2).map_err(|e| e.to_string())?;
            generated_tx.send(public).map_err(|e| e.to_string())?;
            Ok(chip)
        })
        .unwrap();
        assert_eq!(key.public_key(), generated_rx.recv().unwrap());
        let message = b"TLS 1.3, client CertificateVerify";
        let der = key.sign(message).unwrap();
        let mut point = vec![0x04];
        point.extend_from_slice(&key.public_key());
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &point)
            .verify(message, &der)
            .expect("the chip's DER signature verifies with its public key");
        assert!(ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &point
        )
        .verify(b"another message", &der)
        .is_err());
        // A key slot that holds no key yet: refused at start with the chip's status.
        let err = ChipKey::spawn("simulated ATECC608A", 3, DEFAULT_TIMEOUT, || {
            let sim = SimAtecc::new(Model::Atecc608a);
            Ok(tmc_atecc::Atecc::new(sim.i2c(), sim.delay()))
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("simulated ATECC608A: ATECC status"),
            "{err}"
        );
    }
}

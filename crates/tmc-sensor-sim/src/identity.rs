//! A sensor's TLS identity: its simulated ATECC608A (state in `SITE/chips/<name>.atecc`, 0600), the key in
//! slot 0 that never leaves it, and the site certificate issued from the chip's CSR
//! (`SITE/ecc.<name>.cert.pem`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use tmc_atecc::sim::{Model, SimAtecc, SimDelay, SimI2c};
use tmc_atecc::Atecc;
use tmc_pki::Site;

use crate::sim::ISSUE_DAYS;

/// The chip's key slot holding the sensor's TLS key.
pub const KEY_SLOT: u8 = 0;
/// Where a sensor's simulated chip keeps its non-volatile state, under the site directory.
pub const CHIPS_DIR: &str = "chips";

/// The file of `name`'s simulated chip.
pub fn chip_path(site: &Path, name: &str) -> PathBuf {
    site.join(CHIPS_DIR).join(format!("{name}.atecc"))
}

/// Why a sensor's identity cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "{sensor}: no client certificate at {} (enroll its chip with `tmc-provision sensor-identity --site {} --name {sensor} --chip sim:{}`, or pass --issue)",
        cert.display(), site.display(), chip.display()
    )]
    NoCertificate {
        sensor: String,
        cert: PathBuf,
        chip: PathBuf,
        site: PathBuf,
    },
    #[error(
        "{sensor}: {} exists but the chip holding its key does not ({}): a sensor signs with its chip's key (re-enroll it: `tmc-provision sensor-identity --site {} --name {sensor} --chip sim:{} --new-key`)",
        cert.display(), chip.display(), site.display(), chip.display()
    )]
    NoChip {
        sensor: String,
        cert: PathBuf,
        chip: PathBuf,
        site: PathBuf,
    },
    #[error(
        "{sensor}: {} certifies another key than slot {KEY_SLOT} of its chip {}: the certificate is not this chip's",
        cert.display(), chip.display()
    )]
    KeyMismatch {
        sensor: String,
        cert: PathBuf,
        chip: PathBuf,
    },
    #[error("{sensor}: enrolling its chip: {error}")]
    Enroll {
        sensor: String,
        error: tmc_enroll::IdentityError,
    },
    #[error("{sensor}: chip {}: {message}", chip.display())]
    Chip {
        sensor: String,
        chip: PathBuf,
        message: String,
    },
    #[error("{}: {problem}", path.display())]
    Certificate { path: PathBuf, problem: String },
}

/// A sensor's checked identity: what its thread needs to open its chip and make TLS connections.
#[derive(Debug, Clone)]
pub(crate) struct ChipIdentity {
    pub sensor: String,
    pub chip: PathBuf,
    /// The site CA certificate (DER): the only issuer the sensor trusts.
    pub ca_der: Vec<u8>,
    pub ca_path: PathBuf,
    /// The sensor's certificate (DER), for the chip's key.
    pub cert_der: Vec<u8>,
    /// The name the broker's certificate must carry.
    pub broker_name: String,
}

/// Gives sensor `name` of `site` a simulated chip with a key made inside it and a certificate for that key
/// from the chip's CSR (topics `sensors/<name>/#` and `extra_topics`), unless it has a certificate already;
/// then checks that the certificate is the chip's. What `--issue` does, for programs that set up a site
/// (the broker's ACL must be written after this).
pub fn enroll_sensor(
    site: &Site,
    name: &str,
    extra_topics: &[String],
) -> Result<(), IdentityError> {
    prepare(site, name, extra_topics, tmc_pki::DEFAULT_BROKER_HOST, true).map(|_| ())
}

/// Checks `name`'s certificate and chip, enrolling a chip and issuing its certificate first when the
/// sensor has no certificate and `issue` is set.
pub(crate) fn prepare(
    site: &Site,
    name: &str,
    extra_topics: &[String],
    broker_name: &str,
    issue: bool,
) -> Result<ChipIdentity, IdentityError> {
    let cert = site.cert_path(name);
    let chip = chip_path(site.dir(), name);
    if !cert.exists() {
        if !issue {
            return Err(IdentityError::NoCertificate {
                sensor: name.to_owned(),
                cert,
                chip,
                site: site.dir().to_owned(),
            });
        }
        enroll(site, name, extra_topics, &chip)?;
    }
    if !chip.exists() {
        return Err(IdentityError::NoChip {
            sensor: name.to_owned(),
            cert,
            chip,
            site: site.dir().to_owned(),
        });
    }
    let cert_der = pem_der(&cert)?;
    let ca_path = site.dir().join("ecc.ca.cert.pem");
    let ca_der = pem_der(&ca_path)?;
    let certified = certificate_key(&cert, &cert_der)?;
    let mut opened = Chip::open(name, &chip)?;
    let held = opened
        .driver
        .public_key(KEY_SLOT)
        .map_err(|e| IdentityError::Chip {
            sensor: name.to_owned(),
            chip: chip.clone(),
            message: format!("reading slot {KEY_SLOT}'s public key: {e}"),
        })?;
    if held != certified {
        return Err(IdentityError::KeyMismatch {
            sensor: name.to_owned(),
            cert,
            chip,
        });
    }
    Ok(ChipIdentity {
        sensor: name.to_owned(),
        chip,
        ca_der,
        ca_path,
        cert_der,
        broker_name: broker_name.to_owned(),
    })
}

/// A new chip (key made inside it) and a certificate from its CSR, through `tmc-enroll` (as `tmc-provision sensor-identity`).
fn enroll(
    site: &Site,
    name: &str,
    extra_topics: &[String],
    chip: &Path,
) -> Result<(), IdentityError> {
    let enroll_error = |error| IdentityError::Enroll {
        sensor: name.to_owned(),
        error,
    };
    if let Some(dir) = chip.parent() {
        std::fs::create_dir_all(dir).map_err(|e| IdentityError::Chip {
            sensor: name.to_owned(),
            chip: chip.to_owned(),
            message: format!("creating {}: {e}", dir.display()),
        })?;
    }
    let options = tmc_enroll::EnrollOptions {
        site: site.dir().to_owned(),
        name: name.to_owned(),
        // Only what the topic style needs beyond sensors/<name>/# (enrollment's own default otherwise).
        topics: extra_topics.to_vec(),
        slot: KEY_SLOT,
        new_key: false,
        identity_file: None,
        days: ISSUE_DAYS,
    };
    let report = tmc_enroll::enroll_chip(&tmc_enroll::ChipSpec::Sim(chip.to_owned()), &options)
        .map_err(enroll_error)?;
    for warning in &report.warnings {
        tracing::warn!("{name}: {warning}");
    }
    tracing::warn!(
        "enrolled {name}: a key in its chip {} and a certificate for it: regenerate the broker configuration \
         (tmc-pki broker-config) and reload mosquitto so that its ACL lets {name} publish",
        chip.display()
    );
    Ok(())
}

/// A sensor's simulated chip and the driver talking to it. Not `Send`: one per sensor thread.
pub(crate) struct Chip {
    pub driver: Atecc<SimI2c, SimDelay>,
    _sim: SimAtecc,
}

impl Chip {
    /// Loads the chip's saved state (it must exist: a missing chip is not silently replaced by a new one).
    pub fn open(sensor: &str, path: &Path) -> Result<Chip, IdentityError> {
        let chip_error = |message: String| IdentityError::Chip {
            sensor: sensor.to_owned(),
            chip: path.to_owned(),
            message,
        };
        if !path.is_file() {
            return Err(chip_error("no such chip file".into()));
        }
        let sim = tmc_atecc::sim::file::load_or_create(path, Model::Atecc608a)
            .map_err(|e| chip_error(e.to_string()))?;
        let driver = Atecc::new(sim.i2c(), sim.delay());
        Ok(Chip { driver, _sim: sim })
    }
}

/// The DER of a one-certificate PEM file.
fn pem_der(path: &Path) -> Result<Vec<u8>, IdentityError> {
    let bad = |problem: String| IdentityError::Certificate {
        path: path.to_owned(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let body: String = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    if body.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| bad(format!("bad base64: {e}")))
}

/// The P-256 public key X‖Y a certificate holds.
fn certificate_key(path: &Path, der: &[u8]) -> Result<[u8; 64], IdentityError> {
    let bad = |problem: String| IdentityError::Certificate {
        path: path.to_owned(),
        problem,
    };
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| bad(format!("not an X.509 certificate: {e}")))?;
    match cert.public_key().subject_public_key.data.split_first() {
        Some((0x04, xy)) if xy.len() == 64 => {
            let mut key = [0u8; 64];
            key.copy_from_slice(xy);
            Ok(key)
        }
        _ => Err(bad("not an uncompressed P-256 public key".into())),
    }
}

//! The concentrator's certificates: its relay identity (issued here when new), the CA certificate and the
//! broker's drop-in. The CA key is only used to issue, never copied.

use std::path::Path;

use time::OffsetDateTime;
use tmc_pki::broker::{self, BrokerOptions};
use tmc_pki::validate::{self, CertCheck};
use tmc_pki::{Identity, Role, Site, Validity, BROKER_NAME, DEFAULT_BROKER_HOST};

use crate::boot_bundle::layout::{BROKER_DIR, CA_CERT, MOSQUITTO_TMC};
use crate::card::bundle::Bundle;
use crate::card::configs::{relay_cert, relay_key};
use crate::card::error::{io, WriteError};

/// Lifetime of a relay certificate issued here (tmc-pki's default for issued certificates).
const RELAY_CERT_DAYS: i64 = 825;

fn read(path: &Path) -> Result<Vec<u8>, WriteError> {
    std::fs::read(path).map_err(io(path))
}

fn text(path: &Path, bytes: &[u8]) -> Result<String, WriteError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| WriteError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 PEM text"),
    })
}

/// Checks a certificate of the site against its CA (and its key, and for the broker its host name).
fn check_cert(
    site: &Site,
    name: &str,
    key: Option<&[u8]>,
    host: Option<&str>,
) -> Result<Vec<u8>, WriteError> {
    let ca_path = site.dir().join(CA_CERT);
    let ca = text(&ca_path, &read(&ca_path)?)?;
    let cert_path = site.cert_path(name);
    let cert_bytes = read(&cert_path)?;
    let cert = text(&cert_path, &cert_bytes)?;
    let key = match key {
        Some(k) => Some(text(&site.key_path(name), k)?),
        None => None,
    };
    validate::check(&CertCheck {
        name,
        cert_pem: &cert,
        ca_pem: &ca,
        key_pem: key.as_deref(),
        host,
        now: OffsetDateTime::now_utc(),
    })
    .map_err(|problem| WriteError::Certificate {
        path: cert_path,
        problem,
    })?;
    Ok(cert_bytes)
}

/// The broker certificate must be valid for the name the relay and the sensors connect to.
pub fn check_broker(site: &Site) -> Result<(), WriteError> {
    let key = tmc_secret_file::read_private(&site.key_path(BROKER_NAME))?;
    check_cert(site, BROKER_NAME, Some(&key), Some(DEFAULT_BROKER_HOST))?;
    Ok(())
}

/// `Ok(true)` when `name` is a live relay identity of the site, `Ok(false)` when it is not issued yet;
/// refused when it is issued for another role, revoked, or from a CSR (its key is not in the site).
pub fn relay_identity_exists(site: &Site, name: &str) -> Result<bool, WriteError> {
    let refuse = |problem: String| WriteError::Identity {
        name: name.to_owned(),
        problem,
    };
    let Some(identity) = site.list()?.into_iter().find(|i| i.name == name) else {
        return Ok(false);
    };
    if identity.role != Role::Relay {
        return Err(refuse(format!(
            "issued as a {} in {}, not as a relay: pick another name for this concentrator",
            identity.role,
            site.dir().display()
        )));
    }
    if identity.revoked {
        return Err(refuse(format!(
            "revoked in {}: pick a new name for this concentrator",
            site.dir().display()
        )));
    }
    if identity.from_csr {
        return Err(refuse(
            "issued from a CSR: its key is not in the site directory, so it cannot go on the card"
                .into(),
        ));
    }
    Ok(true)
}

/// Issues a relay certificate for `name`.
pub fn issue_relay(site: &Site, name: &str) -> Result<Identity, WriteError> {
    Ok(site.issue(name, Role::Relay, &[], Validity::days(RELAY_CERT_DAYS))?)
}

/// Adds the CA certificate and the relay's certificate and key (checked against the CA and each other).
pub fn add_relay_files(site: &Site, name: &str, bundle: &mut Bundle) -> Result<(), WriteError> {
    let ca_path = site.dir().join(CA_CERT);
    bundle.add(CA_CERT, read(&ca_path)?, false);
    let key = tmc_secret_file::read_private(&site.key_path(name))?;
    let cert = check_cert(site, name, Some(&key), None)?;
    bundle.add(relay_cert(name), cert, false);
    bundle.add(relay_key(name), key, true);
    Ok(())
}

/// Adds the mosquitto drop-in as tmc-pki writes it, for installation in `/etc/mosquitto/tmc`. It is
/// written into a private temporary directory (0700, removed on return) and read back, so that the card
/// gets exactly what `tmc-pki broker-config` would produce, ACL included.
pub fn add_broker_files(site: &Site, bundle: &mut Bundle) -> Result<(), WriteError> {
    let tmp = tempfile::Builder::new()
        .prefix("tmc-provision-broker.")
        .tempdir()
        .map_err(io(&std::env::temp_dir()))?;
    let options = BrokerOptions {
        install_dir: Some(MOSQUITTO_TMC.into()),
        ..BrokerOptions::default()
    };
    for path in broker::write(site, &options, tmp.path())? {
        let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let secret = crate::boot_bundle::layout::must_be_secret(file);
        let bytes = if secret {
            tmc_secret_file::read_private(&path)?
        } else {
            read(&path)?
        };
        bundle.add(format!("{BROKER_DIR}/{file}"), bytes, secret);
    }
    Ok(())
}

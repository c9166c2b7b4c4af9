//! A site directory: the CA, what it issued, the CRL and the envelope key ring.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType,
    SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};
use tmc_envelope::KeyRing;
use tmc_secret_file::Overwrite;

use crate::error::{io, PkiError};
use crate::inventory::{Identity, Inventory, Role};

/// File name stem of the broker's server certificate: `ecc.broker.cert.pem`.
pub const BROKER_NAME: &str = "broker";
/// The name sensors connect to (dnsmasq answers it with the AP address).
pub const DEFAULT_BROKER_HOST: &str = "mqtt.com";
const CA_NAME: &str = "ca";
const ENVELOPE_KEYS: &str = "envelope-keys.toml";
const INVENTORY: &str = "pki.toml";
const CRL_FILE: &str = "ecc.ca.crl.pem";
/// A CRL is reissued on every revocation; this is how long a CRL stays valid without one.
const CRL_LIFETIME: Duration = Duration::days(365);

/// Validity of a certificate to issue.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From an hour ago (clock skew between machines) for `days`.
    pub fn days(days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
        }
    }
}

/// What `init` creates.
#[derive(Debug, Clone)]
pub struct SiteInit {
    /// Site name, in the CA's subject.
    pub site_name: String,
    /// The broker's DNS name (default `mqtt.com`).
    pub broker_host: String,
    /// More names or addresses for the broker certificate (the AP address, 127.0.0.1, …).
    pub extra_names: Vec<String>,
    pub ca_days: i64,
    pub cert_days: i64,
}

impl Default for SiteInit {
    fn default() -> Self {
        SiteInit {
            site_name: "TMC site".into(),
            broker_host: DEFAULT_BROKER_HOST.into(),
            extra_names: vec!["10.33.33.1".into()],
            ca_days: 3650,
            cert_days: 825,
        }
    }
}

/// A site directory.
#[derive(Debug, Clone)]
pub struct Site {
    dir: PathBuf,
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    // Positive and not starting with a zero byte: a 16-byte serial as RFC 5280 §4.1.2.2 wants.
    getrandom_fill(&mut bytes)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn getrandom_fill(bytes: &mut [u8]) -> Result<(), PkiError> {
    getrandom::fill(bytes).map_err(|e| PkiError::Random(e.to_string()))
}

fn check_name(name: &str) -> Result<(), PkiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name != CA_NAME
        && name != BROKER_NAME
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(PkiError::BadName(name.to_string()))
    }
}

/// Sensor topics live under `sensors/<name>/`; the broker ACL grants each sensor its own space.
const SENSOR_SPACE: &str = "sensors";

/// Checks one topic a sensor may write to, as it goes into the broker ACL (as a write line for the
/// sensor and a read line for every relay). A topic is concrete, or concrete with `#` as its whole
/// last level; it may not reach into the broker's `$` topics or another sensor's `sensors/<other>/`.
pub(crate) fn check_topic(name: &str, topic: &str) -> Result<(), PkiError> {
    match topic_problem(name, topic) {
        Some(problem) => Err(PkiError::BadTopic {
            name: name.into(),
            topic: topic.into(),
            problem,
        }),
        None => Ok(()),
    }
}

fn topic_problem(name: &str, topic: &str) -> Option<&'static str> {
    if topic.is_empty() {
        return Some("is empty");
    }
    if topic.chars().any(char::is_control) {
        return Some("contains control characters");
    }
    if topic.starts_with(char::is_whitespace) || topic.ends_with(char::is_whitespace) {
        // mosquitto trims ACL lines: " sensors/x/#" would become another sensor's space.
        return Some("starts or ends with white space");
    }
    if topic.len() > usize::from(u16::MAX) {
        return Some("is longer than MQTT's 65535 bytes");
    }
    if topic.starts_with('$') {
        return Some("topics starting with $ belong to the broker ($SYS), not to sensors");
    }
    let levels: Vec<&str> = topic.split('/').collect();
    let last = levels.len() - 1;
    for (i, level) in levels.iter().enumerate() {
        if level.contains('+') || (level.contains('#') && (i != last || *level != "#")) {
            return Some(
                "a sensor publishes to concrete topics; the only wildcard allowed is # as the whole last level (garden/#)",
            );
        }
        // A leading empty level is the legacy "/esp8266"; anywhere else it is a typo ("a//b", "a/").
        if level.is_empty() && i != 0 {
            return Some("has an empty level (\"//\" or a trailing \"/\")");
        }
    }
    if last == 0 && levels[0] == "#" {
        return Some("a lone # is every topic, other sensors' included");
    }
    if levels[0] == SENSOR_SPACE && levels.get(1) != Some(&name) {
        return Some("inside sensors/ a sensor may only publish to its own sensors/<name>/ space");
    }
    None
}

fn san(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid_dns = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !valid_dns {
        return Err(PkiError::BadHostName(name.into()));
    }
    Ok(SanType::DnsName(
        name.try_into()
            .map_err(|_| PkiError::BadHostName(name.into()))?,
    ))
}

fn leaf_params(
    common_name: &str,
    validity: Validity,
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = KeyIdMethod::Sha256;
    Ok(params)
}

fn serial_hex(params: &CertificateParams) -> String {
    params
        .serial_number
        .as_ref()
        .map(|s| hex::encode(s.as_ref()))
        .unwrap_or_default()
}

impl Site {
    /// An existing site directory.
    pub fn open(dir: &Path) -> Result<Self, PkiError> {
        if !dir.join("ecc.ca.cert.pem").exists() {
            return Err(PkiError::NotASite(dir.to_path_buf()));
        }
        Ok(Site {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cert_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("ecc.{name}.cert.pem"))
    }

    pub fn key_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("ecc.{name}.key.pem"))
    }

    pub fn crl_path(&self) -> PathBuf {
        self.dir.join(CRL_FILE)
    }

    pub fn envelope_keys_path(&self) -> PathBuf {
        self.dir.join(ENVELOPE_KEYS)
    }

    fn inventory_path(&self) -> PathBuf {
        self.dir.join(INVENTORY)
    }

    /// Creates a site: CA, broker certificate, empty CRL, envelope key ring, inventory.
    pub fn init(dir: &Path, init: &SiteInit) -> Result<Self, PkiError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let site = Site {
            dir: dir.to_path_buf(),
        };
        if site.cert_path(CA_NAME).exists() || site.key_path(CA_NAME).exists() {
            return Err(PkiError::SiteExists(dir.to_path_buf()));
        }
        // Validate every name before anything is written.
        let mut names = vec![san(&init.broker_host)?];
        for extra in &init.extra_names {
            names.push(san(extra)?);
        }

        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut ca = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{} CA", init.site_name));
        dn.push(DnType::OrganizationName, init.site_name.clone());
        ca.distinguished_name = dn;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.serial_number = Some(random_serial()?);
        let validity = Validity::days(init.ca_days);
        ca.not_before = validity.not_before;
        ca.not_after = validity.not_after;
        ca.key_identifier_method = KeyIdMethod::Sha256;
        let ca_cert = ca.self_signed(&ca_key)?;
        tmc_secret_file::write_private(
            &site.key_path(CA_NAME),
            ca_key.serialize_pem().as_bytes(),
            Overwrite::Refuse,
        )?;
        write_public(&site.cert_path(CA_NAME), ca_cert.pem().as_bytes())?;

        let issuer = Issuer::new(ca, &ca_key);
        let server_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut server = leaf_params(
            &init.broker_host,
            Validity::days(init.cert_days),
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        server.key_usages.push(KeyUsagePurpose::KeyAgreement);
        server.subject_alt_names = names;
        let server_cert = server.signed_by(&server_key, &issuer)?;
        tmc_secret_file::write_private(
            &site.key_path(BROKER_NAME),
            server_key.serialize_pem().as_bytes(),
            Overwrite::Refuse,
        )?;
        write_public(&site.cert_path(BROKER_NAME), server_cert.pem().as_bytes())?;

        let ring = KeyRing::generate(1)?;
        ring.save(&site.envelope_keys_path(), Overwrite::Refuse)?;

        let mut inventory = Inventory::default();
        site.write_crl(&issuer, &mut inventory)?;
        inventory.save(&site.inventory_path())?;
        Ok(site)
    }

    fn inventory(&self) -> Result<Inventory, PkiError> {
        let path = self.inventory_path();
        if path.exists() {
            Inventory::load(&path)
        } else {
            Ok(Inventory::default())
        }
    }

    /// The CA as an issuer. Needs the CA key: only on the machine that issues certificates.
    fn with_issuer<T>(
        &self,
        f: impl FnOnce(&Issuer<'_, &KeyPair>) -> Result<T, PkiError>,
    ) -> Result<T, PkiError> {
        let key_path = self.key_path(CA_NAME);
        let key_pem = tmc_secret_file::read_private_string(&key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::BadFile {
            path: key_path.clone(),
            message: format!("not a PEM private key: {e}"),
        })?;
        let cert_path = self.cert_path(CA_NAME);
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, &key).map_err(|e| PkiError::BadFile {
            path: cert_path,
            message: format!("not a CA certificate: {e}"),
        })?;
        f(&issuer)
    }

    fn client_params(&self, name: &str, validity: Validity) -> Result<CertificateParams, PkiError> {
        check_name(name)?;
        leaf_params(name, validity, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// Default topics of a role: a sensor publishes under `sensors/<name>/`.
    fn topics(name: &str, role: Role, topics: &[String]) -> Result<Vec<String>, PkiError> {
        if role != Role::Sensor {
            return Ok(Vec::new());
        }
        let mut all = vec![format!("{SENSOR_SPACE}/{name}/#")];
        for t in topics {
            check_topic(name, t)?;
            if !all.contains(t) {
                all.push(t.clone());
            }
        }
        Ok(all)
    }

    /// Issues a client certificate with a new key (written 0600 next to it).
    pub fn issue(
        &self,
        name: &str,
        role: Role,
        topics: &[String],
        validity: Validity,
    ) -> Result<Identity, PkiError> {
        let inventory = self.inventory()?;
        if inventory.get(name).is_some() {
            return Err(PkiError::AlreadyIssued(name.into()));
        }
        let params = self.client_params(name, validity)?;
        let topics = Self::topics(name, role, topics)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = self.with_issuer(|issuer| Ok(params.signed_by(&key, issuer)?))?;
        tmc_secret_file::write_private(
            &self.key_path(name),
            key.serialize_pem().as_bytes(),
            Overwrite::Refuse,
        )?;
        write_public(&self.cert_path(name), cert.pem().as_bytes())?;
        let identity = Identity::new(name, role, serial_hex(&params), validity, topics, false);
        self.record(inventory, identity)
    }

    fn sign_csr(
        &self,
        name: &str,
        csr_pem: &str,
        validity: Validity,
    ) -> Result<(CertificateParams, String), PkiError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| PkiError::Csr(format!("not a PEM certificate request: {e}")))?;
        if csr.public_key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(PkiError::Csr("the request's key is not ECC P-256".into()));
        }
        // Only the public key comes from the request: the site decides name, usage and lifetime.
        csr.params = self.client_params(name, validity)?;
        let params = csr.params.clone();
        let cert = self.with_issuer(|issuer| Ok(csr.signed_by(issuer)?))?;
        Ok((params, cert.pem()))
    }

    /// Signs a certificate request (from a secure element: the key never leaves it).
    pub fn issue_csr(
        &self,
        name: &str,
        role: Role,
        topics: &[String],
        csr_pem: &str,
        validity: Validity,
    ) -> Result<Identity, PkiError> {
        let inventory = self.inventory()?;
        if inventory.get(name).is_some() {
            return Err(PkiError::AlreadyIssued(name.into()));
        }
        let topics = Self::topics(name, role, topics)?;
        let (params, pem) = self.sign_csr(name, csr_pem, validity)?;
        write_public(&self.cert_path(name), pem.as_bytes())?;
        let identity = Identity::new(name, role, serial_hex(&params), validity, topics, true);
        self.record(inventory, identity)
    }

    /// A new certificate for an identity: same key (or a new CSR), new serial and validity.
    pub fn renew(
        &self,
        name: &str,
        csr_pem: Option<&str>,
        validity: Validity,
    ) -> Result<Identity, PkiError> {
        let mut inventory = self.inventory()?;
        let identity = inventory
            .get(name)
            .cloned()
            .ok_or_else(|| PkiError::UnknownIdentity(name.into()))?;
        if identity.revoked {
            return Err(PkiError::Revoked(name.into()));
        }
        let (params, pem) = match csr_pem {
            Some(csr) => self.sign_csr(name, csr, validity)?,
            None if identity.from_csr => return Err(PkiError::RenewNeedsCsr { name: name.into() }),
            None => {
                let key_path = self.key_path(name);
                let key_pem = tmc_secret_file::read_private_string(&key_path)?;
                let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::BadFile {
                    path: key_path,
                    message: format!("not a PEM private key: {e}"),
                })?;
                let params = self.client_params(name, validity)?;
                let cert = self.with_issuer(|issuer| Ok(params.signed_by(&key, issuer)?))?;
                (params, cert.pem())
            }
        };
        write_public(&self.cert_path(name), pem.as_bytes())?;
        let entry = inventory.get_mut(name).expect("looked up above");
        entry.serial = serial_hex(&params);
        entry.not_after = validity.not_after.unix_timestamp();
        entry.from_csr = csr_pem.is_some();
        let renewed = entry.clone();
        inventory.save(&self.inventory_path())?;
        Ok(renewed)
    }

    /// Revokes an identity's certificate and rewrites the CRL (mosquitto reads it at start and on SIGHUP).
    pub fn revoke(&self, name: &str) -> Result<Identity, PkiError> {
        let mut inventory = self.inventory()?;
        let entry = inventory
            .get_mut(name)
            .ok_or_else(|| PkiError::UnknownIdentity(name.into()))?;
        if !entry.revoked {
            entry.revoked = true;
            let serial = entry.serial.clone();
            if !entry.revoked_serials.contains(&serial) {
                entry.revoked_serials.push(serial);
            }
        }
        let revoked = entry.clone();
        self.with_issuer(|issuer| self.write_crl(issuer, &mut inventory))?;
        inventory.save(&self.inventory_path())?;
        Ok(revoked)
    }

    fn write_crl(
        &self,
        issuer: &Issuer<'_, &KeyPair>,
        inventory: &mut Inventory,
    ) -> Result<(), PkiError> {
        let now = OffsetDateTime::now_utc();
        inventory.crl_number += 1;
        let revoked_certs = inventory
            .identities
            .iter()
            .flat_map(|i| i.revoked_serials.iter())
            .filter_map(|s| hex::decode(s).ok())
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial),
                revocation_time: now,
                reason_code: Some(RevocationReason::Unspecified),
                invalidity_date: None,
            })
            .collect();
        let crl = CertificateRevocationListParams {
            this_update: now - Duration::hours(1),
            next_update: now + CRL_LIFETIME,
            crl_number: SerialNumber::from(inventory.crl_number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(issuer)?;
        write_public(&self.crl_path(), crl.pem()?.as_bytes())
    }

    /// Adds a newly issued identity to the inventory.
    fn record(&self, mut inventory: Inventory, identity: Identity) -> Result<Identity, PkiError> {
        inventory.identities.push(identity.clone());
        inventory.save(&self.inventory_path())?;
        Ok(identity)
    }

    /// Every identity the site issued.
    pub fn list(&self) -> Result<Vec<Identity>, PkiError> {
        Ok(self.inventory()?.identities)
    }
}

/// Certificates and CRLs are public: 0644, written atomically like secrets.
pub(crate) fn write_public(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    Ok(tmc_secret_file::write_atomic(
        path,
        bytes,
        0o644,
        Overwrite::Replace,
    )?)
}

impl Site {
    /// Validates every certificate of the site against its CA: the broker's for `broker_host`,
    /// each live identity's, and each key that is present against its certificate.
    pub fn check(&self, broker_host: &str) -> Result<Vec<String>, PkiError> {
        let ca = std::fs::read_to_string(self.cert_path(CA_NAME))
            .map_err(io(&self.cert_path(CA_NAME)))?;
        let now = OffsetDateTime::now_utc();
        let mut checked = Vec::new();
        let mut one = |name: &str, host: Option<&str>| -> Result<(), PkiError> {
            let cert_path = self.cert_path(name);
            let cert = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
            let key_path = self.key_path(name);
            let key = if key_path.exists() {
                Some(tmc_secret_file::read_private_string(&key_path)?)
            } else {
                None
            };
            crate::validate::check(&crate::validate::CertCheck {
                name,
                cert_pem: &cert,
                ca_pem: &ca,
                key_pem: key.as_deref(),
                host,
                now,
            })?;
            checked.push(name.to_string());
            Ok(())
        };
        one(BROKER_NAME, Some(broker_host))?;
        for identity in self.inventory()?.identities.iter().filter(|i| !i.revoked) {
            one(&identity.name, None)?;
        }
        Ok(checked)
    }
}

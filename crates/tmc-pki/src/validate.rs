//! Certificate checks with one clear reason each.

use std::net::IpAddr;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// Why a certificate is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertProblem {
    #[error("{name}: not a PEM certificate: {reason}")]
    Unreadable { name: String, reason: String },
    #[error("{name}: expired on {not_after} (renew it: `tmc-pki renew --name {name}`)")]
    Expired { name: String, not_after: String },
    #[error("{name}: not valid before {not_before} (check this machine's clock)")]
    NotYetValid { name: String, not_before: String },
    #[error("{name}: not signed by this site's CA")]
    NotSignedBySiteCa { name: String },
    #[error("{name}: the private key does not match the certificate")]
    KeyMismatch { name: String },
    #[error("{name}: the certificate names {names:?}, not the broker host {host:?}")]
    HostNotInNames {
        name: String,
        host: String,
        names: Vec<String>,
    },
}

/// What to check.
pub struct CertCheck<'a> {
    /// How to call the certificate in messages (its file stem).
    pub name: &'a str,
    pub cert_pem: &'a str,
    pub ca_pem: &'a str,
    /// The matching private key, when it is at hand.
    pub key_pem: Option<&'a str>,
    /// For a server certificate: the name clients connect to.
    pub host: Option<&'a str>,
    pub now: OffsetDateTime,
}

fn parse_pem(name: &str, pem_text: &str) -> Result<Pem, CertProblem> {
    let unreadable = |reason: String| CertProblem::Unreadable {
        name: name.to_string(),
        reason,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes())
        .map_err(|e| unreadable(e.to_string()))?;
    if pem.label != "CERTIFICATE" {
        return Err(unreadable(format!("found a {:?} block", pem.label)));
    }
    Ok(pem)
}

fn parse<'a>(name: &str, pem: &'a Pem) -> Result<X509Certificate<'a>, CertProblem> {
    pem.parse_x509().map_err(|e| CertProblem::Unreadable {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

/// The names a certificate is valid for: DNS and IP subjectAltNames.
fn names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(IpAddr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                16 => Some(IpAddr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Runs every check that applies; the first failing one is the answer.
pub fn check(c: &CertCheck<'_>) -> Result<(), CertProblem> {
    let name = c.name.to_string();
    let cert_pem = parse_pem(c.name, c.cert_pem)?;
    let cert = parse(c.name, &cert_pem)?;
    let ca_pem = parse_pem("ecc.ca", c.ca_pem)?;
    let ca = parse("ecc.ca", &ca_pem)?;

    let now = c.now.unix_timestamp();
    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        return Err(CertProblem::NotYetValid {
            name,
            not_before: validity.not_before.to_string(),
        });
    }
    if now > validity.not_after.timestamp() {
        return Err(CertProblem::Expired {
            name,
            not_after: validity.not_after.to_string(),
        });
    }
    if cert.issuer() != ca.subject() || cert.verify_signature(Some(ca.public_key())).is_err() {
        return Err(CertProblem::NotSignedBySiteCa { name });
    }
    if let Some(key_pem) = c.key_pem {
        let matches = rcgen::KeyPair::from_pem(key_pem)
            .map(|k| rcgen::PublicKeyData::subject_public_key_info(&k) == cert.public_key().raw)
            .unwrap_or(false);
        if !matches {
            return Err(CertProblem::KeyMismatch { name });
        }
    }
    if let Some(host) = c.host {
        let names = names(&cert);
        if !names.iter().any(|n| n.eq_ignore_ascii_case(host)) {
            return Err(CertProblem::HostNotInNames {
                name,
                host: host.to_string(),
                names,
            });
        }
    }
    Ok(())
}

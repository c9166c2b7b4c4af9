//! The broker certificate check, small enough for the ESP8266's stack (no allocation, no recursion, no
//! general X.509 library).
//!
//! What is checked of the server's (leaf) certificate:
//! - it is DER this walker understands; both signature algorithm fields are ecdsa-with-SHA256 and the key
//!   is id-ecPublicKey on prime256v1 (uncompressed point), the only algorithms the site PKI issues;
//! - it is signed by the pinned site CA key (SHA-256 of the TBSCertificate, verified by the
//!   [`SecureElement`]);
//! - it is a server certificate: not a CA (basicConstraints), extendedKeyUsage present and containing
//!   serverAuth (so that no sensor's client certificate, from the same CA, can stand in for the broker),
//!   no critical extension this walker does not know;
//! - the configured broker name is one of its subjectAltName dNSName entries (ASCII case-insensitive,
//!   exact: no wildcards, the site never issues them). The subject CN is ignored, as RFC 6125 says.
//!
//! What is not checked, and why:
//! - notBefore/notAfter: the node has no trusted clock before it is online, and the site CA issues the
//!   broker certificate; renewing it is the site's job;
//! - revocation of the broker certificate: there is one CA and one broker per site; a compromised broker
//!   key means re-keying the site (new CA pinned in the nodes), not a CRL the node could not fetch anyway;
//! - the issuer name and the rest of the chain: the CA key is pinned, so any chain certificates the server
//!   sends after its own (OpenSSL sends the CA too) are ignored.

use core::fmt;

use sha2::{Digest, Sha256};

use crate::der::{self, DerError, Reader};
use crate::SecureElement;

/// ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// id-ecPublicKey (1.2.840.10045.2.1).
const ID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// prime256v1 / secp256r1 (1.2.840.10045.3.1.7).
const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// Extensions: basicConstraints, keyUsage, extKeyUsage, subjectAltName (2.5.29.x).
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// id-kp-serverAuth (1.3.6.1.5.5.7.3.1).
const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// GeneralName dNSName: [2] IMPLICIT IA5String.
const DNS_NAME: u8 = 0x82;

/// Why a certificate (or the server's CertificateVerify) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertError {
    /// Not DER this parser understands, or not an X.509 certificate; says which part.
    Malformed(&'static str),
    /// An algorithm other than ECDSA P-256 with SHA-256; says which field.
    UnsupportedAlgorithm(&'static str),
    /// The certificate's signature does not verify with the pinned site CA key.
    NotFromSiteCa,
    /// The configured broker name is not among the certificate's subjectAltName dNSName entries.
    NameMismatch,
    /// Signed by the site CA but not a server certificate; says why.
    NotAServerCertificate(&'static str),
    /// The server sent no certificate (or a raw public key).
    NoCertificate,
    /// The server's CertificateVerify signature does not verify with its certificate's key.
    BadServerSignature,
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::Malformed(what) => write!(f, "malformed certificate ({what})"),
            CertError::UnsupportedAlgorithm(what) => {
                write!(
                    f,
                    "unsupported algorithm: {what} is not ECDSA P-256/SHA-256"
                )
            }
            CertError::NotFromSiteCa => f.write_str("server certificate not from the site CA"),
            CertError::NameMismatch => f.write_str("broker name not in the server certificate"),
            CertError::NotAServerCertificate(why) => write!(f, "not a server certificate ({why})"),
            CertError::NoCertificate => f.write_str("the server sent no X.509 certificate"),
            CertError::BadServerSignature => {
                f.write_str("the server's CertificateVerify signature does not verify")
            }
        }
    }
}

fn malformed(what: &'static str) -> impl Fn(DerError) -> CertError {
    move |_| CertError::Malformed(what)
}

/// The parts of a certificate the checks need, borrowed from its DER.
#[derive(Debug, Clone, Copy)]
pub struct Certificate<'a> {
    /// The signed part, whole encoding (what the issuer's signature covers).
    pub tbs: &'a [u8],
    /// The issuer's signature, R‖S.
    pub signature: [u8; 64],
    /// The subject's P-256 key, X‖Y.
    pub public_key: [u8; 64],
    /// Contents of the subjectAltName GeneralNames, if present.
    subject_alt_names: Option<&'a [u8]>,
    /// Contents of the extKeyUsage SEQUENCE, if present.
    ext_key_usage: Option<&'a [u8]>,
    /// basicConstraints cA.
    is_ca: bool,
    /// A critical extension this parser does not know.
    unknown_critical: bool,
}

impl<'a> Certificate<'a> {
    /// Parses `der`, checking the algorithms (ECDSA P-256/SHA-256 only).
    pub fn parse(der: &'a [u8]) -> Result<Self, CertError> {
        let mut outer = Reader::new(der);
        let mut cert = outer
            .nested(der::SEQUENCE)
            .map_err(malformed("Certificate"))?;
        if !outer.is_empty() {
            return Err(CertError::Malformed("bytes after the certificate"));
        }
        let tbs = cert.read_any().map_err(malformed("TBSCertificate"))?;
        if tbs.tag != der::SEQUENCE {
            return Err(CertError::Malformed("TBSCertificate"));
        }
        let outer_alg = cert
            .nested(der::SEQUENCE)
            .map_err(malformed("signatureAlgorithm"))?;
        check_ecdsa_sha256(outer_alg, "the certificate's signatureAlgorithm")?;
        let signature = cert
            .read(der::BIT_STRING)
            .map_err(malformed("signatureValue"))?;
        let signature = ecdsa_der_to_rs(bit_string(signature)?)?;
        if !cert.is_empty() {
            return Err(CertError::Malformed("extra fields in Certificate"));
        }

        let mut t = Reader::new(tbs.value);
        // version [0] EXPLICIT: only v3 certificates have extensions, and the site issues only v3.
        let _version = t.read_optional(0xa0).map_err(malformed("version"))?;
        t.read(der::INTEGER).map_err(malformed("serialNumber"))?;
        let inner_alg = t.nested(der::SEQUENCE).map_err(malformed("signature"))?;
        check_ecdsa_sha256(inner_alg, "the TBSCertificate's signature field")?;
        t.read(der::SEQUENCE).map_err(malformed("issuer"))?;
        t.read(der::SEQUENCE).map_err(malformed("validity"))?;
        t.read(der::SEQUENCE).map_err(malformed("subject"))?;
        let public_key = spki_p256(
            t.nested(der::SEQUENCE)
                .map_err(malformed("subjectPublicKeyInfo"))?,
        )?;
        // issuerUniqueID [1], subjectUniqueID [2]: skipped.
        t.read_optional(0x81).map_err(malformed("issuerUniqueID"))?;
        t.read_optional(0x82)
            .map_err(malformed("subjectUniqueID"))?;
        let mut parsed = Certificate {
            tbs: tbs.raw,
            signature,
            public_key,
            subject_alt_names: None,
            ext_key_usage: None,
            is_ca: false,
            unknown_critical: false,
        };
        if let Some(explicit) = t.read_optional(0xa3).map_err(malformed("extensions"))? {
            let mut exts = Reader::new(explicit)
                .nested(der::SEQUENCE)
                .map_err(malformed("extensions"))?;
            while !exts.is_empty() {
                parsed.extension(exts.nested(der::SEQUENCE).map_err(malformed("extension"))?)?;
            }
        }
        if !t.is_empty() {
            return Err(CertError::Malformed("extra fields in TBSCertificate"));
        }
        Ok(parsed)
    }

    fn extension(&mut self, mut ext: Reader<'a>) -> Result<(), CertError> {
        let id = ext.read(der::OID).map_err(malformed("extnID"))?;
        let critical = match ext
            .read_optional(der::BOOLEAN)
            .map_err(malformed("critical"))?
        {
            Some([0xff]) => true,
            Some([0x00]) => false,
            Some(_) => return Err(CertError::Malformed("critical")),
            None => false,
        };
        let value = ext
            .read(der::OCTET_STRING)
            .map_err(malformed("extnValue"))?;
        if id == SUBJECT_ALT_NAME {
            let names = Reader::new(value)
                .read(der::SEQUENCE)
                .map_err(malformed("subjectAltName"))?;
            self.subject_alt_names = Some(names);
        } else if id == EXT_KEY_USAGE {
            let usages = Reader::new(value)
                .read(der::SEQUENCE)
                .map_err(malformed("extKeyUsage"))?;
            self.ext_key_usage = Some(usages);
        } else if id == BASIC_CONSTRAINTS {
            let mut bc = Reader::new(value)
                .nested(der::SEQUENCE)
                .map_err(malformed("basicConstraints"))?;
            self.is_ca = matches!(
                bc.read_optional(der::BOOLEAN)
                    .map_err(malformed("basicConstraints"))?,
                Some([0xff])
            );
        } else if id == KEY_USAGE {
            // digitalSignature is what a TLS 1.3 server key needs; the site sets it. Not enforced:
            // serverAuth in extKeyUsage already limits this certificate to a TLS server.
        } else if critical {
            self.unknown_critical = true;
        }
        Ok(())
    }

    /// Whether `name` is one of the subjectAltName dNSName entries.
    pub fn has_dns_name(&self, name: &str) -> Result<bool, CertError> {
        let Some(names) = self.subject_alt_names else {
            return Ok(false);
        };
        let mut r = Reader::new(names);
        while !r.is_empty() {
            let general = r.read_any().map_err(malformed("subjectAltName"))?;
            if general.tag == DNS_NAME && general.value.eq_ignore_ascii_case(name.as_bytes()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether basicConstraints says cA (a CA certificate).
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// Whether this certificate's signature verifies with `issuer_key` (X‖Y): the element's Verify over
    /// SHA-256 of the TBSCertificate. `Ok(false)` is a certificate another key signed.
    pub fn signed_by<E: SecureElement>(
        &self,
        element: &mut E,
        issuer_key: &[u8; 64],
    ) -> Result<bool, E::Error> {
        let digest: [u8; 32] = Sha256::digest(self.tbs).into();
        element.verify_digest(issuer_key, &digest, &self.signature)
    }

    /// Not a CA, extKeyUsage with serverAuth, no unknown critical extension.
    pub fn check_server_usage(&self) -> Result<(), CertError> {
        if self.is_ca {
            return Err(CertError::NotAServerCertificate("it is a CA certificate"));
        }
        if self.unknown_critical {
            return Err(CertError::NotAServerCertificate(
                "unknown critical extension",
            ));
        }
        let Some(usages) = self.ext_key_usage else {
            return Err(CertError::NotAServerCertificate("no extendedKeyUsage"));
        };
        let mut r = Reader::new(usages);
        while !r.is_empty() {
            if r.read(der::OID).map_err(malformed("extKeyUsage"))? == SERVER_AUTH {
                return Ok(());
            }
        }
        Err(CertError::NotAServerCertificate("no serverAuth usage"))
    }
}

/// The P-256 public key (X‖Y) of a CA certificate, to pin in the node's configuration.
pub fn ca_public_key(ca_cert_der: &[u8]) -> Result<[u8; 64], CertError> {
    Certificate::parse(ca_cert_der).map(|c| c.public_key)
}

fn check_ecdsa_sha256(mut alg: Reader<'_>, what: &'static str) -> Result<(), CertError> {
    let oid = alg
        .read(der::OID)
        .map_err(malformed("AlgorithmIdentifier"))?;
    if oid != ECDSA_WITH_SHA256 {
        return Err(CertError::UnsupportedAlgorithm(what));
    }
    // RFC 5758: parameters absent. Tolerate an explicit NULL some encoders write.
    alg.read_optional(der::NULL)
        .map_err(malformed("AlgorithmIdentifier"))?;
    if alg.is_empty() {
        Ok(())
    } else {
        Err(CertError::Malformed("AlgorithmIdentifier parameters"))
    }
}

fn spki_p256(mut spki: Reader<'_>) -> Result<[u8; 64], CertError> {
    let mut alg = spki
        .nested(der::SEQUENCE)
        .map_err(malformed("subjectPublicKeyInfo algorithm"))?;
    let key_type = alg
        .read(der::OID)
        .map_err(malformed("subjectPublicKeyInfo algorithm"))?;
    if key_type != ID_EC_PUBLIC_KEY {
        return Err(CertError::UnsupportedAlgorithm("the subject key type"));
    }
    let curve = alg.read(der::OID).map_err(|_| {
        // Explicit curve parameters instead of a named curve: not P-256 as the site issues it.
        CertError::UnsupportedAlgorithm("the subject key's curve")
    })?;
    if curve != PRIME256V1 || !alg.is_empty() {
        return Err(CertError::UnsupportedAlgorithm("the subject key's curve"));
    }
    let point = bit_string(
        spki.read(der::BIT_STRING)
            .map_err(malformed("subjectPublicKey"))?,
    )?;
    match point {
        [0x04, xy @ ..] if xy.len() == 64 => {
            let mut key = [0u8; 64];
            key.copy_from_slice(xy);
            Ok(key)
        }
        _ => Err(CertError::UnsupportedAlgorithm(
            "the subject key encoding (uncompressed P-256 point expected)",
        )),
    }
}

/// The contents of a BIT STRING without unused bits.
fn bit_string(value: &[u8]) -> Result<&[u8], CertError> {
    match value {
        [0, rest @ ..] => Ok(rest),
        _ => Err(CertError::Malformed("BIT STRING")),
    }
}

/// A DER Ecdsa-Sig-Value (SEQUENCE { r INTEGER, s INTEGER }) as R‖S, each 32 bytes; r and s must be in
/// 1..n-1 (anything else cannot verify).
pub(crate) fn ecdsa_der_to_rs(sig: &[u8]) -> Result<[u8; 64], CertError> {
    p256::ecdsa::Signature::from_der(sig)
        .map(|signature| signature.to_bytes().into())
        .map_err(|_| CertError::Malformed("ECDSA signature"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_encoding_round_trips() {
        let mut cases = [[0x80u8; 64]; 3];
        cases[1][..31].fill(0);
        cases[1][32..63].fill(0);
        cases[2]
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = i as u8 + 1);
        for rs in cases {
            let der = p256::ecdsa::Signature::from_slice(&rs)
                .map(|s| s.to_der())
                .ok();
            let back = der.map(|der| ecdsa_der_to_rs(der.as_bytes()));
            assert_eq!(back, Some(Ok(rs)));
        }
    }

    #[test]
    fn rejects_bad_signature_integers() {
        // Negative r.
        assert!(ecdsa_der_to_rs(&[0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01]).is_err());
        // Non-minimal r.
        assert!(ecdsa_der_to_rs(&[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01]).is_err());
        // 33 significant bytes.
        let mut long = [0u8; 2 + 2 + 34 + 3];
        long[..4].copy_from_slice(&[0x30, 39, 0x02, 34]);
        long[4] = 0;
        long[5] = 0x80;
        long[38..].copy_from_slice(&[0x02, 0x01, 0x01]);
        assert!(ecdsa_der_to_rs(&long).is_err());
        assert!(ecdsa_der_to_rs(&[]).is_err());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let mut buf = [0u8; 64];
        for seed in 0u8..=255 {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = seed
                    .wrapping_mul(31)
                    .wrapping_add(i as u8)
                    .rotate_left(u32::from(seed % 7));
            }
            buf[0] = 0x30;
            buf[1] = 62;
            assert!(Certificate::parse(&buf).is_err());
        }
    }
}

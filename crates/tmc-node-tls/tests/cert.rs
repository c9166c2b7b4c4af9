//! The broker certificate check on certificates the site PKI really issues (no broker needed).

mod common;

use common::Setup;
use tmc_node_tls::cert::{ca_public_key, Certificate};
use tmc_node_tls::{CertError, SecureElement, TlsClientConfig};
use tmc_pki::{Role, Validity};

#[test]
fn the_site_broker_certificate_passes_and_others_fail_for_the_right_reason() {
    let s = Setup::new();
    s.site
        .issue("sensor1", Role::Sensor, &[], Validity::days(30))
        .unwrap();
    let broker = common::der_of_pem(&s.site.cert_path("broker"));
    let leaf = Certificate::parse(&broker).unwrap();
    assert_eq!(leaf.check_server_usage(), Ok(()));
    assert_eq!(leaf.has_dns_name("mqtt.com"), Ok(true));
    assert_eq!(leaf.has_dns_name("MQTT.com"), Ok(true));
    assert_eq!(leaf.has_dns_name("mqtt.co"), Ok(false));
    assert_eq!(
        leaf.has_dns_name("10.33.33.1"),
        Ok(false),
        "an IP SAN is not a DNS name"
    );

    // The CA signed it: verify as the transport does, through the SecureElement seam.
    let ca_key = ca_public_key(&s.ca_der()).unwrap();
    let (mut element, _) = s.identity("sensor1");
    let digest: [u8; 32] = sha256(leaf.tbs);
    assert_eq!(
        element.verify_digest(&ca_key, &digest, &leaf.signature),
        Ok(true)
    );
    let mut tampered = leaf.signature;
    tampered[5] ^= 1;
    assert_eq!(
        element.verify_digest(&ca_key, &digest, &tampered),
        Ok(false)
    );

    // A sensor's client certificate from the same CA is no broker certificate.
    let client_der = s.cert_der("sensor1");
    let client = Certificate::parse(&client_der).unwrap();
    assert_eq!(
        client.check_server_usage(),
        Err(CertError::NotAServerCertificate("no serverAuth usage"))
    );
    let ca_der = s.ca_der();
    let ca = Certificate::parse(&ca_der).unwrap();
    assert_eq!(
        ca.check_server_usage(),
        Err(CertError::NotAServerCertificate("it is a CA certificate"))
    );
    assert!(TlsClientConfig::from_ca_cert(&s.ca_der(), "mqtt.com", &broker).is_ok());
}

#[test]
fn every_truncation_and_bit_flip_is_an_error_or_a_parse_never_a_panic() {
    let s = Setup::new();
    let broker = common::der_of_pem(&s.site.cert_path("broker"));
    for len in 0..broker.len() {
        assert!(
            Certificate::parse(&broker[..len]).is_err(),
            "truncated at {len}"
        );
    }
    let mut copy = broker.clone();
    for i in 0..copy.len() {
        for bit in [0x01u8, 0x80] {
            copy[i] ^= bit;
            // Either refused, or parsed (a flip inside a value): then the signature check catches it.
            let _ = Certificate::parse(&copy)
                .map(|c| (c.check_server_usage(), c.has_dns_name("mqtt.com")));
            copy[i] ^= bit;
        }
    }
    let mut longer = broker.clone();
    longer.push(0);
    assert_eq!(
        Certificate::parse(&longer).map(|_| ()),
        Err(CertError::Malformed("bytes after the certificate"))
    );
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

//! The node's TLS client against the real mosquitto (Debian's), started on 127.0.0.1 by each test with
//! the configuration `tmc-pki broker-config` generates: mutual TLS, publishing, and the refusals.

mod common;

use std::cell::Cell;
use std::time::{Duration, Instant};

use common::{client, Harness, Setup, Subscriber};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use tmc_node_tls::{OsRng, SecureElement, SoftwareKey, StdTcpSocket, TlsClient};
use tmc_pki::Site;
use tmc_sensor_core::mqtt;
use tmc_sensor_core::node::Transport;

const WAIT: Duration = Duration::from_secs(30);

fn connect_failures(h: &Harness) -> Vec<String> {
    h.lines("mqtt: connect failed: ")
}

/// A fresh node over `client` never gets connected: at least two attempts, each failing the handshake with
/// exactly `reason` in the log.
fn assert_handshake_refused<E: SecureElement>(
    client: &mut TlsClient<'static, StdTcpSocket, E, OsRng>,
    reason: &str,
) {
    let mut h = Harness::new("node1", 100);
    assert!(
        h.run(client, WAIT, |_, log| log.matches("connect failed").count()
            >= 2)
    );
    assert_eq!(h.node.stats().connects, 0, "{}", h.log);
    for line in connect_failures(&h) {
        assert_eq!(
            line,
            format!("mqtt: connect failed: TLS handshake failed: {reason}")
        );
    }
}

#[test]
fn node_publishes_readings_over_mutual_tls_and_the_relay_receives_them() {
    let s = Setup::new();
    let (key, cert) = s.issue_node("node1");
    let _broker = s.start_broker();
    let subscriber = Subscriber::start(&s);
    let mut client = client(s.port, &s.ca_der(), cert, key);
    let mut h = Harness::new("node1", 100);

    const N: u64 = 5;
    let done = h.run(&mut client, WAIT, |node, _| node.stats().acked >= N);
    assert!(done, "{N} readings not acknowledged in time:\n{}", h.log);
    assert_eq!(h.lines("mqtt: connected").len(), 1, "{}", h.log);
    assert_eq!(h.node.stats().failures, 0, "{}", h.log);
    for seq in 1..=N {
        assert_eq!(
            subscriber.next(WAIT),
            format!(r#"{{"id":"node1","seq":{seq},"adc":{}}}"#, 100 + seq),
        );
    }
}

#[test]
fn recv_returns_nothing_without_blocking_while_no_record_is_pending() {
    let s = Setup::new();
    let (key, cert) = s.issue_node("node1");
    let _broker = s.start_broker();
    let mut client = client(s.port, &s.ca_der(), cert, key);
    let mut transport = client.transport();
    transport.connect().unwrap();
    // OpenSSL sends NewSessionTickets after the handshake: embedded-tls skips them and would block for
    // the next record; recv must come back with 0 instead, every time.
    let mut buf = [0u8; 64];
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        let started = Instant::now();
        assert_eq!(transport.recv(&mut buf).unwrap(), 0);
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "recv blocked"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut out = [0u8; 64];
    let n = mqtt::Connect::new("node1", 60, true)
        .encode(&mut out)
        .unwrap();
    transport.send(&out[..n]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut len = 0;
    while len < 4 {
        assert!(Instant::now() < deadline, "no CONNACK in time");
        len += transport.recv(&mut buf[len..]).unwrap();
    }
    assert_eq!(&buf[..4], &[0x20, 0x02, 0x00, 0x00], "CONNACK accepted");
    transport.close();
    assert!(transport.is_spent());
}

#[test]
fn node_refuses_a_broker_certified_by_another_ca() {
    let s = Setup::new();
    let (key, cert) = s.issue_node("node1");
    let _broker = s.start_broker();
    // The node pins another site's CA; the broker itself would accept the node's certificate.
    let other = Site::init(&s.dir.path().join("other"), &Default::default()).unwrap();
    let other_ca = common::der_of_pem(&other.dir().join("ecc.ca.cert.pem"));
    let mut wrong = client(s.port, &other_ca, cert.clone(), key.clone());
    assert_handshake_refused(&mut wrong, "server certificate not from the site CA");
    // The same node with its own site's CA connects: the refusal was about the CA.
    let mut right = client(s.port, &s.ca_der(), cert, key);
    let mut h = Harness::new("node1", 100);
    assert!(
        h.run(&mut right, WAIT, |node, _| node.is_connected()),
        "{}",
        h.log
    );
}

#[test]
fn node_refuses_a_site_certificate_that_does_not_name_the_broker() {
    let s = Setup::new();
    let (key, cert) = s.issue_node("node1");
    // A broker certificate from the site CA, server usage, CN mqtt.com (ignored) but SAN without it.
    let ca_key =
        KeyPair::from_pem(&std::fs::read_to_string(s.site.key_path("ca")).unwrap()).unwrap();
    let ca_pem = std::fs::read_to_string(s.site.dir().join("ecc.ca.cert.pem")).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).unwrap();
    let broker_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params =
        CertificateParams::new(vec!["broker.example".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "mqtt.com");
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let broker_cert = params.signed_by(&broker_key, &issuer).unwrap();
    let conf = s.write_broker_config();
    std::fs::write(conf.join("ecc.broker.cert.pem"), broker_cert.pem()).unwrap();
    std::fs::write(conf.join("ecc.broker.key.pem"), broker_key.serialize_pem()).unwrap();
    let _broker = s.start_broker_from(&conf);

    let mut client = client(s.port, &s.ca_der(), cert, key);
    assert_handshake_refused(&mut client, "broker name not in the server certificate");
}

#[test]
fn a_revoked_node_is_refused_by_the_broker() {
    let s = Setup::new();
    let (key, cert) = s.issue_node("node1");
    let mut client = client(s.port, &s.ca_der(), cert, key);
    let mut h = Harness::new("node1", 100);
    {
        let _before = s.start_broker();
        assert!(
            h.run(&mut client, WAIT, |node, _| node.stats().acked >= 1),
            "valid before revocation:\n{}",
            h.log
        );
    }
    s.site.revoke("node1").unwrap();
    // mosquitto reads the CRL at start: a new broker with the regenerated configuration.
    let broker = s.start_broker();
    let before = h.log.len();
    let failures = |log: &str| {
        log[before..]
            .lines()
            .filter(|l| {
                l.starts_with("mqtt: connect failed") || l.starts_with("mqtt: connection lost")
            })
            .count()
    };
    assert!(
        h.run(&mut client, WAIT, |_, log| failures(log) >= 3),
        "{}",
        h.log
    );
    assert_eq!(
        h.node.stats().connects,
        1,
        "never connected again:\n{}",
        h.log
    );
    assert!(!h.node.is_connected());
    let after = &h.log[before..];
    assert!(!after.contains("mqtt: connected"), "{after}");
    // The broker refuses right after the node's certificate: in TLS 1.3 the node may see that in the
    // handshake or in its first packet, whichever the timing gives, but the reason is the same.
    let reasons: Vec<&str> = after
        .lines()
        .skip_while(|l| !l.starts_with("mqtt: connecting"))
        .filter_map(|l| {
            l.strip_prefix("mqtt: connect failed: ")
                .or_else(|| l.strip_prefix("mqtt: connection lost: "))
        })
        .collect();
    assert!(reasons.len() >= 2, "{after}");
    for reason in reasons {
        assert!(
            reason.starts_with(
                "the broker dropped the TLS connection after receiving this node's certificate \
                 (revoked, or not from the broker's CA?): "
            ),
            "{after}"
        );
    }
    let broker_log = broker.log_text();
    assert!(
        broker_log.contains("certificate verify failed"),
        "{broker_log}"
    );
}

/// A secure element whose Sign fails `fail_next` times (an I²C hiccup), counting attempts.
struct Flaky {
    key: SoftwareKey,
    fail_next: Cell<usize>,
    sign_calls: usize,
}

#[derive(Debug)]
struct NoAck;

impl std::fmt::Display for NoAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("i2c: no ACK from the chip")
    }
}

impl SecureElement for Flaky {
    type Error = NoAck;
    fn public_key(&mut self) -> Result<[u8; 64], NoAck> {
        self.key.public_key().map_err(|_| NoAck)
    }
    fn sign_digest(&mut self, digest: &[u8; 32]) -> Result<[u8; 64], NoAck> {
        self.sign_calls += 1;
        if self.fail_next.get() > 0 {
            self.fail_next.set(self.fail_next.get() - 1);
            return Err(NoAck);
        }
        self.key.sign_digest(digest).map_err(|_| NoAck)
    }
    fn verify_digest(
        &mut self,
        public_key: &[u8; 64],
        digest: &[u8; 32],
        signature: &[u8; 64],
    ) -> Result<bool, NoAck> {
        self.key
            .verify_digest(public_key, digest, signature)
            .map_err(|_| NoAck)
    }
}

#[test]
fn the_signer_retries_the_chip_and_a_dead_chip_fails_the_handshake_cleanly() {
    let s = Setup::new();
    let (key, cert) = s.issue_node("node1");
    let broker = s.start_broker();
    let flaky = Flaky {
        key,
        fail_next: Cell::new(2),
        sign_calls: 0,
    };
    let mut client = client(s.port, &s.ca_der(), cert, flaky);
    let mut h = Harness::new("node1", 100);
    assert!(
        h.run(&mut client, WAIT, |node, _| node.is_connected()),
        "two failures then a signature must do:\n{}",
        h.log
    );
    assert_eq!(client.element_mut().sign_calls, 3);

    // Now the chip is gone for good: the next connection fails with the chip's reason, no panic.
    client.element_mut().fail_next.set(usize::MAX);
    client.element_mut().sign_calls = 0;
    // A rebooted node (the old connection is dropped when the next one opens the socket).
    assert_handshake_refused(
        &mut client,
        "secure element could not sign (3 attempts): \
             i2c: no ACK from the chip",
    );
    assert_eq!(client.element_mut().sign_calls % 3, 0);
    // Nothing half-signed reached the broker: it saw no CertificateVerify to check, only a dropped
    // stream, and no client connected after the first one.
    assert_eq!(broker.log_text().matches("New client connected").count(), 1);
}

/// A random source that has stopped answering (the chip's Random over a broken bus).
struct DeadRandom;

impl rand_core::RngCore for DeadRandom {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0);
    }
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), rand_core::Error> {
        Err(rand_core::Error::from(std::num::NonZeroU32::MIN))
    }
}

impl rand_core::CryptoRng for DeadRandom {}

#[test]
fn a_dead_random_source_fails_the_handshake_before_anything_is_sent() {
    let s = Setup::new();
    let (key, cert) = s.issue_node("node1");
    let broker = s.start_broker();
    let mut client = common::client_with_rng(s.port, &s.ca_der(), cert, key, DeadRandom);
    // Without the guard p256's key generation draws zeros forever: bounded here, so that fails, not hangs.
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = client.transport().connect().map_err(|e| e.to_string());
        let _ = done.send(outcome);
    });
    let error = result
        .recv_timeout(WAIT)
        .expect("connect returns when the random source is dead")
        .unwrap_err();
    assert_eq!(
        error,
        "TLS handshake failed: the secure element gave no random bytes (Random failed); nothing was sent"
    );
    // Nothing of a handshake reached the broker: at most a TCP connection that closed.
    assert_eq!(broker.log_text().matches("New client connected").count(), 0);
}

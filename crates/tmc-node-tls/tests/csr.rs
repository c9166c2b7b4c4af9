//! The PKCS#10 request: checked by OpenSSL (signature, subject, key, exact DER), its edge cases (integer
//! encoding, buffer sizes, names, element failures) without panics.

use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};

use tmc_node_tls::csr::{
    csr_pem, pem_len, write_csr, CsrError, PemBufferTooSmall, MAX_COMMON_NAME_LEN, MAX_CSR_DER_LEN,
    MAX_CSR_PEM_LEN,
};
use tmc_node_tls::software::{SoftwareKey, SoftwareKeyError};
use tmc_node_tls::SecureElement;

/// A software P-256 key standing in for the chip, counting its signatures.
struct SoftKey {
    key: SoftwareKey,
    signatures: usize,
}

#[derive(Debug)]
struct SoftError(&'static str);

impl fmt::Display for SoftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl From<SoftwareKeyError> for SoftError {
    fn from(_: SoftwareKeyError) -> Self {
        SoftError("software key")
    }
}

impl SoftKey {
    fn new(seed: u8) -> Self {
        // A fixed scalar: no randomness needed.
        let mut scalar = [0x11u8; 32];
        scalar[31] = seed;
        SoftKey {
            key: SoftwareKey::from_bytes(&scalar).unwrap(),
            signatures: 0,
        }
    }

    fn point(&mut self) -> [u8; 64] {
        self.key.public_key().unwrap()
    }
}

impl SecureElement for SoftKey {
    type Error = SoftError;
    fn public_key(&mut self) -> Result<[u8; 64], SoftError> {
        Ok(self.point())
    }
    fn sign_digest(&mut self, digest: &[u8; 32]) -> Result<[u8; 64], SoftError> {
        self.signatures += 1;
        Ok(self.key.sign_digest(digest)?)
    }
    fn verify_digest(
        &mut self,
        public_key: &[u8; 64],
        digest: &[u8; 32],
        signature: &[u8; 64],
    ) -> Result<bool, SoftError> {
        Ok(self.key.verify_digest(public_key, digest, signature)?)
    }
}

/// An element that answers a fixed signature and claims it verifies: for the integer encodings a real
/// key gives only rarely.
struct FixedSignature {
    inner: SoftKey,
    signature: [u8; 64],
    verifies: bool,
}

impl SecureElement for FixedSignature {
    type Error = SoftError;
    fn public_key(&mut self) -> Result<[u8; 64], SoftError> {
        self.inner.public_key()
    }
    fn sign_digest(&mut self, _: &[u8; 32]) -> Result<[u8; 64], SoftError> {
        Ok(self.signature)
    }
    fn verify_digest(
        &mut self,
        _: &[u8; 64],
        _: &[u8; 32],
        _: &[u8; 64],
    ) -> Result<bool, SoftError> {
        Ok(self.verifies)
    }
}

/// An element whose every command fails.
struct Broken;

impl SecureElement for Broken {
    type Error = SoftError;
    fn public_key(&mut self) -> Result<[u8; 64], SoftError> {
        Err(SoftError("chip not answering"))
    }
    fn sign_digest(&mut self, _: &[u8; 32]) -> Result<[u8; 64], SoftError> {
        Err(SoftError("chip not answering"))
    }
    fn verify_digest(
        &mut self,
        _: &[u8; 64],
        _: &[u8; 32],
        _: &[u8; 64],
    ) -> Result<bool, SoftError> {
        Err(SoftError("chip not answering"))
    }
}

fn csr<E: SecureElement>(element: &mut E, name: &str) -> Vec<u8>
where
    E::Error: fmt::Debug,
{
    let mut out = [0u8; MAX_CSR_DER_LEN];
    let n = write_csr(element, name, &mut out).unwrap();
    out[..n].to_vec()
}

fn pem(der: &[u8]) -> Vec<u8> {
    let mut out = [0u8; MAX_CSR_PEM_LEN];
    let n = csr_pem(der, &mut out).unwrap();
    out[..n].to_vec()
}

/// Runs `openssl` with `stdin`; returns (success, stdout, stderr).
fn openssl(args: &[&str], stdin: &[u8]) -> (bool, Vec<u8>, String) {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl binary (apt install openssl)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The SubjectPublicKeyInfo DER of a P-256 point (RFC 5480): fixed prefix, then 04‖X‖Y.
fn spki(point: &[u8; 64]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
    ];
    der.extend_from_slice(point);
    der
}

#[test]
fn openssl_verifies_the_request_with_its_subject_and_key() {
    for (seed, name) in [
        (1, "esp1"),
        (2, "a"),
        (3, &*"x".repeat(MAX_COMMON_NAME_LEN)),
        (4, "Küche 2"),
    ] {
        let mut key = SoftKey::new(seed);
        let der = csr(&mut key, name);
        assert_eq!(key.signatures, 1);
        let pem = pem(&der);

        let (ok, stdout, stderr) = openssl(
            &[
                "req",
                "-noout",
                "-verify",
                "-subject",
                "-nameopt",
                "utf8,sep_multiline",
            ],
            &pem,
        );
        assert!(ok, "openssl refused the request for {name:?}: {stderr}");
        // OpenSSL 3 says "Certificate request self-signature verify OK" (older: "verify OK").
        assert!(stderr.contains("verify OK"), "{stderr}");
        let stdout = String::from_utf8(stdout).unwrap();
        assert_eq!(stdout, format!("subject=\n    CN={name}\n"), "{name:?}");

        let (ok, pubkey_pem, stderr) = openssl(&["req", "-noout", "-pubkey"], &pem);
        assert!(ok, "{stderr}");
        let (ok, pubkey_der, stderr) = openssl(&["pkey", "-pubin", "-outform", "DER"], &pubkey_pem);
        assert!(ok, "{stderr}");
        assert_eq!(
            pubkey_der,
            spki(&key.point()),
            "the request's key is the element's"
        );

        // OpenSSL re-encodes what it parsed: the same bytes only if ours were canonical DER.
        let (ok, reencoded, stderr) = openssl(&["req", "-outform", "DER"], &pem);
        assert!(ok, "{stderr}");
        assert_eq!(reencoded, der, "{name:?}: not canonical DER");
    }
}

#[test]
fn a_tampered_request_does_not_verify() {
    let mut key = SoftKey::new(7);
    let mut der = csr(&mut key, "esp1");
    // The last byte of the name: "esp1" → "esp2", signature unchanged.
    let at = der.windows(4).position(|w| w == b"esp1").unwrap() + 3;
    der[at] = b'2';
    // OpenSSL 3.0 exits 0 after a failed self-signature check: only its message tells.
    let (_, _, stderr) = openssl(&["req", "-noout", "-verify"], &pem(&der));
    assert!(
        stderr.contains("verify failure") && !stderr.contains("verify OK"),
        "a changed name must break the signature: {stderr}"
    );
}

/// Parses the signature BIT STRING at the end of the request: (r content, s content).
fn signature_integers(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    // ... 03 len 00 30 len 02 rlen r 02 slen s, with one-byte lengths (≤ 72 bytes).
    let seq_len = usize::from(der[der.len() - 1 - find_seq_from_end(der)]);
    let seq = &der[der.len() - seq_len..];
    assert_eq!(seq[0], 0x02);
    let r_len = usize::from(seq[1]);
    let r = seq[2..2 + r_len].to_vec();
    assert_eq!(seq[2 + r_len], 0x02);
    let s_len = usize::from(seq[3 + r_len]);
    let s = seq[4 + r_len..].to_vec();
    assert_eq!(s.len(), s_len);
    (r, s)
}

/// Distance from the end to the ECDSA-Sig-Value's length byte, found by trying each candidate.
fn find_seq_from_end(der: &[u8]) -> usize {
    (6..=72)
        .find(|len| {
            let start = der.len() - len;
            der[start - 2] == 0x30 && usize::from(der[start - 1]) == *len && der[start - 3] == 0
        })
        .unwrap()
}

#[test]
fn signature_integers_are_minimal_der() {
    // R‖S that is no ECDSA signature (r = 0, or r ≥ the group order) is refused, whatever the element says.
    for r in [[0u8; 32], [0xff; 32]] {
        let mut signature = [0x7f; 64];
        signature[..32].copy_from_slice(&r);
        let mut element = FixedSignature {
            inner: SoftKey::new(9),
            signature,
            verifies: true,
        };
        let mut out = [0u8; MAX_CSR_DER_LEN];
        assert!(matches!(
            write_csr(&mut element, "esp1", &mut out),
            Err(CsrError::SignatureMismatch)
        ));
    }
    // (r, s, how r's DER content starts, how s's starts)
    type Case = ([u8; 32], [u8; 32], &'static [u8], &'static [u8]);
    let cases: [Case; 2] = [
        // High bit set: a leading zero byte, 33 bytes.
        ([0x80; 32], [0xa0; 32], &[0x00, 0x80], &[0x00, 0xa0]),
        // Leading zero bytes dropped (but the next byte's high bit is set: one zero stays).
        (
            {
                let mut r = [0x01; 32];
                r[..3].fill(0);
                r
            },
            {
                let mut s = [0x90; 32];
                s[0] = 0;
                s
            },
            &[0x01],
            &[0x00, 0x90],
        ),
    ];
    for (r, s, r_start, s_start) in cases {
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r);
        signature[32..].copy_from_slice(&s);
        let mut element = FixedSignature {
            inner: SoftKey::new(9),
            signature,
            verifies: true,
        };
        let der = csr(&mut element, "esp1");
        let (r_der, s_der) = signature_integers(&der);
        assert!(r_der.starts_with(r_start), "{r_der:02x?}");
        assert!(s_der.starts_with(s_start), "{s_der:02x?}");
        // Whatever the integers, the structure parses (the signature is not a valid one, of course).
        let (ok, _, stderr) = openssl(&["asn1parse", "-inform", "DER"], &der);
        assert!(ok, "{stderr}");
        let (ok, reencoded, stderr) = openssl(&["req", "-inform", "DER", "-outform", "DER"], &der);
        assert!(ok, "{stderr}");
        assert_eq!(reencoded, der);
    }
    // The longest case is what MAX_CSR_DER_LEN promises.
    let mut element = FixedSignature {
        inner: SoftKey::new(9),
        // Both integers 33 bytes long (high bit set), both below the group order.
        signature: [0x80; 64],
        verifies: true,
    };
    let der = csr(&mut element, &"n".repeat(MAX_COMMON_NAME_LEN));
    assert_eq!(der.len(), MAX_CSR_DER_LEN);
    assert_eq!(pem(&der).len(), MAX_CSR_PEM_LEN);
}

#[test]
fn every_short_buffer_is_an_error_not_a_panic() {
    let mut key = SoftKey::new(5);
    let der = csr(&mut key, "esp1");
    for len in 0..der.len() {
        let mut out = vec![0u8; len];
        match write_csr(&mut SoftKey::new(5), "esp1", &mut out) {
            Err(CsrError::BufferTooSmall { needed }) => {
                assert!(needed >= der.len(), "{len}: {needed}")
            }
            other => panic!("{len} bytes: {other:?}"),
        }
    }
    // Deterministic signatures (RFC 6979): the same request again, into an exact buffer.
    let mut exact = vec![0u8; der.len()];
    assert_eq!(
        write_csr(&mut SoftKey::new(5), "esp1", &mut exact).unwrap(),
        der.len()
    );
    assert_eq!(exact, der);

    let pem_bytes = pem(&der);
    assert_eq!(pem_bytes.len(), pem_len(der.len()));
    for len in 0..pem_bytes.len() {
        let mut out = vec![0u8; len];
        assert_eq!(
            csr_pem(&der, &mut out),
            Err(PemBufferTooSmall {
                needed: pem_bytes.len()
            })
        );
    }
    let text = String::from_utf8(pem_bytes).unwrap();
    assert!(text.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
    assert!(text.ends_with("\n-----END CERTIFICATE REQUEST-----\n"));
    let body: Vec<&str> = text
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("-----"))
        .collect();
    assert!(
        body[..body.len() - 1].iter().all(|l| l.len() == 64),
        "{text}"
    );
    assert!((1..=64).contains(&body[body.len() - 1].len()));
}

#[test]
fn bad_names_and_failing_elements_are_refused() {
    let mut out = [0u8; MAX_CSR_DER_LEN];
    let mut key = SoftKey::new(6);
    assert_eq!(
        write_csr(&mut key, "", &mut out).unwrap_err().to_string(),
        "certificate request: the common name is empty"
    );
    let long = "x".repeat(MAX_COMMON_NAME_LEN + 1);
    assert!(matches!(
        write_csr(&mut key, &long, &mut out),
        Err(CsrError::NameTooLong { len: 65 })
    ));
    assert!(matches!(
        write_csr(&mut key, "esp\n1", &mut out),
        Err(CsrError::ControlCharacter)
    ));
    assert_eq!(key.signatures, 0, "nothing signed for a refused name");

    let error = write_csr(&mut Broken, "esp1", &mut out).unwrap_err();
    assert_eq!(
        error.to_string(),
        "certificate request: secure element: chip not answering"
    );
    let mut lying = FixedSignature {
        inner: SoftKey::new(6),
        signature: [0x42; 64],
        verifies: false,
    };
    assert!(matches!(
        write_csr(&mut lying, "esp1", &mut out),
        Err(CsrError::SignatureMismatch)
    ));
}

//! The node's TLS 1.3 client: a [`Transport`] over any byte stream ([`Socket`]), with the client key in
//! a [`SecureElement`] and the broker checked against the pinned site CA.
//!
//! # Protocol
//!
//! embedded-tls 0.19 (no allocator): TLS 1.3 only, TLS_AES_128_GCM_SHA256, ECDHE on secp256r1, mutual
//! authentication with ECDSA P-256/SHA-256. The ECDHE key exchange runs in software (`p256` inside
//! embedded-tls); only the long-term key is in the chip. The client asks for max_fragment_length 1024
//! (RFC 6066; OpenSSL 3 honours it in TLS 1.3 and mosquitto echoes it), which bounds the records the
//! broker sends and so the receive buffer:
//!
//! | buffer | bytes | why |
//! |---|---|---|
//! | receive | [`RX_BUFFER_LEN`] = 1046 | 1024 plaintext + 1 content type + 16 GCM tag + 5 header |
//! | transmit | [`TX_BUFFER_LEN`] = 640 | the largest record the node sends is its Certificate message: the client certificate DER + [`CLIENT_CERT_OVERHEAD`] (≤ 600 B certificates; the site's are ~450 B) |
//!
//! MFL 512 does not work: the broker's Certificate message (leaf + CA, ~880 B) must fit one record
//! because embedded-tls does not reassemble handshake messages across records. OpenSSL does not support
//! record_size_limit (RFC 8449), so MFL is the only lever.
//!
//! # What is verified
//!
//! See [`crate::cert`]: the broker's leaf certificate must be signed by the pinned CA key, be a server
//! certificate and carry the configured broker name in its subjectAltName; its CertificateVerify must
//! verify with its key. Validity dates are not checked (no trusted clock before the node is online).
//! Revocation of *client* certificates is the broker's job (mosquitto's `crlfile`): in TLS 1.3 a revoked
//! node completes its side of the handshake before the broker has checked it, so the refusal shows up in
//! `connect` or in the first `send`/`recv` ([`TlsTransportError::ClientRefused`] either way).
//!
//! # Measured (x86_64, mosquitto 2.0.11 on 127.0.0.1, `examples/handshake.rs`)
//!
//! `connect` (TCP + handshake, software P-256): median 2.3 ms release, 18 ms debug. Handshake stack
//! (buffers not included): ~12 KiB release, ~44 KiB debug; the lx106 figure must be measured there.
//!
//! # Signing with the chip
//!
//! embedded-tls hands the signer the whole CertificateVerify input (64 spaces, the context string, the
//! transcript hash); the signer hashes it with SHA-256, has the chip sign the digest (R‖S) and DER-encodes
//! it. embedded-tls calls the infallible `SignerMut::sign`, so [`SIGN_ATTEMPTS`] chip attempts are made
//! inside it; when they all fail it returns an empty signature *and* blocks all further writes on the
//! socket, so that nothing is sent: the handshake fails with [`TlsTransportError::Signer`], no panic.
//!
//! # Randomness
//!
//! The client random and the ECDHE key come from the node's source (the chip's Random on a node, through
//! `try_fill_bytes`). When it fails, the handshake ends before anything is sent, with
//! [`TlsTransportError::Random`]; see `GuardedRng` for why it cannot simply pass the error on.
//!
//! # One value per connection
//!
//! embedded-tls borrows the record buffers for the connection's whole life and gives back only the
//! socket when it closes. Without `unsafe` a transport cannot take its buffers back to reconnect, so a
//! [`TlsTransport`] is one connection attempt: after the node closed it ([`TlsTransport::is_spent`]),
//! make a new one. The [`Node`](tmc_sensor_core::node::Node) keeps all its state itself, so swapping the
//! transport between two polls is invisible to it. [`TlsClient`] owns everything the transports borrow:
//!
//! ```ignore
//! let mut client = TlsClient::new(config, socket, secure_element, rng);
//! loop {
//!     let mut transport = client.transport();
//!     while !transport.is_spent() {
//!         let Wait(ms) = node.poll(now_ms(), random(), &mut transport, &mut sensor, &mut log);
//!         sleep_ms(ms);
//!     }
//! }
//! ```
//!
//! # Non-blocking receive
//!
//! [`Transport::recv`] must return `Ok(0)` when nothing is there. embedded-tls's read blocks until an
//! application-data record arrives, and it silently skips NewSessionTicket records (OpenSSL sends two
//! after the handshake), so a readiness check before the call is not enough. The adapter between
//! embedded-tls and the socket follows the record framing; while `recv` runs it answers a read at a
//! record boundary with no bytes ready by an error that `recv` turns into `Ok(0)`. Nothing is lost:
//! embedded-tls had consumed nothing of the next record. Inside a record it blocks (the rest is on its
//! way; the socket's read timeout bounds that).
//!
//! Known limits of embedded-tls 0.19 the broker does not trigger: a post-handshake KeyUpdate or
//! CertificateRequest would panic inside embedded-tls (`unimplemented!`), and a server Certificate
//! message with more than 16 certificates is refused.

use core::cell::Cell;
use core::fmt;

use embedded_io::{ErrorType, Read, ReadReady, Write};
use embedded_tls::alert::{AlertDescription, AlertLevel};
use embedded_tls::blocking::{
    Aes128GcmSha256, Certificate as TlsCertificate, CertificateEntryRef, CertificateRef,
    CertificateVerifyRef, CryptoProvider, MaxFragmentLength, TlsConfig, TlsConnection, TlsContext,
    TlsError, TlsVerifier,
};
use embedded_tls::{CryptoRngCore, SignatureScheme};
use sha2::{Digest, Sha256};
use tmc_sensor_core::node::Transport;

use crate::cert::{ecdsa_der_to_rs, CertError, Certificate};
use crate::SecureElement;

/// Receive record buffer: one record of max_fragment_length 1024 (1024 + 1 + 16 + 5).
pub const RX_BUFFER_LEN: usize = 1046;
/// Transmit record buffer: holds the client Certificate record (see [`CLIENT_CERT_OVERHEAD`]).
pub const TX_BUFFER_LEN: usize = 640;
/// Bytes around the client certificate in its Certificate record: record header 5, handshake header 4,
/// context 1, list length 3, entry length 3, extensions 2, content type 1, GCM tag 16.
pub const CLIENT_CERT_OVERHEAD: usize = 35;
/// Longest client certificate the transmit buffer takes.
pub const MAX_CLIENT_CERT_LEN: usize = TX_BUFFER_LEN - CLIENT_CERT_OVERHEAD;
/// Chip Sign attempts per CertificateVerify (an I²C hiccup must not cost a whole handshake).
pub const SIGN_ATTEMPTS: usize = 3;

/// The byte stream under TLS: TCP on Linux, the Wi-Fi stack's socket on the node.
///
/// `read` and `write` block (with a timeout, ideally); [`ReadReady::read_ready`] must not block and
/// says whether `read` would return at once (bytes buffered, or end of stream).
pub trait Socket: Read + Write + ReadReady {
    /// (Re)connects the stream to the broker; a previous stream is dropped first.
    fn open(&mut self) -> Result<(), Self::Error>;
    /// Drops the stream (no error: it is being abandoned anyway).
    fn close(&mut self);
}

/// What the node needs to know to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsClientConfig<'a> {
    /// The site CA's P-256 key (X‖Y): the only trust anchor.
    pub ca_public_key: [u8; 64],
    /// The broker's DNS name (SNI, and what its certificate must name): `mqtt.com`.
    pub server_name: &'a str,
    /// This node's certificate (DER), issued by the site CA for the secure element's key.
    pub client_cert_der: &'a [u8],
}

impl<'a> TlsClientConfig<'a> {
    /// Pins the key of `ca_cert_der` (the site's `ecc.ca.cert.pem` as DER).
    pub fn from_ca_cert(
        ca_cert_der: &[u8],
        server_name: &'a str,
        client_cert_der: &'a [u8],
    ) -> Result<Self, CertError> {
        Ok(TlsClientConfig {
            ca_public_key: crate::cert::ca_public_key(ca_cert_der)?,
            server_name,
            client_cert_der,
        })
    }
}

/// Why the connection failed. The node logs it as `mqtt: connect failed: <this>` or
/// `mqtt: connection lost: <this>`.
#[derive(Debug)]
pub enum TlsTransportError<S, E> {
    /// The socket did not connect.
    Connect(S),
    /// embedded-tls ended the handshake (an alert from the broker, an I/O error, a protocol error).
    Handshake(TlsError),
    /// The broker's certificate or CertificateVerify was refused.
    Certificate(CertError),
    /// The secure element failed while verifying the broker.
    Verify(E),
    /// The secure element did not produce the CertificateVerify signature in [`SIGN_ATTEMPTS`]
    /// attempts (`None`: it answered, but with an invalid signature).
    Signer(Option<E>),
    /// The random source (the chip's Random) failed before the ClientHello: nothing was sent.
    Random,
    /// The broker dropped the connection after it got this node's certificate and before it sent any
    /// data: it refused the certificate (revoked, or from another CA). In TLS 1.3 the client's side of the
    /// handshake is over before the server has checked it, so this shows up in `connect` or in the first
    /// `send`/`recv`, whichever the timing gives; OpenSSL's alert, if it arrives, is not readable to
    /// embedded-tls, so the cause is an inference the broker's log confirms. The error is what the node saw.
    ClientRefused(TlsError),
    /// The client certificate does not fit the transmit buffer.
    ClientCertTooLarge(usize),
    /// A TLS error on an established connection.
    Tls(TlsError),
    /// The broker closed the connection.
    Closed,
    /// This transport already made its connection attempt; make a new one.
    Spent,
}

fn describe_tls(f: &mut fmt::Formatter<'_>, e: &TlsError) -> fmt::Result {
    match e {
        TlsError::HandshakeAborted(level, description) => write!(
            f,
            "the broker sent {} alert {description:?}",
            match level {
                AlertLevel::Fatal => "a fatal",
                AlertLevel::Warning => "a warning",
            }
        ),
        TlsError::Io(kind) => write!(f, "I/O error ({kind:?})"),
        TlsError::IoError | TlsError::ConnectionClosed => {
            f.write_str("the broker closed the connection")
        }
        // embedded-tls reports any alert but close_notify on an established connection like this.
        TlsError::InternalError => f.write_str(
            "the broker aborted the connection (TLS alert, e.g. a refused client certificate)",
        ),
        other => write!(f, "{other:?}"),
    }
}

impl<S: fmt::Display, E: fmt::Display> fmt::Display for TlsTransportError<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsTransportError::Connect(e) => write!(f, "cannot reach the broker: {e}"),
            TlsTransportError::Handshake(e) => {
                f.write_str("TLS handshake failed: ")?;
                describe_tls(f, e)
            }
            TlsTransportError::Certificate(e) => write!(f, "TLS handshake failed: {e}"),
            TlsTransportError::Verify(e) => {
                write!(f, "TLS handshake failed: secure element could not verify: {e}")
            }
            TlsTransportError::Signer(Some(e)) => write!(
                f,
                "TLS handshake failed: secure element could not sign ({SIGN_ATTEMPTS} attempts): {e}"
            ),
            TlsTransportError::Signer(None) => write!(
                f,
                "TLS handshake failed: secure element returned an invalid signature ({SIGN_ATTEMPTS} attempts)"
            ),
            TlsTransportError::Random => f.write_str(
                "TLS handshake failed: the secure element gave no random bytes (Random failed); nothing was sent",
            ),
            TlsTransportError::ClientRefused(e) => {
                f.write_str(
                    "the broker dropped the TLS connection after receiving this node's certificate \
                     (revoked, or not from the broker's CA?): ",
                )?;
                describe_tls(f, e)
            }
            TlsTransportError::ClientCertTooLarge(len) => write!(
                f,
                "client certificate of {len} bytes does not fit the TLS transmit buffer (at most {MAX_CLIENT_CERT_LEN})"
            ),
            TlsTransportError::Tls(e) => {
                f.write_str("TLS error: ")?;
                describe_tls(f, e)
            }
            TlsTransportError::Closed => f.write_str("connection closed"),
            TlsTransportError::Spent => {
                f.write_str("TLS transport already used for a connection (make a new one)")
            }
        }
    }
}

/// Flags shared between the transport, the socket adapter inside embedded-tls, and the signer.
/// `Cell`s: they are all on one thread and borrow it at the same time.
#[derive(Debug, Default)]
struct Shared {
    /// `recv` is running: a read at a record boundary must not block.
    polling: Cell<bool>,
    /// The adapter refused a read because nothing was ready.
    would_block: Cell<bool>,
    /// No more writes (the signer failed, or the handshake did): nothing half-made goes out.
    writes_blocked: Cell<bool>,
    /// The CertificateVerify was signed: the broker has (or is about to have) our certificate.
    client_auth_sent: Cell<bool>,
    /// The random source failed (see [`GuardedRng`]).
    random_failed: Cell<bool>,
}

impl Shared {
    fn reset(&self) {
        self.polling.set(false);
        self.would_block.set(false);
        self.writes_blocked.set(false);
        self.client_auth_sent.set(false);
        self.random_failed.set(false);
    }
}

/// The record buffers and shared flags one connection borrows. ~1.7 KB: keep it in the firmware's main
/// frame (or a static cell), not in a deep call.
#[derive(Debug)]
pub struct TlsBuffers {
    rx: [u8; RX_BUFFER_LEN],
    tx: [u8; TX_BUFFER_LEN],
    shared: Shared,
}

impl TlsBuffers {
    pub const fn new() -> Self {
        TlsBuffers {
            rx: [0; RX_BUFFER_LEN],
            tx: [0; TX_BUFFER_LEN],
            shared: Shared {
                polling: Cell::new(false),
                would_block: Cell::new(false),
                writes_blocked: Cell::new(false),
                client_auth_sent: Cell::new(false),
                random_failed: Cell::new(false),
            },
        }
    }
}

impl Default for TlsBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// The adapter embedded-tls reads and writes through: follows the TLS record framing so that `recv` can
/// stop at a record boundary, and blocks writes on request.
struct Io<'a, S> {
    socket: &'a mut S,
    shared: &'a Shared,
    header: [u8; 5],
    header_len: usize,
    body_left: usize,
}

#[derive(Debug)]
enum IoError<E> {
    Socket(E),
    WouldBlock,
    WritesBlocked,
}

impl<E: fmt::Display> fmt::Display for IoError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::Socket(e) => write!(f, "{e}"),
            IoError::WouldBlock => f.write_str("no record pending"),
            IoError::WritesBlocked => f.write_str("writes blocked"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for IoError<E> {}

impl<E: embedded_io::Error> embedded_io::Error for IoError<E> {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            IoError::Socket(e) => e.kind(),
            IoError::WouldBlock => embedded_io::ErrorKind::Interrupted,
            IoError::WritesBlocked => embedded_io::ErrorKind::NotConnected,
        }
    }
}

impl<'a, S: Socket> Io<'a, S> {
    fn new(socket: &'a mut S, shared: &'a Shared) -> Self {
        Io {
            socket,
            shared,
            header: [0; 5],
            header_len: 0,
            body_left: 0,
        }
    }

    /// Follows the record framing over the bytes embedded-tls just read.
    fn track(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.header_len < self.header.len() {
                let n = (self.header.len() - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
                self.header_len += n;
                bytes = &bytes[n..];
                if self.header_len == self.header.len() {
                    self.body_left =
                        usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                }
            } else {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
            }
            if self.header_len == self.header.len() && self.body_left == 0 {
                self.header_len = 0;
            }
        }
    }
}

impl<S: Socket> ErrorType for Io<'_, S> {
    type Error = IoError<S::Error>;
}

impl<S: Socket> Read for Io<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.shared.polling.get()
            && self.header_len == 0
            && !self.socket.read_ready().map_err(IoError::Socket)?
        {
            self.shared.would_block.set(true);
            return Err(IoError::WouldBlock);
        }
        let n = self.socket.read(buf).map_err(IoError::Socket)?;
        self.track(&buf[..n.min(buf.len())]);
        Ok(n)
    }
}

impl<S: Socket> Write for Io<'_, S> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if self.shared.writes_blocked.get() {
            return Err(IoError::WritesBlocked);
        }
        self.socket.write(buf).map_err(IoError::Socket)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        if self.shared.writes_blocked.get() {
            return Err(IoError::WritesBlocked);
        }
        self.socket.flush().map_err(IoError::Socket)
    }
}

/// Why the verifier refused, kept for the error the transport returns (embedded-tls only sees an alert).
enum VerifyFailure<E> {
    Cert(CertError),
    Element(E),
}

/// The broker check (see [`crate::cert`]): pinned CA key, broker name, both ECDSA verifications by the
/// secure element.
struct SiteVerifier<'p, E: SecureElement> {
    element: &'p mut E,
    ca_key: [u8; 64],
    server_name: &'p str,
    /// The leaf's key and the transcript hash up to its Certificate message, for CertificateVerify.
    server_key: Option<[u8; 64]>,
    transcript: Option<[u8; 32]>,
    failure: Option<VerifyFailure<E::Error>>,
}

impl<E: SecureElement> SiteVerifier<'_, E> {
    fn fail(&mut self, failure: VerifyFailure<E::Error>) -> TlsError {
        let description = match &failure {
            VerifyFailure::Cert(CertError::NotFromSiteCa) => AlertDescription::UnknownCa,
            VerifyFailure::Cert(CertError::UnsupportedAlgorithm(_)) => {
                AlertDescription::UnsupportedCertificate
            }
            VerifyFailure::Cert(CertError::BadServerSignature) => AlertDescription::DecryptError,
            VerifyFailure::Cert(_) => AlertDescription::BadCertificate,
            VerifyFailure::Element(_) => AlertDescription::InternalError,
        };
        self.failure = Some(failure);
        // embedded-tls sends this alert to the broker, then ends the handshake.
        TlsError::AbortHandshake(AlertLevel::Fatal, description)
    }

    fn verify(
        &mut self,
        key: &[u8; 64],
        digest: &[u8; 32],
        rs: &[u8; 64],
        refusal: CertError,
    ) -> Result<(), VerifyFailure<E::Error>> {
        match self.element.verify_digest(key, digest, rs) {
            Ok(true) => Ok(()),
            Ok(false) => Err(VerifyFailure::Cert(refusal)),
            Err(e) => Err(VerifyFailure::Element(e)),
        }
    }

    fn check_leaf(&mut self, der: &[u8]) -> Result<[u8; 64], VerifyFailure<E::Error>> {
        let leaf = Certificate::parse(der).map_err(VerifyFailure::Cert)?;
        match leaf.signed_by(self.element, &self.ca_key) {
            Ok(true) => {}
            Ok(false) => return Err(VerifyFailure::Cert(CertError::NotFromSiteCa)),
            Err(e) => return Err(VerifyFailure::Element(e)),
        }
        leaf.check_server_usage().map_err(VerifyFailure::Cert)?;
        if !leaf
            .has_dns_name(self.server_name)
            .map_err(VerifyFailure::Cert)?
        {
            return Err(VerifyFailure::Cert(CertError::NameMismatch));
        }
        Ok(leaf.public_key)
    }
}

impl<E: SecureElement> TlsVerifier<Aes128GcmSha256> for SiteVerifier<'_, E> {
    fn set_hostname_verification(&mut self, _hostname: &str) -> Result<(), TlsError> {
        // The same name as `server_name` (the transport sets both from its config).
        Ok(())
    }

    fn verify_certificate(
        &mut self,
        transcript: &Sha256,
        cert: CertificateRef,
    ) -> Result<(), TlsError> {
        // The leaf comes first; OpenSSL adds the CA after it, which the pinned key makes redundant.
        let Some(CertificateEntryRef::X509(der)) = cert.entries.first() else {
            return Err(self.fail(VerifyFailure::Cert(CertError::NoCertificate)));
        };
        match self.check_leaf(der) {
            Ok(key) => {
                self.server_key = Some(key);
                // The transcript already includes the Certificate message: what CertificateVerify signs.
                self.transcript = Some(transcript.clone().finalize().into());
                Ok(())
            }
            Err(failure) => Err(self.fail(failure)),
        }
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef) -> Result<(), TlsError> {
        let (Some(key), Some(transcript)) = (self.server_key.take(), self.transcript.take()) else {
            // CertificateVerify without an accepted Certificate before it.
            return Err(self.fail(VerifyFailure::Cert(CertError::NoCertificate)));
        };
        if verify.signature_scheme != SignatureScheme::EcdsaSecp256r1Sha256 {
            return Err(
                self.fail(VerifyFailure::Cert(CertError::UnsupportedAlgorithm(
                    "the server's CertificateVerify scheme",
                ))),
            );
        }
        let rs = match ecdsa_der_to_rs(verify.signature) {
            Ok(rs) => rs,
            Err(e) => return Err(self.fail(VerifyFailure::Cert(e))),
        };
        // RFC 8446 §4.4.3: 64 spaces, the context string, a zero byte, the transcript hash.
        let mut hasher = Sha256::new();
        hasher.update([0x20u8; 64]);
        hasher.update(b"TLS 1.3, server CertificateVerify\x00");
        hasher.update(transcript);
        let digest: [u8; 32] = hasher.finalize().into();
        match self.verify(&key, &digest, &rs, CertError::BadServerSignature) {
            Ok(()) => Ok(()),
            Err(failure) => Err(self.fail(failure)),
        }
    }
}

/// What embedded-tls puts in CertificateVerify: a DER ECDSA signature, or nothing when the element could
/// not sign (see [`ChipSigner::sign`]).
#[derive(Debug, Clone)]
struct DerSignature(Option<p256::ecdsa::DerSignature>);

impl AsRef<[u8]> for DerSignature {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], |der| der.as_bytes())
    }
}

/// Signs the CertificateVerify input with the secure element.
struct ChipSigner<'s, E: SecureElement> {
    element: &'s mut E,
    /// `Some` once signing failed: the element's last error (`None`: invalid signatures only).
    failure: &'s mut Option<Option<E::Error>>,
    shared: &'s Shared,
}

impl<E: SecureElement> signature::SignerMut<DerSignature> for ChipSigner<'_, E> {
    fn try_sign(&mut self, msg: &[u8]) -> Result<DerSignature, signature::Error> {
        let digest: [u8; 32] = Sha256::digest(msg).into();
        let mut last_error = None;
        for _ in 0..SIGN_ATTEMPTS {
            match self.element.sign_digest(&digest) {
                // r and s in 1..n-1, or the broker would only say "decrypt error".
                Ok(rs) => {
                    if let Ok(signature) = p256::ecdsa::Signature::from_slice(&rs) {
                        self.shared.client_auth_sent.set(true);
                        return Ok(DerSignature(Some(signature.to_der())));
                    }
                }
                Err(e) => last_error = Some(e),
            }
        }
        *self.failure = Some(last_error);
        Err(signature::Error::new())
    }

    /// What embedded-tls calls; the default would panic on failure.
    fn sign(&mut self, msg: &[u8]) -> DerSignature {
        self.try_sign(msg).unwrap_or_else(|_| {
            // Nothing more goes out: embedded-tls's write of the (empty) CertificateVerify fails and
            // the handshake ends with an I/O error the transport reports as the signer's failure.
            self.shared.writes_blocked.set(true);
            DerSignature(None)
        })
    }
}

/// The randomness embedded-tls draws (the client random, the ECDHE key) from the node's source (the chip's
/// Random on a node). embedded-tls can only be handed bytes, not an error, and p256's key generation
/// rejects a zero scalar by drawing again, forever: so a failed draw gets a fixed non-zero value that ends
/// that loop, and all writes are blocked, so nothing made from it goes out; the handshake then fails at its
/// first write and the transport reports [`TlsTransportError::Random`].
struct GuardedRng<'p, R> {
    rng: &'p mut R,
    shared: &'p Shared,
}

impl<R: CryptoRngCore> rand_core::RngCore for GuardedRng<'_, R> {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if self.rng.try_fill_bytes(dest).is_err() {
            dest.fill(0x5A);
            self.shared.random_failed.set(true);
            self.shared.writes_blocked.set(true);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl<R: CryptoRngCore> rand_core::CryptoRng for GuardedRng<'_, R> {}

/// embedded-tls's view of the node's crypto for one handshake.
struct Provider<'p, E: SecureElement, R> {
    verifier: SiteVerifier<'p, E>,
    rng: &'p mut R,
    client_cert: &'p [u8],
    signer_failure: Option<Option<E::Error>>,
    shared: &'p Shared,
}

impl<E: SecureElement, R: CryptoRngCore> CryptoProvider for Provider<'_, E, R> {
    type CipherSuite = Aes128GcmSha256;
    type Signature = DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        GuardedRng {
            rng: &mut *self.rng,
            shared: self.shared,
        }
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Self::CipherSuite>, TlsError> {
        Ok(&mut self.verifier)
    }

    fn signer(
        &mut self,
    ) -> Result<(impl signature::SignerMut<Self::Signature>, SignatureScheme), TlsError> {
        Ok((
            ChipSigner {
                element: &mut *self.verifier.element,
                failure: &mut self.signer_failure,
                shared: self.shared,
            },
            SignatureScheme::EcdsaSecp256r1Sha256,
        ))
    }

    fn client_cert(&mut self) -> Option<TlsCertificate<impl AsRef<[u8]>>> {
        Some(TlsCertificate::X509(self.client_cert))
    }
}

type Connection<'a, S> = TlsConnection<'a, Io<'a, S>, Aes128GcmSha256>;

// The open connection is the big variant (key schedule, record state): without an allocator it cannot
// be boxed, and there is one value per connection anyway.
#[allow(clippy::large_enum_variant)]
enum Stage<'a, S: Socket, E, R> {
    Ready {
        socket: &'a mut S,
        element: &'a mut E,
        rng: &'a mut R,
        rx: &'a mut [u8],
        tx: &'a mut [u8],
        shared: &'a Shared,
    },
    Open {
        connection: Connection<'a, S>,
        shared: &'a Shared,
        /// The broker sent application data: it accepted this node's certificate.
        accepted: bool,
    },
    Spent,
}

/// One TLS connection attempt to the broker, as the node's [`Transport`]. See the [module docs](self)
/// for the one-value-per-connection pattern.
pub struct TlsTransport<'a, S: Socket, E: SecureElement, R: CryptoRngCore> {
    config: &'a TlsClientConfig<'a>,
    stage: Stage<'a, S, E, R>,
}

impl<'a, S: Socket, E: SecureElement, R: CryptoRngCore> TlsTransport<'a, S, E, R> {
    /// A transport that connects at the node's next `connect()`, borrowing everything it needs for the
    /// connection's lifetime.
    pub fn new(
        config: &'a TlsClientConfig<'a>,
        socket: &'a mut S,
        element: &'a mut E,
        rng: &'a mut R,
        buffers: &'a mut TlsBuffers,
    ) -> Self {
        let TlsBuffers { rx, tx, shared } = buffers;
        TlsTransport {
            config,
            stage: Stage::Ready {
                socket,
                element,
                rng,
                rx,
                tx,
                shared,
            },
        }
    }

    /// The handshake completed and the connection was not closed.
    pub fn is_open(&self) -> bool {
        matches!(self.stage, Stage::Open { .. })
    }

    /// The connection attempt is over (failed or closed): make a new transport to reconnect.
    pub fn is_spent(&self) -> bool {
        matches!(self.stage, Stage::Spent)
    }
}

impl<S: Socket, E: SecureElement, R: CryptoRngCore> Transport for TlsTransport<'_, S, E, R> {
    type Error = TlsTransportError<S::Error, E::Error>;

    fn connect(&mut self) -> Result<(), Self::Error> {
        let Stage::Ready {
            socket,
            element,
            rng,
            rx,
            tx,
            shared,
        } = core::mem::replace(&mut self.stage, Stage::Spent)
        else {
            return Err(TlsTransportError::Spent);
        };
        let config = self.config;
        if config.client_cert_der.len() > MAX_CLIENT_CERT_LEN {
            return Err(TlsTransportError::ClientCertTooLarge(
                config.client_cert_der.len(),
            ));
        }
        shared.reset();
        if let Err(e) = socket.open() {
            socket.close();
            return Err(TlsTransportError::Connect(e));
        }
        let mut connection = TlsConnection::new(Io::new(socket, shared), rx, tx);
        let tls_config = TlsConfig::new()
            .with_server_name(config.server_name)
            .with_max_fragment_length(MaxFragmentLength::Bits10);
        let mut provider = Provider {
            verifier: SiteVerifier {
                element,
                ca_key: config.ca_public_key,
                server_name: config.server_name,
                server_key: None,
                transcript: None,
                failure: None,
            },
            rng,
            client_cert: config.client_cert_der,
            signer_failure: None,
            shared,
        };
        match connection.open(TlsContext::new(&tls_config, &mut provider)) {
            Ok(()) => {
                self.stage = Stage::Open {
                    connection,
                    shared,
                    accepted: false,
                };
                Ok(())
            }
            Err(e) => {
                // Our own diagnosis first: embedded-tls only saw an alert or an I/O error.
                let error = match (
                    provider.signer_failure.take(),
                    provider.verifier.failure.take(),
                ) {
                    _ if shared.random_failed.get() => TlsTransportError::Random,
                    (Some(failure), _) => TlsTransportError::Signer(failure),
                    (None, Some(VerifyFailure::Cert(c))) => TlsTransportError::Certificate(c),
                    (None, Some(VerifyFailure::Element(e))) => TlsTransportError::Verify(e),
                    (None, None)
                        if shared.client_auth_sent.get()
                            && matches!(
                                e,
                                TlsError::Io(_) | TlsError::IoError | TlsError::ConnectionClosed
                            ) =>
                    {
                        TlsTransportError::ClientRefused(e)
                    }
                    (None, None) => TlsTransportError::Handshake(e),
                };
                // No close_notify after a failed handshake: just drop the stream.
                shared.writes_blocked.set(true);
                let io = match connection.close() {
                    Ok(io) | Err((io, _)) => io,
                };
                io.socket.close();
                Err(error)
            }
        }
    }

    fn send(&mut self, data: &[u8]) -> Result<(), Self::Error> {
        let Stage::Open {
            connection,
            accepted,
            ..
        } = &mut self.stage
        else {
            return Err(TlsTransportError::Closed);
        };
        let accepted = *accepted;
        let mut rest = data;
        while !rest.is_empty() {
            let n = connection
                .write(rest)
                .map_err(|e| established(e, accepted))?;
            if n == 0 {
                return Err(TlsTransportError::Tls(TlsError::InsufficientSpace));
            }
            rest = rest.get(n..).unwrap_or_default();
        }
        connection.flush().map_err(|e| established(e, accepted))
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let Stage::Open {
            connection,
            shared,
            accepted,
        } = &mut self.stage
        else {
            return Err(TlsTransportError::Closed);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        shared.would_block.set(false);
        shared.polling.set(true);
        let result = connection.read(buf);
        shared.polling.set(false);
        match result {
            Ok(n) => {
                *accepted |= n > 0;
                Ok(n)
            }
            Err(_) if shared.would_block.get() => Ok(0),
            Err(e) => Err(established(e, *accepted)),
        }
    }

    fn close(&mut self) {
        match core::mem::replace(&mut self.stage, Stage::Spent) {
            Stage::Open { connection, .. } => {
                // close_notify, best effort; then drop the stream either way.
                let io = match connection.close() {
                    Ok(io) | Err((io, _)) => io,
                };
                io.socket.close();
            }
            Stage::Ready { socket, .. } => socket.close(),
            Stage::Spent => {}
        }
    }
}

/// An error on an established connection; before the broker sent anything, a dropped connection is
/// its refusal of this node's certificate.
fn established<S, E>(e: TlsError, accepted: bool) -> TlsTransportError<S, E> {
    match e {
        TlsError::ConnectionClosed
        | TlsError::IoError
        | TlsError::InternalError
        | TlsError::Io(_)
            if !accepted =>
        {
            TlsTransportError::ClientRefused(e)
        }
        TlsError::ConnectionClosed | TlsError::IoError => TlsTransportError::Closed,
        other => TlsTransportError::Tls(other),
    }
}

/// Owns what the [`TlsTransport`]s borrow, so that the firmware's (or the simulator's) loop can make a
/// fresh transport per connection attempt with [`transport`](Self::transport).
pub struct TlsClient<'c, S: Socket, E: SecureElement, R: CryptoRngCore> {
    config: TlsClientConfig<'c>,
    socket: S,
    element: E,
    rng: R,
    buffers: TlsBuffers,
}

impl<'c, S: Socket, E: SecureElement, R: CryptoRngCore> TlsClient<'c, S, E, R> {
    pub fn new(config: TlsClientConfig<'c>, socket: S, element: E, rng: R) -> Self {
        TlsClient {
            config,
            socket,
            element,
            rng,
            buffers: TlsBuffers::new(),
        }
    }

    /// A transport for the next connection attempt.
    pub fn transport(&mut self) -> TlsTransport<'_, S, E, R> {
        TlsTransport::new(
            &self.config,
            &mut self.socket,
            &mut self.element,
            &mut self.rng,
            &mut self.buffers,
        )
    }

    pub fn config(&self) -> &TlsClientConfig<'c> {
        &self.config
    }

    /// The secure element, between connections (e.g. to make a CSR).
    pub fn element_mut(&mut self) -> &mut E {
        &mut self.element
    }

    pub fn socket_mut(&mut self) -> &mut S {
        &mut self.socket
    }
}

//! # tmc-node-tls
//!
//! The sensor node's side of the broker link, `#![no_std]` without `alloc`, shared by the ESP8266 firmware and
//! `tmc-sensor-sim`:
//!
//! - [`SecureElement`]: the one seam to the key: sign a SHA-256 digest with the device key, verify a signature
//!   with a given public key. A chip (ATECC508A/608A Sign and Verify), or software P-256 on Linux.
//! - `tls`: a [`tmc_sensor_core::node::Transport`] that wraps any byte stream in TLS 1.3 (embedded-tls), with
//!   the client's CertificateVerify made by the [`SecureElement`] and the server checked against the pinned
//!   site CA and the broker name.
//! - `csr`: a PKCS#10 certificate request for the chip's key, signed by the chip.
//! - `identity`: the node's certificate and site CA as one checksummed record in a flash sector of its own.

#![no_std]

#[cfg(any(test, feature = "std"))]
extern crate std;

/// ECDSA P-256 with the device's private key, which never leaves the secure element, and signature
/// verification with any public key. Keys are uncompressed points without the 0x04 prefix (X‖Y, 64 bytes),
/// signatures are R‖S (64 bytes), digests SHA-256 (32 bytes): the chip's own formats.
pub trait SecureElement {
    type Error: core::fmt::Display;
    /// The device's public key (X‖Y).
    fn public_key(&mut self) -> Result<[u8; 64], Self::Error>;
    /// Signs `digest` with the device key: R‖S.
    fn sign_digest(&mut self, digest: &[u8; 32]) -> Result<[u8; 64], Self::Error>;
    /// Whether `signature` (R‖S) over `digest` verifies with `public_key` (X‖Y). `Ok(false)` is a signature
    /// that does not verify; `Err` is a failure to find out.
    fn verify_digest(
        &mut self,
        public_key: &[u8; 64],
        digest: &[u8; 32],
        signature: &[u8; 64],
    ) -> Result<bool, Self::Error>;
}
pub mod atecc;
pub mod csr;

pub mod cert;
mod der;
pub mod identity;
pub mod software;
#[cfg(feature = "std")]
pub mod std_socket;
pub mod tls;

pub use cert::CertError;
#[cfg(feature = "std")]
pub use rand_core::OsRng;
pub use software::{SoftwareKey, SoftwareKeyError};
#[cfg(feature = "std")]
pub use std_socket::StdTcpSocket;
pub use tls::{
    Socket, TlsBuffers, TlsClient, TlsClientConfig, TlsTransport, TlsTransportError, RX_BUFFER_LEN,
    TX_BUFFER_LEN,
};

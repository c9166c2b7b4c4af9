//! # tmc-node-console
//!
//! The sensor node's provisioning console: a line protocol on the UART with which one firmware image becomes
//! a given sensor of a given site. The node makes its key in the secure element's device slot (GenKey),
//! prints a certificate request (PEM) signed by the chip, and takes back its certificate and the site CA,
//! which it keeps in a flash sector of their own ([`tmc_node_tls::identity::IdentityRecord`]), not in the
//! image. `tmc-provision sensor-console` (`make provision-sensor`) drives it from the PC.
//!
//! `#![no_std]` without `alloc`, no atomics, fixed-size buffers: the firmware owns one [`Console`] (see
//! [`Console::STATE_LEN`]) and feeds it the UART's bytes. The chip, the flash sector and the output are
//! seams: [`DeviceKey`], [`IdentityFlash`], [`core::fmt::Write`]. Feature `sim` adds the pty double
//! `tmc-node-console-sim` (module `sim`, std).
//!
//! # Entering the mode
//!
//! The firmware decides (a key held at boot, or the line [`ENTER_COMMAND`] typed at the banner) and calls
//! [`Console::start`], which prints the [`PROMPT`] line. Typed again inside the mode, `provision` prints the
//! prompt again, so a PC that is not sure where the node is can always send it.
//!
//! # Protocol
//!
//! One command per line; `\r` is ignored, a line ends at `\n`, empty lines are ignored, a line longer than
//! [`MAX_LINE_LEN`] bytes is refused as a whole. Every command ends with exactly one final line: `ok …`,
//! `identity: …` (for `show`) or `error: …`.
//!
//! | command | what the node does | final line |
//! |---|---|---|
//! | `csr NAME` | GenKey in the device slot **only if it holds no key**; then a PKCS#10 request with CN = `NAME` (1–23 ASCII letters and digits, the MQTT client id), signed by the chip. Prints `key created` or `key kept`, then the PEM lines | `ok csr` |
//! | `csr NAME new-key` | the same, but GenKey replaces an existing key (`key replaced`): the old certificate stops matching | `ok csr` |
//! | `ca` + PEM | the site CA certificate: must be a CA (basicConstraints cA) with a P-256 key; it becomes the pending CA (RAM only). `ca` drops any earlier pending CA first | `ok ca <sha256 of its DER>` |
//! | `cert` + PEM | this node's certificate: its key must be the chip's, its signature must verify with the pending CA's key (checked by the chip's Verify). Then the record (certificate + pending CA) is written to the identity sector, read back and decoded | `ok stored <sha256 of the certificate DER>` |
//! | `show` | reads the identity sector | `identity: cert <sha256> ca <sha256>` or `identity: none (<why>)` |
//! | `provision` | prints the prompt again | the [`PROMPT`] line |
//! | `exit` | leaves the mode ([`Step::Exit`]) | `ok exit` |
//!
//! A PEM block follows its command line: its first line must be `-----BEGIN CERTIFICATE-----`, it ends at
//! the `-----END CERTIFICATE-----` line. Any other first line, or an empty line inside the block, abandons
//! it. Nothing is answered for the lines in between; the block is checked at its end.
//!
//! # Refusals
//!
//! Every refusal is one line starting `error: ` and naming the problem, and changes nothing: no flash
//! write, no key change (the only state a refusal drops is a pending CA under a refused `ca`). Among them:
//! `error: line longer than 96 bytes`, `error: unknown command "…"`, `error: "…" is not a sensor name …`,
//! `error: ca: …` / `error: cert: …` for PEM that does not decode (`PEM …`), a certificate this walker
//! cannot read, a CA certificate that is no CA, `cert: no CA yet …`, `cert: certificate for another key
//! than this node's`, `cert: certificate from another CA than the pending one`, and `error: secure element:
//! …` / `error: flash: …` when the hardware fails.
//!
//! # Memory
//!
//! [`Console`] holds the line buffer ([`MAX_LINE_LEN`]), one scratch buffer shared by the PEM text being
//! received, the request being printed and the record being written or read back ([`SCRATCH_LEN`]), the
//! pending CA ([`MAX_CA_CERT_LEN`](tmc_node_tls::identity::MAX_CA_CERT_LEN)) and the certificate
//! ([`MAX_CLIENT_CERT_LEN`](tmc_node_tls::tls::MAX_CLIENT_CERT_LEN)): [`Console::STATE_LEN`] bytes, about
//! 5.6 KiB. The flash seam takes the record's bytes, not a whole 4 KiB sector image, for this reason.

#![no_std]

#[cfg(feature = "sim")]
extern crate std;

mod atecc;
mod console;
mod hex;
mod line;
mod pem_block;
#[cfg(feature = "sim")]
pub mod sim;

use core::fmt;

pub use console::{Console, Step, ENTER_COMMAND, PROMPT, SCRATCH_LEN};
pub use hex::Sha256Hex;
pub use line::{EnterWatch, LineBuffer, LineEvent, MAX_LINE_LEN};

/// The secure element with the device key, and the one thing provisioning needs beyond signing: making
/// the key.
pub trait DeviceKey: tmc_node_tls::SecureElement {
    /// The device slot's public key (X‖Y), `None` when the slot holds no key yet.
    fn existing_key(&mut self) -> Result<Option<[u8; 64]>, Self::Error>;
    /// Makes a new key inside the element (GenKey), replacing any key in the slot; its public key X‖Y.
    fn generate_key(&mut self) -> Result<[u8; 64], Self::Error>;
}

/// The flash sector that holds the identity record, from its first byte.
pub trait IdentityFlash {
    /// A failure of the flash.
    type Error: fmt::Display;
    /// Fills `buf` with the sector's first `buf.len()` bytes (erased flash reads 0xFF).
    fn read(&mut self, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Erases the sector and programs `record` at its start; the rest of the sector stays erased.
    fn write(&mut self, record: &[u8]) -> Result<(), Self::Error>;
}

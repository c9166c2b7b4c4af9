//! The console's state machine: commands, PEM blocks, the checks, the identity record.

use core::fmt::{self, Write};

use tmc_node_tls::cert::{CertError, Certificate};
use tmc_node_tls::csr::{csr_pem, write_csr, CsrError, MAX_CSR_DER_LEN, MAX_CSR_PEM_LEN};
use tmc_node_tls::identity::{IdentityRecord, RecordError, MAX_CA_CERT_LEN};
use tmc_node_tls::tls::MAX_CLIENT_CERT_LEN;
use tmc_node_tls::SecureElement;

use crate::line::{LineBuffer, LineEvent, MAX_LINE_LEN};
use crate::pem_block::{PemBlock, PemLine};
use crate::{DeviceKey, IdentityFlash, Sha256Hex};

/// The line the node prints when it enters provisioning mode (and again for `provision`): the PC waits for
/// it.
pub const PROMPT: &str = "tmc provisioning: csr NAME [new-key] | ca | cert | show | exit";
/// The line that enters provisioning mode at the firmware's banner (and reprints the prompt inside it).
pub const ENTER_COMMAND: &str = "provision";

/// The PEM label of both certificates.
const CERTIFICATE_LABEL: &str = "CERTIFICATE";
/// The longest record [`IdentityRecord::encode`] writes: 12-byte header, both certificates at their
/// limits, 32-byte checksum (see `tmc_node_tls::identity`).
const MAX_RECORD_LEN: usize = 12 + MAX_CLIENT_CERT_LEN + MAX_CA_CERT_LEN + 32;
/// The longest certificate PEM taken: the largest CA in 64-character lines, plus a line of slack for
/// writers that wrap differently.
const MAX_CERT_PEM_LEN: usize = cert_pem_len(MAX_CA_CERT_LEN) + MAX_LINE_LEN;

/// The scratch buffer: the PEM text being received, the request being printed (DER and PEM side by side),
/// the record being written and read back; never two at once.
pub const SCRATCH_LEN: usize = max(
    max(MAX_CERT_PEM_LEN, MAX_RECORD_LEN),
    MAX_CSR_DER_LEN + MAX_CSR_PEM_LEN,
);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// PEM of `der_len` bytes of certificate DER in 64-character lines, `\n` line ends.
const fn cert_pem_len(der_len: usize) -> usize {
    let base64 = der_len.div_ceil(3) * 4;
    "-----BEGIN CERTIFICATE-----\n".len()
        + base64
        + base64.div_ceil(64)
        + "-----END CERTIFICATE-----\n".len()
}

/// What the firmware does after a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Stay in provisioning mode.
    Stay,
    /// `exit` was typed: leave provisioning mode (the firmware goes on booting, or resets).
    Exit,
}

/// Which certificate a PEM block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expecting {
    Ca,
    Cert,
}

impl Expecting {
    fn command(self) -> &'static str {
        match self {
            Expecting::Ca => "ca",
            Expecting::Cert => "cert",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Commands,
    Pem(Expecting, PemBlock),
}

/// The provisioning console: see the crate documentation for the protocol.
pub struct Console {
    line: LineBuffer<MAX_LINE_LEN>,
    session: Session,
}

/// Everything but the line being typed (a separate field, so a line can be handled while borrowed).
struct Session {
    mode: Mode,
    scratch: [u8; SCRATCH_LEN],
    /// The pending site CA's DER (`ca_len` bytes, 0: none) and its key.
    ca: [u8; MAX_CA_CERT_LEN],
    ca_len: usize,
    ca_key: [u8; 64],
    /// The certificate being checked and stored.
    cert: [u8; MAX_CLIENT_CERT_LEN],
}

// The firmware's RAM budget: the whole state stays well below 8 KiB.
const _: () = assert!(Console::STATE_LEN < 6 * 1024);

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    /// Bytes of state (all of it: no allocation, nothing else kept).
    pub const STATE_LEN: usize = core::mem::size_of::<Console>();

    /// A console outside provisioning mode.
    pub const fn new() -> Self {
        Console {
            line: LineBuffer::new(),
            session: Session {
                mode: Mode::Commands,
                scratch: [0; SCRATCH_LEN],
                ca: [0; MAX_CA_CERT_LEN],
                ca_len: 0,
                ca_key: [0; 64],
                cert: [0; MAX_CLIENT_CERT_LEN],
            },
        }
    }

    /// Enters provisioning mode: forgets any pending CA and partial line, prints the [`PROMPT`].
    pub fn start<W: Write>(&mut self, out: &mut W) -> fmt::Result {
        self.line.clear();
        self.session.mode = Mode::Commands;
        self.session.ca_len = 0;
        writeln!(out, "{PROMPT}")
    }

    /// Takes one byte from the UART; answers on `out` when it ends a line.
    pub fn feed<K: DeviceKey, F: IdentityFlash, W: Write>(
        &mut self,
        byte: u8,
        key: &mut K,
        flash: &mut F,
        out: &mut W,
    ) -> Result<Step, fmt::Error> {
        let answer = match self.line.push(byte) {
            None => return Ok(Step::Stay),
            Some(LineEvent::TooLong) => {
                self.session.mode = Mode::Commands;
                Err(Refusal::TooLong)
            }
            Some(LineEvent::Complete) => self.session.line(self.line.line(), key, flash, out),
        };
        match answer {
            Ok(step) => Ok(step),
            Err(Refusal::Output) => Err(fmt::Error),
            Err(refusal) => writeln!(out, "error: {refusal}").map(|()| Step::Stay),
        }
    }

    /// [`feed`](Self::feed) for each byte, up to an [`Step::Exit`] (the bytes after it are not taken).
    pub fn feed_bytes<K: DeviceKey, F: IdentityFlash, W: Write>(
        &mut self,
        bytes: &[u8],
        key: &mut K,
        flash: &mut F,
        out: &mut W,
    ) -> Result<Step, fmt::Error> {
        for &byte in bytes {
            if self.feed(byte, key, flash, out)? == Step::Exit {
                return Ok(Step::Exit);
            }
        }
        Ok(Step::Stay)
    }
}

type Answer<K, F> = Result<Step, Refusal<<K as SecureElement>::Error, <F as IdentityFlash>::Error>>;

impl Session {
    fn line<K: DeviceKey, F: IdentityFlash, W: Write>(
        &mut self,
        line: &[u8],
        key: &mut K,
        flash: &mut F,
        out: &mut W,
    ) -> Answer<K, F> {
        if let Mode::Pem(expecting, mut block) = self.mode {
            return match block.push(line, &mut self.scratch) {
                PemLine::More => {
                    self.mode = Mode::Pem(expecting, block);
                    Ok(Step::Stay)
                }
                PemLine::Abandoned(why) => {
                    self.mode = Mode::Commands;
                    Err(Refusal::Pem(expecting, PemProblem::Framing(why)))
                }
                PemLine::End => {
                    self.mode = Mode::Commands;
                    match expecting {
                        Expecting::Ca => self.take_ca(block, out),
                        Expecting::Cert => self.store_cert(block, key, flash, out),
                    }
                    .map(|()| Step::Stay)
                }
            };
        }
        let mut words = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        let Some(command) = words.next() else {
            return Ok(Step::Stay); // an empty line
        };
        match command {
            b"csr" => self.csr(words, key, out).map(|()| Step::Stay),
            b"ca" => {
                self.ca_len = 0;
                self.mode = Mode::Pem(Expecting::Ca, PemBlock::default());
                Ok(Step::Stay)
            }
            b"cert" => {
                self.mode = Mode::Pem(Expecting::Cert, PemBlock::default());
                Ok(Step::Stay)
            }
            b"show" => self.show(flash, out).map(|()| Step::Stay),
            b"provision" => writeln!(out, "{PROMPT}")
                .map(|()| Step::Stay)
                .map_err(|_| Refusal::Output),
            b"exit" => writeln!(out, "ok exit")
                .map(|()| Step::Exit)
                .map_err(|_| Refusal::Output),
            _ => Err(Refusal::UnknownCommand(Shown::new(command))),
        }
    }

    /// `csr NAME [new-key]`.
    fn csr<'l, K: DeviceKey, FE, W: Write>(
        &mut self,
        mut args: impl Iterator<Item = &'l [u8]>,
        key: &mut K,
        out: &mut W,
    ) -> Result<(), Refusal<K::Error, FE>> {
        let (Some(name), option, None) = (args.next(), args.next(), args.next()) else {
            return Err(Refusal::CsrUsage);
        };
        let new_key = match option {
            None => false,
            Some(b"new-key") => true,
            Some(_) => return Err(Refusal::CsrUsage),
        };
        let name = core::str::from_utf8(name)
            .ok()
            .filter(|n| tmc_sensor_core::config::is_guaranteed_client_id(n))
            .ok_or(Refusal::BadName(Shown::new(name)))?;
        // As tmc-enroll: a deployed sensor's key is never replaced unless asked for.
        let existing = key.existing_key().map_err(Refusal::Element)?;
        let outcome = match (existing, new_key) {
            (Some(_), false) => "kept",
            (None, _) => key
                .generate_key()
                .map(|_| "created")
                .map_err(Refusal::Element)?,
            (Some(_), true) => key
                .generate_key()
                .map(|_| "replaced")
                .map_err(Refusal::Element)?,
        };
        let (der, pem) = self.scratch.split_at_mut(MAX_CSR_DER_LEN);
        let der_len = write_csr(key, name, der).map_err(Refusal::Csr)?;
        let pem_len = csr_pem(&der[..der_len], pem).map_err(|_| {
            Refusal::Csr(CsrError::BufferTooSmall {
                needed: MAX_CSR_PEM_LEN,
            })
        })?;
        // The PEM is ASCII by construction.
        let pem = core::str::from_utf8(&pem[..pem_len]).map_err(|_| Refusal::Output)?;
        write!(out, "key {outcome}\n{pem}ok csr\n").map_err(|_| Refusal::Output)
    }

    /// The end of a `ca` block.
    fn take_ca<KE, FE, W: Write>(
        &mut self,
        block: PemBlock,
        out: &mut W,
    ) -> Result<(), Refusal<KE, FE>> {
        let len = decode_pem(block, &self.scratch, &mut self.ca, Expecting::Ca)?;
        let ca =
            Certificate::parse(&self.ca[..len]).map_err(|e| Refusal::Cert(Expecting::Ca, e))?;
        if !ca.is_ca() {
            return Err(Refusal::NotACa);
        }
        self.ca_key = ca.public_key;
        self.ca_len = len;
        writeln!(out, "ok ca {}", Sha256Hex::of(&self.ca[..len])).map_err(|_| Refusal::Output)
    }

    /// The end of a `cert` block: the checks, then the record into the flash, read back.
    fn store_cert<K: DeviceKey, F: IdentityFlash, W: Write>(
        &mut self,
        block: PemBlock,
        key: &mut K,
        flash: &mut F,
        out: &mut W,
    ) -> Result<(), Refusal<K::Error, F::Error>> {
        if self.ca_len == 0 {
            return Err(Refusal::NoCaYet);
        }
        let len = decode_pem(block, &self.scratch, &mut self.cert, Expecting::Cert)?;
        let cert_der = &self.cert[..len];
        let cert = Certificate::parse(cert_der).map_err(|e| Refusal::Cert(Expecting::Cert, e))?;
        if cert.is_ca() {
            return Err(Refusal::CertIsACa);
        }
        let chip_key = key
            .existing_key()
            .map_err(Refusal::Element)?
            .ok_or(Refusal::NoKeyYet)?;
        if cert.public_key != chip_key {
            return Err(Refusal::OtherKey);
        }
        // The chip's Verify, as the TLS client checks the broker: the pending CA must have signed it.
        if !cert
            .signed_by(key, &self.ca_key)
            .map_err(Refusal::Element)?
        {
            return Err(Refusal::OtherCa);
        }
        let record = IdentityRecord {
            cert_der,
            ca_cert_der: &self.ca[..self.ca_len],
        };
        // The image of an erased sector's start, with the record in it.
        self.scratch.fill(0xFF);
        let record_len = record.encode(&mut self.scratch).map_err(Refusal::Record)?;
        flash
            .write(&self.scratch[..record_len])
            .map_err(Refusal::Flash)?;
        self.scratch.fill(0);
        let read_back = &mut self.scratch[..MAX_RECORD_LEN];
        flash.read(read_back).map_err(Refusal::Flash)?;
        if IdentityRecord::decode(read_back) != Ok(record) {
            return Err(Refusal::ReadBack);
        }
        writeln!(out, "ok stored {}", Sha256Hex::of(cert_der)).map_err(|_| Refusal::Output)
    }

    /// `show`.
    fn show<KE, F: IdentityFlash, W: Write>(
        &mut self,
        flash: &mut F,
        out: &mut W,
    ) -> Result<(), Refusal<KE, F::Error>> {
        let sector = &mut self.scratch[..MAX_RECORD_LEN];
        flash.read(sector).map_err(Refusal::Flash)?;
        match IdentityRecord::decode(sector) {
            Ok(record) => writeln!(
                out,
                "identity: cert {} ca {}",
                Sha256Hex::of(record.cert_der),
                Sha256Hex::of(record.ca_cert_der)
            ),
            Err(why) => writeln!(out, "identity: none ({why})"),
        }
        .map_err(|_| Refusal::Output)
    }
}

/// The DER of a finished `CERTIFICATE` block in `text`, into `der`; its length.
fn decode_pem<KE, FE>(
    block: PemBlock,
    text: &[u8],
    der: &mut [u8],
    expecting: Expecting,
) -> Result<usize, Refusal<KE, FE>> {
    let text = block
        .text(text)
        .ok_or(Refusal::Pem(expecting, PemProblem::TooLong))?;
    let room = der.len();
    match pem_rfc7468::decode(text, der) {
        Ok((CERTIFICATE_LABEL, decoded)) => Ok(decoded.len()),
        Ok(_) => Err(Refusal::Pem(expecting, PemProblem::NotACertificate)),
        // The decoder checks the room before it decodes: a block whose base64 is longer than the buffer.
        Err(pem_rfc7468::Error::Length) if room < text.len() * 3 / 4 => {
            Err(Refusal::Pem(expecting, PemProblem::DerTooLong(room)))
        }
        Err(e) => Err(Refusal::Pem(expecting, PemProblem::Decode(e))),
    }
}

/// Up to 24 bytes of what was typed, for an error line (unprintable bytes shown as `?`).
#[derive(Debug, Clone, Copy)]
struct Shown {
    bytes: [u8; 24],
    len: usize,
    cut: bool,
}

impl Shown {
    fn new(text: &[u8]) -> Self {
        let mut bytes = [0u8; 24];
        let len = text.len().min(bytes.len());
        for (to, &from) in bytes.iter_mut().zip(text) {
            *to = if from.is_ascii_graphic() { from } else { b'?' };
        }
        Shown {
            bytes,
            len,
            cut: text.len() > len,
        }
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only ASCII graphic bytes were kept.
        let text = core::str::from_utf8(&self.bytes[..self.len]).map_err(|_| fmt::Error)?;
        write!(f, "\"{text}{}\"", if self.cut { "…" } else { "" })
    }
}

/// What is wrong with a PEM block.
#[derive(Debug)]
enum PemProblem {
    Framing(&'static str),
    TooLong,
    NotACertificate,
    DerTooLong(usize),
    Decode(pem_rfc7468::Error),
}

impl fmt::Display for PemProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemProblem::Framing(why) => f.write_str(why),
            PemProblem::TooLong => write!(f, "PEM block longer than {MAX_CERT_PEM_LEN} bytes"),
            PemProblem::NotACertificate => f.write_str("the PEM block is not a CERTIFICATE"),
            PemProblem::DerTooLong(n) => write!(f, "certificate larger than {n} bytes"),
            PemProblem::Decode(e) => write!(f, "not a PEM certificate ({e})"),
        }
    }
}

/// Why a line was refused: printed as the one `error: ` line.
#[derive(Debug)]
enum Refusal<KE, FE> {
    /// Writing to the console failed: nothing can be printed.
    Output,
    TooLong,
    UnknownCommand(Shown),
    CsrUsage,
    BadName(Shown),
    Element(KE),
    Csr(CsrError<KE>),
    Pem(Expecting, PemProblem),
    Cert(Expecting, CertError),
    NotACa,
    NoCaYet,
    CertIsACa,
    NoKeyYet,
    OtherKey,
    OtherCa,
    Record(RecordError),
    Flash(FE),
    ReadBack,
}

impl<KE: fmt::Display, FE: fmt::Display> fmt::Display for Refusal<KE, FE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Output => f.write_str("console output failed"),
            Refusal::TooLong => write!(f, "line longer than {MAX_LINE_LEN} bytes"),
            Refusal::UnknownCommand(c) => write!(f, "unknown command {c}: {PROMPT}"),
            Refusal::CsrUsage => f.write_str("usage: csr NAME [new-key]"),
            Refusal::BadName(n) => write!(
                f,
                "{n} is not a sensor name: 1-23 ASCII letters and digits (its MQTT client id)"
            ),
            Refusal::Element(e) => write!(f, "secure element: {e}"),
            Refusal::Csr(e) => write!(f, "{e}"),
            Refusal::Pem(what, problem) => write!(f, "{}: {problem}", what.command()),
            Refusal::Cert(what, e) => write!(f, "{}: {e}", what.command()),
            Refusal::NotACa => f.write_str("ca: not a CA certificate (no basicConstraints cA)"),
            Refusal::NoCaYet => {
                f.write_str("cert: no CA yet: send ca and the site CA certificate first")
            }
            Refusal::CertIsACa => f.write_str("cert: a CA certificate, not this node's"),
            Refusal::NoKeyYet => {
                f.write_str("cert: the secure element holds no key yet: send csr first")
            }
            Refusal::OtherKey => f.write_str("cert: certificate for another key than this node's"),
            Refusal::OtherCa => {
                f.write_str("cert: certificate from another CA than the pending one")
            }
            Refusal::Record(e) => write!(f, "cert: {e}"),
            Refusal::Flash(e) => write!(f, "flash: {e}"),
            Refusal::ReadBack => {
                f.write_str("flash: the identity read back differs from what was written")
            }
        }
    }
}

//! The node's identity (its certificate and the site CA) in a flash sector of its own, read at boot with
//! `spi_flash_read` and decoded with `tmc_node_tls::identity::IdentityRecord` (format there).
//!
//! The sector is [`IDENTITY_SECTOR_ADDR`], registered in the partition table (`sdk::app`) as a customer
//! partition, just below the SDK's RF calibration sector; `make flash-firmware ... ERASE=1` leaves it
//! erased, which reads as "not provisioned".
use core::fmt;

use tmc_node_tls::identity::{IdentityRecord, RecordError, MAX_CA_CERT_LEN};
use tmc_node_tls::tls::MAX_CLIENT_CERT_LEN;
use tmc_node_tls::CertError;

use super::ffi;

/// Flash address of the identity sector (4 MB flash, map 4): 0x3FA000, below RF calibration (0x3FB000).
pub const IDENTITY_SECTOR_ADDR: u32 = 0x3F_A000;
/// The longest record: header 12 + certificate + CA certificate + SHA-256 32, in whole 32-bit words
/// (`spi_flash_read` moves words).
const RECORD_WORDS: usize = (12 + MAX_CLIENT_CERT_LEN + MAX_CA_CERT_LEN + 32).div_ceil(4);

/// What the TLS client needs from the record, copied out of the (stack) read buffer.
pub struct Identity {
    cert: [u8; MAX_CLIENT_CERT_LEN],
    cert_len: usize,
    /// The site CA's P-256 key (X‖Y), pinned.
    pub ca_public_key: [u8; 64],
}

impl Identity {
    /// This node's certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert[..self.cert_len]
    }
}

/// Why there is no usable identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityError {
    /// `spi_flash_read`/`_write`/`_erase_sector` failed (`SpiFlashOpResult`: 1 error, 2 timeout).
    Flash(u32),
    Record(RecordError),
    /// The stored CA certificate has no usable P-256 key.
    Ca(CertError),
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::Flash(rc) => write!(f, "flash access failed ({rc})"),
            IdentityError::Record(RecordError::Empty) => {
                write!(f, "sector {IDENTITY_SECTOR_ADDR:#x} is erased")
            }
            IdentityError::Record(e) => write!(f, "sector {IDENTITY_SECTOR_ADDR:#x}: {e}"),
            IdentityError::Ca(e) => write!(f, "site CA certificate: {e}"),
        }
    }
}

fn flash_result(rc: u32) -> Result<(), IdentityError> {
    if rc == ffi::SPI_FLASH_RESULT_OK {
        Ok(())
    } else {
        Err(IdentityError::Flash(rc))
    }
}

/// The words as the bytes they hold in flash (little-endian CPU: memory order is flash order).
fn as_bytes(words: &[u32]) -> &[u8] {
    // SAFETY: u32 has no padding and u8 alignment 1; same allocation, 4x the length.
    unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 4) }
}

/// Reads and checks the stored identity. Uses ~2.7 KB of stack for the read buffer (the node's stack
/// has it: this runs before the handshake, which needs more).
pub fn load() -> Result<Identity, IdentityError> {
    let words = read_words()?;
    let record = IdentityRecord::decode(as_bytes(&words)).map_err(IdentityError::Record)?;
    let ca_public_key =
        tmc_node_tls::cert::ca_public_key(record.ca_cert_der).map_err(IdentityError::Ca)?;
    let mut identity = Identity {
        cert: [0; MAX_CLIENT_CERT_LEN],
        cert_len: record.cert_der.len(),
        ca_public_key,
    };
    // decode() refused longer certificates (CertTooLarge).
    identity.cert[..record.cert_der.len()].copy_from_slice(record.cert_der);
    Ok(identity)
}

/// The sector's first `buf.len()` bytes (at most a whole record), as the provisioning console reads back.
pub fn read_raw(buf: &mut [u8]) -> Result<(), IdentityError> {
    if buf.len() > RECORD_WORDS * 4 {
        return Err(IdentityError::Record(
            tmc_node_tls::identity::RecordError::BufferTooSmall,
        ));
    }
    let words = read_words()?;
    buf.copy_from_slice(&as_bytes(&words)[..buf.len()]);
    Ok(())
}

/// The longest record's worth of the sector.
fn read_words() -> Result<[u32; RECORD_WORDS], IdentityError> {
    let mut words = [0u32; RECORD_WORDS];
    // SAFETY: aligned word buffer of the given size, in DRAM; task context.
    flash_result(unsafe {
        ffi::spi_flash_read(
            IDENTITY_SECTOR_ADDR,
            words.as_mut_ptr(),
            (RECORD_WORDS * 4) as u32,
        )
    })?;
    Ok(words)
}

/// Erases the sector and programs `record` (an encoded [`IdentityRecord`]) at its start. The provisioning
/// console (`sdk::provisioning`) encoded it and reads it back and decodes it itself, so neither is repeated
/// here.
pub fn write_record(record: &[u8]) -> Result<(), IdentityError> {
    if record.len() > RECORD_WORDS * 4 {
        return Err(IdentityError::Record(
            tmc_node_tls::identity::RecordError::BufferTooSmall,
        ));
    }
    let mut words = [u32::MAX; RECORD_WORDS];
    let len = record.len();
    for (word, chunk) in words.iter_mut().zip(record.chunks(4)) {
        let mut b = [0xFF; 4];
        b[..chunk.len()].copy_from_slice(chunk);
        *word = u32::from_ne_bytes(b);
    }
    let used = len.div_ceil(4);
    // SAFETY: SDK flash calls from task context on our own sector; aligned word buffer in DRAM.
    unsafe {
        flash_result(ffi::spi_flash_erase_sector(
            (IDENTITY_SECTOR_ADDR / ffi::SPI_FLASH_SEC_SIZE) as u16,
        ))?;
        flash_result(ffi::spi_flash_write(
            IDENTITY_SECTOR_ADDR,
            words.as_mut_ptr(),
            (used * 4) as u32,
        ))?;
    }
    Ok(())
}

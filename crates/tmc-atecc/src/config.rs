//! What the chip says about itself: revision (Info), config zone, serial number, lock state.

use core::fmt;

/// Size of the ATECC508A/608A config zone: four 32-byte blocks.
pub const CONFIG_ZONE_LEN: usize = 128;
/// Size of one block of a 32-byte read.
pub const BLOCK_LEN: usize = 32;
/// Config byte of LockValue (data and OTP zones): 0x55 unlocked, 0x00 locked.
pub const LOCK_VALUE_OFFSET: usize = 86;
/// Config byte of LockConfig (config zone): 0x55 unlocked, 0x00 locked.
pub const LOCK_CONFIG_OFFSET: usize = 87;
/// Value of a lock byte of an unlocked zone.
pub const UNLOCKED: u8 = 0x55;

/// The 4-byte answer of Info in revision mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Revision(pub [u8; 4]);

/// Which chip a [`Revision`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    /// ATECC508A (revision `00 00 50 xx`).
    Atecc508a,
    /// ATECC608A/B (revision `00 00 60 xx`; the last byte is the silicon revision, 0x02 on the 608A).
    Atecc608 {
        /// Silicon revision byte.
        silicon: u8,
    },
    /// Another CryptoAuthentication device or an unknown revision.
    Unknown,
}

impl Revision {
    /// The device family: byte 2 is 0x50 on the 508A and 0x60 on the 608 (cryptoauthlib
    /// `calib_get_devicetype`).
    pub const fn device(&self) -> Device {
        match self.0[2] {
            0x50 => Device::Atecc508a,
            0x60 => Device::Atecc608 { silicon: self.0[3] },
            _ => Device::Unknown,
        }
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a:02x} {b:02x} {c:02x} {d:02x} ({})", self.device())
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Atecc508a => f.write_str("ATECC508A"),
            Self::Atecc608 { silicon } => write!(f, "ATECC608 (silicon revision 0x{silicon:02x})"),
            Self::Unknown => f.write_str("unknown device"),
        }
    }
}

/// Lock state from config bytes 86 (LockValue) and 87 (LockConfig). Any value other than 0x55 counts as
/// locked, as cryptoauthlib's `calib_is_locked` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LockStatus {
    /// The config zone is locked (byte 87 ≠ 0x55).
    pub config_locked: bool,
    /// The data and OTP zones are locked (byte 86 ≠ 0x55).
    pub data_locked: bool,
}

impl LockStatus {
    /// From the LockValue (86) and LockConfig (87) bytes.
    pub const fn from_bytes(lock_value: u8, lock_config: u8) -> Self {
        Self {
            config_locked: lock_config != UNLOCKED,
            data_locked: lock_value != UNLOCKED,
        }
    }
}

impl fmt::Display for LockStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = |locked: bool| if locked { "locked" } else { "unlocked" };
        write!(
            f,
            "config zone {}, data zone {}",
            word(self.config_locked),
            word(self.data_locked)
        )
    }
}

/// The whole 128-byte config zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConfigZone(pub [u8; CONFIG_ZONE_LEN]);

impl ConfigZone {
    /// The 9-byte serial number: config bytes 0..=3 then 8..=12.
    pub fn serial_number(&self) -> [u8; 9] {
        serial_from_block0(&self.0)
    }

    /// RevNum, config bytes 4..=7.
    pub fn revision(&self) -> [u8; 4] {
        [self.0[4], self.0[5], self.0[6], self.0[7]]
    }

    /// Lock state from bytes 86 and 87.
    pub fn lock_status(&self) -> LockStatus {
        LockStatus::from_bytes(self.0[LOCK_VALUE_OFFSET], self.0[LOCK_CONFIG_OFFSET])
    }

    /// Config byte 16: the I²C address in its 8-bit form (7-bit address << 1).
    pub fn i2c_address_byte(&self) -> u8 {
        self.0[16]
    }
}

/// Serial number bytes 0..=3 and 8..=12 of config block 0 (or of the whole zone).
pub(crate) fn serial_from_block0(block0: &[u8]) -> [u8; 9] {
    let mut serial = [0; 9];
    serial[..4].copy_from_slice(&block0[0..4]);
    serial[4..].copy_from_slice(&block0[8..13]);
    serial
}

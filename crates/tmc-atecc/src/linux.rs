//! Raspberry Pi backend: the chip on `/dev/i2c-N` through the kernel's i2c-dev driver (linux-embedded-hal),
//! never memory-mapped registers. The bus must run at 100 kHz or slower for the wake pulse: the Pi's
//! default `dtparam=i2c_arm=on` is 100 kHz (`i2c_arm_baudrate`).
//!
//! The kernel's own `atmel-ecc` driver must not be bound to the chip (no `dtoverlay=atecc…`): i2c-dev then
//! answers EBUSY for its address. linux-embedded-hal reopens the device file whenever the address changes,
//! so each wake (general call 0x00, then the chip's address) costs two `open`s.

use std::borrow::ToOwned;
use std::fmt;
use std::path::{Path, PathBuf};

use linux_embedded_hal::i2cdev::linux::LinuxI2CError;
use linux_embedded_hal::{Delay, I2cdev};

use crate::driver::Atecc;
use crate::protocol::DEFAULT_ADDRESS;

/// The I²C bus on the Raspberry Pi's header (GPIO2/GPIO3).
pub const DEFAULT_BUS: &str = "/dev/i2c-1";

/// The driver on real hardware.
pub type LinuxAtecc = Atecc<I2cdev, Delay>;

/// The I²C device could not be opened.
#[derive(Debug)]
pub struct OpenError {
    /// Device path.
    pub device: PathBuf,
    /// i2cdev's error.
    pub source: LinuxI2CError,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot open I2C bus {}: {} (is I2C enabled with dtparam=i2c_arm=on, and may this user open it?)",
            self.device.display(),
            self.source
        )
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The chip at `address` on `device` (e.g. `/dev/i2c-1`, 0x60). Opening touches no chip: the first command
/// wakes it.
pub fn open(device: impl AsRef<Path>, address: u8) -> Result<LinuxAtecc, OpenError> {
    let device = device.as_ref();
    let i2c = I2cdev::new(device).map_err(|source| OpenError {
        device: device.to_owned(),
        source,
    })?;
    Ok(Atecc::with_address(i2c, Delay, address))
}

/// The chip at the factory address 0x60 on `/dev/i2c-1`.
pub fn open_default() -> Result<LinuxAtecc, OpenError> {
    open(DEFAULT_BUS, DEFAULT_ADDRESS)
}

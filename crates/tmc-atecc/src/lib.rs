//! Driver for the Microchip ATECC508A / ATECC608A secure element over I²C, `#![no_std]`, generic over
//! embedded-hal 1.0 ([`embedded_hal::i2c::I2c`] and [`embedded_hal::delay::DelayNs`]): the same code runs on
//! the ESP8266 sensor (bit-banged I²C), on the Raspberry Pi (kernel i2c-dev, feature `linux`) and on the
//! simulated chip in tests (feature `sim`). No allocation, no atomics, no floating point.
//!
//! - [`crc`]: the packets' CRC-16.
//! - [`protocol`]: word addresses, opcodes, status codes, command frames, execution times.
//! - [`Atecc`]: wake/idle/sleep and the commands Info, Random, Nonce (pass-through), GenKey (create a key,
//!   public key), Sign (external digest), Verify (external, P-256) and Read (config zone, data slots), with
//!   lock status and serial number on top.
//! - [`AteccError`]: bus errors, protocol errors and the chip's status codes.
//! - `sim` (feature `sim`): a simulated chip behind the same traits, in virtual time, with real P-256 keys
//!   (p256, sha2; alloc only). `sim::file` (feature `sim-file`, std): a simulated chip kept in a 0600 file.
//! - `linux` (feature `linux`): `/dev/i2c-N` through linux-embedded-hal.
//!
//! ```no_run
//! # fn demo<I: embedded_hal::i2c::I2c, D: embedded_hal::delay::DelayNs>(i2c: I, delay: D)
//! # -> Result<(), tmc_atecc::AteccError<I::Error>> {
//! let mut chip = tmc_atecc::Atecc::new(i2c, delay); // address 0x60
//! let revision = chip.info()?;
//! let public_key = chip.public_key(0)?;
//! let signature = chip.sign_digest(0, &[0u8; 32])?;
//! # Ok(()) }
//! ```

#![no_std]

// The simulator needs only `alloc` (Rc, RefCell, Vec, VecDeque), so it also builds for bare-metal targets
// with a global allocator (the ESP8266 on-target checks); the Linux backend and `sim::file` need std.
#[cfg(feature = "sim")]
extern crate alloc;
#[cfg(any(feature = "linux", feature = "sim-file"))]
extern crate std;

pub mod config;
pub mod crc;
mod driver;
mod error;
#[cfg(feature = "linux")]
pub mod linux;
pub mod protocol;
#[cfg(feature = "sim")]
pub mod sim;

pub use config::{ConfigZone, Device, LockStatus, Revision};
pub use crc::crc16;
pub use driver::{Atecc, Error};
pub use error::AteccError;
pub use protocol::{Command, DEFAULT_ADDRESS, WAKE_RESPONSE};

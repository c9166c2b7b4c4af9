//! The [`SecureElement`] of a real or simulated ATECC508A/608A: Sign with the device key's slot, Verify
//! (external) for any public key, through the [`tmc_atecc::Atecc`] driver on any embedded-hal I²C bus (the
//! ESP8266's bit-banged one, the Pi's `/dev/i2c-N`, the simulator's).

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;
use tmc_atecc::{Atecc, AteccError};

use crate::SecureElement;

/// The chip behind `chip`, with the device key in `slot`.
#[derive(Debug)]
pub struct AteccElement<'a, I2C, D> {
    /// The driver.
    pub chip: &'a mut Atecc<I2C, D>,
    /// The device key's slot.
    pub slot: u8,
}

impl<I2C: I2c, D: DelayNs> SecureElement for AteccElement<'_, I2C, D> {
    type Error = AteccError<I2C::Error>;

    fn public_key(&mut self) -> Result<[u8; 64], Self::Error> {
        self.chip.public_key(self.slot)
    }

    fn sign_digest(&mut self, digest: &[u8; 32]) -> Result<[u8; 64], Self::Error> {
        self.chip.sign_digest(self.slot, digest)
    }

    fn verify_digest(
        &mut self,
        public_key: &[u8; 64],
        digest: &[u8; 32],
        signature: &[u8; 64],
    ) -> Result<bool, Self::Error> {
        self.chip.verify_external(public_key, digest, signature)
    }
}

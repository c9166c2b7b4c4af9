//! [`DeviceKey`] for the ATECC508A/608A: GenKey in the device slot.

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;
use tmc_atecc::AteccError;
use tmc_node_tls::atecc::AteccElement;

use crate::DeviceKey;

impl<I2C: I2c, D: DelayNs> DeviceKey for AteccElement<'_, I2C, D> {
    fn existing_key(&mut self) -> Result<Option<[u8; 64]>, Self::Error> {
        // As tmc-enroll decides: GenKey public answers an ECC fault for a private-key slot that holds no
        // valid key yet (a never-generated slot holds zeros, no P-256 scalar).
        match self.chip.public_key(self.slot) {
            Ok(key) => Ok(Some(key)),
            Err(AteccError::EccFault) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn generate_key(&mut self) -> Result<[u8; 64], Self::Error> {
        self.chip.generate_key(self.slot)
    }
}

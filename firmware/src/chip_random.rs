//! The ATECC's Random command as the TLS client's randomness (client random, the ECDHE secret).

use core::cell::RefCell;

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;
use tmc_atecc::Atecc;

/// Draws 32 bytes per Random command from the chip behind the `RefCell` (shared with nothing that runs
/// at the same time: the TLS client asks for randomness only between its other chip calls). A failed
/// command is an error from `try_fill_bytes`, which is what the TLS client calls: it then ends the
/// handshake before anything is sent (`TlsTransportError::Random`). `fill_bytes` (which cannot fail)
/// leaves the rest of the buffer as it was.
pub struct ChipRandom<'a, I: I2c, D: DelayNs>(pub &'a RefCell<Atecc<I, D>>);

impl<I: I2c, D: DelayNs> rand_core::RngCore for ChipRandom<'_, I, D> {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let _ = self.try_fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        for chunk in dest.chunks_mut(32) {
            let random = self
                .0
                .borrow_mut()
                .random()
                .map_err(|_| rand_core::Error::from(core::num::NonZeroU32::MIN))?;
            chunk.copy_from_slice(&random[..chunk.len()]);
        }
        Ok(())
    }
}

impl<I: I2c, D: DelayNs> rand_core::CryptoRng for ChipRandom<'_, I, D> {}

//! ADC (TOUT pin) sensor.
//!
//! TODO(hardware): the register-level TOUT read is NOT implemented. The NONOS
//! SDK's `system_adc_read()` drives the SAR ADC through undocumented
//! `rom_i2c_writeReg` (i2c bus 0x6C) + SAR registers around 0x60000D00; none
//! of that could be verified against an Espressif document in time. Until it
//! is, [`ToutAdc`] returns the deterministic waveform
//! `tmc_sensor_core::adc(id, seq)` (the same values the simulator and the
//! relay's tests use), so the bench shows a plausible, checkable series.
use core::convert::Infallible;

use tmc_sensor_core::node::Sensor;

/// The TOUT ADC (currently the deterministic stand-in, see the module doc).
pub struct ToutAdc<'a> {
    id: &'a str,
    seq: u64,
}

impl<'a> ToutAdc<'a> {
    pub fn new(id: &'a str) -> Self {
        ToutAdc { id, seq: 0 }
    }
}

impl Sensor for ToutAdc<'_> {
    type Error = Infallible;
    fn read(&mut self) -> Result<u16, Infallible> {
        // TODO(hardware): real SAR ADC read of TOUT (10 bits, 0..1023).
        self.seq += 1;
        Ok(tmc_sensor_core::adc(self.id, self.seq))
    }
}

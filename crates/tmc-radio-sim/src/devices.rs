//! The embedded-hal (and tmc-radio) faces of a simulated chip: SPI device, RESET pin, DIO0 line, delay, clock,
//! and a probe that reads the chip behind the driver's back.

use core::time::Duration;
use std::sync::Arc;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType as PinErrorType, OutputPin};
use embedded_hal::spi::{ErrorKind, ErrorType as SpiErrorType, Operation, SpiDevice};
use thiserror::Error;
use tmc_radio::hal::{Clock, Dio0};

use crate::world::Shared;
use crate::Participant;

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// An injected SPI failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("simulated SPI bus fault on chip {chip}")]
pub struct SimSpiError {
    /// Chip index in the channel.
    pub chip: usize,
}

impl embedded_hal::spi::Error for SimSpiError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// SPI device of one simulated chip.
pub struct SimSpi {
    pub(crate) shared: Arc<Shared>,
    pub(crate) chip: usize,
    pub(crate) _participant: Participant,
}

impl SpiErrorType for SimSpi {
    type Error = SimSpiError;
}

impl SpiDevice for SimSpi {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), SimSpiError> {
        let mut world = self.shared.lock();
        let ok = world.spi_transaction(self.chip, operations);
        drop(world);
        // A write may have started or cut a transmission, or changed a DIO0 level.
        self.shared.touched();
        if ok {
            Ok(())
        } else {
            Err(SimSpiError { chip: self.chip })
        }
    }
}

/// NRESET of one simulated chip: low holds the chip in reset, the rising edge restores the register defaults.
pub struct SimResetPin {
    pub(crate) shared: Arc<Shared>,
    pub(crate) chip: usize,
}

impl PinErrorType for SimResetPin {
    type Error = core::convert::Infallible;
}

impl OutputPin for SimResetPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        let mut world = self.shared.lock();
        world.abort_transmission(self.chip);
        world.chips[self.chip].in_reset = true;
        drop(world);
        self.shared.touched();
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        let mut world = self.shared.lock();
        let chip = &mut world.chips[self.chip];
        if chip.in_reset {
            chip.in_reset = false;
            chip.reset_registers();
        }
        Ok(())
    }
}

/// DIO0 of one simulated chip; waiting on it lets virtual time run (in real time: sleeps until DIO0 is high or
/// the timeout has passed on the wall clock).
pub struct SimDio0 {
    pub(crate) shared: Arc<Shared>,
    pub(crate) chip: usize,
    pub(crate) participant: Participant,
}

impl Dio0 for SimDio0 {
    type Error = core::convert::Infallible;

    fn wait_high(&mut self, timeout: Duration) -> Result<bool, Self::Error> {
        let deadline = self.shared.lock().now.saturating_add(ns(timeout));
        Ok(self
            .shared
            .wait(self.participant.pid(), deadline, Some(self.chip)))
    }
}

/// A delay in virtual time for one participant.
#[derive(Clone)]
pub struct SimDelay {
    pub(crate) shared: Arc<Shared>,
    pub(crate) participant: Participant,
}

impl DelayNs for SimDelay {
    fn delay_ns(&mut self, ns: u32) {
        let deadline = self.shared.lock().now.saturating_add(u64::from(ns));
        self.shared.wait(self.participant.pid(), deadline, None);
    }
}

/// Virtual time.
#[derive(Clone)]
pub struct SimClock {
    pub(crate) shared: Arc<Shared>,
}

impl Clock for SimClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.shared.lock().now)
    }
}

/// Looks into and tampers with one chip without going through SPI.
#[derive(Clone)]
pub struct SimProbe {
    pub(crate) shared: Arc<Shared>,
    pub(crate) chip: usize,
}

impl SimProbe {
    /// Chip index in the channel.
    pub fn chip(&self) -> usize {
        self.chip
    }

    /// Current value of a register (no side effects, unlike an SPI read of RegFifo).
    pub fn register(&self, address: u8) -> u8 {
        self.shared.lock().chips[self.chip].register(address)
    }

    /// Sets a register directly (e.g. a different sync word, or an unexpected RegVersion).
    pub fn set_register(&self, address: u8, value: u8) {
        self.shared.lock().chips[self.chip].set_register(address, value);
    }

    /// A copy of the FIFO.
    pub fn fifo(&self) -> [u8; 256] {
        *self.shared.lock().chips[self.chip].fifo()
    }

    /// Unplugs (false) or plugs (true) the chip: an absent chip reads 0x00 on every register.
    pub fn set_present(&self, present: bool) {
        self.shared.lock().chips[self.chip].present = present;
    }

    /// Makes every SPI transaction fail (true) or work again (false).
    pub fn set_spi_fault(&self, fault: bool) {
        self.shared.lock().chips[self.chip].spi_fault = fault;
    }
}

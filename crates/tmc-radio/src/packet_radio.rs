//! The packet interface the datagram layers are written against, so they run on the real driver, on the
//! simulator, or on a test double alike.

use core::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_hal::spi::SpiDevice;

use crate::hal::Dio0;
use crate::sx1276::{RadioError, Reception, Sx1276};

/// A half-duplex packet radio.
pub trait PacketRadio {
    /// Sends one packet, blocking until it is on air.
    fn transmit(&mut self, payload: &[u8]) -> Result<(), RadioError>;
    /// Listens for up to `timeout`; returns after the first packet, good or bad.
    fn receive(&mut self, timeout: Duration) -> Result<Reception, RadioError>;
    /// Time on air of a packet of `len` bytes.
    fn time_on_air(&self, len: usize) -> Duration;
}

impl<SPI, RESET, DIO0, DELAY> PacketRadio for Sx1276<SPI, RESET, DIO0, DELAY>
where
    SPI: SpiDevice,
    RESET: OutputPin,
    DIO0: Dio0,
    DELAY: DelayNs,
{
    fn transmit(&mut self, payload: &[u8]) -> Result<(), RadioError> {
        Sx1276::transmit(self, payload)
    }

    fn receive(&mut self, timeout: Duration) -> Result<Reception, RadioError> {
        Sx1276::receive(self, timeout)
    }

    fn time_on_air(&self, len: usize) -> Duration {
        Sx1276::time_on_air(self, len)
    }
}

impl<T: PacketRadio + ?Sized> PacketRadio for &mut T {
    fn transmit(&mut self, payload: &[u8]) -> Result<(), RadioError> {
        (**self).transmit(payload)
    }

    fn receive(&mut self, timeout: Duration) -> Result<Reception, RadioError> {
        (**self).receive(timeout)
    }

    fn time_on_air(&self, len: usize) -> Duration {
        (**self).time_on_air(len)
    }
}

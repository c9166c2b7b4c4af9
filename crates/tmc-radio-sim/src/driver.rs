//! The real `tmc_radio::Sx1276` driver on a simulated chip, as the tests and benchmarks of the layers above use
//! it.

use tmc_radio::{
    Datagram, DutyCycleLimiter, RadioConfig, RadioError, ReliableConfig, ReliableDatagram,
};

use crate::{SimChip, SimClock, SimDelay, SimDio0, SimResetPin, SimSpi};

/// The driver on a simulated chip.
pub type SimSx1276 = tmc_radio::Sx1276<SimSpi, SimResetPin, SimDio0, SimDelay>;

/// The real driver on a simulated chip, framed as RadioHead reliable datagrams (within `limiter`, if any): the
/// radio of the in-process simulator's tests and benchmarks.
pub fn sim_link(
    chip: SimChip,
    config: RadioConfig,
    address: u8,
    seed: u64,
    limiter: Option<DutyCycleLimiter>,
) -> Result<ReliableDatagram<SimSx1276, SimClock>, RadioError> {
    let radio = tmc_radio::Sx1276::new(chip.spi, chip.reset, chip.dio0, chip.delay, config)?;
    let mut datagram = Datagram::new(radio, chip.clock, address);
    if let Some(limiter) = limiter {
        datagram = datagram.with_duty_cycle(limiter);
    }
    Ok(ReliableDatagram::new(
        datagram,
        ReliableConfig::for_modem(&config.modem),
        seed,
    ))
}

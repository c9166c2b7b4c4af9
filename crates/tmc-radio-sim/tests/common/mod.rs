//! Builders shared by the simulator tests.
#![allow(dead_code)]

use std::thread;
use std::time::{Duration, Instant};

use tmc_radio::{Datagram, RadioConfig, RadioError, Sx1276};
use tmc_radio_sim::air::{join, AirChip, AirLink, AirSpec};
use tmc_radio_sim::{
    Participant, SimChannel, SimChip, SimClock, SimDelay, SimDio0, SimResetPin, SimSpi,
};

pub const EU868: u32 = 868_000_000;

pub type SimRadio = Sx1276<SimSpi, SimResetPin, SimDio0, SimDelay>;

/// The real driver on a simulated chip.
pub fn driver(chip: SimChip, config: RadioConfig) -> SimRadio {
    Sx1276::new(chip.spi, chip.reset, chip.dio0, chip.delay, config).unwrap()
}

pub fn radiohead_default() -> RadioConfig {
    RadioConfig::radiohead_default(EU868)
}

/// The error the driver gives when it initialises `chip` (tests of absent or broken chips).
pub fn init_error(chip: SimChip) -> RadioError {
    match Sx1276::new(
        chip.spi,
        chip.reset,
        chip.dio0,
        chip.delay,
        radiohead_default(),
    ) {
        Ok(_) => panic!("the driver initialised a chip that should have failed"),
        Err(e) => e,
    }
}

/// A RadioHead-default datagram endpoint with `address`, on a new chip driven by `participant`.
pub fn datagram(
    channel: &SimChannel,
    participant: &Participant,
    address: u8,
) -> Datagram<SimRadio, SimClock> {
    Datagram::new(
        driver(channel.add_chip_for(participant), radiohead_default()),
        channel.clock(),
        address,
    )
}

/// A node on the air in `spec`'s directory: the real driver on the joined chip, its clock, and the link (kept
/// alive by the caller).
pub fn air_node(spec: &AirSpec, name: &str, config: RadioConfig) -> (SimRadio, SimClock, AirLink) {
    let AirChip { chip, link } = join(spec, name).unwrap();
    let clock = chip.clock.clone();
    (driver(chip, config), clock, link)
}

/// Waits (polling) for something another thread or process does; fails after a generous deadline.
pub fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// A recognisable payload of `len` bytes, different for each `i`.
pub fn message(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

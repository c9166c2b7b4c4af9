//! Builders shared by the simulator tests.
#![allow(dead_code)]

use std::thread;
use std::time::{Duration, Instant};

use tmc_radio::{Datagram, RadioConfig, RadioError, ReliableConfig, ReliableDatagram, Sx1276};
use tmc_radio_sim::air::{join, AirChip, AirLink, AirSpec};
use tmc_radio_sim::{Participant, SimChannel, SimChip, SimClock};

pub const EU868: u32 = 868_000_000;

pub type SimRadio = tmc_radio_sim::SimSx1276;

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

/// One end of a reliable-datagram exchange: the driver, its clock and its RadioHead address.
pub type Endpoint = (SimRadio, SimClock, u8);

/// RadioHead reliable datagrams both ways: three frames (1, 40 and 200 bytes) from `relay` to `gateway`, each
/// acknowledged, then a reply back. Panics unless every frame arrives in order and the relay saw each delivered;
/// returns how many frames went to the gateway.
pub fn reliable_exchange(gateway: Endpoint, relay: Endpoint) -> usize {
    let (gateway_radio, gateway_clock, gateway_address) = gateway;
    let (relay_radio, relay_clock, relay_address) = relay;
    let messages: Vec<Vec<u8>> = [1, 40, 200]
        .iter()
        .enumerate()
        .map(|(i, len)| message(i, *len))
        .collect();
    let reply = b"reply from the gateway".to_vec();

    let datagram = Datagram::new(gateway_radio, gateway_clock, gateway_address);
    let mut gateway = ReliableDatagram::new(datagram, ReliableConfig::default(), 1);
    // Listening before the relay sends, so that no first attempt is wasted.
    gateway.datagram_mut().radio_mut().start_receive().unwrap();
    let gateway_thread = {
        let (count, reply) = (messages.len(), reply.clone());
        thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < count {
                if let Some(frame) = gateway.receive(Duration::from_secs(5)).unwrap() {
                    assert_eq!(frame.header.from, relay_address);
                    got.push(frame.data);
                }
            }
            gateway.send_to_wait(relay_address, &reply).unwrap();
            got
        })
    };

    let datagram = Datagram::new(relay_radio, relay_clock, relay_address);
    let mut relay = ReliableDatagram::new(datagram, ReliableConfig::default(), 2);
    for m in &messages {
        relay.send_to_wait(gateway_address, m).unwrap();
    }
    let frame = loop {
        if let Some(frame) = relay.receive(Duration::from_secs(5)).unwrap() {
            break frame;
        }
    };
    assert_eq!((frame.header.from, &frame.data), (gateway_address, &reply));
    assert_eq!(gateway_thread.join().unwrap(), messages);
    assert_eq!(relay.stats().delivered, messages.len() as u64);
    messages.len()
}

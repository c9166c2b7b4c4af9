//! The real SX1276 driver on the register-level simulator: register values, errors, raw packets.

mod common;

use std::time::Duration;

use common::{driver, init_error, radiohead_default, EU868};
use tmc_radio::modem::{ModemConfig, SpreadingFactor};
use tmc_radio::regs;
use tmc_radio::RejectReason;
use tmc_radio::{RadioConfig, RadioError, Reception, Sx1276};
use tmc_radio_sim::{ChannelConfig, SimChannel};

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn init_leaves_radiohead_default_registers() {
    let channel = SimChannel::new(ChannelConfig::default());
    let chip = channel.add_chip();
    let probe = chip.probe.clone();
    let _radio = driver(chip, radiohead_default());
    let expected = [
        (regs::REG_OP_MODE, 0x81), // LoRa, standby
        (regs::REG_FIFO_TX_BASE_ADDR, 0x00),
        (regs::REG_FIFO_RX_BASE_ADDR, 0x00),
        (regs::REG_MODEM_CONFIG1, 0x72),
        (regs::REG_MODEM_CONFIG2, 0x74),
        (regs::REG_MODEM_CONFIG3, 0x04),
        (regs::REG_PREAMBLE_MSB, 0x00),
        (regs::REG_PREAMBLE_LSB, 0x08),
        (regs::REG_FRF_MSB, 0xD9),
        (regs::REG_FRF_MID, 0x00),
        (regs::REG_FRF_LSB, 0x00),
        (regs::REG_SYNC_WORD, 0x12), // chip default, never written
        (regs::REG_PA_CONFIG, 0x8B), // PA_BOOST, 13 dBm
        (regs::REG_PA_DAC, 0x04),
    ];
    for (address, value) in expected {
        assert_eq!(probe.register(address), value, "register {address:#04x}");
    }
}

#[test]
fn slow_modem_and_high_power_registers() {
    let channel = SimChannel::new(ChannelConfig::default());
    let chip = channel.add_chip();
    let probe = chip.probe.clone();
    let config = RadioConfig {
        frequency_hz: 869_525_000,
        tx_power_dbm: 20,
        modem: ModemConfig::RADIOHEAD_DEFAULT.with_spreading_factor(SpreadingFactor::Sf12),
    };
    let _radio = driver(chip, config);
    assert_eq!(probe.register(regs::REG_MODEM_CONFIG2), 0xC4);
    assert_eq!(probe.register(regs::REG_MODEM_CONFIG3), 0x0C); // LowDataRateOptimize + AGC
    assert_eq!(probe.register(regs::REG_PA_CONFIG), 0x8F);
    assert_eq!(probe.register(regs::REG_PA_DAC), 0x07);
    let frf = u32::from_be_bytes([
        0,
        probe.register(regs::REG_FRF_MSB),
        probe.register(regs::REG_FRF_MID),
        probe.register(regs::REG_FRF_LSB),
    ]);
    assert_eq!(frf, regs::frf_from_hz(869_525_000));
}

#[test]
fn absent_chip_is_reported() {
    let channel = SimChannel::new(ChannelConfig::default());
    let chip = channel.add_chip();
    chip.probe.set_present(false);
    let err = init_error(chip);
    assert!(
        matches!(err, RadioError::ChipAbsent { found: 0x00 }),
        "{err}"
    );
    assert!(err.to_string().contains("RegVersion (0x42) reads 0x00"));
}

#[test]
fn wrong_chip_is_reported() {
    let channel = SimChannel::new(ChannelConfig::default());
    let chip = channel.add_chip();
    // Something else answers (0x22 is an SX1272). The simulated reset restores 0x12, so this chip gets a
    // RESET pin that is not wired.
    chip.probe.set_register(regs::REG_VERSION, 0x22);
    let (spi, dio0, delay) = (chip.spi, chip.dio0, chip.delay);
    let err = Sx1276::new(spi, NoReset, dio0, delay, radiohead_default())
        .err()
        .unwrap();
    assert!(
        matches!(err, RadioError::WrongChip { found: 0x22 }),
        "{err}"
    );
}

struct NoReset;
impl embedded_hal::digital::ErrorType for NoReset {
    type Error = core::convert::Infallible;
}
impl embedded_hal::digital::OutputPin for NoReset {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[test]
fn spi_failure_is_reported() {
    let channel = SimChannel::new(ChannelConfig::default());
    let chip = channel.add_chip();
    chip.probe.set_spi_fault(true);
    let err = init_error(chip);
    assert!(matches!(err, RadioError::Spi { .. }), "{err}");
    assert!(err.to_string().starts_with("SPI transfer failed"), "{err}");
}

#[test]
fn tx_timeout_when_txdone_never_comes() {
    let channel = SimChannel::new(ChannelConfig::default());
    let chip = channel.add_chip();
    let probe = chip.probe.clone();
    let mut radio = driver(chip, radiohead_default());
    // A reserved bandwidth code: the chip accepts TX but nothing goes on air.
    probe.set_register(regs::REG_MODEM_CONFIG1, 0xF2);
    let err = radio.transmit(b"x").unwrap_err();
    assert!(matches!(err, RadioError::TxTimeout { len: 1, .. }), "{err}");
    assert_eq!(radio.stats().tx_timeouts, 1);
}

#[test]
fn raw_packet_goes_from_one_driver_to_another_with_link_quality() {
    let channel = SimChannel::new(ChannelConfig {
        snr_quarter_db: 38,
        rssi_register: 90,
        ..ChannelConfig::default()
    });
    let me = channel.participant();
    let mut tx = driver(channel.add_chip_for(&me), radiohead_default());
    let mut rx = driver(channel.add_chip_for(&me), radiohead_default());
    rx.start_receive().unwrap();
    let start = channel.now();
    tx.transmit(b"hello, gateway").unwrap();
    // The driver waited exactly the time on air in virtual time.
    assert_eq!(channel.now() - start, tx.time_on_air(14));
    let Reception::Packet(packet) = rx.receive(SECOND).unwrap() else {
        panic!("no packet")
    };
    assert_eq!(packet.payload(), b"hello, gateway");
    assert_eq!(packet.snr_db(), 9.5);
    assert_eq!(packet.rssi_dbm, -157 + 90 * 16 / 15);
    assert_eq!(rx.stats().rx_packets, 1);
}

#[test]
fn consecutive_packets_in_continuous_rx_are_read_from_where_each_landed() {
    let channel = SimChannel::new(ChannelConfig::default());
    let me = channel.participant();
    let mut tx = driver(channel.add_chip_for(&me), radiohead_default());
    let rx_chip = channel.add_chip_for(&me);
    let probe = rx_chip.probe.clone();
    let mut rx = driver(rx_chip, radiohead_default());
    rx.start_receive().unwrap();
    for n in 0..40u8 {
        let payload = [n; 17];
        tx.transmit(&payload).unwrap();
        let Reception::Packet(packet) = rx.receive(SECOND).unwrap() else {
            panic!("packet {n} missing")
        };
        assert_eq!(packet.payload(), &payload);
    }
    // 40 × 17 bytes went round the 256-byte FIFO more than twice: the driver followed RegFifoRxCurrentAddr.
    assert_eq!(
        probe.register(regs::REG_FIFO_RX_CURRENT_ADDR),
        (39 * 17 % 256) as u8
    );
    assert_eq!(
        probe.register(regs::REG_IRQ_FLAGS),
        0,
        "every flag read was cleared"
    );
}

#[test]
fn crc_errors_and_missing_crc_are_rejected() {
    let channel = SimChannel::new(ChannelConfig {
        corruption: 1.0,
        ..ChannelConfig::default()
    });
    let me = channel.participant();
    let mut tx = driver(channel.add_chip_for(&me), radiohead_default());
    let mut rx = driver(channel.add_chip_for(&me), radiohead_default());
    rx.start_receive().unwrap();
    tx.transmit(b"garbled").unwrap();
    assert_eq!(
        rx.receive(SECOND).unwrap(),
        Reception::Rejected(RejectReason::CrcError)
    );
    assert_eq!(rx.stats().rx_crc_errors, 1);

    channel.set_corruption(0.0);
    let no_crc = RadioConfig {
        modem: ModemConfig {
            crc: false,
            ..ModemConfig::RADIOHEAD_DEFAULT
        },
        ..radiohead_default()
    };
    tx.reconfigure(no_crc).unwrap();
    tx.transmit(b"unchecked").unwrap();
    assert_eq!(
        rx.receive(SECOND).unwrap(),
        Reception::Rejected(RejectReason::NoCrc)
    );
    assert_eq!(rx.stats().rx_without_crc, 1);
}

#[test]
fn nothing_is_heard_across_different_channels() {
    let channel = SimChannel::new(ChannelConfig::default());
    let me = channel.participant();
    let mut tx = driver(channel.add_chip_for(&me), radiohead_default());
    let mut rx = driver(channel.add_chip_for(&me), radiohead_default());
    let other_sf = RadioConfig {
        modem: ModemConfig::RADIOHEAD_DEFAULT.with_spreading_factor(SpreadingFactor::Sf8),
        ..radiohead_default()
    };
    let other_frequency = RadioConfig::radiohead_default(EU868 + 200_000);
    for config in [other_sf, other_frequency] {
        tx.reconfigure(config).unwrap();
        rx.start_receive().unwrap();
        tx.transmit(b"lost").unwrap();
        assert_eq!(rx.receive(SECOND).unwrap(), Reception::Timeout);
    }
    // A different sync word (0x34, LoRaWAN's) is not heard either.
    let tx_chip = channel.add_chip_for(&me);
    let tx_probe = tx_chip.probe.clone();
    let mut lorawan = driver(tx_chip, radiohead_default());
    tx_probe.set_register(regs::REG_SYNC_WORD, 0x34);
    lorawan.transmit(b"lost").unwrap();
    assert_eq!(rx.receive(SECOND).unwrap(), Reception::Timeout);
    assert_eq!(channel.stats().delivered, 0);
}

#[test]
fn simultaneous_transmissions_collide() {
    let channel = SimChannel::new(ChannelConfig::default());
    let a = channel.add_chip();
    let b = channel.add_chip();
    let rx_chip = channel.add_chip();
    // Both senders start at the same virtual instant (same init time), each on its own thread. They are spawned
    // before this thread waits on anything: a participant that never runs would hold virtual time still.
    let senders: Vec<_> = [a, b]
        .into_iter()
        .map(|chip| {
            std::thread::spawn(move || {
                let mut radio = driver(chip, radiohead_default());
                radio.transmit(b"talking at once").unwrap();
            })
        })
        .collect();
    let mut rx = driver(rx_chip, radiohead_default());
    rx.start_receive().unwrap();
    let reception = rx.receive(SECOND).unwrap();
    for s in senders {
        s.join().unwrap();
    }
    assert_eq!(reception, Reception::Rejected(RejectReason::CrcError));
    assert!(channel.stats().collisions >= 1);
}

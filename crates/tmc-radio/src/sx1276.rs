//! Blocking SX1276 LoRa driver over embedded-hal 1.0, on the air identical to RadioHead's RH_RF95 defaults.
//!
//! The driver owns four things: an [`SpiDevice`] (chip select is the device's business: the kernel's or a GPIO
//! through embedded-hal-bus), the RESET pin, the DIO0 line ([`Dio0`]) and a [`DelayNs`]. It knows nothing of
//! addresses or acknowledgements: that is [`crate::datagram`], which sees the driver as a chip-neutral
//! [`PacketRadio`].

use core::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_hal::spi::{ErrorKind, Operation, SpiDevice};
use thiserror::Error;

use crate::airtime::time_on_air;
use crate::frame::MAX_FRAME_LEN;
use crate::hal::Dio0;
use crate::modem::ModemConfig;
use crate::packet_radio::{PacketRadio, PacketRadioError, Reception, RejectReason, RxPacket};
use crate::regs::{self, irq};

/// Lowest PA_BOOST power RadioHead's `setTxPower` accepts.
pub const MIN_TX_POWER_DBM: i8 = 2;
/// Highest PA_BOOST power (PA DAC on above 17 dBm).
pub const MAX_TX_POWER_DBM: i8 = 20;

/// Frequency, power and modem settings of the radio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RadioConfig {
    /// Carrier frequency in Hz.
    pub frequency_hz: u32,
    /// Output power on PA_BOOST in dBm, 2..=20, as RadioHead's `setTxPower(power, false)`.
    pub tx_power_dbm: i8,
    /// Modem settings.
    pub modem: ModemConfig,
}

impl RadioConfig {
    /// RadioHead's defaults on another frequency: SF7/BW125/CR4:5, CRC on, preamble 8, 13 dBm.
    pub fn radiohead_default(frequency_hz: u32) -> Self {
        Self {
            frequency_hz,
            tx_power_dbm: 13,
            modem: ModemConfig::RADIOHEAD_DEFAULT,
        }
    }

    /// Checks what the chip itself cannot do (legal limits are [`crate::region`]'s business).
    pub fn validate(&self) -> Result<(), RadioError> {
        // The SX1276 synthesiser covers 137–1020 MHz.
        if !(137_000_000..=1_020_000_000).contains(&self.frequency_hz) {
            return Err(RadioError::InvalidConfig(format!(
                "frequency {} Hz is outside the SX1276 range 137–1020 MHz",
                self.frequency_hz
            )));
        }
        if !(MIN_TX_POWER_DBM..=MAX_TX_POWER_DBM).contains(&self.tx_power_dbm) {
            return Err(RadioError::InvalidConfig(format!(
                "tx power {} dBm is outside the PA_BOOST range {MIN_TX_POWER_DBM}..={MAX_TX_POWER_DBM} dBm",
                self.tx_power_dbm
            )));
        }
        if self.modem.preamble_len < 6 {
            return Err(RadioError::InvalidConfig(format!(
                "preamble of {} symbols is shorter than the SX1276 minimum of 6",
                self.modem.preamble_len
            )));
        }
        Ok(())
    }

    /// (RegPaConfig, RegPaDac) for the power, as RadioHead's `setTxPower(power, useRFO = false)`: above 17 dBm
    /// the PA DAC adds 3 dB.
    pub fn pa_registers(&self) -> (u8, u8) {
        let power = self.tx_power_dbm.clamp(MIN_TX_POWER_DBM, MAX_TX_POWER_DBM);
        let (power, dac) = if power > 17 {
            (power - 3, regs::PA_DAC_ENABLE)
        } else {
            (power, regs::PA_DAC_DISABLE)
        };
        (
            regs::PA_SELECT_BOOST | (power - MIN_TX_POWER_DBM) as u8,
            dac,
        )
    }
}

/// What can go wrong talking to the chip.
#[derive(Debug, Error)]
pub enum RadioError {
    /// Nothing answers: MISO floats or is pulled.
    #[error(
        "no SX1276 answers on the SPI bus: RegVersion (0x42) reads {found:#04x} (check the SPI device, chip select, \
         RESET line and power)"
    )]
    ChipAbsent {
        /// What RegVersion read.
        found: u8,
    },
    /// Something answers, but not an SX1276.
    #[error("RegVersion (0x42) reads {found:#04x}, expected 0x12: this is not an SX1276/77/78/79")]
    WrongChip {
        /// What RegVersion read.
        found: u8,
    },
    /// The SPI transfer itself failed.
    #[error("SPI transfer failed ({kind:?}): {detail}")]
    Spi {
        /// embedded-hal's classification.
        kind: ErrorKind,
        /// The backend's own error, as text.
        detail: String,
    },
    /// Driving the RESET pin failed.
    #[error("driving the RESET pin failed: {0}")]
    ResetPin(String),
    /// Waiting on DIO0 failed.
    #[error("waiting for DIO0 failed: {0}")]
    Dio0(String),
    /// The chip did not take the mode we wrote.
    #[error("the chip did not enter {wanted}: RegOpMode reads {found:#04x}")]
    ModeNotEntered {
        /// Mode we asked for.
        wanted: &'static str,
        /// What RegOpMode read.
        found: u8,
    },
    /// TxDone never came.
    #[error("transmission of {len} bytes did not finish within {timeout:?} (time on air {airtime:?}): no TxDone")]
    TxTimeout {
        /// Payload length.
        len: usize,
        /// How long we waited.
        timeout: Duration,
        /// Expected time on air.
        airtime: Duration,
    },
    /// Payload not sendable.
    #[error("a payload of {len} bytes cannot be sent: 1..=255 bytes")]
    PayloadLength {
        /// Payload length.
        len: usize,
    },
    /// Settings the chip cannot take.
    #[error("invalid radio configuration: {0}")]
    InvalidConfig(String),
}

/// Counters since the driver was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RadioStats {
    /// Packets sent.
    pub tx_packets: u64,
    /// Valid packets received.
    pub rx_packets: u64,
    /// Packets dropped for a CRC error.
    pub rx_crc_errors: u64,
    /// Packets dropped for lacking a CRC.
    pub rx_without_crc: u64,
    /// Transmissions that never signalled TxDone.
    pub tx_timeouts: u64,
}

/// Chip state as the driver last set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Sleep,
    Standby,
    Rx,
}

/// Packet RSSI for the HF port (≥ 779 MHz), datasheet 5.5.5: −157 + 16/15 · PacketRssi when SNR ≥ 0, else
/// −157 + PacketRssi + SNR.
pub fn packet_rssi_dbm(pkt_rssi_value: u8, snr_quarter_db: i8) -> i16 {
    let raw = i16::from(pkt_rssi_value);
    if snr_quarter_db < 0 {
        -157 + raw + i16::from(snr_quarter_db) / 4
    } else {
        -157 + raw * 16 / 15
    }
}

/// The SX1276 driver.
pub struct Sx1276<SPI, RESET, DIO0, DELAY> {
    spi: SPI,
    reset: RESET,
    dio0: DIO0,
    delay: DELAY,
    config: RadioConfig,
    mode: Mode,
    stats: RadioStats,
}

fn spi_error<E: embedded_hal::spi::Error>(e: E) -> RadioError {
    RadioError::Spi {
        kind: e.kind(),
        detail: format!("{e:?}"),
    }
}

impl<SPI, RESET, DIO0, DELAY> Sx1276<SPI, RESET, DIO0, DELAY>
where
    SPI: SpiDevice,
    RESET: OutputPin,
    DIO0: Dio0,
    DELAY: DelayNs,
{
    /// Resets the chip, checks it is an SX1276, and configures it as RadioHead's `init()` followed by the given
    /// frequency, power and modem settings. Leaves the chip in standby.
    pub fn new(
        spi: SPI,
        reset: RESET,
        dio0: DIO0,
        delay: DELAY,
        config: RadioConfig,
    ) -> Result<Self, RadioError> {
        config.validate()?;
        let mut radio = Self {
            spi,
            reset,
            dio0,
            delay,
            config,
            mode: Mode::Sleep,
            stats: RadioStats::default(),
        };
        radio.reset()?;
        radio.check_version()?;
        radio.enter_lora_sleep()?;
        // FIFO: both base addresses 0, so a TX payload and an RX payload may each use all 256 bytes.
        radio.write(regs::REG_FIFO_TX_BASE_ADDR, 0)?;
        radio.write(regs::REG_FIFO_RX_BASE_ADDR, 0)?;
        radio.standby()?;
        radio.apply_config()?;
        Ok(radio)
    }

    /// Settings in force.
    pub fn config(&self) -> &RadioConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> RadioStats {
        self.stats
    }

    /// Changes frequency, power and modem settings (goes through standby).
    pub fn reconfigure(&mut self, config: RadioConfig) -> Result<(), RadioError> {
        config.validate()?;
        self.config = config;
        self.standby()?;
        self.apply_config()
    }

    /// Time on air of a packet of `len` bytes with the current settings.
    pub fn time_on_air(&self, len: usize) -> Duration {
        time_on_air(&self.config.modem, len)
    }

    /// Low-power sleep (LoRa mode kept).
    pub fn sleep(&mut self) -> Result<(), RadioError> {
        self.write(regs::REG_OP_MODE, regs::LONG_RANGE_MODE | regs::MODE_SLEEP)?;
        self.mode = Mode::Sleep;
        Ok(())
    }

    /// Standby ("idle" in RadioHead).
    pub fn standby(&mut self) -> Result<(), RadioError> {
        self.write(regs::REG_OP_MODE, regs::LONG_RANGE_MODE | regs::MODE_STDBY)?;
        self.mode = Mode::Standby;
        Ok(())
    }

    /// Sends one packet and blocks until TxDone, with a timeout derived from the time on air. The chip returns to
    /// standby by itself afterwards.
    pub fn transmit(&mut self, payload: &[u8]) -> Result<(), RadioError> {
        if payload.is_empty() || payload.len() > MAX_FRAME_LEN {
            return Err(RadioError::PayloadLength { len: payload.len() });
        }
        self.standby()?;
        self.write(regs::REG_FIFO_ADDR_PTR, 0)?;
        self.burst_write(regs::REG_FIFO, payload)?;
        self.write(regs::REG_PAYLOAD_LENGTH, payload.len() as u8)?;
        // Map DIO0 before starting so the TxDone edge cannot come before the mapping.
        self.write(regs::REG_DIO_MAPPING1, regs::DIO0_TX_DONE)?;
        self.write(regs::REG_OP_MODE, regs::LONG_RANGE_MODE | regs::MODE_TX)?;
        let airtime = self.time_on_air(payload.len());
        // Twice the airtime plus a margin for the host: late only if the chip is wedged or DIO0 is miswired.
        let timeout = airtime * 2 + Duration::from_millis(100);
        let high = self
            .dio0
            .wait_high(timeout)
            .map_err(|e| RadioError::Dio0(format!("{e:?}")))?;
        let flags = self.read(regs::REG_IRQ_FLAGS)?;
        if !high && flags & irq::TX_DONE == 0 {
            self.stats.tx_timeouts += 1;
            self.standby()?;
            return Err(RadioError::TxTimeout {
                len: payload.len(),
                timeout,
                airtime,
            });
        }
        self.write(regs::REG_IRQ_FLAGS, irq::TX_DONE)?;
        self.mode = Mode::Standby;
        self.stats.tx_packets += 1;
        Ok(())
    }

    /// Enters continuous receive if not already there.
    pub fn start_receive(&mut self) -> Result<(), RadioError> {
        if self.mode != Mode::Rx {
            self.write(regs::REG_DIO_MAPPING1, regs::DIO0_RX_DONE)?;
            self.write(
                regs::REG_OP_MODE,
                regs::LONG_RANGE_MODE | regs::MODE_RX_CONTINUOUS,
            )?;
            self.mode = Mode::Rx;
        }
        Ok(())
    }

    /// Waits up to `timeout` for one packet in continuous receive. Returns after the first packet, good or bad.
    pub fn receive(&mut self, timeout: Duration) -> Result<Reception, RadioError> {
        self.start_receive()?;
        let high = self
            .dio0
            .wait_high(timeout)
            .map_err(|e| RadioError::Dio0(format!("{e:?}")))?;
        if !high {
            return Ok(Reception::Timeout);
        }
        self.read_packet()
    }

    /// Reads and acknowledges a packet whose RxDone raised DIO0.
    fn read_packet(&mut self) -> Result<Reception, RadioError> {
        let flags = self.read(regs::REG_IRQ_FLAGS)?;
        if flags & irq::RX_DONE == 0 {
            // DIO0 was high for another reason (stale mapping): clear what we saw and report nothing.
            self.write(regs::REG_IRQ_FLAGS, flags)?;
            return Ok(Reception::Timeout);
        }
        // Latch everything that describes this packet before clearing its flags: once RxDone is cleared, the
        // next packet may land and overwrite these registers.
        let crc_present = self.read(regs::REG_HOP_CHANNEL)? & regs::RX_PAYLOAD_CRC_IS_ON != 0;
        let len = self.read(regs::REG_RX_NB_BYTES)?;
        let start = self.read(regs::REG_FIFO_RX_CURRENT_ADDR)?;
        let snr_quarter_db = self.read(regs::REG_PKT_SNR_VALUE)? as i8;
        let rssi_raw = self.read(regs::REG_PKT_RSSI_VALUE)?;
        // Clear only the flags we read. Writing 0xFF (RadioHead) would also clear an RxDone of a packet that
        // landed after our read, and that packet would never be seen.
        self.write(regs::REG_IRQ_FLAGS, flags)?;
        // PayloadCrcError (RegIrqFlags bit 5), or a header announcing no payload CRC (RegHopChannel bit 6 clear)
        // while we require one.
        if flags & irq::PAYLOAD_CRC_ERROR != 0 {
            self.stats.rx_crc_errors += 1;
            return Ok(Reception::Rejected(RejectReason::CrcError));
        }
        if self.config.modem.crc && !crc_present {
            self.stats.rx_without_crc += 1;
            return Ok(Reception::Rejected(RejectReason::NoCrc));
        }
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = usize::from(len).min(MAX_FRAME_LEN);
        self.write(regs::REG_FIFO_ADDR_PTR, start)?;
        self.burst_read(regs::REG_FIFO, &mut buf[..n])?;
        self.stats.rx_packets += 1;
        Ok(Reception::Packet(RxPacket::from_buffer(
            buf,
            n as u8,
            packet_rssi_dbm(rssi_raw, snr_quarter_db),
            snr_quarter_db,
        )))
    }

    /// Reads one register (diagnostics).
    pub fn read_register(&mut self, address: u8) -> Result<u8, RadioError> {
        self.read(address)
    }

    /// Gives the hardware back.
    pub fn release(self) -> (SPI, RESET, DIO0, DELAY) {
        (self.spi, self.reset, self.dio0, self.delay)
    }

    fn reset(&mut self) -> Result<(), RadioError> {
        // Datasheet 7.2.2: hold NRESET low for > 100 µs, then wait 5 ms before using the chip.
        self.reset
            .set_low()
            .map_err(|e| RadioError::ResetPin(format!("{e:?}")))?;
        self.delay.delay_us(200);
        self.reset
            .set_high()
            .map_err(|e| RadioError::ResetPin(format!("{e:?}")))?;
        self.delay.delay_ms(5);
        Ok(())
    }

    fn check_version(&mut self) -> Result<(), RadioError> {
        match self.read(regs::REG_VERSION)? {
            regs::SX1276_VERSION => Ok(()),
            found @ (0x00 | 0xFF) => Err(RadioError::ChipAbsent { found }),
            found => Err(RadioError::WrongChip { found }),
        }
    }

    fn enter_lora_sleep(&mut self) -> Result<(), RadioError> {
        // LongRangeMode may only change in Sleep: go to (FSK) sleep first, then set the LoRa bit.
        self.write(regs::REG_OP_MODE, regs::MODE_SLEEP)?;
        self.write(regs::REG_OP_MODE, regs::LONG_RANGE_MODE | regs::MODE_SLEEP)?;
        self.delay.delay_ms(10);
        let found = self.read(regs::REG_OP_MODE)?;
        if found != regs::LONG_RANGE_MODE | regs::MODE_SLEEP {
            return Err(RadioError::ModeNotEntered {
                wanted: "LoRa sleep",
                found,
            });
        }
        self.mode = Mode::Sleep;
        Ok(())
    }

    fn apply_config(&mut self) -> Result<(), RadioError> {
        let c = self.config;
        self.write(regs::REG_MODEM_CONFIG1, c.modem.reg_modem_config1())?;
        self.write(regs::REG_MODEM_CONFIG2, c.modem.reg_modem_config2())?;
        self.write(regs::REG_MODEM_CONFIG3, c.modem.reg_modem_config3())?;
        let [preamble_msb, preamble_lsb] = c.modem.preamble_len.to_be_bytes();
        self.write(regs::REG_PREAMBLE_MSB, preamble_msb)?;
        self.write(regs::REG_PREAMBLE_LSB, preamble_lsb)?;
        let [_, frf_msb, frf_mid, frf_lsb] = regs::frf_from_hz(c.frequency_hz).to_be_bytes();
        self.write(regs::REG_FRF_MSB, frf_msb)?;
        self.write(regs::REG_FRF_MID, frf_mid)?;
        self.write(regs::REG_FRF_LSB, frf_lsb)?;
        let (pa_config, pa_dac) = c.pa_registers();
        self.write(regs::REG_PA_DAC, pa_dac)?;
        self.write(regs::REG_PA_CONFIG, pa_config)?;
        Ok(())
    }

    fn read(&mut self, address: u8) -> Result<u8, RadioError> {
        let mut value = [0u8];
        self.spi
            .transaction(&mut [
                Operation::Write(&[address & 0x7F]),
                Operation::Read(&mut value),
            ])
            .map_err(spi_error)?;
        Ok(value[0])
    }

    fn write(&mut self, address: u8, value: u8) -> Result<(), RadioError> {
        self.spi.write(&[address | 0x80, value]).map_err(spi_error)
    }

    fn burst_write(&mut self, address: u8, data: &[u8]) -> Result<(), RadioError> {
        self.spi
            .transaction(&mut [Operation::Write(&[address | 0x80]), Operation::Write(data)])
            .map_err(spi_error)
    }

    fn burst_read(&mut self, address: u8, data: &mut [u8]) -> Result<(), RadioError> {
        self.spi
            .transaction(&mut [Operation::Write(&[address & 0x7F]), Operation::Read(data)])
            .map_err(spi_error)
    }
}

impl<SPI, RESET, DIO0, DELAY> PacketRadio for Sx1276<SPI, RESET, DIO0, DELAY>
where
    SPI: SpiDevice,
    RESET: OutputPin,
    DIO0: Dio0,
    DELAY: DelayNs,
{
    fn transmit(&mut self, payload: &[u8]) -> Result<(), PacketRadioError> {
        Ok(Sx1276::transmit(self, payload)?)
    }

    fn receive(&mut self, timeout: Duration) -> Result<Reception, PacketRadioError> {
        Ok(Sx1276::receive(self, timeout)?)
    }

    fn time_on_air(&self, len: usize) -> Duration {
        Sx1276::time_on_air(self, len)
    }
}

impl From<RadioError> for PacketRadioError {
    fn from(error: RadioError) -> Self {
        match error {
            RadioError::PayloadLength { len } => PacketRadioError::PayloadLength { len },
            other => PacketRadioError::chip(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pa_registers_follow_radiohead_set_tx_power() {
        let mut c = RadioConfig::radiohead_default(868_000_000);
        assert_eq!(c.pa_registers(), (0x8B, 0x04)); // 13 dBm: 0x80 | (13 - 2)
        c.tx_power_dbm = 17;
        assert_eq!(c.pa_registers(), (0x8F, 0x04));
        c.tx_power_dbm = 20;
        assert_eq!(c.pa_registers(), (0x8F, 0x07)); // DAC on, 20 - 3 - 2
        c.tx_power_dbm = 2;
        assert_eq!(c.pa_registers(), (0x80, 0x04));
    }

    #[test]
    fn invalid_configs_say_what_is_wrong() {
        let mut c = RadioConfig::radiohead_default(868_000_000);
        c.tx_power_dbm = 21;
        assert!(c.validate().unwrap_err().to_string().contains("21 dBm"));
        let c = RadioConfig::radiohead_default(100_000_000);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("137–1020 MHz"));
    }

    #[test]
    fn payload_length_errors_stay_the_callers_and_the_rest_stay_the_chips() {
        let neutral = PacketRadioError::from(RadioError::PayloadLength { len: 0 });
        assert!(matches!(
            neutral,
            PacketRadioError::PayloadLength { len: 0 }
        ));
        let original = RadioError::WrongChip { found: 0x22 }.to_string();
        let neutral = PacketRadioError::from(RadioError::WrongChip { found: 0x22 });
        assert_eq!(neutral.to_string(), original);
        assert!(matches!(
            neutral.chip_error::<RadioError>(),
            Some(RadioError::WrongChip { found: 0x22 })
        ));
    }

    #[test]
    fn rssi_uses_the_snr_correction_only_when_negative() {
        assert_eq!(packet_rssi_dbm(100, 36), -157 + 106); // 16/15 · 100 = 106.7, truncated
        assert_eq!(packet_rssi_dbm(40, -20), -157 + 40 - 5);
    }
}

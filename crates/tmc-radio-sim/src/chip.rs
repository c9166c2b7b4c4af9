//! One simulated SX1276: register file, 256-byte FIFO with its pointers, operating modes, IRQ flags
//! (write-1-to-clear, maskable) and the DIO0 mapping. It knows nothing of time or of other chips: mode changes
//! that start or abort a transmission are reported to the world, which owns the air.

use tmc_radio::modem::{Bandwidth, ModemConfig, ModemDecodeError, SpreadingFactor};
use tmc_radio::regs::{self, irq};

/// Reset values of the LoRa register page that matter (datasheet table 41, "default" column). Everything else
/// resets to 0.
const RESET_VALUES: &[(u8, u8)] = &[
    (regs::REG_OP_MODE, 0x09), // FSK, low-frequency mode, standby
    (regs::REG_FRF_MSB, 0x6C), // 434 MHz
    (regs::REG_FRF_MID, 0x80),
    (regs::REG_FRF_LSB, 0x00),
    (regs::REG_PA_CONFIG, 0x4F),
    (0x0A, 0x09), // RegPaRamp
    (regs::REG_OCP, 0x2B),
    (0x0C, 0x20), // RegLna
    (regs::REG_FIFO_TX_BASE_ADDR, 0x80),
    (regs::REG_FIFO_RX_BASE_ADDR, 0x00),
    (regs::REG_MODEM_CONFIG1, 0x72),
    (regs::REG_MODEM_CONFIG2, 0x70),
    (0x1F, 0x64), // RegSymbTimeoutLsb
    (regs::REG_PREAMBLE_MSB, 0x00),
    (regs::REG_PREAMBLE_LSB, 0x08),
    (regs::REG_PAYLOAD_LENGTH, 0x01),
    (regs::REG_MAX_PAYLOAD_LENGTH, 0xFF),
    (0x31, 0xC3), // RegDetectOptimize
    (regs::REG_INVERT_IQ, 0x27),
    (0x37, 0x0A), // RegDetectionThreshold
    (regs::REG_SYNC_WORD, 0x12),
    (regs::REG_VERSION, regs::SX1276_VERSION),
    (0x4B, 0x09), // RegTcxo
    (regs::REG_PA_DAC, 0x84),
];

/// Registers the host cannot write.
const READ_ONLY: &[u8] = &[
    regs::REG_FIFO_RX_CURRENT_ADDR,
    regs::REG_RX_NB_BYTES,
    0x14,
    0x15,
    0x16,
    0x17,
    0x18,
    regs::REG_PKT_SNR_VALUE,
    regs::REG_PKT_RSSI_VALUE,
    regs::REG_RSSI_VALUE,
    regs::REG_HOP_CHANNEL,
    regs::REG_FIFO_RX_BYTE_ADDR,
    regs::REG_VERSION,
];

/// Radio parameters that must agree for one chip to hear another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AirParams {
    pub frequency_hz: u32,
    pub spreading_factor: SpreadingFactor,
    pub bandwidth: Bandwidth,
    pub sync_word: u8,
    pub explicit_header: bool,
    pub invert_iq: bool,
}

impl AirParams {
    /// Whether a receiver tuned to `self` demodulates a transmission made with `other`. The carrier may be off
    /// by a quarter of the bandwidth (crystal tolerance), everything else must be equal. Implicit-header
    /// packets are never delivered: RadioHead does not use them and the simulator does not model them.
    pub fn hears(&self, other: &AirParams) -> bool {
        self.frequency_hz.abs_diff(other.frequency_hz) <= self.bandwidth.hz() / 4
            && self.spreading_factor == other.spreading_factor
            && self.bandwidth == other.bandwidth
            && self.sync_word == other.sync_word
            && self.explicit_header
            && other.explicit_header
            && self.invert_iq == other.invert_iq
    }
}

/// What a write to RegOpMode means for the air.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ModeChange {
    /// The chip entered TX: the world must put the FIFO payload on air.
    pub start_tx: bool,
    /// The chip left TX before TxDone: the world must cut the transmission.
    pub abort_tx: bool,
}

/// A reception in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Locked {
    pub tx: u64,
    pub corrupted: bool,
}

pub(crate) struct Chip {
    regs: [u8; 128],
    fifo: [u8; 256],
    /// Where the receiver writes the next packet; continuous RX appends packets one after another.
    rx_write_addr: u8,
    /// Transmission this chip is receiving.
    pub receiving: Option<Locked>,
    /// Transmission this chip is sending.
    pub transmitting: Option<u64>,
    /// NRESET held low.
    pub in_reset: bool,
    /// Whether the chip answers on SPI at all.
    pub present: bool,
    /// Whether SPI transactions fail.
    pub spi_fault: bool,
}

impl Chip {
    pub fn new() -> Self {
        let mut chip = Self {
            regs: [0; 128],
            fifo: [0; 256],
            rx_write_addr: 0,
            receiving: None,
            transmitting: None,
            in_reset: false,
            present: true,
            spi_fault: false,
        };
        chip.reset_registers();
        chip
    }

    /// Power-on / NRESET state.
    pub fn reset_registers(&mut self) {
        self.regs = [0; 128];
        for &(address, value) in RESET_VALUES {
            self.regs[usize::from(address)] = value;
        }
        self.fifo = [0; 256];
        self.rx_write_addr = 0;
        self.receiving = None;
        self.transmitting = None;
    }

    pub fn register(&self, address: u8) -> u8 {
        self.regs[usize::from(address & 0x7F)]
    }

    pub fn set_register(&mut self, address: u8, value: u8) {
        self.regs[usize::from(address & 0x7F)] = value;
    }

    pub fn fifo(&self) -> &[u8; 256] {
        &self.fifo
    }

    pub fn mode(&self) -> u8 {
        self.register(regs::REG_OP_MODE) & regs::MODE_MASK
    }

    pub fn is_lora(&self) -> bool {
        self.register(regs::REG_OP_MODE) & regs::LONG_RANGE_MODE != 0
    }

    fn is_rx_mode(mode: u8) -> bool {
        mode == regs::MODE_RX_CONTINUOUS || mode == regs::MODE_RX_SINGLE
    }

    /// Listening and free to lock on a new packet.
    pub fn is_listening(&self) -> bool {
        self.answers()
            && self.is_lora()
            && Self::is_rx_mode(self.mode())
            && self.receiving.is_none()
    }

    /// Powered, present and out of reset.
    pub fn answers(&self) -> bool {
        self.present && !self.in_reset
    }

    fn set_mode(&mut self, mode: u8) {
        let op = self.register(regs::REG_OP_MODE);
        self.set_register(regs::REG_OP_MODE, (op & !regs::MODE_MASK) | mode);
    }

    /// Host read of one register (FIFO reads advance the pointer).
    pub fn read(&mut self, address: u8) -> u8 {
        if !self.answers() {
            return 0x00;
        }
        let address = address & 0x7F;
        if address == regs::REG_FIFO {
            if self.mode() == regs::MODE_SLEEP {
                return 0x00;
            }
            let ptr = self.register(regs::REG_FIFO_ADDR_PTR);
            self.set_register(regs::REG_FIFO_ADDR_PTR, ptr.wrapping_add(1));
            return self.fifo[usize::from(ptr)];
        }
        self.register(address)
    }

    /// Host write of one register.
    pub fn write(&mut self, address: u8, value: u8) -> ModeChange {
        if !self.answers() {
            return ModeChange::default();
        }
        let address = address & 0x7F;
        match address {
            regs::REG_FIFO => {
                if self.mode() != regs::MODE_SLEEP {
                    let ptr = self.register(regs::REG_FIFO_ADDR_PTR);
                    self.fifo[usize::from(ptr)] = value;
                    self.set_register(regs::REG_FIFO_ADDR_PTR, ptr.wrapping_add(1));
                }
                ModeChange::default()
            }
            regs::REG_OP_MODE => self.write_op_mode(value),
            regs::REG_IRQ_FLAGS => {
                // Write 1 to clear.
                let flags = self.register(regs::REG_IRQ_FLAGS);
                self.set_register(regs::REG_IRQ_FLAGS, flags & !value);
                ModeChange::default()
            }
            a if READ_ONLY.contains(&a) => ModeChange::default(),
            a => {
                self.set_register(a, value);
                ModeChange::default()
            }
        }
    }

    fn write_op_mode(&mut self, value: u8) -> ModeChange {
        let old = self.register(regs::REG_OP_MODE);
        let old_mode = old & regs::MODE_MASK;
        // LongRangeMode can only change in Sleep: on a write from Sleep, or on the write that enters Sleep (the
        // chip takes the bit with the mode: RadioHead's init writes 0x80 once, from standby, and works on
        // hardware). A write that stays outside Sleep keeps the bit as it was.
        let value = if old_mode == regs::MODE_SLEEP || value & regs::MODE_MASK == regs::MODE_SLEEP {
            value
        } else {
            (value & !regs::LONG_RANGE_MODE) | (old & regs::LONG_RANGE_MODE)
        };
        self.set_register(regs::REG_OP_MODE, value);
        let new_mode = value & regs::MODE_MASK;
        let lora = value & regs::LONG_RANGE_MODE != 0;
        let mut change = ModeChange::default();
        if new_mode == regs::MODE_SLEEP {
            // The FIFO is not kept in Sleep.
            self.fifo = [0; 256];
        }
        if Self::is_rx_mode(old_mode) && !Self::is_rx_mode(new_mode) {
            self.receiving = None;
        }
        if Self::is_rx_mode(new_mode) && !Self::is_rx_mode(old_mode) {
            self.rx_write_addr = self.register(regs::REG_FIFO_RX_BASE_ADDR);
        }
        if old_mode == regs::MODE_TX && new_mode != regs::MODE_TX && self.transmitting.is_some() {
            change.abort_tx = true;
        }
        if new_mode == regs::MODE_TX && old_mode != regs::MODE_TX && lora {
            change.start_tx = true;
        }
        change
    }

    /// Raises IRQ flags not masked by RegIrqFlagsMask.
    pub fn raise(&mut self, bits: u8) {
        let masked = bits & !self.register(regs::REG_IRQ_FLAGS_MASK);
        let flags = self.register(regs::REG_IRQ_FLAGS);
        self.set_register(regs::REG_IRQ_FLAGS, flags | masked);
    }

    /// DIO0 level per RegDioMapping1 bits 7..6 (LoRa: 00 RxDone, 01 TxDone, 10 CadDone).
    pub fn dio0(&self) -> bool {
        if !self.answers() || !self.is_lora() {
            return false;
        }
        let source = match self.register(regs::REG_DIO_MAPPING1) >> 6 {
            0 => irq::RX_DONE,
            1 => irq::TX_DONE,
            2 => irq::CAD_DONE,
            _ => 0,
        };
        self.register(regs::REG_IRQ_FLAGS) & source != 0
    }

    /// Modem settings in the registers.
    pub fn modem(&self) -> Result<ModemConfig, ModemDecodeError> {
        let preamble = u16::from_be_bytes([
            self.register(regs::REG_PREAMBLE_MSB),
            self.register(regs::REG_PREAMBLE_LSB),
        ]);
        ModemConfig::from_registers(
            self.register(regs::REG_MODEM_CONFIG1),
            self.register(regs::REG_MODEM_CONFIG2),
            self.register(regs::REG_MODEM_CONFIG3),
            preamble,
        )
    }

    /// What must match for this chip to hear another.
    pub fn air_params(&self) -> Result<AirParams, ModemDecodeError> {
        let modem = self.modem()?;
        let frf = u32::from_be_bytes([
            0,
            self.register(regs::REG_FRF_MSB),
            self.register(regs::REG_FRF_MID),
            self.register(regs::REG_FRF_LSB),
        ]);
        Ok(AirParams {
            frequency_hz: regs::hz_from_frf(frf),
            spreading_factor: modem.spreading_factor,
            bandwidth: modem.bandwidth,
            sync_word: self.register(regs::REG_SYNC_WORD),
            explicit_header: modem.explicit_header,
            invert_iq: self.register(regs::REG_INVERT_IQ) & 0x40 != 0,
        })
    }

    /// The packet TX mode sends: RegPayloadLength bytes from RegFifoTxBaseAddr.
    pub fn tx_payload(&self) -> Vec<u8> {
        let base = self.register(regs::REG_FIFO_TX_BASE_ADDR);
        let len = self.register(regs::REG_PAYLOAD_LENGTH);
        (0..len)
            .map(|i| self.fifo[usize::from(base.wrapping_add(i))])
            .collect()
    }

    /// TxDone: back to standby.
    pub fn finish_tx(&mut self) {
        self.transmitting = None;
        if self.mode() == regs::MODE_TX {
            self.set_mode(regs::MODE_STDBY);
        }
        self.raise(irq::TX_DONE);
    }

    /// RxDone: the packet lands in the FIFO after the previous one, and the packet registers describe it.
    pub fn deliver(
        &mut self,
        payload: &[u8],
        crc_on: bool,
        crc_error: bool,
        snr_quarter_db: i8,
        rssi_register: u8,
    ) {
        let start = self.rx_write_addr;
        for (i, byte) in payload.iter().enumerate() {
            self.fifo[usize::from(start.wrapping_add(i as u8))] = *byte;
        }
        self.rx_write_addr = start.wrapping_add(payload.len() as u8);
        self.set_register(regs::REG_FIFO_RX_CURRENT_ADDR, start);
        self.set_register(regs::REG_RX_NB_BYTES, payload.len() as u8);
        self.set_register(regs::REG_FIFO_RX_BYTE_ADDR, self.rx_write_addr);
        self.set_register(regs::REG_PKT_SNR_VALUE, snr_quarter_db as u8);
        self.set_register(regs::REG_PKT_RSSI_VALUE, rssi_register);
        self.set_register(
            regs::REG_HOP_CHANNEL,
            if crc_on {
                regs::RX_PAYLOAD_CRC_IS_ON
            } else {
                0
            },
        );
        self.receiving = None;
        let mut flags = irq::RX_DONE;
        if crc_error {
            flags |= irq::PAYLOAD_CRC_ERROR;
        }
        self.raise(flags);
        if self.mode() == regs::MODE_RX_SINGLE {
            self.set_mode(regs::MODE_STDBY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_range_mode_changes_only_in_sleep() {
        let mut chip = Chip::new();
        assert_eq!(chip.register(regs::REG_OP_MODE), 0x09);
        chip.write(regs::REG_OP_MODE, 0x81); // from FSK standby: LoRa bit ignored
        assert_eq!(chip.register(regs::REG_OP_MODE), 0x01);
        chip.write(regs::REG_OP_MODE, 0x00);
        chip.write(regs::REG_OP_MODE, 0x80);
        assert_eq!(chip.register(regs::REG_OP_MODE), 0x80);
        // Back to FSK from LoRa standby: refused, and the mode still changes.
        chip.write(regs::REG_OP_MODE, 0x81);
        chip.write(regs::REG_OP_MODE, 0x03);
        assert_eq!(chip.register(regs::REG_OP_MODE), 0x83);
    }

    #[test]
    fn the_write_that_enters_sleep_takes_long_range_mode() {
        // RadioHead's init: one write of 0x80 from (FSK) standby, then it reads the bit back.
        let mut chip = Chip::new();
        chip.write(regs::REG_OP_MODE, 0x80);
        assert_eq!(chip.register(regs::REG_OP_MODE), 0x80);
        chip.write(regs::REG_OP_MODE, 0x81);
        assert_eq!(chip.register(regs::REG_OP_MODE), 0x81);
        // And back to FSK the same way.
        chip.write(regs::REG_OP_MODE, 0x00);
        assert_eq!(chip.register(regs::REG_OP_MODE), 0x00);
    }

    #[test]
    fn irq_flags_are_write_one_to_clear_and_maskable() {
        let mut chip = Chip::new();
        chip.raise(irq::RX_DONE | irq::VALID_HEADER);
        chip.write(regs::REG_IRQ_FLAGS, irq::RX_DONE);
        assert_eq!(chip.register(regs::REG_IRQ_FLAGS), irq::VALID_HEADER);
        chip.write(regs::REG_IRQ_FLAGS_MASK, irq::TX_DONE);
        chip.raise(irq::TX_DONE);
        assert_eq!(chip.register(regs::REG_IRQ_FLAGS), irq::VALID_HEADER);
    }

    #[test]
    fn fifo_pointer_auto_increments_and_wraps() {
        let mut chip = Chip::new();
        chip.write(regs::REG_OP_MODE, 0x00);
        chip.write(regs::REG_OP_MODE, 0x81);
        chip.write(regs::REG_FIFO_ADDR_PTR, 0xFF);
        chip.write(regs::REG_FIFO, 1);
        chip.write(regs::REG_FIFO, 2);
        assert_eq!(chip.register(regs::REG_FIFO_ADDR_PTR), 1);
        assert_eq!((chip.fifo()[255], chip.fifo()[0]), (1, 2));
        chip.write(regs::REG_VERSION, 0x99);
        assert_eq!(chip.read(regs::REG_VERSION), 0x12);
    }
}

//! SX1276 register map (LoRa page) and the bit values the driver and the simulator share.
//!
//! Names follow the Semtech datasheet (section 6.4, "LoRa mode register map") so that a reader can check every
//! value against it. Only what the LoRa packet engine needs is listed.

/// FIFO read/write access; the address pointer is `REG_FIFO_ADDR_PTR`.
pub const REG_FIFO: u8 = 0x00;
/// Operating mode and LoRa/FSK selection.
pub const REG_OP_MODE: u8 = 0x01;
/// Carrier frequency, most significant byte (Frf = f · 2^19 / 32 MHz).
pub const REG_FRF_MSB: u8 = 0x06;
/// Carrier frequency, middle byte.
pub const REG_FRF_MID: u8 = 0x07;
/// Carrier frequency, least significant byte.
pub const REG_FRF_LSB: u8 = 0x08;
/// PA selection and output power.
pub const REG_PA_CONFIG: u8 = 0x09;
/// Over-current protection.
pub const REG_OCP: u8 = 0x0B;
/// SPI interface address pointer in the FIFO.
pub const REG_FIFO_ADDR_PTR: u8 = 0x0D;
/// Where the transmitter reads the payload from.
pub const REG_FIFO_TX_BASE_ADDR: u8 = 0x0E;
/// Where the receiver starts writing payloads.
pub const REG_FIFO_RX_BASE_ADDR: u8 = 0x0F;
/// Start address of the last packet received.
pub const REG_FIFO_RX_CURRENT_ADDR: u8 = 0x10;
/// IRQ mask: a set bit keeps the matching flag from being raised.
pub const REG_IRQ_FLAGS_MASK: u8 = 0x11;
/// IRQ flags, write 1 to clear.
pub const REG_IRQ_FLAGS: u8 = 0x12;
/// Number of payload bytes of the last packet received.
pub const REG_RX_NB_BYTES: u8 = 0x13;
/// SNR of the last packet, two's complement, in quarter dB.
pub const REG_PKT_SNR_VALUE: u8 = 0x19;
/// RSSI of the last packet (raw; see [`crate::sx1276::packet_rssi_dbm`]).
pub const REG_PKT_RSSI_VALUE: u8 = 0x1A;
/// Current RSSI (raw).
pub const REG_RSSI_VALUE: u8 = 0x1B;
/// Hop channel; bit 6 tells whether the received header announced a payload CRC.
pub const REG_HOP_CHANNEL: u8 = 0x1C;
/// Bandwidth, coding rate, implicit header.
pub const REG_MODEM_CONFIG1: u8 = 0x1D;
/// Spreading factor, TX continuous, payload CRC on.
pub const REG_MODEM_CONFIG2: u8 = 0x1E;
/// Preamble length, most significant byte.
pub const REG_PREAMBLE_MSB: u8 = 0x20;
/// Preamble length, least significant byte.
pub const REG_PREAMBLE_LSB: u8 = 0x21;
/// Payload length for transmission (and reception in implicit header mode).
pub const REG_PAYLOAD_LENGTH: u8 = 0x22;
/// Maximum payload length accepted by the receiver.
pub const REG_MAX_PAYLOAD_LENGTH: u8 = 0x23;
/// Current value of the RX data buffer pointer.
pub const REG_FIFO_RX_BYTE_ADDR: u8 = 0x25;
/// Low data rate optimisation, AGC auto.
pub const REG_MODEM_CONFIG3: u8 = 0x26;
/// I/Q inversion (bit 6).
pub const REG_INVERT_IQ: u8 = 0x33;
/// LoRa sync word. RadioHead never writes it, so both ends use the chip default 0x12.
pub const REG_SYNC_WORD: u8 = 0x39;
/// DIO0..DIO3 mapping.
pub const REG_DIO_MAPPING1: u8 = 0x40;
/// Silicon revision: 0x12 on SX1276/77/78/79.
pub const REG_VERSION: u8 = 0x42;
/// High-power (+20 dBm) PA DAC setting.
pub const REG_PA_DAC: u8 = 0x4D;

/// Bit 7 of `REG_OP_MODE`: LoRa (1) or FSK/OOK (0); writable only in Sleep.
pub const LONG_RANGE_MODE: u8 = 0x80;
/// Mask of the mode bits in `REG_OP_MODE`.
pub const MODE_MASK: u8 = 0x07;
/// Sleep: lowest power, FIFO not accessible (and cleared).
pub const MODE_SLEEP: u8 = 0x00;
/// Standby ("idle" in RadioHead).
pub const MODE_STDBY: u8 = 0x01;
/// Transmit one packet, then back to standby.
pub const MODE_TX: u8 = 0x03;
/// Continuous receive.
pub const MODE_RX_CONTINUOUS: u8 = 0x05;
/// Single receive, back to standby after one packet.
pub const MODE_RX_SINGLE: u8 = 0x06;
/// Channel activity detection.
pub const MODE_CAD: u8 = 0x07;

/// `REG_IRQ_FLAGS` bits.
pub mod irq {
    /// Receive timeout (RX single only).
    pub const RX_TIMEOUT: u8 = 0x80;
    /// A packet was received.
    pub const RX_DONE: u8 = 0x40;
    /// The payload CRC of the received packet was wrong.
    pub const PAYLOAD_CRC_ERROR: u8 = 0x20;
    /// A valid header was received.
    pub const VALID_HEADER: u8 = 0x10;
    /// Transmission finished.
    pub const TX_DONE: u8 = 0x08;
    /// Channel activity detection finished.
    pub const CAD_DONE: u8 = 0x04;
    /// FHSS channel change.
    pub const FHSS_CHANGE_CHANNEL: u8 = 0x02;
    /// Channel activity detected.
    pub const CAD_DETECTED: u8 = 0x01;
}

/// `REG_HOP_CHANNEL` bit 6: the received header said the payload carries a CRC.
pub const RX_PAYLOAD_CRC_IS_ON: u8 = 0x40;

/// `REG_DIO_MAPPING1` value that routes RxDone to DIO0.
pub const DIO0_RX_DONE: u8 = 0x00;
/// `REG_DIO_MAPPING1` value that routes TxDone to DIO0.
pub const DIO0_TX_DONE: u8 = 0x40;

/// `REG_PA_CONFIG` bit 7: output on PA_BOOST (the only PA pin wired on RFM95/96 and the Dragino HAT).
pub const PA_SELECT_BOOST: u8 = 0x80;
/// `REG_PA_DAC` default: normal PA_BOOST operation.
pub const PA_DAC_DISABLE: u8 = 0x04;
/// `REG_PA_DAC` +20 dBm operation on PA_BOOST.
pub const PA_DAC_ENABLE: u8 = 0x07;

/// Expected `REG_VERSION` value.
pub const SX1276_VERSION: u8 = 0x12;

/// Crystal frequency of every SX1276 module we support.
pub const FXOSC_HZ: u64 = 32_000_000;

/// Register value for a carrier frequency: Frf = f · 2^19 / FXOSC, truncated as RadioHead does.
pub fn frf_from_hz(frequency_hz: u32) -> u32 {
    // 2^19 · 1.02 GHz < 2^50, so u64 cannot overflow.
    ((u64::from(frequency_hz) << 19) / FXOSC_HZ) as u32
}

/// Carrier frequency in Hz for a register value (inverse of [`frf_from_hz`], rounded down).
pub fn hz_from_frf(frf: u32) -> u32 {
    ((u64::from(frf) * FXOSC_HZ) >> 19) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frf_matches_the_datasheet_formula() {
        assert_eq!(frf_from_hz(868_000_000), 0xD9_0000);
        assert_eq!(frf_from_hz(434_000_000), 0x6C_8000);
        assert_eq!(frf_from_hz(915_000_000), 0xE4_C000);
        assert_eq!(hz_from_frf(0xD9_0000), 868_000_000);
    }
}

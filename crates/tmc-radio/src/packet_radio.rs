//! The packet interface the datagram layers are written against, so they run on any chip family (the SX1276
//! driver in [`crate::sx1276`] today), on the simulator, or on a test double alike.
//!
//! Nothing here belongs to one chip: a packet is bytes with the link quality they came with, a reception is a
//! packet, a packet the radio threw away, or nothing, and an error is either the caller's (a payload no LoRa
//! radio sends) or the chip's own, boxed, so its message still says what to check.

use core::time::Duration;
use std::error::Error as StdError;

use thiserror::Error;

use crate::frame::MAX_FRAME_LEN;

/// A half-duplex packet radio.
pub trait PacketRadio {
    /// Sends one packet, blocking until it is on air.
    fn transmit(&mut self, payload: &[u8]) -> Result<(), PacketRadioError>;
    /// Listens for up to `timeout`; returns after the first packet, good or bad.
    fn receive(&mut self, timeout: Duration) -> Result<Reception, PacketRadioError>;
    /// Time on air of a packet of `len` bytes.
    fn time_on_air(&self, len: usize) -> Duration;
}

impl<T: PacketRadio + ?Sized> PacketRadio for &mut T {
    fn transmit(&mut self, payload: &[u8]) -> Result<(), PacketRadioError> {
        (**self).transmit(payload)
    }

    fn receive(&mut self, timeout: Duration) -> Result<Reception, PacketRadioError> {
        (**self).receive(timeout)
    }

    fn time_on_air(&self, len: usize) -> Duration {
        (**self).time_on_air(len)
    }
}

/// Why a [`PacketRadio`] failed.
#[derive(Debug, Error)]
pub enum PacketRadioError {
    /// The payload is empty or longer than a LoRa packet: the caller's mistake, not the chip's.
    #[error("a payload of {len} bytes cannot be sent: 1..={MAX_FRAME_LEN} bytes")]
    PayloadLength {
        /// Payload length.
        len: usize,
    },
    /// The chip, or the bus and lines to it, failed; the chip module's own error says what and what to check.
    #[error(transparent)]
    Chip(Box<dyn StdError + Send + Sync + 'static>),
}

impl PacketRadioError {
    /// Wraps a chip's own error.
    pub fn chip(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::Chip(Box::new(error))
    }

    /// The chip's own error, if it is one of type `E` (diagnostics and tests of a given chip).
    pub fn chip_error<E: StdError + 'static>(&self) -> Option<&E> {
        match self {
            Self::Chip(error) => error.downcast_ref(),
            Self::PayloadLength { .. } => None,
        }
    }
}

/// Why a received packet was thrown away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// The payload failed its CRC.
    CrcError,
    /// The header announced no payload CRC while we require one.
    NoCrc,
}

/// One valid packet with its link quality.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxPacket {
    buf: [u8; MAX_FRAME_LEN],
    len: u8,
    /// Packet RSSI, dBm.
    pub rssi_dbm: i16,
    /// Packet SNR in quarter dB.
    pub snr_quarter_db: i8,
}

impl RxPacket {
    /// A packet whose payload is the first `len` bytes of `buf` (a driver reads straight into one; no LoRa
    /// packet is longer than a `u8` counts).
    pub fn from_buffer(
        buf: [u8; MAX_FRAME_LEN],
        len: u8,
        rssi_dbm: i16,
        snr_quarter_db: i8,
    ) -> Self {
        Self {
            buf,
            len,
            rssi_dbm,
            snr_quarter_db,
        }
    }

    /// A packet carrying a copy of `payload`; `None` when it is longer than a LoRa packet.
    pub fn new(payload: &[u8], rssi_dbm: i16, snr_quarter_db: i8) -> Option<Self> {
        let len = u8::try_from(payload.len()).ok()?;
        let mut buf = [0u8; MAX_FRAME_LEN];
        buf[..payload.len()].copy_from_slice(payload);
        Some(Self::from_buffer(buf, len, rssi_dbm, snr_quarter_db))
    }

    /// The received bytes.
    pub fn payload(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// SNR in dB.
    pub fn snr_db(&self) -> f32 {
        f32::from(self.snr_quarter_db) / 4.0
    }
}

/// Outcome of one wait for a packet.
// The packet stays inline (260 bytes) on purpose: no allocation per received frame.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reception {
    /// A valid packet.
    Packet(RxPacket),
    /// A packet arrived but failed the CRC rules; it was dropped and counted.
    Rejected(RejectReason),
    /// Nothing within the timeout.
    Timeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_hold_up_to_255_bytes() {
        let packet = RxPacket::new(&[7; 255], -80, -6).unwrap();
        assert_eq!(packet.payload(), &[7; 255][..]);
        assert_eq!(packet.snr_db(), -1.5);
        assert_eq!(RxPacket::new(&[0; 256], 0, 0), None);
        assert_eq!(RxPacket::new(&[], 0, 0).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn a_chip_error_keeps_its_message_and_type() {
        #[derive(Debug, Error)]
        #[error("the chip is on fire")]
        struct OnFire;
        let error = PacketRadioError::chip(OnFire);
        assert_eq!(error.to_string(), "the chip is on fire");
        assert!(error.chip_error::<OnFire>().is_some());
        assert!(error.chip_error::<std::io::Error>().is_none());
        assert!(PacketRadioError::PayloadLength { len: 0 }
            .chip_error::<OnFire>()
            .is_none());
    }
}

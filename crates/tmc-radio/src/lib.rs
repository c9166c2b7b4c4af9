//! TMC's LoRa radio link: bytes in, bytes out, over an SX1276, on air compatible with RadioHead (RH_RF95 +
//! RHDatagram + RHReliableDatagram).
//!
//! Layers, each in its own module:
//! - [`regs`], [`modem`]: the chip's registers and the LoRa settings they encode.
//! - [`sx1276`]: the blocking driver, generic over embedded-hal 1.0 and the [`hal::Dio0`] wait.
//! - [`frame`], [`datagram`], [`reliable`]: RadioHead headers, address filtering, acknowledged delivery.
//! - [`airtime`], [`duty_cycle`], [`region`]: what a frame costs on air and what the law allows.
//! - [`linux`] (feature `linux`): spidev + gpio character device backend for the Raspberry Pi.
//!
//! The register-level simulator that the tests run the driver on is the `tmc-radio-sim` crate.

pub mod airtime;
pub mod datagram;
pub mod duty_cycle;
pub mod frame;
pub mod hal;
#[cfg(feature = "linux")]
pub mod linux;
pub mod modem;
pub mod packet_radio;
pub mod region;
pub mod regs;
pub mod reliable;
pub mod sx1276;

pub use airtime::{airtime_report, time_on_air, AirtimeReport};
pub use datagram::{Datagram, LinkError, ReceivedFrame};
pub use duty_cycle::{DutyCycle, DutyCycleLimiter};
pub use frame::{Frame, Header, BROADCAST};
pub use hal::{Clock, Dio0, StdClock};
pub use modem::{Bandwidth, CodingRate, LowDataRateOptimize, ModemConfig, SpreadingFactor};
pub use packet_radio::PacketRadio;
pub use region::{Band, Region};
pub use reliable::{Delivery, ReliableConfig, ReliableDatagram};
pub use sx1276::{RadioConfig, RadioError, Reception, RxPacket, Sx1276};

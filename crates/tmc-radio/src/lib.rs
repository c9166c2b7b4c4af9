//! TMC's LoRa radio link: bytes in, bytes out, over an SX1276, on air compatible with RadioHead (RH_RF95 +
//! RHDatagram + RHReliableDatagram).
//!
//! Layers, each in its own module:
//! - [`regs`], [`modem`]: the chip's registers and the LoRa settings they encode.
//! - [`sx1276`]: the blocking driver, generic over embedded-hal 1.0 and the [`hal::Dio0`] wait.
//! - [`packet_radio`]: the chip-neutral seam: [`PacketRadio`] and its packet, reception and error types. A
//!   chip family plugs in by implementing it; everything above knows no chip.
//! - [`frame`], [`datagram`], [`reliable`]: RadioHead headers, address filtering, acknowledged delivery.
//! - [`airtime`], [`duty_cycle`], [`region`]: what a frame costs on air and what the law allows.
//! - [`linux`] (feature `linux`): spidev + gpio character device backend for the Raspberry Pi.
//!
//! The register-level simulator that the tests run the driver on is the `tmc-radio-sim` crate. The layers above
//! the seam are tested on `scripted` (feature `test-double`): a packet-level double that plays a script of
//! receptions in virtual time and records what was sent.

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
#[cfg(any(test, feature = "test-double"))]
pub mod scripted;
pub mod sx1276;

pub use airtime::{airtime_report, time_on_air, AirtimeReport};
pub use datagram::{Datagram, LinkError, OnAir, ReceivedFrame, TransmitObserver};
pub use duty_cycle::{DutyCycle, DutyCycleLimiter, PastTransmission};
pub use frame::{Frame, Header, BROADCAST};
pub use hal::{Clock, Dio0, StdClock};
pub use modem::{Bandwidth, CodingRate, LowDataRateOptimize, ModemConfig, SpreadingFactor};
pub use packet_radio::{PacketRadio, PacketRadioError, Reception, RejectReason, RxPacket};
pub use region::{Band, Region};
pub use reliable::{Delivery, ReliableConfig, ReliableDatagram};
#[cfg(any(test, feature = "test-double"))]
pub use scripted::{ScriptedClock, ScriptedRadio};
pub use sx1276::{RadioConfig, RadioError, Sx1276};

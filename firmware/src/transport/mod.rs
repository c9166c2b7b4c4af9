//! Transports for the sensor node.
//!
//! - [`bench::BenchTransport`] (default): prints each outgoing MQTT packet as
//!   a hex line `tx: 10 13 00 04 ...` on the UART0 console and answers like a
//!   loopback broker, so bench bring-up shows the whole cycle without Wi-Fi.
//! - `sdk` (feature `nonos-sdk`, not built by default): the documented stub
//!   for the real Wi-Fi + TLS transport over Espressif's NONOS SDK.
pub mod bench;
#[cfg(feature = "nonos-sdk")]
pub mod sdk;

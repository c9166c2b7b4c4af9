//! Transports for the sensor node.
//!
//! - [`bench::BenchTransport`] (default build): prints each outgoing MQTT
//!   packet as a hex line `tx: 10 13 00 04 ...` on the UART0 console and
//!   answers like a loopback broker, so bench bring-up shows the whole cycle
//!   without Wi-Fi.
//! - `sdk::SdkTransport` (feature `nonos-sdk`): Wi-Fi station + plain TCP
//!   over Espressif's NONOS SDK espconn API (no TLS yet).
//! - [`ring::ByteRing`]: the fixed byte FIFO the SDK transport buffers in.
pub mod bench;
pub mod ring;
#[cfg(feature = "nonos-sdk")]
pub mod sdk;

//! Transports for the sensor node.
//!
//! - [`bench::BenchTransport`] (default build): prints each outgoing MQTT
//!   packet as a hex line `tx: 10 13 00 04 ...` on the UART0 console and
//!   answers like a loopback broker, so bench bring-up shows the whole cycle
//!   without Wi-Fi.
//! - `sdk::SdkSocket` (feature `nonos-sdk`): Wi-Fi station + TCP over
//!   Espressif's NONOS SDK espconn API, as the byte stream under the node's
//!   TLS client (`tmc_node_tls::TlsTransport`); blocking calls suspend the
//!   node's coroutine (`crate::coroutine`).
//! - [`ring::ByteRing`]: the fixed byte FIFO the SDK transport buffers in.
pub mod bench;
pub mod ring;
#[cfg(feature = "nonos-sdk")]
pub mod sdk;

//! # tmc-sensor-core
//!
//! Everything of the ESP8266 sensor firmware that is not hardware, tested on the host:
//!
//! - [`reading`]: THE sensor payload, `{"id":"sensor1","seq":17,"adc":512}`, written into a caller's
//!   buffer, and the simulated ADC waveform the firmware uses when no sensor is wired (and that
//!   `tmc-sensor-sim` publishes).
//! - [`schedule`]: the publish grid (a fixed interval without drift, missed slots skipped and counted)
//!   and the reconnect back-off (exponential, "equal jitter").
//! - [`mqtt`]: an MQTT 3.1.1 client codec (CONNECT, PUBLISH QoS 0/1, PUBACK, PINGREQ, DISCONNECT out;
//!   CONNACK, PUBACK, PINGRESP, SUBACK, PUBLISH in) and the client's timers: packet ids, one QoS 1
//!   publish in flight with retry, keep-alive.
//! - [`node`]: the sensor node's application logic as a state machine over a [`node::Transport`]
//!   (byte stream to the broker), a [`node::Sensor`] and a log sink: connect, CONNECT/CONNACK, a
//!   reading per schedule tick with a per-boot sequence number, PUBLISH QoS 1 with DUP retry,
//!   keep-alive, back-off and reconnect, a ring of [`node::QUEUE_LEN`] unsent readings.
//!
//! - [`sim`] (feature `sim`, needs `alloc`): the broker and ADC doubles the node's tests use on the host
//!   and on the lx106 in QEMU.
//!
//! `#![no_std]` without `alloc` (but for `sim`): output goes into `&mut [u8]` the caller owns, input is borrowed. No
//! clock is read here: every function that needs time takes `now_ms`, a monotonic millisecond count.
//! No atomics, no floats, no `u128`, so it builds for a 32-bit core without atomic compare-and-swap.
//! Nothing here panics on any input (the MQTT decoder is fuzzed: `crates/tmc-sensor-core/fuzz`).

#![no_std]

#[cfg(test)]
extern crate std;

#[cfg(feature = "sim")]
extern crate alloc;

pub mod config;
pub mod mqtt;
pub mod node;
pub mod reading;
pub mod schedule;
#[cfg(feature = "sim")]
pub mod sim;

pub use reading::{adc, fnv1a32, reading_len, write_reading, BufferTooSmall};
pub use schedule::{Backoff, PublishSchedule, Tick};

//! Radio board presets for TMC: one parser, precise errors.
//!
//! A preset (`board-config/*.toml`, [`BoardPreset`]) says which SPI device and GPIO lines the SX1276 is wired
//! to, and the frequency, power, node address and modem settings it runs with, checked against the band rules
//! of the region. The site file (`board-config/site.toml`) is not about the radio board: it is in tmc-config.

mod error;
mod preset;
mod raw;

pub use error::BoardError;
pub use preset::{
    BoardPreset, ChipSelectMode, GpioSettings, RadioSettings, SpiSettings, HEADER_GPIO_MAX,
};

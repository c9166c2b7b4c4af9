//! Board configuration files for TMC: one parser, precise errors.
//!
//! Today this holds the radio board presets of `board-config/*.toml` ([`BoardPreset`]): which SPI device and
//! GPIO lines the SX1276 is wired to, and the frequency, power, node address and modem settings it runs with,
//! checked against the band rules of the region. The site file will live here too.

mod error;
mod preset;
mod raw;
pub mod site;

pub use error::BoardError;
pub use preset::{
    BoardPreset, ChipSelectMode, GpioSettings, RadioSettings, SpiSettings, HEADER_GPIO_MAX,
};
pub use site::{SiteConfig, SiteError};

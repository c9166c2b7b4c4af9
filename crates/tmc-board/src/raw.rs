//! The file as written, before validation. Unknown fields are errors: a typo must not silently fall back to a
//! default.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPreset {
    pub board: RawBoard,
    pub spi: RawSpi,
    pub gpio: RawGpio,
    pub radio: RawRadio,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBoard {
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSpi {
    pub device: String,
    pub clock_hz: u32,
    pub chip_select: RawChipSelect,
    pub cs_gpio: Option<u32>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawChipSelect {
    Kernel,
    Gpio,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGpio {
    pub chip: String,
    pub dio0: u32,
    pub reset: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRadio {
    pub region: String,
    pub frequency_mhz: f64,
    pub tx_power_dbm: i64,
    pub node_address: i64,
    pub modem: RawModem,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModem {
    pub spreading_factor: i64,
    pub bandwidth_khz: f64,
    pub coding_rate: String,
    pub preamble: Option<i64>,
    pub crc: Option<bool>,
}

//! A validated radio board preset.

use std::path::{Path, PathBuf};

use tmc_radio::modem::{Bandwidth, CodingRate, LowDataRateOptimize, ModemConfig, SpreadingFactor};
use tmc_radio::region::{Band, Region};
use tmc_radio::sx1276::{MAX_TX_POWER_DBM, MIN_TX_POWER_DBM};
use tmc_radio::{DutyCycle, RadioConfig, BROADCAST};

use crate::error::BoardError;
use crate::raw::{RawChipSelect, RawPreset};

/// Highest BCM GPIO number on the Raspberry Pi 40-pin header.
pub const HEADER_GPIO_MAX: u32 = 27;

/// Who drives the SX1276 NSS pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChipSelectMode {
    /// The kernel, as the spidev device's CE line (for Dragino: `dtoverlay=spi0-1cs,cs0_pin=25`).
    Kernel,
    /// TMC drives this GPIO line around each transfer.
    Gpio(u32),
}

/// SPI wiring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpiSettings {
    /// `/dev/spidevB.C`.
    pub device: PathBuf,
    /// Bus number B.
    pub bus: u32,
    /// Clock in Hz.
    pub clock_hz: u32,
    /// Chip select.
    pub chip_select: ChipSelectMode,
}

/// GPIO wiring (line offsets on `chip`, BCM numbers on a Pi).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpioSettings {
    /// `/dev/gpiochipN`.
    pub chip: PathBuf,
    /// DIO0 line.
    pub dio0: u32,
    /// RESET line.
    pub reset: u32,
}

/// What goes on air.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RadioSettings {
    /// Region whose rules apply.
    pub region: Region,
    /// Sub-band the frequency falls in.
    pub band: &'static Band,
    /// Frequency, power and modem.
    pub config: RadioConfig,
    /// This node's RadioHead address (0..=254).
    pub node_address: u8,
}

impl RadioSettings {
    /// Duty cycle of the band, for the limiter.
    pub fn duty_cycle(&self) -> DutyCycle {
        self.band.duty_cycle
    }
}

/// A validated board preset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardPreset {
    /// File it came from.
    pub path: PathBuf,
    /// Human name of the board.
    pub name: String,
    /// SPI wiring.
    pub spi: SpiSettings,
    /// GPIO wiring.
    pub gpio: GpioSettings,
    /// Radio settings.
    pub radio: RadioSettings,
}

/// Validation context: the file, to name it in every error.
struct Check<'a> {
    path: &'a Path,
}

impl Check<'_> {
    fn invalid(&self, field: &'static str, problem: impl Into<String>) -> BoardError {
        BoardError::Invalid {
            path: self.path.to_owned(),
            field,
            problem: problem.into(),
        }
    }

    /// `/dev/<prefix>N[.M]` → the numbers.
    fn device_numbers(
        &self,
        field: &'static str,
        value: &str,
        prefix: &str,
        parts: usize,
    ) -> Result<Vec<u32>, BoardError> {
        let example = if parts == 2 {
            format!("{prefix}0.0")
        } else {
            format!("{prefix}0")
        };
        let bad = || {
            self.invalid(
                field,
                format!("{value:?} is not a device path like {example:?}"),
            )
        };
        let rest = value.strip_prefix(prefix).ok_or_else(bad)?;
        let numbers: Vec<u32> = rest
            .split('.')
            .map(|n| n.parse::<u32>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        if numbers.len() != parts {
            return Err(bad());
        }
        Ok(numbers)
    }

    fn header_gpio(&self, field: &'static str, line: u32) -> Result<u32, BoardError> {
        if line > HEADER_GPIO_MAX {
            return Err(self.invalid(
                field,
                format!("unknown pin GPIO{line}: the 40-pin header has GPIO0..=GPIO{HEADER_GPIO_MAX} (BCM numbering)"),
            ));
        }
        Ok(line)
    }
}

/// GPIOs that carry the SPI bus itself (MISO, MOSI, SCLK) and so cannot be DIO0, RESET or a chip select.
fn spi_bus_pins(bus: u32) -> &'static [(u32, &'static str)] {
    match bus {
        0 => &[(9, "SPI0 MISO"), (10, "SPI0 MOSI"), (11, "SPI0 SCLK")],
        1 => &[(19, "SPI1 MISO"), (20, "SPI1 MOSI"), (21, "SPI1 SCLK")],
        _ => &[],
    }
}

impl BoardPreset {
    /// Reads and validates a preset file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BoardError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| BoardError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Validates preset text; `path` names it in errors.
    pub fn from_toml_str(text: &str, path: impl AsRef<Path>) -> Result<Self, BoardError> {
        let path = path.as_ref();
        let raw: RawPreset = toml::from_str(text).map_err(|e| BoardError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let check = Check { path };

        // SPI
        let spi_numbers = check.device_numbers("spi.device", &raw.spi.device, "/dev/spidev", 2)?;
        let bus = spi_numbers[0];
        if !(100_000..=10_000_000).contains(&raw.spi.clock_hz) {
            return Err(check.invalid(
                "spi.clock_hz",
                format!(
                    "{} Hz is outside 100 kHz..=10 MHz (the SX1276 SPI runs at most at 10 MHz)",
                    raw.spi.clock_hz
                ),
            ));
        }
        let chip_select = match (raw.spi.chip_select, raw.spi.cs_gpio) {
            (RawChipSelect::Kernel, None) => ChipSelectMode::Kernel,
            (RawChipSelect::Kernel, Some(_)) => {
                return Err(check.invalid(
                    "spi.cs_gpio",
                    "only used with chip_select = \"gpio\"; remove it or change chip_select",
                ))
            }
            (RawChipSelect::Gpio, None) => {
                return Err(check.invalid(
                    "spi.cs_gpio",
                    "missing: chip_select = \"gpio\" needs the GPIO line that drives NSS",
                ))
            }
            (RawChipSelect::Gpio, Some(line)) => {
                ChipSelectMode::Gpio(check.header_gpio("spi.cs_gpio", line)?)
            }
        };

        // GPIO
        check.device_numbers("gpio.chip", &raw.gpio.chip, "/dev/gpiochip", 1)?;
        let dio0 = check.header_gpio("gpio.dio0", raw.gpio.dio0)?;
        let reset = check.header_gpio("gpio.reset", raw.gpio.reset)?;
        let mut lines: Vec<(&'static str, u32)> = vec![("gpio.dio0", dio0), ("gpio.reset", reset)];
        if let ChipSelectMode::Gpio(line) = chip_select {
            lines.push(("spi.cs_gpio", line));
        }
        for (i, &(field, line)) in lines.iter().enumerate() {
            if let Some(&(other, _)) = lines[..i].iter().find(|(_, l)| *l == line) {
                return Err(check.invalid(field, format!("GPIO{line} is already used by {other}")));
            }
            if let Some((_, role)) = spi_bus_pins(bus).iter().find(|(pin, _)| *pin == line) {
                return Err(
                    check.invalid(field, format!("GPIO{line} is {role}, taken by the SPI bus"))
                );
            }
        }

        // Radio
        let radio = &raw.radio;
        let region: Region =
            radio
                .region
                .parse()
                .map_err(|e: tmc_radio::region::UnknownRegion| {
                    check.invalid("radio.region", e.to_string())
                })?;
        let modem = Self::modem(&check, &raw.radio.modem)?;
        let frequency_hz = Self::frequency(&check, region, radio.frequency_mhz)?;
        let band = Self::band(&check, region, frequency_hz, modem.bandwidth)?;
        let tx_power_dbm = Self::tx_power(&check, band, radio.tx_power_dbm)?;
        let node_address = u8::try_from(radio.node_address)
            .ok()
            .filter(|a| *a != BROADCAST)
            .ok_or_else(|| {
                check.invalid(
                    "radio.node_address",
                    format!(
                        "{} is not a node address: 0..=254 (255 is broadcast)",
                        radio.node_address
                    ),
                )
            })?;

        Ok(BoardPreset {
            path: path.to_owned(),
            name: raw.board.name,
            spi: SpiSettings {
                device: PathBuf::from(&raw.spi.device),
                bus,
                clock_hz: raw.spi.clock_hz,
                chip_select,
            },
            gpio: GpioSettings {
                chip: PathBuf::from(&raw.gpio.chip),
                dio0,
                reset,
            },
            radio: RadioSettings {
                region,
                band,
                config: RadioConfig {
                    frequency_hz,
                    tx_power_dbm,
                    modem,
                },
                node_address,
            },
        })
    }

    fn modem(check: &Check<'_>, raw: &crate::raw::RawModem) -> Result<ModemConfig, BoardError> {
        let spreading_factor = u8::try_from(raw.spreading_factor)
            .ok()
            .and_then(SpreadingFactor::from_value)
            .ok_or_else(|| {
                check.invalid(
                    "radio.modem.spreading_factor",
                    format!("{} is not supported: 7..=12", raw.spreading_factor),
                )
            })?;
        let bandwidth = Bandwidth::from_khz(raw.bandwidth_khz).ok_or_else(|| {
            check.invalid(
                "radio.modem.bandwidth_khz",
                format!("{} kHz is not an SX1276 bandwidth: 7.8, 10.4, 15.6, 20.8, 31.25, 41.7, 62.5, 125, 250 or 500", raw.bandwidth_khz),
            )
        })?;
        let coding_rate = raw
            .coding_rate
            .strip_prefix("4/")
            .and_then(|d| d.parse::<u8>().ok())
            .and_then(CodingRate::from_denominator)
            .ok_or_else(|| {
                check.invalid(
                    "radio.modem.coding_rate",
                    format!(
                        "{:?} is not one of \"4/5\", \"4/6\", \"4/7\", \"4/8\"",
                        raw.coding_rate
                    ),
                )
            })?;
        let preamble_len = match raw.preamble {
            None => ModemConfig::RADIOHEAD_DEFAULT.preamble_len,
            Some(p) => u16::try_from(p).ok().filter(|p| *p >= 6).ok_or_else(|| {
                check.invalid(
                    "radio.modem.preamble",
                    format!("{p} symbols is not allowed: 6..=65535"),
                )
            })?,
        };
        Ok(ModemConfig {
            spreading_factor,
            bandwidth,
            coding_rate,
            preamble_len,
            crc: raw.crc.unwrap_or(true),
            explicit_header: true,
            low_data_rate_optimize: LowDataRateOptimize::Auto,
        })
    }

    fn frequency(check: &Check<'_>, region: Region, mhz: f64) -> Result<u32, BoardError> {
        let hz = mhz * 1e6;
        if !hz.is_finite() || !(137e6..=1020e6).contains(&hz) {
            return Err(check.invalid(
                "radio.frequency_mhz",
                format!("{mhz} MHz is outside the SX1276 range 137–1020 MHz"),
            ));
        }
        let hz = hz.round() as u32;
        if region.band_for(hz).is_none() {
            let bands: Vec<String> = region
                .bands()
                .iter()
                .map(|b| {
                    format!(
                        "{:.3}–{:.3}",
                        f64::from(b.low_hz) / 1e6,
                        f64::from(b.high_hz) / 1e6
                    )
                })
                .collect();
            return Err(check.invalid(
                "radio.frequency_mhz",
                format!(
                    "{mhz} MHz is outside every {region} band (MHz: {})",
                    bands.join(", ")
                ),
            ));
        }
        Ok(hz)
    }

    fn band(
        check: &Check<'_>,
        region: Region,
        hz: u32,
        bandwidth: Bandwidth,
    ) -> Result<&'static Band, BoardError> {
        let band = region.band_for(hz).ok_or_else(|| {
            check.invalid(
                "radio.frequency_mhz",
                format!("{hz} Hz is outside every {region} band"),
            )
        })?;
        // The whole channel, not only its centre, must lie in the region's bands. It may span
        // adjacent sub-bands (868.0 MHz, RadioHead's default, straddles h1.4 and h1.5): the strictest
        // of them governs duty cycle and power.
        let half = bandwidth.hz() / 2;
        let (low, high) = (hz - half, hz + half);
        let spanned: Vec<&'static Band> = region
            .bands()
            .iter()
            .filter(|b| b.low_hz < high && b.high_hz > low)
            .collect();
        let contiguous = spanned.windows(2).all(|w| w[0].high_hz == w[1].low_hz);
        let covered = spanned.first().is_some_and(|b| b.low_hz <= low)
            && spanned.last().is_some_and(|b| b.high_hz >= high);
        if !(contiguous && covered) {
            return Err(check.invalid(
                "radio.frequency_mhz",
                format!(
                    "a {bandwidth} channel at {} MHz spills over the edge of {band}",
                    f64::from(hz) / 1e6
                ),
            ));
        }
        let band = spanned
            .into_iter()
            .min_by_key(|b| (b.duty_cycle.ppm(), b.max_power_dbm))
            .unwrap_or(band);
        Ok(band)
    }

    fn tx_power(check: &Check<'_>, band: &Band, dbm: i64) -> Result<i8, BoardError> {
        let dbm = i8::try_from(dbm)
            .ok()
            .filter(|p| (MIN_TX_POWER_DBM..=MAX_TX_POWER_DBM).contains(p))
            .ok_or_else(|| check.invalid("radio.tx_power_dbm", format!("{dbm} dBm is outside the PA_BOOST range {MIN_TX_POWER_DBM}..={MAX_TX_POWER_DBM} dBm")))?;
        if dbm > band.max_power_dbm {
            return Err(check.invalid(
                "radio.tx_power_dbm",
                format!(
                    "{dbm} dBm is above the legal limit of {} dBm in {band}",
                    band.max_power_dbm
                ),
            ));
        }
        Ok(dbm)
    }

    /// The driver settings.
    pub fn radio_config(&self) -> RadioConfig {
        self.radio.config
    }

    /// Settings for tmc-radio's Linux backend.
    #[cfg(feature = "linux")]
    pub fn linux_pins(&self) -> tmc_radio::linux::LinuxRadioPins {
        use tmc_radio::linux::{ChipSelect, LinuxRadioPins};
        LinuxRadioPins {
            spi_device: self.spi.device.clone(),
            spi_clock_hz: self.spi.clock_hz,
            chip_select: match self.spi.chip_select {
                ChipSelectMode::Kernel => ChipSelect::Kernel,
                ChipSelectMode::Gpio(line) => ChipSelect::Gpio { line },
            },
            gpiochip: self.gpio.chip.clone(),
            dio0_line: self.gpio.dio0,
            reset_line: self.gpio.reset,
        }
    }
}

//! LoRa modem settings (spreading factor, bandwidth, coding rate, preamble, CRC) and their register encoding.

use core::fmt;
use core::time::Duration;

use thiserror::Error;

/// LoRa spreading factor. SF6 is left out: it only works in implicit-header mode, which RadioHead never uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpreadingFactor {
    /// 128 chips per symbol.
    Sf7,
    /// 256 chips per symbol.
    Sf8,
    /// 512 chips per symbol.
    Sf9,
    /// 1024 chips per symbol.
    Sf10,
    /// 2048 chips per symbol.
    Sf11,
    /// 4096 chips per symbol.
    Sf12,
}

impl SpreadingFactor {
    /// All spreading factors, fastest first.
    pub const ALL: [SpreadingFactor; 6] = [
        Self::Sf7,
        Self::Sf8,
        Self::Sf9,
        Self::Sf10,
        Self::Sf11,
        Self::Sf12,
    ];

    /// The spreading factor as a number (7..=12).
    pub fn value(self) -> u8 {
        match self {
            Self::Sf7 => 7,
            Self::Sf8 => 8,
            Self::Sf9 => 9,
            Self::Sf10 => 10,
            Self::Sf11 => 11,
            Self::Sf12 => 12,
        }
    }

    /// From a number; `None` outside 7..=12.
    pub fn from_value(sf: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.value() == sf)
    }
}

/// LoRa signal bandwidth, as the SX1276 offers it (RegModemConfig1 bits 7..4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bandwidth {
    /// 7.8 kHz (exactly 500/64 kHz).
    Khz7_8,
    /// 10.4 kHz (500/48 kHz).
    Khz10_4,
    /// 15.6 kHz (500/32 kHz).
    Khz15_6,
    /// 20.8 kHz (500/24 kHz).
    Khz20_8,
    /// 31.25 kHz.
    Khz31_25,
    /// 41.7 kHz (500/12 kHz).
    Khz41_7,
    /// 62.5 kHz.
    Khz62_5,
    /// 125 kHz (RadioHead default).
    Khz125,
    /// 250 kHz.
    Khz250,
    /// 500 kHz.
    Khz500,
}

impl Bandwidth {
    /// All bandwidths, narrowest first; the index is the register code.
    pub const ALL: [Bandwidth; 10] = [
        Self::Khz7_8,
        Self::Khz10_4,
        Self::Khz15_6,
        Self::Khz20_8,
        Self::Khz31_25,
        Self::Khz41_7,
        Self::Khz62_5,
        Self::Khz125,
        Self::Khz250,
        Self::Khz500,
    ];

    /// RegModemConfig1 bits 7..4.
    pub fn register_code(self) -> u8 {
        Self::ALL.iter().position(|b| *b == self).unwrap_or(7) as u8
    }

    /// From RegModemConfig1 bits 7..4; `None` for the reserved codes 10..=15.
    pub fn from_register_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// Exact bandwidth in Hz as a fraction (numerator, denominator): the narrow ones are 500 kHz divided by an
    /// integer, so keeping the fraction lets airtime come out exact to the nanosecond.
    pub fn hz_fraction(self) -> (u64, u64) {
        match self {
            Self::Khz7_8 => (500_000, 64),
            Self::Khz10_4 => (500_000, 48),
            Self::Khz15_6 => (500_000, 32),
            Self::Khz20_8 => (500_000, 24),
            Self::Khz31_25 => (500_000, 16),
            Self::Khz41_7 => (500_000, 12),
            Self::Khz62_5 => (500_000, 8),
            Self::Khz125 => (500_000, 4),
            Self::Khz250 => (500_000, 2),
            Self::Khz500 => (500_000, 1),
        }
    }

    /// Bandwidth in Hz (rounded down).
    pub fn hz(self) -> u32 {
        let (num, den) = self.hz_fraction();
        (num / den) as u32
    }

    /// The bandwidth whose nominal kHz value (as written in the datasheet: 7.8, 10.4, …, 125, 250, 500) is
    /// `khz`, within 0.05 kHz.
    pub fn from_khz(khz: f64) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|b| (b.nominal_khz() - khz).abs() < 0.05)
    }

    /// The datasheet's name for the bandwidth, in kHz.
    pub fn nominal_khz(self) -> f64 {
        match self {
            Self::Khz7_8 => 7.8,
            Self::Khz10_4 => 10.4,
            Self::Khz15_6 => 15.6,
            Self::Khz20_8 => 20.8,
            Self::Khz31_25 => 31.25,
            Self::Khz41_7 => 41.7,
            Self::Khz62_5 => 62.5,
            Self::Khz125 => 125.0,
            Self::Khz250 => 250.0,
            Self::Khz500 => 500.0,
        }
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} kHz", self.nominal_khz())
    }
}

/// Forward error correction rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodingRate {
    /// 4/5 (RadioHead default).
    Cr4_5,
    /// 4/6.
    Cr4_6,
    /// 4/7.
    Cr4_7,
    /// 4/8.
    Cr4_8,
}

impl CodingRate {
    /// The "CR" of the datasheet's airtime formula: 1 for 4/5 … 4 for 4/8; also the register code.
    pub fn index(self) -> u8 {
        match self {
            Self::Cr4_5 => 1,
            Self::Cr4_6 => 2,
            Self::Cr4_7 => 3,
            Self::Cr4_8 => 4,
        }
    }

    /// From the denominator of 4/x (5..=8).
    pub fn from_denominator(denominator: u8) -> Option<Self> {
        match denominator {
            5 => Some(Self::Cr4_5),
            6 => Some(Self::Cr4_6),
            7 => Some(Self::Cr4_7),
            8 => Some(Self::Cr4_8),
            _ => None,
        }
    }

    /// From RegModemConfig1 bits 3..1.
    pub fn from_register_code(code: u8) -> Option<Self> {
        Self::from_denominator(code.checked_add(4)?)
    }
}

/// Whether to set LowDataRateOptimize (RegModemConfig3 bit 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LowDataRateOptimize {
    /// On when the symbol time exceeds 16 ms, as the datasheet requires (SF11/SF12 at 125 kHz).
    #[default]
    Auto,
    /// Always on.
    On,
    /// Always off.
    Off,
}

/// Symbol time above which the datasheet mandates LowDataRateOptimize.
pub const LOW_DATA_RATE_SYMBOL_TIME: Duration = Duration::from_millis(16);

/// Everything that decides how a LoRa packet goes on air.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModemConfig {
    /// Spreading factor.
    pub spreading_factor: SpreadingFactor,
    /// Signal bandwidth.
    pub bandwidth: Bandwidth,
    /// Coding rate.
    pub coding_rate: CodingRate,
    /// Preamble length in symbols (the chip adds 4.25).
    pub preamble_len: u16,
    /// Payload CRC on.
    pub crc: bool,
    /// Explicit header (RadioHead always uses it).
    pub explicit_header: bool,
    /// LowDataRateOptimize policy.
    pub low_data_rate_optimize: LowDataRateOptimize,
}

impl Default for ModemConfig {
    fn default() -> Self {
        Self::RADIOHEAD_DEFAULT
    }
}

/// Register bytes that could not be understood as a LoRa modem configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModemDecodeError {
    /// Reserved bandwidth code in RegModemConfig1.
    #[error("RegModemConfig1 bandwidth code {0} is reserved")]
    Bandwidth(u8),
    /// Reserved coding-rate code in RegModemConfig1.
    #[error("RegModemConfig1 coding-rate code {0} is reserved")]
    CodingRate(u8),
    /// Spreading factor outside 7..=12.
    #[error("RegModemConfig2 spreading factor {0} is not supported (7..=12)")]
    SpreadingFactor(u8),
}

impl ModemConfig {
    /// RadioHead RH_RF95 `Bw125Cr45Sf128`: BW 125 kHz, CR 4/5, SF7, CRC on, explicit header, preamble 8.
    pub const RADIOHEAD_DEFAULT: ModemConfig = ModemConfig {
        spreading_factor: SpreadingFactor::Sf7,
        bandwidth: Bandwidth::Khz125,
        coding_rate: CodingRate::Cr4_5,
        preamble_len: 8,
        crc: true,
        explicit_header: true,
        low_data_rate_optimize: LowDataRateOptimize::Auto,
    };

    /// The RadioHead default with another spreading factor.
    pub fn with_spreading_factor(self, spreading_factor: SpreadingFactor) -> Self {
        Self {
            spreading_factor,
            ..self
        }
    }

    /// Symbol time 2^SF / BW, exact to the nanosecond (rounded to nearest).
    pub fn symbol_time(&self) -> Duration {
        Duration::from_nanos(self.quarter_symbols_to_ns(4))
    }

    /// Whether LowDataRateOptimize is in effect.
    pub fn low_data_rate_optimize_on(&self) -> bool {
        match self.low_data_rate_optimize {
            LowDataRateOptimize::On => true,
            LowDataRateOptimize::Off => false,
            LowDataRateOptimize::Auto => self.symbol_time() > LOW_DATA_RATE_SYMBOL_TIME,
        }
    }

    /// Converts a number of quarter symbols to nanoseconds (rounded to nearest), exactly.
    pub(crate) fn quarter_symbols_to_ns(&self, quarter_symbols: u64) -> u64 {
        let (bw_num, bw_den) = self.bandwidth.hz_fraction();
        let chips = 1u128 << self.spreading_factor.value();
        // t = qs/4 · 2^SF / (bw_num/bw_den) s
        let numerator = u128::from(quarter_symbols) * chips * 1_000_000_000 * u128::from(bw_den);
        let denominator = 4 * u128::from(bw_num);
        ((numerator + denominator / 2) / denominator) as u64
    }

    /// RegModemConfig1: Bw (7..4) | CodingRate (3..1) | ImplicitHeaderModeOn (0). RadioHead default 0x72.
    pub fn reg_modem_config1(&self) -> u8 {
        (self.bandwidth.register_code() << 4)
            | (self.coding_rate.index() << 1)
            | u8::from(!self.explicit_header)
    }

    /// RegModemConfig2: SpreadingFactor (7..4) | TxContinuousMode (3) = 0 | RxPayloadCrcOn (2) | SymbTimeout
    /// MSB (1..0) = 0. RadioHead default 0x74.
    pub fn reg_modem_config2(&self) -> u8 {
        (self.spreading_factor.value() << 4) | (u8::from(self.crc) << 2)
    }

    /// RegModemConfig3: LowDataRateOptimize (3) | AgcAutoOn (2) = 1. RadioHead default 0x04.
    pub fn reg_modem_config3(&self) -> u8 {
        (u8::from(self.low_data_rate_optimize_on()) << 3) | 0x04
    }

    /// Reads a configuration back from register values (the simulator uses it to time what a chip sends).
    pub fn from_registers(
        config1: u8,
        config2: u8,
        config3: u8,
        preamble_len: u16,
    ) -> Result<Self, ModemDecodeError> {
        let bw_code = config1 >> 4;
        let bandwidth =
            Bandwidth::from_register_code(bw_code).ok_or(ModemDecodeError::Bandwidth(bw_code))?;
        let cr_code = (config1 >> 1) & 0x07;
        let coding_rate =
            CodingRate::from_register_code(cr_code).ok_or(ModemDecodeError::CodingRate(cr_code))?;
        let sf = config2 >> 4;
        let spreading_factor =
            SpreadingFactor::from_value(sf).ok_or(ModemDecodeError::SpreadingFactor(sf))?;
        let low_data_rate_optimize = if config3 & 0x08 != 0 {
            LowDataRateOptimize::On
        } else {
            LowDataRateOptimize::Off
        };
        Ok(Self {
            spreading_factor,
            bandwidth,
            coding_rate,
            preamble_len,
            crc: config2 & 0x04 != 0,
            explicit_header: config1 & 0x01 == 0,
            low_data_rate_optimize,
        })
    }
}

impl fmt::Display for ModemConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SF{}/BW{}/CR4:{}{}{}, preamble {}",
            self.spreading_factor.value(),
            self.bandwidth.nominal_khz(),
            self.coding_rate.index() + 4,
            if self.crc { ", CRC" } else { ", no CRC" },
            if self.low_data_rate_optimize_on() {
                ", LDRO"
            } else {
                ""
            },
            self.preamble_len
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radiohead_default_registers() {
        let m = ModemConfig::RADIOHEAD_DEFAULT;
        assert_eq!(m.reg_modem_config1(), 0x72);
        assert_eq!(m.reg_modem_config2(), 0x74);
        assert_eq!(m.reg_modem_config3(), 0x04);
    }

    #[test]
    fn radiohead_slow_config_registers() {
        // RH_RF95 Bw125Cr48Sf4096 = { 0x78, 0xc4, 0x0c }
        let m = ModemConfig {
            spreading_factor: SpreadingFactor::Sf12,
            coding_rate: CodingRate::Cr4_8,
            ..ModemConfig::RADIOHEAD_DEFAULT
        };
        assert_eq!(
            (
                m.reg_modem_config1(),
                m.reg_modem_config2(),
                m.reg_modem_config3()
            ),
            (0x78, 0xC4, 0x0C)
        );
    }

    #[test]
    fn low_data_rate_optimisation_starts_above_16_ms() {
        let m = ModemConfig::RADIOHEAD_DEFAULT;
        assert!(!m
            .with_spreading_factor(SpreadingFactor::Sf10)
            .low_data_rate_optimize_on()); // 8.192 ms
        assert!(m
            .with_spreading_factor(SpreadingFactor::Sf11)
            .low_data_rate_optimize_on()); // 16.384 ms
        let narrow = ModemConfig {
            bandwidth: Bandwidth::Khz62_5,
            ..m.with_spreading_factor(SpreadingFactor::Sf10)
        };
        assert!(narrow.low_data_rate_optimize_on()); // 16.384 ms
    }

    #[test]
    fn registers_round_trip() {
        for sf in SpreadingFactor::ALL {
            for bw in Bandwidth::ALL {
                let m = ModemConfig {
                    spreading_factor: sf,
                    bandwidth: bw,
                    ..ModemConfig::RADIOHEAD_DEFAULT
                };
                let back = ModemConfig::from_registers(
                    m.reg_modem_config1(),
                    m.reg_modem_config2(),
                    m.reg_modem_config3(),
                    m.preamble_len,
                )
                .unwrap();
                assert_eq!(
                    back.low_data_rate_optimize_on(),
                    m.low_data_rate_optimize_on()
                );
                assert_eq!(
                    (back.spreading_factor, back.bandwidth, back.crc),
                    (sf, bw, true)
                );
            }
        }
        assert_eq!(
            ModemConfig::from_registers(0xA2, 0x74, 0, 8),
            Err(ModemDecodeError::Bandwidth(10))
        );
        assert_eq!(
            ModemConfig::from_registers(0x72, 0x64, 0, 8),
            Err(ModemDecodeError::SpreadingFactor(6))
        );
    }

    #[test]
    fn bandwidth_from_nominal_khz() {
        assert_eq!(Bandwidth::from_khz(125.0), Some(Bandwidth::Khz125));
        assert_eq!(Bandwidth::from_khz(7.8), Some(Bandwidth::Khz7_8));
        assert_eq!(Bandwidth::from_khz(100.0), None);
    }
}

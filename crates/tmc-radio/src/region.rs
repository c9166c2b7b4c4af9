//! Regulatory regions and their sub-bands: where a frequency may be used, how often, and how loud.
//!
//! The figures are the usual SRD rules for LoRa (ETSI EN 300 220 / ERC Rec 70-03 for Europe, FCC part 15.247
//! for the US). Power limits are radiated power for an antenna of 0 dBi gain or less: a higher-gain antenna
//! needs a lower setting, which the board preset must say.

use core::fmt;
use core::str::FromStr;

use crate::duty_cycle::DutyCycle;

/// A regulatory region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    /// Europe 863–870 MHz (ETSI EN 300 220).
    Eu868,
    /// Europe 433.05–434.79 MHz.
    Eu433,
    /// United States 902–928 MHz (FCC part 15).
    Us915,
    /// Australia 915–928 MHz.
    Au915,
    /// India 865–867 MHz.
    In865,
}

/// One sub-band of a region with its rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Band {
    /// Region the band belongs to.
    pub region: Region,
    /// Name used in error messages (ERC 70-03 annex 1 band letter for EU868).
    pub name: &'static str,
    /// Lowest allowed carrier, Hz (inclusive).
    pub low_hz: u32,
    /// Highest allowed carrier, Hz (inclusive).
    pub high_hz: u32,
    /// Maximum share of time on air.
    pub duty_cycle: DutyCycle,
    /// Maximum transmit power, dBm.
    pub max_power_dbm: i8,
}

impl Band {
    /// Whether `frequency_hz` lies in the band.
    pub fn contains(&self, frequency_hz: u32) -> bool {
        (self.low_hz..=self.high_hz).contains(&frequency_hz)
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({:.3}–{:.3} MHz, duty cycle {}, max {} dBm)",
            self.region,
            self.name,
            f64::from(self.low_hz) / 1e6,
            f64::from(self.high_hz) / 1e6,
            self.duty_cycle,
            self.max_power_dbm
        )
    }
}

const fn band(
    region: Region,
    name: &'static str,
    low_khz: u32,
    high_khz: u32,
    dc: DutyCycle,
    dbm: i8,
) -> Band {
    Band {
        region,
        name,
        low_hz: low_khz * 1000,
        high_hz: high_khz * 1000,
        duty_cycle: dc,
        max_power_dbm: dbm,
    }
}

const EU868_BANDS: &[Band] = &[
    band(
        Region::Eu868,
        "h1.3",
        863_000,
        865_000,
        DutyCycle::ONE_PERMILLE,
        14,
    ),
    band(
        Region::Eu868,
        "h1.4",
        865_000,
        868_000,
        DutyCycle::ONE_PERCENT,
        14,
    ),
    // The band RadioHead's 868.0 MHz examples and LoRaWAN's default channels live in.
    band(
        Region::Eu868,
        "h1.5",
        868_000,
        868_600,
        DutyCycle::ONE_PERCENT,
        14,
    ),
    band(
        Region::Eu868,
        "h1.6",
        868_700,
        869_200,
        DutyCycle::ONE_PERMILLE,
        14,
    ),
    band(
        Region::Eu868,
        "h1.7",
        869_400,
        869_650,
        DutyCycle::TEN_PERCENT,
        27,
    ),
    band(
        Region::Eu868,
        "h1.8",
        869_700,
        870_000,
        DutyCycle::ONE_PERCENT,
        14,
    ),
];
const EU433_BANDS: &[Band] = &[band(
    Region::Eu433,
    "h1.1",
    433_050,
    434_790,
    DutyCycle::TEN_PERCENT,
    10,
)];
const US915_BANDS: &[Band] = &[band(
    Region::Us915,
    "ISM",
    902_000,
    928_000,
    DutyCycle::UNLIMITED,
    30,
)];
const AU915_BANDS: &[Band] = &[band(
    Region::Au915,
    "ISM",
    915_000,
    928_000,
    DutyCycle::UNLIMITED,
    30,
)];
const IN865_BANDS: &[Band] = &[band(
    Region::In865,
    "ISM",
    865_000,
    867_000,
    DutyCycle::UNLIMITED,
    30,
)];

impl Region {
    /// All regions.
    pub const ALL: [Region; 5] = [
        Self::Eu868,
        Self::Eu433,
        Self::Us915,
        Self::Au915,
        Self::In865,
    ];

    /// The name used in board presets.
    pub fn name(self) -> &'static str {
        match self {
            Self::Eu868 => "EU868",
            Self::Eu433 => "EU433",
            Self::Us915 => "US915",
            Self::Au915 => "AU915",
            Self::In865 => "IN865",
        }
    }

    /// The region's sub-bands.
    pub fn bands(self) -> &'static [Band] {
        match self {
            Self::Eu868 => EU868_BANDS,
            Self::Eu433 => EU433_BANDS,
            Self::Us915 => US915_BANDS,
            Self::Au915 => AU915_BANDS,
            Self::In865 => IN865_BANDS,
        }
    }

    /// The sub-band `frequency_hz` falls in, if it is allowed at all.
    pub fn band_for(self, frequency_hz: u32) -> Option<&'static Band> {
        self.bands().iter().find(|b| b.contains(frequency_hz))
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Unknown region name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region {0:?} (known: EU868, EU433, US915, AU915, IN865)")]
pub struct UnknownRegion(pub String);

impl FromStr for Region {
    type Err = UnknownRegion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownRegion(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eu868_sub_bands() {
        let g1 = Region::Eu868.band_for(868_100_000).unwrap();
        assert_eq!(
            (g1.name, g1.duty_cycle, g1.max_power_dbm),
            ("h1.5", DutyCycle::ONE_PERCENT, 14)
        );
        assert_eq!(
            Region::Eu868.band_for(869_525_000).unwrap().duty_cycle,
            DutyCycle::TEN_PERCENT
        );
        assert_eq!(Region::Eu868.band_for(868_650_000), None); // guard gap between h1.5 and h1.6
        assert_eq!(Region::Eu868.band_for(915_000_000), None);
        assert!(Region::Us915.band_for(915_000_000).is_some());
    }

    #[test]
    fn region_names_parse() {
        assert_eq!("eu868".parse::<Region>(), Ok(Region::Eu868));
        assert_eq!(
            "EU869".parse::<Region>(),
            Err(UnknownRegion("EU869".into()))
        );
    }
}

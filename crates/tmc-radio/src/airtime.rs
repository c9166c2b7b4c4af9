//! Time on air per the SX1276 datasheet (section 4.1.1.7), and the airtime report behind `tmc-relay airtime`.

use core::time::Duration;

use thiserror::Error;

use crate::duty_cycle::DutyCycle;
use crate::frame::{HEADER_LEN, MAX_DATA_LEN, MAX_FRAME_LEN};
use crate::modem::ModemConfig;

/// Number of payload symbols: 8 + max(ceil((8·PL − 4·SF + 28 + 16·CRC − 20·IH) / (4·(SF − 2·DE))) · (CR + 4), 0).
pub fn payload_symbols(modem: &ModemConfig, phy_payload_len: usize) -> u64 {
    let sf = i64::from(modem.spreading_factor.value());
    let crc = i64::from(modem.crc);
    let implicit = i64::from(!modem.explicit_header);
    let de = i64::from(modem.low_data_rate_optimize_on());
    let numerator = 8 * phy_payload_len as i64 - 4 * sf + 28 + 16 * crc - 20 * implicit;
    let denominator = 4 * (sf - 2 * de);
    // Ceiling division of a possibly negative numerator by a positive denominator, clamped at 0.
    let blocks = if numerator <= 0 {
        0
    } else {
        (numerator + denominator - 1) / denominator
    };
    8 + (blocks * (i64::from(modem.coding_rate.index()) + 4)) as u64
}

/// Preamble time: (preamble length + 4.25) symbols.
pub fn preamble_time(modem: &ModemConfig) -> Duration {
    Duration::from_nanos(modem.quarter_symbols_to_ns(4 * u64::from(modem.preamble_len) + 17))
}

/// Time on air of one LoRa packet whose PHY payload (everything the radio sends after its own header: for
/// RadioHead frames the 4-byte TO/FROM/ID/FLAGS header plus the data) is `phy_payload_len` bytes.
pub fn time_on_air(modem: &ModemConfig, phy_payload_len: usize) -> Duration {
    let quarter_symbols =
        4 * u64::from(modem.preamble_len) + 17 + 4 * payload_symbols(modem, phy_payload_len);
    Duration::from_nanos(modem.quarter_symbols_to_ns(quarter_symbols))
}

/// What `tmc-relay airtime` prints: the cost on air of one RadioHead frame carrying `data_len` bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AirtimeReport {
    /// Modem settings the numbers are for.
    pub modem: ModemConfig,
    /// Application bytes after the RadioHead header.
    pub data_len: usize,
    /// Bytes the radio sends as LoRa payload (`data_len` + 4).
    pub phy_payload_len: usize,
    /// Symbol time 2^SF/BW.
    pub symbol_time: Duration,
    /// Time on air of the data frame.
    pub time_on_air: Duration,
    /// Time on air of the RadioHead ACK that answers it (4-byte header + `!`): it counts against the receiver's
    /// duty cycle.
    pub ack_time_on_air: Duration,
    /// Duty cycle the frames-per-hour figure is for.
    pub duty_cycle: DutyCycle,
    /// Transmit time allowed per hour under `duty_cycle`.
    pub budget_per_hour: Duration,
    /// Frames of this size one transmitter may send per hour, first attempts only (each retry costs one more).
    pub frames_per_hour: u64,
}

/// A frame that cannot be sent at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AirtimeError {
    /// More data than one RadioHead frame carries.
    #[error("{data_len} data bytes do not fit in one RadioHead frame (at most {MAX_DATA_LEN})")]
    DataTooLong {
        /// Requested data length.
        data_len: usize,
    },
}

/// Time on air and frames per hour of one RadioHead frame carrying `data_len` bytes with `modem` under
/// `duty_cycle` (e.g. [`DutyCycle::ONE_PERCENT`] for EU868 868.0–868.6 MHz).
pub fn airtime_report(
    data_len: usize,
    modem: &ModemConfig,
    duty_cycle: DutyCycle,
) -> Result<AirtimeReport, AirtimeError> {
    if data_len > MAX_DATA_LEN {
        return Err(AirtimeError::DataTooLong { data_len });
    }
    let phy_payload_len = data_len + HEADER_LEN;
    debug_assert!(phy_payload_len <= MAX_FRAME_LEN);
    let toa = time_on_air(modem, phy_payload_len);
    let budget = duty_cycle.budget(crate::duty_cycle::WINDOW);
    Ok(AirtimeReport {
        modem: *modem,
        data_len,
        phy_payload_len,
        symbol_time: modem.symbol_time(),
        time_on_air: toa,
        ack_time_on_air: time_on_air(modem, HEADER_LEN + 1),
        duty_cycle,
        budget_per_hour: budget,
        frames_per_hour: (budget.as_nanos() / toa.as_nanos().max(1)) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modem::SpreadingFactor;

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    #[test]
    fn sf7_known_values() {
        let m = ModemConfig::RADIOHEAD_DEFAULT;
        assert_eq!(time_on_air(&m, 20), Duration::from_micros(56_576));
        assert_eq!(time_on_air(&m, 64), Duration::from_micros(118_016));
        assert_eq!(time_on_air(&m, 255), Duration::from_micros(399_616));
    }

    #[test]
    fn sf12_known_value() {
        let m = ModemConfig::RADIOHEAD_DEFAULT.with_spreading_factor(SpreadingFactor::Sf12);
        assert!(m.low_data_rate_optimize_on());
        assert_eq!(time_on_air(&m, 20), Duration::from_micros(1_318_912));
        assert!((ms(time_on_air(&m, 20)) - 1318.9).abs() < 0.05);
    }

    #[test]
    fn preamble_is_12_25_symbols_by_default() {
        assert_eq!(
            preamble_time(&ModemConfig::RADIOHEAD_DEFAULT),
            Duration::from_micros(12_544)
        );
    }

    #[test]
    fn airtime_grows_with_every_payload_block() {
        let m = ModemConfig::RADIOHEAD_DEFAULT;
        let mut last = Duration::ZERO;
        for len in 0..=255 {
            let t = time_on_air(&m, len);
            assert!(t >= last);
            last = t;
        }
    }

    #[test]
    fn report_counts_frames_per_hour_under_one_percent() {
        let r =
            airtime_report(16, &ModemConfig::RADIOHEAD_DEFAULT, DutyCycle::ONE_PERCENT).unwrap();
        assert_eq!(r.phy_payload_len, 20);
        assert_eq!(r.time_on_air, Duration::from_micros(56_576));
        assert_eq!(r.budget_per_hour, Duration::from_secs(36));
        assert_eq!(r.frames_per_hour, 636); // 36 s / 56.576 ms = 636.3
        assert_eq!(
            airtime_report(252, &ModemConfig::RADIOHEAD_DEFAULT, DutyCycle::ONE_PERCENT),
            Err(AirtimeError::DataTooLong { data_len: 252 })
        );
    }
}

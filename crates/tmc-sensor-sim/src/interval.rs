//! `--interval` values: a number and a unit, `500ms`, `2s`, `1.5s`, `1m`.

use std::time::Duration;

/// An interval that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    #[error("interval {0:?}: expected a number and a unit (ms, s, m or h), e.g. 500ms or 2s")]
    Syntax(String),
    #[error("interval {0:?} is zero: readings need time between them")]
    Zero(String),
    #[error("interval {0:?} is too long")]
    TooLong(String),
}

/// Parses `<number><unit>`: a whole or decimal number (`1.5`), then `ms`, `s`, `m` or `h`
/// (spaces between them allowed). Zero is refused; the result is rounded to whole milliseconds.
pub fn parse_interval(text: &str) -> Result<Duration, IntervalError> {
    let syntax = || IntervalError::Syntax(text.to_owned());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(syntax)?;
    let (number, unit) = trimmed.split_at(split);
    let millis_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(syntax()),
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits_ok(whole) || !digits_ok(fraction) {
        return Err(syntax());
    }
    let too_long = || IntervalError::TooLong(text.to_owned());
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_long())?
    };
    let mut millis = whole.checked_mul(millis_per_unit).ok_or_else(too_long)?;
    // The fraction, digit by digit, down to whole milliseconds.
    let mut scale = millis_per_unit;
    for digit in fraction.bytes() {
        scale /= 10;
        millis = millis
            .checked_add(u64::from(digit - b'0') * scale)
            .ok_or_else(too_long)?;
    }
    if millis == 0 {
        return Err(IntervalError::Zero(text.to_owned()));
    }
    Ok(Duration::from_millis(millis))
}

/// `1500ms` → "1.5s", for logs.
pub fn format_interval(interval: Duration) -> String {
    let ms = interval.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{}s", interval.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_fractions() {
        let ms = |n| Duration::from_millis(n);
        for (text, want) in [
            ("500ms", ms(500)),
            ("2s", ms(2000)),
            ("1.5s", ms(1500)),
            (".25s", ms(250)),
            ("1m", ms(60_000)),
            ("2 min", ms(120_000)),
            ("1h", ms(3_600_000)),
            (" 10 ms ", ms(10)),
            ("1.2345s", ms(1234)),
        ] {
            assert_eq!(parse_interval(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn bad_intervals_are_refused_with_the_text() {
        for text in ["", "5", "s", "1.2.3s", "-1s", "1 sec", "ms5", "1e3ms", "."] {
            let err = parse_interval(text).unwrap_err();
            assert!(matches!(err, IntervalError::Syntax(_)), "{text}: {err}");
        }
        assert_eq!(
            parse_interval("0s").unwrap_err(),
            IntervalError::Zero("0s".into())
        );
        // Below a millisecond rounds to zero.
        assert!(matches!(
            parse_interval("0.4ms").unwrap_err(),
            IntervalError::Zero(_)
        ));
        assert!(matches!(
            parse_interval("99999999999999999999h").unwrap_err(),
            IntervalError::TooLong(_)
        ));
        let err = parse_interval("1 sec").unwrap_err().to_string();
        assert!(err.contains("\"1 sec\"") && err.contains("500ms"), "{err}");
    }

    #[test]
    fn formatting_for_logs() {
        assert_eq!(format_interval(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_interval(Duration::from_millis(2000)), "2s");
        assert_eq!(format_interval(Duration::from_millis(20)), "20ms");
    }
}

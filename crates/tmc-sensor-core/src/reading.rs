//! The sensor payload and its simulated ADC value, byte for byte what the firmware sends and
//! `tmc-sensor-sim` publishes:
//!
//! ```text
//! {"id":"sensor1","seq":17,"adc":512}
//! ```
//!
//! Compact JSON, no spaces, keys in this order. `id` is the sensor's name (its certificate CN),
//! JSON-escaped exactly as `serde_json` escapes a string (the relay parses it with serde, and the
//! simulator used to produce it with serde: the tests compare with serde byte for byte); `seq`
//! counts the sensor's readings from 1; `adc` is the 10-bit reading, [`adc`]`(id, seq)` when simulated.

use core::fmt;

/// Readings in one period of the simulated wave (two minutes at the default 1 s interval).
pub const WAVE_PERIOD: u64 = 120;
/// Middle of the 10-bit ADC range: the wave swings around it.
pub const WAVE_CENTRE: u32 = 512;
/// How far the wave swings either side of [`WAVE_CENTRE`].
pub const WAVE_AMPLITUDE: u32 = 300;
/// The noise is in `-NOISE..=NOISE`.
pub const NOISE: u32 = 16;
/// Largest value of a 10-bit ADC.
pub const ADC_MAX: u16 = 1023;

/// Length of the payload without the id's characters: `{"id":"` + `","seq":` + 20 digits of `u64::MAX`
/// + `,"adc":` + 5 digits of `u16::MAX` + `}`. A buffer of `MAX_FIXED_LEN + 6 * id.len()` always fits.
pub const MAX_FIXED_LEN: usize = 7 + 8 + 20 + 7 + 5 + 1;

/// The caller's buffer cannot hold the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// Bytes the payload needs.
    pub needed: usize,
    /// Bytes the buffer has.
    pub available: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "buffer too small: {} bytes needed, {} available",
            self.needed, self.available
        )
    }
}

impl core::error::Error for BufferTooSmall {}

/// 32-bit FNV-1a, the hash behind the per-sensor phase and the noise.
pub fn fnv1a32(bytes: impl IntoIterator<Item = u8>) -> u32 {
    bytes.into_iter().fold(0x811c_9dc5, |hash: u32, b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The simulated 10-bit ADC value of sensor `id`'s reading number `seq`.
///
/// Integer arithmetic only, so the firmware, the simulator and any test compute the same value:
///
/// ```text
/// phase = (fnv1a32(id) % 120 + seq % 120) % 120
/// t     = phase % 60
/// bump  = 4 * t * (60 - t) * 300 / 3600            (0..=300, a parabola standing in for a sine)
/// wave  = phase < 60 ? 512 + bump : 512 - bump
/// noise = fnv1a32(id ++ seq as 8 little-endian bytes) % 33   (0..=32)
/// adc   = clamp(wave + noise - 16, 0, 1023)
/// ```
pub fn adc(id: &str, seq: u64) -> u16 {
    // The two `% 120` are reduced separately so the sum stays below 240: no overflow for any seq.
    // Only `seq % 120` needs 64-bit arithmetic; the rest fits in u32 (a 32-bit core's native width).
    let period = WAVE_PERIOD as u32;
    let seq_phase = (seq % WAVE_PERIOD) as u32;
    let phase = (fnv1a32(id.bytes()) % period + seq_phase) % period;
    let half = period / 2;
    let t = phase % half;
    // At most 4 * 30 * 30 * 300 = 1_080_000: far below 2^32.
    let bump = 4 * t * (half - t) * WAVE_AMPLITUDE / (half * half);
    let wave = if phase < half {
        WAVE_CENTRE + bump
    } else {
        WAVE_CENTRE - bump
    };
    let noise = fnv1a32(id.bytes().chain(seq.to_le_bytes())) % (2 * NOISE + 1);
    // wave + noise - NOISE, clamped to 0..=1023: wave is in 212..=812, so neither end is reached
    // today, but the clamp keeps the 10-bit promise if the constants change.
    let value = (wave + noise).saturating_sub(NOISE).min(u32::from(ADC_MAX));
    value as u16
}

/// Exact length of the payload [`write_reading`] writes for these values.
pub fn reading_len(id: &str, seq: u64, adc: u16) -> usize {
    let fixed = "{\"id\":\"".len() + "\",\"seq\":".len() + ",\"adc\":".len() + "}".len();
    fixed + escaped_len(id) + decimal_len(seq) + decimal_len(u64::from(adc))
}

/// Writes THE sensor payload `{"id":<id>,"seq":<seq>,"adc":<adc>}` at the start of `out` and returns
/// its length. Nothing is written when `out` is too small.
pub fn write_reading(
    id: &str,
    seq: u64,
    adc: u16,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let needed = reading_len(id, seq, adc);
    if out.len() < needed {
        return Err(BufferTooSmall {
            needed,
            available: out.len(),
        });
    }
    let mut w = Writer { out, len: 0 };
    w.put(b"{\"id\":\"");
    w.put_escaped(id);
    w.put(b"\",\"seq\":");
    w.put_decimal(seq);
    w.put(b",\"adc\":");
    w.put_decimal(u64::from(adc));
    w.put(b"}");
    debug_assert_eq!(w.len, needed);
    Ok(w.len)
}

/// How `serde_json` escapes one byte of a string: `None` when it stays as it is. Multi-byte UTF-8
/// sequences stay as they are (every byte of them is ≥ 0x80).
fn escape(b: u8) -> Option<&'static [u8]> {
    Some(match b {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        0x08 => b"\\b",
        0x0c => b"\\f",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        // Other control characters: \u00XX, lowercase hex (see `put_escaped`).
        0x00..=0x1f => b"\\u00",
        _ => return None,
    })
}

fn escaped_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match escape(b) {
            None => 1,
            Some(e) if e == b"\\u00" => 6,
            Some(e) => e.len(),
        })
        .sum()
}

fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// Appends to a buffer whose size was checked beforehand; a write past its end is dropped rather than
/// panicking (it cannot happen: `reading_len` counts exactly what is written).
struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.len += bytes.len();
    }

    fn put_escaped(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for b in s.bytes() {
            match escape(b) {
                None => self.put(&[b]),
                Some(e) if e == b"\\u00" => {
                    self.put(e);
                    self.put(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
                }
                Some(e) => self.put(e),
            }
        }
    }

    fn put_decimal(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(&digits[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::{String, ToString};
    use std::vec::Vec;

    /// The payload as tmc-sensor-sim produced it before this crate existed (serde_json escaping,
    /// `format!` for the numbers), and its `adc` in the original i64 arithmetic: the reference.
    fn reference_adc(id: &str, seq: u64) -> u16 {
        let phase =
            (u64::from(fnv1a32(id.bytes())) % WAVE_PERIOD + seq % WAVE_PERIOD) % WAVE_PERIOD;
        let half = WAVE_PERIOD / 2;
        let t = phase % half;
        let bump = 4 * t * (half - t) * u64::from(WAVE_AMPLITUDE) / (half * half);
        let centre = i64::from(WAVE_CENTRE);
        let bump = i64::try_from(bump).unwrap_or(0);
        let wave = if phase < half {
            centre + bump
        } else {
            centre - bump
        };
        let noise_hash = fnv1a32(id.bytes().chain(seq.to_le_bytes()));
        let noise = i64::from(noise_hash % (2 * NOISE + 1)) - i64::from(NOISE);
        let value = (wave + noise).clamp(0, 1023);
        u16::try_from(value).unwrap_or(0)
    }

    fn reference_payload(id: &str, seq: u64) -> Vec<u8> {
        let id_json = serde_json::Value::String(id.into()).to_string();
        format!(
            "{{\"id\":{id_json},\"seq\":{seq},\"adc\":{}}}",
            reference_adc(id, seq)
        )
        .into_bytes()
    }

    fn payload(id: &str, seq: u64) -> Vec<u8> {
        let value = adc(id, seq);
        let mut buf = std::vec![0u8; MAX_FIXED_LEN + 6 * id.len()];
        let len = write_reading(id, seq, value, &mut buf).unwrap();
        assert_eq!(len, reading_len(id, seq, value));
        buf.truncate(len);
        buf
    }

    /// Names to compare: ordinary ones, every byte that JSON escapes, non-ASCII, DEL.
    fn ids() -> Vec<String> {
        let mut ids: Vec<String> = [
            "sensor1",
            "sensor2",
            "x",
            "",
            "esp8266-a1b2c3",
            "a\"b",
            "back\\slash",
        ]
        .iter()
        .map(|s| String::from(*s))
        .collect();
        ids.extend((0u8..0x80).map(|b| format!("s{}e", char::from(b))));
        ids.push("grüße/温度/🌡".into());
        ids.push("\u{7f}\u{80}\u{2028}\u{2029}\u{feff}".into());
        ids.push("\"\\\u{0}\u{1f}\n\r\t\u{8}\u{c}".repeat(10));
        ids.extend((1..=50).map(|i| format!("sensor{i}")));
        ids
    }

    #[test]
    fn byte_identical_to_the_old_simulator_payload() {
        let seqs = [
            0, 1, 2, 9, 10, 17, 59, 60, 61, 99, 100, 119, 120, 121, 999, 1000, 65_535,
        ]
        .into_iter()
        .chain([u64::from(u32::MAX), u64::MAX / 3, u64::MAX - 1, u64::MAX]);
        let seqs: Vec<u64> = seqs.chain(1..=500).collect();
        for id in ids() {
            for &seq in &seqs {
                assert_eq!(
                    payload(&id, seq),
                    reference_payload(&id, seq),
                    "{id:?} #{seq}"
                );
            }
        }
    }

    #[test]
    fn adc_matches_the_reference_over_many_periods() {
        for id in ["sensor1", "sensor2", "sensor3", "", "z"] {
            for seq in (0..5_000).chain(u64::MAX - 500..=u64::MAX) {
                assert_eq!(adc(id, seq), reference_adc(id, seq), "{id} #{seq}");
            }
        }
    }

    #[test]
    fn fnv1a32_matches_the_reference_vectors() {
        assert_eq!(fnv1a32("".bytes()), 0x811c_9dc5);
        assert_eq!(fnv1a32("a".bytes()), 0xe40c_292c);
        assert_eq!(fnv1a32("foobar".bytes()), 0xbf9c_f968);
    }

    #[test]
    fn fixed_vectors_pin_the_payload() {
        // The same values tmc-sensor-sim pins: the firmware must produce exactly these bytes.
        assert_eq!(
            payload("sensor1", 1),
            br#"{"id":"sensor1","seq":1,"adc":348}"#
        );
        assert_eq!(
            payload("sensor1", 17),
            br#"{"id":"sensor1","seq":17,"adc":647}"#
        );
        assert_eq!(adc("sensor2", 60), 367);
        assert_eq!(adc("sensor3", 1000), 803);
        let mut buf = [0u8; 96];
        let n = write_reading("a\"b\\c\u{1}\n", u64::MAX, u16::MAX, &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            br#"{"id":"a\"b\\c\u0001\n","seq":18446744073709551615,"adc":65535}"#
        );
        assert_eq!(n, MAX_FIXED_LEN + 15);
    }

    #[test]
    fn a_small_buffer_is_refused_and_left_alone() {
        let need = reading_len("sensor1", 17, 647);
        assert_eq!(need, br#"{"id":"sensor1","seq":17,"adc":647}"#.len());
        let mut buf = [0xAAu8; 64];
        for available in 0..need {
            assert_eq!(
                write_reading("sensor1", 17, 647, &mut buf[..available]),
                Err(BufferTooSmall {
                    needed: need,
                    available
                })
            );
            assert!(buf.iter().all(|&b| b == 0xAA), "untouched");
        }
        assert_eq!(
            write_reading("sensor1", 17, 647, &mut buf[..need]),
            Ok(need)
        );
        assert_eq!(
            BufferTooSmall {
                needed: 35,
                available: 8
            }
            .to_string(),
            "buffer too small: 35 bytes needed, 8 available"
        );
    }

    #[test]
    fn adc_is_10_bit_and_a_slow_wave() {
        for id in ["sensor1", "sensor2", "x"] {
            let mut previous = adc(id, 1);
            for seq in 1..=1000u64 {
                let value = adc(id, seq);
                assert!((196..=828).contains(&value), "{id}/{seq}: {value}");
                assert!(value.abs_diff(previous) <= 2 * 16 + 20, "{id}/{seq}");
                previous = value;
            }
        }
        assert!(adc("sensor1", u64::MAX) <= ADC_MAX);
    }

    #[test]
    fn the_payload_parses_as_json_with_the_fields_in_order() {
        let p = String::from_utf8(payload("sensor1", 17)).unwrap();
        assert!(!p.contains(' '));
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert_eq!(v["id"], "sensor1");
        assert_eq!(v["seq"], 17);
        assert_eq!(v["adc"], u64::from(adc("sensor1", 17)));
        assert!(p.find("\"id\"") < p.find("\"seq\"") && p.find("\"seq\"") < p.find("\"adc\""));
    }
}

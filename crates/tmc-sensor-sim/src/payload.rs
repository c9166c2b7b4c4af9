//! The sensor payload and its simulated ADC value, byte for byte what the firmware sends.

/// Readings in one period of the simulated wave (two minutes at the default 1 s interval).
pub const WAVE_PERIOD: u64 = 120;
/// Middle of the 10-bit ADC range: the wave swings around it.
pub const WAVE_CENTRE: u32 = 512;
/// How far the wave swings either side of [`WAVE_CENTRE`].
pub const WAVE_AMPLITUDE: u32 = 300;
/// The noise is in `-NOISE..=NOISE`.
pub const NOISE: u32 = 16;

/// 32-bit FNV-1a, the hash behind the per-sensor phase and the noise.
pub fn fnv1a32(bytes: impl IntoIterator<Item = u8>) -> u32 {
    bytes.into_iter().fold(0x811c_9dc5, |hash: u32, b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The simulated 10-bit ADC value of sensor `id`'s reading number `seq`.
///
/// Integer arithmetic only, so the firmware (and any test) computes the same value:
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
    let phase = (u64::from(fnv1a32(id.bytes())) % WAVE_PERIOD + seq % WAVE_PERIOD) % WAVE_PERIOD;
    let half = WAVE_PERIOD / 2;
    let t = phase % half;
    // Below 2^32 throughout: t and half - t are at most 60.
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

/// THE sensor payload: compact JSON, no spaces, keys in this order:
/// `{"id":"sensor1","seq":17,"adc":512}`.
///
/// `id` is the sensor's name (its certificate CN), JSON-escaped; `seq` counts the sensor's
/// readings from 1; `adc` is [`adc`]`(id, seq)`.
pub fn payload(id: &str, seq: u64) -> Vec<u8> {
    let id_json = serde_json::Value::String(id.to_owned()).to_string();
    format!(
        "{{\"id\":{id_json},\"seq\":{seq},\"adc\":{}}}",
        adc(id, seq)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fnv1a32_matches_the_reference_vectors() {
        assert_eq!(fnv1a32("".bytes()), 0x811c_9dc5);
        assert_eq!(fnv1a32("a".bytes()), 0xe40c_292c);
        assert_eq!(fnv1a32("foobar".bytes()), 0xbf9c_f968);
    }

    #[test]
    fn payload_is_compact_json_with_the_fields_in_order() {
        let p = String::from_utf8(payload("sensor1", 17)).unwrap();
        assert_eq!(
            p,
            format!(
                "{{\"id\":\"sensor1\",\"seq\":17,\"adc\":{}}}",
                adc("sensor1", 17)
            )
        );
        assert!(!p.contains(' '));
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert_eq!(v["id"], "sensor1");
        assert_eq!(v["seq"], 17);
        assert_eq!(v["adc"], u64::from(adc("sensor1", 17)));
        // A name that needs escaping stays valid JSON.
        let odd = String::from_utf8(payload("a\"b", 1)).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&odd).unwrap()["id"],
            "a\"b"
        );
    }

    #[test]
    fn adc_is_deterministic_10_bit_and_slow() {
        for id in ["sensor1", "sensor2", "x"] {
            let mut previous = adc(id, 1);
            for seq in 1..=1000u64 {
                let value = adc(id, seq);
                assert_eq!(value, adc(id, seq), "deterministic");
                assert!(value <= 1023);
                assert!(
                    (196..=828).contains(&value),
                    "{id}/{seq}: {value} outside wave ± noise"
                );
                // A slow wave: neighbouring readings differ by the noise and a small step.
                assert!(value.abs_diff(previous) <= 2 * 16 + 20, "{id}/{seq}");
                previous = value;
            }
        }
        // The wave goes through its whole swing within one period, and sensors are out of phase.
        let one_period: Vec<u16> = (1..=WAVE_PERIOD).map(|s| adc("sensor1", s)).collect();
        assert!(one_period.iter().any(|&v| v > 780) && one_period.iter().any(|&v| v < 244));
        let other: Vec<u16> = (1..=WAVE_PERIOD).map(|s| adc("sensor2", s)).collect();
        assert_ne!(one_period, other);
        // Huge sequence numbers do not overflow.
        assert!(adc("sensor1", u64::MAX) <= 1023);
    }

    #[test]
    fn known_values_pin_the_algorithm() {
        // Computed by an independent implementation of the documented steps: the firmware must
        // produce exactly these bytes.
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
    }
}

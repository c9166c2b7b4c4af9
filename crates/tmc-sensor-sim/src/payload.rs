//! The sensor payload and its simulated ADC value, byte for byte what the firmware sends.

/// The simulated ADC value and its hash live in `tmc-sensor-core`, shared with the firmware.
pub use tmc_sensor_core::{adc, fnv1a32};

/// THE sensor payload: compact JSON, no spaces, keys in this order:
/// `{"id":"sensor1","seq":17,"adc":512}`.
///
/// `id` is the sensor's name (its certificate CN), JSON-escaped; `seq` counts the sensor's
/// readings from 1; `adc` is [`adc`]`(id, seq)`. Written by `tmc_sensor_core::write_reading`, the
/// firmware's own code, so the two cannot drift apart.
pub fn payload(id: &str, seq: u64) -> Vec<u8> {
    let adc = adc(id, seq);
    let mut out = vec![0; tmc_sensor_core::reading_len(id, seq, adc)];
    // The buffer has exactly the length the payload needs, so this cannot fail.
    let len = tmc_sensor_core::write_reading(id, seq, adc, &mut out).unwrap_or(0);
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tmc_sensor_core::reading::WAVE_PERIOD;

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

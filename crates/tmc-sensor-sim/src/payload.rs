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
    payload_bytes(id, seq, adc(id, seq))
}

/// The payload for a reading whose ADC value is `adc`, as text (the ledger's `payload`).
pub(crate) fn reading_payload(id: &str, seq: u64, adc: u16) -> String {
    // write_reading produces JSON text, so the bytes are UTF-8; a lossy conversion changes nothing.
    String::from_utf8_lossy(&payload_bytes(id, seq, adc)).into_owned()
}

fn payload_bytes(id: &str, seq: u64, adc: u16) -> Vec<u8> {
    let mut out = vec![0; tmc_sensor_core::reading_len(id, seq, adc)];
    // The buffer has exactly the length the payload needs, so this cannot fail.
    let len = tmc_sensor_core::write_reading(id, seq, adc, &mut out).unwrap_or(0);
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    // The waveform, its hash and the pinned byte vectors are tested where they live, in
    // tmc-sensor-core (reading.rs); this checks only that the simulator sends that payload.
    use super::*;

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
}

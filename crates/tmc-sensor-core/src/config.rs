//! The limits a sensor's compiled-in configuration must meet, in one place: the firmware's build script
//! (`firmware/build.rs`, a build-dependency) and `tmc-provision sensor-config` apply the same rules, each
//! with its own error wording.

use core::ops::RangeInclusive;

/// Wi-Fi SSID length in bytes (IEEE 802.11).
pub const SSID_LEN: RangeInclusive<usize> = 1..=32;
/// WPA2 passphrase length in characters (a 64-hex-digit raw PSK is not taken).
pub const PASSPHRASE_LEN: RangeInclusive<usize> = 8..=63;
/// Milliseconds between readings: 100 ms to a day.
pub const INTERVAL_MS: RangeInclusive<u64> = 100..=86_400_000;

/// A client id every MQTT 3.1.1 broker must accept (MQTT-3.1.3-5): 1–23 ASCII letters and digits.
pub fn is_guaranteed_client_id(id: &str) -> bool {
    (1..=23).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A topic a client may publish to: not empty, no wildcards (`+`, `#`), no U+0000 (MQTT-4.7.3).
pub fn is_publish_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_and_topics() {
        assert!(is_guaranteed_client_id("esp8266"));
        assert!(is_guaranteed_client_id("a2345678901234567890123"));
        assert!(!is_guaranteed_client_id("a23456789012345678901234"));
        assert!(!is_guaranteed_client_id(""));
        assert!(!is_guaranteed_client_id("sensor-1"));
        assert!(is_publish_topic("/esp8266"));
        for bad in ["", "a/+", "a/#", "a\0b"] {
            assert!(!is_publish_topic(bad), "{bad:?}");
        }
    }
}

//! Home Assistant MQTT discovery for the upstream output (`[upstream.home_assistant]`).
//!
//! The first reading of each upstream topic that carries numbers announces that topic as a Home Assistant
//! device, one `sensor` entity per numeric field: a retained config message on
//! `<prefix>/sensor/<device>/<field>/config` whose `state_topic` is the upstream topic the readings are
//! published on and whose `value_template` takes the field out of the published JSON line. A reading's `data`
//! is a string (the sensor's payload as it was sent), so a JSON payload is parsed by the template
//! (`{{ (value_json.data | from_json).adc }}`) and a bare number taken as it is (`{{ value_json.data }}`).
//!
//! Ids are derived from the upstream topic alone, so they are the same after a restart and Home Assistant
//! keeps its entities. What was announced is remembered in memory only (no write to the card): after a
//! restart a topic is announced again at its first reading, and after a reconnect every announcement of this
//! run is published again, in case the broker lost its retained messages.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tmc_queue::Record;

use crate::config::{is_field_name, HomeAssistantSection};

/// The field name of a reading whose whole payload is one number.
pub const BARE_NUMBER_FIELD: &str = "value";

/// One retained discovery config message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub topic: String,
    pub payload: String,
}

/// What has been announced in this run, by upstream topic.
#[derive(Debug)]
pub struct Discovery {
    config: HomeAssistantSection,
    announced: BTreeMap<String, Vec<Announcement>>,
}

impl Discovery {
    pub fn new(config: HomeAssistantSection) -> Self {
        Discovery {
            config,
            announced: BTreeMap::new(),
        }
    }

    /// The announcements `record`, published on `state_topic`, calls for: none when its topic was announced
    /// already in this run or the reading carries no number to show.
    pub fn announce(&mut self, record: &Record, state_topic: &str) -> &[Announcement] {
        if self.announced.contains_key(state_topic) {
            return &[];
        }
        let announcements = announcements(&self.config, record, state_topic);
        if announcements.is_empty() {
            // Not remembered: a later reading of this topic may carry numbers.
            return &[];
        }
        self.announced
            .entry(state_topic.to_owned())
            .or_insert(announcements)
    }

    /// Every announcement of this run, to publish again on a new connection.
    pub fn all(&self) -> impl Iterator<Item = &Announcement> {
        self.announced.values().flatten()
    }
}

/// The discovery messages for `record` published on `state_topic`: one per announced numeric field.
pub fn announcements(
    config: &HomeAssistantSection,
    record: &Record,
    state_topic: &str,
) -> Vec<Announcement> {
    let Ok(text) = std::str::from_utf8(&record.data) else {
        return Vec::new();
    };
    let fields: Vec<(String, String)> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => object
            .into_iter()
            .filter(|(name, value)| {
                value.is_number()
                    && is_field_name(name)
                    && (config.fields.is_empty() || config.fields.contains(name))
            })
            .map(|(name, _)| {
                let template = format!("{{{{ (value_json.data | from_json).{name} }}}}");
                (name, template)
            })
            .collect(),
        Ok(Value::Number(_)) if config.fields.is_empty() => {
            vec![(
                BARE_NUMBER_FIELD.to_owned(),
                "{{ value_json.data }}".to_owned(),
            )]
        }
        _ => Vec::new(),
    };
    let device_id = device_id(state_topic);
    // Only `sensors/<id>/…` of an authenticated token names its sensor (the broker's ACL vouches for it).
    let sensor = (!record.legacy)
        .then(|| tmc_config::mqtt::sensor_of(&record.topic))
        .flatten();
    let device_name = sensor.unwrap_or(state_topic);
    fields
        .into_iter()
        .map(|(field, value_template)| {
            let unique_id = format!("{device_id}_{field}");
            let payload = json!({
                "name": field,
                "unique_id": unique_id,
                "state_topic": state_topic,
                "value_template": value_template,
                "state_class": "measurement",
                "device": {
                    "identifiers": [device_id],
                    "name": device_name,
                    "manufacturer": "TMC",
                    "model": "LoRa sensor",
                },
                "origin": {
                    "name": "tmc-receiver",
                    "sw_version": env!("CARGO_PKG_VERSION"),
                },
            });
            Announcement {
                topic: format!(
                    "{}/sensor/{device_id}/{field}/config",
                    config.discovery_prefix
                ),
                payload: payload.to_string(),
            }
        })
        .collect()
}

/// A device id for the upstream topic, stable across restarts: its letters and digits for a reader, and a
/// hash of the whole topic so that topics differing only in other characters stay apart.
pub fn device_id(state_topic: &str) -> String {
    let readable: String = state_topic
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let hash = tmc_sensor_core::fnv1a32(state_topic.bytes());
    format!("tmc_{}_{hash:08x}", readable.trim_matches('_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmc_envelope::Encoding;

    fn record(topic: &str, data: &str, legacy: bool) -> Record {
        Record {
            seq: 1,
            sender: 10,
            counter: 1,
            index: 0,
            kid: 1,
            encoding: Encoding::Packed,
            legacy,
            topic: topic.into(),
            time: 1_700_000_000,
            data: data.as_bytes().to_vec(),
            received_ms: 0,
        }
    }

    fn payloads(a: &[Announcement]) -> Vec<Value> {
        a.iter()
            .map(|a| serde_json::from_str(&a.payload).unwrap())
            .collect()
    }

    #[test]
    fn one_entity_per_numeric_field_of_a_json_reading() {
        let config = HomeAssistantSection::default();
        let r = record(
            "sensors/kitchen/reading",
            r#"{"id":"kitchen","seq":17,"adc":512,"nested":{"x":1},"a.b":2}"#,
            false,
        );
        let a = announcements(&config, &r, "tmc/10/sensors/kitchen/reading");
        let id = device_id("tmc/10/sensors/kitchen/reading");
        assert!(
            id.starts_with("tmc_tmc_10_sensors_kitchen_reading_"),
            "{id}"
        );
        let mut topics: Vec<_> = a.iter().map(|a| a.topic.as_str()).collect();
        topics.sort();
        assert_eq!(
            topics,
            [
                format!("homeassistant/sensor/{id}/adc/config"),
                format!("homeassistant/sensor/{id}/seq/config"),
            ]
        );
        let p = payloads(&a)
            .into_iter()
            .find(|p| p["name"] == "adc")
            .unwrap();
        assert_eq!(p["unique_id"], format!("{id}_adc"));
        assert_eq!(p["state_topic"], "tmc/10/sensors/kitchen/reading");
        assert_eq!(
            p["value_template"],
            "{{ (value_json.data | from_json).adc }}"
        );
        assert_eq!(p["device"]["name"], "kitchen");
        assert_eq!(p["device"]["identifiers"][0], id.as_str());

        // Configured fields only.
        let config = HomeAssistantSection {
            discovery_prefix: "ha".into(),
            fields: vec!["adc".into()],
        };
        let a = announcements(&config, &r, "tmc/10/sensors/kitchen/reading");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].topic, format!("ha/sensor/{id}/adc/config"));
    }

    #[test]
    fn a_bare_number_is_one_entity_and_text_none() {
        let config = HomeAssistantSection::default();
        let a = announcements(&config, &record("/esp8266", "21.5", true), "tmc/12/esp8266");
        let p = payloads(&a);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0]["value_template"], "{{ value_json.data }}");
        // A legacy frame names no sensor: the device is named after its topic.
        assert_eq!(p[0]["device"]["name"], "tmc/12/esp8266");
        for data in ["Temperature: 21.50 C", "\"21\"", "[1,2]", "{\"id\":\"x\"}"] {
            assert!(
                announcements(&config, &record("/esp8266", data, false), "t").is_empty(),
                "{data}"
            );
        }
    }

    #[test]
    fn each_topic_is_announced_once_per_run_and_ids_stay_apart() {
        let mut d = Discovery::new(HomeAssistantSection::default());
        let text = record("sensors/a/r", "hello", false);
        let number = record("sensors/a/r", "{\"adc\":1}", false);
        assert!(d.announce(&text, "t/a").is_empty());
        assert_eq!(d.announce(&number, "t/a").len(), 1);
        assert!(d.announce(&number, "t/a").is_empty());
        assert_eq!(d.announce(&number, "t/b").len(), 1);
        assert_eq!(d.all().count(), 2);
        assert_ne!(device_id("t/a_b"), device_id("t/a/b"));
        // Pinned: Home Assistant keys its entities (and their history) by these ids.
        assert_eq!(
            device_id("tmc/10/sensors/kitchen/reading"),
            "tmc_tmc_10_sensors_kitchen_reading_60f1530d"
        );
    }
}

//! Upstream topics: where the receiver republishes a reading.
//!
//! A template is text with placeholders:
//! - `{topic}`: the reading's original MQTT topic without leading `/` (`/esp8266` → `esp8266`, so the upstream
//!   topic has no empty first level);
//! - `{sensor}`: the sensor id, only where the site broker's ACL ties it to the publishing certificate:
//!   `<id>` in `sensors/<id>/...` ([`sensor_of`]). Any other topic (the legacy `/esp8266`, a sensor's extra
//!   topics such as `garden/alerts`) says nothing about who published it, and a level of it that looks like
//!   a name may be another sensor's: `{sensor}` then renders as [`UNKNOWN_SENSOR`], `~unknown`, which no
//!   site identity can be called (`tmc-pki` names use only `A-Z a-z 0-9 . _ -`);
//! - `{sender}`: the relay's sender id (which concentrator it came through).
//!
//! The default, `tmc/{sender}/{topic}`, keeps sites apart on a shared broker cluster.

use std::fmt;

/// What `{sensor}` renders as when the topic carries no identity the broker vouched for. Not a possible
/// identity name (the `~`), and a valid MQTT topic level.
pub const UNKNOWN_SENSOR: &str = "~unknown";

/// The topic level under which the broker's ACL gives each sensor certificate its own space.
const SENSOR_SPACE: &str = "sensors";

/// A parsed topic template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate {
    parts: Vec<Part>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Topic,
    Sensor,
    Sender,
}

/// A template that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("topic template {template:?}: unknown placeholder {{{name}}} (use {{topic}}, {{sensor}} or {{sender}})")]
    Unknown { template: String, name: String },
    #[error("topic template {0:?}: unclosed {{")]
    Unclosed(String),
    #[error("topic template {0:?}: MQTT wildcards + and # cannot be published to")]
    Wildcard(String),
    #[error("topic template is empty")]
    Empty,
}

impl Default for TopicTemplate {
    fn default() -> Self {
        // The default is valid by construction.
        TopicTemplate {
            parts: vec![
                Part::Text("tmc/".into()),
                Part::Sender,
                Part::Text("/".into()),
                Part::Topic,
            ],
            text: "tmc/{sender}/{topic}".into(),
        }
    }
}

impl std::str::FromStr for TopicTemplate {
    type Err = TemplateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(TemplateError::Empty);
        }
        if text.contains(['+', '#']) {
            return Err(TemplateError::Wildcard(text.into()));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].into()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(TemplateError::Unclosed(text.into()));
            };
            let name = &rest[open + 1..open + close];
            parts.push(match name {
                "topic" => Part::Topic,
                "sensor" => Part::Sensor,
                "sender" => Part::Sender,
                _ => {
                    return Err(TemplateError::Unknown {
                        template: text.into(),
                        name: name.into(),
                    })
                }
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.into()));
        }
        Ok(TopicTemplate {
            parts,
            text: text.into(),
        })
    }
}

impl<'de> serde::Deserialize<'de> for TopicTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for TopicTemplate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl fmt::Display for TopicTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TopicTemplate {
    /// The upstream topic of a reading that arrived on `topic` through relay `sender`, the topic as the
    /// site broker delivered it to the relay (so `sensors/<id>/...` names its publisher). Wildcard
    /// characters in the original topic (which a broker would never have delivered) are replaced by `_`.
    pub fn render(&self, topic: &str, sender: u32) -> String {
        self.render_with(topic, sensor_of(topic), sender)
    }

    /// Like [`render`](Self::render) for a reading whose topic no broker ACL stands behind (a legacy
    /// frame): `{sensor}` is [`UNKNOWN_SENSOR`] whatever the topic says.
    pub fn render_unverified(&self, topic: &str, sender: u32) -> String {
        self.render_with(topic, None, sender)
    }

    fn render_with(&self, topic: &str, sensor: Option<&str>, sender: u32) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Topic => out.push_str(topic.trim_start_matches('/')),
                Part::Sensor => out.push_str(sensor.unwrap_or(UNKNOWN_SENSOR)),
                Part::Sender => out.push_str(&sender.to_string()),
            }
        }
        out.replace(['+', '#'], "_")
    }
}

/// The sensor id of a topic in the broker's per-sensor space: `<id>` in `sensors/<id>` and
/// `sensors/<id>/...`, exactly as the ACL grants it (`sensors/<id>/#`). `None` for every other topic,
/// `/sensors/<id>/...` included (its first level is empty, so no ACL line ties it to `<id>`): a topic
/// outside that space names no publisher, whatever its last level looks like.
pub fn sensor_of(topic: &str) -> Option<&str> {
    let mut levels = topic.split('/');
    if levels.next() != Some(SENSOR_SPACE) {
        return None;
    }
    levels.next().filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders() {
        let t: TopicTemplate = "site-a/{sensor}/{topic}/via/{sender}".parse().unwrap();
        assert_eq!(
            t.render("sensors/s1/reading", 10),
            "site-a/s1/sensors/s1/reading/via/10"
        );
        assert_eq!(t.render("/esp8266", 10), "site-a/~unknown/esp8266/via/10");
        assert_eq!(
            TopicTemplate::default().render("/esp8266", 12),
            "tmc/12/esp8266"
        );
        assert_eq!(TopicTemplate::default().to_string(), "tmc/{sender}/{topic}");
        assert_eq!(
            "plain".parse::<TopicTemplate>().unwrap().render("x", 1),
            "plain"
        );
    }

    #[test]
    fn refuses_bad_templates() {
        let e = "a/{who}".parse::<TopicTemplate>().unwrap_err();
        assert!(e.to_string().contains("unknown placeholder {who}"), "{e}");
        assert_eq!(
            "a/{topic".parse::<TopicTemplate>().unwrap_err(),
            TemplateError::Unclosed("a/{topic".into())
        );
        assert!(matches!(
            "a/#".parse::<TopicTemplate>(),
            Err(TemplateError::Wildcard(_))
        ));
        assert_eq!("".parse::<TopicTemplate>(), Err(TemplateError::Empty));
    }

    #[test]
    fn sensor_ids_only_from_the_acl_tied_space() {
        assert_eq!(sensor_of("sensors/sensor1/reading"), Some("sensor1"));
        assert_eq!(sensor_of("sensors/sensor1"), Some("sensor1"));
        for anonymous in [
            "/esp8266",
            "extra/sensorA",
            "/sensors/sensorA/reading",
            "sensors",
            "sensors/",
            "sensors//x",
            "/",
            "",
        ] {
            assert_eq!(sensor_of(anonymous), None, "{anonymous:?}");
        }
        assert_eq!(
            TopicTemplate::default().render("odd/+/topic", 1),
            "tmc/1/odd/_/topic"
        );
    }

    #[test]
    fn topics_without_identity_never_render_a_sensor_name() {
        let t: TopicTemplate = "site/{sensor}/{topic}".parse().unwrap();
        // The legacy topic: every old sensor publishes to it, none is "esp8266".
        assert_eq!(t.render("/esp8266", 1), "site/~unknown/esp8266");
        // Sensor B's extra topic ending in sensor A's name is not credited to A.
        assert_eq!(t.render("extra/sensorA", 1), "site/~unknown/extra/sensorA");
        assert_eq!(
            t.render("/sensors/sensorA/reading", 1),
            "site/~unknown/sensors/sensorA/reading"
        );
        // Only the ACL-tied space names the sensor, and not for a frame no broker stood behind.
        assert_eq!(
            t.render("sensors/sensorB/reading", 1),
            "site/sensorB/sensors/sensorB/reading"
        );
        assert_eq!(
            t.render_unverified("sensors/sensorB/reading", 1),
            "site/~unknown/sensors/sensorB/reading"
        );
    }
}

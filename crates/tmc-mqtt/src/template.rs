//! Upstream topics: where the receiver republishes a reading.
//!
//! A template is text with placeholders:
//! - `{topic}`: the reading's original MQTT topic without leading `/` (`/esp8266` → `esp8266`, so the upstream
//!   topic has no empty first level);
//! - `{sensor}`: the sensor id ([`sensor_of`]);
//! - `{sender}`: the relay's sender id (which concentrator it came through).
//!
//! The default, `tmc/{sender}/{topic}`, keeps sites apart on a shared broker cluster.

use std::fmt;

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

impl fmt::Display for TopicTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TopicTemplate {
    /// The upstream topic of a reading that arrived on `topic` through relay `sender`. Wildcard characters
    /// in the original topic (which a broker would never have delivered) are replaced by `_`.
    pub fn render(&self, topic: &str, sender: u32) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Topic => out.push_str(topic.trim_start_matches('/')),
                Part::Sensor => out.push_str(sensor_of(topic)),
                Part::Sender => out.push_str(&sender.to_string()),
            }
        }
        out.replace(['+', '#'], "_")
    }
}

/// The sensor id in a topic: `<id>` in `sensors/<id>/...`, otherwise the last non-empty level
/// (`/esp8266` → `esp8266`), or `unknown` for a topic with no level at all.
pub fn sensor_of(topic: &str) -> &str {
    let mut levels = topic.split('/').filter(|l| !l.is_empty());
    let first = levels.next();
    if first == Some("sensors") {
        if let Some(id) = topic.split('/').filter(|l| !l.is_empty()).nth(1) {
            return id;
        }
    }
    topic
        .split('/')
        .rfind(|l| !l.is_empty())
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn renders_placeholders() {
        let t: TopicTemplate = "site-a/{sensor}/{topic}/via/{sender}".parse().unwrap();
        assert_eq!(
            t.render("sensors/s1/reading", 10),
            "site-a/s1/sensors/s1/reading/via/10"
        );
        assert_eq!(t.render("/esp8266", 10), "site-a/esp8266/esp8266/via/10");
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
    fn sensor_ids() {
        assert_eq!(sensor_of("sensors/sensor1/reading"), "sensor1");
        assert_eq!(sensor_of("/esp8266"), "esp8266");
        assert_eq!(sensor_of("sensors"), "sensors");
        assert_eq!(sensor_of("/"), "unknown");
        assert_eq!(
            TopicTemplate::default().render("odd/+/topic", 1),
            "tmc/1/odd/_/topic"
        );
    }
}

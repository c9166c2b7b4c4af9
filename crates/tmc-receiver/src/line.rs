//! The JSON line of a reading. `decode` prints it, the stdout and file outputs write it, and the upstream output
//! publishes it as the MQTT payload: one format, built here only.
//!
//! ```text
//! {"topic":"/esp8266","time":1763766000,"sender":10,"counter":4,"index":0,"kid":1,"encoding":"packed","data":"21.5"}
//! {"topic":"/esp8266","time":1763766000,"profile":"legacy","node":10,"data":"Temperature: 21.50 C"}
//! ```
//!
//! - `data` holds the reading's bytes when they are UTF-8, otherwise `data_base64` holds them in standard base64.
//! - (`sender`, `counter`, `index`) identify a reading for consumers that de-duplicate (the upstream output is
//!   at-least-once across reconnects).
//! - A legacy frame has no sender, counter or key: it says `"profile":"legacy"` instead, with the radio `node` it
//!   came from and the time it was received (the service knows both; `decode` of a bare token knows neither).

use base64::Engine;
use serde::Serialize;
use tmc_envelope::Encoding;
use tmc_queue::{Record, LEGACY_SENDER_BASE};

/// Where a reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An authenticated token of the secure profile.
    Secure {
        sender: u32,
        counter: u32,
        /// Position of the reading in its token.
        index: u32,
        kid: u8,
        encoding: Encoding,
    },
    /// The existing deployment's insecure profile.
    Legacy {
        /// Radio node the frame came from, when known.
        node: Option<u8>,
    },
}

/// One reading, ready to be formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadingLine<'a> {
    pub topic: &'a str,
    /// Unix seconds (for a legacy reading: when it was received, if known).
    pub time: Option<u64>,
    pub data: &'a [u8],
    pub origin: Origin,
}

/// Field order is the order of the line (a struct keeps it; a JSON map would sort the keys).
#[derive(Serialize)]
struct Line<'a> {
    topic: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counter: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
}

impl ReadingLine<'_> {
    /// The JSON line, without the newline.
    pub fn to_json(&self) -> String {
        let (data, data_base64) = match std::str::from_utf8(self.data) {
            Ok(text) => (Some(text), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(self.data)),
            ),
        };
        let mut line = Line {
            topic: self.topic,
            time: self.time,
            profile: None,
            node: None,
            sender: None,
            counter: None,
            index: None,
            kid: None,
            encoding: None,
            data,
            data_base64,
        };
        match self.origin {
            Origin::Secure {
                sender,
                counter,
                index,
                kid,
                encoding,
            } => {
                line.sender = Some(sender);
                line.counter = Some(counter);
                line.index = Some(index);
                line.kid = Some(kid);
                line.encoding = Some(match encoding {
                    Encoding::Text => "text",
                    Encoding::Packed => "packed",
                });
            }
            Origin::Legacy { node } => {
                line.profile = Some("legacy");
                line.node = node;
            }
        }
        // Strings, integers and options only: serialising cannot fail.
        serde_json::to_string(&line).unwrap_or_default()
    }
}

impl<'a> From<&'a Record> for ReadingLine<'a> {
    fn from(r: &'a Record) -> Self {
        let origin = if r.legacy {
            Origin::Legacy {
                node: r
                    .sender
                    .checked_sub(LEGACY_SENDER_BASE)
                    .and_then(|n| u8::try_from(n).ok()),
            }
        } else {
            Origin::Secure {
                sender: r.sender,
                counter: r.counter,
                index: r.index,
                kid: r.kid,
                encoding: r.encoding,
            }
        };
        ReadingLine {
            topic: &r.topic,
            time: Some(r.time),
            data: &r.data,
            origin,
        }
    }
}

/// The JSON line of a journal record, without the newline.
pub fn record_json(record: &Record) -> String {
    ReadingLine::from(record).to_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_and_legacy_lines() {
        let secure = ReadingLine {
            topic: "/esp8266",
            time: Some(1_763_766_000),
            data: b"21.5",
            origin: Origin::Secure {
                sender: 10,
                counter: 4,
                index: 1,
                kid: 1,
                encoding: Encoding::Packed,
            },
        };
        assert_eq!(
            secure.to_json(),
            r#"{"topic":"/esp8266","time":1763766000,"sender":10,"counter":4,"index":1,"kid":1,"encoding":"packed","data":"21.5"}"#
        );
        let legacy = ReadingLine {
            topic: "/esp8266",
            time: None,
            data: &[0xff, 0x00],
            origin: Origin::Legacy { node: None },
        };
        assert_eq!(
            legacy.to_json(),
            r#"{"topic":"/esp8266","profile":"legacy","data_base64":"/wA="}"#
        );
    }
}

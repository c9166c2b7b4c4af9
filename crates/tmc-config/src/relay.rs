//! `relay.toml`: what `tmc-relay run` and `tmc-relay status` read.
//!
//! ```toml
//! state_dir = "/var/lib/tmc"      # queue (relay.db), message counter, radio header IDs, status snapshot
//!
//! [mqtt]                          # the site broker, mutual TLS with the relay's certificate
//! host = "mqtt.com"
//! port = 8883
//! ca = "/etc/tmc/ecc.ca.cert.pem"
//! cert = "/etc/tmc/ecc.relay.cert.pem"
//! key = "/etc/tmc/ecc.relay.key.pem"   # or, with the key in the Pi's secure element, instead of `key`:
//! # key_atecc = "/dev/i2c-1"           #   the I2C bus of an ATECC508A/608A holding the relay's private key
//! # key_slot = 0                       #   its key slot, 0–15 (default 0, the device key slot)
//! # atecc_address = 0x60               #   its 7-bit I2C address (default 0x60, the factory address)
//!
//! [ingest]
//! topics = ["/esp8266", "sensors/+/reading"]
//! max_payload = 200               # bytes; larger payloads are refused (and must fit one frame anyway)
//! receive_maximum = 256           # unacknowledged messages the broker may have in flight to us
//! dedupe = true                   # a message equal (topic + payload) to a recently queued one is a copy
//!
//! [radio]                         # tmc_config::RadioSection: board preset and/or sim
//! board = "/etc/tmc/board.toml"
//!
//! [link]
//! gateway = 1                     # the receiver's node address
//! rounds = 5                      # silent rounds before a token is put back and retried later
//!
//! [envelope]
//! keys = "/etc/tmc/keys.toml"
//! sender = 10                     # default: the radio address; unique per relay sharing a key ring
//! encoding = "packed"             # or "text" (what JWT libraries read)
//! max_batch = 64                  # readings per token, at most (and what fits one frame)
//!
//! [queue]
//! capacity = 100000
//! when_full = "refuse"            # back-pressure to the broker; or "drop-oldest"
//!
//! [metrics]                       # Prometheus metrics over HTTP; without this table nothing listens
//! listen = "127.0.0.1:9101"       # the default (tmc_config::listen)
//! ```
//!
//! # The MQTT client key in an ATECC508A/608A
//! With `key_atecc` the relay's private key never exists as a file: the chip on the Pi's I²C bus made it (the
//! provisioning command's GenKey), the site CA issued `cert` for the chip's CSR
//! (`tmc-pki issue --name relay --role relay --csr relay.csr.pem`), and the chip signs each TLS handshake (ECDSA P-256,
//! SHA-256) from a thread that owns it. `key` and `key_atecc` exclude each other; `key_atecc` needs `cert` and
//! `ca`, and must be an absolute device path. Loading the config checks these without touching the chip;
//! `tmc-relay run` then opens the bus, reads the slot's public key and refuses to start when `cert` is not
//! for it ("the certificate in cert (…) is not for the key in the chip's slot N"). A chip that stops answering
//! fails the handshake after a bounded wait (logged), and the relay retries as for any broker outage. The
//! relay's user needs read-write access to the bus device (group `i2c` on Raspberry Pi OS-like systems), and
//! the kernel's `atmel-ecc` driver must not be bound to the chip. See `tmc_config::mqtt::MqttConfig`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tmc_envelope::Encoding;

use crate::file::{load_toml, relative_to, ConfigError};
use crate::listen::ListenSection;
use crate::mqtt::MqttConfig;
use crate::radio::RadioSection;

/// `relay.toml`. Rendered (`Serialize`), `[ingest]` and `[queue]` are left out when they are the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    pub mqtt: MqttConfig,
    #[serde(default, skip_serializing_if = "is_default")]
    pub ingest: IngestSection,
    pub radio: RadioSection,
    // Always written: which gateway a relay sends to is the site's decision, worth reading in the file.
    #[serde(default)]
    pub link: LinkSection,
    pub envelope: EnvelopeSection,
    #[serde(default, skip_serializing_if = "is_default")]
    pub queue: QueueSection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<ListenSection>,
}

/// What to do with a new message when the queue holds `capacity` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FullPolicy {
    /// Refuse the new message (back-pressure to the broker). Loses nothing.
    #[default]
    Refuse,
    /// Delete the oldest unstaged entry and count it as dropped.
    DropOldest,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    #[serde(default = "default_topics")]
    pub topics: Vec<String>,
    #[serde(default = "default_max_payload")]
    pub max_payload: usize,
    #[serde(default = "default_receive_maximum")]
    pub receive_maximum: u16,
    /// Recognise copies by topic and payload (sensors put a sequence number in each reading).
    #[serde(default = "default_true")]
    pub dedupe: bool,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            topics: default_topics(),
            max_payload: default_max_payload(),
            receive_maximum: default_receive_maximum(),
            dedupe: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSection {
    #[serde(default = "default_gateway")]
    pub gateway: u8,
    #[serde(default = "default_rounds")]
    pub rounds: u32,
    /// Back-off after the first silent round, seconds (doubles up to `max_backoff`).
    #[serde(default = "default_backoff")]
    pub backoff: f64,
    #[serde(default = "default_max_backoff")]
    pub max_backoff: f64,
}

impl Default for LinkSection {
    fn default() -> Self {
        LinkSection {
            gateway: default_gateway(),
            rounds: default_rounds(),
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSection {
    pub keys: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<u32>,
    #[serde(
        default = "default_encoding",
        deserialize_with = "encoding",
        serialize_with = "encoding_name"
    )]
    pub encoding: Encoding,
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSection {
    #[serde(default = "default_capacity")]
    pub capacity: u64,
    #[serde(default, deserialize_with = "full_policy")]
    pub when_full: FullPolicy,
}

impl Default for QueueSection {
    fn default() -> Self {
        QueueSection {
            capacity: default_capacity(),
            when_full: FullPolicy::Refuse,
        }
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/tmc")
}
fn default_topics() -> Vec<String> {
    vec!["/esp8266".into(), "sensors/+/reading".into()]
}
fn default_max_payload() -> usize {
    200
}
fn default_receive_maximum() -> u16 {
    256
}
fn default_true() -> bool {
    true
}
fn default_gateway() -> u8 {
    1
}
fn default_rounds() -> u32 {
    5
}
fn default_backoff() -> f64 {
    2.0
}
fn default_max_backoff() -> f64 {
    60.0
}
fn default_encoding() -> Encoding {
    Encoding::Packed
}
/// More than fits one frame of the firmware's readings (about 25 with batch layout version 2).
fn default_max_batch() -> usize {
    64
}
fn default_capacity() -> u64 {
    100_000
}

fn encoding<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Encoding, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

fn encoding_name<S: serde::Serializer>(encoding: &Encoding, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(encoding)
}

fn full_policy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<FullPolicy, D::Error> {
    match String::deserialize(d)?.as_str() {
        "refuse" => Ok(FullPolicy::Refuse),
        "drop-oldest" => Ok(FullPolicy::DropOldest),
        other => Err(serde::de::Error::custom(format!(
            "unknown policy {other:?} (expected \"refuse\" or \"drop-oldest\")"
        ))),
    }
}

impl EnvelopeSection {
    /// The key ring `keys`, everything else as defaulted.
    pub fn with_keys(keys: impl Into<PathBuf>) -> Self {
        EnvelopeSection {
            keys: keys.into(),
            sender: None,
            encoding: default_encoding(),
            max_batch: default_max_batch(),
        }
    }
}

impl RelayConfig {
    /// The broker, the radio and the key ring, everything else as defaulted (what a writer starts from).
    pub fn new(mqtt: MqttConfig, radio: RadioSection, keys: impl Into<PathBuf>) -> Self {
        RelayConfig {
            state_dir: default_state_dir(),
            mqtt,
            ingest: IngestSection::default(),
            radio,
            link: LinkSection::default(),
            envelope: EnvelopeSection::with_keys(keys),
            queue: QueueSection::default(),
            metrics: None,
        }
    }

    /// Where to serve the metrics (`[metrics]`), if anywhere.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.metrics
            .as_ref()
            .map(|m| m.address(crate::listen::RELAY_PORT))
    }

    /// The file's text: `header` as comment lines, then every setting that is not a section's default.
    pub fn to_toml(&self, header: &str) -> String {
        crate::file::render_toml(header, self)
    }

    /// Parses `text` as if read from `path`, without resolving or checking (a rendered file's round trip).
    pub fn parse_unchecked(text: &str, path: &Path) -> Result<Self, ConfigError> {
        crate::file::parse_toml(text, path)
    }

    /// Reads and checks `path`; relative paths in it are taken from its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut config: RelayConfig = load_toml(path)?;
        config.resolve(path);
        config.check(path)?;
        Ok(config)
    }

    fn resolve(&mut self, path: &Path) {
        self.state_dir = relative_to(path, &self.state_dir);
        self.envelope.keys = relative_to(path, &self.envelope.keys);
        let broker = &mut self.mqtt.broker;
        for file in [&mut broker.ca, &mut broker.cert, &mut broker.key]
            .into_iter()
            .flatten()
        {
            *file = relative_to(path, file);
        }
        self.radio.resolve_paths(path);
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::invalid(path, m));
        // The host ends up in name lookups, the broker certificate check and, on a Pi, a line of /etc/hosts.
        if let Err(e) = crate::mqtt::check_host(&self.mqtt.broker.host) {
            return bad(format!("[mqtt] {e}"));
        }
        if self.ingest.topics.is_empty() {
            return bad("[ingest] topics: at least one topic filter is needed".into());
        }
        for t in &self.ingest.topics {
            if let Err(e) = crate::mqtt::filter::check_filter(t) {
                return bad(format!("[ingest] topics: {t:?}: {e}"));
            }
        }
        if self.ingest.max_payload == 0 || self.ingest.max_payload > tmc_envelope::MAX_TOKEN_LEN {
            return bad(format!(
                "[ingest] max_payload {}: must be 1–{} bytes (a reading must fit one LoRa frame)",
                self.ingest.max_payload,
                tmc_envelope::MAX_TOKEN_LEN
            ));
        }
        if self.ingest.receive_maximum == 0 {
            return bad("[ingest] receive_maximum must be at least 1".into());
        }
        if self.envelope.max_batch == 0 {
            return bad("[envelope] max_batch must be at least 1".into());
        }
        if self.queue.capacity == 0 {
            return bad("[queue] capacity must be at least 1".into());
        }
        if self.link.rounds == 0 {
            return bad("[link] rounds must be at least 1".into());
        }
        for (name, v) in [
            ("backoff", self.link.backoff),
            ("max_backoff", self.link.max_backoff),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
                return bad(format!("[link] {name} {v}: must be 0–86400 seconds"));
            }
        }
        Ok(())
    }

    pub fn queue_path(&self) -> PathBuf {
        self.state_dir.join("relay.db")
    }

    pub fn status_path(&self) -> PathBuf {
        self.state_dir.join("relay.status.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[mqtt]
host = "mqtt.com"
[radio]
sim = "sim:air"
address = 10
[envelope]
keys = "keys.toml"
"#;

    fn load(text: &str) -> Result<RelayConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, text).unwrap();
        RelayConfig::load(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = load(MINIMAL).unwrap();
        assert_eq!(c.ingest.topics, ["/esp8266", "sensors/+/reading"]);
        assert_eq!(c.envelope.encoding, Encoding::Packed);
        assert_eq!((c.link.gateway, c.envelope.max_batch), (1, 64));
        assert_eq!(c.queue.when_full, FullPolicy::Refuse);
        assert!(c.envelope.keys.is_absolute());
        assert!(c.radio.sim.unwrap().contains("/air"));
    }

    #[test]
    fn one_line_errors() {
        for (extra, want) in [
            ("[queue]\nwhen_full = \"drop\"", "unknown policy \"drop\""),
            ("[ingest]\ntopics = [\"a/#/b\"]", "a/#/b"),
            ("[ingest]\nmax_payload = 300", "max_payload 300"),
            ("[link]\nbackoff = -1.0", "[link] backoff -1"),
            ("[envelope2]\n", "unknown field `envelope2`"),
        ] {
            let err = load(&format!("{MINIMAL}\n{extra}")).unwrap_err();
            assert!(err.contains(want), "{extra}: {err}");
            assert!(err.contains("relay.toml") && !err.contains('\n'), "{err}");
        }
        // A host that would add a line to /etc/hosts on the Pi.
        let err = load(&MINIMAL.replace(
            "host = \"mqtt.com\"",
            "host = \"x\\n203.0.113.7 some.host\"",
        ))
        .unwrap_err();
        assert!(
            err.contains(
                "[mqtt] host \"x\\n203.0.113.7 some.host\" is not a DNS name or an IP address"
            ),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        let err = load("[mqtt]\nhost = \"x\"\n").unwrap_err();
        assert!(err.contains("missing field `radio`"), "{err}");
    }

    const CHIP: &str = "ca = \"ca.pem\"\ncert = \"relay.cert.pem\"\nkey_atecc = \"/dev/i2c-1\"";

    #[test]
    fn key_file_or_key_in_the_chip() {
        let file = load(&MINIMAL.replace(
            "host = \"mqtt.com\"",
            "host = \"mqtt.com\"\nca = \"ca.pem\"\ncert = \"relay.cert.pem\"\nkey = \"relay.key.pem\"",
        ))
        .unwrap();
        assert_eq!(file.mqtt.chip, None);
        assert!(file.mqtt.broker.key.unwrap().is_absolute());

        let chip = load(&MINIMAL.replace(
            "host = \"mqtt.com\"",
            &format!("host = \"mqtt.com\"\n{CHIP}"),
        ))
        .unwrap();
        let key = chip.mqtt.chip.clone().unwrap();
        assert_eq!(
            (key.device.to_str(), key.slot, key.address),
            (Some("/dev/i2c-1"), crate::mqtt::DEFAULT_KEY_SLOT, 0x60)
        );
        assert_eq!(chip.mqtt.broker.key, None);
        // Files resolve relative to relay.toml; the device path stays as given.
        assert!(chip.mqtt.broker.cert.unwrap().ends_with("relay.cert.pem"));
        assert!(chip.mqtt.broker.ca.unwrap().is_absolute());

        let chip = load(&MINIMAL.replace(
            "host = \"mqtt.com\"",
            &format!("host = \"mqtt.com\"\n{CHIP}\nkey_slot = 2\natecc_address = 0x61"),
        ))
        .unwrap();
        let key = chip.mqtt.chip.unwrap();
        assert_eq!((key.slot, key.address), (2, 0x61));
    }

    #[test]
    fn chip_key_errors_name_the_settings_and_the_file() {
        for (mqtt, want) in [
            (
                format!("{CHIP}\nkey = \"relay.key.pem\""),
                "`key` and `key_atecc` exclude each other",
            ),
            (format!("{CHIP}\nkey_slot = 16"), "`key_slot` = 16"),
            (
                format!("{CHIP}\natecc_address = 0x00"),
                "`atecc_address` = 0x00",
            ),
            (
                "ca = \"ca.pem\"\nkey_atecc = \"/dev/i2c-1\"".to_string(),
                "`key_atecc` needs `cert`",
            ),
            (
                "cert = \"c.pem\"\nkey_atecc = \"/dev/i2c-1\"".to_string(),
                "`key_atecc` needs `ca`",
            ),
            (
                format!(
                    "{}\nkey_atecc = \"i2c-1\"",
                    &CHIP[..CHIP.rfind('\n').unwrap()]
                ),
                "absolute path",
            ),
            (
                "key_slot = 1".to_string(),
                "`key_slot` is for a key in an ATECC chip",
            ),
            (
                "key_atecc = 1".to_string(),
                "line 4, column 13: invalid type: integer `1`, expected path string",
            ),
        ] {
            let err = load(&MINIMAL.replace(
                "host = \"mqtt.com\"",
                &format!("host = \"mqtt.com\"\n{mqtt}"),
            ))
            .unwrap_err();
            assert!(err.contains(want), "{mqtt}: {err}");
            assert!(err.contains("relay.toml") && !err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn a_rendered_config_reads_back_the_same() {
        let path = Path::new("/etc/tmc/relay.toml");
        let minimal = RelayConfig::parse_unchecked(MINIMAL, path).unwrap();
        let mut full = minimal.clone();
        full.state_dir = "state".into();
        full.mqtt = toml::from_str(&format!(
            "host = \"mqtt.com\"\nport = 8884\n{CHIP}\nkey_slot = 3"
        ))
        .unwrap();
        full.ingest.topics = vec!["a/+/b".into()];
        full.ingest.dedupe = false;
        full.radio.board = Some("board.toml".into());
        full.radio.duty_cycle = Some(2.5);
        full.link.gateway = 3;
        full.link.backoff = 0.25;
        full.envelope.sender = Some(12);
        full.envelope.encoding = Encoding::Text;
        full.queue.when_full = FullPolicy::DropOldest;
        full.metrics = Some(ListenSection {
            listen: Some("0.0.0.0:9200".parse().unwrap()),
        });
        let mut default_metrics = minimal.clone();
        default_metrics.metrics = Some(ListenSection::default());
        assert_eq!(
            default_metrics.metrics_address().unwrap().to_string(),
            "127.0.0.1:9101"
        );
        assert_eq!(minimal.metrics_address(), None);
        for config in [minimal, default_metrics, full] {
            let text = config.to_toml("written by a test\nsecond line");
            assert!(
                text.starts_with("# written by a test\n# second line\n"),
                "{text}"
            );
            assert_eq!(
                RelayConfig::parse_unchecked(&text, path).unwrap(),
                config,
                "{text}"
            );
        }
        // Sections at their defaults are left out.
        let text = RelayConfig::new(
            crate::mqtt::BrokerConfig::plain("mqtt.com", 8883).into(),
            RadioSection::default(),
            "keys.toml",
        )
        .to_toml("");
        assert!(
            !text.contains("[queue]") && !text.contains("[ingest]"),
            "{text}"
        );
        assert!(text.contains("[link]\ngateway = 1\n"), "{text}");
    }
}

//! The receiver's configuration file (`/etc/tmc/receiver.toml`).
//!
//! ```toml
//! state_dir = "/var/lib/tmc"          # inbox at <state_dir>/receiver.db, status at <state_dir>/receiver.status.json
//!
//! [radio]                             # the board's SX1276, or simulated air (see tmc_config::radio)
//! board = "/etc/tmc/board.toml"
//! # sim = "sim:/run/tmc/air"
//! # address = 1                       # default: the board's node_address; 1 (the gateway) without a board
//!
//! [link]
//! peers = [10]                        # relay node addresses accepted
//!
//! [envelope]
//! keys = "/etc/tmc/keys.toml"         # the site key ring (mode 0600)
//! window = 32                         # replay window (0–63)
//! legacy = false                      # also accept the existing RadioHead relays' insecure frames
//!
//! [output]
//! stdout = true                       # JSON lines on stdout
//! file = "/var/lib/tmc/readings.jsonl"   # append-only JSON-lines file, each reading exactly once
//!
//! [upstream]                          # republish to an MQTT broker (QoS 1)
//! host = "broker.example.org"
//! port = 8883
//! ca = "/etc/tmc/upstream-ca.pem"     # TLS; without it plain TCP (only for a broker on this machine)
//! cert = "/etc/tmc/upstream.cert.pem" # mutual TLS (with key)
//! key = "/etc/tmc/upstream.key.pem"
//! client_id = "tmc-receiver"
//! keep_alive = 30
//! topic = "tmc/{sender}/{topic}"      # placeholders {topic}, {sensor} (from sensors/<name>/…, else ~unknown), {sender}
//!
//! [upstream.home_assistant]           # Home Assistant MQTT discovery (absent: off)
//! discovery_prefix = "homeassistant"  # the default, as Home Assistant's
//! fields = ["adc"]                    # fields of a JSON reading to announce (default: every numeric one)
//!
//! [metrics]                           # Prometheus metrics over HTTP; without this table nothing listens
//! listen = "127.0.0.1:9102"           # the default (tmc_config::listen)
//!
//! [web]                               # tmc-web's page over what the receiver stores; without it tmc-web stays off
//! listen = "127.0.0.1:8080"           # the default
//! ```
//!
//! Unknown keys are refused, every error is one line naming the file (and for syntax errors the line and key),
//! and relative paths are taken from the configuration file's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tmc_envelope::replay::{DEFAULT_WINDOW, MAX_WINDOW};

use crate::file::{load_toml, parse_toml, relative_to, render_toml, ConfigError};
use crate::listen::ListenSection;
use crate::mqtt::{BrokerConfig, TopicTemplate};
use crate::radio::RadioSection;

/// The gateway's node address when no board preset names one.
pub const DEFAULT_ADDRESS: u8 = 1;
/// MQTT over TLS, as [`BrokerConfig`] defaults it.
const DEFAULT_UPSTREAM_PORT: u16 = crate::mqtt::DEFAULT_PORT;
/// The upstream client id unless the configuration names one.
pub const DEFAULT_CLIENT_ID: &str = "tmc-receiver";

/// `receiver.toml` as written: what [`Config::load`] checks, and what writers build and render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverFile {
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    pub radio: RadioSection,
    pub link: LinkSection,
    pub envelope: EnvelopeSection,
    #[serde(default)]
    pub output: OutputSection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<ListenSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<ListenSection>,
}

impl ReceiverFile {
    /// The radio, the relays it accepts and the key ring, everything else as defaulted (no output yet).
    pub fn new(radio: RadioSection, peers: Vec<u8>, keys: impl Into<PathBuf>) -> Self {
        ReceiverFile {
            state_dir: default_state_dir(),
            radio,
            link: LinkSection { peers },
            envelope: EnvelopeSection {
                keys: keys.into(),
                window: default_window(),
                legacy: false,
            },
            output: OutputSection::default(),
            upstream: None,
            metrics: None,
            web: None,
        }
    }

    /// The file's text: `header` as comment lines, then the settings.
    pub fn to_toml(&self, header: &str) -> String {
        render_toml(header, self)
    }

    /// Parses `text` as if read from `path`, without resolving or checking (a rendered file's round trip).
    pub fn parse_unchecked(text: &str, path: &Path) -> Result<Self, ConfigError> {
        parse_toml(text, path)
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/tmc")
}

/// `[link]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSection {
    /// Relay node addresses accepted.
    pub peers: Vec<u8>,
}

/// `[envelope]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSection {
    /// The site key ring.
    pub keys: PathBuf,
    /// Replay window (0–63).
    #[serde(default = "default_window")]
    pub window: u32,
    /// Also accept the existing RadioHead relays' insecure frames.
    #[serde(default)]
    pub legacy: bool,
}

fn default_window() -> u32 {
    DEFAULT_WINDOW
}

/// `[output]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// JSON lines on stdout.
    #[serde(default)]
    pub stdout: bool,
    /// Append-only JSON-lines file, each reading exactly once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

/// `[upstream]`: [`BrokerConfig`]'s fields, flattened by hand next to `topic` (serde's `flatten` ignores
/// `deny_unknown_fields`, so a typo would go unnoticed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<u16>,
    #[serde(default)]
    pub topic: TopicTemplate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_assistant: Option<HomeAssistantSection>,
}

/// The discovery prefix Home Assistant listens on unless configured otherwise.
pub const DEFAULT_DISCOVERY_PREFIX: &str = "homeassistant";

/// `[upstream.home_assistant]`: announce each sensor's readings to Home Assistant by MQTT discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeAssistantSection {
    /// Topic prefix of the retained discovery messages.
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
    /// Fields of a reading's JSON object to announce as entities; empty: every numeric one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

impl Default for HomeAssistantSection {
    fn default() -> Self {
        HomeAssistantSection {
            discovery_prefix: default_discovery_prefix(),
            fields: Vec::new(),
        }
    }
}

impl HomeAssistantSection {
    /// Why Home Assistant could not use these settings, if it could not.
    fn check(&self) -> Result<(), String> {
        let prefix = &self.discovery_prefix;
        if prefix.is_empty()
            || prefix.starts_with('/')
            || prefix.ends_with('/')
            || prefix.contains(['+', '#', '\0'])
        {
            return Err(format!(
                "discovery_prefix {prefix:?}: a topic without wildcards and without a leading or trailing /"
            ));
        }
        // Field names go into entity ids and value templates: only what both take as is.
        if let Some(bad) = self.fields.iter().find(|f| !is_field_name(f)) {
            return Err(format!(
                "fields: {bad:?} is not a field name (letters, digits and _ only)"
            ));
        }
        Ok(())
    }
}

/// A JSON field name the discovery can announce: non-empty ASCII letters, digits and `_`.
pub fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn default_discovery_prefix() -> String {
    DEFAULT_DISCOVERY_PREFIX.into()
}

/// Where readings are republished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    pub broker: BrokerConfig,
    pub topic: TopicTemplate,
    /// Home Assistant discovery; `None`: off.
    pub home_assistant: Option<HomeAssistantSection>,
}

/// A checked configuration, paths resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (absolute).
    pub path: PathBuf,
    pub state_dir: PathBuf,
    pub radio: RadioSection,
    pub peers: Vec<u8>,
    pub keys: PathBuf,
    pub window: u32,
    pub legacy: bool,
    pub stdout: bool,
    pub file: Option<PathBuf>,
    pub upstream: Option<UpstreamConfig>,
    /// Where to serve the metrics (`[metrics]`), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Where `tmc-web` serves the page (`[web]`), if it runs at all.
    pub web: Option<SocketAddr>,
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // Absolute, so that relative paths inside resolve the same whatever the working directory later is (the
        // file output's cursor is named after its path).
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let file: ReceiverFile = load_toml(&path)?;
        Self::check(file, &path)
    }

    /// Parses `text` as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file: ReceiverFile = parse_toml(text, path)?;
        Self::check(file, path)
    }

    fn check(file: ReceiverFile, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::invalid(path, message);
        let mut radio = file.radio;
        radio.resolve_paths(path);
        if radio.board.is_none() && radio.sim.is_none() {
            return Err(invalid(
                "[radio]: set `board` (a board preset) or `sim` (simulated air)".into(),
            ));
        }
        if radio.board.is_none() && radio.address.is_none() {
            radio.address = Some(DEFAULT_ADDRESS);
        }
        if file.link.peers.is_empty() {
            return Err(invalid(
                "[link] peers is empty: list the node addresses of the site's relays".into(),
            ));
        }
        if let Some(bad) = file.link.peers.iter().find(|&&p| p == tmc_radio::BROADCAST) {
            return Err(invalid(format!(
                "[link] peers: {bad} is the broadcast address, not a node"
            )));
        }
        if file.envelope.window > MAX_WINDOW {
            return Err(invalid(format!(
                "[envelope] window = {}: at most {MAX_WINDOW}",
                file.envelope.window
            )));
        }
        let upstream = file.upstream.map(|u| {
            let mut broker = BrokerConfig::plain(u.host, u.port.unwrap_or(DEFAULT_UPSTREAM_PORT));
            broker.ca = u.ca.map(|p| relative_to(path, &p));
            broker.cert = u.cert.map(|p| relative_to(path, &p));
            broker.key = u.key.map(|p| relative_to(path, &p));
            broker.client_id = u.client_id;
            if let Some(keep_alive) = u.keep_alive {
                broker.keep_alive = keep_alive;
            }
            UpstreamConfig {
                broker,
                topic: u.topic,
                home_assistant: u.home_assistant,
            }
        });
        if let Some(u) = &upstream {
            if let Err(e) = crate::mqtt::check_host(&u.broker.host) {
                return Err(invalid(format!("[upstream] {e}")));
            }
            if let Some(Err(e)) = u.home_assistant.as_ref().map(HomeAssistantSection::check) {
                return Err(invalid(format!("[upstream.home_assistant] {e}")));
            }
        }
        let output = file.output;
        if !output.stdout && output.file.is_none() && upstream.is_none() {
            return Err(invalid(
                "no output: set [output] stdout = true, [output] file = \"...\", or an [upstream] broker"
                    .into(),
            ));
        }
        Ok(Config {
            path: path.to_owned(),
            state_dir: relative_to(path, &file.state_dir),
            radio,
            peers: file.link.peers,
            keys: relative_to(path, &file.envelope.keys),
            window: file.envelope.window,
            legacy: file.envelope.legacy,
            stdout: output.stdout,
            file: output.file.map(|p| relative_to(path, &p)),
            upstream,
            metrics: file
                .metrics
                .map(|m| m.address(crate::listen::RECEIVER_PORT)),
            web: file.web.map(|w| w.address(crate::listen::WEB_PORT)),
        })
    }

    /// The inbox (journal, replay state, output cursors).
    pub fn inbox_path(&self) -> PathBuf {
        self.state_dir.join("receiver.db")
    }

    /// The status snapshot `tmc-receiver status` reads.
    pub fn status_path(&self) -> PathBuf {
        self.state_dir.join("receiver.status.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
[radio]
sim = \"sim:/tmp/air\"
[link]
peers = [10]
[envelope]
keys = \"keys.toml\"
[output]
stdout = true
";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/site/receiver.toml"))
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.state_dir, Path::new("/var/lib/tmc"));
        assert_eq!(c.keys, Path::new("/site/keys.toml"));
        assert_eq!((c.window, c.legacy), (32, false));
        assert_eq!(c.radio.address, Some(DEFAULT_ADDRESS));
        assert!(c.upstream.is_none() && c.file.is_none());
        assert_eq!(c.inbox_path(), Path::new("/var/lib/tmc/receiver.db"));
        assert_eq!(c.metrics, None);
        let c = parse(&format!("{MINIMAL}[metrics]\n")).unwrap();
        assert_eq!(c.metrics.unwrap().to_string(), "127.0.0.1:9102");
        assert_eq!(c.web, None);
        let c = parse(&format!("{MINIMAL}[web]\n")).unwrap();
        assert_eq!(c.web.unwrap().to_string(), "127.0.0.1:8080");
        let c = parse(&format!("{MINIMAL}[web]\nlisten = \"0.0.0.0:80\"\n")).unwrap();
        assert_eq!(c.web.unwrap().to_string(), "0.0.0.0:80");

        let c = parse(&format!(
            "state_dir = \"state\"\n{MINIMAL}file = \"out/r.jsonl\"\n[upstream]\nhost = \"b\"\nca = \"ca.pem\"\ntopic = \"x/{{sensor}}\"\n"
        ))
        .unwrap();
        assert_eq!(c.state_dir, Path::new("/site/state"));
        assert_eq!(c.file.as_deref(), Some(Path::new("/site/out/r.jsonl")));
        let u = c.upstream.unwrap();
        assert_eq!((u.broker.port, u.broker.keep_alive), (8883, 30));
        assert_eq!(u.broker.ca.as_deref(), Some(Path::new("/site/ca.pem")));
        assert_eq!(u.topic.render("sensors/s1/t", 10), "x/s1");
        assert_eq!(u.home_assistant, None, "discovery is off by default");

        // An empty [upstream.home_assistant] turns discovery on with Home Assistant's own prefix.
        let c = parse(&format!(
            "{MINIMAL}[upstream]\nhost = \"b\"\n[upstream.home_assistant]\n"
        ))
        .unwrap();
        assert_eq!(
            c.upstream.unwrap().home_assistant,
            Some(HomeAssistantSection {
                discovery_prefix: "homeassistant".into(),
                fields: vec![],
            })
        );

        // The simulated air's directory and the board preset too, as the relay takes them.
        let c = parse(&MINIMAL.replace(
            "sim = \"sim:/tmp/air\"",
            "sim = \"sim:air,loss=0.1\"\nboard = \"board.toml\"",
        ))
        .unwrap();
        assert_eq!(c.radio.sim.as_deref(), Some("sim:/site/air,loss=0.1"));
        assert_eq!(
            c.radio.board.as_deref(),
            Some(Path::new("/site/board.toml"))
        );
    }

    #[test]
    fn errors_are_one_line_naming_the_file_and_key() {
        let cases = [
            (
                MINIMAL.replace("peers", "peer"),
                "line 5, column 1: unknown field `peer`",
            ),
            (
                MINIMAL.replace("sim = \"sim:/tmp/air\"", ""),
                "[radio]: set `board`",
            ),
            (MINIMAL.replace("[10]", "[]"), "[link] peers is empty"),
            (
                MINIMAL.replace("stdout = true", "stdout = false"),
                "no output",
            ),
            (
                format!("{MINIMAL}[upstream]\nhost = \"b\"\ntopic = \"a/{{who}}\"\n"),
                "unknown placeholder {who}",
            ),
            (
                MINIMAL.replace("keys.toml\"", "keys.toml\"\nwindow = 64"),
                "[envelope] window = 64: at most 63",
            ),
            (
                format!(
                    "{MINIMAL}[upstream]\nhost = \"b\\n10.0.0.1 evil\"\ntopic = \"a/{{topic}}\"\n"
                ),
                "[upstream] host \"b\\n10.0.0.1 evil\" is not a DNS name or an IP address",
            ),
            (
                format!("{MINIMAL}[upstream]\nhost = \"b\"\n[upstream.home_assistant]\ndiscovery_prefix = \"ha/#\"\n"),
                "[upstream.home_assistant] discovery_prefix \"ha/#\": a topic without wildcards",
            ),
            (
                format!("{MINIMAL}[upstream]\nhost = \"b\"\n[upstream.home_assistant]\ndiscovery_prefix = \"ha/\"\n"),
                "[upstream.home_assistant] discovery_prefix \"ha/\"",
            ),
            (
                format!("{MINIMAL}[upstream]\nhost = \"b\"\n[upstream.home_assistant]\nfields = [\"a.b\"]\n"),
                "[upstream.home_assistant] fields: \"a.b\" is not a field name",
            ),
            (
                format!("{MINIMAL}[upstream]\nhost = \"b\"\n[upstream.home_assistant]\nprefix = \"ha\"\n"),
                "unknown field `prefix`",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(
                err.starts_with("/site/receiver.toml: ") && err.contains(want),
                "{err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn a_rendered_file_reads_back_the_same() {
        let path = Path::new("/site/receiver.toml");
        let minimal = ReceiverFile::parse_unchecked(MINIMAL, path).unwrap();
        let mut full = ReceiverFile::new(
            RadioSection {
                board: Some("board.toml".into()),
                sim: Some("sim:air,loss=0.1".into()),
                address: Some(2),
                duty_cycle: Some(10.0),
            },
            vec![10, 11],
            "keys.toml",
        );
        full.state_dir = "state".into();
        full.envelope.window = 8;
        full.envelope.legacy = true;
        full.output.file = Some("out.jsonl".into());
        full.upstream = Some(UpstreamSection {
            host: "broker.example.org".into(),
            port: Some(8884),
            ca: Some("ca.pem".into()),
            cert: Some("c.pem".into()),
            key: Some("k.pem".into()),
            client_id: Some("gw".into()),
            keep_alive: Some(10),
            topic: "x/{sensor}".parse().unwrap(),
            home_assistant: Some(HomeAssistantSection {
                discovery_prefix: "ha/site".into(),
                fields: vec!["adc".into(), "temp_c".into()],
            }),
        });
        full.metrics = Some(ListenSection {
            listen: Some("[::1]:9300".parse().unwrap()),
        });
        full.web = Some(ListenSection {
            listen: Some("127.0.0.1:8081".parse().unwrap()),
        });
        let mut default_metrics = minimal.clone();
        default_metrics.metrics = Some(ListenSection::default());
        default_metrics.web = Some(ListenSection::default());
        let mut discovery_defaults = full.clone();
        if let Some(u) = &mut discovery_defaults.upstream {
            u.home_assistant = Some(HomeAssistantSection::default());
        }
        for file in [minimal, default_metrics, full, discovery_defaults] {
            let text = file.to_toml("written by a test");
            assert!(text.starts_with("# written by a test\n"), "{text}");
            assert_eq!(
                ReceiverFile::parse_unchecked(&text, path).unwrap(),
                file,
                "{text}"
            );
            Config::parse(&text, path).unwrap();
        }
    }
}

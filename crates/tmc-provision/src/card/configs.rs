//! `relay.toml` and `receiver.toml`: rendered from the options, or a custom file checked with the
//! service's own loader and for paths that would not exist on the Pi.

use std::path::{Component, Path};

use tmc_config::listen::ListenSection;
use tmc_config::mqtt::BrokerConfig;
use tmc_config::radio::RadioSection;
use tmc_config::receiver::{OutputSection, ReceiverFile};
use tmc_config::relay::RelayConfig;

use crate::boot_bundle::layout::{BOARD_FILE, CA_CERT, ETC_TMC, KEYS_FILE, STATE_DIR};
use crate::boot_bundle::manifest::one_line_toml_error;
use crate::card::bundle::Bundle;
use crate::card::error::{io, WriteError};

/// The relay's node address unless `--address` says otherwise (as at the existing sites).
pub const DEFAULT_RELAY_ADDRESS: u8 = 10;
/// The gateway's node address unless `--address` (concentrator: `--gateway`) says otherwise.
pub const DEFAULT_GATEWAY_ADDRESS: u8 = 1;
/// The site broker as the relay reaches it (the broker certificate names it).
pub const BROKER_HOST: &str = tmc_pki::DEFAULT_BROKER_HOST;
/// The broker's TLS port.
pub const BROKER_PORT: u16 = 8883;

fn etc(name: &str) -> String {
    format!("{ETC_TMC}/{name}")
}

/// The concentrator's relay configuration; `metrics`: its `[metrics]` table (`None`: no metrics).
pub fn render_relay(
    name: &str,
    address: u8,
    gateway: u8,
    sender: u32,
    metrics: Option<ListenSection>,
) -> String {
    let mut broker = BrokerConfig::plain(BROKER_HOST, BROKER_PORT);
    broker.ca = Some(etc(CA_CERT).into());
    broker.cert = Some(etc(&relay_cert(name)).into());
    broker.key = Some(etc(&relay_key(name)).into());
    let radio = RadioSection {
        board: Some(etc(BOARD_FILE).into()),
        address: Some(address),
        ..RadioSection::default()
    };
    let mut config = RelayConfig::new(broker.into(), radio, etc(KEYS_FILE));
    config.state_dir = STATE_DIR.into();
    config.link.gateway = gateway;
    config.envelope.sender = Some(sender);
    config.metrics = metrics;
    config.to_toml(&format!(
        "relay.toml of {name}, written by tmc-provision (see tmc_config::relay for every setting)."
    ))
}

/// The gateway's receiver configuration; `metrics` and `web`: its `[metrics]` table and the `[web]` table that
/// turns tmc-web's page on (`None`: off).
pub fn render_receiver(
    address: u8,
    peers: &[u8],
    metrics: Option<ListenSection>,
    web: Option<ListenSection>,
) -> String {
    let radio = RadioSection {
        board: Some(etc(BOARD_FILE).into()),
        address: Some(address),
        ..RadioSection::default()
    };
    let mut file = ReceiverFile::new(radio, peers.to_vec(), etc(KEYS_FILE));
    file.state_dir = STATE_DIR.into();
    file.output = OutputSection {
        stdout: true,
        file: Some(format!("{STATE_DIR}/readings.jsonl").into()),
    };
    file.metrics = metrics;
    file.web = web;
    file.to_toml(
        "receiver.toml, written by tmc-provision (see tmc_config::receiver for every setting;\n\
         an upstream MQTT broker needs a custom file: tmc-provision write --config FILE).",
    )
}

/// Bundle name of a relay's certificate.
pub fn relay_cert(name: &str) -> String {
    format!("ecc.{name}.cert.pem")
}

/// Bundle name of a relay's key.
pub fn relay_key(name: &str) -> String {
    format!("ecc.{name}.key.pem")
}

/// A path field of a custom configuration.
struct PathField {
    table: &'static str,
    key: &'static str,
    /// A relative path names a file beside the configuration, which is bundled (upstream TLS files).
    bundle_relative: bool,
    secret: bool,
}

const RELAY_PATHS: &[PathField] = &[
    field("mqtt", "ca"),
    field("mqtt", "cert"),
    field("mqtt", "key"),
    field("radio", "board"),
    field("envelope", "keys"),
];

const RECEIVER_PATHS: &[PathField] = &[
    field("radio", "board"),
    field("envelope", "keys"),
    PathField {
        table: "upstream",
        key: "ca",
        bundle_relative: true,
        secret: false,
    },
    PathField {
        table: "upstream",
        key: "cert",
        bundle_relative: true,
        secret: false,
    },
    PathField {
        table: "upstream",
        key: "key",
        bundle_relative: true,
        secret: true,
    },
];

const fn field(table: &'static str, key: &'static str) -> PathField {
    PathField {
        table,
        key,
        bundle_relative: false,
        secret: false,
    }
}

/// Checks a custom `relay.toml` with the relay's loader, then that the files it names are on the card.
pub fn custom_relay(
    path: &Path,
    bundle: &mut Bundle,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>, WriteError> {
    tmc_config::relay::RelayConfig::load(path)?;
    custom(path, RELAY_PATHS, bundle, warnings)
}

/// Checks a custom `receiver.toml` with the receiver's loader, bundles the upstream TLS files it names
/// beside it, and checks that the files it names are on the card.
pub fn custom_receiver(
    path: &Path,
    bundle: &mut Bundle,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>, WriteError> {
    tmc_config::receiver::Config::load(path)?;
    custom(path, RECEIVER_PATHS, bundle, warnings)
}

fn custom(
    path: &Path,
    fields: &[PathField],
    bundle: &mut Bundle,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>, WriteError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let text = String::from_utf8_lossy(&bytes);
    // The loader accepted it; this second parse only reads the path values as written (the loader
    // resolves relative ones against this machine's directory, not the Pi's /etc/tmc).
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        WriteError::Config(tmc_config::ConfigError::invalid(
            path,
            one_line_toml_error(&text, &e),
        ))
    })?;
    let config_dir = path.parent().unwrap_or(Path::new("."));
    for f in fields {
        let Some(value) = table
            .get(f.table)
            .and_then(|t| t.get(f.key))
            .and_then(|v| v.as_str())
        else {
            continue;
        };
        let bad = |problem: String| WriteError::ConfigPath {
            path: path.to_owned(),
            field: format!("{}.{}", f.table, f.key),
            value: value.to_owned(),
            problem,
        };
        let installs = || {
            format!(
                "the card installs no such file in {ETC_TMC} (it installs {})",
                bundle.top_level_names().join(", ")
            )
        };
        let value_path = Path::new(value);
        if value_path.is_absolute() {
            match value_path.strip_prefix(ETC_TMC) {
                Ok(rest) => match single_name(rest) {
                    Some(name) if bundle.contains(name) => {}
                    _ => return Err(bad(installs())),
                },
                Err(_) => warnings.push(format!(
                    "{}: {}.{} = {value:?} is not on the card: make sure the image has it",
                    path.display(),
                    f.table,
                    f.key
                )),
            }
            continue;
        }
        let Some(name) = single_name(value_path) else {
            return Err(bad(format!(
                "name a file beside the configuration (installed in {ETC_TMC}) or give an absolute path"
            )));
        };
        if f.bundle_relative {
            if bundle.contains(name) {
                return Err(bad(format!(
                    "{name} is a file the card already carries for another purpose: rename it"
                )));
            }
            let source = config_dir.join(name);
            let bytes = if f.secret {
                tmc_secret_file::read_private(&source)?
            } else {
                std::fs::read(&source).map_err(io(&source))?
            };
            bundle.add(name, bytes, f.secret);
        } else if !bundle.contains(name) {
            return Err(bad(installs()));
        }
    }
    Ok(bytes)
}

/// The file name when `path` is exactly one plain component.
fn single_name(path: &Path) -> Option<&str> {
    let mut components = path.components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(name)), None) => name.to_str(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_receiver_passes_the_receivers_parser() {
        let text = render_receiver(1, &[10, 11], None, None);
        let c = tmc_config::receiver::Config::parse(&text, Path::new("/etc/tmc/receiver.toml"))
            .unwrap();
        assert_eq!(c.peers, [10, 11]);
        assert_eq!(c.radio.address, Some(1));
        assert_eq!(c.keys, Path::new("/etc/tmc/keys.toml"));
        assert_eq!(
            c.file.as_deref(),
            Some(Path::new("/var/lib/tmc/readings.jsonl"))
        );
        assert!(c.stdout && c.upstream.is_none());
        assert_eq!((c.metrics, c.web), (None, None));
        assert!(
            !text.contains("[web]") && !text.contains("[metrics]"),
            "{text}"
        );

        let on = ListenSection::default();
        let text = render_receiver(1, &[10], Some(on.clone()), Some(on));
        let c = tmc_config::receiver::Config::parse(&text, Path::new("/etc/tmc/receiver.toml"))
            .unwrap();
        assert_eq!(
            c.metrics.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:9102")
        );
        assert_eq!(
            c.web.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:8080")
        );
    }

    #[test]
    fn rendered_relay_passes_the_relays_loader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, render_relay("relay-7", 12, 3, 12, None)).unwrap();
        let c = tmc_config::relay::RelayConfig::load(&path).unwrap();
        assert_eq!(c.mqtt.broker.host, "mqtt.com");
        assert_eq!(c.mqtt.broker.port, 8883);
        assert_eq!(
            c.mqtt.broker.key.as_deref(),
            Some(Path::new("/etc/tmc/ecc.relay-7.key.pem"))
        );
        assert_eq!(
            c.radio.board.as_deref(),
            Some(Path::new("/etc/tmc/board.toml"))
        );
        assert_eq!((c.radio.address, c.link.gateway), (Some(12), 3));
        assert_eq!(c.state_dir, Path::new("/var/lib/tmc"));
        assert_eq!(c.metrics_address(), None);

        let listen = "0.0.0.0:9200".parse().unwrap();
        let metrics = ListenSection {
            listen: Some(listen),
        };
        std::fs::write(&path, render_relay("relay-7", 12, 3, 12, Some(metrics))).unwrap();
        let c = tmc_config::relay::RelayConfig::load(&path).unwrap();
        assert_eq!(c.metrics_address(), Some(listen));
    }

    #[test]
    fn single_names() {
        assert_eq!(single_name(Path::new("keys.toml")), Some("keys.toml"));
        assert_eq!(single_name(Path::new("a/keys.toml")), None);
        assert_eq!(single_name(Path::new("../keys.toml")), None);
        assert_eq!(single_name(Path::new("")), None);
    }
}

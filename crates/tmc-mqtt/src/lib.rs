//! MQTT connections the TMC way, shared by the relay (its broker), the receiver (its upstream broker) and the
//! sensor simulator.
//!
//! - [`BrokerConfig`] is the `[mqtt]`/`[upstream]` table of a service's TOML (plain data, from tmc-config):
//!   where the broker is and which files hold the CA, the client certificate and its key. The key is read with
//!   [`tmc_secret_file::read_private`], so a group- or world-readable key is refused with its path and mode.
//! - [`ClientOptions::options`] builds `rumqttc` (MQTT 5, rustls with ring) options; a session can be made
//!   persistent so the broker keeps QoS 1 messages for a client that is down (the relay during a restart).
//!   At most [`PUBLISH_WINDOW`] publishes are in flight (a service that publishes less lowers it further).
//! - [`MqttConfig`] is the same table for a service whose client key may live in an ATECC508A/608A secure
//!   element instead of a file (the relay's `[mqtt]`): `key_atecc = "/dev/i2c-1"` (with `key_slot`, default
//!   [`DEFAULT_KEY_SLOT`], and `atecc_address`, default 0x60) in place of `key`. `cert` is then the
//!   certificate the site CA issued for the chip's CSR (`tmc-pki issue --csr … --role relay`). The two forms
//!   exclude each other. Connecting with a chip key needs the feature `atecc` (module `atecc`): one thread
//!   owns the chip and makes the TLS handshake's signatures; at start the chip's public key must be the
//!   certificate's.
//!
//!   ```toml
//!   [mqtt]
//!   host = "mqtt.com"
//!   ca = "/etc/tmc/ecc.ca.cert.pem"
//!   cert = "/etc/tmc/ecc.relay.cert.pem"   # issued from the chip's CSR
//!   key_atecc = "/dev/i2c-1"               # instead of `key`
//!   key_slot = 0                           # default 0
//!   atecc_address = 0x60                   # default 0x60 (7-bit)
//!   ```
//! - [`TopicTemplate`] renders the upstream topic of a reading from its original topic and sensor id (from
//!   tmc-config, as the next).
//! - [`check_host`] accepts a DNS name or an IP address and nothing else, before a `host` setting reaches a
//!   resolver or a line of `/etc/hosts`.

#[cfg(feature = "atecc")]
pub mod atecc;
mod chip_config;

#[cfg(feature = "atecc")]
pub use chip_config::ChipKeyOptions;

use std::path::{Path, PathBuf};

use rumqttc::{BrokerSessionResumePolicy, MqttOptions, SessionMode, TlsConfiguration, Transport};

pub use rumqttc;
pub use tmc_config::mqtt::{
    check_host, sensor_of, BrokerConfig, ChipKeyConfig, HostError, MqttConfig, TemplateError,
    TopicTemplate, DEFAULT_ATECC_ADDRESS, DEFAULT_KEY_SLOT, UNKNOWN_SENSOR,
};

/// Outgoing QoS 1 publishes a client has in flight at once, unless its service lowers it (the relay, which
/// publishes nothing, keeps one). rumqttc's own default, 65 535, sizes the table of outgoing publishes for
/// that many when the client is built and again on every new-session CONNACK: 16 MB resident whether or
/// not the client ever publishes. 64 is a whole batch of the receiver's upstream output.
pub const PUBLISH_WINDOW: u16 = 64;

/// Packets handled per network read. rumqttc derives it from the publish window unless it is set (half the
/// window, at most 128); this is what the unbounded window gave, so that bounding the window leaves a
/// subscriber's reading as it was.
const READ_BATCH: usize = 128;

/// Client options for a connection with these settings: [`BrokerConfig`] (key in a file) and [`MqttConfig`]
/// (key in a file or in an ATECC chip). The settings themselves are plain data in tmc-config.
pub trait ClientOptions {
    /// Client options; `default_client_id` applies when the config names none.
    fn options(
        &self,
        default_client_id: &str,
        session: Session,
    ) -> Result<MqttOptions, MqttConfigError>;
}

/// A broker setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MqttConfigError {
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] tmc_secret_file::SecretFileError),
    #[error("`cert` and `key` go together: {0} is set without the other")]
    HalfClientAuth(&'static str),
    #[error("`cert` needs `ca`: mutual TLS is TLS")]
    ClientAuthWithoutTls,
    #[error("host is empty")]
    EmptyHost,
    /// A combination of settings that cannot work (see [`MqttConfig::check`]).
    #[error("{0}")]
    Invalid(String),
    /// `key_atecc` in a build without the feature `atecc`.
    #[error("`key_atecc`: this build has no ATECC support (tmc-mqtt feature `atecc`)")]
    NoChipSupport,
    /// The chip key could not be set up (chip absent, wrong slot, certificate for another key, …).
    #[cfg(feature = "atecc")]
    #[error(transparent)]
    Chip(#[from] atecc::ChipKeyError),
}

/// Session kind for [`BrokerConfig::options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// Forget everything on disconnect (publishers that keep their own retry state).
    Clean,
    /// The broker keeps subscriptions and queued QoS 1 messages while the client is away, and the client takes
    /// the session back after its own restart (it keeps no session state of its own: whatever the broker
    /// resends is stored again, and duplicates are the relay queue's business).
    Persistent,
}

impl ClientOptions for BrokerConfig {
    fn options(
        &self,
        default_client_id: &str,
        session: Session,
    ) -> Result<MqttOptions, MqttConfigError> {
        let mut options = base_options(self, default_client_id, session)?;
        let client_auth = match (&self.cert, &self.key) {
            (None, None) => None,
            (Some(_), None) => return Err(MqttConfigError::HalfClientAuth("cert")),
            (None, Some(_)) => return Err(MqttConfigError::HalfClientAuth("key")),
            (Some(cert), Some(key)) => Some((
                read("client certificate", cert)?,
                tmc_secret_file::read_private(key)?,
            )),
        };
        match &self.ca {
            Some(ca) => {
                options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
                    ca: read("CA certificate", ca)?,
                    alpn: None,
                    client_auth,
                }));
            }
            None if client_auth.is_some() => return Err(MqttConfigError::ClientAuthWithoutTls),
            None => {}
        }
        Ok(options)
    }
}

/// Everything but the transport.
pub(crate) fn base_options(
    broker: &BrokerConfig,
    default_client_id: &str,
    session: Session,
) -> Result<MqttOptions, MqttConfigError> {
    if broker.host.is_empty() {
        return Err(MqttConfigError::EmptyHost);
    }
    let id = broker.client_id.as_deref().unwrap_or(default_client_id);
    let mut options = MqttOptions::new(id, (broker.host.as_str(), broker.port));
    options.set_keep_alive(broker.keep_alive);
    options.set_outgoing_inflight_upper_limit(PUBLISH_WINDOW);
    options.set_read_batch_size(READ_BATCH);
    match session {
        Session::Clean => {
            options.set_session_mode(SessionMode::Clean);
        }
        Session::Persistent => {
            options.set_session_mode(SessionMode::Persistent);
            options.set_broker_session_resume_policy(BrokerSessionResumePolicy::AllowBrokerOnly);
        }
    }
    Ok(options)
}

pub(crate) fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, MqttConfigError> {
    std::fs::read(path).map_err(|source| MqttConfigError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_auth_needs_both_files_and_tls() {
        let mut c = BrokerConfig::plain("127.0.0.1", 1883);
        c.cert = Some("c.pem".into());
        let err = c.options("x", Session::Clean).unwrap_err().to_string();
        assert!(err.contains("cert is set without the other"), "{err}");
        c.key = Some("k.pem".into());
        c.cert = None;
        let err = c.options("x", Session::Clean).unwrap_err().to_string();
        assert!(err.contains("key is set without the other"), "{err}");
        assert!(matches!(
            BrokerConfig::plain("", 1).options("x", Session::Clean),
            Err(MqttConfigError::EmptyHost)
        ));
    }

    #[test]
    fn every_client_has_a_bounded_publish_window() {
        // rumqttc allocates its outgoing table for the whole window up front (see PUBLISH_WINDOW).
        const { assert!(PUBLISH_WINDOW <= 1024) };
        let broker = BrokerConfig::plain("127.0.0.1", 1883);
        for session in [Session::Clean, Session::Persistent] {
            for options in [
                broker.options("x", session).unwrap(),
                MqttConfig::from(broker.clone())
                    .options("x", session)
                    .unwrap(),
            ] {
                assert_eq!(
                    options.get_outgoing_inflight_upper_limit(),
                    Some(PUBLISH_WINDOW)
                );
            }
        }
    }

    #[test]
    fn missing_or_exposed_files_are_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut c = BrokerConfig::plain("127.0.0.1", 8883);
        c.ca = Some(dir.path().join("nope.pem"));
        let err = c.options("x", Session::Clean).unwrap_err().to_string();
        assert!(
            err.contains("CA certificate") && err.contains("nope.pem"),
            "{err}"
        );
        std::fs::write(dir.path().join("ca.pem"), "ca").unwrap();
        std::fs::write(dir.path().join("c.pem"), "cert").unwrap();
        let key = dir.path().join("k.pem");
        std::fs::write(&key, "key").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        c.ca = Some(dir.path().join("ca.pem"));
        c.cert = Some(dir.path().join("c.pem"));
        c.key = Some(key.clone());
        let err = c.options("x", Session::Persistent).unwrap_err().to_string();
        assert!(err.contains("k.pem") && err.contains("644"), "{err}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let options = c.options("relay", Session::Persistent).unwrap();
        assert_eq!(options.client_id(), "relay");
    }
}

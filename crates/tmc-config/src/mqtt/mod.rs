//! The MQTT tables of the services' files: where a broker is and how to authenticate to it.
//!
//! - [`BrokerConfig`]: host, port, and the files holding the CA, the client certificate and its key (the
//!   receiver's `[upstream]`, the sensor simulator).
//! - [`MqttConfig`]: the same table for a service whose client key may live in an ATECC508A/608A secure
//!   element instead of a file (the relay's `[mqtt]`): `key_atecc = "/dev/i2c-1"` (with `key_slot`, default
//!   [`DEFAULT_KEY_SLOT`], and `atecc_address`, default 0x60) in place of `key`. The two forms exclude each
//!   other, checked while the table is parsed.
//! - [`TopicTemplate`] renders the upstream topic of a reading; [`filter`] checks and matches topic filters.
//! - [`check_host`] accepts a DNS name or an IP address and nothing else, before a `host` setting reaches a
//!   resolver or a line of `/etc/hosts`.
//!
//! Connecting with these settings is `tmc-mqtt`'s business (it re-exports them).

mod chip;
pub mod filter;
mod host;
mod template;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use chip::{ChipKeyConfig, MqttConfig, DEFAULT_ATECC_ADDRESS, DEFAULT_KEY_SLOT};
pub use host::{check_host, HostError};
pub use template::{sensor_of, TemplateError, TopicTemplate, UNKNOWN_SENSOR};

/// Where a broker is and how to authenticate to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Host name or address (the site broker is `mqtt.com` on the access point).
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// CA certificate (PEM) that signed the broker's certificate. Without it the connection is plain TCP,
    /// which is only acceptable to a broker on the same machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// MQTT client id (the site broker replaces it by the certificate's CN anyway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Keep-alive in seconds.
    #[serde(default = "default_keep_alive")]
    pub keep_alive: u16,
}

/// MQTT over TLS.
pub const DEFAULT_PORT: u16 = 8883;
/// Keep-alive in seconds unless the table says otherwise.
pub const DEFAULT_KEEP_ALIVE: u16 = 30;

fn default_port() -> u16 {
    DEFAULT_PORT
}

fn default_keep_alive() -> u16 {
    DEFAULT_KEEP_ALIVE
}

impl BrokerConfig {
    /// A plain-TCP broker on `host:port` (tests, local tools).
    pub fn plain(host: impl Into<String>, port: u16) -> Self {
        BrokerConfig {
            host: host.into(),
            port,
            ca: None,
            cert: None,
            key: None,
            client_id: None,
            keep_alive: default_keep_alive(),
        }
    }

    /// Whether the connection uses TLS.
    pub fn tls(&self) -> bool {
        self.ca.is_some()
    }

    /// `host:port`, for logs.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BrokerConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn defaults_and_unknown_fields() {
        let c = parse("host = \"mqtt.com\"").unwrap();
        assert_eq!((c.port, c.keep_alive, c.tls()), (8883, 30, false));
        assert_eq!(c.address(), "mqtt.com:8883");
        let err = parse("host = \"x\"\nprot = 1").unwrap_err().to_string();
        assert!(err.contains("unknown field `prot`"), "{err}");
    }
}

//! Tables that turn an HTTP listener on: `[metrics]` in `relay.toml` and `receiver.toml` (where the service
//! serves its counters to Prometheus) and `[web]` in `receiver.toml` (where `tmc-web` serves the gateway's page).
//!
//! ```toml
//! [metrics]
//! listen = "127.0.0.1:9101"   # default: 127.0.0.1 and the service's port (relay 9101, receiver 9102)
//!
//! [web]
//! listen = "127.0.0.1:8080"   # default: 127.0.0.1, port 8080
//! ```
//!
//! Without the table nothing listens. The default address is the loopback interface only: the counters and the
//! page name topics and relays, so serving them to the network (`listen = "0.0.0.0:9101"`) must be written out.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// The relay's port unless `listen` names one.
pub const RELAY_PORT: u16 = 9101;
/// The receiver's port unless `listen` names one (both services may run on one machine).
pub const RECEIVER_PORT: u16 = 9102;
/// The web page's port unless `listen` names one.
pub const WEB_PORT: u16 = 8080;

/// `[metrics]` or `[web]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenSection {
    /// The address and port to listen on; default 127.0.0.1 and the service's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl ListenSection {
    /// Where to listen: `listen`, else the loopback interface on `default_port`.
    pub fn address(&self, default_port: u16) -> SocketAddr {
        self.listen
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, default_port)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_loopback_interface() {
        let section: ListenSection = toml::from_str("").unwrap();
        assert_eq!(section.address(RELAY_PORT).to_string(), "127.0.0.1:9101");
        let section: ListenSection = toml::from_str("listen = \"[::]:9200\"").unwrap();
        assert_eq!(section.address(RELAY_PORT).to_string(), "[::]:9200");
        let err = toml::from_str::<ListenSection>("listen = \"localhost\"").unwrap_err();
        assert!(err.to_string().contains("invalid socket address"), "{err}");
    }
}

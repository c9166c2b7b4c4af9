//! `[metrics]`, shared by `relay.toml` and `receiver.toml`: where the service serves its counters to Prometheus.
//!
//! ```toml
//! [metrics]
//! listen = "127.0.0.1:9101"   # default: 127.0.0.1 and the service's port (relay 9101, receiver 9102)
//! ```
//!
//! Without the table nothing listens. The default address is the loopback interface only: the counters name
//! topics and relays, so serving them to the network (`listen = "0.0.0.0:9101"`) must be written out.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// The relay's port unless `listen` names one.
pub const RELAY_PORT: u16 = 9101;
/// The receiver's port unless `listen` names one (both services may run on one machine).
pub const RECEIVER_PORT: u16 = 9102;

/// `[metrics]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// The address and port to listen on; default 127.0.0.1 and the service's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl MetricsSection {
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
        let section: MetricsSection = toml::from_str("").unwrap();
        assert_eq!(section.address(RELAY_PORT).to_string(), "127.0.0.1:9101");
        let section: MetricsSection = toml::from_str("listen = \"[::]:9200\"").unwrap();
        assert_eq!(section.address(RELAY_PORT).to_string(), "[::]:9200");
        let err = toml::from_str::<MetricsSection>("listen = \"localhost\"").unwrap_err();
        assert!(err.to_string().contains("invalid socket address"), "{err}");
    }
}

//! The `[ap]` section as written, before validation. Every field is optional (the defaults work as-is) and
//! unknown fields are errors: a typo must not silently fall back to a default.

use serde::Deserialize;

/// The whole site file. Later sections (broker, topics, node ids) join this struct.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSite {
    #[serde(default)]
    pub ap: RawAp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAp {
    pub interface: Option<String>,
    pub ssid: Option<String>,
    pub passphrase: Option<String>,
    pub passphrase_file: Option<String>,
    pub country: Option<String>,
    pub channel: Option<RawChannel>,
    pub ieee80211n: Option<bool>,
    pub hidden_ssid: Option<bool>,
    pub isolate_clients: Option<bool>,
    pub address: Option<String>,
    pub dhcp_start: Option<String>,
    pub dhcp_end: Option<String>,
    pub lease_time: Option<RawDuration>,
    pub local_names: Option<Vec<RawLocalName>>,
    pub upstream_interface: Option<String>,
    pub upstream_dns: Option<Vec<String>>,
    #[serde(default)]
    pub static_leases: Vec<RawStaticLease>,
}

/// `channel = 6` or `channel = "auto"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawChannel {
    Number(i64),
    Text(String),
}

/// `lease_time = 3600` (seconds) or `lease_time = "1h"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawDuration {
    Seconds(i64),
    Text(String),
}

/// `"mqtt.com"` (answers with the AP address) or `{ name = "nas.lan", address = "10.33.33.5" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawLocalName {
    Name(String),
    Record { name: String, address: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStaticLease {
    pub mac: String,
    pub address: String,
    pub name: Option<String>,
}

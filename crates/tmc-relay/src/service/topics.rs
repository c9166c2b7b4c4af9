//! MQTT topic filters: checking the configured ones (with `relay.toml`, in tmc-config) and matching incoming
//! topics against them.

pub use tmc_config::mqtt::filter::{check_filter, matches, FilterError};

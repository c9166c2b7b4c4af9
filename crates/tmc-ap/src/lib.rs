//! TMC access point helper: turns the site file's `[ap]` section into the hostapd, dnsmasq,
//! systemd-networkd (and, with an uplink, sysctl + nftables) files the concentrator Pi runs its sensors'
//! Wi-Fi with; validates them with the real daemons; applies them atomically and idempotently; reports
//! associated stations and leases.
//!
//! The `tmc-ap` binary is a thin layer over this library ([`cli`]).

pub mod apply;
mod atomic;
pub mod check;
pub mod cli;
pub mod daemons;
pub mod files;
pub mod render;
pub mod status;

pub use apply::{apply, ApplyError, ApplyReport, ChangeKind, ServiceManager, Systemctl};
pub use check::{check, CheckReport};
pub use files::{Desired, ManagedFile, Service};
pub use render::render;

//! The files an operator writes, in one place: each parsed strictly (unknown keys refused) with errors that
//! name the file, the key and the problem, and rendered back from the same types, so that a new key is added
//! once and every writer (provisioning, the demo) picks it up.
//!
//! - [`site`]: the site file (`board-config/site.toml`, `/etc/tmc/site.toml`), today its `[ap]` section.
//! - [`relay`]: `relay.toml`, what `tmc-relay run` and `status` read; [`assignment`]: the `assignment.toml`
//!   beside it, the node address and sender id the site gave the board.
//! - [`receiver`]: `receiver.toml`, what `tmc-receiver run` and `status` read.
//! - The tables they share: [`mqtt`] (`[mqtt]`, `[upstream]`: broker, TLS files, a key in an ATECC chip, topic
//!   filters and templates), [`radio`] (`[radio]`: board preset or simulated air) and [`FullPolicy`]
//!   (`[queue] when_full`), [`listen`] (`[metrics]`, `[web]`: where a service serves Prometheus metrics, where the page is served).
//! - [`file`]: reading a TOML file into one of these types ([`ConfigError`], one line naming file and key) and
//!   resolving the paths inside it ([`relative_to`]).
//!
//! Only plain data and parsing live here: opening a broker connection, a radio or a queue from these values is
//! the business of `tmc-mqtt`, `tmc-service` and `tmc-queue`, which re-export what their users need.

pub mod assignment;
pub mod file;
pub mod listen;
pub mod mqtt;
pub mod radio;
pub mod receiver;
pub mod relay;
pub mod site;

pub use file::{load_toml, parse_toml, relative_to, render_toml, ConfigError};
pub use radio::RadioSection;
pub use relay::FullPolicy;
pub use site::{SiteConfig, SiteError};

//! What TMC's long-running services (the relay and the receiver) share, so each of them is only its own logic.
//!
//! - [`config`]: a service's TOML file, read strictly (unknown keys refused) with errors that name the file,
//!   the line and the key (tmc-config's, re-exported).
//! - [`shutdown`]: SIGTERM/SIGINT turn into a [`Shutdown`] that every loop checks and every wait wakes up on.
//! - [`notify`]: systemd `Type=notify` readiness, status text and watchdog pings (no-ops outside systemd).
//! - [`status`]: the snapshot a running service writes for its `status` command (only when it changed).
//! - [`supervisor`]: the loop that writes that snapshot, watches the service's loops and pings the watchdog.
//! - [`metrics`]: `[metrics]`, the service's counters served to Prometheus over HTTP, mapped at each scrape.
//! - [`radio`]: the `[radio]` table and `--board`/`--radio`, opened as the board's SX1276 or the simulated air,
//!   framed as reliable datagrams within the duty cycle.

/// Reading a service's configuration file: tmc-config's, so that tools which only read or write these files
/// need not link the service stack.
pub mod config {
    pub use tmc_config::file::*;
}
pub mod metrics;
pub mod notify;
pub mod radio;
pub mod shutdown;
pub mod status;
pub mod supervisor;
pub mod wakeup;

pub use config::{load_toml, ConfigError};
pub use metrics::{MetricsServer, Scrape};
pub use notify::{Heartbeat, Notifier, Notify, Watchdog};
pub use shutdown::Shutdown;
pub use status::{read_status, Stamped, StatusFile};
pub use supervisor::{Report, Supervisor};
pub use wakeup::Wakeup;

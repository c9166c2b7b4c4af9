//! # tmc-provision
//!
//! One image serves every board; what makes a board a **concentrator** (access point, broker, relay) or a
//! **gateway** (receiver) is put on its SD card after flashing, and installed by the board itself at first
//! boot. Nothing secret is baked into the image, and nothing secret stays on the card.
//!
//! The crate does three jobs on three machines, one module each:
//!
//! | job | runs on | commands | module |
//! |---|---|---|---|
//! | card writer: a Pi board's role, configuration and keys onto its flashed SD card | the PC (`make provision`) | `write`, `list` | [`card`] |
//! | installer: the card's bundle into the system, the role's units enabled, the secrets off the card | the Pi, at first boot | `firstboot` | [`firstboot`](mod@firstboot) |
//! | sensor provisioning: an ESP8266's compiled-in configuration and its identity in its secure element | the PC (`make firmware`, `make provision-sensor`) | `sensor-config`, `sensor-identity`, `sensor-console` | [`sensor`] |
//!
//! The card writer and the installer agree through [`boot_bundle`]: the manifest on the boot partition,
//! where each of its files goes on the Pi, and the crash-safe file writes both use. `chip-csr`, run by hand
//! on a concentrator Pi whose relay key is in its own ATECC608, belongs to none of the three: it sits in
//! [`cli`] with the secure-element options it shares with `sensor-identity`. [`cli`] is the command line;
//! each job's subcommands, their options and their output are in that job's module (`card::cli`, ...), and
//! `main.rs` only parses, dispatches and turns the result into the exit status.

pub mod boot_bundle;
pub mod card;
pub mod cli;
pub mod firstboot;
pub mod sensor;

pub use boot_bundle::manifest::{
    FileEntry, Manifest, ManifestError, Role, BUNDLE_DIR, MANIFEST_FILE,
};
pub use card::boards::{Board, Boards, BoardsError, BOARDS_FILE};
pub use card::{
    render_receiver, render_relay, write, WriteError, WriteOptions, WriteReport,
    DEFAULT_GATEWAY_ADDRESS, DEFAULT_RELAY_ADDRESS,
};
pub use firstboot::{firstboot, Action, FirstbootError, FirstbootReport, Outcome};
pub use sensor::{
    identity_file_beside, sensor_config, sensor_console, NodeKey, SensorConfigError,
    SensorConfigOptions, SensorConfigReport, SensorConsoleError, SensorConsoleOptions,
    SensorConsoleReport, DEFAULT_SENSOR_BROKER_PORT, DEFAULT_SENSOR_INTERVAL_MS,
    DEFAULT_SENSOR_TOPIC,
};
pub use tmc_ap::{ServiceManager, Systemctl};

//! `[radio]`: which radio a service uses, the board's SX1276 or the simulated air.
//!
//! ```toml
//! [radio]
//! board = "/etc/tmc/board.toml"    # pins, frequency, modem, power, region (duty cycle), node address
//! # sim = "sim:/run/tmc/air,loss=0.2,corrupt=0.01,seed=7"   # simulated air instead of the board's SPI/GPIO
//! # address = 10                    # overrides the board's node address (required with sim and no board)
//! ```
//!
//! With `sim` and a `board`, the board's frequency, modem and duty cycle are simulated; with `sim` alone,
//! RadioHead's defaults at 868.0 MHz and a 1 % duty cycle (the EU 868.0–868.6 MHz band). Opening the radio
//! these settings name is the services' business, not this crate's.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The `[radio]` table of a service's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadioSection {
    /// Board preset file (relative paths are taken from the config file's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<PathBuf>,
    /// Simulated air: `sim:DIR[,loss=P][,corrupt=P][,seed=N]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<String>,
    /// This node's address (default: the board's `node_address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<u8>,
    /// Duty cycle in percent, for the simulated air only (tests that cannot wait an hour for the 1 % budget);
    /// on a board the region's band sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duty_cycle: Option<f64>,
}

impl RadioSection {
    /// Takes a relative `board` path and `sim:` directory from `config_file`'s directory, as every path in a
    /// service's configuration file (the relay and the receiver both call it when they load theirs).
    pub fn resolve_paths(&mut self, config_file: &Path) {
        if let Some(board) = &self.board {
            if board.is_relative() {
                if let Some(dir) = config_file.parent() {
                    self.board = Some(dir.join(board));
                }
            }
        }
        if let Some(sim) = &self.sim {
            self.sim = Some(resolve_sim_dir(config_file, sim));
        }
    }
}

/// `sim:DIR,...` with a relative DIR taken from `config_file`'s directory (other text unchanged).
pub fn resolve_sim_dir(config_file: &Path, spec: &str) -> String {
    let (prefix, rest) = match spec.strip_prefix("sim:") {
        Some(rest) => ("sim:", rest),
        None => ("", spec),
    };
    let (dir, options) = match rest.split_once(',') {
        Some((dir, options)) => (dir, Some(options)),
        None => (rest, None),
    };
    if dir.is_empty() || Path::new(dir).is_absolute() {
        return spec.to_owned();
    }
    let dir = match config_file.parent() {
        Some(parent) => parent.join(dir),
        None => PathBuf::from(dir),
    };
    match options {
        Some(options) => format!("{prefix}{},{options}", dir.display()),
        None => format!("{prefix}{}", dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_dirs_follow_the_config_file() {
        let config = Path::new("/site/relay.toml");
        assert_eq!(resolve_sim_dir(config, "sim:air"), "sim:/site/air");
        assert_eq!(
            resolve_sim_dir(config, "sim:air,loss=0.2"),
            "sim:/site/air,loss=0.2"
        );
        assert_eq!(resolve_sim_dir(config, "sim:/run/air"), "sim:/run/air");
    }
}

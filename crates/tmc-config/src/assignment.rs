//! `assignment.toml` beside `relay.toml`: the node address and envelope sender id the site assigned to this
//! board (`tmc-provision write` records them in the site's board inventory and puts this file on the card).
//!
//! ```toml
//! name = "concentrator-1"
//! address = 10
//! sender = 10
//! ```
//!
//! The envelope's IV is sender ‖ counter under the site key: two relays sealing with one sender id repeat each
//! other's keystream, and the gateway refuses one relay's tokens as replays. When this file exists the relay
//! refuses to run with any other address or sender id; without it (a relay set up by hand) nothing is checked.

use std::path::{Path, PathBuf};

use crate::file::{load_toml, render_toml, ConfigError};
use serde::{Deserialize, Serialize};

/// The file's name, in the directory of the relay's configuration.
pub const FILE_NAME: &str = "assignment.toml";

/// What the site assigned to one board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// The board's name (its relay certificate's CN).
    pub name: String,
    /// Its radio node address.
    pub address: u8,
    /// Its envelope sender id.
    pub sender: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum AssignmentError {
    #[error(transparent)]
    File(#[from] ConfigError),
    #[error(
        "{}: this board ({name:?}) was assigned {what} {assigned}, but the relay would run with {actual} ({source_of}); \
         fix the configuration, or provision the board again (make provision) to change its assignment",
        path.display()
    )]
    Mismatch {
        path: PathBuf,
        name: String,
        what: &'static str,
        assigned: u32,
        actual: u32,
        source_of: &'static str,
    },
}

impl Assignment {
    /// The assignment beside `config_file`, if there is one.
    pub fn beside(config_file: &Path) -> Result<Option<(Assignment, PathBuf)>, AssignmentError> {
        let path = config_file
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(FILE_NAME);
        if !path.exists() {
            return Ok(None);
        }
        let assignment: Assignment = load_toml(&path)?;
        Ok(Some((assignment, path)))
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        render_toml(
            "Assigned by the site (tmc-provision): the relay refuses to run with another address or sender id.",
            self,
        )
    }

    /// Checks the address and sender id the relay is about to use; `path` is this assignment's file.
    pub fn check(
        &self,
        path: &Path,
        address: u8,
        sender: u32,
        sender_configured: bool,
    ) -> Result<(), AssignmentError> {
        let mismatch = |what, assigned, actual, source_of| AssignmentError::Mismatch {
            path: path.to_owned(),
            name: self.name.clone(),
            what,
            assigned,
            actual,
            source_of,
        };
        if address != self.address {
            return Err(mismatch(
                "node address",
                u32::from(self.address),
                u32::from(address),
                "[radio] address, or the board's node_address",
            ));
        }
        if sender != self.sender {
            return Err(mismatch(
                "sender id",
                self.sender,
                sender,
                if sender_configured {
                    "[envelope] sender"
                } else {
                    "the default: the node address"
                },
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_runs_only_with_what_it_was_assigned() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("relay.toml");
        assert!(Assignment::beside(&config).unwrap().is_none());
        let assigned = Assignment {
            name: "c1".into(),
            address: 11,
            sender: 11,
        };
        std::fs::write(dir.path().join(FILE_NAME), assigned.to_toml()).unwrap();
        let (read, path) = Assignment::beside(&config).unwrap().unwrap();
        assert_eq!(read, assigned);
        read.check(&path, 11, 11, false).unwrap();
        let err = read.check(&path, 11, 10, true).unwrap_err().to_string();
        assert!(
            err.contains("assignment.toml: this board (\"c1\") was assigned sender id 11, but the relay would run with 10 ([envelope] sender)"),
            "{err}"
        );
        assert!(!err.contains('\n'));
        let err = read.check(&path, 10, 10, false).unwrap_err().to_string();
        assert!(err.contains("node address 11"), "{err}");

        std::fs::write(dir.path().join(FILE_NAME), "name = \"c1\"\naddress = 300\n").unwrap();
        let err = Assignment::beside(&config).unwrap_err().to_string();
        assert!(
            err.contains("assignment.toml") && !err.contains('\n'),
            "{err}"
        );
    }
}

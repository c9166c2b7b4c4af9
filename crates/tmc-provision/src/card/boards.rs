//! `boards.toml` in the site directory: the site's authority over node addresses and envelope sender ids.
//!
//! ```toml
//! [[board]]
//! name = "concentrator-1"
//! role = "concentrator"
//! address = 10
//! sender = 10
//! ```
//!
//! `tmc-provision write` records every board it provisions here: the radio node address (unique among all the
//! site's boards: two nodes with one address take each other's ACKs) and, for a concentrator, the envelope
//! sender id (unique among the relays: the envelope's IV is sender ‖ counter under the site key, so two relays
//! with one sender id repeat each other's keystream, and the gateway refuses one of them as replays). A new
//! board gets the next free address; a board provisioned again (a new card for the same name) keeps its own;
//! a number another board holds is refused, naming that board.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::boot_bundle::manifest::Role;

/// The inventory's file name in the site directory.
pub const BOARDS_FILE: &str = "boards.toml";

/// One provisioned board.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    pub role: Role,
    /// Radio node address.
    pub address: u8,
    /// Envelope sender id (concentrators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<u32>,
}

/// Why an assignment could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BoardsError {
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("{what} {value} belongs to {role} {holder:?} (tmc-provision list --site {}): every board needs its own", site.display())]
    Taken {
        what: &'static str,
        value: u32,
        holder: String,
        role: Role,
        site: PathBuf,
    },
    #[error("no free node address left at this site (1–254 are all assigned)")]
    Full,
}

/// The site's boards.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Boards {
    #[serde(default, rename = "board")]
    pub boards: Vec<Board>,
    /// The site directory it was read from (not in the file).
    #[serde(skip)]
    site: PathBuf,
}

impl Boards {
    /// Reads the inventory of the site in `site_dir` (none yet: empty).
    pub fn load(site_dir: &Path) -> Result<Boards, BoardsError> {
        let path = site_dir.join(BOARDS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            other => other.map_err(|e| BoardsError::File {
                path: path.clone(),
                message: e.to_string(),
            })?,
        };
        let mut boards: Boards = toml::from_str(&text).map_err(|e| BoardsError::File {
            path: path.clone(),
            message: crate::boot_bundle::manifest::one_line_toml_error(&text, &e),
        })?;
        boards.site = site_dir.to_owned();
        for (i, board) in boards.boards.iter().enumerate() {
            for other in &boards.boards[..i] {
                let clash = if other.name == board.name {
                    Some("name")
                } else if other.address == board.address {
                    Some("address")
                } else if other.sender.is_some() && other.sender == board.sender {
                    Some("sender")
                } else {
                    None
                };
                if let Some(what) = clash {
                    return Err(BoardsError::File {
                        path,
                        message: format!(
                            "boards {:?} and {:?} have the same {what}: edit the file so that each board has its own",
                            other.name, board.name
                        ),
                    });
                }
            }
        }
        Ok(boards)
    }

    /// Writes the inventory back (atomically).
    pub fn save(&self) -> Result<(), BoardsError> {
        let path = self.site.join(BOARDS_FILE);
        let mut text = String::from(
            "# The site's boards, kept by tmc-provision: node addresses are unique, and so are relays' sender ids.\n",
        );
        text.push_str(&toml::to_string(self).map_err(|e| BoardsError::File {
            path: path.clone(),
            message: e.to_string(),
        })?);
        tmc_secret_file::write_atomic(
            &path,
            text.as_bytes(),
            0o644,
            tmc_secret_file::Overwrite::Replace,
        )
        .map_err(|e| BoardsError::File {
            path,
            message: e.to_string(),
        })
    }

    /// The board recorded under `name`.
    pub fn get(&self, name: &str) -> Option<&Board> {
        self.boards.iter().find(|b| b.name == name)
    }

    /// Refuses an address or sender id that a board other than `name` holds.
    pub fn check(&self, name: &str, address: u8, sender: Option<u32>) -> Result<(), BoardsError> {
        for other in self.boards.iter().filter(|b| b.name != name) {
            let taken = |what, value| BoardsError::Taken {
                what,
                value,
                holder: other.name.clone(),
                role: other.role,
                site: self.site.clone(),
            };
            if other.address == address {
                return Err(taken("node address", u32::from(address)));
            }
            if sender.is_some() && other.sender == sender {
                return Err(taken("sender id", sender.unwrap_or_default()));
            }
        }
        Ok(())
    }

    /// The address for board `name` when none is asked for: its own if it has one in `role`, else the first
    /// free one from `first` upwards (then from 1), never one in `avoid` or the broadcast address.
    pub fn address_for(
        &self,
        name: &str,
        role: Role,
        first: u8,
        avoid: &[u8],
    ) -> Result<u8, BoardsError> {
        if let Some(own) = self.get(name).filter(|b| b.role == role) {
            return Ok(own.address);
        }
        let free = |a: &u8| {
            *a != tmc_radio::BROADCAST
                && !avoid.contains(a)
                && self
                    .boards
                    .iter()
                    .all(|b| b.name == name || b.address != *a)
        };
        (first..=u8::MAX)
            .chain(1..first)
            .find(free)
            .ok_or(BoardsError::Full)
    }

    /// The addresses of the site's relays (a new gateway accepts them).
    pub fn relay_addresses(&self) -> Vec<u8> {
        let mut addresses: Vec<u8> = self
            .boards
            .iter()
            .filter(|b| b.role == Role::Concentrator)
            .map(|b| b.address)
            .collect();
        addresses.sort_unstable();
        addresses
    }

    /// Records `board`, replacing an earlier record of the same name.
    pub fn record(&mut self, board: Board) {
        self.boards.retain(|b| b.name != board.name);
        self.boards.push(board);
        self.boards.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// The inventory as a table for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<24} {:<13} {:>7} {:>7}\n",
            "name", "role", "address", "sender"
        );
        for b in &self.boards {
            let sender = b.sender.map_or_else(|| "-".to_owned(), |s| s.to_string());
            out.push_str(&format!(
                "{:<24} {:<13} {:>7} {:>7}\n",
                b.name, b.role, b.address, sender
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(name: &str, role: Role, address: u8, sender: Option<u32>) -> Board {
        Board {
            name: name.into(),
            role,
            address,
            sender,
        }
    }

    #[test]
    fn free_addresses_skip_every_board_the_gateway_and_broadcast() {
        let dir = tempfile::tempdir().unwrap();
        let mut boards = Boards::load(dir.path()).unwrap();
        assert_eq!(
            boards
                .address_for("c1", Role::Concentrator, 10, &[1])
                .unwrap(),
            10
        );
        boards.record(board("c1", Role::Concentrator, 10, Some(10)));
        boards.record(board("c2", Role::Concentrator, 11, Some(11)));
        assert_eq!(
            boards
                .address_for("c3", Role::Concentrator, 10, &[1])
                .unwrap(),
            12
        );
        // Its own, again; a role switch gets a new one.
        assert_eq!(
            boards
                .address_for("c2", Role::Concentrator, 10, &[1])
                .unwrap(),
            11
        );
        assert_eq!(boards.address_for("c2", Role::Gateway, 1, &[]).unwrap(), 1);
        boards.save().unwrap();
        let again = Boards::load(dir.path()).unwrap();
        assert_eq!(again, boards);
        let err = again.check("c3", 11, Some(99)).unwrap_err().to_string();
        assert!(
            err.starts_with("node address 11 belongs to concentrator \"c2\""),
            "{err}"
        );
        let err = again.check("c3", 12, Some(10)).unwrap_err().to_string();
        assert!(
            err.starts_with("sender id 10 belongs to concentrator \"c1\""),
            "{err}"
        );
        again.check("c2", 11, Some(11)).unwrap();

        let mut full = Boards::default();
        for a in 1..=254u8 {
            full.record(board(&format!("b{a}"), Role::Gateway, a, None));
        }
        assert!(matches!(
            full.address_for("new", Role::Gateway, 1, &[]),
            Err(BoardsError::Full)
        ));
    }

    #[test]
    fn an_edited_inventory_with_a_clash_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(BOARDS_FILE),
            "[[board]]\nname = \"a\"\nrole = \"concentrator\"\naddress = 10\nsender = 7\n\
             [[board]]\nname = \"b\"\nrole = \"concentrator\"\naddress = 11\nsender = 7\n",
        )
        .unwrap();
        let err = Boards::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("boards \"a\" and \"b\" have the same sender"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }
}

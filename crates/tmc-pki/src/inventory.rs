//! `pki.toml`: what the site has issued. The ACL and the CRL are generated from it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{io, PkiError};

/// What an identity is for; decides its ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Publishes readings to its own topics only.
    Sensor,
    /// Subscribes to every sensor's readings; publishes nothing.
    Relay,
    /// The gateway's receiver (for its own broker, if any).
    Receiver,
    /// A client of the upstream broker (the receiver's way out).
    Upstream,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Sensor => "sensor",
            Role::Relay => "relay",
            Role::Receiver => "receiver",
            Role::Upstream => "upstream",
        })
    }
}

/// One issued certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    /// Serial number of the current certificate, hex.
    pub serial: String,
    /// Unix seconds.
    pub not_after: i64,
    /// Topics a sensor may publish to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
    /// Issued from a CSR: the key is not in the site directory.
    #[serde(default)]
    pub from_csr: bool,
    /// Serials revoked for this name (old certificates after `revoke`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked_serials: Vec<String>,
    #[serde(default)]
    pub revoked: bool,
}

impl Identity {
    pub(crate) fn new(
        name: &str,
        role: Role,
        serial: String,
        validity: crate::Validity,
        topics: Vec<String>,
        from_csr: bool,
    ) -> Self {
        Identity {
            name: name.into(),
            role,
            serial,
            not_after: validity.not_after.unix_timestamp(),
            topics,
            from_csr,
            revoked_serials: Vec::new(),
            revoked: false,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Inventory {
    /// Next CRL number.
    #[serde(default)]
    pub crl_number: u64,
    #[serde(default, rename = "identity")]
    pub identities: Vec<Identity>,
}

impl Inventory {
    pub fn load(path: &Path) -> Result<Self, PkiError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        toml::from_str(&text).map_err(|e| PkiError::BadFile {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })
    }

    pub fn save(&self, path: &Path) -> Result<(), PkiError> {
        let text = format!(
            "# TMC site inventory, written by tmc-pki: the ACL and CRL are generated from it.\n{}",
            toml::to_string(self).expect("inventory always serialises")
        );
        tmc_secret_file::write_private(path, text.as_bytes(), tmc_secret_file::Overwrite::Replace)?;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Identity> {
        self.identities.iter().find(|i| i.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Identity> {
        self.identities.iter_mut().find(|i| i.name == name)
    }
}

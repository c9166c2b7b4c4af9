//! The bundle, built whole in memory before anything touches the card.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::boot_bundle::fsutil::sha256_hex;
use crate::boot_bundle::manifest::{FileEntry, Manifest, Role, FORMAT};

/// One file of the bundle. Its bytes are wiped from memory when dropped: many are keys.
pub(crate) struct BundleFile {
    pub bytes: Zeroizing<Vec<u8>>,
    pub secret: bool,
}

/// Files by bundle name (relative to `tmc/`).
#[derive(Default)]
pub(crate) struct Bundle {
    pub files: BTreeMap<String, BundleFile>,
}

impl Bundle {
    pub fn add(&mut self, name: impl Into<String>, bytes: Vec<u8>, secret: bool) {
        self.files.insert(
            name.into(),
            BundleFile {
                bytes: Zeroizing::new(bytes),
                secret,
            },
        );
    }

    pub fn contains(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    /// Top-level names, for messages that list what the card installs in /etc/tmc.
    pub fn top_level_names(&self) -> Vec<&str> {
        self.files
            .keys()
            .map(String::as_str)
            .filter(|n| !n.contains('/'))
            .collect()
    }

    pub fn manifest(&self, role: Role, name: &str) -> Manifest {
        Manifest {
            format: FORMAT,
            role,
            name: name.to_owned(),
            files: self
                .files
                .iter()
                .map(|(n, f)| {
                    (
                        n.clone(),
                        FileEntry {
                            sha256: sha256_hex(&f.bytes),
                            secret: f.secret,
                        },
                    )
                })
                .collect(),
        }
    }
}

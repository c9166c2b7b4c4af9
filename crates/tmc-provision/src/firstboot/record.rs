//! `/etc/tmc/provisioned.toml`: the manifest the board was provisioned from and when. Written last, so
//! that its presence means every step finished; a run that finds it matching the card's manifest and
//! nothing to change is "already provisioned".

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::boot_bundle::layout::{ETC_TMC, PROVISIONED_FILE};
use crate::boot_bundle::manifest::Manifest;

/// The record's file content.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Unix seconds when provisioning finished.
    pub provisioned_at: u64,
    /// A copy of the card's manifest.
    pub manifest: Manifest,
}

/// Its path on the running system.
pub fn install_path() -> PathBuf {
    Path::new(ETC_TMC).join(PROVISIONED_FILE)
}

/// Whether the record at `path` is for `manifest`. An unreadable record is not.
pub fn matches(path: &Path, manifest: &Manifest) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| toml::from_str::<Record>(&text).ok())
        .is_some_and(|r| r.manifest == *manifest)
}

/// The record's text for `manifest`, now.
pub fn render(manifest: &Manifest) -> String {
    let record = Record {
        provisioned_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        manifest: manifest.clone(),
    };
    // Numbers, strings and tables always serialise.
    let body = toml::to_string(&record).unwrap_or_default();
    format!(
        "# Written by tmc-provision firstboot when it finished installing the card's bundle\n\
         # (provisioned_at: Unix seconds). A later run with the same manifest changes nothing.\n{body}"
    )
}

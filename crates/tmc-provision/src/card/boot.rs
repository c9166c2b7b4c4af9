//! The boot partition: what is already there, and putting the bundle on it.
//!
//! The files go to `tmc.new/`, which then replaces `tmc/`; the manifest is replaced last. A run that
//! stops half-way leaves the old manifest, which either still matches the old files or no longer matches
//! the new ones: `firstboot` installs nothing from a card whose files do not match its manifest.

use std::fs;
use std::path::{Path, PathBuf};

use crate::boot_bundle::fsutil::{sync_dir, write_atomic_lenient, write_new_lenient};
use crate::boot_bundle::manifest::{Manifest, BUNDLE_DIR, MANIFEST_FILE};
use crate::card::bundle::Bundle;
use crate::card::error::{io, WriteError};

const STAGING: &str = "tmc.new";
const OLD: &str = "tmc.old";

/// Checks `boot` and its current manifest. Returns the name the card was provisioned for, if any, and
/// warnings.
pub fn check_boot(
    boot: &Path,
    name: &str,
    force: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, WriteError> {
    if !boot.is_dir() {
        return Err(WriteError::NotABootDir(boot.to_owned()));
    }
    if !boot.join("config.txt").exists() && !boot.join("cmdline.txt").exists() {
        warnings.push(format!(
            "{}: no config.txt or cmdline.txt: is this the card's boot partition?",
            boot.display()
        ));
    }
    let path = boot.join(MANIFEST_FILE);
    if !path.exists() {
        return Ok(None);
    }
    match Manifest::from_file(&path) {
        Ok(existing) if existing.name == name || force => Ok(Some(existing.name)),
        Ok(existing) => Err(WriteError::OtherBoard {
            path,
            existing: existing.name,
            name: name.to_owned(),
        }),
        Err(_) if force => Ok(None),
        Err(e) => Err(WriteError::UnreadableManifest {
            reason: e.to_string(),
        }),
    }
}

/// Writes the bundle and then the manifest. Returns the paths written, manifest last.
pub fn write_bundle(
    boot: &Path,
    bundle: &Bundle,
    manifest: &Manifest,
) -> Result<Vec<PathBuf>, WriteError> {
    let staging = boot.join(STAGING);
    let old = boot.join(OLD);
    let target = boot.join(BUNDLE_DIR);
    // Leftovers of an interrupted run.
    for dir in [&staging, &old] {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(io(dir))?;
        }
    }
    fs::create_dir(&staging).map_err(io(&staging))?;
    let mut written = Vec::new();
    let mut dirs = vec![staging.clone()];
    for (name, file) in &bundle.files {
        let path = staging.join(name);
        if let Some(dir) = path.parent() {
            if !dir.exists() {
                fs::create_dir_all(dir).map_err(io(dir))?;
                dirs.push(dir.to_owned());
            }
        }
        // 0600 for secrets where the file system keeps modes; FAT gives every file the mount's mode.
        let mode = if file.secret { 0o600 } else { 0o644 };
        write_new_lenient(&path, &file.bytes, mode).map_err(io(&path))?;
        written.push(target.join(name));
    }
    // Deepest first, so that each directory's entries are durable before it is renamed.
    for dir in dirs.iter().rev() {
        sync_dir(dir).map_err(io(dir))?;
    }
    if target.exists() {
        fs::rename(&target, &old).map_err(io(&target))?;
    }
    fs::rename(&staging, &target).map_err(io(&staging))?;
    sync_dir(boot).map_err(io(boot))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    let manifest_path = boot.join(MANIFEST_FILE);
    write_atomic_lenient(&manifest_path, manifest.render().as_bytes(), 0o644)
        .map_err(io(&manifest_path))?;
    written.push(manifest_path);
    Ok(written)
}

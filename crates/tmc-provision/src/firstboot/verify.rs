//! Reading the card: the manifest, and every file it lists with a matching SHA-256. Nothing is installed
//! unless all of them check out.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::boot_bundle::fsutil::{sha256_hex, under};
use crate::boot_bundle::layout::{holds_private_key, placement, Placement};
use crate::boot_bundle::manifest::{Manifest, BUNDLE_DIR};
use crate::firstboot::FirstbootError;

/// One verified file and where it goes.
pub struct Verified {
    /// Its content (from the card, or the installed copy once the card's was removed).
    pub bytes: Zeroizing<Vec<u8>>,
    /// Removed from the card once installed.
    pub secret: bool,
    /// Where it goes.
    pub placement: Placement,
    /// Its path on the card.
    pub boot_path: PathBuf,
}

/// Checks every file of `manifest` on the card (or, for a file no longer there, the installed copy).
pub fn verify(
    manifest: &Manifest,
    manifest_path: &Path,
    boot: &Path,
    root: &Path,
) -> Result<Vec<Verified>, FirstbootError> {
    let mut files = Vec::with_capacity(manifest.files.len());
    for (name, entry) in &manifest.files {
        // Validated with the manifest: a manifest whose names have no placement is refused earlier.
        let placement = placement(name, entry.secret).map_err(|problem| {
            FirstbootError::Manifest(crate::boot_bundle::manifest::ManifestError::Invalid {
                path: manifest_path.to_owned(),
                field: format!("files.{name:?}"),
                problem,
            })
        })?;
        let boot_path = boot.join(BUNDLE_DIR).join(name);
        let (bytes, read_from) = match read_if_present(&boot_path)? {
            Some(bytes) => {
                check_sum(&boot_path, &entry.sha256, &bytes)?;
                (bytes, boot_path.clone())
            }
            // Removed by an earlier run after it was installed: the installed copy must be that file.
            None => {
                let installed = under(root, &placement.install_path);
                match read_if_present(&installed)? {
                    Some(bytes) if sha256_hex(&bytes) == entry.sha256 => (bytes, installed),
                    _ => {
                        return Err(FirstbootError::Missing {
                            path: boot_path,
                            installed,
                        })
                    }
                }
            }
        };
        check_secrecy(entry.secret, &bytes, &read_from)?;
        files.push(Verified {
            bytes,
            secret: entry.secret,
            placement,
            boot_path,
        });
    }
    Ok(files)
}

/// The card as found after a finished run: every listed file still on it must match, and none of the
/// secrets may be on it. `Ok(false)` when a secret is there (the card was written again).
pub fn only_public_left(manifest: &Manifest, boot: &Path) -> Result<bool, FirstbootError> {
    for (name, entry) in &manifest.files {
        let boot_path = boot.join(BUNDLE_DIR).join(name);
        let Some(bytes) = read_if_present(&boot_path)? else {
            continue;
        };
        if entry.secret {
            return Ok(false);
        }
        check_sum(&boot_path, &entry.sha256, &bytes)?;
        check_secrecy(entry.secret, &bytes, &boot_path)?;
    }
    Ok(true)
}

/// A private key is secret whatever the manifest says (its name was checked with the manifest): as a
/// public file it would be installed readable and left on the card.
fn check_secrecy(secret: bool, bytes: &[u8], path: &Path) -> Result<(), FirstbootError> {
    if !secret && holds_private_key(bytes) {
        return Err(FirstbootError::KeyNotSecret {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// A file on the card must be the one the manifest lists.
fn check_sum(boot_path: &Path, expected: &str, bytes: &[u8]) -> Result<(), FirstbootError> {
    let found = sha256_hex(bytes);
    if found == expected {
        return Ok(());
    }
    Err(FirstbootError::Tampered {
        path: boot_path.to_owned(),
        expected: expected.to_owned(),
        found,
    })
}

fn read_if_present(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, FirstbootError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FirstbootError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

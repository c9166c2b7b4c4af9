//! The site file (access point settings) for a concentrator, and the passphrase file it may name.

use std::path::Path;

use tmc_config::SiteConfig;

use crate::boot_bundle::layout::PASSPHRASE_FILE;
use crate::card::bundle::Bundle;
use crate::card::error::{io, WriteError};

/// Validates the site file with the parser tmc-ap uses and adds it (and its passphrase file) to the bundle.
pub fn add_site_file(
    path: &Path,
    bundle: &mut Bundle,
    warnings: &mut Vec<String>,
) -> Result<(), WriteError> {
    if !path.exists() {
        return Err(WriteError::MissingSiteFile(path.to_owned()));
    }
    let config = SiteConfig::from_file(path)?;
    if config.ap.key_is_default {
        warnings.push(format!(
            "{}: no [ap] passphrase: the access point uses the public default (set passphrase or passphrase_file)",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(io(path))?;
    let text = String::from_utf8_lossy(&bytes);
    // Accepted by the site parser above: this only looks at how the key is given.
    let mut table: toml::Table = toml::from_str(&text).unwrap_or_default();
    let ap = table.get_mut("ap").and_then(|v| v.as_table_mut());
    let inline = ap.as_ref().is_some_and(|ap| ap.contains_key("passphrase"));
    let file = ap.and_then(|ap| ap.get_mut("passphrase_file"));
    let Some(file) = file else {
        // An inline passphrase makes the whole site file a secret.
        bundle.add(crate::boot_bundle::layout::SITE_FILE, bytes, inline);
        return Ok(());
    };
    let named = file.as_str().unwrap_or_default().to_owned();
    let source = path.parent().unwrap_or(Path::new(".")).join(&named);
    let passphrase = tmc_secret_file::read_private(&source)?;
    bundle.add(PASSPHRASE_FILE, passphrase, true);
    if named == PASSPHRASE_FILE {
        bundle.add(crate::boot_bundle::layout::SITE_FILE, bytes, false);
        return Ok(());
    }
    // On the Pi the passphrase sits beside the site file under a fixed name: point the site file at it.
    // The TOML is rewritten (its comments are lost; the header says where it came from).
    *file = toml::Value::String(PASSPHRASE_FILE.into());
    let body = toml::to_string(&table).unwrap_or_default();
    let rewritten = format!(
        "# Site file from {}, rewritten by tmc-provision: passphrase_file names the copy installed beside it.\n{body}",
        path.display()
    );
    bundle.add(
        crate::boot_bundle::layout::SITE_FILE,
        rewritten.into_bytes(),
        false,
    );
    Ok(())
}

//! `tmc.toml`: the manifest on the boot partition. It names the board's role and every file of the
//! bundle under `tmc/` with its SHA-256 and whether it is secret. `write` produces it last; `firstboot`
//! trusts nothing on the partition that it does not list with a matching sum.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::boot_bundle::layout;

/// File name of the manifest at the top of the boot partition.
pub const MANIFEST_FILE: &str = "tmc.toml";
/// Directory of the bundle on the boot partition.
pub const BUNDLE_DIR: &str = "tmc";
/// The manifest format this version reads and writes.
pub const FORMAT: u32 = 1;

/// What a board is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Access point, broker and relay: sensor readings in over Wi-Fi/MQTT, tokens out over LoRa.
    Concentrator,
    /// Receiver: tokens in over LoRa, readings out.
    Gateway,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Role::Concentrator => "concentrator",
            Role::Gateway => "gateway",
        })
    }
}

/// One file of the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// SHA-256 of the content, 64 lower-case hex digits.
    pub sha256: String,
    /// Removed from the boot partition once installed (keys, the Wi-Fi passphrase).
    pub secret: bool,
}

/// The parsed manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The board's role.
    pub role: Role,
    /// The board's name (for a concentrator also its relay certificate's CN).
    pub name: String,
    /// Bundle files by name relative to `tmc/` (`relay.toml`, `broker/tmc.conf`).
    pub files: BTreeMap<String, FileEntry>,
}

/// A manifest that cannot be used.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// The file cannot be read.
    #[error("{}: cannot read the manifest: {source}", path.display())]
    Read {
        /// File.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, an unknown or missing field, a value of the wrong type.
    #[error("{}: {message}", path.display())]
    Syntax {
        /// File.
        path: PathBuf,
        /// The parser's message with line and column.
        message: String,
    },
    /// A well-formed value that is not allowed.
    #[error("{}: {field}: {problem}", path.display())]
    Invalid {
        /// File.
        path: PathBuf,
        /// Field, e.g. `files."../x"`.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

impl Manifest {
    /// Reads and validates a manifest file.
    pub fn from_file(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates manifest text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| ManifestError::Syntax {
            path: path.to_owned(),
            message: one_line_toml_error(text, &e),
        })?;
        manifest.validate(path)?;
        Ok(manifest)
    }

    /// Checks everything `firstboot` relies on: format, name, every file name (relative, inside the
    /// bundle, a known place to install it), the sums, the secret flags, the role's required files.
    pub fn validate(&self, path: &Path) -> Result<(), ManifestError> {
        let invalid = |field: String, problem: String| ManifestError::Invalid {
            path: path.to_owned(),
            field,
            problem,
        };
        if self.format != FORMAT {
            return Err(invalid(
                "format".into(),
                format!(
                    "{} is not supported (this tmc-provision reads format {FORMAT}): use the tmc-provision of the image",
                    self.format
                ),
            ));
        }
        check_name(&self.name).map_err(|p| invalid("name".into(), p))?;
        let mut folded: BTreeMap<String, &String> = BTreeMap::new();
        for (name, entry) in &self.files {
            let field = format!("files.{name:?}");
            check_file_name(name).map_err(|p| invalid(field.clone(), p))?;
            // FAT does not tell names apart by case: two such entries are one file on the card.
            if let Some(other) = folded.insert(name.to_ascii_lowercase(), name) {
                return Err(invalid(
                    field,
                    format!("the same file as {other:?} on a FAT boot partition (names differ only in case)"),
                ));
            }
            layout::placement(name, entry.secret).map_err(|p| invalid(field.clone(), p))?;
            let hex_ok = entry.sha256.len() == 64
                && entry
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex_ok {
                return Err(invalid(
                    format!("{field}.sha256"),
                    "must be 64 lower-case hex digits".into(),
                ));
            }
        }
        for required in layout::required_files(self.role) {
            if !self.files.contains_key(*required) {
                return Err(invalid(
                    "files".into(),
                    format!("a {} needs {required:?}, which is not listed", self.role),
                ));
            }
        }
        let other = layout::config_file(match self.role {
            Role::Concentrator => Role::Gateway,
            Role::Gateway => Role::Concentrator,
        });
        if self.files.contains_key(other) {
            return Err(invalid(
                format!("files.{other:?}"),
                format!("a {} has no {other}", self.role),
            ));
        }
        Ok(())
    }

    /// The file text: a header saying what wrote it and what happens at first boot, then the TOML.
    pub fn render(&self) -> String {
        // Serialising plain strings, numbers and tables cannot fail.
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# TMC provisioning manifest, written by tmc-provision {} (`tmc-provision write`).\n\
             # At first boot the board installs the files under tmc/ (`tmc-provision firstboot`) and then\n\
             # removes the secret ones (secret = true) from this partition. Do not edit: each file must match\n\
             # its sha256, or nothing is installed.\n\n{body}",
            env!("CARGO_PKG_VERSION")
        )
    }
}

/// A board name: what tmc-pki accepts as an identity name (the concentrator's relay certificate CN).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !name.starts_with('.')
        && name != "ca"
        && name != tmc_pki::BROKER_NAME;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not allowed: use 1–64 of A-Z a-z 0-9 . _ - (not starting with '.', not \"ca\" or \"broker\")"
        ))
    }
}

/// A bundle file name: relative, at most one directory deep, plain characters, nothing hidden, nothing
/// that leaves `tmc/`.
pub fn check_file_name(name: &str) -> Result<(), String> {
    if name.starts_with('/') {
        return Err("an absolute path: bundle files are named relative to tmc/".into());
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.contains(&"..") {
        return Err("leaves the bundle directory (..)".into());
    }
    for part in &parts {
        let plain = !part.is_empty()
            && !part.starts_with('.')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !plain {
            return Err(format!(
                "{part:?} is not a plain file name (A-Z a-z 0-9 . _ -, not starting with '.')"
            ));
        }
    }
    if parts.len() > 2 {
        return Err("nested too deep: at most one directory (broker/)".into());
    }
    Ok(())
}

pub(crate) use tmc_config::file::one_line_toml_error;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(secret: bool) -> FileEntry {
        FileEntry {
            sha256: "ab".repeat(32),
            secret,
        }
    }

    fn gateway() -> Manifest {
        Manifest {
            format: FORMAT,
            role: Role::Gateway,
            name: "gw-1".into(),
            files: [
                ("receiver.toml", false),
                ("board.toml", false),
                ("keys.toml", true),
            ]
            .into_iter()
            .map(|(n, s)| (n.to_string(), entry(s)))
            .collect(),
        }
    }

    #[test]
    fn renders_with_a_header_and_parses_back() {
        let m = gateway();
        let text = m.render();
        assert!(text.starts_with("# TMC provisioning manifest"), "{text}");
        assert!(text.contains("[files.\"keys.toml\"]"), "{text}");
        assert_eq!(Manifest::parse(&text, Path::new("tmc.toml")).unwrap(), m);
    }

    #[test]
    fn file_names_stay_inside_the_bundle() {
        for ok in ["relay.toml", "broker/tmc.conf", "ecc.relay-1.key.pem"] {
            check_file_name(ok).unwrap();
        }
        for (bad, want) in [
            ("../x", "leaves the bundle"),
            ("/etc/passwd", "absolute"),
            ("broker/../../x", "leaves the bundle"),
            ("a/b/c", "nested too deep"),
            (".hidden", "not a plain file name"),
            ("a//b", "not a plain file name"),
            ("", "not a plain file name"),
            ("x\\y", "not a plain file name"),
        ] {
            let err = check_file_name(bad).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn names_that_differ_only_in_case_are_one_file_on_fat() {
        let mut m = gateway();
        m.files.insert("Board.toml".into(), entry(false));
        let err = m
            .validate(Path::new("/boot/tmc.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the same file as \"Board.toml\" on a FAT boot partition"),
            "{err}"
        );
    }

    #[test]
    fn semantic_errors_name_the_field() {
        let path = Path::new("/boot/tmc.toml");
        let mut m = gateway();
        m.format = 2;
        let err = m.validate(path).unwrap_err().to_string();
        assert!(err.starts_with("/boot/tmc.toml: format: 2"), "{err}");

        let mut m = gateway();
        m.files.insert("keys.toml".into(), entry(false));
        let err = m.validate(path).unwrap_err().to_string();
        assert!(
            err.contains("files.\"keys.toml\"") && err.contains("secret"),
            "{err}"
        );

        let mut m = gateway();
        m.files.remove("board.toml");
        let err = m.validate(path).unwrap_err().to_string();
        assert!(err.contains("needs \"board.toml\""), "{err}");

        let mut m = gateway();
        m.files.insert("relay.toml".into(), entry(false));
        let err = m.validate(path).unwrap_err().to_string();
        assert!(err.contains("a gateway has no relay.toml"), "{err}");

        let mut m = gateway();
        m.files.get_mut("board.toml").unwrap().sha256 = "AB".repeat(32);
        let err = m.validate(path).unwrap_err().to_string();
        assert!(err.contains("sha256: must be 64 lower-case hex"), "{err}");

        let mut m = gateway();
        m.name = "../x".into();
        let err = m.validate(path).unwrap_err().to_string();
        assert!(err.contains("name: \"../x\" is not allowed"), "{err}");
    }
}

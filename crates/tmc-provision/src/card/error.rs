//! Why `write` refused: one line naming the file, field or option and the problem.

use std::path::PathBuf;

use thiserror::Error;

/// Something `write` could not do. Every refusal happens before the card is touched.
#[derive(Debug, Error)]
pub enum WriteError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// `--boot` is not a directory.
    #[error("{}: --boot must be the mounted boot partition of the card (not a directory)", .0.display())]
    NotABootDir(PathBuf),
    /// The card is already provisioned for another board.
    #[error("{}: the card is provisioned for {existing:?}, not {name:?}: pass --force to replace it", path.display())]
    OtherBoard {
        /// The manifest.
        path: PathBuf,
        /// The name in it.
        existing: String,
        /// The name asked for.
        name: String,
    },
    /// The card has a manifest that cannot be read.
    #[error("{reason} (pass --force to replace it)")]
    UnreadableManifest {
        /// The manifest error.
        reason: String,
    },
    /// An option that does not fit the others.
    #[error("{option}: {problem}")]
    Option {
        /// The option, e.g. `--peers`.
        option: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// No site file to give the access point.
    #[error("{}: no site file: copy board-config/site.toml there and set [ap] ssid and passphrase (or passphrase_file), or pass --ap FILE", .0.display())]
    MissingSiteFile(PathBuf),
    /// The site file is invalid (first problem, and how many more).
    #[error(transparent)]
    Site(#[from] tmc_config::SiteError),
    /// The board preset is invalid.
    #[error(transparent)]
    Board(#[from] tmc_board::BoardError),
    /// The relay or receiver configuration is invalid.
    #[error(transparent)]
    Config(#[from] tmc_config::ConfigError),
    /// A path in a custom configuration that would not exist on the Pi.
    #[error("{}: {field} = {value:?}: {problem}", path.display())]
    ConfigPath {
        /// The configuration file.
        path: PathBuf,
        /// Dotted field, e.g. `mqtt.key`.
        field: String,
        /// Its value.
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// The envelope key ring is invalid.
    #[error(transparent)]
    KeyRing(#[from] tmc_envelope::KeyRingError),
    /// A secret file is readable by group or others, or cannot be read.
    #[error(transparent)]
    Secret(#[from] tmc_secret_file::SecretFileError),
    /// The site PKI refused.
    #[error(transparent)]
    Pki(#[from] tmc_pki::PkiError),
    /// A certificate of the site is not usable.
    #[error("{}: {problem}", path.display())]
    Certificate {
        /// The certificate file.
        path: PathBuf,
        /// Expired, not signed by the site CA, key mismatch, ...
        problem: tmc_pki::validate::CertProblem,
    },
    /// The board name cannot be used as asked.
    #[error("--name {name}: {problem}")]
    Identity {
        /// The name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The site's board inventory refused the address or sender id.
    #[error(transparent)]
    Boards(#[from] crate::card::boards::BoardsError),
    /// The bundle built does not pass the manifest checks (a bug, caught before writing).
    #[error(transparent)]
    Manifest(#[from] crate::boot_bundle::manifest::ManifestError),
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_owned(),
        source,
    }
}

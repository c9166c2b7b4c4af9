//! Why `firstboot` refused or stopped: one line naming the file, account or unit and the problem.

use std::path::PathBuf;

use thiserror::Error;

use crate::manifest::ManifestError;

/// Something `firstboot` could not do.
#[derive(Debug, Error)]
pub enum FirstbootError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// `--root` is not a directory.
    #[error("{}: --root must be an existing directory", .0.display())]
    Root(PathBuf),
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A file on the card does not match its manifest entry.
    #[error("{}: does not match the manifest (sha256 {found}, expected {expected}): the card was changed or damaged; nothing was installed, write it again with `tmc-provision write`", path.display())]
    Tampered {
        /// The file on the card.
        path: PathBuf,
        /// The manifest's sum.
        expected: String,
        /// The file's sum.
        found: String,
    },
    /// A file is neither on the card nor installed.
    #[error("{}: missing from the card, and {} is not the file the manifest names: nothing was installed, write the card again with `tmc-provision write`", path.display(), installed.display())]
    Missing {
        /// The file on the card.
        path: PathBuf,
        /// Where it would be installed.
        installed: PathBuf,
    },
    /// A user or group the files belong to does not exist on the image.
    #[error("{}: no {kind} {name:?}: the image lacks the package that creates it", path.display())]
    Account {
        /// `etc/passwd` or `etc/group` under the root.
        path: PathBuf,
        /// `user` or `group`.
        kind: &'static str,
        /// The account.
        name: &'static str,
    },
    /// An account file line that is not `name:x:id:...`.
    #[error("{}: line {line}: not an account entry ({expected} colon-separated fields with a numeric id)", path.display())]
    AccountLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Fields expected.
        expected: usize,
    },
    /// A unit the role needs is not on the image.
    #[error("{unit}: no unit file under {} (etc/systemd/system, usr/lib/systemd/system, lib/systemd/system): the image lacks that package", root.display())]
    NoUnit {
        /// The unit.
        unit: &'static str,
        /// The root searched.
        root: PathBuf,
    },
    /// Something other than a directory where one is needed.
    #[error("{}: exists but is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// The installed site file is invalid.
    #[error(transparent)]
    Site(#[from] tmc_board::SiteError),
    /// Applying the access point files failed.
    #[error(transparent)]
    Ap(#[from] tmc_ap::ApplyError),
    /// A systemctl command failed; the files are in place.
    #[error("`systemctl {command}` failed: {reason} (the files are in place: run `tmc-provision firstboot` again once the cause is fixed)")]
    Service {
        /// The arguments.
        command: String,
        /// Exit status and stderr.
        reason: String,
    },
}

//! Why `firstboot` refused or stopped: one line naming the file, account or unit and the problem.

use std::path::PathBuf;

use thiserror::Error;

use crate::boot_bundle::manifest::ManifestError;

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
    /// A file the manifest calls public holds a private key: installed, it would be readable, and it would
    /// stay on the card.
    #[error("{}: holds a PEM private key, but the manifest does not mark it secret = true: nothing was installed, write the card again with `tmc-provision write`", path.display())]
    KeyNotSecret {
        /// The file read (on the card, or its installed copy).
        path: PathBuf,
    },
    /// A symbolic link (or a device, FIFO or socket) where the bundle on the card has only files and
    /// directories: reading or removing through it would reach outside the card.
    #[error("{}: {kind} on the boot partition, where the bundle has only files and directories: nothing was read, installed or removed; write the card again with `tmc-provision write`", path.display())]
    NotPlain {
        /// The entry.
        path: PathBuf,
        /// `a symbolic link` or `not a regular file`.
        kind: &'static str,
    },
    /// The relay configuration's broker host is no host name: it would go into `/etc/hosts` as is.
    #[error("{}: [mqtt] {error}: nothing was installed", path.display())]
    BrokerHost {
        /// The relay configuration on the card.
        path: PathBuf,
        /// What is wrong with the host.
        #[source]
        error: tmc_config::mqtt::HostError,
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
    Site(#[from] tmc_config::SiteError),
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

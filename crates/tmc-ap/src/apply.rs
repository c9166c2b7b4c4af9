//! `tmc-ap apply`: puts the rendered files in place and restarts what reads them, only when something
//! changed. A second run with the same settings changes nothing and says so.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tmc_secret_file::Overwrite;

use crate::atomic;
use crate::files::{Desired, ManagedFile, Service, SECRET_MODE};

/// Where replaced files are kept, under the root: one directory per run that changed something.
pub const BACKUP_DIR: &str = "var/backups/tmc-ap";

/// Something `apply` could not do.
#[derive(Debug, Error)]
pub enum ApplyError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// The secret file could not be written.
    #[error(transparent)]
    Secret(#[from] tmc_secret_file::SecretFileError),
    /// The root directory is unusable.
    #[error("{}: --root must be an existing directory", .0.display())]
    Root(PathBuf),
    /// A systemctl command failed; the files are in place.
    #[error("`systemctl {command}` failed: {reason} (the files are in place: fix the cause, then run `systemctl {command}`)")]
    Service {
        /// The arguments.
        command: String,
        /// Exit status and stderr.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ApplyError + '_ {
    move |source| ApplyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Runs systemctl; a trait so that tests can record the calls instead.
pub trait ServiceManager {
    /// `systemctl <args>`.
    fn systemctl(&mut self, args: &[&str]) -> Result<(), String>;
}

/// The real systemctl.
#[derive(Debug, Default)]
pub struct Systemctl;

impl ServiceManager for Systemctl {
    fn systemctl(&mut self, args: &[&str]) -> Result<(), String> {
        let out = Command::new("systemctl")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run systemctl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// What happened to one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// It did not exist.
    Created,
    /// Its content, mode or link target differed.
    Updated,
    /// An earlier configuration's file, no longer needed.
    Removed,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Removed => "removed",
        })
    }
}

/// One changed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    /// Install path (as on the running system).
    pub path: PathBuf,
    /// What happened.
    pub kind: ChangeKind,
    /// Where the replaced or removed file was saved (under the root).
    pub backup: Option<PathBuf>,
    /// The service that reads it.
    pub service: Service,
}

/// What `apply` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Changed paths, in write order.
    pub changes: Vec<FileChange>,
    /// Paths that were already as desired.
    pub unchanged: usize,
    /// The systemctl commands run, in order.
    pub service_commands: Vec<String>,
}

impl ApplyReport {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// Writes `files` under `root` (`/` on a running system). With `services`, restarts what reads changed files
/// through it; without (`--root`, an image), touches no service.
pub fn apply(
    files: &[ManagedFile],
    root: &Path,
    mut services: Option<&mut dyn ServiceManager>,
) -> Result<ApplyReport, ApplyError> {
    if !root.is_dir() {
        return Err(ApplyError::Root(root.to_owned()));
    }
    let mut report = ApplyReport::default();
    let pending: Vec<(&ManagedFile, ChangeKind)> = files
        .iter()
        .filter_map(|f| match needed_change(f, root) {
            Ok(Some(kind)) => Some(Ok((f, kind))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?;
    report.unchanged = files.len() - pending.len();
    if pending.is_empty() {
        return Ok(report);
    }

    // A unit must be stopped while its file still exists.
    if let Some(sm) = services.as_deref_mut() {
        if pending
            .iter()
            .any(|(f, k)| *k == ChangeKind::Removed && f.service == Service::Nat)
        {
            run(sm, &mut report, &["disable", "--now", Service::Nat.unit()])?;
        }
    }

    let backup_root = backup_dir(root);
    for (file, kind) in pending {
        let path = file.path_under(root);
        let backup = match kind {
            ChangeKind::Created => None,
            ChangeKind::Updated | ChangeKind::Removed => {
                backup_existing(&path, &backup_root, &file.install_path)?
            }
        };
        write_desired(file, &path)?;
        report.changes.push(FileChange {
            path: file.install_path.clone(),
            kind,
            backup,
            service: file.service,
        });
    }

    if let Some(sm) = services {
        restart_changed(sm, &mut report)?;
    }
    Ok(report)
}

/// `None` when the path is already as desired.
fn needed_change(file: &ManagedFile, root: &Path) -> Result<Option<ChangeKind>, ApplyError> {
    let path = file.path_under(root);
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(&path)(e)),
    };
    let Some(meta) = meta else {
        return Ok(match file.desired {
            Desired::Absent => None,
            _ => Some(ChangeKind::Created),
        });
    };
    let same = match &file.desired {
        Desired::Absent => false,
        Desired::File { contents, mode } => {
            meta.file_type().is_file()
                && meta.mode() & 0o7777 == *mode
                && fs::read(&path).map_err(io_err(&path))? == contents.as_bytes()
        }
        Desired::Symlink(target) => {
            meta.file_type().is_symlink() && fs::read_link(&path).map_err(io_err(&path))? == *target
        }
    };
    Ok(match (&file.desired, same) {
        (_, true) => None,
        (Desired::Absent, false) => Some(ChangeKind::Removed),
        (_, false) => Some(ChangeKind::Updated),
    })
}

/// A fresh directory for this run's backups: `<root>/var/backups/tmc-ap/<unix seconds>[-n]`.
fn backup_dir(root: &Path) -> PathBuf {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = root.join(BACKUP_DIR);
    let mut dir = base.join(seconds.to_string());
    let mut n = 1;
    while dir.exists() {
        dir = base.join(format!("{seconds}-{n}"));
        n += 1;
    }
    dir
}

/// Copies a regular file being replaced into the backup directory, mode 0600 (it may hold the passphrase).
/// Links are not backed up: they carry no content.
fn backup_existing(
    path: &Path,
    backup_root: &Path,
    install_path: &Path,
) -> Result<Option<PathBuf>, ApplyError> {
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    if !meta.file_type().is_file() {
        return Ok(None);
    }
    let bytes = fs::read(path).map_err(io_err(path))?;
    let backup = backup_root.join(install_path.strip_prefix("/").unwrap_or(install_path));
    if let Some(dir) = backup.parent() {
        create_private_dirs(dir)?;
    }
    tmc_secret_file::write_private(&backup, &bytes, Overwrite::Replace)?;
    Ok(Some(backup))
}

fn create_private_dirs(dir: &Path) -> Result<(), ApplyError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))
}

fn write_desired(file: &ManagedFile, path: &Path) -> Result<(), ApplyError> {
    if let (Some(dir), false) = (path.parent(), file.desired == Desired::Absent) {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    match &file.desired {
        Desired::File { contents, mode } if *mode == SECRET_MODE => {
            // Replacing a symlink or a wider-mode file: the secret helper writes a fresh 0600 file either way.
            tmc_secret_file::write_private(path, contents.as_bytes(), Overwrite::Replace)?;
        }
        Desired::File { contents, mode } => {
            atomic::write_file(path, contents.as_bytes(), *mode).map_err(io_err(path))?
        }
        Desired::Symlink(target) => atomic::write_symlink(path, target).map_err(io_err(path))?,
        Desired::Absent => fs::remove_file(path).map_err(io_err(path))?,
    }
    Ok(())
}

fn run(
    sm: &mut dyn ServiceManager,
    report: &mut ApplyReport,
    args: &[&str],
) -> Result<(), ApplyError> {
    let command = args.join(" ");
    sm.systemctl(args).map_err(|reason| ApplyError::Service {
        command: command.clone(),
        reason,
    })?;
    report.service_commands.push(command);
    Ok(())
}

/// Restarts the services whose files changed, in dependency order: the address (networkd) before the AP,
/// the AP before dnsmasq (which binds to the address), forwarding before NAT.
fn restart_changed(
    sm: &mut dyn ServiceManager,
    report: &mut ApplyReport,
) -> Result<(), ApplyError> {
    let units_changed = report
        .changes
        .iter()
        .any(|c| c.path.starts_with("/etc/systemd/system"));
    let changed: BTreeSet<Service> = report
        .changes
        .iter()
        .filter(|c| c.kind != ChangeKind::Removed)
        .map(|c| c.service)
        .collect();
    if units_changed {
        run(sm, report, &["daemon-reload"])?;
    }
    for service in changed {
        let unit = service.unit();
        match service {
            // Debian ships hostapd masked until it is configured.
            Service::Hostapd => {
                run(sm, report, &["unmask", unit])?;
                run(sm, report, &["enable", unit])?;
            }
            Service::Networkd | Service::Dnsmasq | Service::Nat => {
                run(sm, report, &["enable", unit])?;
            }
            Service::Sysctl => {}
        }
        run(sm, report, &["restart", unit])?;
    }
    Ok(())
}

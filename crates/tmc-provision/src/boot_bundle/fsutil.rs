//! Crash-safe file operations shared by both sides.
//!
//! Every file is written to a temporary beside it, given its owner and mode while nobody else can see it,
//! `fsync`ed, renamed over the old one and the directory `fsync`ed: a power cut leaves the old or the new
//! file, never half of one, and a secret is never briefly readable by the wrong user.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Owner and group ids for a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ids {
    pub uid: u32,
    pub gid: u32,
}

/// Lower-case hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn temp_beside(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmc-provision.tmp{}", std::process::id()));
    Ok(path.with_file_name(tmp))
}

/// `fsync`s the directory `dir`, so that renames and removals in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => Ok(()),
    }
}

/// Writes `contents` to `path` atomically with exactly `mode` and, when given, owner `ids`.
pub(crate) fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    ids: Option<Ids>,
) -> io::Result<()> {
    let tmp = temp_beside(path)?;
    // A temporary left by a crashed run of this process id would make create_new fail.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o600)
            .open(&tmp)?;
        if let Some(ids) = ids {
            std::os::unix::fs::fchown(&file, Some(ids.uid), Some(ids.gid))?;
        }
        // After the chown (which may clear bits) and past the umask: exactly the mode asked for.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `contents` to `path` atomically on a file system that may ignore permissions (the FAT boot
/// partition): the file is created with `mode` where that is honoured, and no `chmod` is attempted,
/// because FAT refuses one it cannot represent.
pub(crate) fn write_atomic_lenient(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let tmp = temp_beside(path)?;
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        write_new_lenient(&tmp, contents, mode)?;
        fs::rename(&tmp, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` (which must not exist) with `contents`, `fsync`ed; see [`write_atomic_lenient`] on modes.
pub(crate) fn write_new_lenient(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

pub(crate) use tmc_secret_file::write_symlink;

/// The effective user id, from `/proc/self/status` (no `unsafe` call to `geteuid` is allowed in this
/// workspace). `None` when it cannot be read: callers then act as an unprivileged user would.
pub(crate) fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    parse_effective_uid(&status)
}

/// The second field of the `Uid:` line: real, effective, saved, file-system uid.
fn parse_effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|uid| uid.parse().ok())
}

/// What makes a directory entry unfit to read or remove by path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotPlain {
    /// A symbolic link: reading or removing through it reaches wherever it points.
    Symlink,
    /// A device, FIFO or socket: reading one may block or have effects.
    Special,
}

impl NotPlain {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            NotPlain::Symlink => "a symbolic link",
            NotPlain::Special => "not a regular file or directory",
        }
    }
}

/// The first entry at or below `path` (`path` itself included, links never followed) that is not a plain
/// file or directory; `None` when there is none, or nothing at `path`.
pub(crate) fn first_not_plain(path: &Path) -> io::Result<Option<(PathBuf, NotPlain)>> {
    let kind = |file_type: fs::FileType| {
        if file_type.is_symlink() {
            Some(NotPlain::Symlink)
        } else if file_type.is_dir() || file_type.is_file() {
            None
        } else {
            Some(NotPlain::Special)
        }
    };
    let top = match fs::symlink_metadata(path) {
        Ok(meta) => meta.file_type(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if let Some(what) = kind(top) {
        return Ok(Some((path.to_owned(), what)));
    }
    let mut dirs = if top.is_dir() {
        vec![path.to_owned()]
    } else {
        Vec::new()
    };
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            // The entry's own type (lstat): a link to a directory is a link, not a directory.
            let file_type = entry.file_type()?;
            if let Some(what) = kind(file_type) {
                return Ok(Some((entry.path(), what)));
            }
            if file_type.is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    Ok(None)
}

/// `path` below `root`: install paths are absolute on the running system.
pub(crate) fn under(root: &Path, install_path: &Path) -> PathBuf {
    root.join(install_path.strip_prefix("/").unwrap_or(install_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn effective_uid_is_the_second_uid_field() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1\t1\t1\t1\n";
        assert_eq!(parse_effective_uid(status), Some(0));
        assert_eq!(parse_effective_uid("Name:\tx\n"), None);
        // This process: matches the owner of a file it creates.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "x").unwrap();
        assert_eq!(effective_uid(), Some(fs::metadata(&path).unwrap().uid()));
    }

    #[test]
    fn atomic_write_sets_the_exact_mode_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new", 0o640, None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn finds_links_and_special_files_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("tmc");
        assert_eq!(first_not_plain(&top).unwrap(), None, "nothing there");
        fs::create_dir_all(top.join("broker")).unwrap();
        fs::write(top.join("broker/tmc.conf"), "x").unwrap();
        fs::write(top.join("keys.toml"), "x").unwrap();
        assert_eq!(first_not_plain(&top).unwrap(), None);

        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, top.join("broker/linked")).unwrap();
        assert_eq!(
            first_not_plain(&top).unwrap(),
            Some((top.join("broker/linked"), NotPlain::Symlink))
        );
        fs::remove_file(top.join("broker/linked")).unwrap();
        // A dangling link counts too.
        std::os::unix::fs::symlink(dir.path().join("absent"), top.join("x.pem")).unwrap();
        assert_eq!(
            first_not_plain(&top).unwrap(),
            Some((top.join("x.pem"), NotPlain::Symlink))
        );
        fs::remove_file(top.join("x.pem")).unwrap();
        let socket = top.join("broker/sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(
            first_not_plain(&top).unwrap(),
            Some((socket.clone(), NotPlain::Special))
        );
        fs::remove_file(&socket).unwrap();

        let linked_top = dir.path().join("tmc-link");
        std::os::unix::fs::symlink(&top, &linked_top).unwrap();
        assert_eq!(
            first_not_plain(&linked_top).unwrap(),
            Some((linked_top.clone(), NotPlain::Symlink))
        );
    }

    #[test]
    fn under_joins_install_paths_below_the_root() {
        assert_eq!(
            under(Path::new("/mnt/root"), Path::new("/etc/tmc/keys.toml")),
            Path::new("/mnt/root/etc/tmc/keys.toml")
        );
    }
}

//! Atomic replacement of files and symbolic links: a temporary in the same directory, then `rename`, so
//! a reader (or a crash) sees the old or the new version, never half of one. Files go through
//! `tmc_secret_file::write_atomic` (the passphrase file through `write_private`, always 0600).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

fn temp_beside(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmc-ap.tmp{}", std::process::id()));
    Ok(path.with_file_name(tmp))
}

fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

/// Writes `contents` to `path` atomically with permission bits `mode` (the shared crash-safe writer).
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    tmc_secret_file::write_atomic(path, contents, mode, tmc_secret_file::Overwrite::Replace)
        .map_err(|e| match e {
            tmc_secret_file::SecretFileError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        })
}

/// Makes `path` a symbolic link to `target`, atomically replacing whatever was there.
pub fn write_symlink(path: &Path, target: &Path) -> io::Result<()> {
    let tmp = temp_beside(path)?;
    let _ = fs::remove_file(&tmp);
    let result = std::os::unix::fs::symlink(target, &tmp)
        .and_then(|()| fs::rename(&tmp, path))
        .and_then(|()| sync_dir(path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn replaces_content_and_mode_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.conf");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        write_file(&path, b"new", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn symlink_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        fs::write(&path, "x").unwrap();
        write_symlink(&path, Path::new("/etc/target")).unwrap();
        assert_eq!(fs::read_link(&path).unwrap(), Path::new("/etc/target"));
        write_symlink(&path, Path::new("/etc/other")).unwrap();
        assert_eq!(fs::read_link(&path).unwrap(), Path::new("/etc/other"));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

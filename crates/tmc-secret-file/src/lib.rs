//! Files that hold secrets (key rings, private keys, counters that must never go back).
//!
//! Two rules, enforced here so that every crate gets them the same way:
//! - a secret file is written atomically (temporary file in the same directory, `fsync`, `rename`,
//!   `fsync` of the directory) and created with mode 0600, so a crash leaves either the old or the
//!   new content, never a torn or world-readable one;
//! - a secret file that group or others may read is refused, naming the file and its mode, instead of
//!   being used silently.

pub mod sequence;

pub use sequence::{ReservedSequence, SequenceError};

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode bits a secret file must not have: any access for group or others.
const GROUP_WORLD_BITS: u32 = 0o077;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: mode {mode:04o} lets group or others read it; run `chmod 600 {path}` (secret files must be 0600)"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path}: not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path}: already exists (refusing to overwrite a secret)")]
    Exists { path: PathBuf },
    #[error("{}: cannot write {}: the directory does not exist", dir.display(), path.display())]
    NoDirectory { path: PathBuf, dir: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SecretFileError + '_ {
    move |source| SecretFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `path` is a regular file readable by its owner only.
pub fn check_private(path: &Path) -> Result<(), SecretFileError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(SecretFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & GROUP_WORLD_BITS != 0 {
        return Err(SecretFileError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Reads a secret file after checking its permissions.
pub fn read_private(path: &Path) -> Result<Vec<u8>, SecretFileError> {
    // Check the open file, not the path, so that a swap between check and read cannot slip through.
    let mut file = File::open(path).map_err(io_err(path))?;
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(SecretFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & GROUP_WORLD_BITS != 0 {
        return Err(SecretFileError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(io_err(path))?;
    Ok(bytes)
}

/// Reads a secret UTF-8 text file after checking its permissions.
pub fn read_private_string(path: &Path) -> Result<String, SecretFileError> {
    let bytes = read_private(path)?;
    String::from_utf8(bytes).map_err(|_| SecretFileError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"),
    })
}

/// Whether [`write_private`] may replace an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Fail with [`SecretFileError::Exists`] when the file is there (creating new secrets).
    Refuse,
    /// Replace it atomically (state that moves forward, rotated key rings).
    Replace,
}

/// Writes `contents` to `path` atomically with mode 0600.
pub fn write_private(
    path: &Path,
    contents: &[u8],
    overwrite: Overwrite,
) -> Result<(), SecretFileError> {
    write_atomic(path, contents, 0o600, overwrite)
}

/// Writes `contents` to `path` atomically with permission bits `mode`: the same crash-safe scheme for
/// files that are not secret (certificates, generated configuration). Secrets use [`write_private`].
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    overwrite: Overwrite,
) -> Result<(), SecretFileError> {
    if overwrite == Overwrite::Refuse && fs::symlink_metadata(path).is_ok() {
        return Err(SecretFileError::Exists {
            path: path.to_path_buf(),
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| SecretFileError::NotAFile {
            path: path.to_path_buf(),
        })?
        .to_string_lossy()
        .into_owned();
    // Named here: otherwise the error would name the temporary file, which the user never asked for.
    if !dir.is_dir() {
        return Err(SecretFileError::NoDirectory {
            path: path.to_path_buf(),
            dir,
        });
    }
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let result = write_then_rename(&tmp, path, &dir, contents, mode, overwrite);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_then_rename(
    tmp: &Path,
    path: &Path,
    dir: &Path,
    contents: &[u8],
    mode: u32,
    overwrite: Overwrite,
) -> Result<(), SecretFileError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .map_err(io_err(tmp))?;
    // The umask may have narrowed `mode` (and an inherited ACL default could widen it): set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err(tmp))?;
    file.write_all(contents).map_err(io_err(tmp))?;
    file.sync_all().map_err(io_err(tmp))?;
    drop(file);
    match overwrite {
        Overwrite::Replace => fs::rename(tmp, path).map_err(io_err(path))?,
        // A hard link fails if the target appeared meanwhile: no secret is ever replaced by accident.
        Overwrite::Refuse => {
            fs::hard_link(tmp, path).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    SecretFileError::Exists {
                        path: path.to_path_buf(),
                    }
                } else {
                    io_err(path)(e)
                }
            })?;
            fs::remove_file(tmp).map_err(io_err(tmp))?;
        }
    }
    // Make the rename itself durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok(())
}

/// Makes `link` a symbolic link to `target`, atomically replacing whatever was there (a temporary link
/// beside it, `rename`, `fsync` of the directory), like [`write_atomic`] for files.
pub fn write_symlink(link: &Path, target: &Path) -> io::Result<()> {
    let dir = match link.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = link
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    // A temporary left by a crashed run with this process id would make symlink fail.
    let _ = fs::remove_file(&tmp);
    let result = std::os::unix::fs::symlink(target, &tmp)
        .and_then(|()| fs::rename(&tmp, link))
        .and_then(|()| File::open(&dir)?.sync_all());
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_replaces_a_file_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        fs::write(&path, "x").unwrap();
        write_symlink(&path, Path::new("/etc/target")).unwrap();
        assert_eq!(fs::read_link(&path).unwrap(), Path::new("/etc/target"));
        write_symlink(&path, Path::new("/etc/other")).unwrap();
        assert_eq!(fs::read_link(&path).unwrap(), Path::new("/etc/other"));
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp link left"
        );
    }

    #[test]
    fn written_file_is_0600_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_private(&path, b"secret", Overwrite::Refuse).unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_private(&path).unwrap(), b"secret");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn public_files_get_their_exact_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        write_private(&path, b"old", Overwrite::Refuse).unwrap();
        write_atomic(&path, b"new", 0o644, Overwrite::Replace).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
        // Written public, it is no longer accepted as a secret.
        let err = read_private(&path).unwrap_err();
        assert!(
            matches!(err, SecretFileError::TooOpen { mode: 0o644, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("key");
        let err = write_private(&path, b"k", Overwrite::Replace).unwrap_err();
        assert!(matches!(err, SecretFileError::NoDirectory { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: cannot write {}: the directory does not exist",
                dir.path().join("absent").display(),
                path.display()
            )
        );
    }

    #[test]
    fn refuses_to_overwrite_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_private(&path, b"one", Overwrite::Refuse).unwrap();
        let err = write_private(&path, b"two", Overwrite::Refuse).unwrap_err();
        assert!(matches!(err, SecretFileError::Exists { .. }), "{err}");
        write_private(&path, b"two", Overwrite::Replace).unwrap();
        assert_eq!(read_private(&path).unwrap(), b"two");
    }

    #[test]
    fn group_or_world_readable_file_is_refused_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o640, 0o604, 0o660, 0o644] {
            let path = dir.path().join(format!("k{mode:o}"));
            fs::write(&path, b"x").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = read_private(&path).unwrap_err();
            assert!(matches!(err, SecretFileError::TooOpen { mode: m, .. } if m == mode));
            assert!(err.to_string().contains(&format!("{mode:04o}")), "{err}");
            assert!(check_private(&path).is_err());
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_private(Path::new("/nonexistent/tmc/keys.toml")).unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/tmc/keys.toml:"),
            "{err}"
        );
    }
}

//! Atomic replacement of files and symbolic links: a temporary in the same directory, then `rename`, so
//! a reader (or a crash) sees the old or the new version, never half of one. Files go through
//! `tmc_secret_file::write_atomic` (the passphrase file through `write_private`, always 0600).

use std::io;
use std::path::Path;

/// Writes `contents` to `path` atomically with permission bits `mode` (the shared crash-safe writer).
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    tmc_secret_file::write_atomic(path, contents, mode, tmc_secret_file::Overwrite::Replace)
        .map_err(|e| match e {
            tmc_secret_file::SecretFileError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        })
}

pub use tmc_secret_file::write_symlink;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
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
}

//! Status snapshots: a running service writes its counters to a JSON file in its state directory every few
//! seconds; its `status` command reads it (and the stores, read-only) without talking to the process.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tmc_secret_file::Overwrite;

/// Where a service keeps its snapshot.
#[derive(Debug, Clone)]
pub struct StatusFile {
    path: PathBuf,
}

/// A snapshot that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a status snapshot: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: tmc_secret_file::SecretFileError,
    },
}

impl StatusFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StatusFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the snapshot atomically (a reader never sees half a file). World-readable: it holds counters,
    /// never secrets.
    pub fn write<T: Serialize>(&self, snapshot: &T) -> Result<(), StatusError> {
        let mut text =
            serde_json::to_vec_pretty(snapshot).map_err(|source| StatusError::Parse {
                path: self.path.clone(),
                source,
            })?;
        text.push(b'\n');
        tmc_secret_file::write_atomic(&self.path, &text, 0o644, Overwrite::Replace).map_err(
            |source| StatusError::Write {
                path: self.path.clone(),
                source,
            },
        )
    }
}

/// Reads a snapshot written by [`StatusFile::write`].
pub fn read_status<T: DeserializeOwned>(path: &Path) -> Result<T, StatusError> {
    let text = std::fs::read(path).map_err(|source| StatusError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| StatusError::Parse {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Snapshot {
        frames: u64,
    }

    #[test]
    fn round_trip_and_errors() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = StatusFile::new(dir.path().join("relay.status.json"));
        file.write(&Snapshot { frames: 3 }).unwrap();
        file.write(&Snapshot { frames: 4 }).unwrap();
        assert_eq!(
            read_status::<Snapshot>(file.path()).unwrap(),
            Snapshot { frames: 4 }
        );
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        std::fs::write(file.path(), "{").unwrap();
        let err = read_status::<Snapshot>(file.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a status snapshot"), "{err}");
    }
}

//! Status snapshots: a running service writes its counters to a JSON file in its state directory whenever they
//! changed (looked at every few seconds); its `status` command reads it (and the stores, read-only) without
//! talking to the process.
//!
//! The snapshot is not state: nothing is lost with it in a power cut, so it is replaced atomically (a reader never
//! sees half a file) but never `fsync`ed, and an idle service does not write it at all (SD-card wear). Whether
//! its process still runs is told by its pid ([`State::of`]), not by the file's age.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Where a service keeps its snapshot.
#[derive(Debug, Clone)]
pub struct StatusFile {
    path: PathBuf,
}

/// A snapshot as written: the service's counters and when they last changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped<T> {
    /// When the content last changed (Unix seconds): the file is rewritten only then.
    pub changed_unix: u64,
    #[serde(flatten)]
    pub snapshot: T,
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
}

impl StatusFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StatusFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the snapshot atomically (a temporary file beside it, then `rename`), without `fsync`: see the
    /// module documentation. World-readable: it holds counters, never secrets.
    pub fn write<T: Serialize>(&self, snapshot: &T) -> Result<(), StatusError> {
        let mut text =
            serde_json::to_vec_pretty(snapshot).map_err(|source| StatusError::Parse {
                path: self.path.clone(),
                source,
            })?;
        text.push(b'\n');
        let file_name = self.path.file_name().unwrap_or(self.path.as_os_str());
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = self.path.with_file_name(tmp_name);
        let result = write_then_rename(&tmp, &self.path, &text);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        // Named by the snapshot's path: the temporary file is an implementation detail.
        result.map_err(|source| StatusError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

fn write_then_rename(tmp: &Path, path: &Path, text: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(tmp)?;
    // The umask may have narrowed the mode: set it exactly.
    file.set_permissions(fs::Permissions::from_mode(0o644))?;
    file.write_all(text)?;
    drop(file);
    fs::rename(tmp, path)
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

/// Seconds since the Unix epoch (0 for a clock before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a snapshot says about its process, checked against the processes running now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// No snapshot: the service never ran with this state directory.
    NeverRun,
    Running,
    /// Stopped cleanly (its last snapshot says so).
    Stopped,
    /// The snapshot says running, but its process is gone (killed, crashed, or the machine restarted).
    Dead,
}

impl State {
    /// The state of a service whose snapshot says `running` for process `pid`. The snapshot is rewritten only
    /// when its counters change, so its age says nothing about the process: the pid does.
    pub fn of(running: bool, pid: u32) -> State {
        if !running {
            State::Stopped
        } else if Path::new(&format!("/proc/{pid}")).exists() {
            State::Running
        } else {
            State::Dead
        }
    }

    /// The state for people: of process `pid`, whose counters last changed `age` seconds ago.
    pub fn describe(self, pid: u32, age: u64) -> String {
        match self {
            State::NeverRun => "never run".to_owned(),
            State::Running => format!("running (pid {pid}), counters last changed {age} s ago"),
            State::Stopped => format!("stopped {age} s ago"),
            State::Dead => format!(
                "NOT running: pid {pid} is gone without a clean stop (crash, kill or reboot); \
                 its counters last changed {age} s ago"
            ),
        }
    }
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
        let dir = tempfile::tempdir().unwrap();
        let file = StatusFile::new(dir.path().join("relay.status.json"));
        file.write(&Snapshot { frames: 3 }).unwrap();
        file.write(&Stamped {
            changed_unix: 7,
            snapshot: Snapshot { frames: 4 },
        })
        .unwrap();
        // A reader that does not care when it changed reads the counters alone.
        assert_eq!(
            read_status::<Snapshot>(file.path()).unwrap(),
            Snapshot { frames: 4 }
        );
        assert_eq!(
            read_status::<Stamped<Snapshot>>(file.path())
                .unwrap()
                .changed_unix,
            7
        );
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        // Only the snapshot is left: no temporary file.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(file.path(), "{").unwrap();
        let err = read_status::<Snapshot>(file.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a status snapshot"), "{err}");
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = StatusFile::new(dir.path().join("gone/relay.status.json"));
        let err = file.write(&Snapshot { frames: 1 }).unwrap_err().to_string();
        assert!(err.contains("gone/relay.status.json: "), "{err}");
    }

    #[test]
    fn the_state_comes_from_the_pid() {
        assert_eq!(State::of(false, std::process::id()), State::Stopped);
        assert_eq!(State::of(true, std::process::id()), State::Running);
        // Above the kernel's largest pid (4194304): never a process.
        assert_eq!(State::of(true, u32::MAX), State::Dead);
    }
}

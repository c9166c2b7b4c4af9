//! TMC's read-only web page: what the receiver stored, shown in a browser and updated live.
//!
//! It reads two files the receiver writes and never writes anything itself: the JSON-lines output file
//! ([`readings`]) and the status snapshot ([`status`]). [`dashboard`] turns them into one JSON view, and
//! [`server`] serves it on a small HTTP listener (std threads and sockets, no framework): the page at `/`, the
//! view at `/api/readings`, and server-sent events at `/events` carrying the view each time it changed.

pub mod dashboard;
pub mod readings;
pub mod server;
pub mod status;

use std::path::{Path, PathBuf};

/// A file that cannot be read, or a status snapshot that is not one.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a receiver status snapshot: {reason}")]
    Status { path: PathBuf, reason: String },
}

impl WebError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        WebError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

//! The receiver's status snapshot (`<state_dir>/receiver.status.json`, what `tmc-receiver status` reads): the
//! few fields the page shows, and the link quality sampled each time the snapshot changed.
//!
//! Only the fields named here are read (others are ignored), so the page keeps working when the receiver's
//! snapshot gains fields, and nothing else in it (paths, peers) reaches the page.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::WebError;

/// Link-quality samples kept for the chart.
pub const LINK_HISTORY: usize = 240;

/// What the page shows of the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReceiverView {
    /// When the snapshot's counters last changed (Unix seconds).
    pub changed_unix: u64,
    /// False in the snapshot written at a clean exit.
    pub running: bool,
    pub started_unix: u64,
    pub link: LinkView,
}

/// The link counters the page shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkView {
    pub frames_heard: u64,
    pub frames_received: u64,
    pub readings_stored: u64,
    pub crc_errors: u64,
    pub duplicates: u64,
    pub last_frame_unix: Option<u64>,
    pub last_reading_unix: Option<u64>,
    pub last_rssi_dbm: Option<i16>,
    pub last_snr_db: Option<f32>,
}

/// One link-quality sample: the last frame's signal as a snapshot reported it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinkSample {
    pub frame_unix: u64,
    pub rssi_dbm: i16,
    pub snr_db: f32,
}

/// The snapshot file, read again when its modification time changes.
#[derive(Debug)]
pub struct StatusWatch {
    path: PathBuf,
    modified: Option<SystemTime>,
    current: Option<ReceiverView>,
    samples: VecDeque<LinkSample>,
}

impl StatusWatch {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StatusWatch {
            path: path.into(),
            modified: None,
            current: None,
            samples: VecDeque::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the snapshot again if it changed; true when it did. A missing snapshot (the receiver never ran) is
    /// not an error.
    pub fn refresh(&mut self) -> Result<bool, WebError> {
        let io = |e| WebError::io(&self.path, e);
        let modified = match std::fs::metadata(&self.path) {
            Ok(m) => m.modified().map_err(io)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let changed = self.current.is_some();
                self.current = None;
                self.modified = None;
                return Ok(changed);
            }
            Err(e) => return Err(io(e)),
        };
        if self.modified == Some(modified) {
            return Ok(false);
        }
        let text = std::fs::read(&self.path).map_err(io)?;
        // The receiver replaces the file atomically, so a parse error is a file that is not a snapshot.
        let view: ReceiverView = serde_json::from_slice(&text).map_err(|e| WebError::Status {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        self.modified = Some(modified);
        let link = &view.link;
        if let (Some(frame_unix), Some(rssi_dbm), Some(snr_db)) =
            (link.last_frame_unix, link.last_rssi_dbm, link.last_snr_db)
        {
            let new_frame = self.current.as_ref().is_none_or(|old| {
                old.link.last_frame_unix != link.last_frame_unix
                    || old.link.frames_heard != link.frames_heard
            });
            if new_frame {
                if self.samples.len() == LINK_HISTORY {
                    self.samples.pop_front();
                }
                self.samples.push_back(LinkSample {
                    frame_unix,
                    rssi_dbm,
                    snr_db,
                });
            }
        }
        let changed = self.current.as_ref() != Some(&view);
        self.current = Some(view);
        Ok(changed)
    }

    /// The snapshot as last read; None while there is none.
    pub fn current(&self) -> Option<&ReceiverView> {
        self.current.as_ref()
    }

    /// Link quality, one sample per snapshot that reported a new frame (frames between two looks are not seen).
    pub fn samples(&self) -> &VecDeque<LinkSample> {
        &self.samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_it_shows_and_samples_the_link_per_new_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receiver.status.json");
        let mut watch = StatusWatch::new(&path);
        assert!(!watch.refresh().unwrap(), "no snapshot yet");
        let snapshot = |heard: u64, rssi: i16| {
            format!(
                r#"{{"changed_unix":50,"pid":7,"running":true,"started_unix":1,"radio":"sim","address":1,"peers":[10],
                "legacy_enabled":false,"journal":0,"outputs":{{}},
                "link":{{"frames_heard":{heard},"frames_received":{heard},"last_frame_unix":{heard},"last_rssi_dbm":{rssi},"last_snr_db":9.5,"refused":{{}}}}}}"#
            )
        };
        std::fs::write(&path, snapshot(1, -60)).unwrap();
        assert!(watch.refresh().unwrap());
        let view = watch.current().unwrap();
        assert!(view.running);
        assert_eq!(view.link.last_rssi_dbm, Some(-60));
        assert_eq!(watch.samples().len(), 1);
        assert!(
            !watch.refresh().unwrap(),
            "unchanged file is not read again"
        );
        // A file with a different mtime: force it rather than wait for the clock.
        std::fs::write(&path, snapshot(2, -70)).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000))
            .unwrap();
        assert!(watch.refresh().unwrap());
        assert_eq!(
            watch
                .samples()
                .iter()
                .map(|s| s.rssi_dbm)
                .collect::<Vec<_>>(),
            vec![-60, -70]
        );
    }
}

//! The receiver's status snapshot (`<state_dir>/receiver.status.json`, what `tmc-receiver status` reads): the
//! few fields the page shows, and every frame's link quality (the snapshot lists the newest frames; each one is
//! kept here once, by its number, so the chart's history is longer than the snapshot's list).
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
    /// The newest frames that carried tokens (the receiver keeps a few dozen).
    #[serde(skip_serializing)]
    pub recent_frames: Vec<LinkSample>,
    /// `(Unix minute, milliseconds)` of the relays' airtime heard over the last hour.
    #[serde(skip_serializing)]
    pub airtime_heard_ms: Vec<(u64, u64)>,
    /// The band's hourly airtime budget in milliseconds, if it has a duty-cycle limit.
    pub airtime_budget_ms: Option<u64>,
}

impl LinkView {
    /// Seconds of airtime the relays spent in the hour before `now_unix`, as far as the gateway heard them.
    pub fn airtime_heard_seconds(&self, now_unix: u64) -> f64 {
        let minutes = (now_unix / 60).saturating_sub(59)..=now_unix / 60;
        let ms: u64 = self
            .airtime_heard_ms
            .iter()
            .filter(|(m, _)| minutes.contains(m))
            .map(|(_, ms)| ms)
            .sum();
        ms as f64 / 1000.0
    }
}

/// One frame's link quality, as the receiver recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkSample {
    /// The frame's number since the receiver started.
    pub n: u64,
    pub unix: u64,
    pub from: u8,
    pub rssi_dbm: i16,
    pub snr_db: f32,
    pub airtime_ms: u64,
}

/// The snapshot file, read again when its modification time changes.
#[derive(Debug)]
pub struct StatusWatch {
    path: PathBuf,
    modified: Option<SystemTime>,
    current: Option<ReceiverView>,
    samples: VecDeque<LinkSample>,
    /// The number of the newest frame in `samples` from the current receiver.
    last_n: u64,
}

impl StatusWatch {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StatusWatch {
            path: path.into(),
            modified: None,
            current: None,
            samples: VecDeque::new(),
            last_n: 0,
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
        let restarted = self
            .current
            .as_ref()
            .is_none_or(|old| old.started_unix != view.started_unix);
        if restarted {
            // A new receiver numbers its frames from 1 again.
            self.last_n = 0;
        }
        let last_n = self.last_n;
        for frame in view.link.recent_frames.iter().filter(|f| f.n > last_n) {
            if self.samples.len() == LINK_HISTORY {
                self.samples.pop_front();
            }
            self.samples.push_back(*frame);
            self.last_n = frame.n;
        }
        let changed = self.current.as_ref() != Some(&view);
        self.current = Some(view);
        Ok(changed)
    }

    /// The snapshot as last read; None while there is none.
    pub fn current(&self) -> Option<&ReceiverView> {
        self.current.as_ref()
    }

    /// Link quality, one sample per frame, oldest first (at most [`LINK_HISTORY`]).
    pub fn samples(&self) -> &VecDeque<LinkSample> {
        &self.samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_it_shows_and_keeps_each_frame_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receiver.status.json");
        let mut watch = StatusWatch::new(&path);
        assert!(!watch.refresh().unwrap(), "no snapshot yet");
        // The receiver's snapshot lists its newest frames; two looks overlap, and a restart numbers from 1.
        let snapshot = |started: u64, frames: &[(u64, i16)], mtime: u64| {
            let frames: Vec<String> = frames
                .iter()
                .map(|(n, rssi)| {
                    format!(
                        r#"{{"n":{n},"unix":{},"from":10,"rssi_dbm":{rssi},"snr_db":9.5,"airtime_ms":100}}"#,
                        1000 + n
                    )
                })
                .collect();
            std::fs::write(
                &path,
                format!(
                    r#"{{"changed_unix":50,"pid":7,"running":true,"started_unix":{started},"radio":"sim","address":1,
                    "peers":[10],"legacy_enabled":false,"journal":0,"outputs":{{}},
                    "link":{{"frames_heard":9,"frames_received":9,"last_rssi_dbm":-60,"last_snr_db":9.5,"refused":{{}},
                    "recent_frames":[{}],"airtime_heard_ms":[[16,400],[17,250]],"airtime_budget_ms":36000}}}}"#,
                    frames.join(",")
                ),
            )
            .unwrap();
            // Each write a different mtime: forced rather than waiting for the clock.
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(mtime))
                .unwrap();
        };
        snapshot(1, &[(1, -60), (2, -61)], 1);
        assert!(watch.refresh().unwrap());
        let view = watch.current().unwrap();
        assert!(view.running);
        assert_eq!(view.link.last_rssi_dbm, Some(-60));
        assert_eq!(view.link.airtime_budget_ms, Some(36_000));
        assert_eq!(view.link.airtime_heard_seconds(17 * 60 + 5), 0.65);
        assert_eq!(
            view.link.airtime_heard_seconds(76 * 60),
            0.25,
            "minute 16 is over an hour old"
        );
        assert!(
            !watch.refresh().unwrap(),
            "unchanged file is not read again"
        );
        snapshot(1, &[(2, -61), (3, -62), (4, -63)], 2);
        assert!(watch.refresh().unwrap());
        snapshot(2, &[(1, -70)], 3);
        assert!(watch.refresh().unwrap());
        assert_eq!(
            watch
                .samples()
                .iter()
                .map(|s| (s.n, s.rssi_dbm))
                .collect::<Vec<_>>(),
            vec![(1, -60), (2, -61), (3, -62), (4, -63), (1, -70)]
        );
    }
}

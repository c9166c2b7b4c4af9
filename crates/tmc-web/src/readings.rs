//! The receiver's JSON-lines output file, followed as it grows: the last reading and a short history per sensor.
//!
//! The file is only ever read. Each [`ReadingLog::refresh`] reads what was appended since the last one (a file
//! that got shorter was rotated or truncated: it is read again from the start). A line not yet ended by a
//! newline is kept until its end arrives, so a reading being written is never half-parsed.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::WebError;

/// Points kept per series for the chart (a day of one reading every six minutes).
pub const HISTORY: usize = 240;
/// The series name of a reading whose data is a bare number.
pub const VALUE_SERIES: &str = "value";
/// Bytes read per step, so that a large file is read without holding it whole.
const CHUNK: usize = 64 * 1024;

/// The fields of a reading's line that the page shows (`tmc-receiver`'s `line` module writes them).
#[derive(Debug, Deserialize)]
struct Line {
    topic: String,
    time: Option<u64>,
    data: Option<String>,
    data_base64: Option<String>,
}

/// One sensor (one topic) as the page shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sensor {
    pub topic: String,
    /// Unix seconds of the newest reading that carried a time.
    pub last_time: Option<u64>,
    /// The newest reading's data as text (`(binary, N bytes)` for data that is not UTF-8).
    pub last_data: String,
    /// Readings seen in the file.
    pub readings: u64,
    /// Numeric values over time, per series: `value` for a bare number, the field's name for a JSON object's
    /// numeric fields. At most [`HISTORY`] points each, as `[unix_seconds, value]`.
    pub series: BTreeMap<String, VecDeque<(u64, f64)>>,
}

/// The output file and what was read from it so far.
#[derive(Debug)]
pub struct ReadingLog {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    sensors: BTreeMap<String, Sensor>,
    newest_unix: Option<u64>,
    unreadable_lines: u64,
}

impl ReadingLog {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ReadingLog {
            path: path.into(),
            offset: 0,
            partial: Vec::new(),
            sensors: BTreeMap::new(),
            newest_unix: None,
            unreadable_lines: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what was appended since the last call. True when anything new was read. A missing file is not an
    /// error (the receiver creates it with its first reading).
    pub fn refresh(&mut self) -> Result<bool, WebError> {
        let path = self.path.clone();
        let io = |e| WebError::io(&path, e);
        let len = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io(e)),
        };
        if len < self.offset {
            // Rotated or truncated: what the page shows is what the file holds now.
            *self = ReadingLog::new(path.clone());
        }
        if len == self.offset {
            return Ok(false);
        }
        let mut file = File::open(&self.path).map_err(io)?;
        file.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        let mut chunk = vec![0u8; CHUNK];
        let mut changed = false;
        loop {
            let n = file.read(&mut chunk).map_err(io)?;
            if n == 0 {
                break;
            }
            self.offset += n as u64;
            self.partial.extend_from_slice(&chunk[..n]);
            let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            let complete: Vec<u8> = self.partial.drain(..=end).collect();
            for line in complete.split(|&b| b == b'\n') {
                changed |= self.take_line(line);
            }
        }
        Ok(changed)
    }

    fn take_line(&mut self, bytes: &[u8]) -> bool {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return false;
        }
        let Ok(line) = serde_json::from_slice::<Line>(bytes) else {
            self.unreadable_lines += 1;
            return false;
        };
        let sensor = self
            .sensors
            .entry(line.topic.clone())
            .or_insert_with(|| Sensor {
                topic: line.topic.clone(),
                ..Sensor::default()
            });
        sensor.readings += 1;
        sensor.last_data = match (&line.data, &line.data_base64) {
            (Some(text), _) => text.clone(),
            (None, Some(b64)) => format!("(binary, base64 {b64})"),
            (None, None) => String::new(),
        };
        if let Some(time) = line.time {
            sensor.last_time = Some(sensor.last_time.map_or(time, |t| t.max(time)));
            self.newest_unix = Some(self.newest_unix.map_or(time, |t| t.max(time)));
            if let Some(text) = &line.data {
                for (name, value) in numeric_values(text) {
                    let points = sensor.series.entry(name).or_default();
                    if points.len() == HISTORY {
                        points.pop_front();
                    }
                    points.push_back((time, value));
                }
            }
        }
        true
    }

    /// The sensors, by topic.
    pub fn sensors(&self) -> &BTreeMap<String, Sensor> {
        &self.sensors
    }

    /// Unix seconds of the newest reading in the file.
    pub fn newest_unix(&self) -> Option<u64> {
        self.newest_unix
    }

    /// Lines that were not a reading's JSON line.
    pub fn unreadable_lines(&self) -> u64 {
        self.unreadable_lines
    }
}

/// A reading's numbers: a bare number is one `value`; a JSON object gives each numeric field by name.
fn numeric_values(data: &str) -> Vec<(String, f64)> {
    let data = data.trim();
    if let Ok(v) = data.parse::<f64>() {
        return if v.is_finite() {
            vec![(VALUE_SERIES.to_owned(), v)]
        } else {
            Vec::new()
        };
    }
    match serde_json::from_str::<serde_json::Value>(data) {
        Ok(serde_json::Value::Object(fields)) => fields
            .into_iter()
            .filter_map(|(name, v)| v.as_f64().map(|v| (name, v)))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn follows_the_file_as_it_grows_and_waits_for_a_line_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("readings.jsonl");
        let mut log = ReadingLog::new(&path);
        assert!(!log.refresh().unwrap(), "no file yet is no error");
        append(&path, "{\"topic\":\"sensors/a/t\",\"time\":100,\"data\":\"21.5\"}\n{\"topic\":\"sensors/a/t\",\"time\":1");
        assert!(log.refresh().unwrap());
        let a = &log.sensors()["sensors/a/t"];
        assert_eq!((a.readings, a.last_data.as_str()), (1, "21.5"));
        append(&path, "60,\"data\":\"22\"}\n");
        assert!(log.refresh().unwrap());
        let a = &log.sensors()["sensors/a/t"];
        assert_eq!(a.readings, 2);
        assert_eq!(
            a.series[VALUE_SERIES].iter().copied().collect::<Vec<_>>(),
            vec![(100, 21.5), (160, 22.0)]
        );
        assert_eq!(log.newest_unix(), Some(160));
        assert!(!log.refresh().unwrap(), "nothing appended");
    }

    #[test]
    fn json_objects_give_a_series_per_numeric_field_and_bad_lines_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("readings.jsonl");
        append(
            &path,
            "not json\n{\"topic\":\"/esp\",\"time\":5,\"data\":\"{\\\"t\\\":20.5,\\\"h\\\":40,\\\"id\\\":\\\"x\\\"}\"}\n{\"topic\":\"/old\",\"profile\":\"legacy\",\"data\":\"Temperature: 21.50 C\"}\n",
        );
        let mut log = ReadingLog::new(&path);
        log.refresh().unwrap();
        assert_eq!(log.unreadable_lines(), 1);
        let esp = &log.sensors()["/esp"];
        assert_eq!(
            esp.series.keys().collect::<Vec<_>>(),
            vec!["h", "t"],
            "text fields are not charted"
        );
        let old = &log.sensors()["/old"];
        assert_eq!(old.last_data, "Temperature: 21.50 C");
        assert!(old.series.is_empty() && old.last_time.is_none());
    }

    #[test]
    fn a_truncated_file_is_read_again_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("readings.jsonl");
        append(&path, "{\"topic\":\"a\",\"time\":1,\"data\":\"1\"}\n{\"topic\":\"a\",\"time\":2,\"data\":\"2\"}\n");
        let mut log = ReadingLog::new(&path);
        log.refresh().unwrap();
        std::fs::write(&path, "{\"topic\":\"b\",\"time\":3,\"data\":\"3\"}\n").unwrap();
        assert!(log.refresh().unwrap());
        assert_eq!(log.sensors().keys().collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn history_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("readings.jsonl");
        let text: String = (0..HISTORY as u64 + 10)
            .map(|i| format!("{{\"topic\":\"a\",\"time\":{i},\"data\":\"{i}\"}}\n"))
            .collect();
        append(&path, &text);
        let mut log = ReadingLog::new(&path);
        log.refresh().unwrap();
        let points = &log.sensors()["a"].series[VALUE_SERIES];
        assert_eq!(points.len(), HISTORY);
        assert_eq!(points.front(), Some(&(10, 10.0)));
    }
}

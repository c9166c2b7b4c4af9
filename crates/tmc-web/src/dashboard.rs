//! The view the page shows: the readings per sensor, the receiver's link as its snapshot reports it, and how old
//! the newest reading is.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::readings::{ReadingLog, Sensor};
use crate::status::{LinkSample, ReceiverView, StatusWatch};
use crate::WebError;

/// Both files the page reads.
#[derive(Debug)]
pub struct Dashboard {
    readings: ReadingLog,
    status: StatusWatch,
    /// The last error reading either file, shown on the page (it names a path, never a secret).
    error: Option<String>,
}

/// The relays' airtime as the gateway heard it: their frames (and resent copies) in the last hour.
#[derive(Debug, Serialize)]
struct RelayAirtime {
    heard_seconds: f64,
    budget_seconds: Option<f64>,
}

/// The view as JSON: `/api/readings` and each event of `/events`.
#[derive(Debug, Serialize)]
struct View<'a> {
    /// The gateway's clock when the view was made: the page ages readings by it, not by the browser's clock.
    now_unix: u64,
    newest_reading_unix: Option<u64>,
    newest_reading_age_seconds: Option<u64>,
    sensors: Vec<&'a Sensor>,
    unreadable_lines: u64,
    receiver: Option<&'a ReceiverView>,
    /// One sample per frame received, oldest first.
    link_samples: Vec<&'a LinkSample>,
    /// The relays' airtime in the last hour as far as the gateway heard it, against the band's budget.
    relay_airtime: Option<RelayAirtime>,
    error: Option<&'a str>,
}

impl Dashboard {
    pub fn new(readings: ReadingLog, status: StatusWatch) -> Self {
        Dashboard {
            readings,
            status,
            error: None,
        }
    }

    /// Reads what changed in either file; true when the view changed.
    pub fn refresh(&mut self) -> bool {
        let readings = self.readings.refresh();
        let status = self.status.refresh();
        let error = [readings.as_ref().err(), status.as_ref().err()]
            .into_iter()
            .flatten()
            .map(WebError::to_string)
            .next();
        let changed = matches!(readings, Ok(true)) || matches!(status, Ok(true));
        let error_changed = error != self.error;
        if error_changed {
            if let Some(e) = &error {
                tracing::warn!("{e}");
            }
            self.error = error;
        }
        changed || error_changed
    }

    /// The view as JSON, aged at `now_unix`.
    pub fn to_json(&self, now_unix: u64) -> String {
        let newest = self.readings.newest_unix();
        let view = View {
            now_unix,
            newest_reading_unix: newest,
            newest_reading_age_seconds: newest.map(|t| now_unix.saturating_sub(t)),
            sensors: self.readings.sensors().values().collect(),
            unreadable_lines: self.readings.unreadable_lines(),
            receiver: self.status.current(),
            link_samples: self.status.samples().iter().collect(),
            relay_airtime: self.status.current().map(|r| RelayAirtime {
                heard_seconds: r.link.airtime_heard_seconds(now_unix),
                budget_seconds: r.link.airtime_budget_ms.map(|ms| ms as f64 / 1000.0),
            }),
            error: self.error.as_deref(),
        };
        // Strings, integers, finite floats and options: serialising cannot fail.
        serde_json::to_string(&view).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// Seconds since the Unix epoch on this machine's clock.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

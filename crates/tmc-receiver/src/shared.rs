//! What the receiver's threads share: the inbox (one SQLite connection), the counters of the status snapshot, and
//! the wake-ups (a new journal record for the outputs, any change for whoever waits on the counters).
//!
//! Lock order: the inbox before the counters, never the other way round. Both are held only for one short step
//! (one commit, one query, one counter update), never across radio or network I/O.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tmc_queue::Inbox;
use tokio::sync::watch;

/// The status snapshot: written to `<state_dir>/receiver.status.json` (as a [`tmc_service::Stamped`]) when it
/// changed, looked at every few seconds and at exit; read by `tmc-receiver status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub pid: u32,
    /// False in the snapshot written at a clean exit.
    pub running: bool,
    pub started_unix: u64,
    /// Which radio (board or simulated air).
    pub radio: String,
    pub address: u8,
    pub peers: Vec<u8>,
    pub legacy_enabled: bool,
    pub link: LinkCounters,
    /// Records in the journal (not yet delivered by every output).
    pub journal: u64,
    pub outputs: BTreeMap<String, OutputStatus>,
}

/// What came over the radio since the start. Every packet heard ends in exactly one counted fate:
/// [`LinkCounters::fates`] equals `frames_heard` whenever the radio loop is between two packets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkCounters {
    /// Packets the radio heard, good or bad.
    pub frames_heard: u64,
    /// Packets that failed the radio's CRC (noise, collisions).
    pub crc_errors: u64,
    /// Packets too short for a RadioHead header.
    pub malformed_frames: u64,
    /// Frames addressed to another node.
    pub other_node: u64,
    /// ACK frames heard (another exchange on the channel, or late).
    pub stray_acks: u64,
    /// Tokens the link handed over (new datagrams from peers).
    pub frames_received: u64,
    /// Tokens committed to the inbox (legacy frames included).
    pub tokens_stored: u64,
    pub readings_stored: u64,
    /// Legacy frames stored (also counted in `tokens_stored`).
    pub legacy_frames: u64,
    /// Tokens already stored (a relay resent them): acknowledged, not stored again.
    pub duplicates: u64,
    /// Tokens too far behind their sender's newest counter to tell: acknowledged, not stored.
    pub stale: u64,
    /// Tokens refused, by reason (`bad_signature`, `unknown_kid`, `malformed`, ...).
    pub refused: BTreeMap<String, u64>,
    /// By sender id: tokens that one honest relay cannot send (its counter taken by other bytes, or far
    /// behind): two relays likely share the sender id (see `sender_watch`). Counted among the duplicates and
    /// stale tokens too, not a fate of their own.
    pub sender_conflicts: BTreeMap<String, u64>,
    /// Frames from nodes that are not peers (dropped, not acknowledged).
    pub unknown_node: u64,
    /// Retries of the token acknowledged last from a node (same ID and bytes, within the retry window): the
    /// link layer acknowledged them again.
    pub resent_copies: u64,
    /// Tokens not stored because the inbox failed (not acknowledged: the relay sends them again).
    pub commit_failures: u64,
    pub radio_errors: u64,
    pub last_frame_unix: Option<u64>,
    pub last_reading_unix: Option<u64>,
    pub last_rssi_dbm: Option<i16>,
    pub last_snr_db: Option<f32>,
    /// The newest tokens' frames, oldest first, at most [`RECENT_FRAMES`]: each frame's link quality (what
    /// `tmc-web` charts; it keeps a longer history by `n`, so frames between two of its looks are not missed).
    pub recent_frames: VecDeque<FrameHeard>,
    /// Airtime of the frames heard from the relays (their tokens and resent copies) as `(Unix minute,
    /// milliseconds)`, oldest first, over the last hour: what the relays spent of their duty-cycle budget, as
    /// far as the gateway heard.
    pub airtime_heard_ms: VecDeque<(u64, u64)>,
    /// The hourly airtime budget of the band, in milliseconds (the gateway's own limit, which the relays on the
    /// same band share); None without a duty-cycle limit.
    pub airtime_budget_ms: Option<u64>,
    /// RSSI of every frame that carried a token, by [`RSSI_BOUNDS_DBM`] (Prometheus' histogram).
    pub rssi_dbm: Histogram,
    /// SNR of every frame that carried a token, by [`SNR_BOUNDS_DB`].
    pub snr_db: Histogram,
}

/// Upper bounds of the RSSI histogram's buckets (dBm): the SX1276 hears down to about -137 dBm at SF12, and
/// a node next to the gateway is near -30.
pub const RSSI_BOUNDS_DBM: [f64; 10] = [
    -130.0, -120.0, -110.0, -100.0, -90.0, -80.0, -70.0, -60.0, -50.0, -40.0,
];
/// Upper bounds of the SNR histogram's buckets (dB): LoRa demodulates down to -20 dB at SF12.
pub const SNR_BOUNDS_DB: [f64; 8] = [-20.0, -15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0];

/// Observations counted per bucket (not cumulative; the last count is above every bound) and their sum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub counts: Vec<u64>,
    pub sum: f64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        self.counts.resize(bounds.len() + 1, 0);
        let bucket = bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(bounds.len());
        self.counts[bucket] += 1;
        self.sum += value;
    }
}

/// How many frames [`LinkCounters::recent_frames`] keeps: the snapshot is written every few seconds while
/// frames arrive, and no relay sends this many frames in a few seconds within a duty cycle.
pub const RECENT_FRAMES: usize = 32;

/// One frame that carried a token, as the radio heard it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameHeard {
    /// Its number among the frames received since the start (`frames_received` after it).
    pub n: u64,
    pub unix: u64,
    /// The relay's node address.
    pub from: u8,
    pub rssi_dbm: i16,
    pub snr_db: f32,
    /// Time on air of the whole frame (header and token) with the radio's settings.
    pub airtime_ms: u64,
}

impl LinkCounters {
    /// Records a frame that carried a token.
    pub(crate) fn heard(&mut self, frame: FrameHeard) {
        self.add_airtime(frame.unix, frame.airtime_ms);
        self.rssi_dbm
            .observe(&RSSI_BOUNDS_DBM, f64::from(frame.rssi_dbm));
        self.snr_db.observe(&SNR_BOUNDS_DB, f64::from(frame.snr_db));
        if self.recent_frames.len() == RECENT_FRAMES {
            self.recent_frames.pop_front();
        }
        self.recent_frames.push_back(frame);
    }

    /// Counts `ms` of the relays' airtime heard at `unix`; airtime older than an hour is forgotten.
    pub(crate) fn add_airtime(&mut self, unix: u64, ms: u64) {
        let minute = unix / 60;
        match self.airtime_heard_ms.back_mut() {
            Some((m, total)) if *m == minute => *total += ms,
            _ => self.airtime_heard_ms.push_back((minute, ms)),
        }
        let first = minute.saturating_sub(59);
        while self
            .airtime_heard_ms
            .front()
            .is_some_and(|(m, _)| *m < first)
        {
            self.airtime_heard_ms.pop_front();
        }
    }

    /// Airtime heard from the relays in the hour before `now_unix`, by whole minutes.
    pub fn airtime_heard_last_hour_ms(&self, now_unix: u64) -> u64 {
        let first = (now_unix / 60).saturating_sub(59);
        self.airtime_heard_ms
            .iter()
            .filter(|(m, _)| (first..=now_unix / 60).contains(m))
            .map(|(_, ms)| ms)
            .sum()
    }

    /// The packets accounted for: the link's fates (CRC error, malformed, other node, stray ACK, retry,
    /// unknown node) and each received token's (stored, duplicate, stale, refused, not stored).
    pub fn fates(&self) -> u64 {
        self.crc_errors
            + self.malformed_frames
            + self.other_node
            + self.stray_acks
            + self.resent_copies
            + self.unknown_node
            + self.tokens_stored
            + self.duplicates
            + self.stale
            + self.refused.values().sum::<u64>()
            + self.commit_failures
    }
}

/// One output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputStatus {
    /// Readings delivered since the start.
    pub delivered: u64,
    /// Journal records it has not delivered yet.
    pub backlog: u64,
    /// For the upstream output: whether the broker connection is up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected: Option<bool>,
    /// The current failure, if the output is failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Facts fixed at start.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub radio: String,
    pub address: u8,
    pub peers: Vec<u8>,
    pub legacy_enabled: bool,
}

#[derive(Default)]
struct State {
    /// Bumped on every change, so a waiter never misses one.
    version: u64,
    /// Bumped on every journal commit.
    journal: u64,
    stopping: bool,
    link: LinkCounters,
    outputs: BTreeMap<String, OutputStatus>,
}

/// Shared by the radio loop, the outputs and the supervisor.
pub struct Shared {
    inbox: Mutex<Inbox>,
    state: Mutex<State>,
    changed: Condvar,
    journal_tx: watch::Sender<u64>,
    meta: Meta,
    started_unix: u64,
}

pub(crate) use tmc_service::status::unix_now;

impl Shared {
    pub fn new(inbox: Inbox, meta: Meta) -> Self {
        Shared {
            inbox: Mutex::new(inbox),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            journal_tx: watch::Sender::new(0),
            meta,
            started_unix: unix_now(),
        }
    }

    /// The inbox, locked. A thread that panicked while holding it left SQLite consistent (every change is one
    /// transaction), so a poisoned lock is taken over.
    pub fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn change(&self, f: impl FnOnce(&mut State)) {
        let mut state = self.state();
        f(&mut state);
        state.version += 1;
        drop(state);
        self.changed.notify_all();
    }

    pub(crate) fn update_link(&self, f: impl FnOnce(&mut LinkCounters)) {
        self.change(|s| f(&mut s.link));
    }

    /// Adds an output to the status (the service does it for every configured output). `connected` is
    /// `Some(false)` for an output with a connection (upstream), `None` otherwise.
    pub fn register_output(&self, name: &str, connected: Option<bool>) {
        self.change(|s| {
            s.outputs.insert(
                name.to_owned(),
                OutputStatus {
                    connected,
                    ..OutputStatus::default()
                },
            );
        });
    }

    pub(crate) fn update_output(&self, name: &str, f: impl FnOnce(&mut OutputStatus)) {
        self.change(|s| {
            if let Some(o) = s.outputs.get_mut(name) {
                f(o);
            }
        });
    }

    /// New records are in the journal: wake the outputs.
    pub(crate) fn journal_grew(&self) {
        self.change(|s| s.journal += 1);
        self.journal_tx.send_modify(|n| *n += 1);
    }

    /// Asks every loop to finish what it holds and stop (and wakes the ones that wait for records).
    pub fn stop(&self) {
        self.change(|s| s.stopping = true);
        self.journal_tx.send_modify(|n| *n += 1);
    }

    pub fn stopping(&self) -> bool {
        self.state().stopping
    }

    pub(crate) fn journal_generation(&self) -> u64 {
        self.state().journal
    }

    /// Waits until the journal generation is no longer `seen`, a stop is requested or `timeout` passed.
    pub(crate) fn wait_journal(&self, seen: u64, timeout: Duration) {
        let state = self.state();
        let _ = self
            .changed
            .wait_timeout_while(state, timeout, |s| s.journal == seen && !s.stopping)
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// For async outputs: changes whenever the journal grows or a stop is requested.
    pub(crate) fn journal_watch(&self) -> watch::Receiver<u64> {
        self.journal_tx.subscribe()
    }

    /// The current counters and backlogs.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_and_version().0
    }

    fn snapshot_and_version(&self) -> (Snapshot, u64) {
        // Inbox first (lock order), then the counters.
        let names: Vec<String> = self.state().outputs.keys().cloned().collect();
        let (journal, backlogs) = {
            let inbox = self.inbox();
            let backlogs: BTreeMap<String, u64> = names
                .iter()
                .map(|n| (n.clone(), inbox.backlog(n).unwrap_or(0)))
                .collect();
            (inbox.len().unwrap_or(0), backlogs)
        };
        let state = self.state();
        let mut outputs = state.outputs.clone();
        for (name, output) in &mut outputs {
            output.backlog = backlogs.get(name).copied().unwrap_or(0);
        }
        let snapshot = Snapshot {
            pid: std::process::id(),
            running: !state.stopping,
            started_unix: self.started_unix,
            radio: self.meta.radio.clone(),
            address: self.meta.address,
            peers: self.meta.peers.clone(),
            legacy_enabled: self.meta.legacy_enabled,
            link: state.link.clone(),
            journal,
            outputs,
        };
        (snapshot, state.version)
    }

    /// Waits (at most `timeout`) until `done` holds for a snapshot; returns that snapshot, or `None` on timeout.
    /// Every change to the counters wakes it, so no change is missed.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&Snapshot) -> bool,
    ) -> Option<Snapshot> {
        let deadline = Instant::now() + timeout;
        loop {
            let (snapshot, version) = self.snapshot_and_version();
            if done(&snapshot) {
                return Some(snapshot);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let state = self.state();
            // Backlogs change with the counters: outputs count what they delivered, the radio loop what it stored.
            let _ = self
                .changed
                .wait_timeout_while(state, deadline - now, |s| s.version == version)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

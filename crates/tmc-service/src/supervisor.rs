//! The supervisor of a service's loops, the same for the relay and the receiver.
//!
//! Each round (every [`Timing::tick`]) it checks that every loop registered with the [`Watchdog`] beat within
//! [`Timing::stall_limit`], and pings the systemd watchdog only if all did: a loop stuck on a dead SPI bus stops the
//! pings and systemd restarts the service. Every few rounds it takes the status snapshot the service's `status`
//! command reads and writes it if it changed (an idle service writes nothing), and tells systemd its one-line
//! status. When a stop is requested it wakes the loops and returns; once they have stopped,
//! [`Supervisor::finish`] writes the last snapshot.
//!
//! Stalls are checked whether systemd watches or not (outside systemd against [`STALL_LIMIT`]), so a hung loop
//! is in the log either way: once when it stops making progress, once when it moves again.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::notify::{Notifier, Notify, Watchdog};
use crate::shutdown::Shutdown;
use crate::status::{unix_now, Stamped, StatusFile};

/// How often the status snapshot is taken (and written, if it changed).
pub const STATUS_INTERVAL: Duration = Duration::from_secs(2);

/// How long a loop may go without a beat outside systemd before it is called stalled. Under systemd, the
/// watchdog interval (`WatchdogSec=`) is the limit.
pub const STALL_LIMIT: Duration = Duration::from_secs(60);

/// The shortest round, whatever the watchdog interval: a tiny `WatchdogSec=` must not make a busy loop.
const MIN_TICK: Duration = Duration::from_millis(1);

/// What a service shows of itself: the snapshot for its `status` command and the line for `systemctl status`.
pub trait Report {
    /// Compared with the last one written: only a changed snapshot is written.
    type Snapshot: Serialize + PartialEq + Clone;

    /// The counters now. Nothing in it may change while the service is idle (no clock readings): the time it
    /// last changed is added when it is written ([`Stamped`]).
    fn snapshot(&self) -> Self::Snapshot;

    /// The one-line summary of `snapshot` systemd shows.
    fn status_line(&self, snapshot: &Self::Snapshot) -> String;

    /// Wakes the loops that wait on something other than the [`Shutdown`], so they notice the stop at once.
    fn wake_loops(&self) {}
}

impl<T: Report + ?Sized> Report for Arc<T> {
    type Snapshot = T::Snapshot;

    fn snapshot(&self) -> T::Snapshot {
        (**self).snapshot()
    }

    fn status_line(&self, snapshot: &T::Snapshot) -> String {
        (**self).status_line(snapshot)
    }

    fn wake_loops(&self) {
        (**self).wake_loops();
    }
}

/// The supervisor's pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Between two rounds (stall check and watchdog ping).
    pub tick: Duration,
    /// The snapshot and the status line are written in the first round and every this many rounds after.
    pub status_every: u32,
    /// A loop that has not beaten for longer is stalled.
    pub stall_limit: Duration,
}

impl Timing {
    /// The pace for a service under a systemd watchdog of `interval` (none: not watched): pings at twice the rate
    /// systemd expects, the snapshot every [`STATUS_INTERVAL`] whatever the pings' rate.
    pub fn for_watchdog(interval: Option<Duration>) -> Timing {
        let Some(interval) = interval else {
            return Timing {
                tick: STATUS_INTERVAL,
                status_every: 1,
                stall_limit: STALL_LIMIT,
            };
        };
        let tick = (interval / 2).clamp(MIN_TICK, STATUS_INTERVAL);
        let status_every = STATUS_INTERVAL.as_nanos().div_ceil(tick.as_nanos());
        Timing {
            tick,
            status_every: u32::try_from(status_every).unwrap_or(u32::MAX),
            stall_limit: interval,
        }
    }
}

/// A change in which loops are stalled, as one round of [`Supervisor::tick`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stall {
    /// These loops made no progress within the limit (newly, or a different set than before): no ping.
    Started(Vec<String>),
    /// Every loop makes progress again: the pings resume.
    Cleared,
}

/// Writes snapshots when they changed, and logs a failure when writing starts to fail rather than every round.
///
/// The one place snapshots go through.
struct SnapshotWriter<T> {
    file: StatusFile,
    /// The last snapshot written; a failed write leaves it, so the next round tries again.
    written: Option<T>,
    failing: bool,
}

impl<T: Serialize + PartialEq + Clone> SnapshotWriter<T> {
    fn new(file: StatusFile) -> Self {
        SnapshotWriter {
            file,
            written: None,
            failing: false,
        }
    }

    /// Writes `snapshot` unless it is the one already written.
    fn write(&mut self, snapshot: &T) {
        if self.written.as_ref() == Some(snapshot) {
            return;
        }
        let stamped = Stamped {
            changed_unix: unix_now(),
            snapshot,
        };
        match self.file.write(&stamped) {
            Ok(()) => {
                self.failing = false;
                self.written = Some(snapshot.clone());
            }
            Err(e) if !self.failing => {
                tracing::warn!("status snapshot not written: {e}");
                self.failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Watches a service's loops and reports on the service; see the module documentation.
pub struct Supervisor<R: Report, N = Notifier> {
    watchdog: Watchdog,
    report: R,
    status: SnapshotWriter<R::Snapshot>,
    notify: N,
    timing: Timing,
    ticks: u64,
    stalled: Vec<String>,
}

impl<R: Report> Supervisor<R> {
    /// A supervisor of the loops registered with `watchdog` that reports to systemd, at the pace of the watchdog
    /// systemd set for this process ([`Timing::for_watchdog`]).
    pub fn new(watchdog: Watchdog, status: StatusFile, report: R) -> Self {
        let notify = Notifier;
        Supervisor {
            watchdog,
            report,
            status: SnapshotWriter::new(status),
            timing: Timing::for_watchdog(notify.watchdog_interval()),
            notify,
            ticks: 0,
            stalled: Vec::new(),
        }
    }
}

impl<R: Report, N: Notify> Supervisor<R, N> {
    /// The same supervisor reporting to `notify` instead.
    pub fn notifying<M: Notify>(self, notify: M) -> Supervisor<R, M> {
        Supervisor {
            watchdog: self.watchdog,
            report: self.report,
            status: self.status,
            notify,
            timing: self.timing,
            ticks: self.ticks,
            stalled: self.stalled,
        }
    }

    /// The same supervisor at another pace.
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    pub fn report(&self) -> &R {
        &self.report
    }

    /// Runs rounds until a stop is requested (the first one at once), then wakes the loops.
    pub fn run(&mut self, shutdown: &Shutdown) {
        loop {
            self.tick();
            if shutdown.wait(self.timing.tick) {
                break;
            }
        }
        self.report.wake_loops();
    }

    /// One round: the snapshot and the status line when due, then the stall check and, if no loop is stalled,
    /// the watchdog ping. Returns how the stalled loops changed (already logged).
    pub fn tick(&mut self) -> Option<Stall> {
        if self
            .ticks
            .is_multiple_of(u64::from(self.timing.status_every.max(1)))
        {
            let snapshot = self.report.snapshot();
            self.status.write(&snapshot);
            self.notify.status(&self.report.status_line(&snapshot));
        }
        self.ticks += 1;

        let limit = self.timing.stall_limit;
        let stalled: Vec<String> = self
            .watchdog
            .stalled(limit)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let change = if stalled == self.stalled {
            None
        } else if stalled.is_empty() {
            tracing::info!(
                "{}: making progress again; watchdog pings resume",
                self.stalled.join(", ")
            );
            Some(Stall::Cleared)
        } else {
            tracing::error!(
                "stalled: {} (no progress for {limit:?}); withholding the watchdog ping",
                stalled.join(", ")
            );
            Some(Stall::Started(stalled.clone()))
        };
        if stalled.is_empty() {
            self.notify.watchdog_ping();
        }
        self.stalled = stalled;
        change
    }

    /// Writes the last snapshot (call it once the loops have stopped) and returns it.
    pub fn finish(&mut self) -> R::Snapshot {
        let snapshot = self.report.snapshot();
        // The last snapshot is worth a word even when earlier ones already failed.
        self.status.failing = false;
        self.status.write(&snapshot);
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::status::read_status;
    use crate::wakeup::Wakeup;

    #[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
    struct Counters {
        snapshot: u64,
        running: bool,
    }

    /// A service whose snapshot counts the snapshots taken.
    #[derive(Default)]
    struct Service {
        snapshots: AtomicU64,
        woken: AtomicBool,
    }

    impl Report for Service {
        type Snapshot = Counters;

        fn snapshot(&self) -> Counters {
            Counters {
                snapshot: self.snapshots.fetch_add(1, Ordering::SeqCst) + 1,
                running: !self.woken.load(Ordering::SeqCst),
            }
        }

        fn status_line(&self, snapshot: &Counters) -> String {
            format!("snapshot {}", snapshot.snapshot)
        }

        fn wake_loops(&self) {
            self.woken.store(true, Ordering::SeqCst);
        }
    }

    /// What systemd would have been told.
    #[derive(Clone, Default)]
    struct Recorder {
        pings: Arc<AtomicU64>,
        lines: Arc<Mutex<Vec<String>>>,
        line_sent: Arc<Wakeup>,
    }

    impl Notify for Recorder {
        fn status(&self, line: &str) {
            self.lines.lock().unwrap().push(line.to_owned());
            self.line_sent.ring();
        }

        fn watchdog_ping(&self) {
            self.pings.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Recorder {
        fn pings(&self) -> u64 {
            self.pings.load(Ordering::SeqCst)
        }

        fn lines(&self) -> Vec<String> {
            self.lines.lock().unwrap().clone()
        }
    }

    const LIMIT: Duration = Duration::from_secs(10);

    fn timing(status_every: u32) -> Timing {
        Timing {
            tick: Duration::from_secs(3600),
            status_every,
            stall_limit: LIMIT,
        }
    }

    #[test]
    fn pings_only_while_every_loop_progresses_and_logs_a_stall_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = StatusFile::new(dir.path().join("service.status.json"));
        let (mut watchdog, clock) = Watchdog::with_manual_clock();
        let radio = watchdog.heartbeat("radio");
        let output = watchdog.heartbeat("output");
        let recorder = Recorder::default();
        let mut supervisor = Supervisor::new(watchdog, file.clone(), Service::default())
            .notifying(recorder.clone())
            .with_timing(timing(2));

        // The first round writes the snapshot at once, and both loops are fresh.
        assert_eq!(supervisor.tick(), None);
        assert_eq!(recorder.pings(), 1);
        let written: Counters = read_status(file.path()).unwrap();
        assert_eq!(written.snapshot, 1);

        // The output hangs: no ping, said once, for as long as it lasts.
        clock.advance(LIMIT + Duration::from_secs(1));
        radio.beat();
        assert_eq!(
            supervisor.tick(),
            Some(Stall::Started(vec!["output".to_owned()]))
        );
        assert_eq!(supervisor.tick(), None);
        assert_eq!(supervisor.tick(), None);
        assert_eq!(recorder.pings(), 1);

        // The radio hangs too: a different set of stalled loops is news.
        clock.advance(LIMIT + Duration::from_secs(1));
        assert_eq!(
            supervisor.tick(),
            Some(Stall::Started(vec![
                "radio".to_owned(),
                "output".to_owned()
            ]))
        );

        // Both move again: said once, and the pings resume.
        radio.beat();
        output.beat();
        assert_eq!(supervisor.tick(), Some(Stall::Cleared));
        assert_eq!(supervisor.tick(), None);
        assert_eq!(recorder.pings(), 3);

        // Seven rounds, a snapshot every second round: rounds 1, 3, 5 and 7.
        assert_eq!(
            recorder.lines(),
            ["snapshot 1", "snapshot 2", "snapshot 3", "snapshot 4"]
        );
        let written: Counters = read_status(file.path()).unwrap();
        assert_eq!(written.snapshot, 4);
    }

    #[test]
    fn stops_on_request_wakes_the_loops_and_finishes_with_the_last_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let file = StatusFile::new(dir.path().join("service.status.json"));
        let mut watchdog = Watchdog::new();
        let _radio = watchdog.heartbeat("radio");
        let recorder = Recorder::default();
        let mut supervisor = Supervisor::new(watchdog, file.clone(), Service::default())
            .notifying(recorder.clone())
            .with_timing(timing(1));
        let shutdown = Shutdown::new();
        let stop = shutdown.clone();
        let thread = std::thread::spawn(move || {
            supervisor.run(&stop);
            supervisor
        });

        // The first round comes at once; the next would be an hour later, so the stop is what ends the run.
        assert!(recorder.line_sent.wait(Duration::from_secs(60)));
        assert!(!thread.is_finished());
        shutdown.request();
        let mut supervisor = thread.join().unwrap();
        assert!(supervisor.report().woken.load(Ordering::SeqCst));
        assert_eq!(recorder.lines(), ["snapshot 1"]);

        let last = supervisor.finish();
        assert_eq!(
            last,
            Counters {
                snapshot: 2,
                running: false
            }
        );
        assert_eq!(read_status::<Counters>(file.path()).unwrap(), last);
    }

    #[test]
    fn a_snapshot_that_cannot_be_written_does_not_stop_the_pings() {
        let dir = tempfile::tempdir().unwrap();
        let file = StatusFile::new(dir.path().join("missing").join("service.status.json"));
        let recorder = Recorder::default();
        let mut supervisor = Supervisor::new(Watchdog::new(), file, Service::default())
            .notifying(recorder.clone())
            .with_timing(timing(1));
        supervisor.tick();
        supervisor.tick();
        supervisor.finish();
        assert_eq!(recorder.pings(), 2);
        assert_eq!(recorder.lines(), ["snapshot 1", "snapshot 2"]);
    }

    /// A service whose counters change only when told: idle otherwise.
    #[derive(Default)]
    struct Idle {
        frames: AtomicU64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
    struct Frames {
        frames: u64,
    }

    impl Report for Idle {
        type Snapshot = Frames;

        fn snapshot(&self) -> Frames {
            Frames {
                frames: self.frames.load(Ordering::SeqCst),
            }
        }

        fn status_line(&self, snapshot: &Frames) -> String {
            format!("{} frames", snapshot.frames)
        }
    }

    #[test]
    fn writes_the_snapshot_only_when_it_changed() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let file = StatusFile::new(state_dir.join("service.status.json"));
        let recorder = Recorder::default();
        let mut supervisor = Supervisor::new(Watchdog::new(), file.clone(), Idle::default())
            .notifying(recorder.clone())
            .with_timing(timing(1));

        // The state directory is missing: nothing written, and the same snapshot is tried again next round.
        supervisor.tick();
        assert!(!file.path().exists());
        std::fs::create_dir(&state_dir).unwrap();
        let before = unix_now();
        supervisor.tick();
        let written: Stamped<Frames> = read_status(file.path()).unwrap();
        assert_eq!(written.snapshot, Frames { frames: 0 });
        assert!(written.changed_unix >= before);

        // Idle: the snapshot is not written again (a removed file stays removed), systemd still hears.
        std::fs::remove_file(file.path()).unwrap();
        supervisor.tick();
        supervisor.tick();
        assert!(!file.path().exists());
        assert_eq!(recorder.lines().len(), 4);

        // A counter moves: written at the next round.
        supervisor.report().frames.store(1, Ordering::SeqCst);
        supervisor.tick();
        let written: Stamped<Frames> = read_status(file.path()).unwrap();
        assert_eq!(written.snapshot, Frames { frames: 1 });
        // Only the snapshot is in the directory: no temporary file left behind.
        assert_eq!(std::fs::read_dir(&state_dir).unwrap().count(), 1);
    }

    #[test]
    fn the_pace_follows_the_systemd_watchdog() {
        assert_eq!(
            Timing::for_watchdog(None),
            Timing {
                tick: STATUS_INTERVAL,
                status_every: 1,
                stall_limit: STALL_LIMIT
            }
        );
        // WatchdogSec=2: a ping every second, the snapshot every other round.
        assert_eq!(
            Timing::for_watchdog(Some(Duration::from_secs(2))),
            Timing {
                tick: Duration::from_secs(1),
                status_every: 2,
                stall_limit: Duration::from_secs(2)
            }
        );
        // WatchdogSec=30: rounds no further apart than the snapshots.
        assert_eq!(
            Timing::for_watchdog(Some(Duration::from_secs(30))),
            Timing {
                tick: STATUS_INTERVAL,
                status_every: 1,
                stall_limit: Duration::from_secs(30)
            }
        );
        let tiny = Timing::for_watchdog(Some(Duration::from_micros(1)));
        assert_eq!(tiny.tick, MIN_TICK);
    }
}

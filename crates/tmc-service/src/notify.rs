//! systemd integration: `Type=notify` readiness, a one-line status, and watchdog pings.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op. The watchdog pings only while every
//! registered loop has reported progress recently: a sender stuck on a dead SPI bus stops the pings, and
//! systemd restarts the service (`WatchdogSec=`, `Restart=on-failure`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Talks to systemd's notify socket.
#[derive(Clone, Copy, Debug, Default)]
pub struct Notifier;

impl Notifier {
    /// Tells systemd the service is up (after the stores are open and the radio answered).
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// Updates the status line `systemctl status` shows.
    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// The watchdog interval systemd expects pings within, if it set one for this process.
    ///
    /// As libsystemd's `sd_watchdog_enabled`: `WATCHDOG_USEC` sets it, and `WATCHDOG_PID`, when present, must be
    /// this process (a child that inherited the variables does not ping for its parent).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID") {
            if pid.parse::<u32>().ok()? != std::process::id() {
                return None;
            }
        }
        (usec > 0).then(|| Duration::from_micros(usec))
    }

    pub fn watchdog_ping(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return;
        }
        if let Err(e) = sd_notify::notify(false, states) {
            tracing::warn!("systemd notify failed: {e}");
        }
    }
}

/// What a running service tells its manager: [`Notifier`] (systemd) in the services, a recorder in tests.
pub trait Notify {
    /// Updates the one-line status.
    fn status(&self, line: &str);
    /// Says every loop is alive.
    fn watchdog_ping(&self);
}

impl Notify for Notifier {
    fn status(&self, line: &str) {
        Notifier::status(self, line);
    }

    fn watchdog_ping(&self) {
        Notifier::watchdog_ping(self);
    }
}

/// Liveness of a service's loops: each loop holds a [`Heartbeat`] and beats once per iteration.
#[derive(Clone)]
pub struct Watchdog {
    clock: LoopClock,
    beats: Vec<(String, Arc<AtomicU64>)>,
}

/// One loop's progress marker.
#[derive(Clone)]
pub struct Heartbeat {
    clock: LoopClock,
    last_ms: Arc<AtomicU64>,
}

/// Milliseconds since the watchdog was made: real time, or a [`ManualClock`] that tests move.
#[derive(Clone)]
enum LoopClock {
    Real(Instant),
    Manual(Arc<AtomicU64>),
}

impl LoopClock {
    fn now(&self) -> Duration {
        match self {
            LoopClock::Real(start) => start.elapsed(),
            LoopClock::Manual(ms) => Duration::from_millis(ms.load(Ordering::Relaxed)),
        }
    }
}

/// The time of a [`Watchdog::with_manual_clock`]: it moves only when told, so tests of stalls need no sleeps.
#[derive(Clone)]
pub struct ManualClock {
    ms: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.ms.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Heartbeat {
    pub fn beat(&self) {
        let ms = u64::try_from(self.clock.now().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            clock: LoopClock::Real(Instant::now()),
            beats: Vec::new(),
        }
    }
}

impl Watchdog {
    pub fn new() -> Self {
        Self::default()
    }

    /// A watchdog whose time stands still until the returned clock is advanced (for tests).
    pub fn with_manual_clock() -> (Self, ManualClock) {
        let ms = Arc::new(AtomicU64::new(0));
        let watchdog = Watchdog {
            clock: LoopClock::Manual(ms.clone()),
            beats: Vec::new(),
        };
        (watchdog, ManualClock { ms })
    }

    /// Registers a loop called `name`.
    pub fn heartbeat(&mut self, name: &str) -> Heartbeat {
        let last_ms = Arc::new(AtomicU64::new(0));
        self.beats.push((name.to_owned(), last_ms.clone()));
        let heartbeat = Heartbeat {
            clock: self.clock.clone(),
            last_ms,
        };
        heartbeat.beat();
        heartbeat
    }

    /// The loops that have not beaten within `limit`.
    pub fn stalled(&self, limit: Duration) -> Vec<&str> {
        self.stalled_at(self.clock.now(), limit)
    }

    fn stalled_at(&self, now: Duration, limit: Duration) -> Vec<&str> {
        self.beats
            .iter()
            .filter(|(_, last)| {
                let last = Duration::from_millis(last.load(Ordering::Relaxed));
                now.saturating_sub(last) > limit
            })
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_that_does_not_beat_is_stalled() {
        let mut watchdog = Watchdog::new();
        let _sender = watchdog.heartbeat("sender");
        let ingest = watchdog.heartbeat("ingest");
        let limit = Duration::from_secs(60);
        assert!(watchdog.stalled(limit).is_empty());
        // Both beat near t=0: at t=10 min both are stalled, until one beats "later".
        let later = Duration::from_secs(600);
        assert_eq!(watchdog.stalled_at(later, limit), ["sender", "ingest"]);
        ingest.last_ms.store(599_000, Ordering::Relaxed);
        assert_eq!(watchdog.stalled_at(later, limit), ["sender"]);
    }

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let (mut watchdog, clock) = Watchdog::with_manual_clock();
        let radio = watchdog.heartbeat("radio");
        let _output = watchdog.heartbeat("output");
        let limit = Duration::from_secs(10);
        clock.advance(limit);
        assert!(watchdog.stalled(limit).is_empty());
        clock.advance(Duration::from_secs(1));
        radio.beat();
        assert_eq!(watchdog.stalled(limit), ["output"]);
    }
}

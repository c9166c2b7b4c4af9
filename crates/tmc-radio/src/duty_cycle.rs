//! Duty-cycle limiter over a sliding one-hour window.
//!
//! The rule (ETSI EN 300 220 for EU868) is a share of time on air over any hour. The limiter keeps the
//! transmissions of the last hour and answers "when may a frame of this airtime start?" so that, at the end of
//! that frame, no window of one hour holds more than the budget. Every transmission counts: data, retries and
//! ACKs alike.
//!
//! A service that restarts must not forget the airtime it used: [`DutyCycleLimiter::ledger`] gives the
//! transmissions that still count, as ages back from now, and [`DutyCycleLimiter::restore`] takes them back in
//! another process with another clock epoch. Keeping the ledger on disk is the caller's business.

use core::fmt;
use core::time::Duration;
use std::collections::VecDeque;

use thiserror::Error;

/// The regulatory observation window.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// A share of time on air, in parts per million (1 % = 10 000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DutyCycle(u32);

impl DutyCycle {
    /// 0.1 % (EU868 863–865 MHz, 868.7–869.2 MHz).
    pub const ONE_PERMILLE: DutyCycle = DutyCycle(1_000);
    /// 1 % (EU868 865–868.6 MHz and 869.7–870 MHz): 36 s per hour.
    pub const ONE_PERCENT: DutyCycle = DutyCycle(10_000);
    /// 10 % (EU868 869.4–869.65 MHz, EU433).
    pub const TEN_PERCENT: DutyCycle = DutyCycle(100_000);
    /// No duty-cycle rule (US915, AU915: dwell time rules instead).
    pub const UNLIMITED: DutyCycle = DutyCycle(1_000_000);

    /// From parts per million; `None` above 100 %.
    pub fn from_ppm(ppm: u32) -> Option<Self> {
        (ppm <= 1_000_000).then_some(Self(ppm))
    }

    /// From a percentage (0.0..=100.0), rounded to the nearest ppm.
    pub fn from_percent(percent: f64) -> Option<Self> {
        if !(0.0..=100.0).contains(&percent) {
            return None;
        }
        Self::from_ppm((percent * 10_000.0).round() as u32)
    }

    /// Parts per million.
    pub fn ppm(self) -> u32 {
        self.0
    }

    /// As a percentage.
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 10_000.0
    }

    /// Transmit time allowed within `window`.
    pub fn budget(self, window: Duration) -> Duration {
        Duration::from_nanos((window.as_nanos() * u128::from(self.0) / 1_000_000) as u64)
    }
}

impl fmt::Display for DutyCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} %", self.percent())
    }
}

/// A frame longer than the whole budget: it may never be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a frame of {airtime:?} on air exceeds the whole duty-cycle budget of {budget:?} per {window:?}")]
pub struct FrameExceedsBudget {
    /// Time on air of the frame.
    pub airtime: Duration,
    /// Budget per window.
    pub budget: Duration,
    /// Window length.
    pub window: Duration,
}

/// A transmission in a limiter's ledger: how long before the ledger's instant it started, and its time on air.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PastTransmission {
    pub age: Duration,
    pub airtime: Duration,
}

/// One past transmission, in the limiter's own time (see [`DutyCycleLimiter::history`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transmission {
    start: Duration,
    end: Duration,
}

/// Sliding-window duty-cycle limiter. Times are instants of a monotonic [`crate::hal::Clock`].
#[derive(Clone, Debug)]
pub struct DutyCycleLimiter {
    window: Duration,
    budget: Duration,
    /// Past transmissions, oldest first; pruned once they leave the window. Their instants are the clock's plus
    /// one window, so that a transmission restored from a ledger, which may predate the clock's epoch by up to a
    /// window, still has a place on the time line.
    history: VecDeque<Transmission>,
}

impl DutyCycleLimiter {
    /// A limiter for `duty_cycle` over the regulatory one-hour window.
    pub fn new(duty_cycle: DutyCycle) -> Self {
        Self::with_window(duty_cycle, WINDOW)
    }

    /// A limiter over another window (tests, or stricter local policy).
    pub fn with_window(duty_cycle: DutyCycle, window: Duration) -> Self {
        Self {
            window,
            budget: duty_cycle.budget(window),
            history: VecDeque::new(),
        }
    }

    /// Transmit time allowed per window.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// How long a sender that wants to spread its budget evenly stays quiet after `airtime` on air:
    /// `airtime` × (1 / duty cycle − 1), the off-time rule (99 × the airtime at 1 %). Spent in bursts, a
    /// sliding window's budget comes back in the same bursts an hour later; paced, it comes back steadily.
    pub fn off_time(&self, airtime: Duration) -> Duration {
        let quiet = self.window.saturating_sub(self.budget);
        airtime.mul_f64(quiet.as_secs_f64() / self.budget.as_secs_f64())
    }

    /// Time on air spent in the window that ends at `now`.
    pub fn used(&self, now: Duration) -> Duration {
        self.used_in_window_ending(self.shifted(now))
    }

    /// Budget left for a frame starting at `now`.
    pub fn remaining(&self, now: Duration) -> Duration {
        self.budget.saturating_sub(self.used(now))
    }

    /// Earliest instant, not before `now`, at which a frame of `airtime` may start.
    pub fn earliest_start(
        &self,
        now: Duration,
        airtime: Duration,
    ) -> Result<Duration, FrameExceedsBudget> {
        if airtime > self.budget {
            return Err(FrameExceedsBudget {
                airtime,
                budget: self.budget,
                window: self.window,
            });
        }
        let now = self.shifted(now);
        let allowed_before = self.budget - airtime;
        let fits = |start: Duration| self.used_in_window_ending(start + airtime) <= allowed_before;
        if fits(now) {
            return Ok(now - self.window);
        }
        // Usage in the window ending at t is non-increasing in t once t is past every recorded frame, so a binary
        // search over nanoseconds finds the first instant that fits. The last recorded end plus one window
        // always fits (the window is then empty).
        let last_end = self.history.back().map_or(now, |t| t.end);
        let mut lo = now; // does not fit
        let mut hi = (last_end + self.window).max(now); // fits
        while hi - lo > Duration::from_nanos(1) {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(hi - self.window)
    }

    /// Whether a frame of `airtime` may start at `now`.
    pub fn may_send(&self, now: Duration, airtime: Duration) -> bool {
        self.earliest_start(now, airtime).is_ok_and(|t| t <= now)
    }

    /// Records a transmission that started at `start` and lasted `airtime`.
    pub fn record(&mut self, start: Duration, airtime: Duration) {
        self.record_shifted(self.shifted(start), airtime);
    }

    /// The transmissions that count in a window at `now` or later, oldest first, with their ages at `now`.
    pub fn ledger(&self, now: Duration) -> Vec<PastTransmission> {
        let now = self.shifted(now);
        let horizon = now.saturating_sub(self.window);
        self.history
            .iter()
            .filter(|t| t.end > horizon)
            .map(|t| PastTransmission {
                age: now.saturating_sub(t.start),
                airtime: t.end - t.start,
            })
            .collect()
    }

    /// Records the transmissions of a ledger taken at `now` (its ages count back from `now` on this limiter's
    /// clock). Those that left the window are dropped. One older than the clock's epoch allows is moved later,
    /// which can only over-count.
    pub fn restore(&mut self, now: Duration, ledger: &[PastTransmission]) {
        let (now, window) = (self.shifted(now), self.window);
        for past in ledger.iter().filter(|p| p.age < window + p.airtime) {
            self.record_shifted(now.saturating_sub(past.age), past.airtime);
        }
    }

    /// Records the whole budget as spent just before `now`: what a service assumes when it cannot tell what it
    /// used (its ledger unreadable). The next frame then waits up to a window.
    pub fn assume_budget_spent(&mut self, now: Duration) {
        self.restore(
            now,
            &[PastTransmission {
                age: self.budget,
                airtime: self.budget,
            }],
        );
    }

    /// An instant of the clock on the history's time line.
    fn shifted(&self, clock: Duration) -> Duration {
        clock + self.window
    }

    fn record_shifted(&mut self, start: Duration, airtime: Duration) {
        let end = start + airtime;
        // Keep the history ordered even if a caller records out of order.
        let position = self
            .history
            .iter()
            .rposition(|t| t.start <= start)
            .map_or(0, |i| i + 1);
        self.history.insert(position, Transmission { start, end });
        let horizon = end.saturating_sub(self.window);
        while self.history.front().is_some_and(|t| t.end <= horizon) {
            self.history.pop_front();
        }
    }

    /// Time on air inside the window [end − window, end).
    fn used_in_window_ending(&self, end: Duration) -> Duration {
        let begin = end.saturating_sub(self.window);
        self.history
            .iter()
            .map(|t| {
                let s = t.start.max(begin);
                let e = t.end.min(end);
                e.saturating_sub(s)
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn one_percent_is_36_seconds_per_hour() {
        assert_eq!(DutyCycle::ONE_PERCENT.budget(WINDOW), S(36));
        assert_eq!(DutyCycle::from_percent(1.0), Some(DutyCycle::ONE_PERCENT));
        assert_eq!(DutyCycle::from_percent(100.1), None);
    }

    #[test]
    fn frames_go_until_the_budget_is_spent_then_wait_for_the_oldest_to_slide_out() {
        let mut limiter = DutyCycleLimiter::new(DutyCycle::ONE_PERCENT);
        let frame = MS(400);
        let mut now = Duration::ZERO;
        // 90 frames of 400 ms use exactly the 36 s budget.
        for _ in 0..90 {
            assert_eq!(limiter.earliest_start(now, frame), Ok(now));
            limiter.record(now, frame);
            now += S(1);
        }
        assert_eq!(limiter.used(now), S(36));
        assert!(!limiter.may_send(now, frame));
        // The first frame ran 0..0.4 s; a frame ending at t needs the window (t − 3600, t] to have 400 ms free,
        // which happens when the first frame has fully left it: start + 0.4 s − 3600 s ≥ 0.4 s.
        assert_eq!(limiter.earliest_start(now, frame), Ok(S(3600)));
        limiter.record(S(3600), frame);
        // Now the second frame (1.0..1.4 s) must slide out too.
        assert_eq!(limiter.earliest_start(S(3600) + frame, frame), Ok(S(3601)));
        assert_eq!(limiter.remaining(S(3601) + frame), frame);
    }

    #[test]
    fn a_frame_longer_than_the_budget_is_refused() {
        let limiter = DutyCycleLimiter::new(DutyCycle::ONE_PERMILLE);
        assert_eq!(
            limiter.earliest_start(Duration::ZERO, S(4)),
            Err(FrameExceedsBudget {
                airtime: S(4),
                budget: MS(3600),
                window: WINDOW
            })
        );
    }

    #[test]
    fn unlimited_never_waits_and_old_history_is_pruned() {
        let mut limiter = DutyCycleLimiter::with_window(DutyCycle::ONE_PERCENT, S(100));
        limiter.record(S(0), S(1));
        assert_eq!(limiter.earliest_start(S(1), MS(1)), Ok(S(100)));
        limiter.record(S(500), S(1));
        assert_eq!(limiter.history.len(), 1);
        let free = DutyCycleLimiter::new(DutyCycle::UNLIMITED);
        assert!(free.may_send(S(0), S(3600)));
    }

    #[test]
    fn a_restored_ledger_keeps_the_budget_spent_across_clock_epochs() {
        // Budget 36 s per hour: 30 s spent at 100..130 s, 6 s at 3000..3006 s of the first process's clock.
        let mut before = DutyCycleLimiter::new(DutyCycle::ONE_PERCENT);
        before.record(S(100), S(30));
        before.record(S(3000), S(6));
        let taken_at = S(3010);
        let ledger = before.ledger(taken_at);
        assert_eq!(
            ledger,
            vec![
                PastTransmission {
                    age: S(2910),
                    airtime: S(30)
                },
                PastTransmission {
                    age: S(10),
                    airtime: S(6)
                }
            ]
        );
        // The next process's clock starts at zero: its transmissions of the ledger predate its epoch.
        let mut after = DutyCycleLimiter::new(DutyCycle::ONE_PERCENT);
        after.restore(Duration::ZERO, &ledger);
        assert_eq!(after.used(Duration::ZERO), S(36));
        assert_eq!(after.ledger(Duration::ZERO), ledger);
        // Exactly as long a wait as the first process would have had.
        assert_eq!(
            after.earliest_start(Duration::ZERO, S(1)).unwrap() + taken_at,
            before.earliest_start(taken_at, S(1)).unwrap()
        );
        assert!(!after.may_send(Duration::ZERO, MS(1)));
    }

    #[test]
    fn ledger_entries_that_left_the_window_are_dropped() {
        let mut limiter = DutyCycleLimiter::with_window(DutyCycle::ONE_PERCENT, S(100));
        limiter.record(S(0), S(1));
        limiter.record(S(50), S(1));
        // At 100.5 s the first frame (0..1 s) still ends inside the window; at 101 s it is gone.
        assert_eq!(limiter.ledger(MS(100_500)).len(), 2);
        assert_eq!(
            limiter.ledger(S(101)),
            vec![PastTransmission {
                age: S(51),
                airtime: S(1)
            }]
        );
        let mut restored = DutyCycleLimiter::with_window(DutyCycle::ONE_PERCENT, S(100));
        restored.restore(
            S(5),
            &[
                PastTransmission {
                    age: S(101),
                    airtime: S(1),
                },
                PastTransmission {
                    age: S(3),
                    airtime: S(1),
                },
            ],
        );
        assert_eq!(restored.used(S(5)), S(1));
        assert_eq!(restored.ledger(S(5)).len(), 1);
    }

    #[test]
    fn a_limiter_that_cannot_tell_what_it_used_assumes_the_whole_budget() {
        let mut limiter = DutyCycleLimiter::new(DutyCycle::ONE_PERCENT);
        limiter.assume_budget_spent(S(10));
        assert_eq!(limiter.used(S(10)), S(36));
        // The 36 s spent ran until 10 s: a 100 ms frame fits once 35.9 s of it lie in the window ending with it.
        assert_eq!(limiter.earliest_start(S(10), MS(100)), Ok(S(3574)));
    }

    #[test]
    fn out_of_order_records_keep_the_history_sorted() {
        let mut limiter = DutyCycleLimiter::new(DutyCycle::ONE_PERCENT);
        limiter.record(S(10), S(1));
        limiter.record(S(5), S(1));
        assert_eq!(limiter.used(S(20)), S(2));
        assert!(limiter
            .history
            .iter()
            .zip(limiter.history.iter().skip(1))
            .all(|(a, b)| a.start <= b.start));
    }
}

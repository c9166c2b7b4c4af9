//! When to publish and when to reconnect. No clock here: every call takes `now_ms`, a monotonic
//! millisecond count the firmware reads from its timer (and tests make up).
//!
//! - [`PublishSchedule`]: readings on a fixed grid `start + k·interval`. A late publish does not push
//!   the later ones back (no drift); slots that passed entirely while the node was busy (a reconnect,
//!   a slow TLS handshake) are skipped, not sent in a burst, and counted.
//! - [`Backoff`]: reconnect delays growing exponentially from `min` to `max`, with "equal jitter" so
//!   that sensors that lost the broker together do not all come back in the same millisecond.
//!
//! All arithmetic saturates: `now_ms` anywhere up to `u64::MAX` is fine (no panic, no wrap).

/// Outcome of a due [`PublishSchedule::poll`]: publish now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// The grid slot this publish stands for (≤ `now_ms`).
    pub slot_ms: u64,
    /// Slots skipped before this one because they passed entirely without a publish.
    pub missed: u64,
}

/// A publish grid: slot `k` is at `start_ms + k·interval_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSchedule {
    interval_ms: u64,
    /// The next slot; `None` once the grid has run past `u64::MAX` (no slot is due ever again).
    next_ms: Option<u64>,
    missed_total: u64,
}

impl PublishSchedule {
    /// A grid whose first slot is `start_ms` (usually "now": the first reading goes at once). An
    /// interval of 0 is taken as 1 ms (a grid needs some spacing).
    pub fn new(interval_ms: u64, start_ms: u64) -> Self {
        PublishSchedule {
            interval_ms: interval_ms.max(1),
            next_ms: Some(start_ms),
            missed_total: 0,
        }
    }

    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// The next slot, `None` if the grid has run past the end of time.
    pub fn next_ms(&self) -> Option<u64> {
        self.next_ms
    }

    /// Slots skipped since [`new`](Self::new) or [`restart`](Self::restart).
    pub fn missed_total(&self) -> u64 {
        self.missed_total
    }

    /// Milliseconds to wait from `now_ms` until the next slot: 0 when one is due, `u64::MAX` if none
    /// ever is.
    pub fn wait_ms(&self, now_ms: u64) -> u64 {
        self.next_ms
            .map_or(u64::MAX, |next| next.saturating_sub(now_ms))
    }

    /// Whether a slot is due at `now_ms`.
    pub fn is_due(&self, now_ms: u64) -> bool {
        self.next_ms.is_some_and(|next| now_ms >= next)
    }

    /// If a slot is due at `now_ms`, consumes it and every older one: returns the latest slot that has
    /// begun (publish once, now) and how many slots before it were skipped; the next slot is the first
    /// after `now_ms`. `None` when nothing is due.
    pub fn poll(&mut self, now_ms: u64) -> Option<Tick> {
        let next = self.next_ms?;
        if now_ms < next {
            return None;
        }
        // Whole intervals since the due slot: the slots that passed before the latest one.
        let missed = (now_ms - next) / self.interval_ms;
        // ≤ now_ms, so no overflow.
        let slot_ms = next + missed * self.interval_ms;
        self.next_ms = slot_ms.checked_add(self.interval_ms);
        self.missed_total = self.missed_total.saturating_add(missed);
        Some(Tick { slot_ms, missed })
    }

    /// Starts the grid again at `start_ms` (for example after the node slept): forgets the old grid and
    /// the missed count.
    pub fn restart(&mut self, start_ms: u64) {
        self.next_ms = Some(start_ms);
        self.missed_total = 0;
    }
}

/// Reconnect back-off with equal jitter.
///
/// Before attempt `n` (0 for the first retry after a failure) the ceiling is
/// `c = min(max_ms, min_ms · 2ⁿ)` and the delay is uniform in `[c/2, c]` ("equal jitter": half the
/// ceiling fixed, half random). Equal rather than full jitter (`[0, c]`) because a sensor must not retry
/// a broker that just went away within a few milliseconds: every delay is at least `min_ms / 2`, and
/// never more than `max_ms`. [`reset`](Self::reset) after a successful connect (CONNACK accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    attempt: u32,
}

impl Backoff {
    /// Delays from `min_ms` (at least 1: doubling 0 goes nowhere) up to `max_ms` (at least `min_ms`).
    pub fn new(min_ms: u64, max_ms: u64) -> Self {
        let min_ms = min_ms.max(1);
        Backoff {
            min_ms,
            max_ms: max_ms.max(min_ms),
            attempt: 0,
        }
    }

    /// Failed attempts since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The ceiling of the next delay: `min(max_ms, min_ms · 2^attempt)`, without overflow.
    pub fn ceiling_ms(&self) -> u64 {
        // min_ms << attempt loses no bit while attempt < leading_zeros (min_ms ≥ 1).
        if self.attempt < self.min_ms.leading_zeros() {
            (self.min_ms << self.attempt).min(self.max_ms)
        } else {
            self.max_ms
        }
    }

    /// The delay before the next attempt, with `random` (any u32 from the node's RNG) as the jitter;
    /// counts the attempt.
    pub fn next_delay_ms(&mut self, random: u32) -> u64 {
        let ceiling = self.ceiling_ms();
        let floor = ceiling / 2;
        let delay = floor + scale(random, ceiling - floor);
        // Once the ceiling is max_ms further doubling changes nothing; stop counting up before the
        // counter itself could overflow.
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Back to the first delay: call after a successful connect.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Maps `random` onto `0..=span` (multiply and shift: no 64-bit division, which a 32-bit core does in
/// software; the bias is below 2⁻³² per value for spans below 2³²).
fn scale(random: u32, span: u64) -> u64 {
    match span.checked_add(1) {
        // span + 1 ≤ 2^32 and random < 2^32: the product fits in u64.
        Some(range) if range <= 1 << 32 => (u64::from(random) * range) >> 32,
        // Spans beyond 49 days: a coarser step, still never above span.
        _ => (span / u64::from(u32::MAX)) * u64::from(random),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_time_polls_follow_the_grid() {
        let mut s = PublishSchedule::new(1000, 5_000);
        assert_eq!(s.poll(4_999), None);
        assert_eq!(s.wait_ms(4_999), 1);
        assert_eq!(
            s.poll(5_000),
            Some(Tick {
                slot_ms: 5_000,
                missed: 0
            })
        );
        assert_eq!(s.poll(5_000), None, "a slot is used once");
        assert_eq!(s.next_ms(), Some(6_000));
        assert_eq!(s.wait_ms(5_500), 500);
        assert!(!s.is_due(5_999) && s.is_due(6_000));
    }

    #[test]
    fn lateness_does_not_drift_the_grid() {
        let mut s = PublishSchedule::new(1000, 0);
        s.poll(0).unwrap();
        // Published 900 ms late: the next slot is still 2000, not 2900.
        assert_eq!(s.poll(1_900).unwrap().slot_ms, 1_000);
        assert_eq!(s.next_ms(), Some(2_000));
        for k in 2..100u64 {
            let late = k * 37 % 1000;
            assert_eq!(s.poll(k * 1000 + late).unwrap().slot_ms, k * 1000);
        }
        assert_eq!(s.missed_total(), 0);
    }

    #[test]
    fn missed_slots_are_skipped_and_counted() {
        let mut s = PublishSchedule::new(1000, 0);
        s.poll(0).unwrap();
        // Busy from 1000 to 4500: slots 1000, 2000, 3000 passed; 4000 is published.
        assert_eq!(
            s.poll(4_500),
            Some(Tick {
                slot_ms: 4_000,
                missed: 3
            })
        );
        assert_eq!(s.next_ms(), Some(5_000));
        // Exactly on a slot boundary.
        assert_eq!(
            s.poll(7_000),
            Some(Tick {
                slot_ms: 7_000,
                missed: 2
            })
        );
        assert_eq!(s.missed_total(), 5);
        s.restart(10_500);
        assert_eq!((s.missed_total(), s.next_ms()), (0, Some(10_500)));
        assert_eq!(s.poll(10_500).unwrap().missed, 0);
    }

    #[test]
    fn the_grid_survives_u64_edges() {
        let mut s = PublishSchedule::new(u64::MAX, 0);
        assert_eq!(s.poll(0).unwrap().slot_ms, 0);
        assert_eq!(s.next_ms(), Some(u64::MAX));
        assert_eq!(
            s.poll(u64::MAX),
            Some(Tick {
                slot_ms: u64::MAX,
                missed: 0
            })
        );
        assert_eq!(s.next_ms(), None, "past the end of time");
        assert_eq!((s.poll(u64::MAX), s.wait_ms(0)), (None, u64::MAX));
        assert!(!s.is_due(u64::MAX));

        let mut s = PublishSchedule::new(1000, u64::MAX - 1500);
        let tick = s.poll(u64::MAX).unwrap();
        assert_eq!(
            tick,
            Tick {
                slot_ms: u64::MAX - 500,
                missed: 1
            }
        );
        assert_eq!(s.next_ms(), None);

        let mut s = PublishSchedule::new(1, 0);
        assert_eq!(
            s.poll(u64::MAX).unwrap(),
            Tick {
                slot_ms: u64::MAX,
                missed: u64::MAX
            }
        );
        assert_eq!(s.missed_total(), u64::MAX);

        // Zero interval: treated as 1 ms, no division by zero.
        let mut s = PublishSchedule::new(0, 10);
        assert_eq!(s.interval_ms(), 1);
        assert_eq!(
            s.poll(15).unwrap(),
            Tick {
                slot_ms: 15,
                missed: 5
            }
        );
        // The clock before the start: nothing due, no underflow.
        let s = PublishSchedule::new(1000, 500);
        assert_eq!((s.is_due(0), s.wait_ms(0)), (false, 500));
    }

    #[test]
    fn backoff_grows_from_min_to_max_within_equal_jitter_bounds() {
        let mut b = Backoff::new(100, 5_000);
        let ceilings = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
        for (n, &c) in ceilings.iter().enumerate() {
            assert_eq!(b.attempt() as usize, n);
            assert_eq!(b.ceiling_ms(), c);
            let mut probe = b.clone();
            assert_eq!(probe.next_delay_ms(0), c / 2, "lowest jitter");
            let mut probe = b.clone();
            assert_eq!(probe.next_delay_ms(u32::MAX), c, "highest jitter");
            for r in [1, 12345, 1 << 31, 0xdead_beef] {
                let d = b.clone().next_delay_ms(r);
                assert!((c / 2..=c).contains(&d), "{n}: {d}");
            }
            b.next_delay_ms(7);
        }
        b.reset();
        assert_eq!((b.attempt(), b.ceiling_ms()), (0, 100));
        let d = b.next_delay_ms(u32::MAX / 2);
        assert!((50..=100).contains(&d));
    }

    #[test]
    fn jitter_is_spread_evenly() {
        // 0..=span is hit roughly uniformly by evenly spaced random values.
        let mut b = Backoff::new(1000, 1000);
        let mut buckets = [0u32; 10];
        for i in 0..10_000u32 {
            let d = b.next_delay_ms(i.wrapping_mul(429_497)); // spread over the whole u32 range
            buckets[((d - 500) * 10 / 501) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (900..=1100).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn backoff_has_no_overflow_at_the_edges() {
        let mut b = Backoff::new(u64::MAX, u64::MAX);
        for r in [0, u32::MAX] {
            let d = b.next_delay_ms(r);
            assert!(d >= u64::MAX / 2);
        }
        let mut b = Backoff::new(3, u64::MAX);
        for _ in 0..200 {
            let c = b.ceiling_ms();
            let d = b.next_delay_ms(u32::MAX);
            assert!(d <= c && d >= c / 2);
        }
        assert_eq!(b.ceiling_ms(), u64::MAX);
        // The attempt counter saturates instead of wrapping back to the smallest delay.
        let mut b = Backoff::new(1, 10);
        b.attempt = u32::MAX - 1;
        b.next_delay_ms(0);
        b.next_delay_ms(0);
        assert_eq!((b.attempt(), b.ceiling_ms()), (u32::MAX, 10));
        // Degenerate bounds are repaired: min 0 → 1, max < min → min.
        let b = Backoff::new(0, 0);
        assert_eq!(b.ceiling_ms(), 1);
        let b = Backoff::new(500, 10);
        assert_eq!(b.ceiling_ms(), 500);
        assert_eq!(scale(u32::MAX, 0), 0);
        assert_eq!(
            scale(u32::MAX, u64::MAX),
            u64::MAX / u64::from(u32::MAX) * u64::from(u32::MAX)
        );
        assert_eq!(scale(u32::MAX, u64::from(u32::MAX)), u64::from(u32::MAX));
        assert_eq!(scale(0, u64::from(u32::MAX)), 0);
    }
}

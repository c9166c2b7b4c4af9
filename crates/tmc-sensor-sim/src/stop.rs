//! The stop request and the running totals, both shared between threads and waited on with a Condvar
//! (no polling loop).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct StopInner {
    state: Mutex<StopState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct StopState {
    requested: bool,
    /// Signals stopped together with this one (the simulator stops all sensors when one fails).
    children: Vec<Weak<StopInner>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A thread that panicked while holding the lock left plain data behind: still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A request to stop, shared by whoever may ask (signal handler, test) and the sensors. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    inner: Arc<StopInner>,
}

impl StopSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// A signal raised by [`request`](Self::request) on itself or on `self` (but not the other way round).
    pub(crate) fn child(&self) -> StopSignal {
        let child = StopSignal::new();
        let mut state = lock(&self.inner.state);
        if state.requested {
            lock(&child.inner.state).requested = true;
        }
        state.children.retain(|c| c.strong_count() > 0);
        state.children.push(Arc::downgrade(&child.inner));
        child
    }

    /// Stop taking readings, wait (up to the grace period) for those sent, and disconnect.
    pub fn request(&self) {
        let children = {
            let mut state = lock(&self.inner.state);
            state.requested = true;
            std::mem::take(&mut state.children)
        };
        self.inner.changed.notify_all();
        for child in children.iter().filter_map(Weak::upgrade) {
            StopSignal { inner: child }.request();
        }
    }

    pub fn requested(&self) -> bool {
        lock(&self.inner.state).requested
    }

    /// Sleeps for `timeout` or until a stop is requested; returns whether one is.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let state = lock(&self.inner.state);
        let (state, _) = self
            .inner
            .changed
            .wait_timeout_while(state, timeout, |s| !s.requested)
            .unwrap_or_else(PoisonError::into_inner);
        state.requested
    }

    /// Blocks until a stop is requested.
    pub fn wait(&self) {
        let state = lock(&self.inner.state);
        let _state = self
            .inner
            .changed
            .wait_while(state, |s| !s.requested)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// Running totals over all sensors, updated while the simulator runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Readings acknowledged by the broker (PUBACK), each written to the ledger once.
    pub acknowledged: u64,
    /// Readings the node dropped because its ring was full (the broker was away too long).
    pub dropped: u64,
    /// PUBLISH packets sent, re-sends included.
    pub publishes: u64,
    /// Connections accepted (CONNACK) over all sensors.
    pub connects: u64,
    /// Connections that failed, were refused or were lost.
    pub failures: u64,
}

#[derive(Debug, Default)]
struct ProgressInner {
    value: Mutex<Progress>,
    changed: Condvar,
}

/// The simulator's [`Progress`], readable and awaitable from any thread. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ProgressWatch {
    inner: Arc<ProgressInner>,
}

impl ProgressWatch {
    /// The totals now.
    pub fn get(&self) -> Progress {
        *lock(&self.inner.value)
    }

    /// Waits until `done` holds for the totals, up to `timeout`; the totals then, or `None` on timeout.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&Progress) -> bool,
    ) -> Option<Progress> {
        let deadline = Instant::now() + timeout;
        let mut value = lock(&self.inner.value);
        loop {
            if done(&value) {
                return Some(*value);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            value = self
                .inner
                .changed
                .wait_timeout(value, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut lock(&self.inner.value));
        self.inner.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_reaches_waiters_and_children_but_not_parents() {
        let parent = StopSignal::new();
        let child = parent.child();
        assert!(!child.wait_timeout(Duration::from_millis(1)));
        child.request();
        assert!(child.requested() && !parent.requested());

        let child = parent.child();
        let waiter = {
            let child = child.clone();
            std::thread::spawn(move || child.wait_timeout(Duration::from_secs(30)))
        };
        parent.request();
        assert!(waiter.join().unwrap_or(false));
        assert!(child.requested());
        // A child made after the stop starts stopped.
        assert!(parent.child().requested());
    }

    #[test]
    fn progress_waits_for_a_condition_with_a_deadline() {
        let progress = ProgressWatch::default();
        assert_eq!(
            progress.wait_for(Duration::from_millis(5), |p| p.acknowledged > 0),
            None
        );
        let writer = {
            let progress = progress.clone();
            std::thread::spawn(move || {
                for _ in 0..3 {
                    progress.update(|p| p.acknowledged += 1);
                }
            })
        };
        let seen = progress.wait_for(Duration::from_secs(30), |p| p.acknowledged == 3);
        assert_eq!(seen.map(|p| p.acknowledged), Some(3));
        assert!(writer.join().is_ok());
    }
}

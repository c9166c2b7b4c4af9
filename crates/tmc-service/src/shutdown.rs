//! Orderly stop on SIGTERM (systemd) and SIGINT (Ctrl-C).
//!
//! The first signal asks every loop to finish what it holds (a frame on air, a transaction) and stop; waits in
//! [`Shutdown::wait`] return at once. A second signal is not special: a service that does not stop is killed by
//! systemd after `TimeoutStopSec`, and the durable stores make that safe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// A stop request shared by all threads of a service. Cheap to clone.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    requested: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Shutdown {
    /// A stop flag nobody has raised yet (tests raise it with [`Shutdown::request`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A stop flag raised by SIGTERM or SIGINT (a thread waits for the signals).
    pub fn on_signals() -> std::io::Result<Self> {
        let shutdown = Shutdown::new();
        let mut signals = Signals::new([SIGTERM, SIGINT])?;
        let raised = shutdown.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    let name = if signal == SIGTERM {
                        "SIGTERM"
                    } else {
                        "SIGINT"
                    };
                    tracing::info!("{name}: stopping after the work in hand");
                    raised.request();
                }
            })?;
        Ok(shutdown)
    }

    pub fn request(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        let _guard = self
            .inner
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.inner.wake.notify_all();
    }

    pub fn requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Waits `duration` (`Duration::MAX`: for ever) or until a stop is requested. Returns true when stopping.
    pub fn wait(&self, duration: Duration) -> bool {
        // `Duration::MAX` (or anything past the clock's range) waits for ever.
        let deadline = Instant::now().checked_add(duration);
        let mut guard = self
            .inner
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.requested() {
                return true;
            }
            guard = match deadline {
                None => self
                    .inner
                    .wake
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    self.inner
                        .wake
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_ends_a_wait_from_another_thread() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.wait(Duration::from_millis(1)));
        let other = shutdown.clone();
        let waiter = std::thread::spawn(move || other.wait(Duration::MAX));
        shutdown.request();
        assert!(waiter.join().unwrap_or(false));
        assert!(shutdown.requested());
    }
}

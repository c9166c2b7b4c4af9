//! A doorbell between threads: one side rings after producing work, the other waits for it with a timeout.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

#[derive(Default)]
pub struct Wakeup {
    rung: Mutex<bool>,
    bell: Condvar,
}

impl Wakeup {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn ring(&self) {
        *self.rung.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.bell.notify_all();
    }

    /// Waits until rung (since the last wait returned) or `timeout`; returns whether it was rung.
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = self.rung.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut rung, _) = self
            .bell
            .wait_timeout_while(guard, timeout, |rung| !*rung)
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *rung)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_ring_before_the_wait_is_not_lost() {
        let w = Arc::new(Wakeup::new());
        w.ring();
        assert!(w.wait(Duration::from_secs(3600)));
        assert!(!w.wait(Duration::from_millis(1)));
        let other = w.clone();
        let t = std::thread::spawn(move || other.wait(Duration::from_secs(3600)));
        w.ring();
        assert!(t.join().unwrap_or(false));
    }
}

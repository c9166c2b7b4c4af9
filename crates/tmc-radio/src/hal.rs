//! The two hardware seams embedded-hal 1.0 does not cover: waiting for the DIO0 interrupt line with a timeout,
//! and reading a monotonic clock. The Linux backend implements them with a gpio-cdev edge event and
//! `std::time::Instant`; the simulator implements them in virtual time.

use core::fmt::Debug;
use core::time::Duration;

/// The SX1276 DIO0 line, which the driver maps to RxDone or TxDone.
pub trait Dio0 {
    /// Error of the underlying line.
    type Error: Debug;

    /// Waits until DIO0 is high or `timeout` has passed; returns whether it is high. Must return at once when the
    /// line is already high (a level, not only an edge, counts), so an interrupt that fired before the call is
    /// not lost.
    fn wait_high(&mut self, timeout: Duration) -> Result<bool, Self::Error>;
}

impl<T: Dio0 + ?Sized> Dio0 for &mut T {
    type Error = T::Error;

    fn wait_high(&mut self, timeout: Duration) -> Result<bool, Self::Error> {
        (**self).wait_high(timeout)
    }
}

/// A monotonic clock: the time since an arbitrary epoch that never goes backwards.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Duration;
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now(&self) -> Duration {
        (**self).now()
    }
}

/// The operating system's monotonic clock, counted from the moment the value was made.
#[derive(Clone, Copy, Debug)]
pub struct StdClock {
    epoch: std::time::Instant,
}

impl StdClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Self {
            epoch: std::time::Instant::now(),
        }
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}

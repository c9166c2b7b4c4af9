//! Espressif ESP8266 NONOS SDK v3.0.6 build (feature `nonos-sdk`):
//! bindings ([`ffi`]), the application the SDK boots ([`app`]: `user_init`,
//! Wi-Fi station, the 50 ms poll timer), the node in its coroutine
//! ([`node_task`]: identity, ATECC, mutual TLS, `Node::poll`), the identity
//! sector ([`identity_store`]), CPU clock/watchdog/delays ([`timing`]) and the
//! SDK's ADC as the sensor. The byte stream is [`crate::transport::sdk`].
//!
//! Execution model (NONOS SDK API reference): there are no threads. The
//! SDK runs `user_init`, then its own event loop, which calls timer,
//! Wi-Fi event and espconn callbacks one at a time, never preempting one
//! another (interrupts do not run any of our code). That is what makes the
//! global cells below sound; no callback may block (the SDK's Wi-Fi work
//! and its soft watchdog need the loop to come round). The node's blocking
//! TLS client runs in a coroutine (`crate::coroutine`) that the poll timer
//! resumes and that suspends wherever it would block; no `TaskCell` borrow
//! spans a suspension.
use core::cell::{RefCell, UnsafeCell};
use core::convert::Infallible;

use tmc_sensor_core::node::Sensor;

pub mod app;
pub mod ffi;
pub mod identity_store;
pub mod node_task;
pub mod provisioning;
pub mod timing;

/// Global state shared by SDK callbacks (see the module doc: one context,
/// no preemption). `with` refuses a nested borrow instead of aliasing.
pub struct TaskCell<T>(RefCell<T>);

// SAFETY: only accessed from the SDK's single task context (module doc).
unsafe impl<T> Sync for TaskCell<T> {}

impl<T> TaskCell<T> {
    pub const fn new(value: T) -> Self {
        TaskCell(RefCell::new(value))
    }

    /// Runs `f` on the value; `None` when it is already borrowed further up
    /// the stack (a callback re-entered from inside an SDK call).
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut guard = self.0.try_borrow_mut().ok()?;
        Some(f(&mut guard))
    }
}

/// Memory the SDK keeps a pointer to and may write (espconn, esp_tcp,
/// timers, a send buffer): handed out as a raw pointer; a Rust reference is
/// only made, briefly, while the SDK is known not to hold it.
pub struct SdkStatic<T>(UnsafeCell<T>);

// SAFETY: as TaskCell; and no Rust reference to the contents is created.
unsafe impl<T> Sync for SdkStatic<T> {}

impl<T> SdkStatic<T> {
    pub const fn new(value: T) -> Self {
        SdkStatic(UnsafeCell::new(value))
    }

    pub fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// The TOUT pin through the SDK's `system_adc_read()` (10 bits, 0..1023;
/// TOUT takes 0..1.0 V). Replaces the default build's deterministic
/// stand-in (`hw::adc::ToutAdc`). UNVERIFIED: the SDK picks TOUT or the
/// internal VDD33 from byte 107 of the PHY init data (PHY_DATA partition,
/// `bin/esp_init_data_default_v08.bin`, where it is 0x00: read here) and is
/// documented to read VDD33 only when it is 255; check on the bench.
pub struct SdkAdc;

impl Sensor for SdkAdc {
    type Error = Infallible;
    fn read(&mut self) -> Result<u16, Infallible> {
        // SAFETY: plain SDK call from task context, no pointers.
        Ok(unsafe { ffi::system_adc_read() })
    }
}

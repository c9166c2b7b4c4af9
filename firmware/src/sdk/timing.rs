//! CPU clock, watchdog and delays under the NONOS SDK, for the node's coroutine.
//!
//! # Where the expensive parts of the TLS handshake run (issue 16 §1)
//!
//! Measured on the lx106 in QEMU (-icount, release build; issue 16): P-256 k·G 34.7 M instructions,
//! ECDSA sign 41.1 M, verify 68.9 M, the whole mutual-TLS handshake in software 250.7 M. Here the ATECC
//! signs (Sign, 115 ms) and verifies both server signatures (Verify external, 105 ms each); the CPU keeps
//! SHA-256, AES-GCM and the ECDHE: two P-256 scalar multiplications (key generation, shared secret),
//! ~72 M instructions in all, ~35 M each. Neither can be split (one call inside embedded-tls), so each
//! is one stretch without returning to the SDK: at one instruction per cycle (a lower bound: flash cache
//! misses add cycles) ~0.43 s at 80 MHz, ~0.22 s at 160 MHz.
//!
//! So [`BoostedConnect`](super::node_task) runs `connect` (TCP + handshake) at 160 MHz and goes back to
//! 80 MHz afterwards: the SDK wants control back within a few hundred ms, and the steady state (one
//! small record per reading) does not need the higher clock, which costs current. The two scalar
//! multiplications run in different SDK callbacks (the client waits for the ServerHello between them),
//! and the watchdog is fed right before each: [`SdkDelay`] feeds it after every wait for the chip (the
//! last thing before key generation is the chip's Random), the socket after every read (the last thing
//! before the shared secret is reading the ServerHello). Every wait for the network or the chip returns
//! to the SDK (the coroutine suspends), which runs Wi-Fi and feeds its watchdogs itself.
//!
//! Watchdogs: `system_soft_wdt_feed()` restarts the SDK's software watchdog; the SDK feeds the hardware
//! watchdog itself (its timeout is longer; UNVERIFIED numbers quoted by third parties: soft ~3.2 s,
//! hardware ~6–8 s). The image never stops either (`system_soft_wdt_stop`): 0.22 s does not need it.
use core::sync::atomic::{AtomicU32, Ordering};

use super::ffi;
use crate::coroutine;

/// The CPU clock the SDK runs at unless told otherwise.
pub const CPU_MHZ_DEFAULT: u8 = 80;
/// The CPU clock during the TLS handshake.
pub const CPU_MHZ_HANDSHAKE: u8 = 160;

/// The CPU clock as last set, for CCOUNT-based busy-waits (CCOUNT counts CPU cycles).
static CPU_MHZ: AtomicU32 = AtomicU32::new(CPU_MHZ_DEFAULT as u32);

/// Switches the CPU clock (80 or 160 MHz); false when the SDK refused.
pub fn set_cpu_mhz(mhz: u8) -> bool {
    // SAFETY: plain SDK call from task context.
    let ok = unsafe { ffi::system_update_cpu_freq(mhz) } != 0;
    if ok {
        CPU_MHZ.store(u32::from(mhz), Ordering::Relaxed);
    }
    ok
}

pub fn cpu_mhz() -> u32 {
    CPU_MHZ.load(Ordering::Relaxed)
}

/// Restarts the SDK's software watchdog (see the module doc).
pub fn feed_watchdog() {
    // SAFETY: plain SDK call from task context.
    unsafe { ffi::system_soft_wdt_feed() }
}

/// The SDK's microsecond clock (independent of the CPU clock; wraps every 71 minutes).
pub fn time_us() -> u32 {
    // SAFETY: plain SDK call.
    unsafe { ffi::system_get_time() }
}

/// Waits of at least [`YIELD_FROM_NS`] inside the node's coroutine (the ATECC driver's 1 ms polls and its
/// wake delay) give control back to the SDK until the time has passed; shorter ones (the bit-banged I²C
/// half periods) and any wait outside a coroutine busy-wait on CCOUNT at the current CPU clock. A
/// suspension lasts until the next poll tick (50 ms): a chip command then takes a little longer, the SDK
/// never waits for the chip.
#[derive(Clone, Copy, Debug, Default)]
pub struct SdkDelay;

/// Shortest wait that suspends the coroutine.
pub const YIELD_FROM_NS: u32 = 1_000_000;

impl embedded_hal::delay::DelayNs for SdkDelay {
    fn delay_ns(&mut self, ns: u32) {
        if ns >= YIELD_FROM_NS && coroutine::in_coroutine() {
            let start = time_us();
            let us = ns / 1000;
            while time_us().wrapping_sub(start) < us {
                if coroutine::suspend().is_err() {
                    break;
                }
            }
            feed_watchdog();
            if time_us().wrapping_sub(start) >= us {
                return;
            }
        }
        let cycles = (u64::from(ns) * u64::from(cpu_mhz())).div_ceil(1000);
        let cycles = u32::try_from(cycles).unwrap_or(u32::MAX);
        let start = crate::cycles();
        while crate::cycles().wrapping_sub(start) < cycles {}
    }
}

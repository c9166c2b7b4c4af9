//! Millisecond clock from the Xtensa CCOUNT cycle counter (`rsr ccount` in
//! rt/start.S `tmc_ccount`), extended to u64 across its 32-bit wrap.
//!
//! CCOUNT counts CPU cycles: at 80 MHz it wraps every 2^32 / 80e6 = 53.7 s;
//! [`Clock::now_ms`] must be called at least once per wrap (the main loop
//! calls it every iteration).
//!
//! [`CPU_HZ`] = 80 MHz is the SDK's default CPU/APB clock (`APB_CLK_FREQ`,
//! `system_get_cpu_freq() == 80`). UNVERIFIED for this bare-metal image: no
//! PLL set-up is done, and a 26 MHz-crystal module straight out of the ROM is
//! reported to run at 52 MHz; then every time here runs 1.54x slow and the
//! console runs at 74_880 baud. Measure on the bench and change it here.
pub const CPU_HZ: u32 = 80_000_000;
pub const CYCLES_PER_MS: u32 = CPU_HZ / 1000;

/// Wrap-extended cycle counter.
pub struct Clock<F: FnMut() -> u32 = fn() -> u32> {
    read: F,
    last: u32,
    high: u64,
}

impl Clock {
    /// Clock over the CPU's CCOUNT.
    pub fn ccount() -> Self {
        Clock::with_source(crate::cycles)
    }
}

impl<F: FnMut() -> u32> Clock<F> {
    /// Clock over any 32-bit up-counter (tests use a fake).
    pub fn with_source(mut read: F) -> Self {
        let last = read();
        Clock {
            read,
            last,
            high: 0,
        }
    }

    /// Cycles since the first reading, as u64.
    pub fn cycles(&mut self) -> u64 {
        let now = (self.read)();
        if now < self.last {
            self.high += 1 << 32;
        }
        self.last = now;
        self.high | now as u64
    }

    /// Milliseconds (of CCOUNT, see [`CPU_HZ`]).
    pub fn now_ms(&mut self) -> u64 {
        self.cycles() / CYCLES_PER_MS as u64
    }
}

/// `embedded_hal::delay::DelayNs` by busy-waiting on CCOUNT at [`CPU_HZ`]
/// (UNVERIFIED clock, see above: at 52 MHz every delay is 1.54x longer,
/// which is safe for I²C/ATECC timing). Does not feed the watchdog: keep
/// single delays well under a second.
#[derive(Clone, Copy, Debug, Default)]
pub struct CcountDelay;

impl embedded_hal::delay::DelayNs for CcountDelay {
    fn delay_ns(&mut self, ns: u32) {
        let cycles = (u64::from(ns) * u64::from(CPU_HZ / 1_000_000)).div_ceil(1000) as u32;
        let start = crate::cycles();
        while crate::cycles().wrapping_sub(start) < cycles {}
    }
}

//! TMC firmware support for ESP8266 (Xtensa lx106): semihosting console,
//! a panic handler, the
//! register-level ESP8266 drivers (`hw`), the node transports (`transport`),
//! the NONOS SDK bindings and application (`sdk`, feature `nonos-sdk`), the
//! coroutine the SDK build runs the node in (`coroutine`), the chip's RNG for
//! TLS (`chip_random`) and the compiled-in sensor configuration (`config`).
//! No allocator: nothing here allocates (the on-target checks in `hil-test/`
//! bring their own).
#![no_std]

pub mod chip_random;
pub mod config;
pub mod coroutine;
pub mod hw;
#[cfg(feature = "nonos-sdk")]
pub mod sdk;
pub mod semihost;
pub mod transport;

use core::fmt;

extern "C" {
    fn semihost_write(fd: u32, ptr: *const u8, len: usize) -> isize;
    fn semihost_exit(code: i32) -> !;
    fn tmc_irq_disable() -> u32;
    fn tmc_irq_restore(ps: u32);
    fn tmc_ccount() -> u32;
}

/// Write raw bytes to the host's stdout (QEMU `-semihosting`).
pub fn write_bytes(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: pointer/length come from a valid slice.
        let n = unsafe { semihost_write(1, rest.as_ptr(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[(n as usize).min(rest.len())..];
    }
}

/// Exit QEMU with `code` as its process exit status.
pub fn exit(code: i32) -> ! {
    // SAFETY: semihosting call, never returns.
    unsafe { semihost_exit(code) }
}

/// CPU cycle counter (CCOUNT).
pub fn cycles() -> u32 {
    // SAFETY: reads a special register only.
    unsafe { tmc_ccount() }
}

/// The two boot lines a user reads first on the console: version, build, chip, the compiled-in config
/// (never the passphrase) and the transport. A console error is ignored: there is nowhere to report it.
pub fn write_banner(
    console: &mut impl core::fmt::Write,
    build: &str,
    chip_id: u32,
    transport: &str,
) {
    let _ = writeln!(
        console,
        "\ntmc-sensor {} esp8266{build}, chip id {chip_id:06x}, config: broker {}:{} topic {} interval {} ms",
        env!("CARGO_PKG_VERSION"),
        config::BROKER_HOST,
        config::BROKER_PORT,
        config::TOPIC,
        config::INTERVAL_MS,
    );
    let _ = writeln!(
        console,
        "client id {}, ssid {}, transport: {transport}",
        config::CLIENT_ID,
        config::SSID
    );
}

/// The next random number for the reconnect back-off's jitter: xorshift32 mixed with CCOUNT, so that
/// sensors that booted together do not retry in step. Not for anything secret (the ATECC has a real RNG).
pub fn jitter_rng(state: &mut u32) -> u32 {
    let mut x = *state ^ cycles();
    if x == 0 {
        x = 0x9E37_79B9;
    }
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    x
}

/// Run `f` with interrupts masked (PS.INTLEVEL = 15).
pub fn interrupt_free<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: paired disable/restore of PS.
    let ps = unsafe { tmc_irq_disable() };
    let r = f();
    unsafe { tmc_irq_restore(ps) };
    r
}

/// `core::fmt::Write` sink for the semihosting console.
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::Console, $($arg)*);
    }};
}

/// Fixed-capacity byte buffer implementing `fmt::Write`.
pub struct FmtBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FmtBuf<N> {
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("<utf8?>")
    }
}

impl<const N: usize> Default for FmtBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FmtBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let b = s.as_bytes();
        let end = self.len.checked_add(b.len()).ok_or(fmt::Error)?;
        if end > N {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(b);
        self.len = end;
        Ok(())
    }
}

#[cfg(not(feature = "esp8266"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("PANIC: {}", info);
    exit(101)
}

/// Real chip: no semihosting host to exit to; report on UART0 and spin
/// without feeding the watchdog, so that it resets the chip (if the ROM left
/// it running, see `hw::wdt`).
#[cfg(feature = "esp8266")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    use core::fmt::Write as _;
    let _ = write!(hw::uart::Uart0, "\nPANIC: {}\n", info);
    hw::uart::Uart0::flush();
    loop {}
}

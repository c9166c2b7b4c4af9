//! The provisioning console on UART0 (`tmc-node-console`; the PC side is `make provision-sensor`), run on
//! the node's coroutine stack before the node connects: the console's 5.8 KB of state and its chip
//! driver live there only while it runs, so it costs no static DRAM.
//!
//! It is offered for [`BOOT_WINDOW_MS`] after boot (type `provision`), and for as long as the node has no
//! identity. While it runs the node does not connect, and nothing else uses the ATECC.
//!
//! UART0's receive FIFO holds 128 bytes, about 11 ms at 115200 baud, and the PC sends a certificate as
//! one burst of ~650 bytes: so while the console is offered, each poll tick reads the FIFO for
//! [`READ_SLICE_US`] before it gives control back to the SDK (feeding its watchdog).
use core::fmt::Write;

use tmc_atecc::Atecc;
use tmc_node_console::{Console, EnterWatch, IdentityFlash, Step};
use tmc_node_tls::atecc::AteccElement;

use super::identity_store::{self, IdentityError};
use super::node_task::KEY_SLOT;
use super::timing::{self, SdkDelay};
use crate::coroutine;
use crate::hw::gpio::I2cPins;
use crate::hw::uart::Uart0;
use tmc_soft_i2c::BitBangI2c;

/// How long after boot `provision` is listened for when the node has an identity.
pub const BOOT_WINDOW_MS: u32 = 3000;
/// Part of each 50 ms tick spent reading the UART while the console is offered (the FIFO fills in ~11 ms,
/// so the gap between two slices must stay below that).
const READ_SLICE_US: u32 = 45_000;

/// The identity sector as the console sees it.
struct IdentitySector;

impl IdentityFlash for IdentitySector {
    type Error = IdentityError;
    fn read(&mut self, buf: &mut [u8]) -> Result<(), IdentityError> {
        identity_store::read_raw(buf)
    }
    fn write(&mut self, record: &[u8]) -> Result<(), IdentityError> {
        identity_store::write_record(record)
    }
}

/// Reads UART0 for one slice, handing each byte to `on_byte` until it returns `true`; then gives the SDK
/// its turn. Returns whether `on_byte` said stop.
fn read_slice(mut on_byte: impl FnMut(u8) -> bool) -> bool {
    let start = timing::time_us();
    while timing::time_us().wrapping_sub(start) < READ_SLICE_US {
        while let Some(byte) = Uart0::read_byte() {
            if on_byte(byte) {
                return true;
            }
        }
    }
    timing::feed_watchdog();
    // Only ever runs inside the node's coroutine.
    let _ = coroutine::suspend();
    false
}

/// Listens for the line `provision` for `window_ms` (forever with `None`) and runs the console if it
/// comes. Returns whether the console ran.
pub fn offer(window_ms: Option<u32>) -> bool {
    let mut banner = EnterWatch::new();
    let start = timing::time_us();
    loop {
        let asked = read_slice(|byte| banner.push(byte));
        if asked {
            run_console();
            return true;
        }
        if window_ms.is_some_and(|w| timing::time_us().wrapping_sub(start) / 1000 >= w) {
            return false;
        }
    }
}

/// The console until `exit`.
fn run_console() {
    let delay = SdkDelay;
    let mut chip = Atecc::new(BitBangI2c::new(I2cPins::init(), delay, 100_000), delay);
    let mut key = AteccElement {
        chip: &mut chip,
        slot: KEY_SLOT,
    };
    let mut console = Console::new();
    let _ = console.start(&mut Uart0);
    let mut exited = false;
    while !exited {
        read_slice(|byte| {
            exited = matches!(
                console.feed(byte, &mut key, &mut IdentitySector, &mut Uart0),
                Ok(Step::Exit)
            );
            exited
        });
    }
    let _ = writeln!(Uart0, "provisioning: done");
}

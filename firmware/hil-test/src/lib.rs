//! Support for the on-target checks (`src/bin/*.rs`, one binary per area, run in
//! `qemu-system-xtensa -M sim -cpu lx106 -semihosting` by `run-qemu-tests.sh`): the check runner
//! ([`run`]: one line per check, then `hil-test <area>: N passed, M failed`), [`ensure`] and
//! [`expect_eq!`], and the global allocator the simulators need ([`BumpAlloc`] over the linker
//! script's heap), which is why the checks are a package of their own: the sensor image has none.
#![no_std]

extern crate alloc;

use alloc::string::String;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

use tmc_firmware::println;

extern "C" {
    static _heap_start: u8;
    static _heap_end: u8;
}

/// The heap every check binary allocates from.
#[global_allocator]
pub static HEAP: BumpAlloc = BumpAlloc::new();

/// One check: `Err` says what differed.
pub type Check = fn() -> Result<(), String>;

/// `Err(what())` unless `ok`.
pub fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// `Err("<expression> = <got>, want <want>")` unless equal.
#[macro_export]
macro_rules! expect_eq {
    ($got:expr, $want:expr) => {{
        let (g, w) = ($got, $want);
        $crate::ensure(g == w, || {
            alloc::format!("{} = {:?}, want {:?}", stringify!($got), g, w)
        })
    }};
}

/// Runs `checks` in order, one `ok   <name>` / `FAIL <name>: <why>` line each, then
/// `hil-test <area>: N passed, M failed` (run-qemu-tests.sh adds these up); the binary's exit status:
/// 1 if anything failed, else 0.
pub fn run(area: &str, checks: &[(&str, Check)]) -> i32 {
    println!("tmc-firmware hil-test {area} (xtensa lx106)");
    let (mut passed, mut failed) = (0u32, 0u32);
    for (name, check) in checks {
        match check() {
            Ok(()) => {
                passed += 1;
                println!("ok   {name}");
            }
            Err(msg) => {
                failed += 1;
                println!("FAIL {name}: {msg}");
            }
        }
    }
    println!("hil-test {area}: {passed} passed, {failed} failed");
    i32::from(failed > 0)
}

/// CRC-16 as used by ATECC508/608: poly 0x8005, data bits LSB-first, init 0,
/// result little-endian. The local reference `tmc_atecc::crc16` is compared with.
pub fn crc16_atecc(data: &[u8]) -> [u8; 2] {
    let mut crc: u16 = 0;
    for &byte in data {
        for bit in 0..8 {
            let data_bit = (byte >> bit) & 1;
            let crc_bit = (crc >> 15) as u8;
            crc <<= 1;
            if data_bit != crc_bit {
                crc ^= 0x8005;
            }
        }
    }
    crc.to_le_bytes()
}

/// Bump allocator over `[_heap_start, _heap_end)` (set by the linker
/// script). Freeing or growing the most recent block is done in place, so
/// stack-like use (a growing `Vec`) does not leak; other frees leak.
pub struct BumpAlloc {
    next: UnsafeCell<usize>,
    last: UnsafeCell<usize>,
}

// SAFETY: single core; all state changes run with interrupts masked.
unsafe impl Sync for BumpAlloc {}

impl BumpAlloc {
    pub const fn new() -> Self {
        Self {
            next: UnsafeCell::new(0),
            last: UnsafeCell::new(0),
        }
    }

    fn bounds() -> (usize, usize) {
        // SAFETY: only the addresses of the linker symbols are used.
        unsafe {
            (
                &_heap_start as *const u8 as usize,
                &_heap_end as *const u8 as usize,
            )
        }
    }

    /// Bytes handed out so far.
    pub fn used(&self) -> usize {
        let (start, _) = Self::bounds();
        tmc_firmware::interrupt_free(|| {
            // SAFETY: interrupts masked, single core.
            let next = unsafe { *self.next.get() };
            if next == 0 {
                0
            } else {
                next - start
            }
        })
    }

    /// Total heap size.
    pub fn capacity(&self) -> usize {
        let (start, end) = Self::bounds();
        end - start
    }
}

impl Default for BumpAlloc {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for BumpAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (start, end) = Self::bounds();
        tmc_firmware::interrupt_free(|| {
            let next = unsafe { &mut *self.next.get() };
            if *next == 0 {
                *next = start;
            }
            let align = layout.align();
            let addr = match next.checked_add(align - 1) {
                Some(v) => v & !(align - 1),
                None => return core::ptr::null_mut(),
            };
            match addr.checked_add(layout.size()) {
                Some(new_next) if new_next <= end => {
                    *next = new_next;
                    unsafe { *self.last.get() = addr };
                    addr as *mut u8
                }
                _ => core::ptr::null_mut(),
            }
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        tmc_firmware::interrupt_free(|| unsafe {
            if *self.last.get() == ptr as usize {
                *self.next.get() = ptr as usize;
                *self.last.get() = 0;
            }
        })
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (_, end) = Self::bounds();
        let grown = tmc_firmware::interrupt_free(|| unsafe {
            if *self.last.get() == ptr as usize {
                if let Some(new_next) = (ptr as usize).checked_add(new_size) {
                    if new_next <= end {
                        *self.next.get() = new_next;
                        return true;
                    }
                }
            }
            false
        });
        if grown {
            return ptr;
        }
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new_ptr = unsafe { self.alloc(new_layout) };
        if !new_ptr.is_null() {
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new_ptr
    }
}

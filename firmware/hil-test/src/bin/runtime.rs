//! On-target checks of the toolchain and runtime on the lx106 (QEMU `-M sim -cpu lx106 -semihosting`):
//! 64-bit arithmetic (libgcc/compiler_builtins), core::fmt, the allocator and collections, atomics
//! (load/store only) and bit operations, soft float, the cycle counter. With `--features
//! inject-failure` / `inject-panic` (the harness's self-tests) it must exit 1 / 101.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::hint::black_box;
use core::sync::atomic::{AtomicU32, Ordering};

use tmc_firmware::FmtBuf;
use tmc_hil_test::{crc16_atecc, ensure, expect_eq, HEAP};

fn u64_mul() -> Result<(), String> {
    let a: u64 = black_box(0x1234_5678_9abc_def0);
    let b: u64 = black_box(0x0fed_cba9);
    expect_eq!(a.wrapping_mul(b), 0xa3d7_0a3c_5fa7_7c70u64)?;
    let x: u32 = black_box(0xffff_ffff);
    expect_eq!(u64::from(x) * u64::from(x), 0xffff_fffe_0000_0001u64)?;
    expect_eq!(
        black_box(123_456_789u32).wrapping_mul(black_box(987_654_321)),
        4_227_814_277u32
    )
}

fn u64_div() -> Result<(), String> {
    let n: u64 = black_box(10_000_000_000_000_000_019);
    let d: u64 = black_box(1_000_000_007);
    expect_eq!(n / d, 9_999_999_930)?;
    expect_eq!(n % d, 509)?;
    let s: i64 = black_box(-9_000_000_000_123);
    expect_eq!(s / black_box(1000), -9_000_000_000)?;
    expect_eq!(s % black_box(1000), -123)?;
    expect_eq!(black_box(1_000_000u32) / black_box(7), 142_857)
}

fn crc16() -> Result<(), String> {
    expect_eq!(crc16_atecc(black_box(&[0x04, 0x11])), [0x33, 0x43])?;
    expect_eq!(
        crc16_atecc(black_box(&[0x07, 0x02, 0x00, 0x00, 0x00])),
        [0x1e, 0x2d]
    )
}

fn fmt_json() -> Result<(), String> {
    let mut buf = FmtBuf::<64>::new();
    let (id, seq, adc) = black_box(("sensor1", 17u32, 512u16));
    write!(buf, "{{\"id\":\"{}\",\"seq\":{},\"adc\":{}}}", id, seq, adc)
        .map_err(|_| String::from("write! failed"))?;
    expect_eq!(buf.as_str(), r#"{"id":"sensor1","seq":17,"adc":512}"#)
}

fn fmt_numbers() -> Result<(), String> {
    let mut buf = FmtBuf::<96>::new();
    write!(
        buf,
        "{:08x}|{:>5}|{:<4}|{}|{}|{:.2}",
        black_box(0xdead_beefu32),
        black_box(-42i32),
        black_box(7u8),
        black_box(u64::MAX),
        black_box(i64::MIN),
        black_box(3.14159f32)
    )
    .map_err(|_| String::from("write! failed"))?;
    expect_eq!(
        buf.as_str(),
        "deadbeef|  -42|7   |18446744073709551615|-9223372036854775808|3.14"
    )
}

fn alloc_vec() -> Result<(), String> {
    let mut v: Vec<u32> = Vec::new();
    for i in 0..1000u32 {
        v.push(black_box(i * 3));
    }
    expect_eq!(v.len(), 1000)?;
    let sum: u64 = v.iter().map(|&x| u64::from(x)).sum();
    expect_eq!(sum, 1_498_500)?;
    let mut popped = 0;
    while let Some(x) = v.pop() {
        if x % 2 == 1 {
            popped += 1;
        }
    }
    expect_eq!(popped, 500)?;
    expect_eq!(v.is_empty(), true)
}

fn alloc_collections() -> Result<(), String> {
    let b = Box::new([0xa5u8; 256]);
    expect_eq!(b.iter().map(|&x| u32::from(x)).sum::<u32>(), 0xa5 * 256)?;
    let mut s = String::new();
    for i in 0..5 {
        write!(s, "{i},").map_err(|_| String::from("write failed"))?;
    }
    expect_eq!(s.as_str(), "0,1,2,3,4,")?;
    let mut m = BTreeMap::new();
    for k in [5u16, 1, 9, 3] {
        m.insert(k, k * 10);
    }
    expect_eq!(
        m.keys().copied().collect::<Vec<_>>(),
        alloc::vec![1, 3, 5, 9]
    )?;
    ensure(HEAP.used() > 0 && HEAP.used() < HEAP.capacity(), || {
        alloc::format!("heap used {} of {}", HEAP.used(), HEAP.capacity())
    })
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn atomics_and_bits() -> Result<(), String> {
    COUNTER.store(black_box(41), Ordering::SeqCst);
    let v = COUNTER.load(Ordering::SeqCst) + 1;
    COUNTER.store(v, Ordering::Release);
    expect_eq!(COUNTER.load(Ordering::Acquire), 42)?;
    expect_eq!(black_box(0x0000_f000u32).leading_zeros(), 16)?;
    expect_eq!(black_box(0x0100u32).trailing_zeros(), 8)?;
    expect_eq!(black_box(0x1234_5678u32).swap_bytes(), 0x7856_3412)?;
    expect_eq!(black_box(0xf0f0_f0f0u32).count_ones(), 16)
}

fn soft_float() -> Result<(), String> {
    let x: f32 = black_box(1.5);
    let y: f64 = black_box(2.25);
    expect_eq!(x * 4.0, 6.0f32)?;
    expect_eq!(y / 0.5, 4.5f64)?;
    expect_eq!((black_box(1000.7f32)) as u32, 1000)
}

fn cycle_counter() -> Result<(), String> {
    let a = tmc_firmware::cycles();
    let mut acc = 0u32;
    for i in 0..black_box(1000u32) {
        acc = acc.wrapping_add(black_box(i));
    }
    black_box(acc);
    let b = tmc_firmware::cycles();
    ensure(b != a, || alloc::format!("CCOUNT did not advance ({a})"))
}

/// Self-test of the harness: `--features inject-failure` must exit 1.
#[cfg(feature = "inject-failure")]
fn injected_failure() -> Result<(), String> {
    expect_eq!(black_box(2 + 2), 5)
}

/// Self-test of the harness: `--features inject-panic` must exit 101.
#[cfg(feature = "inject-panic")]
fn injected_panic() -> Result<(), String> {
    let v: Vec<u8> = Vec::new();
    let i = black_box(3usize);
    expect_eq!(v[i], 0)
}

#[no_mangle]
pub extern "C" fn tmc_main() -> i32 {
    tmc_hil_test::run(
        "runtime",
        &[
            #[cfg(feature = "inject-failure")]
            ("injected_failure", injected_failure),
            #[cfg(feature = "inject-panic")]
            ("injected_panic", injected_panic),
            ("u64_mul", u64_mul),
            ("u64_div", u64_div),
            ("crc16_atecc", crc16),
            ("fmt_json", fmt_json),
            ("fmt_numbers", fmt_numbers),
            ("alloc_vec", alloc_vec),
            ("alloc_collections", alloc_collections),
            ("atomics_and_bits", atomics_and_bits),
            ("soft_float", soft_float),
            ("cycle_counter", cycle_counter),
        ],
    )
}

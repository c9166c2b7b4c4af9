#![no_main]
//! Arbitrary bytes into Opener::open (packed encoding seeds): no panic, and the promises of check().
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::check(data);
});

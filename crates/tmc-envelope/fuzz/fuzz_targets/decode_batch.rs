#![no_main]
//! Arbitrary bytes into reading::decode, the batch plaintext decoder the open_* targets reach only
//! behind a valid MAC. Input: the issue time (8 bytes, little-endian), then the plaintext.
//! No panic, and whatever decodes re-encodes to a plaintext that decodes to the same readings.
use libfuzzer_sys::fuzz_target;
use tmc_envelope::reading;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((iat, plaintext)) = common::split_issue_time(data) else {
        return;
    };
    if let Ok(readings) = reading::decode(plaintext, iat) {
        let again = reading::encode(&readings, iat);
        let redecoded = reading::decode(&again, iat).expect("re-encoded batch decodes");
        assert_eq!(redecoded, readings);
    }
});

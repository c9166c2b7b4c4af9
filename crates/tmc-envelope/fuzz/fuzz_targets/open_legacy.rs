#![no_main]
//! Arbitrary bytes into legacy::open: no panic; what opens re-seals to the same plaintext.
use libfuzzer_sys::fuzz_target;
use tmc_envelope::legacy::{self, LegacyKeys};

fuzz_target!(|data: &[u8]| {
    let keys = LegacyKeys::default();
    if let Ok(plaintext) = legacy::open(&keys, data) {
        if let Ok(frame) = legacy::seal(&keys, &plaintext) {
            assert_eq!(
                legacy::open(&keys, &frame).expect("re-sealed legacy frame opens"),
                plaintext
            );
        }
    }
});

#![no_main]
//! Arbitrary bytes into legacy::open: no panic; what opens re-seals to the same plaintext (except a plaintext
//! that fills whole blocks and ends like PKCS#7 padding, which the format cannot tell from padding).
use libfuzzer_sys::fuzz_target;
use tmc_envelope::legacy::{self, LegacyKeys};

fuzz_target!(|data: &[u8]| {
    let keys = LegacyKeys::default();
    if let Ok(plaintext) = legacy::open(&keys, data) {
        if let Ok(frame) = legacy::seal(&keys, &plaintext) {
            let reopened = legacy::open(&keys, &frame).expect("re-sealed legacy frame opens");
            if reopened != plaintext {
                let n = usize::from(*plaintext.last().expect("an empty plaintext re-opens empty"));
                assert!(plaintext.len() % 16 == 0 && (1..=16).contains(&n));
                assert_eq!(reopened, plaintext[..plaintext.len() - n]);
            }
        }
    }
});

//! seal → open returns exactly what went in, for arbitrary readings, in both encodings.

mod common;

use common::*;
use proptest::prelude::*;
use tmc_envelope::{
    pack, unpack, Encoding, KeyRing, MemoryCounter, Opener, Reading, ReplayGuard, SealError, Sealer,
};

fn arb_reading() -> impl Strategy<Value = Reading> {
    (
        prop_oneof![
            Just("/esp8266".to_string()),
            "[a-z/+#]{0,24}",
            any::<String>()
        ],
        IAT - 100_000..IAT + 100_000,
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(topic, time, data)| Reading::new(topic, time, data))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn seal_then_open_round_trips(
        readings in proptest::collection::vec(arb_reading(), 1..8),
        secret in any::<[u8; 32]>(),
        kid in any::<u8>(),
        sender in any::<u32>(),
        counter in 0..u32::MAX,
        iat in IAT - 1_000..IAT + 1_000,
        packed in any::<bool>(),
    ) {
        let encoding = if packed { Encoding::Packed } else { Encoding::Text };
        let ring = KeyRing::from_secrets(&[(kid, secret)]).unwrap();
        let mut sealer = Sealer::new(&ring, sender, MemoryCounter::starting_at(sender, counter));
        match sealer.seal(&readings, iat, encoding) {
            Ok(sealed) => {
                prop_assert!(sealed.bytes.len() <= tmc_envelope::MAX_TOKEN_LEN);
                let mut opener = Opener::new(ring, ReplayGuard::default());
                let opened = opener.open(&sealed.bytes).unwrap();
                prop_assert_eq!(&opened.readings, &readings);
                prop_assert_eq!((opened.sender, opened.counter, opened.kid, opened.issued_at), (sender, counter, kid, iat));
                // The two encodings convert into each other losslessly.
                match encoding {
                    Encoding::Text => {
                        let text = std::str::from_utf8(&sealed.bytes).unwrap();
                        prop_assert_eq!(unpack(&pack(text).unwrap()).unwrap(), text);
                    }
                    Encoding::Packed => {
                        prop_assert_eq!(pack(&unpack(&sealed.bytes).unwrap()).unwrap(), sealed.bytes);
                    }
                }
            }
            Err(SealError::TooLarge { size, .. }) => prop_assert!(size > tmc_envelope::MAX_TOKEN_LEN),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn every_counter_gives_a_distinct_ciphertext(counter in 0..u32::MAX - 1) {
        // Same reading, consecutive counters: the IV differs, so the ciphertext does.
        let ring = ring(1, 0x11);
        let mut s = sealer(&ring, counter);
        let a = s.seal(&[reading(b"same")], IAT, Encoding::Packed).unwrap();
        let b = s.seal(&[reading(b"same")], IAT, Encoding::Packed).unwrap();
        let body = |t: &[u8]| t[..t.len() - 32].to_vec();
        prop_assert_ne!(&body(&a.bytes)[7..], &body(&b.bytes)[7..]);
    }
}

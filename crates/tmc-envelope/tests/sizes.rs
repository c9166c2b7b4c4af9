//! On-air sizes: reported before sealing, refused when over one frame, and the batching target.

mod common;

use common::*;
use tmc_envelope::{Encoding, Reading, SealError, MAX_TOKEN_LEN};

fn batch(n: usize, len: usize) -> Vec<Reading> {
    (0..n)
        .map(|i| {
            Reading::new(
                "/esp8266",
                IAT - 60 * (n - 1 - i) as u64,
                vec![i as u8; len],
            )
        })
        .collect()
}

#[test]
fn reported_size_is_the_sealed_size() {
    let ring = ring(1, 0x11);
    for encoding in ENCODINGS {
        for n in [1, 2, 4, 8] {
            let readings = batch(n, 16);
            let mut s = sealer(&ring, 127);
            let predicted = s.on_air_size(&readings, IAT, encoding);
            match s.seal(&readings, IAT, encoding) {
                Ok(sealed) => assert_eq!(sealed.bytes.len(), predicted),
                Err(SealError::TooLarge { size, max, .. }) => {
                    assert_eq!((size, max), (predicted, MAX_TOKEN_LEN));
                    assert!(predicted > MAX_TOKEN_LEN);
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[test]
fn eight_16_byte_readings_fit_one_frame_packed_with_half_the_frame_reading_bytes() {
    let ring = ring(1, 0x11);
    let readings = batch(8, 16);
    let sealed = sealer(&ring, 1_000_000)
        .seal(&readings, IAT, Encoding::Packed)
        .unwrap();
    let frame = sealed.bytes.len() + 4; // RadioHead header
    assert!(sealed.bytes.len() <= MAX_TOKEN_LEN);
    assert!(
        8 * 16 * 2 >= frame,
        "reading bytes are {} of a {frame}-byte frame",
        8 * 16
    );
}

#[test]
fn oversized_batch_is_refused_without_using_a_counter() {
    let ring = ring(1, 0x11);
    let mut s = sealer(&ring, 0);
    let err = s.seal(&batch(8, 16), IAT, Encoding::Text).unwrap_err();
    assert!(matches!(
        err,
        SealError::TooLarge {
            max: 251,
            encoding: Encoding::Text,
            ..
        }
    ));
    assert!(
        err.to_string()
            .contains("more than the 251 one LoRa frame carries"),
        "{err}"
    );
    let next = s.seal(&batch(1, 16), IAT, Encoding::Text).unwrap();
    assert_eq!(next.counter, 0);
    assert!(matches!(
        s.seal(&[], IAT, Encoding::Packed),
        Err(SealError::Empty)
    ));
}

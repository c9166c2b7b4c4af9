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

/// The firmware's reading from `sensor`, with its own counting `seq`.
fn firmware(sensor: u64, seq: u64) -> Reading {
    Reading::new(
        format!("sensors/sensor{sensor}/reading"),
        IAT - 100 + seq,
        format!(
            r#"{{"id":"sensor{sensor}","seq":{seq},"adc":{}}}"#,
            100 + (seq * 37 + sensor * 11) % 900
        ),
    )
}

/// Five sensors interleaved in arrival order, as the relay's queue holds them.
fn interleaved(per_sensor: u64) -> Vec<Reading> {
    (0..per_sensor)
        .flat_map(|seq| (1..=5).map(move |sensor| firmware(sensor, seq)))
        .collect()
}

#[test]
fn choose_gathers_the_oldest_readings_topic_so_that_a_frame_carries_over_20_firmware_readings() {
    let ring = ring(1, 0x11);
    let s = sealer(&ring, 1000);
    let queue = interleaved(40);
    let chosen = s.choose(&queue, IAT, Encoding::Packed, 64);
    let readings: Vec<Reading> = chosen.iter().map(|&i| queue[i].clone()).collect();
    assert_eq!(chosen[0], 0, "the oldest always goes");
    assert!(chosen.windows(2).all(|w| w[0] < w[1]), "queue order");
    assert!(
        readings.iter().all(|r| r.topic == queue[0].topic),
        "one sensor fills the frame"
    );
    // sensor1's readings from the oldest on, none skipped
    assert_eq!(chosen, (0..chosen.len()).map(|k| 5 * k).collect::<Vec<_>>());
    assert!(chosen.len() > 20, "{} readings", chosen.len());
    let size = s.on_air_size(&readings, IAT, Encoding::Packed);
    assert!(size <= MAX_TOKEN_LEN);
    // one more reading of that sensor would not fit
    let mut more = readings.clone();
    more.push(queue[5 * chosen.len()].clone());
    assert!(s.on_air_size(&more, IAT, Encoding::Packed) > MAX_TOKEN_LEN);
    // The token opens to exactly those readings, byte for byte.
    let mut sealer = sealer(&ring, 1000);
    let sealed = sealer.seal(&readings, IAT, Encoding::Packed).unwrap();
    let mut opener = opener(&ring);
    assert_eq!(opener.open(&sealed.bytes).unwrap().readings, readings);
}

#[test]
fn choose_takes_other_topics_when_the_oldest_topic_runs_out_and_respects_max() {
    let ring = ring(1, 0x11);
    let s = sealer(&ring, 1000);
    let queue = interleaved(3); // 3 readings per sensor: one topic cannot fill a frame
    let chosen = s.choose(&queue, IAT, Encoding::Packed, 64);
    // sensor1's three, then sensor2's three (in queue order), then as much of sensor3 as fits
    for i in [0, 5, 10, 1, 6, 11] {
        assert!(chosen.contains(&i), "{chosen:?}");
    }
    assert!(chosen.windows(2).all(|w| w[0] < w[1]), "queue order");
    let topics: Vec<usize> = chosen.iter().map(|i| i % 5).collect();
    assert!(topics.iter().all(|t| *t <= 2), "{chosen:?}");
    let readings: Vec<Reading> = chosen.iter().map(|&i| queue[i].clone()).collect();
    assert!(s.on_air_size(&readings, IAT, Encoding::Packed) <= MAX_TOKEN_LEN);
    assert!(chosen.len() >= 6);
    assert_eq!(s.choose(&queue, IAT, Encoding::Packed, 2), [0, 5]);
    assert_eq!(s.choose(&queue, IAT, Encoding::Packed, 1), [0]);
    assert!(s.choose(&[], IAT, Encoding::Packed, 8).is_empty());
}

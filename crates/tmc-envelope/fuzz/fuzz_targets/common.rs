// Shared by the fuzz targets and the seed generator: the fixed key ring and the seed batches.
// Each target uses a part of it.
#![allow(dead_code)]
use tmc_envelope::{Encoding, KeyRing, MemoryCounter, Opener, Reading, ReplayGuard, Sealer};

/// The issue time of the seed tokens and batches.
pub const SEED_IAT: u64 = 1_763_766_000;

pub fn ring() -> KeyRing {
    KeyRing::from_secrets(&[(1, [7u8; 32]), (2, [9u8; 32])]).expect("two keys")
}

pub fn opener() -> Opener {
    Opener::new(ring(), ReplayGuard::default())
}

/// Opens `data` and checks what the library promises for anything it accepts.
pub fn check(data: &[u8]) {
    let mut first = opener();
    if let Ok(opened) = first.open(data) {
        // Accepted once: the same bytes again are a replay.
        assert!(first.open(data).is_err(), "accepted twice");
        assert!(!opened.readings.is_empty());
        // Whatever opens must re-seal to a token that opens to the same readings.
        let mut sealer = Sealer::new(
            &ring(),
            opened.sender,
            MemoryCounter::starting_at(opened.sender, 0),
        );
        if let Ok(again) = sealer.seal(&opened.readings, opened.issued_at, Encoding::Packed) {
            let reopened = opener().open(&again.bytes).expect("re-sealed token opens");
            assert_eq!(reopened.readings, opened.readings);
        }
    }
}

/// Batches of the seed corpora: one topic, several topics, empty data, a full frame's worth.
pub fn batches() -> Vec<Vec<Reading>> {
    let t = SEED_IAT;
    vec![
        vec![Reading::new("/esp8266", t, b"t=21.5".to_vec())],
        vec![
            Reading::new("/esp8266", t - 60, vec![0u8; 16]),
            Reading::new("/esp8266", t, vec![1u8; 16]),
        ],
        vec![
            Reading::new("a", t, b"x".to_vec()),
            Reading::new("sensors/b/reading", t + 5, Vec::new()),
            Reading::new("a", t - 1, vec![0xff; 3]),
        ],
        (0..8)
            .map(|i| Reading::new("/esp8266", t - 60 * i, vec![i as u8; 16]))
            .collect(),
        // JSON readings: batch layout 2 (shapes, deltas, a decimal, a raw reading among them).
        (0..6)
            .map(|i| {
                let sensor = 1 + i % 2;
                let data = format!(
                    r#"{{"id":"sensor{sensor}","seq":{},"adc":{}}}"#,
                    17 + i,
                    500 - 37 * i
                );
                Reading::new(
                    format!("sensors/sensor{sensor}/reading"),
                    t - 15 * i,
                    data.into_bytes(),
                )
            })
            .collect(),
        vec![
            Reading::new(
                "/esp8266",
                t,
                br#"{"t":21.5,"h":40.25,"ok":"yes"}"#.to_vec(),
            ),
            Reading::new("/esp8266", t, br#"{"t":-0.5,"h":39.75,"ok":"no"}"#.to_vec()),
            Reading::new("/esp8266", t, br#"{"t":21.5, "h":40.25}"#.to_vec()),
            Reading::new("/esp8266", t + 1, br#"{"t":22,"err":"x,y"}"#.to_vec()),
        ],
    ]
}

/// The decode_batch input: an issue time (8 bytes, little-endian) and the plaintext after it.
pub fn split_issue_time(data: &[u8]) -> Option<(u64, &[u8])> {
    let (iat, plaintext) = data.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*iat), plaintext))
}

/// decode_batch seeds: each seed batch's plaintext behind its issue time, the inverse of
/// `split_issue_time`.
pub fn batch_seeds() -> Vec<Vec<u8>> {
    batches()
        .iter()
        .map(|batch| {
            let mut seed = SEED_IAT.to_le_bytes().to_vec();
            seed.extend(tmc_envelope::reading::encode(batch, SEED_IAT));
            seed
        })
        .collect()
}

/// Valid tokens under `ring()`: the seed corpus (random bytes alone would rarely pass the MAC).
pub fn seeds(encoding: Encoding) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, batch) in batches().iter().enumerate() {
        let mut sealer = Sealer::new(
            &ring(),
            10 + i as u32,
            MemoryCounter::starting_at(10, 200 * i as u32),
        );
        if let Ok(sealed) = sealer.seal(batch, SEED_IAT, encoding) {
            out.push(sealed.bytes);
        }
    }
    out
}

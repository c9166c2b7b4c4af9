// Shared by the fuzz targets and the seed generator: the fixed key ring they use.
use tmc_envelope::{Encoding, KeyRing, MemoryCounter, Opener, ReplayGuard, Sealer};

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

/// Valid tokens under `ring()`: the seed corpus (random bytes alone would rarely pass the MAC).
#[allow(dead_code)]
pub fn seeds(encoding: Encoding) -> Vec<Vec<u8>> {
    use tmc_envelope::Reading;
    let t = 1_763_766_000;
    let batches: Vec<Vec<Reading>> = vec![
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
    ];
    let mut out = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        let mut sealer = Sealer::new(
            &ring(),
            10 + i as u32,
            MemoryCounter::starting_at(10, 200 * i as u32),
        );
        if let Ok(sealed) = sealer.seal(batch, t, encoding) {
            out.push(sealed.bytes);
        }
    }
    out
}

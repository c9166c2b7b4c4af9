#![allow(dead_code)]

use tmc_envelope::{
    Encoding, KeyRing, MemoryCounter, Opener, Reading, ReplayGuard, Sealed, Sealer,
};

pub const IAT: u64 = 1_763_766_000;
pub const SENDER: u32 = 10;
pub const ENCODINGS: [Encoding; 2] = [Encoding::Text, Encoding::Packed];

pub fn secret(fill: u8) -> [u8; 32] {
    [fill; 32]
}

pub fn ring(kid: u8, fill: u8) -> KeyRing {
    KeyRing::from_secrets(&[(kid, secret(fill))]).unwrap()
}

pub fn sealer(ring: &KeyRing, counter: u32) -> Sealer<MemoryCounter> {
    Sealer::new(ring, SENDER, MemoryCounter::starting_at(SENDER, counter))
}

pub fn opener(ring: &KeyRing) -> Opener {
    Opener::new(ring.clone(), ReplayGuard::default())
}

pub fn reading(data: &[u8]) -> Reading {
    Reading::new("/esp8266", IAT, data.to_vec())
}

pub fn seal_one(ring: &KeyRing, counter: u32, encoding: Encoding) -> Sealed {
    sealer(ring, counter)
        .seal(&[reading(b"t=21.5")], IAT, encoding)
        .unwrap()
}

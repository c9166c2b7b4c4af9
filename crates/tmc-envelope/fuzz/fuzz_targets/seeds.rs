//! Writes the seed corpora: valid tokens for open_packed and open_text, legacy frames for
//! open_legacy, batch plaintexts for decode_batch. `make fuzz` runs it first.
use std::fs;

use tmc_envelope::legacy::{self, LegacyKeys};
use tmc_envelope::Encoding;

#[path = "common.rs"]
mod common;

fn write(target: &str, seeds: Vec<Vec<u8>>) {
    let dir = format!("corpus/{target}");
    fs::create_dir_all(&dir).expect("create corpus directory");
    for (i, seed) in seeds.iter().enumerate() {
        fs::write(format!("{dir}/seed-{i}"), seed).expect("write seed");
    }
}

fn main() {
    write("open_packed", common::seeds(Encoding::Packed));
    write("open_text", common::seeds(Encoding::Text));
    write("decode_batch", common::batch_seeds());
    let keys = LegacyKeys::default();
    let legacy: Vec<Vec<u8>> = [&b"Temperature: 21.50 C"[..], b"0123456789abcdef", b"x"]
        .iter()
        .filter_map(|p| legacy::seal(&keys, p).ok())
        .collect();
    write("open_legacy", legacy);
}

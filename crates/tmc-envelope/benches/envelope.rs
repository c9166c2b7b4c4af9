//! Seal and open per token, and the on-air size table (printed before timing).
//!
//!     cargo bench -p tmc-envelope

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use tmc_envelope::legacy::{self, LegacyKeys};
use tmc_envelope::{
    Encoding, KeyRing, MemoryCounter, Opener, Reading, ReplayGuard, Sealer, MAX_TOKEN_LEN,
};

const IAT: u64 = 1_763_766_000;
const SENDER: u32 = 10;
/// RadioHead's TO, FROM, ID, FLAGS in front of every token.
const RADIO_HEADER: usize = 4;
const READING_LEN: usize = 16;

fn ring() -> KeyRing {
    KeyRing::from_secrets(&[(1, [0x42; 32])]).unwrap()
}

/// `n` readings of one sensor a minute apart, the newest at IAT.
fn batch(n: usize) -> Vec<Reading> {
    (0..n)
        .map(|i| {
            Reading::new(
                "/esp8266",
                IAT - 60 * (n - 1 - i) as u64,
                vec![i as u8; READING_LEN],
            )
        })
        .collect()
}

/// The firmware's reading from `sensor`, the `k`-th of a run.
fn firmware(sensor: usize, k: usize) -> Reading {
    Reading::new(
        format!("sensors/sensor{sensor}/reading"),
        IAT - 15 * k as u64,
        format!(
            r#"{{"id":"sensor{sensor}","seq":{},"adc":{}}}"#,
            17 + k,
            100 + (412 + k * 37) % 900
        ),
    )
}

/// `n` readings of five sensors in turn (`interleaved`) or of one.
fn firmware_batch(n: usize, interleaved: bool) -> Vec<Reading> {
    (0..n)
        .map(|i| match interleaved {
            true => firmware(1 + i % 5, i / 5),
            false => firmware(1, i),
        })
        .collect()
}

fn sealer(counter: u32) -> Sealer<MemoryCounter> {
    Sealer::new(&ring(), SENDER, MemoryCounter::starting_at(SENDER, counter))
}

fn print_size_table() {
    let s = sealer(1);
    println!("\nOn-air size, {READING_LEN}-byte readings (token bytes; frame = token + {RADIO_HEADER}-byte RadioHead header)");
    println!("| readings | encoding | unbatched: frames, bytes on air | batched: token bytes, frame bytes | reading bytes share of the batched frame |");
    println!("|---|---|---|---|---|");
    for n in [1usize, 4, 8] {
        for encoding in [Encoding::Text, Encoding::Packed] {
            let one = s.on_air_size(&batch(1), IAT, encoding) + RADIO_HEADER;
            let token = s.on_air_size(&batch(n), IAT, encoding);
            let batched = if token <= MAX_TOKEN_LEN {
                let frame = token + RADIO_HEADER;
                format!(
                    "{token}, {frame} | {:.0} %",
                    100.0 * (n * READING_LEN) as f64 / frame as f64
                )
            } else {
                format!("{token} (does not fit one frame) | -")
            };
            println!("| {n} | {encoding} | {n}, {} | {batched} |", n * one);
        }
    }
    let legacy = legacy::seal(&LegacyKeys::default(), &[b'x'; READING_LEN])
        .unwrap()
        .len()
        + RADIO_HEADER;
    println!("| 1 | legacy (ASCII + NUL) | 1, {legacy} | - | - |\n");

    let one = &firmware_batch(1, false)[0];
    println!(
        "Packed token size, the firmware's {}-byte readings on sensors/<id>/reading (batch layout as encode chooses it)",
        one.data.len()
    );
    println!("| readings | sensors | batch layout | plaintext bytes | token bytes | plaintext bytes per reading |");
    println!("|---|---|---|---|---|---|");
    for (n, interleaved) in [
        (1, false),
        (2, false),
        (8, false),
        (26, false),
        (10, true),
        (20, true),
    ] {
        let readings = firmware_batch(n, interleaved);
        let plaintext = tmc_envelope::reading::encode(&readings, IAT);
        let version = if plaintext[0] == 0 { 2 } else { 1 };
        let token = s.on_air_size(&readings, IAT, Encoding::Packed);
        let fits = if token <= MAX_TOKEN_LEN {
            ""
        } else {
            " (over a frame)"
        };
        println!(
            "| {n} | {} | {version} | {} | {token}{fits} | {:.1} |",
            if interleaved { 5 } else { 1 },
            plaintext.len(),
            plaintext.len() as f64 / n as f64
        );
    }
    println!();
}

fn seal_and_open(c: &mut Criterion) {
    for n in [1usize, 4, 8] {
        let readings = batch(n);
        for encoding in [Encoding::Text, Encoding::Packed] {
            if sealer(1).on_air_size(&readings, IAT, encoding) > MAX_TOKEN_LEN {
                continue;
            }
            let mut group = c.benchmark_group(format!("{encoding}/{n}x{READING_LEN}B"));
            group.throughput(Throughput::Elements(1));
            let mut s = sealer(0);
            group.bench_function("seal", |b| {
                b.iter(|| s.seal(black_box(&readings), IAT, encoding).unwrap());
            });
            // Each open needs a fresh counter (or it is a replay): seal a pool up front.
            let tokens: Vec<Vec<u8>> = (0..4096)
                .map(|_| s.seal(&readings, IAT, encoding).unwrap().bytes)
                .collect();
            // One iteration opens 64 tokens; throughput reports per token.
            group.throughput(Throughput::Elements(64));
            group.bench_function("open", |b| {
                b.iter_batched_ref(
                    || Opener::new(ring(), ReplayGuard::default()),
                    |opener| {
                        for t in &tokens[..64] {
                            black_box(opener.open(black_box(t)).unwrap());
                        }
                    },
                    BatchSize::SmallInput,
                );
            });
            group.finish();
        }
    }
    // The relay's work per token at capacity: choosing from 256 queued readings of five sensors, then
    // sealing the chosen ones.
    let queue = firmware_batch(256, true);
    let s = sealer(1000);
    let chosen = s.choose(&queue, IAT, Encoding::Packed, 64);
    let readings: Vec<Reading> = chosen.iter().map(|&i| queue[i].clone()).collect();
    let mut group = c.benchmark_group(format!("firmware/{}-of-256", chosen.len()));
    group.bench_function("choose", |b| {
        b.iter(|| s.choose(black_box(&queue), IAT, Encoding::Packed, 64))
    });
    let mut s = sealer(0);
    group.bench_function("seal", |b| {
        b.iter(|| s.seal(black_box(&readings), IAT, Encoding::Packed).unwrap())
    });
    group.finish();
    let frame = legacy::seal(&LegacyKeys::default(), &[b'x'; READING_LEN]).unwrap();
    c.bench_function("legacy/open", |b| {
        b.iter(|| legacy::open(&LegacyKeys::default(), black_box(&frame)).unwrap())
    });
}

criterion_group!(benches, seal_and_open);

fn main() {
    print_size_table();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}

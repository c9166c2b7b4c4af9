//! The relay's CPU per message on the way out: choose the batch that fits one frame (`on_air_size`), seal it
//! (AES-128-CTR + HS256, packed) and put the RadioHead header in front, for the sensor payload the firmware and
//! the simulator send (`{"id":"sensor1","seq":17,"adc":512}` on `sensors/<id>/reading`).
//!
//!     cargo bench -p tmc-relay --bench seal_frame

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tmc_envelope::{Encoding, KeyRing, MemoryCounter, Reading, Sealer, MAX_TOKEN_LEN};
use tmc_link::{Frame, Header};

fn readings(n: usize, sensors: usize) -> Vec<Reading> {
    (0..n)
        .map(|i| {
            let id = format!("sensor{}", i % sensors + 1);
            let payload = format!("{{\"id\":\"{id}\",\"seq\":{},\"adc\":512}}", 1000 + i);
            Reading::new(
                format!("sensors/{id}/reading"),
                1_763_766_000,
                payload.into_bytes(),
            )
        })
        .collect()
}

fn seal_and_frame(c: &mut Criterion) {
    let ring = KeyRing::generate(1).unwrap();
    let mut g = c.benchmark_group("seal_frame");
    // One sensor (one topic per token) and five interleaved sensors (the demo's mix).
    for (label, sensors) in [("1 sensor", 1), ("5 sensors", 5)] {
        let waiting = readings(8, sensors);
        let mut sealer = Sealer::new(&ring, 10, MemoryCounter::starting_at(10, 0));
        let mut n = waiting.len();
        while sealer.on_air_size(&waiting[..n], 1_763_766_000, Encoding::Packed) > MAX_TOKEN_LEN {
            n -= 1;
        }
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new(label, n), &waiting, |b, waiting| {
            b.iter(|| {
                let mut n = waiting.len();
                while sealer.on_air_size(&waiting[..n], 1_763_766_000, Encoding::Packed)
                    > MAX_TOKEN_LEN
                {
                    n -= 1;
                }
                let token = sealer
                    .seal(&waiting[..n], 1_763_766_000, Encoding::Packed)
                    .unwrap();
                let header = Header {
                    to: 1,
                    from: 10,
                    id: 7,
                    flags: 0,
                };
                Frame::new(header, &token.bytes).unwrap().to_vec()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, seal_and_frame);
criterion_main!(benches);

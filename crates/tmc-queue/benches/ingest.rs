//! Relay ingest into the durable queue (WAL, synchronous=FULL, on the disk the target directory is on):
//! one transaction (one fsync) per message, and one per batch of messages that arrived together, as the relay
//! stores them before acknowledging them to the broker. Also the sender's side: peek + ack of a 32-entry batch.
//!
//!     cargo bench -p tmc-queue

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tmc_queue::{FullPolicy, NewEntry, RelayQueue};

/// A typical sensor payload: a small JSON object.
const PAYLOAD: &[u8] = br#"{"t":21.53,"h":48.2,"p":1013.2,"v":3.29,"n":1234}"#;
const TOPIC: &str = "sensors/kitchen/reading";

fn queue(dir: &tempfile::TempDir) -> RelayQueue {
    RelayQueue::open(&dir.path().join("queue.db"), u64::MAX, FullPolicy::Refuse).unwrap()
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for batch in [1usize, 10, 100, 1000] {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let q = queue(&dir);
        let entries: Vec<_> = (0..batch)
            .map(|i| NewEntry {
                topic: TOPIC,
                time: 1_763_766_000 + i as u64,
                payload: PAYLOAD,
            })
            .collect();
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::new("push_batch", batch), &entries, |b, e| {
            b.iter(|| assert_eq!(q.push_batch(e).unwrap().len(), e.len()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("drain");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let q = queue(&dir);
    let entries: Vec<_> = (0..32)
        .map(|i| NewEntry {
            topic: TOPIC,
            time: i,
            payload: PAYLOAD,
        })
        .collect();
    g.throughput(Throughput::Elements(32));
    g.bench_function("push32_peek_stage_ack", |b| {
        b.iter(|| {
            q.push_batch(&entries).unwrap();
            let batch = q.peek_batch(32).unwrap();
            let ids: Vec<_> = batch.iter().map(|e| e.id).collect();
            q.stage(&ids, b"token").unwrap();
            assert_eq!(q.ack(&ids).unwrap(), 32);
        })
    });
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);

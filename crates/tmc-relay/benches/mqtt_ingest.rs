//! Relay ingest rate: messages/s from MQTT into the durable queue, end to end through the real mosquitto on
//! 127.0.0.1 (plain TCP, so the number is the relay's and the broker's, not TLS's) with the relay's own ingest
//! (manual acks after group commit, WAL + synchronous=FULL on the target directory's disk).
//!
//!     cargo bench -p tmc-relay --bench mqtt_ingest            (N=20000 messages by default; TMC_BENCH_N=...)
//!
//! Four publishers send QoS 1 messages as fast as the broker takes them; the clock stops when the queue holds
//! all of them. Not a criterion benchmark: one run moves tens of thousands of messages through two processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tmc_mqtt::rumqttc::{AsyncClient, Event, MqttOptions, Packet, PublishOptions, QoS};
use tmc_mqtt::BrokerConfig;
use tmc_queue::{FullPolicy, RelayQueue};
use tmc_relay::service::ingest::{self, IngestSettings, IngestStats};
use tmc_service::{Shutdown, Wakeup, Watchdog};

const PUBLISHERS: usize = 4;

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing useful: run only for bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("TMC_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let port = tmc_testkit::free_port();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("bench.conf"),
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 256\nmax_queued_messages 1000000\n"
        ),
    )
    .unwrap();
    let _broker = tmc_testkit::Mosquitto::start(&conf, dir.path(), port);

    let queue = Arc::new(
        RelayQueue::open(&dir.path().join("relay.db"), u64::MAX, FullPolicy::Refuse).unwrap(),
    );
    let stats = Arc::new(IngestStats::default());
    let shutdown = Shutdown::new();
    let mut watchdog = Watchdog::new();
    let settings = IngestSettings {
        broker: BrokerConfig::plain("127.0.0.1", port).into(),
        topics: vec!["sensors/+/reading".into()],
        max_payload: 200,
        receive_maximum: 256,
        dedupe: true,
        subscriptions_record: None,
        new_session: false,
        fits_frame: Box::new(|_, _| true),
    };
    let relay = {
        let (queue, stats, shutdown) = (queue.clone(), stats.clone(), shutdown.clone());
        let beat = watchdog.heartbeat("ingest");
        std::thread::spawn(move || {
            ingest::run(
                settings,
                queue,
                Arc::new(Wakeup::new()),
                Arc::new(Wakeup::new()),
                stats,
                shutdown,
                beat,
            )
        })
    };
    // Publish only once the relay's subscription exists (its first connection).
    while !stats.connected.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for p in 0..PUBLISHERS {
            tasks.push(tokio::spawn(publish(port, p, n / PUBLISHERS)));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let published = start.elapsed();
    eprintln!("publishers done after {:.2} s", published.as_secs_f64());
    let total = (n / PUBLISHERS * PUBLISHERS) as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while queue.len() < total {
        assert!(
            Instant::now() < deadline,
            "only {} of {total} messages queued after 120 s: {:?}",
            queue.len(),
            stats.snapshot()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed();
    shutdown.request();
    relay.join().unwrap().unwrap();
    let s = stats.snapshot();
    println!(
        "mqtt_ingest: {total} messages in {:.2} s = {:.0} messages/s into the queue \
         ({} transactions, {:.1} messages per fsync; publishers done after {:.2} s)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        s.transactions,
        s.stored as f64 / s.transactions.max(1) as f64,
        published.as_secs_f64()
    );
}

async fn publish(port: u16, publisher: usize, count: usize) {
    let mut options = MqttOptions::new(format!("bench-{publisher}"), ("127.0.0.1", port));
    options.set_keep_alive(30);
    let (client, mut eventloop) = AsyncClient::builder(options).capacity(1024).build();
    let sender = tokio::spawn(async move {
        for i in 0..count {
            let payload = format!("{{\"id\":\"sensor{publisher}\",\"seq\":{i},\"adc\":512}}");
            client
                .publish(
                    format!("sensors/sensor{publisher}/reading"),
                    payload,
                    PublishOptions::new(QoS::AtLeastOnce),
                )
                .await
                .unwrap();
        }
        client
    });
    let mut acked = 0;
    while acked < count {
        if let Event::Incoming(Packet::PubAck(_)) = eventloop.poll().await.unwrap() {
            acked += 1;
        }
    }
    drop(sender.await.unwrap());
}

//! The relay's MQTT ingest against the real mosquitto on 127.0.0.1: bad input is counted and never stored,
//! copies are stored once, and a burst larger than the client's request channel is stored and acknowledged
//! completely (every PUBACK reaches the broker, so its in-flight window never closes).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tmc_mqtt::rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, PubAckReason, PublishOptions, QoS,
};
use tmc_mqtt::BrokerConfig;
use tmc_queue::{FullPolicy, RelayQueue};
use tmc_relay::service::ingest::{self, IngestSettings, IngestStats};
use tmc_service::{Shutdown, Wakeup, Watchdog};
use tmc_testkit::Mosquitto;

const WAIT: Duration = Duration::from_secs(30);

struct Ingest {
    shutdown: Shutdown,
    stats: Arc<IngestStats>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

fn start_ingest(port: u16, queue: Arc<RelayQueue>, topics: &[&str]) -> Ingest {
    start_ingest_with(port, queue, topics, false)
}

fn start_ingest_with(
    port: u16,
    queue: Arc<RelayQueue>,
    topics: &[&str],
    new_session: bool,
) -> Ingest {
    let shutdown = Shutdown::new();
    let stats = Arc::new(IngestStats::default());
    let settings = settings(port, topics, new_session);
    let beat = Watchdog::new().heartbeat("ingest");
    let thread = {
        let (stats, shutdown) = (stats.clone(), shutdown.clone());
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
    let ingest = Ingest {
        shutdown,
        stats,
        thread,
    };
    // Subscribed (every SUBACK back), on a new session and on a resumed one alike.
    ingest.until(|s| s.subscribed.load(Ordering::Relaxed));
    ingest
}

impl Ingest {
    /// Polls the ingest's counters (its thread updates them) until `done`, bounded.
    fn until(&self, done: impl Fn(&IngestStats) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.stats) {
            assert!(Instant::now() < deadline, "{:?}", self.stats.snapshot());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(self) -> tmc_relay::service::ingest::IngestSnapshot {
        self.shutdown.request();
        self.thread.join().unwrap().unwrap();
        self.stats.snapshot()
    }
}

fn settings(port: u16, topics: &[&str], new_session: bool) -> IngestSettings {
    IngestSettings {
        broker: BrokerConfig::plain("127.0.0.1", port).into(),
        topics: topics.iter().map(|t| t.to_string()).collect(),
        max_payload: 64,
        receive_maximum: 256,
        dedupe: true,
        subscriptions_record: None,
        new_session,
        fits_frame: Box::new(|_, _| true),
    }
}

fn broker(dir: &std::path::Path) -> Mosquitto {
    broker_on(dir, tmc_testkit::free_port())
}

fn broker_on(dir: &std::path::Path, port: u16) -> Mosquitto {
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("test.conf"),
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\nmax_inflight_messages 256\nmax_queued_messages 100000\n"),
    )
    .unwrap();
    Mosquitto::start(&conf, dir, port)
}

/// Publishes every (topic, payload) at QoS 1 and waits for all PUBACKs; returns their reasons.
fn publish(port: u16, client_id: &str, messages: Vec<(String, Vec<u8>)>) -> Vec<PubAckReason> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (client, mut eventloop) =
            AsyncClient::builder(MqttOptions::new(client_id, ("127.0.0.1", port)))
                .capacity(64)
                .build();
        let count = messages.len();
        let sender = tokio::spawn(async move {
            for (topic, payload) in messages {
                client
                    .publish(topic, payload, PublishOptions::new(QoS::AtLeastOnce))
                    .await
                    .unwrap();
            }
            client
        });
        let mut reasons = Vec::new();
        tokio::time::timeout(WAIT, async {
            while reasons.len() < count {
                if let Event::Incoming(Packet::PubAck(ack)) = eventloop.poll().await.unwrap() {
                    reasons.push(ack.reason);
                }
            }
        })
        .await
        .unwrap();
        drop(sender.await.unwrap());
        reasons
    })
}

/// rumqttc allocates its table of outgoing publishes for the whole window when the client is built and again
/// on a new session; unbounded it is 16 MB of the relay's memory, for publishes it never makes.
#[test]
fn the_relay_client_keeps_no_room_for_publishes_it_does_not_make() {
    for new_session in [false, true] {
        let options = ingest::client_options(&settings(1883, &["sensors/#"], new_session)).unwrap();
        assert_eq!(options.get_outgoing_inflight_upper_limit(), Some(1));
        assert_eq!(options.receive_maximum(), Some(256));
    }
}

#[test]
fn bad_messages_are_counted_and_not_stored_and_copies_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let queue =
        Arc::new(RelayQueue::open(&dir.path().join("q.db"), 1000, FullPolicy::Refuse).unwrap());
    // An older configuration also subscribed to other/#: the persistent session keeps that subscription.
    start_ingest(
        broker.port,
        queue.clone(),
        &["sensors/+/reading", "other/#"],
    )
    .stop();
    let ingest = start_ingest(broker.port, queue.clone(), &["sensors/+/reading"]);
    let good = |seq: u32| format!("{{\"id\":\"s1\",\"seq\":{seq}}}").into_bytes();
    publish(
        broker.port,
        "publisher",
        vec![
            ("sensors/s1/reading".into(), good(1)),
            ("sensors/s1/reading".into(), vec![0xff, 0xfe, 0x00]),
            ("sensors/s1/reading".into(), vec![b'x'; 65]),
            ("other/x".into(), good(9)),
            // A sensor re-publishing reading 1 (its PUBACK lost in a broker restart).
            ("sensors/s1/reading".into(), good(1)),
            ("sensors/s1/reading".into(), good(2)),
        ],
    );
    ingest.until(|s| s.received.load(Ordering::Relaxed) == 6);
    let stats = ingest.stop();
    assert_eq!(stats.stored, 2, "{stats:?}");
    assert_eq!(
        (
            stats.rejected_not_utf8,
            stats.rejected_size,
            stats.rejected_topic,
            stats.redelivered
        ),
        (1, 1, 1, 1),
        "{stats:?}"
    );
    let payloads: Vec<Vec<u8>> = queue
        .peek_batch(10)
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert_eq!(payloads, [good(1), good(2)]);
    // Everything was acknowledged: a new session start gets nothing again.
    let again = start_ingest(broker.port, queue.clone(), &["sensors/+/reading"]);
    let stats = again.stop();
    assert_eq!(stats.received, 0, "{stats:?}");
}

#[test]
fn a_burst_larger_than_the_request_channel_is_stored_and_acknowledged_completely() {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let queue =
        Arc::new(RelayQueue::open(&dir.path().join("q.db"), u64::MAX, FullPolicy::Refuse).unwrap());
    let ingest = start_ingest(broker.port, queue.clone(), &["sensors/+/reading"]);
    // Four sensors at once, as fast as the broker takes them.
    let publishers: Vec<_> = (0..4)
        .map(|p| {
            let port = broker.port;
            std::thread::spawn(move || {
                let messages = (0..N / 4)
                    .map(|i| {
                        let payload = format!("{{\"seq\":{i}}}").into_bytes();
                        (format!("sensors/s{p}/reading"), payload)
                    })
                    .collect();
                publish(port, &format!("publisher{p}"), messages)
            })
        })
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    ingest.until(|s| s.stored.load(Ordering::Relaxed) == N as u64);
    let stats = ingest.stop();
    assert_eq!(queue.len(), N as u64);
    assert!(stats.transactions < N as u64, "no group commit: {stats:?}");
}

#[test]
fn the_relay_session_survives_a_broker_restart_so_readings_published_before_it_reconnects_wait_for_it(
) {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let port = broker.port;
    let queue =
        Arc::new(RelayQueue::open(&dir.path().join("q.db"), 1000, FullPolicy::Refuse).unwrap());
    start_ingest(port, queue.clone(), &["sensors/+/reading"]).stop();
    // The broker restarts (SIGTERM: it saves its sessions) while the relay is away.
    broker.stop();
    let _broker = broker_on(dir.path(), port);
    let reasons = publish(
        port,
        "sensor",
        vec![("sensors/s1/reading".into(), b"{\"seq\":1}".to_vec())],
    );
    assert_eq!(
        reasons,
        [PubAckReason::Success],
        "the relay's subscription was forgotten"
    );
    let ingest = start_ingest(port, queue.clone(), &["sensors/+/reading"]);
    ingest.until(|s| s.stored.load(Ordering::Relaxed) == 1);
    ingest.stop();
}

#[test]
fn changed_topics_take_effect_with_a_new_session() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let queue =
        Arc::new(RelayQueue::open(&dir.path().join("q.db"), 1000, FullPolicy::Refuse).unwrap());
    start_ingest(broker.port, queue.clone(), &["sensors/+/reading"]).stop();
    // A resumed session keeps the old subscriptions (rumqttc cannot add any to it after a restart)...
    let resumed = start_ingest(broker.port, queue.clone(), &["other/#"]);
    let reasons = publish(
        broker.port,
        "p1",
        vec![("other/x".into(), b"{\"seq\":1}".to_vec())],
    );
    assert_eq!(reasons, [PubAckReason::NoMatchingSubscribers]);
    resumed.stop();
    // ...and a new session has the configured ones.
    let fresh = start_ingest_with(broker.port, queue.clone(), &["other/#"], true);
    let reasons = publish(
        broker.port,
        "p2",
        vec![
            ("other/x".into(), b"{\"seq\":2}".to_vec()),
            ("sensors/s1/reading".into(), b"{\"seq\":3}".to_vec()),
        ],
    );
    assert_eq!(
        reasons,
        [PubAckReason::Success, PubAckReason::NoMatchingSubscribers]
    );
    fresh.until(|s| s.stored.load(Ordering::Relaxed) == 1);
    fresh.stop();
}

//! The node against a broker simulated byte for byte with the crate's own codec.

use super::*;
use crate::sim::{Received, SimBroker, SimSensor};
use std::string::String;
use std::vec::Vec;

const CLIENT: &str = "esp8266-1";
const HOST: &str = "broker.local";
const SENSOR: &str = "sensor1";

struct Sim<'a> {
    node: Node<'a>,
    broker: SimBroker,
    sensor: SimSensor<'static>,
    log: String,
    now: u64,
    rng: u32,
    /// What [`Node::take_acked`] handed out, in order.
    taken_acks: Vec<u64>,
}

impl<'a> Sim<'a> {
    fn new(config: NodeConfig<'a>) -> Self {
        // A few bytes per read: the node must reassemble packets.
        let mut broker = SimBroker::default();
        broker.recv_chunk = 3;
        Sim {
            node: Node::new(config),
            broker,
            sensor: SimSensor::new(SENSOR),
            log: String::new(),
            now: 0,
            rng: 0x1234_5678,
            taken_acks: Vec::new(),
        }
    }

    /// Polls as the firmware would, sleeping what the node asks for, until `until_ms`.
    fn run_until(&mut self, until_ms: u64) {
        while self.now < until_ms {
            // xorshift32
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 17;
            self.rng ^= self.rng << 5;
            let Wait(w) = self.node.poll(
                self.now,
                self.rng,
                &mut self.broker,
                &mut self.sensor,
                &mut self.log,
            );
            while let Some(acked) = self.node.take_acked() {
                self.taken_acks.push(acked.seq);
            }
            self.now += w.clamp(1, 60_000).min(until_ms - self.now).max(1);
        }
        self.assert_broker_content();
    }

    /// Every CONNECT is byte-exact, every PUBLISH is this sensor's reading, nothing was rejected.
    fn assert_broker_content(&self) {
        let mut expected = [0u8; 64];
        let config = self.node.config();
        let n = mqtt::Connect::new(CLIENT, config.keep_alive_s, true)
            .encode(&mut expected)
            .unwrap();
        for packet in &self.broker.connect_packets {
            assert_eq!(packet, &expected[..n], "CONNECT bytes");
        }
        assert!(self.broker.publishes.iter().all(|r| r.id == SENSOR));
        assert_eq!(
            self.broker.violations,
            Vec::<String>::new(),
            "log:\n{}",
            self.log
        );
    }

    fn lines(&self) -> Vec<&str> {
        self.log.lines().collect()
    }

    fn retries(&self) -> Vec<u64> {
        self.log
            .lines()
            .filter_map(|l| l.strip_prefix("retry in "))
            .map(|l| l.strip_suffix(" ms").unwrap().parse().unwrap())
            .collect()
    }

    /// Every reading taken was acknowledged exactly once, in order, and nothing else was.
    fn assert_all_acked_once(&self) {
        let taken = self.sensor.reads;
        let expected: Vec<u64> = (1..=taken).collect();
        assert_eq!(self.broker.acked, expected, "log:\n{}", self.log);
        assert_eq!(self.taken_acks, expected, "take_acked");
        assert!(self.node.queued().is_empty());
        assert_eq!(self.node.stats().acked, taken);
        for seq in 1..=taken {
            let n = self
                .lines()
                .iter()
                .filter(|l| **l == std::format!("puback seq={seq}"))
                .count();
            assert_eq!(n, 1, "puback seq={seq} logged {n} times");
        }
    }
}

fn config() -> NodeConfig<'static> {
    NodeConfig {
        interval_ms: 1000,
        keep_alive_s: 60,
        backoff_min_ms: 500,
        backoff_max_ms: 4000,
        puback_retry_ms: 2000,
        ..NodeConfig::new(CLIENT, HOST, SENSOR)
    }
}

fn assert_strictly_increasing(seqs: &[u64]) {
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[test]
fn normal_publish_cycle() {
    let mut sim = Sim::new(config());
    sim.run_until(10_500);
    let lines = sim.lines();
    assert_eq!(lines[0], "mqtt: connecting to broker.local:8883");
    assert_eq!(lines[1], "mqtt: connected (session present=0)");
    let adc1 = crate::adc(SENSOR, 1);
    assert_eq!(
        lines[2],
        std::format!("publish seq=1 adc={adc1} -> /esp8266")
    );
    assert_eq!(lines[3], "puback seq=1");
    assert_eq!(sim.sensor.reads, 11);
    assert_eq!(sim.broker.publishes.len(), 11);
    for (i, p) in sim.broker.publishes.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(p.seq, seq);
        assert_eq!(p.adc, crate::adc(SENSOR, seq));
        assert!(!p.dup);
        assert_eq!(usize::from(p.packet_id), i + 1);
        assert_eq!(p.topic, DEFAULT_TOPIC);
        let mut expected = [0u8; 64];
        let n = crate::write_reading(SENSOR, seq, p.adc, &mut expected).unwrap();
        assert_eq!(p.payload, &expected[..n]);
    }
    sim.assert_all_acked_once();
    assert_eq!(sim.broker.connects, 1);
    assert!(sim.node.is_connected());
    assert!(!sim.log.contains("lost"));
}

#[test]
fn slow_broker_answers_are_reassembled() {
    let mut sim = Sim::new(config());
    sim.broker.delay_recvs = 20;
    sim.run_until(5_500);
    sim.assert_all_acked_once();
    assert_eq!(sim.sensor.reads, 6);
}

#[test]
fn puback_lost_resent_with_dup() {
    let mut sim = Sim::new(config());
    sim.broker.drop_pubacks = 1;
    sim.run_until(8_500);
    let p = &sim.broker.publishes;
    assert_eq!((p[0].seq, p[0].dup, p[0].packet_id), (1, false, 1));
    // 2 s later the same packet with DUP; nothing else meanwhile (one in flight).
    assert_eq!((p[1].seq, p[1].dup, p[1].packet_id), (1, true, 1));
    assert_eq!(p[1].payload, p[0].payload);
    assert!(p[2..].iter().all(|r| !r.dup));
    let adc1 = crate::adc(SENSOR, 1);
    assert!(sim.log.contains(&std::format!(
        "publish seq=1 adc={adc1} -> /esp8266 (dup)\npuback seq=1\n"
    )));
    assert_eq!(sim.node.stats().publishes_sent, sim.sensor.reads + 1);
    sim.assert_all_acked_once();
}

#[test]
fn connection_drop_mid_flight_reconnects_and_resends() {
    let mut sim = Sim::new(config());
    sim.run_until(2_500);
    sim.broker.drop_conn_on_publish = 1;
    sim.run_until(12_500);
    assert!(
        sim.log
            .contains("mqtt: connection lost: connection reset\nretry in "),
        "{}",
        sim.log
    );
    assert_eq!(sim.broker.connects, 2);
    assert_eq!(sim.broker.closes, 1);
    // seq 4 reached the broker, was not acknowledged, and was sent again after the reconnect.
    let fours: Vec<&Received> = sim.broker.publishes.iter().filter(|r| r.seq == 4).collect();
    assert_eq!(fours.len(), 2);
    let published: Vec<u64> = sim.broker.publishes.iter().map(|r| r.seq).collect();
    let mut dedup = published.clone();
    dedup.dedup();
    assert_strictly_increasing(&dedup);
    sim.assert_all_acked_once();
    assert_eq!(sim.node.stats().dropped, 0);
}

#[test]
fn connack_refused_backs_off_with_jitter_then_resets() {
    let mut sim = Sim::new(NodeConfig {
        interval_ms: 600_000,
        ..config()
    });
    sim.broker.refuse.extend([5, 5, 5, 5, 5, 3]);
    sim.run_until(40_000);
    let refusals = sim
        .lines()
        .iter()
        .filter(|l| **l == "mqtt: refused: not authorized")
        .count();
    assert_eq!(refusals, 5);
    assert!(sim.log.contains("mqtt: refused: server unavailable\n"));
    let retries = sim.retries();
    assert_eq!(retries.len(), 6);
    // Ceilings 500, 1000, 2000, 4000, 4000, 4000; each delay in [c/2, c].
    for (n, delay) in retries.iter().enumerate() {
        let ceiling = (500u64 << n).min(4000);
        assert!(
            (ceiling / 2..=ceiling).contains(delay),
            "attempt {n}: {delay} not in [{}, {ceiling}]",
            ceiling / 2
        );
    }
    // The jitter varies.
    assert!(retries[3..].windows(2).any(|w| w[0] != w[1]), "{retries:?}");
    assert_eq!(sim.broker.connect_attempts, 7);
    assert!(sim.node.is_connected());
    sim.assert_all_acked_once();
    // After a successful connect the back-off starts again at the bottom.
    sim.broker.drop_conn_on_publish = 0;
    sim.broker.break_connection();
    sim.run_until(41_000);
    let last = *sim.retries().last().unwrap();
    assert!((250..=500).contains(&last), "{last}");
}

#[test]
fn backoff_jitter_extremes() {
    // rng 0 gives the floor, rng u32::MAX the ceiling (to the millisecond).
    for (rng, expected) in [(0u32, 250u64), (u32::MAX, 500)] {
        let mut node = Node::new(config());
        let mut broker = SimBroker::default();
        broker.fail_connects = 1;
        let mut sensor = SimSensor::new(SENSOR);
        let mut log = String::new();
        let Wait(w) = node.poll(0, rng, &mut broker, &mut sensor, &mut log);
        assert_eq!(
            log,
            std::format!(
                "mqtt: connecting to broker.local:8883\nmqtt: connect failed: host unreachable\nretry in {expected} ms\n"
            )
        );
        assert_eq!(w, expected);
    }
}

#[test]
fn keep_alive_ping_when_idle_and_loss_when_unanswered() {
    let mut sim = Sim::new(NodeConfig {
        interval_ms: 1_000_000,
        keep_alive_s: 10,
        ..config()
    });
    sim.run_until(35_000);
    assert_eq!(sim.broker.pings, 3, "{}", sim.log);
    assert!(sim.log.contains("mqtt: ping\n"));
    assert!(sim.node.is_connected());
    assert!(!sim.log.contains("lost"));
    sim.broker.silent = true;
    sim.run_until(50_000);
    // Ping at 40 s, no answer within 5 s: lost, back off, reconnect.
    assert!(
        sim.log
            .contains("mqtt: connection lost: keep-alive\nretry in "),
        "{}",
        sim.log
    );
    assert_eq!(sim.broker.connects, 2);
    assert!(sim.node.is_connected());
    sim.assert_all_acked_once();
}

#[test]
fn ring_overflow_is_counted_and_logged() {
    let mut sim = Sim::new(NodeConfig {
        backoff_min_ms: 1000,
        backoff_max_ms: 1000,
        ..config()
    });
    sim.broker.fail_connects = usize::MAX;
    sim.run_until(12_500);
    assert_eq!(sim.sensor.reads, 13);
    assert_eq!(sim.node.queued().len(), QUEUE_LEN);
    assert_eq!(sim.node.stats().dropped, 5);
    assert!(sim
        .log
        .contains("queue full: dropped seq=1 (dropped 1 so far)\n"));
    assert!(sim
        .log
        .contains("queue full: dropped seq=5 (dropped 5 so far)\n"));
    let queued: Vec<u64> = sim.node.queued().iter().map(|p| p.seq).collect();
    assert_eq!(queued, (6..=13).collect::<Vec<_>>());
    sim.broker.fail_connects = 0;
    sim.run_until(20_500);
    // The reconnect may come after one or two more readings: they push out the oldest queued ones.
    let dropped = sim.node.stats().dropped;
    assert!((5..=7).contains(&dropped), "{dropped}");
    for seq in 1..=dropped {
        assert!(sim.log.contains(&std::format!(
            "queue full: dropped seq={seq} (dropped {seq} so far)\n"
        )));
    }
    let published: Vec<u64> = sim.broker.publishes.iter().map(|r| r.seq).collect();
    assert_strictly_increasing(&published);
    assert_eq!(
        published,
        (dropped + 1..=sim.sensor.reads).collect::<Vec<_>>()
    );
    assert_eq!(sim.broker.acked, published);
    assert!(sim.node.queued().is_empty());
}

#[test]
fn overflow_while_in_flight_keeps_the_reading_in_flight() {
    let mut sim = Sim::new(NodeConfig {
        puback_retry_ms: 100_000,
        ..config()
    });
    sim.broker.drop_pubacks = 1;
    sim.run_until(9_500);
    // seq 1 is in flight (no PUBACK), 2..=10 queued behind it: seq 2 was dropped, not seq 1.
    assert_eq!(sim.node.stats().dropped, 2);
    assert!(sim
        .log
        .contains("queue full: dropped seq=2 (dropped 1 so far)\n"));
    assert_eq!(sim.node.queued()[0].seq, 1);
}

#[test]
fn connack_timeout_closes_and_retries() {
    let mut sim = Sim::new(NodeConfig {
        connack_timeout_ms: 3000,
        ..config()
    });
    sim.broker.mute_connects = 1;
    sim.run_until(2_900);
    assert!(!sim.node.is_connected());
    assert!(sim.broker.publishes.is_empty());
    sim.run_until(8_500);
    assert!(
        sim.log
            .contains("mqtt: connection lost: no CONNACK\nretry in "),
        "{}",
        sim.log
    );
    assert_eq!(sim.broker.closes, 1);
    assert_eq!(sim.broker.connect_attempts, 2);
    assert!(sim.node.is_connected());
    sim.assert_all_acked_once();
}

#[test]
fn wait_is_the_next_thing_to_do() {
    let mut sim = Sim::new(NodeConfig {
        interval_ms: 10_000,
        keep_alive_s: 0,
        ..config()
    });
    sim.run_until(100);
    assert!(sim.node.is_connected());
    assert!(sim.node.queued().is_empty());
    // Connected and idle: the receive poll interval bounds the sleep.
    let Wait(w) = sim
        .node
        .poll(sim.now, 1, &mut sim.broker, &mut sim.sensor, &mut sim.log);
    assert_eq!(w, 20);
    // Disconnected: the retry time or the next reading, whichever comes first.
    sim.broker.fail_connects = usize::MAX;
    sim.broker.break_connection();
    let Wait(w) = sim
        .node
        .poll(500, 0, &mut sim.broker, &mut sim.sensor, &mut sim.log);
    assert!(sim.log.ends_with("retry in 250 ms\n"), "{}", sim.log);
    assert_eq!(w, 250);
}

#[test]
fn numbering_continues_and_stops_at_the_reading_limit() {
    let mut sim = Sim::new(config());
    sim.node.set_next_seq(41);
    sim.node.set_reading_limit(Some(45));
    sim.run_until(20_500);
    let seqs: Vec<u64> = sim.broker.publishes.iter().map(|p| p.seq).collect();
    assert_eq!(seqs, [41, 42, 43, 44, 45]);
    assert_eq!(sim.taken_acks, [41, 42, 43, 44, 45]);
    assert_eq!(sim.sensor.reads, 5, "no reading is taken beyond the limit");
    assert_eq!(sim.node.next_seq(), 46);
    assert!(sim.node.take_acked().is_none());
}

#[test]
fn take_acked_keeps_the_newest_when_never_drained() {
    let mut node = Node::new(config());
    let mut broker = SimBroker::default();
    let mut sensor = SimSensor::new(SENSOR);
    let mut log = String::new();
    let mut now = 0;
    while node.stats().acked < QUEUE_LEN as u64 + 3 {
        let Wait(w) = node.poll(now, 7, &mut broker, &mut sensor, &mut log);
        now += w.max(1);
        assert!(now < 60_000, "log:\n{log}");
    }
    let taken: Vec<u64> = core::iter::from_fn(|| node.take_acked().map(|p| p.seq)).collect();
    let acked = node.stats().acked;
    assert_eq!(
        taken,
        ((acked - QUEUE_LEN as u64 + 1)..=acked).collect::<Vec<_>>()
    );
}

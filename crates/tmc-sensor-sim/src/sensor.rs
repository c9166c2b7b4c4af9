//! One simulated sensor: the firmware's [`Node`] driven on a std thread, its acknowledged readings written to
//! the ledger.

use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tmc_sensor_core::node::{Node, NodeConfig, NodeStats, Pending, Sensor, Transport, Wait};

use crate::interval::format_interval;
use crate::ledger::{Ledger, LedgerEntry};
use crate::link::Watched;
use crate::payload::reading_payload;
use crate::sim::{SensorSummary, SimError};
use crate::stop::{ProgressWatch, StopSignal};

/// The longest single sleep (a node that has nothing to do returns long waits; a stop cuts them short).
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// What one sensor does, fixed before it starts.
#[derive(Debug, Clone)]
pub(crate) struct SensorPlan {
    pub name: String,
    pub topic: String,
    pub host: String,
    pub port: u16,
    pub interval: Duration,
    pub keep_alive_s: u16,
    pub first_seq: u64,
    /// The last reading's seq (`None`: until stopped).
    pub last_seq: Option<u64>,
    pub stop_grace: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub puback_retry: Duration,
}

impl SensorPlan {
    fn node_config(&self) -> NodeConfig<'_> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut config = NodeConfig::new(&self.name, &self.host, &self.name);
        config.port = self.port;
        config.topic = &self.topic;
        config.interval_ms = ms(self.interval);
        config.keep_alive_s = self.keep_alive_s;
        config.backoff_min_ms = ms(self.backoff_min);
        config.backoff_max_ms = ms(self.backoff_max);
        config.puback_retry_ms = ms(self.puback_retry);
        // With one reading in flight, the PUBACK must be seen well within an interval or the node falls
        // behind the schedule (the firmware's 20 ms is for intervals of a second or more).
        config.rx_poll_ms = (config.interval_ms / 4).clamp(1, 20);
        config
    }
}

/// Whether the sensor loop needs another connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// The node closed the connection after a failure: the next attempt needs a new transport.
    Reconnect,
    /// Every reading is settled (or the stop's grace period is over).
    Finished,
}

/// The simulated ADC as the node's sensor: the value for the reading about to be taken.
struct SimAdc<'a> {
    id: &'a str,
    seq: u64,
}

impl Sensor for SimAdc<'_> {
    type Error = Infallible;

    fn read(&mut self) -> Result<u16, Infallible> {
        Ok(tmc_sensor_core::adc(self.id, self.seq))
    }
}

/// The node's log lines, to `tracing` with the sensor's name. Failures warn once per streak (the retries
/// and the chatter of every publish only with -v or RUST_LOG=debug).
struct NodeLog<'a> {
    sensor: &'a str,
    line: String,
    failing: bool,
}

impl NodeLog<'_> {
    fn emit(&mut self) {
        let line = std::mem::take(&mut self.line);
        let sensor = self.sensor;
        let failure = [
            "mqtt: connect failed",
            "mqtt: connection lost",
            "mqtt: refused",
        ]
        .iter()
        .any(|p| line.starts_with(p));
        if failure {
            if self.failing {
                tracing::info!("{sensor}: {line}");
            } else {
                tracing::warn!("{sensor}: {line}");
            }
            self.failing = true;
        } else if line.starts_with("mqtt: connected") {
            self.failing = false;
            tracing::info!("{sensor}: {line}");
        } else if line.starts_with("queue full") {
            tracing::warn!("{sensor}: {line}");
        } else if [
            "publish ",
            "puback ",
            "mqtt: ping",
            "mqtt: connecting",
            "retry in",
        ]
        .iter()
        .any(|p| line.starts_with(p))
        {
            tracing::debug!("{sensor}: {line}");
        } else {
            tracing::info!("{sensor}: {line}");
        }
    }
}

impl fmt::Write for NodeLog<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, part) in s.split('\n').enumerate() {
            if i > 0 {
                self.emit();
            }
            self.line.push_str(part);
        }
        Ok(())
    }
}

/// A small xorshift generator for the back-off jitter, seeded differently per sensor and run.
struct Jitter(u32);

impl Jitter {
    fn new(name: &str) -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write(name.as_bytes());
        Jitter((h.finish() as u32) | 1)
    }

    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// One sensor's run: its node, log, ledger share and totals.
pub(crate) struct SensorRun<'a> {
    plan: &'a SensorPlan,
    node: Node<'a>,
    log: NodeLog<'a>,
    ledger: Option<&'a Mutex<Ledger>>,
    progress: &'a ProgressWatch,
    stop: &'a StopSignal,
    started: Instant,
    jitter: Jitter,
    /// Set once a stop was requested: the end of its grace period.
    grace_until: Option<Instant>,
    acknowledged: u64,
    unsettled: u64,
    /// The node's counters when last added to the progress.
    seen: NodeStats,
}

impl<'a> SensorRun<'a> {
    pub fn new(
        plan: &'a SensorPlan,
        ledger: Option<&'a Mutex<Ledger>>,
        progress: &'a ProgressWatch,
        stop: &'a StopSignal,
    ) -> Self {
        let mut node = Node::new(plan.node_config());
        node.set_next_seq(plan.first_seq);
        node.set_reading_limit(plan.last_seq);
        SensorRun {
            plan,
            node,
            log: NodeLog {
                sensor: &plan.name,
                line: String::new(),
                failing: false,
            },
            ledger,
            progress,
            stop,
            started: Instant::now(),
            jitter: Jitter::new(&plan.name),
            grace_until: None,
            acknowledged: 0,
            unsettled: 0,
            seen: NodeStats::default(),
        }
    }

    /// Drives the node over `transport` (one connection attempt) until the node closes it or the run is
    /// over.
    pub fn connection<T: Transport>(&mut self, transport: &mut T) -> Result<Flow, SimError> {
        let mut link = Watched::new(transport);
        loop {
            if self.finished() {
                link.leave(self.node.is_connected());
                return Ok(Flow::Finished);
            }
            let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let random = self.jitter.next();
            // The node takes at most one reading per poll, numbered next_seq(): its ADC value is known now.
            let mut adc = SimAdc {
                id: &self.plan.name,
                seq: self.node.next_seq(),
            };
            let Wait(wait_ms) = self
                .node
                .poll(now_ms, random, &mut link, &mut adc, &mut self.log);
            self.settle()?;
            if link.closed() {
                return Ok(Flow::Reconnect);
            }
            if self.finished() {
                continue;
            }
            let mut sleep = Duration::from_millis(wait_ms).min(MAX_SLEEP);
            match self.grace_until {
                None => {
                    if self.stop.wait_timeout(sleep) {
                        self.begin_stop();
                    }
                }
                Some(until) => {
                    sleep = sleep.min(until.saturating_duration_since(Instant::now()));
                    std::thread::sleep(sleep);
                }
            }
        }
    }

    /// No more readings; what is queued gets the grace period to be acknowledged.
    fn begin_stop(&mut self) {
        let last_taken = self.node.next_seq().saturating_sub(1);
        self.node.set_reading_limit(Some(last_taken));
        self.grace_until = Some(Instant::now() + self.plan.stop_grace);
        let queued = self.node.queued().len();
        if queued > 0 {
            tracing::info!(
                "{}: stopping; waiting up to {} for {queued} reading(s) to be acknowledged",
                self.plan.name,
                format_interval(self.plan.stop_grace)
            );
        }
    }

    fn finished(&mut self) -> bool {
        let all_taken = self
            .plan
            .last_seq
            .is_some_and(|last| self.node.next_seq() > last);
        let queued = self.node.queued().len();
        if (all_taken || self.grace_until.is_some()) && queued == 0 {
            return true;
        }
        if self
            .grace_until
            .is_some_and(|until| Instant::now() >= until)
        {
            self.unsettled = queued as u64;
            tracing::warn!(
                "{}: {queued} reading(s) not acknowledged when the stop grace period ended",
                self.plan.name
            );
            return true;
        }
        false
    }

    /// Writes what the broker acknowledged since the last poll to the ledger and updates the totals.
    fn settle(&mut self) -> Result<(), SimError> {
        let mut acked = 0;
        while let Some(Pending { seq, adc }) = self.node.take_acked() {
            if let Some(ledger) = self.ledger {
                let entry = LedgerEntry {
                    sensor: self.plan.name.clone(),
                    topic: self.plan.topic.clone(),
                    seq,
                    payload: reading_payload(&self.plan.name, seq, adc),
                };
                ledger
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .append(&entry)?;
            }
            acked += 1;
        }
        self.acknowledged += acked;
        let stats = self.node.stats();
        let seen = std::mem::replace(&mut self.seen, stats);
        if acked > 0 || stats != seen {
            self.progress.update(|p| {
                p.acknowledged += acked;
                p.dropped += stats.dropped - seen.dropped;
                p.publishes += stats.publishes_sent - seen.publishes_sent;
                p.connects += stats.connects - seen.connects;
                p.failures += stats.failures - seen.failures;
            });
        }
        Ok(())
    }

    pub fn summary(&self) -> SensorSummary {
        let stats = self.node.stats();
        SensorSummary {
            sensor: self.plan.name.clone(),
            topic: self.plan.topic.clone(),
            acknowledged: self.acknowledged,
            dropped: stats.dropped,
            unsettled: self.unsettled,
            connects: stats.connects,
            failures: stats.failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn log_lines_are_split_and_kept_whole() {
        let mut log = NodeLog {
            sensor: "s1",
            line: String::new(),
            failing: false,
        };
        let _ = write!(log, "mqtt: connect");
        assert_eq!(log.line, "mqtt: connect");
        let _ = writeln!(log, "ing to a:1");
        assert_eq!(log.line, "");
        let _ = writeln!(log, "mqtt: connect failed: refused");
        assert!(log.failing);
        let _ = writeln!(log, "mqtt: connected (session present=0)");
        assert!(!log.failing);
    }

    #[test]
    fn the_receive_poll_keeps_up_with_short_intervals() {
        let mut plan = SensorPlan {
            name: "s1".into(),
            topic: "sensors/s1/reading".into(),
            host: "127.0.0.1".into(),
            port: 8883,
            interval: Duration::from_millis(10),
            keep_alive_s: 30,
            first_seq: 1,
            last_seq: None,
            stop_grace: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            puback_retry: Duration::from_secs(5),
        };
        assert_eq!(plan.node_config().rx_poll_ms, 2);
        plan.interval = Duration::from_secs(5);
        assert_eq!(plan.node_config().rx_poll_ms, 20);
        assert_eq!(plan.node_config().client_id, "s1");
        assert_eq!(plan.node_config().topic, "sensors/s1/reading");
    }
}

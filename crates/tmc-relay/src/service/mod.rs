//! `tmc-relay run`: MQTT → durable queue → sealed tokens → LoRa, as one long-running service.
//!
//! Two threads share the queue: [`ingest`] (MQTT, manual acknowledgements after commit) and [`sender`]
//! (seal, stage, send, delete on ACK). The main thread runs the [`Supervisor`]: it writes the status snapshot
//! and pings the systemd watchdog while both loops make progress. SIGTERM stops both after the work in hand;
//! nothing acknowledged is lost.

pub mod ingest;
pub mod sender;
pub mod topics;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tmc_envelope::{CounterFile, KeyRing, Reading, Sealer, MAX_TOKEN_LEN};
use tmc_link::{Clock, HeaderIdFile, LinkSender, PacketRadio, ReliableDatagram, SendPolicy};
use tmc_queue::{QueueStatus, RelayQueue};
use tmc_service::radio::OpenRadio;
use tmc_service::{
    Heartbeat, MetricsServer, Notifier, Report, Scrape, Shutdown, StatusFile, Supervisor, Wakeup,
    Watchdog,
};

use crate::assignment::Assignment;
use crate::config::RelayConfig;
use ingest::{IngestSettings, IngestSnapshot, IngestStats};
use sender::{Sender, SenderSettings, SenderSnapshot};

/// Counter reservations per fsync of the counter file: a crash skips at most this many counters.
const COUNTER_BLOCK: u32 = 64;

/// What `tmc-relay status` reads (written as a [`tmc_service::Stamped`], only when it changed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayStatus {
    pub pid: u32,
    pub started_unix: u64,
    pub radio: String,
    pub sender_id: u32,
    pub gateway: u8,
    pub running: bool,
    pub ingest: IngestSnapshot,
    pub link: SenderSnapshot,
}

pub(crate) use tmc_service::status::unix_now;

/// Command-line choices of `tmc-relay run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunOptions {
    #[command(flatten)]
    pub radio: tmc_service::radio::RadioOverride,
    /// Start a new broker session, subscribed to the configured topics: needed once after changing
    /// `[ingest] topics` (the broker keeps the old session's subscriptions otherwise). Stop the sensors first,
    /// or accept that messages the broker held for the relay's old session are dropped with it.
    #[arg(long)]
    pub new_session: bool,
}

/// Runs the relay described by `config_path` until SIGTERM/SIGINT.
pub fn run(config_path: &Path, options: &RunOptions) -> anyhow::Result<()> {
    let mut config = RelayConfig::load(config_path)?;
    config
        .radio
        .apply(&options.radio)
        .context("--board/--radio")?;
    let shutdown = Shutdown::on_signals().context("installing signal handlers")?;
    run_with(config_path, config, options, shutdown)
}

/// Runs the relay until `shutdown` (tests and the demo stop it this way too).
pub fn run_with(
    config_path: &Path,
    config: RelayConfig,
    options: &RunOptions,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating state directory {}", config.state_dir.display()))?;
    let ring = KeyRing::load(&config.envelope.keys)?;
    let queue = RelayQueue::open(
        &config.queue_path(),
        config.queue.capacity,
        config.queue.when_full,
    )?;
    let opened = config.radio.open(
        config_path,
        &air_name(&config),
        u64::from(std::process::id()),
    )?;
    let sender_id = config.envelope.sender.unwrap_or(u32::from(opened.address));
    if let Some((assignment, path)) = Assignment::beside(config_path)? {
        assignment.check(
            &path,
            opened.address,
            sender_id,
            config.envelope.sender.is_some(),
        )?;
    }
    tracing::info!(
        "relay {sender_id}: {}, gateway {}, queue {} ({} entries waiting)",
        opened.description,
        config.link.gateway,
        config.queue_path().display(),
        queue.len()
    );
    let relay = Relay {
        config: &config,
        sender_id,
        shared: Shared::new(queue, shutdown),
    };

    // Before any loop runs: an address in use fails the start with nothing to stop.
    let metrics = match config.metrics_address() {
        Some(address) => {
            let report = relay.report(opened.description.clone());
            Some(MetricsServer::start(
                address,
                "tmc_relay",
                Box::new(move |scrape: &mut Scrape| report.metrics(scrape)),
            )?)
        }
        None => None,
    };
    let mut watchdog = Watchdog::new();
    let sender_thread = relay.start_sender(
        opened.link,
        opened.address,
        &ring,
        watchdog.heartbeat("sender"),
    )?;
    let ingest_thread = relay.start_ingest(options, &ring, watchdog.heartbeat("ingest"))?;

    let mut supervisor = Supervisor::new(
        watchdog,
        StatusFile::new(config.status_path()),
        relay.report(opened.description),
    );
    let notifier = Notifier;
    let report = supervisor.report();
    notifier.ready(&report.status_line(&report.snapshot()));
    supervisor.run(&relay.shared.shutdown);
    notifier.stopping();
    tracing::info!("stopping: finishing the work in hand");
    let ingest_result = join(ingest_thread);
    let sender_result = join(sender_thread);
    supervisor.finish();
    drop(metrics);
    ingest_result.context("MQTT ingest")?;
    sender_result.context("radio sender")?;
    tracing::info!("stopped; {} entries stay queued", relay.shared.queue.len());
    Ok(())
}

/// The relay's name on simulated air: its sender id, or its radio address.
fn air_name(config: &RelayConfig) -> String {
    format!(
        "relay-{}",
        config.envelope.sender.map_or_else(
            || config.radio.address.unwrap_or(0).to_string(),
            |s| s.to_string()
        )
    )
}

/// What the relay's two loops and its status share while it runs.
#[derive(Clone)]
pub struct Shared {
    pub queue: Arc<RelayQueue>,
    /// Rung by the ingest after it stored messages: the sender looks at once.
    pub stored: Arc<Wakeup>,
    /// Rung by the sender after the gateway acknowledged a token: a full queue has room again.
    pub drained: Arc<Wakeup>,
    pub ingest_stats: Arc<IngestStats>,
    pub sender_stats: Arc<Mutex<SenderSnapshot>>,
    pub shutdown: Shutdown,
}

impl Shared {
    pub fn new(queue: RelayQueue, shutdown: Shutdown) -> Self {
        Shared {
            queue: Arc::new(queue),
            stored: Arc::new(Wakeup::new()),
            drained: Arc::new(Wakeup::new()),
            ingest_stats: Arc::new(IngestStats::default()),
            sender_stats: Arc::new(Mutex::new(SenderSnapshot::default())),
            shutdown,
        }
    }
}

/// The relay being wired: its configuration, the sender id it seals under, and what its loops share.
struct Relay<'a> {
    config: &'a RelayConfig,
    sender_id: u32,
    shared: Shared,
}

impl Relay<'_> {
    /// Starts the sender on `link` (the radio at `address`); its end stops the relay.
    fn start_sender<R, C>(
        &self,
        mut link: ReliableDatagram<R, C>,
        address: u8,
        ring: &KeyRing,
        heartbeat: Heartbeat,
    ) -> anyhow::Result<JoinHandle<anyhow::Result<()>>>
    where
        R: PacketRadio + Send + 'static,
        C: Clock + Send + 'static,
    {
        let (config, shutdown) = (self.config, &self.shared.shutdown);
        // RadioHead receivers track IDs per node address, so the IDs belong to the address, not to the sender id.
        let header_ids =
            HeaderIdFile::open(&config.state_dir.join(format!("relay-header-id-{address}")))?;
        let counter = CounterFile::open(
            &config
                .state_dir
                .join(format!("relay-counter-{}", self.sender_id)),
            self.sender_id,
            COUNTER_BLOCK,
        )?;
        let policy = SendPolicy {
            rounds: config.link.rounds,
            initial_backoff: Duration::from_secs_f64(config.link.backoff),
            max_backoff: Duration::from_secs_f64(config.link.max_backoff),
        };
        sender::AirtimeWatch::install(
            &mut link,
            &config.state_dir.join("relay-airtime"),
            self.shared.sender_stats.clone(),
        );
        let stop = shutdown.clone();
        let link = LinkSender::new(
            link,
            config.link.gateway,
            policy,
            sender::service_wait(shutdown.clone(), heartbeat.clone()),
            u64::from(std::process::id()),
        )
        .with_stop(move || stop.requested())
        .with_header_ids(header_ids);
        let sender = Sender::new(
            link,
            Sealer::new(ring, self.sender_id, counter),
            SenderSettings {
                encoding: config.envelope.encoding,
                max_batch: config.envelope.max_batch,
            },
            self.shared.clone(),
            heartbeat,
        );
        let shutdown = shutdown.clone();
        spawn("sender", move || {
            let result = sender.run();
            shutdown.request();
            result
        })
    }

    /// Starts the MQTT ingest; its end stops the relay.
    fn start_ingest(
        &self,
        options: &RunOptions,
        ring: &KeyRing,
        heartbeat: Heartbeat,
    ) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
        let config = self.config;
        // The ingest refuses what could never be sent: a single reading that does not fit a frame.
        let size_check = Sealer::new(
            ring,
            self.sender_id,
            tmc_envelope::MemoryCounter::starting_at(self.sender_id, u32::MAX),
        );
        let encoding = config.envelope.encoding;
        let fits_frame = move |topic: &str, payload: &[u8]| {
            let reading = Reading::new(topic, unix_now(), payload.to_vec());
            size_check.on_air_size(&[reading], unix_now(), encoding) <= MAX_TOKEN_LEN
        };
        let settings = IngestSettings {
            broker: config.mqtt.clone(),
            topics: config.ingest.topics.clone(),
            max_payload: config.ingest.max_payload,
            receive_maximum: config.ingest.receive_maximum,
            dedupe: config.ingest.dedupe,
            subscriptions_record: Some(config.state_dir.join("relay.subscriptions")),
            new_session: options.new_session,
            fits_frame: Box::new(fits_frame),
        };
        let shared = self.shared.clone();
        spawn("ingest", move || {
            let result = ingest::run(
                settings,
                shared.queue,
                shared.stored,
                shared.drained,
                shared.ingest_stats,
                shared.shutdown.clone(),
                heartbeat,
            );
            shared.shutdown.request();
            result
        })
    }

    fn report(&self, radio: String) -> RelayReport {
        RelayReport {
            shared: self.shared.clone(),
            started_unix: unix_now(),
            radio,
            sender_id: self.sender_id,
            gateway: self.config.link.gateway,
        }
    }
}

/// What the relay's supervisor writes for `tmc-relay status` and tells systemd.
struct RelayReport {
    shared: Shared,
    started_unix: u64,
    radio: String,
    sender_id: u32,
    gateway: u8,
}

impl Report for RelayReport {
    type Snapshot = RelayStatus;

    /// Running until a stop is requested; the last snapshot, written after both loops ended, says stopped.
    fn snapshot(&self) -> RelayStatus {
        RelayStatus {
            pid: std::process::id(),
            started_unix: self.started_unix,
            radio: self.radio.clone(),
            sender_id: self.sender_id,
            gateway: self.gateway,
            running: !self.shared.shutdown.requested(),
            ingest: self.shared.ingest_stats.snapshot(),
            link: self
                .shared
                .sender_stats
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    fn status_line(&self, status: &RelayStatus) -> String {
        status_line(status, self.shared.queue.snapshot().ok().as_ref())
    }

    /// The sender waits for stored entries between looks at the queue.
    fn wake_loops(&self) {
        self.shared.stored.ring();
    }
}

impl RelayReport {
    /// The status snapshot and the queue as Prometheus metrics (`[metrics]`), read at each scrape.
    fn metrics(&self, scrape: &mut Scrape) -> Result<(), tmc_service::metrics::prometheus::Error> {
        let status = self.snapshot();
        let (ingest, link) = (&status.ingest, &status.link);
        scrape.counter(
            "readings_received_total",
            "MQTT messages received from the broker (copies included).",
            ingest.received,
        )?;
        scrape.counter(
            "readings_stored_total",
            "Readings stored in the durable queue (readings in).",
            ingest.stored,
        )?;
        scrape.counters_by(
            "readings_rejected_total",
            "MQTT messages refused, by reason.",
            "reason",
            [
                ("topic", ingest.rejected_topic),
                ("size", ingest.rejected_size),
                ("not_utf8", ingest.rejected_not_utf8),
            ],
        )?;
        scrape.counter(
            "readings_refused_queue_full_total",
            "MQTT messages held back because the queue was full (the broker sends them again).",
            self.shared.queue.refused(),
        )?;
        scrape.counter(
            "readings_delivered_total",
            "Readings in tokens the gateway acknowledged (readings out).",
            link.readings_delivered,
        )?;
        scrape.counter(
            "tokens_delivered_total",
            "Tokens the gateway acknowledged.",
            link.tokens_delivered,
        )?;
        scrape.counter(
            "frames_sent_total",
            "Frames put on air (first sends and retries, not ACKs).",
            link.frames_sent,
        )?;
        scrape.counter(
            "retries_total",
            "Frames sent again because no ACK came in time.",
            link.retries,
        )?;
        scrape.counter(
            "silent_rounds_total",
            "Delivery rounds whose every frame went unacknowledged.",
            link.silent_rounds,
        )?;
        // Every retry follows an ACK timeout, and a silent round ends with one.
        scrape.counter(
            "ack_timeouts_total",
            "Frames whose ACK did not come in time (retries plus silent rounds).",
            link.retries + link.silent_rounds,
        )?;
        scrape.counter(
            "radio_errors_total",
            "Radio errors (SPI, chip not answering).",
            link.radio_errors,
        )?;
        scrape.counter(
            "duty_cycle_waits_total",
            "Times the sender waited for the duty-cycle budget.",
            link.duty_cycle_waits,
        )?;
        scrape.counter_f64(
            "duty_cycle_wait_seconds_total",
            "Time the sender waited for the duty-cycle budget.",
            link.duty_cycle_wait_s,
        )?;
        scrape.gauge(
            "airtime_used_seconds",
            "Airtime used in the duty-cycle window (the last hour).",
            link.airtime_used_s,
        )?;
        scrape.gauge(
            "airtime_budget_seconds",
            "Airtime allowed per duty-cycle window (the hour).",
            link.airtime_budget_s,
        )?;
        scrape.gauge(
            "mqtt_connected",
            "1 while the connection to the broker is up.",
            f64::from(u8::from(ingest.connected)),
        )?;
        scrape.gauge(
            "gateway_answering",
            "1 while the gateway answered the last delivery round.",
            f64::from(u8::from(link.gateway_answering)),
        )?;
        if let Ok(queue) = self.shared.queue.snapshot() {
            scrape.gauge(
                "queue_readings",
                "Readings in the durable queue (staged or not).",
                queue.len as f64,
            )?;
            scrape.gauge(
                "queue_staged_readings",
                "Readings in sealed tokens waiting for the gateway's ACK.",
                queue.staged as f64,
            )?;
            let age_ms = queue.oldest_enqueued_ms.map_or(0, |oldest| {
                let now_ms = u64::try_from(tmc_link::unix_time().as_millis()).unwrap_or(u64::MAX);
                now_ms.saturating_sub(oldest)
            });
            scrape.gauge(
                "queue_oldest_age_seconds",
                "Age of the oldest reading in the queue (0 when empty).",
                age_ms as f64 / 1000.0,
            )?;
            scrape.counter(
                "queue_dropped_total",
                "Readings dropped by when_full = \"drop-oldest\" since the queue was created.",
                queue.dropped,
            )?;
        }
        Ok(())
    }
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .with_context(|| format!("starting the {name} thread"))
}

fn join(handle: JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    handle
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("thread panicked")))
}

/// The one-line status systemd and the demo show.
pub fn status_line(status: &RelayStatus, queue: Option<&QueueStatus>) -> String {
    let queue = queue.map_or_else(
        || "queue ?".to_owned(),
        |q| format!("queue {} ({} on air)", q.len, q.staged),
    );
    format!(
        "{queue}, mqtt {}, {} readings in {} tokens delivered, airtime {:.1}/{:.0} s/h{}",
        if status.ingest.connected {
            "up"
        } else {
            "down"
        },
        status.link.readings_delivered,
        status.link.tokens_delivered,
        status.link.airtime_used_s,
        status.link.airtime_budget_s,
        if status.link.gateway_answering || status.link.tokens_delivered == 0 {
            ""
        } else {
            ", gateway silent"
        }
    )
}

//! `tmc-relay run`: MQTT → durable queue → sealed tokens → LoRa, as one long-running service.
//!
//! Two threads share the queue: [`ingest`] (MQTT, manual acknowledgements after commit) and [`sender`]
//! (seal, stage, send, delete on ACK). A third writes the status snapshot and pings the systemd watchdog while
//! both loops make progress. SIGTERM stops both after the work in hand; nothing acknowledged is lost.

pub mod ingest;
pub mod sender;
pub mod topics;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tmc_envelope::{CounterFile, KeyRing, Reading, Sealer, MAX_TOKEN_LEN};
use tmc_link::{HeaderIdFile, LinkSender, SendPolicy};
use tmc_queue::{QueueStatus, RelayQueue};
use tmc_service::radio::OpenRadio;
use tmc_service::{Notifier, Shutdown, StatusFile, Wakeup, Watchdog};

use crate::assignment::Assignment;
use crate::config::RelayConfig;
use ingest::{IngestSettings, IngestSnapshot, IngestStats};
use sender::{Sender, SenderSettings, SenderSnapshot};

/// Counter reservations per fsync of the counter file: a crash skips at most this many counters.
const COUNTER_BLOCK: u32 = 64;

/// How often the status snapshot is written.
const STATUS_EVERY: Duration = Duration::from_secs(2);

/// What `tmc-relay status` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayStatus {
    pub pid: u32,
    pub started_unix: u64,
    pub updated_unix: u64,
    pub radio: String,
    pub sender_id: u32,
    pub gateway: u8,
    pub running: bool,
    pub ingest: IngestSnapshot,
    pub link: SenderSnapshot,
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs the relay described by `config_path` until SIGTERM/SIGINT.
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
    let queue = Arc::new(RelayQueue::open(
        &config.queue_path(),
        config.queue.capacity,
        config.queue.when_full,
    )?);
    let air_name = format!(
        "relay-{}",
        config.envelope.sender.map_or_else(
            || config.radio.address.unwrap_or(0).to_string(),
            |s| s.to_string()
        )
    );
    let opened = config
        .radio
        .open(config_path, &air_name, u64::from(std::process::id()))?;
    let sender_id = config.envelope.sender.unwrap_or(u32::from(opened.address));
    if let Some((assignment, path)) = Assignment::beside(config_path)? {
        assignment.check(
            &path,
            opened.address,
            sender_id,
            config.envelope.sender.is_some(),
        )?;
    }
    // RadioHead receivers track IDs per node address, so the IDs belong to the address, not to the sender id.
    let header_ids_path = config
        .state_dir
        .join(format!("relay-header-id-{}", opened.address));
    let header_ids = HeaderIdFile::open(&header_ids_path)?;
    let counter = CounterFile::open(
        &config.state_dir.join(format!("relay-counter-{sender_id}")),
        sender_id,
        COUNTER_BLOCK,
    )?;
    let sealer = Sealer::new(&ring, sender_id, counter);
    // The ingest refuses what could never be sent: a single reading that does not fit a frame.
    let size_check = Sealer::new(
        &ring,
        sender_id,
        tmc_envelope::MemoryCounter::starting_at(sender_id, u32::MAX),
    );
    let encoding = config.envelope.encoding;
    let fits_frame = move |topic: &str, payload: &[u8]| {
        let reading = Reading::new(topic, unix_now(), payload.to_vec());
        size_check.on_air_size(&[reading], unix_now(), encoding) <= MAX_TOKEN_LEN
    };
    tracing::info!(
        "relay {sender_id}: {}, gateway {}, queue {} ({} entries waiting)",
        opened.description,
        config.link.gateway,
        config.queue_path().display(),
        queue.len()
    );

    let mut watchdog = Watchdog::new();
    let stored = Arc::new(Wakeup::new());
    let drained = Arc::new(Wakeup::new());
    let ingest_stats = Arc::new(IngestStats::default());
    let sender_stats = Arc::new(Mutex::new(SenderSnapshot::default()));

    let sender_beat = watchdog.heartbeat("sender");
    let policy = SendPolicy {
        rounds: config.link.rounds,
        initial_backoff: Duration::from_secs_f64(config.link.backoff),
        max_backoff: Duration::from_secs_f64(config.link.max_backoff),
    };
    let stop = shutdown.clone();
    let link = LinkSender::new(
        opened.link,
        config.link.gateway,
        policy,
        sender::service_wait(shutdown.clone(), sender_beat.clone()),
        u64::from(std::process::id()),
    )
    .with_stop(move || stop.requested())
    .with_header_ids(header_ids);
    let sender = Sender::new(
        link,
        queue.clone(),
        sealer,
        SenderSettings {
            encoding,
            max_batch: config.envelope.max_batch,
        },
        sender_stats.clone(),
        stored.clone(),
        drained.clone(),
        shutdown.clone(),
        sender_beat,
    );
    let sender_thread = spawn("sender", {
        let shutdown = shutdown.clone();
        move || {
            let result = sender.run();
            shutdown.request();
            result
        }
    })?;

    let ingest_settings = IngestSettings {
        broker: config.mqtt.clone(),
        topics: config.ingest.topics.clone(),
        max_payload: config.ingest.max_payload,
        receive_maximum: config.ingest.receive_maximum,
        dedupe: config.ingest.dedupe,
        subscriptions_record: Some(config.state_dir.join("relay.subscriptions")),
        new_session: options.new_session,
        fits_frame: Box::new(fits_frame),
    };
    let ingest_beat = watchdog.heartbeat("ingest");
    let ingest_thread = spawn("ingest", {
        let (queue, stats, shutdown) = (queue.clone(), ingest_stats.clone(), shutdown.clone());
        move || {
            let result = ingest::run(
                ingest_settings,
                queue,
                stored,
                drained,
                stats,
                shutdown.clone(),
                ingest_beat,
            );
            shutdown.request();
            result
        }
    })?;

    let status_file = StatusFile::new(config.status_path());
    let started = unix_now();
    let snapshot = |running: bool| RelayStatus {
        pid: std::process::id(),
        started_unix: started,
        updated_unix: unix_now(),
        radio: opened.description.clone(),
        sender_id,
        gateway: config.link.gateway,
        running,
        ingest: ingest_stats.snapshot(),
        link: sender_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
    };
    let notifier = Notifier;
    notifier.ready(&status_line(
        &snapshot(true),
        queue.snapshot().ok().as_ref(),
    ));
    let watchdog_every = notifier.watchdog_interval().map(|i| i / 2);
    let stall_limit = notifier
        .watchdog_interval()
        .unwrap_or(Duration::from_secs(60));
    while !shutdown.wait(watchdog_every.unwrap_or(STATUS_EVERY).min(STATUS_EVERY)) {
        let status = snapshot(true);
        if let Err(e) = status_file.write(&status) {
            tracing::warn!("status: {e}");
        }
        notifier.status(&status_line(&status, queue.snapshot().ok().as_ref()));
        let stalled = watchdog.stalled(stall_limit);
        if stalled.is_empty() {
            notifier.watchdog_ping();
        } else {
            tracing::error!("stalled: {}; no watchdog ping", stalled.join(", "));
        }
    }
    notifier.stopping();
    tracing::info!("stopping: finishing the work in hand");
    let ingest_result = join(ingest_thread);
    let sender_result = join(sender_thread);
    let _ = status_file.write(&snapshot(false));
    ingest_result.context("MQTT ingest")?;
    sender_result.context("radio sender")?;
    tracing::info!("stopped; {} entries stay queued", queue.len());
    Ok(())
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .with_context(|| format!("starting the {name} thread"))
}

fn join(handle: std::thread::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
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

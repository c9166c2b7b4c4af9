//! The running receiver: the radio loop, one loop per output, and the service's [`Supervisor`] that writes the
//! status snapshot, tells systemd how things are, and pings its watchdog while every loop is alive.
//!
//! [`Service::start`] takes an opened radio link of any kind (the board, simulated air, the tests' in-process
//! simulator), the key ring and the inbox; the `run` command opens those from the configuration.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tmc_envelope::KeyRing;
use tmc_link::{Clock, PacketRadio, ReliableDatagram};
use tmc_queue::{Inbox, QueueError};
use tmc_service::metrics::{prometheus, MetricsError};
use tmc_service::{MetricsServer, Report, Scrape, Shutdown, StatusFile, Supervisor, Watchdog};

use crate::config::Config;
use crate::gateway::Gateway;
use crate::outputs::file::FileOutput;
use crate::outputs::stdout::StreamOutput;
use crate::outputs::upstream::{Upstream, UpstreamError};
use crate::outputs::{
    file_output_name, run_sync_output, OutputError, SyncOutput, STDOUT, UPSTREAM,
};
use crate::shared::{Meta, Shared, Snapshot};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("[output] file: {0}")]
    File(#[from] OutputError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// A thread that panicked; the service stopped anyway.
#[derive(Debug, thiserror::Error)]
#[error("the {0} thread failed (see the log above)")]
pub struct ThreadFailed(pub String);

/// The radio a service runs on, for the status.
#[derive(Debug, Clone, Default)]
pub struct RadioInfo {
    pub description: String,
    pub address: u8,
}

/// A running receiver.
pub struct Service {
    shared: Arc<Shared>,
    shutdown: Shutdown,
    threads: Vec<(String, JoinHandle<()>)>,
    /// Run by its own thread until the stop; then [`Service::stop`] writes the last snapshot through it.
    supervisor: Arc<Mutex<Supervisor<Arc<Shared>>>>,
    /// Serving `[metrics]`, if configured; stopped with the service.
    metrics: Option<MetricsServer>,
}

impl Service {
    /// Registers the configured outputs (and forgets the ones no longer configured, so they stop holding the
    /// journal back), then starts every loop. A stop is requested through `shutdown`.
    pub fn start<R, C>(
        config: &Config,
        link: ReliableDatagram<R, C>,
        radio: RadioInfo,
        ring: KeyRing,
        inbox: Inbox,
        shutdown: Shutdown,
    ) -> Result<Service, StartError>
    where
        R: PacketRadio + Send + 'static,
        C: Clock + Send + 'static,
    {
        let shared = Arc::new(Shared::new(
            inbox,
            Meta {
                radio: radio.description,
                address: radio.address,
                peers: config.peers.clone(),
                legacy_enabled: config.legacy,
            },
        ));
        let mut wanted = Vec::new();
        if config.stdout {
            wanted.push(STDOUT.to_owned());
        }
        if let Some(path) = &config.file {
            wanted.push(file_output_name(path));
        }
        if config.upstream.is_some() {
            wanted.push(UPSTREAM.to_owned());
        }
        {
            let mut inbox = shared.inbox();
            for old in inbox.outputs()? {
                if !wanted.contains(&old) {
                    tracing::info!(
                        "output {old} is no longer configured: forgetting its cursor ({} reading(s) it had not delivered)",
                        inbox.backlog(&old).unwrap_or(0)
                    );
                    inbox.remove_output(&old)?;
                }
            }
            for name in &wanted {
                // The file output registers itself: a new one adopts the file's current length.
                if !name.starts_with("file:") {
                    inbox.add_output(name)?;
                }
            }
        }
        let file = match &config.file {
            Some(path) => Some(FileOutput::open(path, &shared)?),
            None => None,
        };
        let upstream = match &config.upstream {
            Some(u) => Some(Upstream::new(u.clone())?),
            None => None,
        };

        // Before any loop runs: an address in use fails the start with nothing to stop.
        let metrics = match config.metrics {
            Some(address) => {
                let scraped = shared.clone();
                Some(MetricsServer::start(
                    address,
                    "tmc_receiver",
                    Box::new(move |scrape: &mut Scrape| metrics(&scraped.snapshot(), scrape)),
                )?)
            }
            None => None,
        };

        let mut watchdog = Watchdog::new();
        let mut threads = Loops {
            shared: shared.clone(),
            shutdown: shutdown.clone(),
            threads: Vec::new(),
        };

        let gateway = Gateway::new(link, &config.peers, ring, config.legacy, shared.clone());
        let heartbeat = watchdog.heartbeat("radio");
        let stop = shutdown.clone();
        threads.spawn("radio", move || gateway.run(&stop, &heartbeat))?;

        if config.stdout {
            threads.spawn_sync(StreamOutput::stdout(), &mut watchdog)?;
        }
        if let Some(file) = file {
            threads.spawn_sync(file, &mut watchdog)?;
        }
        if let Some(upstream) = upstream {
            shared.register_output(UPSTREAM, Some(false));
            let heartbeat = watchdog.heartbeat(UPSTREAM);
            let (stop, shared) = (shutdown.clone(), shared.clone());
            threads.spawn("output upstream", move || {
                upstream.run(&shared, &stop, &heartbeat)
            })?;
        }

        let supervisor = Arc::new(Mutex::new(Supervisor::new(
            watchdog,
            StatusFile::new(config.status_path()),
            shared.clone(),
        )));
        {
            let (supervisor, stop) = (supervisor.clone(), shutdown.clone());
            threads.spawn("supervisor", move || {
                lock(&supervisor).run(&stop);
            })?;
        }
        Ok(Service {
            shared,
            shutdown,
            threads: threads.threads,
            supervisor,
            metrics,
        })
    }

    /// The counters, backlogs and waits on them.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn snapshot(&self) -> Snapshot {
        self.shared.snapshot()
    }

    /// Where `[metrics]` are served (the port chosen when configured as 0), if configured.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::address)
    }

    /// Waits up to `timeout` for `done` to hold; see [`Shared::wait_until`].
    pub fn wait_until(
        &self,
        timeout: Duration,
        done: impl FnMut(&Snapshot) -> bool,
    ) -> Option<Snapshot> {
        self.shared.wait_until(timeout, done)
    }

    /// Blocks until a stop is requested (a signal, or [`Shutdown::request`]).
    pub fn wait_for_stop(&self) {
        while !self.shutdown.wait(Duration::from_secs(3600)) {}
    }

    /// Stops every loop after the work in hand, and writes the final snapshot. Errs if a thread panicked.
    pub fn stop(self) -> Result<Snapshot, ThreadFailed> {
        drop(self.metrics);
        self.shutdown.request();
        self.shared.stop();
        let mut failed = None;
        for (name, handle) in self.threads {
            if handle.join().is_err() {
                tracing::error!("the {name} thread panicked");
                failed.get_or_insert(name);
            }
        }
        let snapshot = lock(&self.supervisor).finish();
        match failed {
            Some(name) => Err(ThreadFailed(name)),
            None => Ok(snapshot),
        }
    }
}

/// The supervisor, also when its thread panicked (what it holds stays usable for the last snapshot).
fn lock<T>(supervisor: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    supervisor.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The threads started so far.
struct Loops {
    shared: Arc<Shared>,
    shutdown: Shutdown,
    threads: Vec<(String, JoinHandle<()>)>,
}

impl Loops {
    fn spawn(
        &mut self,
        name: &str,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<(), StartError> {
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(body)
            .map_err(|source| {
                // Whatever already runs must not outlive a failed start.
                self.shutdown.request();
                self.shared.stop();
                StartError::Thread {
                    name: name.to_owned(),
                    source,
                }
            })?;
        self.threads.push((name.to_owned(), handle));
        Ok(())
    }

    fn spawn_sync(
        &mut self,
        output: impl SyncOutput + 'static,
        watchdog: &mut Watchdog,
    ) -> Result<(), StartError> {
        let name = output.name().to_owned();
        self.shared.register_output(&name, None);
        let heartbeat = watchdog.heartbeat(&name);
        let (stop, shared) = (self.shutdown.clone(), self.shared.clone());
        self.spawn(&format!("output {name}"), move || {
            run_sync_output(output, &shared, &stop, &heartbeat)
        })
    }
}

/// What the supervisor writes and tells systemd; a stop wakes the loops waiting on the journal.
impl Report for Shared {
    type Snapshot = Snapshot;

    fn snapshot(&self) -> Snapshot {
        Shared::snapshot(self)
    }

    fn status_line(&self, snapshot: &Snapshot) -> String {
        status_line(snapshot)
    }

    fn wake_loops(&self) {
        self.stop();
    }
}

/// The one-line status systemd shows.
pub fn status_line(s: &Snapshot) -> String {
    let mut line = format!(
        "{} reading(s) stored from {} token(s)",
        s.link.readings_stored, s.link.tokens_stored
    );
    let refused: u64 = s.link.refused.values().sum();
    if refused > 0 {
        line.push_str(&format!(", {refused} refused"));
    }
    for (name, o) in &s.outputs {
        line.push_str(&format!("; {name}: backlog {}", o.backlog));
        if o.connected == Some(false) {
            line.push_str(" (disconnected)");
        }
        if o.error.is_some() && o.connected.is_none() {
            line.push_str(" (failing)");
        }
    }
    line
}

/// The snapshot as Prometheus metrics (`[metrics]`), read at each scrape.
fn metrics(s: &Snapshot, scrape: &mut Scrape) -> Result<(), prometheus::Error> {
    let link = &s.link;
    scrape.counter(
        "frames_heard_total",
        "Packets the radio heard, good or bad.",
        link.frames_heard,
    )?;
    scrape.counter(
        "crc_errors_total",
        "Packets that failed the radio's CRC.",
        link.crc_errors,
    )?;
    scrape.counter(
        "frames_received_total",
        "Tokens the link handed over (new datagrams from peers).",
        link.frames_received,
    )?;
    scrape.counter(
        "tokens_stored_total",
        "Tokens committed to the inbox.",
        link.tokens_stored,
    )?;
    scrape.counter(
        "readings_stored_total",
        "Readings committed to the inbox (readings in).",
        link.readings_stored,
    )?;
    scrape.counter(
        "duplicates_total",
        "Tokens already stored (a relay resent them): acknowledged, not stored again.",
        link.duplicates,
    )?;
    scrape.counter(
        "resent_copies_total",
        "Retries of the token acknowledged last from a node, acknowledged again.",
        link.resent_copies,
    )?;
    // Every refusal by the envelope's reason, plus the link's own drops: one family, by reason.
    let mut rejected: Vec<(&str, u64)> = link
        .refused
        .iter()
        .map(|(reason, n)| (reason.as_str(), *n))
        .collect();
    rejected.extend([
        ("stale", link.stale),
        ("unknown_node", link.unknown_node),
        ("malformed_frame", link.malformed_frames),
        ("commit_failed", link.commit_failures),
    ]);
    scrape.counters_by(
        "tokens_rejected_total",
        "Frames and tokens not stored, by reason.",
        "reason",
        rejected,
    )?;
    scrape.counter(
        "radio_errors_total",
        "Radio errors (SPI, chip not answering).",
        link.radio_errors,
    )?;
    if let Some(rssi) = link.last_rssi_dbm {
        scrape.gauge(
            "last_frame_rssi_dbm",
            "RSSI of the last frame received, dBm.",
            f64::from(rssi),
        )?;
    }
    if let Some(snr) = link.last_snr_db {
        scrape.gauge(
            "last_frame_snr_db",
            "SNR of the last frame received, dB.",
            f64::from(snr),
        )?;
    }
    scrape.histogram(
        "frame_rssi_dbm",
        "RSSI of the frames that carried tokens, dBm.",
        &crate::shared::RSSI_BOUNDS_DBM,
        &link.rssi_dbm.counts,
        link.rssi_dbm.sum,
    )?;
    scrape.histogram(
        "frame_snr_db",
        "SNR of the frames that carried tokens, dB.",
        &crate::shared::SNR_BOUNDS_DB,
        &link.snr_db.counts,
        link.snr_db.sum,
    )?;
    scrape.gauge(
        "relay_airtime_heard_seconds",
        "Airtime of the relays' frames heard in the last hour (tokens and resent copies), seconds.",
        link.airtime_heard_last_hour_ms(crate::shared::unix_now()) as f64 / 1000.0,
    )?;
    if let Some(budget) = link.airtime_budget_ms {
        scrape.gauge(
            "airtime_budget_seconds",
            "The band's airtime budget per hour (its duty cycle), seconds.",
            budget as f64 / 1000.0,
        )?;
    }
    scrape.gauge(
        "journal_readings",
        "Readings in the journal not yet delivered by every output.",
        s.journal as f64,
    )?;
    let outputs = || s.outputs.iter().map(|(name, o)| (name.as_str(), o));
    scrape.counters_by(
        "readings_delivered_total",
        "Readings an output delivered (readings out).",
        "output",
        outputs().map(|(name, o)| (name, o.delivered)),
    )?;
    scrape.gauges_by(
        "output_backlog_readings",
        "Readings an output has not delivered yet.",
        "output",
        outputs().map(|(name, o)| (name, o.backlog as f64)),
    )?;
    scrape.gauges_by(
        "output_failing",
        "1 while an output is failing.",
        "output",
        outputs().map(|(name, o)| (name, f64::from(u8::from(o.error.is_some())))),
    )?;
    scrape.gauges_by(
        "mqtt_connected",
        "1 while an output's broker connection (upstream) is up.",
        "output",
        outputs().filter_map(|(name, o)| o.connected.map(|c| (name, f64::from(u8::from(c))))),
    )?;
    Ok(())
}

//! Where readings go: each output is its own loop over its own cursor in the inbox, exactly as
//! `tmc_queue::Inbox` documents it — read pending records, deliver them, then commit the cursor.
//!
//! - [`stdout`]: JSON lines on standard output (at-least-once across a crash: a pipe cannot be rewound).
//! - [`file`]: an append-only JSON-lines file, each reading exactly once even across crashes.
//! - [`upstream`]: QoS 1 MQTT to an upstream broker, the cursor advanced over the PUBACKed prefix only; with
//!   [`home_assistant`] discovery announcing each sensor to Home Assistant.
//!
//! An output that fails (disk full, broker down) logs once per outage, backs off and tries again; meanwhile the
//! journal keeps its records, so nothing is lost. The others go on independently.

pub mod file;
pub mod home_assistant;
pub mod stdout;
pub mod upstream;

use std::time::{Duration, Instant};

use tmc_queue::QueueError;
use tmc_service::notify::Heartbeat;
use tmc_service::Shutdown;

use crate::shared::Shared;

/// Records an output takes from the journal at a time.
pub const BATCH: usize = 64;
/// Longest an idle output waits before it looks again (and beats its heartbeat).
pub(crate) const IDLE: Duration = Duration::from_secs(1);
pub(crate) const MIN_BACKOFF: Duration = Duration::from_secs(1);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The inbox cursor names of the outputs.
pub const STDOUT: &str = "stdout";
pub const UPSTREAM: &str = "upstream";

/// The cursor name of the file output for `path`. The path is part of it: the cursor's mark is a length *in
/// that file*, so a file output pointed elsewhere starts a cursor of its own instead of truncating a stranger.
pub fn file_output_name(path: &std::path::Path) -> String {
    format!("file:{}", path.display())
}

/// Why an output could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// An output driven by a thread of its own.
pub trait SyncOutput: Send {
    /// Its cursor's name.
    fn name(&self) -> &str;
    /// Delivers one batch of pending records and commits the cursor over it. Returns how many were delivered
    /// (0: nothing was pending).
    fn step(&mut self, shared: &Shared) -> Result<usize, OutputError>;
}

/// Runs `output` until `shutdown`; the batch in hand is finished first.
pub fn run_sync_output(
    mut output: impl SyncOutput,
    shared: &Shared,
    shutdown: &Shutdown,
    heartbeat: &Heartbeat,
) {
    let name = output.name().to_owned();
    let mut outage: Option<Instant> = None;
    let mut backoff = MIN_BACKOFF;
    loop {
        heartbeat.beat();
        if shutdown.requested() || shared.stopping() {
            return;
        }
        // Read the generation before looking at the journal: a commit in between then ends the wait at once.
        let seen = shared.journal_generation();
        match output.step(shared) {
            Ok(n) => {
                if let Some(since) = outage.take() {
                    tracing::info!(
                        "output {name}: delivering again after {} s",
                        since.elapsed().as_secs()
                    );
                    shared.update_output(&name, |o| o.error = None);
                }
                backoff = MIN_BACKOFF;
                if n == 0 {
                    shared.wait_journal(seen, IDLE);
                } else {
                    shared.update_output(&name, |o| o.delivered += n as u64);
                }
            }
            Err(e) => {
                let text = e.to_string();
                if outage.is_none() {
                    tracing::error!(
                        "output {name}: {text}; readings wait in the journal, retrying with back-off"
                    );
                    outage = Some(Instant::now());
                }
                shared.update_output(&name, |o| o.error = Some(text));
                pause(shutdown, heartbeat, backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Waits `duration` (cut short by a stop), beating `heartbeat`: a failing output is still a live loop.
fn pause(shutdown: &Shutdown, heartbeat: &Heartbeat, duration: Duration) {
    let deadline = Instant::now() + duration;
    loop {
        heartbeat.beat();
        let now = Instant::now();
        if now >= deadline || shutdown.wait((deadline - now).min(IDLE)) {
            return;
        }
    }
}

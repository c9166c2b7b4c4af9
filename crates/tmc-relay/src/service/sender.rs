//! Durable queue → radio.
//!
//! 1. After a start, every token staged before (sealed and possibly sent, never acknowledged) goes out again
//!    byte for byte: the gateway either stores it now or recognises it by its (sender, counter).
//! 2. Then, while entries wait: once the duty-cycle budget allows a whole frame, choose among the oldest
//!    [`CANDIDATES`] the oldest and as many of its topic's (then other topics') readings as fit one frame, up
//!    to `max_batch` ([`Sealer::choose`]); seal them, **stage** the token (token and entries in one
//!    transaction) and send it as a reliable datagram.
//! 3. Only the gateway's ACK deletes the entries. A silent gateway leaves the token staged; it is sent again
//!    after the link's back-off, indefinitely, and the queue keeps filling behind it.
//!
//! The duty-cycle budget is never exceeded: the link waits for it. Waits are cut into short slices that beat the
//! watchdog and notice a stop request. The airtime spent is kept in the state directory before each frame goes
//! on air (see [`AirtimeWatch`]), so a restart within the hour does not reset the budget.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tmc_envelope::{CounterFile, Encoding, Reading, Sealer, MAX_TOKEN_LEN};
use tmc_link::{
    AirtimeLedgerFile, Clock, LinkError, LinkSender, OnAir, PacketRadio, ReliableDatagram,
    SendError, TransmitObserver,
};
use tmc_queue::{Entry, EntryId};
use tmc_service::{Heartbeat, Shutdown};

use super::Shared;

/// Counters of the sender (shared with the status writer).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderSnapshot {
    /// Tokens the gateway acknowledged.
    pub tokens_delivered: u64,
    /// Readings those tokens carried.
    pub readings_delivered: u64,
    /// Tokens resent after a restart (staged before it).
    pub tokens_resent_after_restart: u64,
    /// Frames put on air (data and retries, not ACKs).
    pub frames_sent: u64,
    /// Retransmissions by the reliable layer.
    pub retries: u64,
    /// Rounds without any ACK.
    pub silent_rounds: u64,
    /// Times the sender waited for the duty-cycle budget, and for how long in total.
    pub duty_cycle_waits: u64,
    pub duty_cycle_wait_s: f64,
    /// Readings too large for any frame, dropped (only after a configuration change).
    pub dropped_oversized: u64,
    /// Radio errors (SPI, chip not answering).
    pub radio_errors: u64,
    /// Airtime used in the duty-cycle window (the last hour) and the budget.
    pub airtime_used_s: f64,
    pub airtime_budget_s: f64,
    /// Readings per token of the last token sent.
    pub last_batch: u64,
    /// Whether the gateway answered the last round.
    pub gateway_answering: bool,
    /// RadioHead header ID of the last datagram sent (none yet since the start). IDs go on across restarts.
    #[serde(default)]
    pub last_header_id: Option<u8>,
}

/// How many of the oldest queued readings a token's readings are chosen from: enough for several frames
/// of one sensor's readings while five sensors' readings interleave.
pub const CANDIDATES: usize = 256;

/// What the sender needs besides the link.
pub struct SenderSettings {
    pub encoding: Encoding,
    pub max_batch: usize,
}

pub struct Sender<R, C, W> {
    link: LinkSender<R, C, W>,
    sealer: Sealer<CounterFile>,
    settings: SenderSettings,
    shared: Shared,
    heartbeat: Heartbeat,
}

impl<R: PacketRadio, C: Clock, W: tmc_link::Wait> Sender<R, C, W> {
    /// A sender of the entries in `shared`'s queue over `link`, sealed by `sealer`; it beats `heartbeat`.
    pub fn new(
        link: LinkSender<R, C, W>,
        sealer: Sealer<CounterFile>,
        settings: SenderSettings,
        shared: Shared,
        heartbeat: Heartbeat,
    ) -> Self {
        Sender {
            link,
            sealer,
            settings,
            shared,
            heartbeat,
        }
    }

    /// Runs until a stop is requested. A token on air when the stop comes stays staged for the next start.
    pub fn run(mut self) -> anyhow::Result<()> {
        // The airtime restored from the ledger shows before the first frame (which may have to wait for it).
        self.publish_link_stats();
        for staged in self.shared.queue.staged()? {
            self.lock_stats().tokens_resent_after_restart += 1;
            tracing::info!(
                "resending a token staged before the restart ({} readings)",
                staged.ids.len()
            );
            if !self.deliver(&staged.token, &staged.ids)? {
                return Ok(());
            }
        }
        while !self.shared.shutdown.requested() {
            self.heartbeat.beat();
            self.publish_link_stats();
            if self.shared.queue.peek_batch(1)?.is_empty() {
                self.shared.stored.wait(Duration::from_millis(500));
                continue;
            }
            // A whole frame's budget first, then the choice: readings that arrive during the wait fill the
            // frame instead of following in frames of their own.
            match self.link.wait_for_budget(MAX_TOKEN_LEN) {
                Ok(()) => {}
                Err(SendError::Stopped) => break,
                Err(e) => return Err(e.into()),
            }
            self.publish_link_stats();
            let entries = self.shared.queue.peek_batch(CANDIDATES)?;
            let Some((readings, ids)) = self.next_batch(&entries)? else {
                continue;
            };
            let sealed = self
                .sealer
                .seal(&readings, super::unix_now(), self.settings.encoding)?;
            self.shared.queue.stage(&ids, &sealed.bytes)?;
            if !self.deliver(&sealed.bytes, &ids)? {
                break;
            }
        }
        self.publish_link_stats();
        Ok(())
    }

    /// The readings of the next token, chosen from `entries` (oldest first). A single entry that cannot fit
    /// any frame is deleted and counted (ingest refuses those; only a changed configuration can leave one
    /// behind).
    fn next_batch(
        &mut self,
        entries: &[Entry],
    ) -> anyhow::Result<Option<(Vec<Reading>, Vec<EntryId>)>> {
        let now = super::unix_now();
        let candidates: Vec<Reading> = entries
            .iter()
            .map(|e| Reading::new(e.topic.clone(), e.time, e.payload.clone()))
            .collect();
        let encoding = self.settings.encoding;
        let chosen = self
            .sealer
            .choose(&candidates, now, encoding, self.settings.max_batch);
        let readings: Vec<Reading> = chosen.iter().map(|&i| candidates[i].clone()).collect();
        if self.sealer.on_air_size(&readings, now, encoding) > MAX_TOKEN_LEN {
            tracing::error!(
                "a queued reading on {} ({} bytes) cannot fit any frame: dropped",
                entries[0].topic,
                entries[0].payload.len()
            );
            self.shared.queue.ack(&[entries[0].id])?;
            self.lock_stats().dropped_oversized += 1;
            return Ok(None);
        }
        let ids = chosen.iter().map(|&i| entries[i].id).collect();
        Ok(Some((readings, ids)))
    }

    /// Sends a staged token until the gateway acknowledges it (true) or a stop is requested (false).
    fn deliver(&mut self, token: &[u8], ids: &[EntryId]) -> anyhow::Result<bool> {
        let mut silent_logged = false;
        loop {
            self.heartbeat.beat();
            match self.link.send(token) {
                Ok(delivered) => {
                    self.shared.queue.ack(ids)?;
                    self.shared.drained.ring();
                    let mut stats = self.lock_stats();
                    stats.tokens_delivered += 1;
                    stats.readings_delivered += ids.len() as u64;
                    stats.last_batch = ids.len() as u64;
                    stats.gateway_answering = true;
                    if silent_logged {
                        tracing::info!("gateway answering again");
                    }
                    tracing::debug!(
                        "token of {} readings delivered after {} round(s)",
                        ids.len(),
                        delivered.rounds
                    );
                    return Ok(true);
                }
                Err(SendError::Stopped) => return Ok(false),
                // The state directory cannot keep the IDs: sending on could repeat one after the next restart.
                Err(e @ SendError::HeaderIds(_)) => return Err(e.into()),
                // Nor the airtime: sending on could exceed the duty cycle after the next restart.
                Err(SendError::Link(LinkError::Observer(e))) => {
                    return Err(anyhow::Error::new(e).context("the duty-cycle ledger"))
                }
                Err(SendError::Silent { to, rounds }) => {
                    self.lock_stats().gateway_answering = false;
                    if !silent_logged {
                        tracing::warn!("gateway {to} silent for {rounds} rounds; the token stays queued and is retried");
                        silent_logged = true;
                    }
                    self.publish_link_stats();
                }
                Err(SendError::Link(e)) => {
                    self.lock_stats().radio_errors += 1;
                    tracing::error!("radio: {e}");
                    if self.shared.shutdown.wait(Duration::from_secs(1)) {
                        return Ok(false);
                    }
                }
            }
        }
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, SenderSnapshot> {
        self.shared
            .sender_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn publish_link_stats(&self) {
        let link = self.link.stats();
        let datagram = self.link.link().datagram();
        let now = datagram.clock().now();
        let (used, budget) = datagram
            .limiter()
            .map_or((Duration::ZERO, Duration::ZERO), |l| {
                (l.used(now), l.budget())
            });
        let mut stats = self.lock_stats();
        stats.silent_rounds = link.silent_rounds;
        stats.duty_cycle_waits = link.duty_cycle_waits;
        stats.duty_cycle_wait_s = link.duty_cycle_wait.as_secs_f64();
        stats.airtime_used_s = used.as_secs_f64();
        stats.airtime_budget_s = budget.as_secs_f64();
    }
}

/// Sees every frame the relay's radio sends, while a delivery's retries are still going on: it keeps the
/// duty-cycle ledger in the state directory (before the frame goes on air) and the status counters live.
pub struct AirtimeWatch {
    ledger: AirtimeLedgerFile,
    stats: Arc<Mutex<SenderSnapshot>>,
}

impl AirtimeWatch {
    /// Restores the airtime `link` used before a restart from the ledger at `path` and watches `link` from now
    /// on. A ledger that cannot be read is taken as the whole budget spent just now (the law is never
    /// under-counted), with a warning; the next frame rewrites it.
    pub fn install<R: PacketRadio, C: Clock>(
        link: &mut ReliableDatagram<R, C>,
        path: &Path,
        stats: Arc<Mutex<SenderSnapshot>>,
    ) {
        let ledger = AirtimeLedgerFile::new(path);
        let datagram = link.datagram_mut();
        let now = datagram.clock().now();
        if let Some(limiter) = datagram.limiter_mut() {
            match ledger.load(tmc_link::unix_time()) {
                Ok(past) => limiter.restore(now, &past),
                Err(e) => {
                    tracing::warn!("{e}: assuming the whole duty-cycle budget was spent just now");
                    limiter.assume_budget_spent(now);
                }
            }
        }
        datagram.set_observer(Box::new(AirtimeWatch { ledger, stats }));
    }
}

impl TransmitObserver for AirtimeWatch {
    fn before_transmit(&mut self, frame: &OnAir<'_>) -> std::io::Result<()> {
        let Some(limiter) = frame.limiter else {
            return Ok(());
        };
        self.ledger
            .save(&limiter.ledger(frame.start), tmc_link::unix_time())
            .map_err(std::io::Error::other)
    }

    fn transmitted(&mut self, frame: &OnAir<'_>) {
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        if !frame.header.is_ack() {
            stats.frames_sent += 1;
            stats.last_header_id = Some(frame.header.id);
        }
        if frame.header.is_retry() {
            stats.retries += 1;
        }
        if let Some(limiter) = frame.limiter {
            stats.airtime_used_s = limiter.used(frame.start + frame.airtime).as_secs_f64();
        }
    }
}

/// A wait in slices of at most a second that beats the watchdog and ends early on a stop request.
pub fn service_wait(shutdown: Shutdown, heartbeat: Heartbeat) -> impl FnMut(Duration) {
    move |duration| {
        let mut left = duration;
        while !left.is_zero() {
            heartbeat.beat();
            let slice = left.min(Duration::from_secs(1));
            if shutdown.wait(slice) {
                return;
            }
            left -= slice;
        }
    }
}

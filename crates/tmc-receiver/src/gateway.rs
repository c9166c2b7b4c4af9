//! The radio loop: tokens from the relays → opened → committed to the inbox → acknowledged on the radio.
//!
//! Generic over the radio and its clock, so that the board's SX1276, the simulated air of a service, and the
//! in-process simulator of the tests all run the same loop.
//!
//! What happens to each token the link hands over (not yet acknowledged, see `tmc_link`):
//!
//! | token                                   | inbox          | radio ACK | counted as            |
//! |-----------------------------------------|----------------|-----------|-----------------------|
//! | new, opens                              | committed      | yes       | `tokens_stored`       |
//! | already committed (replay, relay resend)| —              | yes       | `duplicates`          |
//! | too far behind its sender's counter     | —              | yes       | `stale`               |
//! | forged, garbled, unknown key            | —              | **no**    | `refused[reason]`     |
//! | authentic but undecodable payload       | —              | yes       | `refused[invalid_payload]` |
//! | opens, but the inbox fails (disk)       | —              | **no**    | `commit_failures`     |
//! | legacy frame (`legacy = true`)          | committed      | yes       | `legacy_frames`       |
//!
//! Before that, the link (`tmc_link::LinkReceiver`) counts what never becomes a token: CRC errors, packets too
//! short for a header, frames for other nodes, stray ACKs, frames from non-peers, and retries of the token
//! acknowledged last (same ID and bytes, within the retry window: acknowledged again). Every packet heard ends
//! in exactly one of these counters or the table's (`LinkCounters::fates` = `frames_heard`).
//!
//! Duplicates are acknowledged so that a relay that missed our ACK stops resending. A refused token is not: the
//! relay (or the forger) hears nothing. An authentic token whose payload cannot be decoded is a sender bug that
//! no resend will fix; acknowledging it keeps it from blocking the relay's queue forever (it is logged as an
//! error). After a failed commit the opener is rebuilt from the inbox, because its in-memory replay state already
//! accepted the token that was not stored, and would refuse the relay's resend as a replay.
//!
//! Logs name the node, the sender and the reason, never token bytes, keys or plaintext.

use std::sync::Arc;
use std::time::Duration;

use tmc_envelope::legacy::{self, LegacyKeys, LEGACY_TOPIC};
use tmc_envelope::{detect, KeyRing, OpenError, Opener, Reading, ReplayError, TokenFormat};
use tmc_link::{
    Clock, LinkError, LinkReceiver, PacketRadio, Received, ReceiverStats, ReliableDatagram,
};
use tmc_queue::Committed;
use tmc_service::notify::Heartbeat;
use tmc_service::Shutdown;

use crate::sender_watch::{SenderWatch, Verdict};
use crate::shared::{unix_now, FrameHeard, Shared};

/// How long one receive waits before the loop checks for a stop and beats its heartbeat.
const RECEIVE_SLICE: Duration = Duration::from_secs(1);
/// Pause after a radio error before trying again.
const RADIO_RETRY: Duration = Duration::from_secs(1);

/// What happened to one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed and acknowledged.
    Stored { readings: usize, legacy: bool },
    /// Already committed (or too old to tell: `stale`): acknowledged, nothing stored.
    Duplicate { stale: bool },
    /// Refused for `reason`; acknowledged only for an authentic but undecodable payload.
    Refused {
        reason: &'static str,
        acknowledged: bool,
    },
    /// It opened, but the inbox failed: not acknowledged, so the relay sends it again.
    NotStored,
}

/// The gateway's end of the link, with the inbox behind it.
pub struct Gateway<R, C> {
    rx: LinkReceiver<R, C>,
    /// The link's counters as last copied to the status.
    link_stats: ReceiverStats,
    /// Airtime of the last token's frame: a resent copy heard later is the same bytes again.
    last_airtime_ms: u64,
    shared: Arc<Shared>,
    ring: KeyRing,
    opener: Opener,
    legacy: Option<LegacyKeys>,
    watch: SenderWatch,
}

impl<R: PacketRadio, C: Clock> Gateway<R, C> {
    /// Accepts tokens from `peers` over `link`, opened with `ring` and the inbox's replay state. With `legacy`, the
    /// existing deployment's frames are accepted too (insecure: see `tmc_envelope::legacy`).
    pub fn new(
        link: ReliableDatagram<R, C>,
        peers: &[u8],
        ring: KeyRing,
        legacy: bool,
        shared: Arc<Shared>,
    ) -> Self {
        let opener = Opener::new(ring.clone(), shared.inbox().replay_guard().clone());
        let budget = link
            .datagram()
            .limiter()
            .map(|l| l.budget().as_millis() as u64);
        shared.update_link(|l| l.airtime_budget_ms = budget);
        Gateway {
            rx: LinkReceiver::new(link).with_peers(peers),
            link_stats: ReceiverStats::default(),
            last_airtime_ms: 0,
            shared,
            ring,
            opener,
            legacy: legacy.then(LegacyKeys::default),
            watch: SenderWatch::default(),
        }
    }

    /// Receives and handles at most one token, waiting up to `timeout`.
    pub fn step(&mut self, timeout: Duration) -> Result<Option<Outcome>, LinkError> {
        let received = self.rx.receive(timeout);
        let stats = self.rx.stats();
        let received = match received {
            Ok(Some(received)) => received,
            other => {
                self.count(stats, None);
                return other.map(|_| None);
            }
        };
        let outcome = match (&self.legacy, detect(&received.token)) {
            (Some(keys), Ok(TokenFormat::Legacy)) => {
                let keys = keys.clone();
                self.handle_legacy(&received, &keys)
            }
            _ => self.handle(&received),
        };
        self.count(stats, Some((&received, &outcome)));
        Ok(Some(outcome))
    }

    /// Copies the link's counters and the fate of the token in hand to the status in one update, so that a
    /// snapshot taken at any moment accounts for every packet heard (a token counted as heard is also counted
    /// with its fate).
    fn count(&mut self, stats: ReceiverStats, token: Option<(&Received, &Outcome)>) {
        if stats == self.link_stats && token.is_none() {
            return;
        }
        let strangers = stats
            .unknown_node
            .saturating_sub(self.link_stats.unknown_node);
        if strangers > 0 {
            tracing::warn!(
                "{strangers} frame(s) from nodes outside [link] peers: dropped, not acknowledged"
            );
        }
        let copies = stats.retries.saturating_sub(self.link_stats.retries);
        let airtime_ms = token.map(|(received, _)| {
            // RadioHead's four header bytes, then the token.
            let frame_len = received.token.len() + 4;
            let airtime = self.rx.link().datagram().radio().time_on_air(frame_len);
            airtime.as_millis() as u64
        });
        let last_airtime_ms = self.last_airtime_ms;
        self.shared.update_link(|l| {
            if copies > 0 {
                // Resent copies of the token acknowledged last: its bytes again.
                l.add_airtime(unix_now(), last_airtime_ms * copies);
            }
            l.frames_heard = stats.heard;
            l.crc_errors = stats.crc_errors;
            l.malformed_frames = stats.malformed;
            l.other_node = stats.other_node;
            l.stray_acks = stats.stray_acks;
            l.unknown_node = stats.unknown_node;
            l.resent_copies = stats.retries;
            let Some((received, outcome)) = token else {
                return;
            };
            l.frames_received += 1;
            let now = unix_now();
            let snr_db = f32::from(received.snr_quarter_db) / 4.0;
            l.last_frame_unix = Some(now);
            l.last_rssi_dbm = Some(received.rssi_dbm);
            l.last_snr_db = Some(snr_db);
            l.heard(FrameHeard {
                n: l.frames_received,
                unix: now,
                from: received.from,
                rssi_dbm: received.rssi_dbm,
                snr_db,
                airtime_ms: airtime_ms.unwrap_or(0),
            });
            match *outcome {
                Outcome::Stored { readings, legacy } => {
                    l.tokens_stored += 1;
                    l.readings_stored += readings as u64;
                    l.legacy_frames += u64::from(legacy);
                    l.last_reading_unix = l.last_frame_unix;
                }
                Outcome::Duplicate { stale: true } => l.stale += 1,
                Outcome::Duplicate { stale: false } => l.duplicates += 1,
                Outcome::Refused { reason, .. } => {
                    *l.refused.entry(reason.to_owned()).or_default() += 1;
                }
                Outcome::NotStored => l.commit_failures += 1,
            }
        });
        self.link_stats = stats;
        if let Some(ms) = airtime_ms {
            self.last_airtime_ms = ms;
        }
    }

    /// Runs until `shutdown`: the token in hand is always finished (committed and acknowledged) first.
    pub fn run(mut self, shutdown: &Shutdown, heartbeat: &Heartbeat) {
        let mut failing = false;
        while !shutdown.requested() {
            match self.step(RECEIVE_SLICE) {
                Ok(_) => {
                    // Only a working radio beats: one that keeps failing stops the watchdog pings, and systemd
                    // restarts the service (which resets the radio).
                    heartbeat.beat();
                    if failing {
                        tracing::info!("radio: receiving again");
                        failing = false;
                    }
                }
                Err(e) => {
                    self.shared.update_link(|l| l.radio_errors += 1);
                    if !failing {
                        tracing::error!("radio: {e}; retrying every {RADIO_RETRY:?}");
                        failing = true;
                    }
                    shutdown.wait(RADIO_RETRY);
                }
            }
        }
    }

    fn handle(&mut self, received: &Received) -> Outcome {
        let from = received.from;
        let opened = match self.opener.open(&received.token) {
            Ok(opened) => opened,
            Err(OpenError::Replay(e)) => return self.duplicate(received, &e),
            Err(e @ OpenError::Payload(_)) => {
                tracing::error!(
                    "node {from}: authentic token with an undecodable payload, acknowledged and dropped: {e}"
                );
                self.confirm(received);
                return Outcome::Refused {
                    reason: "invalid_payload",
                    acknowledged: true,
                };
            }
            Err(OpenError::LegacyFormat) => {
                tracing::warn!(
                    "node {from}: legacy frame refused: the legacy profile is off ([envelope] legacy = true accepts it, insecurely)"
                );
                return Outcome::Refused {
                    reason: "legacy_disabled",
                    acknowledged: false,
                };
            }
            Err(e) => {
                tracing::warn!("node {from}: token refused, not acknowledged: {e}");
                return Outcome::Refused {
                    reason: reason_of(&e),
                    acknowledged: false,
                };
            }
        };
        let committed = self.shared.inbox().commit(&opened);
        match committed {
            Ok(Committed::Stored { .. }) => {
                let readings = opened.readings.len();
                tracing::info!(
                    "node {from}: sender {} counter {}: {readings} reading(s) stored",
                    opened.sender,
                    opened.counter
                );
                self.watch
                    .stored(opened.sender, opened.counter, &received.token);
                self.stored(received);
                Outcome::Stored {
                    readings,
                    legacy: false,
                }
            }
            Ok(Committed::Duplicate(e)) => self.duplicate(received, &e),
            Err(e) => {
                tracing::error!(
                    "node {from}: sender {} counter {} not stored, not acknowledged (the relay sends it again): {e}",
                    opened.sender,
                    opened.counter
                );
                // The opener accepted the counter in memory; the inbox did not. Take the inbox's word again.
                self.opener = Opener::new(
                    self.ring.clone(),
                    self.shared.inbox().replay_guard().clone(),
                );
                Outcome::NotStored
            }
        }
    }

    fn handle_legacy(&mut self, received: &Received, keys: &LegacyKeys) -> Outcome {
        let from = received.from;
        let plaintext = match legacy::open(keys, &received.token) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("node {from}: legacy frame refused, not acknowledged: {e}");
                let reason = match e {
                    OpenError::BadSignature => "legacy_bad_signature",
                    _ => "legacy_invalid",
                };
                return Outcome::Refused {
                    reason,
                    acknowledged: false,
                };
            }
        };
        let reading = Reading::new(LEGACY_TOPIC, unix_now(), plaintext);
        let committed = self.shared.inbox().commit_legacy(from, &[reading]);
        match committed {
            Ok(_) => {
                tracing::warn!(
                    "node {from}: insecure legacy profile: frame stored without sender authentication or replay protection (migrate the relay to the secure profile)"
                );
                self.stored(received);
                Outcome::Stored {
                    readings: 1,
                    legacy: true,
                }
            }
            Err(e) => {
                tracing::error!("node {from}: legacy frame not stored, not acknowledged: {e}");
                Outcome::NotStored
            }
        }
    }

    fn stored(&mut self, received: &Received) {
        self.confirm(received);
        self.shared.journal_grew();
    }

    fn duplicate(&mut self, received: &Received, e: &ReplayError) -> Outcome {
        let stale = matches!(e, ReplayError::Stale { .. });
        let (sender, verdict) = match *e {
            ReplayError::Replayed { sender, counter } => (
                sender,
                self.watch.replayed(sender, counter, &received.token),
            ),
            ReplayError::Stale { sender, .. } => (sender, self.watch.stale(sender)),
        };
        if let Verdict::Conflict { count, warn } = verdict {
            if warn {
                tracing::warn!(
                    "sender {sender}: {count} tokens reuse counters another token of this sender took, or fall far                      behind its newest: two relays are likely sealing with sender id {sender} (each relay needs its                      own: provision the boards with tmc-provision, which assigns them), or this relay's counter file                      was lost or restored; one relay's readings are being refused as replays"
                );
            }
            self.shared.update_link(|l| {
                l.sender_conflicts.insert(sender.to_string(), count);
            });
        }
        tracing::warn!(
            "node {}: {e}; acknowledged, not stored again",
            received.from
        );
        self.confirm(received);
        Outcome::Duplicate { stale }
    }

    fn confirm(&mut self, received: &Received) {
        // A lost ACK costs only a resend, which the inbox recognises as a duplicate.
        if let Err(e) = self.rx.confirm(received) {
            tracing::warn!(
                "node {}: ACK not sent ({e}); the relay will resend, and the copy is recognised",
                received.from
            );
        }
    }
}

/// The reason key of a refused token, for the counters.
fn reason_of(e: &OpenError) -> &'static str {
    match e {
        OpenError::Empty => "empty",
        OpenError::Malformed { .. } => "malformed",
        OpenError::UnsupportedAlg(_) => "unsupported_alg",
        OpenError::UnknownKid { .. } => "unknown_kid",
        OpenError::BadSignature => "bad_signature",
        OpenError::Replay(_) => "replay",
        OpenError::Payload(_) => "invalid_payload",
        OpenError::Legacy(_) => "legacy_invalid",
        OpenError::LegacyFormat => "legacy_disabled",
    }
}

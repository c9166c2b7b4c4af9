//! Tokens over the LoRa link: the relay's [`LinkSender`] and the gateway's [`LinkReceiver`], on top of
//! `tmc_radio::ReliableDatagram`.
//!
//! # Sender
//! [`LinkSender::send`] returns only when the gateway acknowledged the token ([`Delivered`]) or after
//! [`SendPolicy::rounds`] silent rounds ([`SendError::Silent`]). A round is one `send_to_wait` (the first
//! transmission and the reliable layer's retries). Between rounds it backs off exponentially, with jitter, up to
//! [`SendPolicy::max_backoff`]. The duty-cycle budget is never exceeded: the datagram layer's limiter refuses a
//! frame that does not fit, and the sender then waits exactly as long as the limiter says and tries again (this
//! wait does not count as a silent round). All waiting goes through a [`Wait`], so that the simulator's virtual
//! time (or a shutdown-aware sleep) can stand in for `std::thread::sleep`.
//!
//! # Receiver
//! [`LinkReceiver::receive`] hands each new token to the application **without acknowledging it**; the
//! application stores it durably and then calls [`LinkReceiver::confirm`], which sends the radio ACK. A gateway
//! that crashes between the two loses nothing: the relay hears no ACK and sends the token again, and the store
//! recognises the copy by the envelope's (sender, counter). A token the store refuses as a duplicate is
//! confirmed too, so the relay stops resending it.
//!
//! The only copies swallowed below the application are the reliable layer's: a retry of the datagram confirmed
//! last from that node, same ID and bytes, within the retry window (see `tmc_radio::reliable`). Everything else
//! goes up, including a token the relay sends again under a new ID after a silent round or a restart: the store
//! (`tmc-queue`'s inbox, by the envelope's sender and counter) is the one authority on duplicates, and it
//! survives restarts where this layer's memory does not. Frames from nodes outside
//! [`LinkReceiver::with_peers`] are counted, dropped and not acknowledged.
//!
//! # Header IDs across restarts
//! A RadioHead receiver drops a new datagram whose ID equals the last one it delivered from that node. A relay
//! that restarted numbering at 1 would lose its first token to such a gateway whenever the last ID before the
//! restart was 1, so the sender keeps its IDs in a [`HeaderIdFile`] (reserved ahead of use, like the envelope's
//! counters): the first ID after a restart always differs from the last one before it.
//!
//! # Airtime across restarts
//! The duty-cycle limiter lives in memory; an [`AirtimeLedgerFile`] keeps what it counted (written before each
//! transmission, never while idle), so that a restarted sender starts with the airtime it used in the last hour.

mod ledger;

use std::path::Path;
use std::time::Duration;

pub use ledger::{unix_time, AirtimeLedgerFile, LedgerError};

use tmc_secret_file::{ReservedSequence, SequenceError};

/// The radio underneath, as much of it as the relay and the receiver need: they talk to this one layer. (Opening
/// a radio from a configuration is `tmc_service::radio`'s business.)
pub use tmc_radio::{
    airtime_report, time_on_air, AirtimeReport, Bandwidth, Clock, CodingRate, DutyCycle,
    DutyCycleLimiter, Frame, Header, LinkError, ModemConfig, OnAir, PacketRadio, PastTransmission,
    RadioConfig, ReceivedFrame, ReliableDatagram, SpreadingFactor, TransmitObserver, BROADCAST,
};

/// Header IDs reserved per write of a [`HeaderIdFile`]: fewer than 256, so that the first ID after a crash is
/// never the last one used before it.
const HEADER_ID_BLOCK: u64 = 64;

/// The sender's RadioHead header IDs, persisted (one write per 64 datagrams, none while idle).
#[derive(Debug)]
pub struct HeaderIdFile {
    sequence: ReservedSequence,
}

impl HeaderIdFile {
    /// Opens (or starts) the ID sequence kept in `path`.
    pub fn open(path: &Path) -> Result<Self, SequenceError> {
        Ok(HeaderIdFile {
            sequence: ReservedSequence::open(path, HEADER_ID_BLOCK, u64::MAX)?,
        })
    }

    /// The ID for the next datagram: the sequence's low byte, plus one so that a new sender starts at 1 as
    /// RadioHead's does.
    pub fn take(&mut self) -> Result<u8, SequenceError> {
        let [low, ..] = self.sequence.take()?.to_le_bytes();
        Ok(low.wrapping_add(1))
    }
}

/// Something that waits (real time, virtual time, or a sleep that a shutdown can cut short).
pub trait Wait {
    fn wait(&mut self, duration: Duration);
}

impl<F: FnMut(Duration)> Wait for F {
    fn wait(&mut self, duration: Duration) {
        self(duration)
    }
}

/// `std::thread::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadSleep;

impl Wait for ThreadSleep {
    fn wait(&mut self, duration: Duration) {
        std::thread::sleep(duration)
    }
}

/// How hard the sender tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendPolicy {
    /// Silent rounds before [`SendError::Silent`] (the caller keeps the token queued and tries again later).
    pub rounds: u32,
    /// Back-off after the first silent round; doubles each round.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        SendPolicy {
            rounds: 5,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// A token the gateway acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Rounds it took (1: the first `send_to_wait` succeeded).
    pub rounds: u32,
    /// Transmissions in the successful round.
    pub attempts: u8,
    /// Time spent waiting for the duty-cycle budget.
    pub duty_cycle_wait: Duration,
    /// Time spent backing off after silent rounds.
    pub backoff: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("gateway {to} silent: no ACK after {rounds} rounds")]
    Silent { to: u8, rounds: u32 },
    /// The stop condition ([`LinkSender::with_stop`]) became true: the token may or may not have arrived.
    #[error("stopped before the gateway acknowledged the token")]
    Stopped,
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("header IDs: {0}")]
    HeaderIds(#[from] SequenceError),
}

/// Counters of the sender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    pub delivered: u64,
    pub silent_rounds: u64,
    pub given_up: u64,
    pub duty_cycle_waits: u64,
    pub duty_cycle_wait: Duration,
}

/// The relay's end.
pub struct LinkSender<R, C, W> {
    link: ReliableDatagram<R, C>,
    gateway: u8,
    policy: SendPolicy,
    wait: W,
    rng: u64,
    stats: SenderStats,
    stop: Option<Box<dyn Fn() -> bool + Send>>,
    header_ids: Option<HeaderIdFile>,
    /// Clock instant before which [`Self::wait_for_budget`] keeps the next token back: the off time of the
    /// airtime the last send spent.
    paced_until: Option<Duration>,
}

impl<R: PacketRadio, C: Clock, W: Wait> LinkSender<R, C, W> {
    /// Sends to node `gateway` over `link` (give its datagram layer the band's duty-cycle limiter).
    pub fn new(
        link: ReliableDatagram<R, C>,
        gateway: u8,
        policy: SendPolicy,
        wait: W,
        seed: u64,
    ) -> Self {
        LinkSender {
            link,
            gateway,
            policy,
            wait,
            rng: seed | 1,
            stats: SenderStats::default(),
            stop: None,
            header_ids: None,
            paced_until: None,
        }
    }

    /// Takes every datagram's header ID from `ids`, so that IDs go on across restarts (see the module docs).
    pub fn with_header_ids(mut self, ids: HeaderIdFile) -> Self {
        self.header_ids = Some(ids);
        self
    }

    /// Gives up a send (with [`SendError::Stopped`]) between rounds and after every wait once `stop` returns
    /// true: a service stopping on SIGTERM does not sit out a duty-cycle wait or a back-off. The round in
    /// progress (one transmission and its ACK wait, with the reliable layer's retries) is always finished.
    pub fn with_stop(mut self, stop: impl Fn() -> bool + Send + 'static) -> Self {
        self.stop = Some(Box::new(stop));
        self
    }

    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| stop())
    }

    pub fn link(&self) -> &ReliableDatagram<R, C> {
        &self.link
    }

    pub fn stats(&self) -> SenderStats {
        self.stats
    }

    /// Waits (counted as a duty-cycle wait) until the budget lets a frame carrying `token_len` bytes start
    /// and, once half the budget is used, until the last send's airtime is paid off at the duty-cycle rate
    /// ([`DutyCycleLimiter::off_time`]).
    ///
    /// A relay waits so before it chooses a token's readings: readings that arrive meanwhile join the token
    /// instead of following in frames of their own, and under a heavy load the budget is spent evenly over
    /// the hour. Spent in bursts, it would come back in bursts, and a steady load would wait up to an hour
    /// for its turn.
    /// A frame that exceeds the whole budget is not waited for (the send reports it). Returns
    /// [`SendError::Stopped`] once a stop is requested.
    pub fn wait_for_budget(&mut self, token_len: usize) -> Result<(), SendError> {
        let budget = match self.link.datagram().duty_cycle_wait(token_len) {
            Ok(wait) => wait,
            Err(LinkError::ExceedsBudget(_)) => Duration::ZERO,
            Err(e) => return Err(e.into()),
        };
        let datagram = self.link.datagram();
        let now = datagram.clock().now();
        // Pacing matters only once the budget runs short: a light load goes out at once.
        let short = datagram
            .limiter()
            .is_some_and(|l| l.used(now) * 2 >= l.budget());
        let pace = match self.paced_until {
            Some(until) if short => until.saturating_sub(now),
            _ => Duration::ZERO,
        };
        let wait = budget.max(pace);
        if !wait.is_zero() {
            let mut total = Duration::ZERO;
            self.duty_wait(wait, &mut total);
        }
        if self.stopping() {
            return Err(SendError::Stopped);
        }
        Ok(())
    }

    /// Sends `token` and waits for the gateway's ACK; see the module docs.
    pub fn send(&mut self, token: &[u8]) -> Result<Delivered, SendError> {
        let sent_before = self.link.datagram().stats().sent;
        let result = self.send_rounds(token);
        let datagram = self.link.datagram();
        if let Some(limiter) = datagram.limiter() {
            let frames = datagram.stats().sent - sent_before;
            let airtime = datagram
                .radio()
                .time_on_air(tmc_radio::frame::HEADER_LEN + token.len())
                * u32::try_from(frames).unwrap_or(u32::MAX);
            self.paced_until = Some(datagram.clock().now() + limiter.off_time(airtime));
        }
        result
    }

    fn send_rounds(&mut self, token: &[u8]) -> Result<Delivered, SendError> {
        let mut rounds = 0u32;
        let mut duty_cycle_wait = Duration::ZERO;
        let mut backoff_total = Duration::ZERO;
        let mut backoff = self.policy.initial_backoff;
        loop {
            let wait = self.link.datagram().duty_cycle_wait(token.len())?;
            if !wait.is_zero() {
                self.duty_wait(wait, &mut duty_cycle_wait);
            }
            if self.stopping() {
                return Err(SendError::Stopped);
            }
            rounds += 1;
            if let Some(ids) = &mut self.header_ids {
                self.link.set_next_id(ids.take()?);
            }
            match self.link.send_to_wait(self.gateway, token) {
                Ok(delivery) => {
                    self.stats.delivered += 1;
                    return Ok(Delivered {
                        rounds,
                        attempts: delivery.attempts,
                        duty_cycle_wait,
                        backoff: backoff_total,
                    });
                }
                // A retry inside the round ran out of budget: wait for it, the round does not count.
                Err(LinkError::DutyCycle { wait, .. }) => {
                    rounds -= 1;
                    self.duty_wait(wait, &mut duty_cycle_wait);
                }
                Err(LinkError::NoAck { .. }) => {
                    self.stats.silent_rounds += 1;
                    if rounds >= self.policy.rounds {
                        self.stats.given_up += 1;
                        return Err(SendError::Silent {
                            to: self.gateway,
                            rounds,
                        });
                    }
                    // Jitter: 50..100 % of the current back-off.
                    let pause = backoff / 2 + backoff.mul_f64(self.jitter() / 2.0);
                    self.wait.wait(pause);
                    backoff_total += pause;
                    backoff = (backoff * 2).min(self.policy.max_backoff);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn duty_wait(&mut self, wait: Duration, total: &mut Duration) {
        self.stats.duty_cycle_waits += 1;
        self.stats.duty_cycle_wait += wait;
        *total += wait;
        self.wait.wait(wait);
    }

    /// xorshift64: a uniform value in [0, 1).
    fn jitter(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A token from a relay, not yet acknowledged: store it, then [`LinkReceiver::confirm`] it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub from: u8,
    pub token: Vec<u8>,
    pub rssi_dbm: i16,
    pub snr_quarter_db: i8,
    frame: ReceivedFrame,
}

/// Counters of the receiver. Every packet the radio heard is in exactly one of `crc_errors`, `malformed`,
/// `other_node`, `stray_acks`, `retries`, `unknown_node` and `received`; each received token ends in the
/// application's own counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Packets the radio heard, good or bad.
    pub heard: u64,
    /// Packets that failed the radio's CRC.
    pub crc_errors: u64,
    /// Packets too short for a RadioHead header.
    pub malformed: u64,
    /// Frames addressed to another node.
    pub other_node: u64,
    /// ACK frames (for another exchange, or late).
    pub stray_acks: u64,
    /// Retries of the token confirmed last from a node (same ID and bytes): acknowledged again.
    pub retries: u64,
    /// Frames from nodes that are not peers.
    pub unknown_node: u64,
    /// New tokens handed to the application.
    pub received: u64,
    /// Tokens the application confirmed (stored, or known already).
    pub confirmed: u64,
}

/// The gateway's end.
pub struct LinkReceiver<R, C> {
    link: ReliableDatagram<R, C>,
    peers: Option<Vec<u8>>,
    stats: ReceiverStats,
}

impl<R: PacketRadio, C: Clock> LinkReceiver<R, C> {
    pub fn new(link: ReliableDatagram<R, C>) -> Self {
        LinkReceiver {
            link,
            peers: None,
            stats: ReceiverStats::default(),
        }
    }

    /// Accepts tokens only from these node addresses (the relays of the site).
    pub fn with_peers(mut self, peers: &[u8]) -> Self {
        self.peers = Some(peers.to_vec());
        self
    }

    pub fn link(&self) -> &ReliableDatagram<R, C> {
        &self.link
    }

    /// Counters, those of the layers below included.
    pub fn stats(&self) -> ReceiverStats {
        let datagram = self.link.datagram().stats();
        let reliable = self.link.stats();
        ReceiverStats {
            heard: datagram.rejected + datagram.malformed + datagram.filtered + datagram.accepted,
            crc_errors: datagram.rejected,
            malformed: datagram.malformed,
            other_node: datagram.filtered,
            stray_acks: reliable.stray_acks,
            retries: reliable.duplicates,
            ..self.stats
        }
    }

    /// Waits up to `timeout` for the next new token. It is not acknowledged until [`confirm`](Self::confirm).
    pub fn receive(&mut self, timeout: Duration) -> Result<Option<Received>, LinkError> {
        let deadline = self.link.datagram().clock().now() + timeout;
        loop {
            let now = self.link.datagram().clock().now();
            if now >= deadline {
                return Ok(None);
            }
            let Some(frame) = self.link.receive_unacknowledged(deadline - now)? else {
                return Ok(None);
            };
            let from = frame.header.from;
            if let Some(peers) = &self.peers {
                if !peers.contains(&from) {
                    self.stats.unknown_node += 1;
                    continue;
                }
            }
            self.stats.received += 1;
            return Ok(Some(Received {
                from,
                token: frame.data.clone(),
                rssi_dbm: frame.rssi_dbm,
                snr_quarter_db: frame.snr_quarter_db,
                frame,
            }));
        }
    }

    /// Acknowledges `received` on the radio: call it once the token is durably stored (or known to be).
    pub fn confirm(&mut self, received: &Received) -> Result<(), LinkError> {
        self.link.confirm(&received.frame)?;
        self.stats.confirmed += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_ids_start_at_1_and_never_restart_on_the_last_one() {
        for used in [1u32, 63, 64, 65, 255, 256, 257, 1000] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ids");
            let mut ids = HeaderIdFile::open(&path).unwrap();
            let taken: Vec<u8> = (0..used).map(|_| ids.take().unwrap()).collect();
            assert_eq!(taken[0], 1);
            // Consecutive, wrapping 255 → 0 as RadioHead's.
            assert!(taken.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
            drop(ids);
            let first_after = HeaderIdFile::open(&path).unwrap().take().unwrap();
            assert_ne!(first_after, taken[taken.len() - 1], "after {used} IDs");
        }
    }
}

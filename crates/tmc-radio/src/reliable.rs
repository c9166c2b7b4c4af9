//! Acknowledged datagrams, interoperable with RadioHead's RHReliableDatagram.
//!
//! The sender numbers each datagram (IDs wrap 255 → 0), sends it, and waits for a frame back with the same ID,
//! the ACK flag and the one-byte payload `!`. Without one it sends again with the RETRY flag, up to `retries`
//! more times, each wait being the timeout plus a random back-off of up to the same again (so two nodes that
//! collided do not collide forever). The receiver acknowledges every copy it gets (the sender may have missed
//! the first ACK) but hands each datagram to the application once.
//!
//! # What counts as a copy
//! RadioHead's receiver takes a frame for a retry when its (FROM, ID) equals the last one it delivered. That
//! loses data: a sender that restarts numbers from 1 again, and the old senders that use `RH_RF95::send` put ID 0
//! on every frame, so a new datagram is taken for a retry, acknowledged and dropped. Here a frame is a copy only
//! when it is provably the same frame: same FROM, ID **and bytes** as the one delivered last from that node, and
//! heard within [`ReliableConfig::duplicate_window`] of the previous copy (the span in which a sender still
//! retries). Anything else is handed over; the layer above (the envelope's sender and counter) is the authority
//! on duplicates. The receiver remembers only the last datagram per node, in memory.

use core::time::Duration;

use crate::airtime::time_on_air;
use crate::datagram::{Datagram, LinkError, ReceivedFrame};
use crate::frame::{flags, BROADCAST, HEADER_LEN, MAX_FRAME_LEN};
use crate::hal::Clock;
use crate::modem::ModemConfig;
use crate::packet_radio::PacketRadio;

/// RadioHead's default ACK timeout.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_millis(200);
/// RadioHead's default number of retries.
pub const DEFAULT_RETRIES: u8 = 3;
/// The ACK payload.
pub const ACK_PAYLOAD: &[u8] = b"!";

/// Sender and receiver policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReliableConfig {
    /// Retransmissions after the first send.
    pub retries: u8,
    /// Base wait for an ACK after our frame is on air; the real wait is this plus up to this again at random.
    pub ack_timeout: Duration,
    /// RadioHead's `RH_ENABLE_EXPLICIT_RETRY_DEDUP`: take a frame for a copy only if it also has the RETRY flag.
    /// Off by default, like RadioHead, because senders older than the RETRY flag never set it (the bytes and
    /// the window already keep a restarted sender's new datagrams from being taken for copies).
    pub explicit_retry_dedup: bool,
    /// How long after a copy of the last delivered datagram another identical frame still counts as its retry.
    /// Beyond it an identical frame is new data (an old sender whose reading did not change).
    pub duplicate_window: Duration,
}

impl Default for ReliableConfig {
    /// RadioHead's defaults at its default modem (SF7, 125 kHz, CR 4/5).
    fn default() -> Self {
        Self::for_modem(&ModemConfig::RADIOHEAD_DEFAULT)
    }
}

impl ReliableConfig {
    /// RadioHead's defaults, with the ACK timeout raised where the modem is slow: the ACK alone takes 827 ms
    /// at SF12, four times RadioHead's 200 ms. The wait covers the ACK's time on air plus 100 ms for the peer to
    /// read our frame and turn its radio round.
    ///
    /// The duplicate window is a whole retry sequence of a sender with the same settings: every transmission
    /// (the longest frame) and every wait (twice the ACK timeout, the most RadioHead's random back-off makes
    /// it), so that each retry falls inside it even measured from the first copy.
    pub fn for_modem(modem: &ModemConfig) -> Self {
        let ack_airtime = time_on_air(modem, HEADER_LEN + ACK_PAYLOAD.len());
        let ack_timeout = DEFAULT_ACK_TIMEOUT.max(ack_airtime + Duration::from_millis(100));
        let longest_frame = time_on_air(modem, MAX_FRAME_LEN);
        Self {
            retries: DEFAULT_RETRIES,
            ack_timeout,
            explicit_retry_dedup: false,
            duplicate_window: (longest_frame + ack_timeout * 2) * (u32::from(DEFAULT_RETRIES) + 1),
        }
    }
}

/// Counters of the reliable layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReliableStats {
    /// Retransmissions sent.
    pub retransmissions: u64,
    /// Datagrams acknowledged by the peer.
    pub delivered: u64,
    /// Datagrams that ran out of retries.
    pub undelivered: u64,
    /// ACKs sent.
    pub acks_sent: u64,
    /// ACKs not sent because the duty-cycle budget was spent.
    pub acks_withheld: u64,
    /// Copies of already delivered datagrams (acknowledged again, not delivered).
    pub duplicates: u64,
    /// ACK frames heard while not waiting for one (late, or for another exchange): ignored.
    pub stray_acks: u64,
}

/// Result of a successful [`ReliableDatagram::send_to_wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// ID the datagram went with.
    pub id: u8,
    /// Transmissions it took (1 = no retry).
    pub attempts: u8,
}

/// The datagram delivered last from one sender.
#[derive(Clone, Debug)]
struct Seen {
    id: u8,
    data: Vec<u8>,
    /// When its last copy was heard (or it was confirmed).
    heard: Duration,
}

/// When a received datagram is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckWhen {
    /// At once, as RadioHead does.
    OnReceipt,
    /// When the application confirms it has stored the datagram.
    OnConfirm,
}

/// RHReliableDatagram over a [`Datagram`].
pub struct ReliableDatagram<R, C> {
    datagram: Datagram<R, C>,
    config: ReliableConfig,
    last_sequence: u8,
    /// The last datagram delivered per sender, to recognise its retries.
    seen: Vec<Option<Seen>>,
    rng: fastrand::Rng,
    stats: ReliableStats,
}

impl<R: PacketRadio, C: Clock> ReliableDatagram<R, C> {
    /// Wraps `datagram`; `seed` drives the retry back-off (give each node a different one).
    pub fn new(datagram: Datagram<R, C>, config: ReliableConfig, seed: u64) -> Self {
        Self {
            datagram,
            config,
            last_sequence: 0,
            seen: vec![None; 256],
            rng: fastrand::Rng::with_seed(seed),
            stats: ReliableStats::default(),
        }
    }

    /// The datagram layer underneath.
    pub fn datagram(&self) -> &Datagram<R, C> {
        &self.datagram
    }

    /// The datagram layer underneath, mutably.
    pub fn datagram_mut(&mut self) -> &mut Datagram<R, C> {
        &mut self.datagram
    }

    /// Policy.
    pub fn config(&self) -> &ReliableConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> ReliableStats {
        self.stats
    }

    /// The ID the last [`send_to_wait`](Self::send_to_wait) used (0 before the first).
    pub fn last_id(&self) -> u8 {
        self.last_sequence
    }

    /// Makes `id` the ID of the next [`send_to_wait`](Self::send_to_wait). A sender that keeps its IDs across
    /// restarts sets it (a RadioHead receiver drops a new datagram whose ID equals the last one it got from us).
    pub fn set_next_id(&mut self, id: u8) {
        self.last_sequence = id.wrapping_sub(1);
    }

    /// Gives the datagram layer back.
    pub fn into_inner(self) -> Datagram<R, C> {
        self.datagram
    }

    /// Sends `data` to `to` and waits for its ACK, retrying as configured. A broadcast is sent once and never
    /// acknowledged. Frames that arrive meanwhile are dropped, except copies of a datagram we already delivered,
    /// which are acknowledged again (as RadioHead does).
    pub fn send_to_wait(&mut self, to: u8, data: &[u8]) -> Result<Delivery, LinkError> {
        self.last_sequence = self.last_sequence.wrapping_add(1);
        let id = self.last_sequence;
        let mut attempts: u8 = 0;
        while attempts <= self.config.retries {
            attempts += 1;
            let frame_flags = if attempts == 1 { 0 } else { flags::RETRY };
            if attempts > 1 {
                self.stats.retransmissions += 1;
            }
            self.datagram.send(to, id, frame_flags, data)?;
            if to == BROADCAST {
                return Ok(Delivery { id, attempts });
            }
            // Base timeout plus 0..255/256 of it again, as RadioHead.
            let backoff = self.config.ack_timeout * self.rng.u32(0..256) / 256;
            let deadline = self.datagram.clock().now() + self.config.ack_timeout + backoff;
            if self.wait_for_ack(to, id, deadline)? {
                self.stats.delivered += 1;
                return Ok(Delivery { id, attempts });
            }
        }
        self.stats.undelivered += 1;
        Err(LinkError::NoAck { to, id, attempts })
    }

    fn wait_for_ack(&mut self, to: u8, id: u8, deadline: Duration) -> Result<bool, LinkError> {
        loop {
            let now = self.datagram.clock().now();
            if now >= deadline {
                return Ok(false);
            }
            let Some(frame) = self.datagram.receive(deadline - now)? else {
                return Ok(false);
            };
            let h = frame.header;
            if h.from == to && h.to == self.datagram.address() && h.is_ack() && h.id == id {
                return Ok(true);
            }
            if h.is_ack() {
                self.stats.stray_acks += 1;
                continue;
            }
            if h.to == self.datagram.address() && self.is_copy(&frame) {
                // The peer did not get our ACK for something we already delivered.
                self.stats.duplicates += 1;
                self.acknowledge(h.id, h.from)?;
            }
        }
    }

    /// Waits up to `timeout` for a new datagram, acknowledging it (unless broadcast). Copies of a datagram already
    /// delivered are acknowledged and swallowed; ACKs are ignored.
    pub fn receive(&mut self, timeout: Duration) -> Result<Option<ReceivedFrame>, LinkError> {
        self.receive_with(timeout, AckWhen::OnReceipt)
    }

    /// Like [`receive`](Self::receive), but a new datagram is **not** acknowledged: store it durably, then call
    /// [`confirm`](Self::confirm). A crash in between loses nothing: the sender retries, and the copy is delivered
    /// again (the store must tell duplicates, e.g. by the envelope's sender and counter). Copies of confirmed
    /// datagrams are acknowledged and swallowed as with `receive`.
    pub fn receive_unacknowledged(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<ReceivedFrame>, LinkError> {
        self.receive_with(timeout, AckWhen::OnConfirm)
    }

    /// Acknowledges a datagram from [`receive_unacknowledged`](Self::receive_unacknowledged) once it is stored,
    /// and from then on treats copies of it as duplicates.
    pub fn confirm(&mut self, frame: &ReceivedFrame) -> Result<(), LinkError> {
        let h = frame.header;
        if h.to == self.datagram.address() {
            self.acknowledge(h.id, h.from)?;
        }
        self.remember(frame);
        Ok(())
    }

    fn remember(&mut self, frame: &ReceivedFrame) {
        self.seen[usize::from(frame.header.from)] = Some(Seen {
            id: frame.header.id,
            data: frame.data.clone(),
            heard: self.datagram.clock().now(),
        });
    }

    /// Whether `frame` is a retry of the datagram delivered last from its sender (and if so, notes that this
    /// copy was heard now, for the next one).
    fn is_copy(&mut self, frame: &ReceivedFrame) -> bool {
        let h = frame.header;
        if self.config.explicit_retry_dedup && !h.is_retry() {
            return false;
        }
        let now = self.datagram.clock().now();
        let window = self.config.duplicate_window;
        match &mut self.seen[usize::from(h.from)] {
            Some(seen)
                if seen.id == h.id
                    && seen.data == frame.data
                    && now.saturating_sub(seen.heard) <= window =>
            {
                seen.heard = now;
                true
            }
            _ => false,
        }
    }

    fn receive_with(
        &mut self,
        timeout: Duration,
        when: AckWhen,
    ) -> Result<Option<ReceivedFrame>, LinkError> {
        let deadline = self.datagram.clock().now() + timeout;
        loop {
            let now = self.datagram.clock().now();
            if now >= deadline {
                return Ok(None);
            }
            let Some(frame) = self.datagram.receive(deadline - now)? else {
                return Ok(None);
            };
            let h = frame.header;
            if h.is_ack() {
                self.stats.stray_acks += 1;
                continue;
            }
            let for_me = h.to == self.datagram.address();
            if self.is_copy(&frame) {
                // The sender missed our ACK: acknowledge again, deliver nothing.
                if for_me {
                    self.acknowledge(h.id, h.from)?;
                }
                self.stats.duplicates += 1;
                continue;
            }
            if when == AckWhen::OnReceipt {
                if for_me {
                    self.acknowledge(h.id, h.from)?;
                }
                self.remember(&frame);
            }
            return Ok(Some(frame));
        }
    }

    /// Sends the ACK for (`id`, `from`). When the duty-cycle budget is spent the ACK is withheld rather than
    /// break the law; the sender will retry.
    fn acknowledge(&mut self, id: u8, from: u8) -> Result<(), LinkError> {
        match self.datagram.send(from, id, flags::ACK, ACK_PAYLOAD) {
            Ok(()) => {
                self.stats.acks_sent += 1;
                Ok(())
            }
            Err(LinkError::DutyCycle { .. }) => {
                self.stats.acks_withheld += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modem::SpreadingFactor;

    #[test]
    fn ack_timeout_grows_with_slow_spreading_factors() {
        let fast = ReliableConfig::for_modem(&ModemConfig::RADIOHEAD_DEFAULT);
        assert_eq!(fast.ack_timeout, DEFAULT_ACK_TIMEOUT);
        assert_eq!(fast.retries, 3);
        let slow = ReliableConfig::for_modem(
            &ModemConfig::RADIOHEAD_DEFAULT.with_spreading_factor(SpreadingFactor::Sf12),
        );
        // ACK on air at SF12: 13 payload symbols + 12.25 preamble symbols of 32.768 ms = 827.392 ms.
        assert_eq!(
            slow.ack_timeout,
            Duration::from_micros(827_392) + Duration::from_millis(100)
        );
        // A whole retry sequence: 4 × (longest frame + 2 × ACK timeout).
        assert_eq!(
            fast.duplicate_window,
            (Duration::from_micros(399_616) + Duration::from_millis(400)) * 4
        );
        assert_eq!(
            slow.duplicate_window,
            (Duration::from_micros(9_019_392) + slow.ack_timeout * 2) * 4
        );
        assert_eq!(ReliableConfig::default(), fast);
    }
}

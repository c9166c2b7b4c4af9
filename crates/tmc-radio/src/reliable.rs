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
    use crate::duty_cycle::{DutyCycle, DutyCycleLimiter};
    use crate::frame::{Frame, Header};
    use crate::modem::SpreadingFactor;
    use crate::scripted::{ScriptedClock, ScriptedRadio};

    const US: u8 = 1;
    const PEER: u8 = 10;
    const OTHER: u8 = 11;
    const MS: fn(u64) -> Duration = Duration::from_millis;
    /// Every packet takes this long on air in these tests.
    const AIRTIME: Duration = Duration::from_millis(50);

    type Node = ReliableDatagram<ScriptedRadio, ScriptedClock>;

    fn node_with(config: ReliableConfig, limiter: Option<DutyCycleLimiter>) -> Node {
        let clock = ScriptedClock::new();
        let radio = ScriptedRadio::new(clock.clone()).with_time_on_air(|_| AIRTIME);
        let mut datagram = Datagram::new(radio, clock, US);
        if let Some(limiter) = limiter {
            datagram = datagram.with_duty_cycle(limiter);
        }
        ReliableDatagram::new(datagram, config, 7)
    }

    fn node() -> Node {
        node_with(ReliableConfig::default(), None)
    }

    /// A duty-cycle budget of 70 ms per 7 s: one packet of [`AIRTIME`] fits, a second does not.
    fn one_packet_budget() -> DutyCycleLimiter {
        DutyCycleLimiter::with_window(DutyCycle::ONE_PERCENT, Duration::from_secs(7))
    }

    fn frame(to: u8, from: u8, id: u8, flags: u8, data: &[u8]) -> Vec<u8> {
        Frame::new(
            Header {
                to,
                from,
                id,
                flags,
            },
            data,
        )
        .unwrap()
        .to_vec()
    }

    fn ack_from(from: u8, id: u8) -> Vec<u8> {
        frame(US, from, id, flags::ACK, ACK_PAYLOAD)
    }

    fn radio(node: &mut Node) -> &mut ScriptedRadio {
        node.datagram_mut().radio_mut()
    }

    /// Headers and data of what `node` sent since the last call.
    fn sent(node: &mut Node) -> Vec<(Header, Vec<u8>)> {
        radio(node)
            .take_transmissions()
            .iter()
            .map(|t| {
                let frame = t.frame().unwrap();
                (frame.header, frame.data.to_vec())
            })
            .collect()
    }

    fn ack_to(to: u8, id: u8) -> (Header, Vec<u8>) {
        (
            Header {
                to,
                from: US,
                id,
                flags: flags::ACK,
            },
            ACK_PAYLOAD.to_vec(),
        )
    }

    #[test]
    fn ids_count_from_one_and_wrap_from_255_to_0() {
        let mut node = node();
        radio(&mut node).hear(&ack_from(PEER, 1));
        assert_eq!(
            node.send_to_wait(PEER, b"a").unwrap(),
            Delivery { id: 1, attempts: 1 }
        );
        node.set_next_id(255);
        radio(&mut node)
            .hear(&ack_from(PEER, 255))
            .hear(&ack_from(PEER, 0));
        assert_eq!(node.send_to_wait(PEER, b"b").unwrap().id, 255);
        assert_eq!(node.send_to_wait(PEER, b"c").unwrap().id, 0);
        assert_eq!(node.last_id(), 0);
        let ids: Vec<(u8, u8)> = sent(&mut node)
            .iter()
            .map(|(h, _)| (h.id, h.flags))
            .collect();
        assert_eq!(ids, [(1, 0), (255, 0), (0, 0)]);
        assert_eq!(node.stats().delivered, 3);
    }

    #[test]
    fn only_the_peers_ack_for_this_id_completes_a_send() {
        let mut node = node();
        radio(&mut node)
            .hear(&ack_from(PEER, 9))
            .hear(&ack_from(OTHER, 1))
            // For another node: the address filter drops it before the reliable layer sees it.
            .hear(&frame(5, PEER, 1, flags::ACK, ACK_PAYLOAD))
            // New data from the peer while we wait: dropped, not acknowledged.
            .hear(&frame(US, PEER, 1, 0, b"data, not an ACK"))
            .hear(&ack_from(PEER, 1));
        assert_eq!(
            node.send_to_wait(PEER, b"token").unwrap(),
            Delivery { id: 1, attempts: 1 }
        );
        assert_eq!(node.stats().stray_acks, 2);
        assert_eq!(node.stats().acks_sent, 0);
        assert_eq!(sent(&mut node).len(), 1);
        assert_eq!(radio(&mut node).pending(), 0);
    }

    #[test]
    fn retries_carry_the_retry_flag_and_then_give_up() {
        let mut node = node();
        let err = node.send_to_wait(PEER, b"token").unwrap_err();
        assert!(
            matches!(
                err,
                LinkError::NoAck {
                    to: PEER,
                    id: 1,
                    attempts: 4
                }
            ),
            "{err}"
        );
        let transmissions = radio(&mut node).take_transmissions();
        let flags: Vec<u8> = transmissions
            .iter()
            .map(|t| t.frame().unwrap().header.flags)
            .collect();
        assert_eq!(flags, [0, flags::RETRY, flags::RETRY, flags::RETRY]);
        assert!(transmissions.iter().all(|t| t.bytes[4..] == *b"token"));
        // Each wait is the ACK timeout plus a random back-off of up to the same again.
        let timeout = node.config().ack_timeout;
        for pair in transmissions.windows(2) {
            let wait = pair[1].at - pair[0].at - AIRTIME;
            assert!(wait >= timeout && wait < timeout * 2, "{wait:?}");
        }
        let stats = node.stats();
        assert_eq!((stats.retransmissions, stats.undelivered), (3, 1));
    }

    #[test]
    fn an_ack_to_a_retry_completes_the_send() {
        let mut node = node();
        // The first wait ends before 50 + 400 ms; the second, after a retry of 50 ms, not before 500 ms.
        radio(&mut node).hear_at(MS(450), &ack_from(PEER, 1));
        assert_eq!(
            node.send_to_wait(PEER, b"token").unwrap(),
            Delivery { id: 1, attempts: 2 }
        );
        assert_eq!(node.stats().retransmissions, 1);
    }

    #[test]
    fn a_broadcast_goes_once_and_waits_for_no_ack() {
        let mut node = node();
        assert_eq!(
            node.send_to_wait(BROADCAST, b"all").unwrap(),
            Delivery { id: 1, attempts: 1 }
        );
        assert_eq!(sent(&mut node).len(), 1);
        assert_eq!(node.datagram().clock().now(), AIRTIME);
    }

    #[test]
    fn a_datagram_is_acknowledged_and_delivered_once_and_its_retries_acknowledged_again() {
        let mut node = node();
        let datagram = frame(US, PEER, 5, 0, b"reading");
        let retry = frame(US, PEER, 5, flags::RETRY, b"reading");
        radio(&mut node).hear(&datagram).hear(&retry).hear(&retry);
        let got = node.receive(MS(100)).unwrap().unwrap();
        assert_eq!((got.header.from, got.data), (PEER, b"reading".to_vec()));
        assert_eq!(node.receive(MS(100)).unwrap(), None);
        assert_eq!(
            sent(&mut node),
            [ack_to(PEER, 5), ack_to(PEER, 5), ack_to(PEER, 5)]
        );
        let stats = node.stats();
        assert_eq!((stats.duplicates, stats.acks_sent), (2, 3));
    }

    #[test]
    fn same_sender_and_id_is_a_copy_only_with_the_same_bytes_within_the_window() {
        let mut node = node();
        let window = node.config().duplicate_window;
        radio(&mut node)
            .hear(&frame(US, PEER, 5, 0, b"first"))
            // A restarted sender reusing ID 5 for new data.
            .hear(&frame(US, PEER, 5, 0, b"second"))
            // Another node's datagram with the same ID and bytes.
            .hear(&frame(US, OTHER, 5, 0, b"second"))
            // The same frame again, long after the sender would have stopped retrying.
            .hear_at(window * 3, &frame(US, PEER, 5, 0, b"second"));
        let mut delivered = Vec::new();
        while let Some(frame) = node.receive(window * 4).unwrap() {
            delivered.push((frame.header.from, frame.data));
        }
        assert_eq!(
            delivered,
            [
                (PEER, b"first".to_vec()),
                (PEER, b"second".to_vec()),
                (OTHER, b"second".to_vec()),
                (PEER, b"second".to_vec()),
            ]
        );
        assert_eq!(node.stats().duplicates, 0);
    }

    #[test]
    fn explicit_retry_dedup_takes_only_frames_flagged_retry_for_copies() {
        let config = ReliableConfig {
            explicit_retry_dedup: true,
            ..ReliableConfig::default()
        };
        let mut node = node_with(config, None);
        radio(&mut node)
            .hear(&frame(US, PEER, 5, 0, b"same"))
            .hear(&frame(US, PEER, 5, 0, b"same"))
            .hear(&frame(US, PEER, 5, flags::RETRY, b"same"));
        assert!(node.receive(MS(100)).unwrap().is_some());
        assert!(node.receive(MS(100)).unwrap().is_some());
        assert_eq!(node.receive(MS(100)).unwrap(), None);
        assert_eq!(node.stats().duplicates, 1);
        assert_eq!(node.stats().acks_sent, 3);
    }

    #[test]
    fn stray_acks_are_ignored_and_broadcasts_delivered_unacknowledged() {
        let mut node = node();
        radio(&mut node)
            .hear(&ack_from(PEER, 3))
            .hear(&frame(BROADCAST, PEER, 4, 0, b"everyone"));
        let got = node.receive(MS(100)).unwrap().unwrap();
        assert_eq!(got.header.to, BROADCAST);
        assert!(sent(&mut node).is_empty());
        assert_eq!(node.stats().stray_acks, 1);
    }

    #[test]
    fn an_unacknowledged_receive_acknowledges_on_confirm_only() {
        let mut node = node();
        let datagram = frame(US, PEER, 5, 0, b"store me");
        radio(&mut node).hear(&datagram).hear(&datagram);
        let got = node.receive_unacknowledged(MS(100)).unwrap().unwrap();
        assert!(sent(&mut node).is_empty());
        // Not confirmed yet: a copy goes up again (the store tells duplicates).
        let again = node.receive_unacknowledged(MS(100)).unwrap().unwrap();
        assert_eq!(again, got);
        node.confirm(&got).unwrap();
        assert_eq!(sent(&mut node), [ack_to(PEER, 5)]);
        // Confirmed: further copies are acknowledged and swallowed.
        radio(&mut node).hear(&datagram);
        assert_eq!(node.receive_unacknowledged(MS(100)).unwrap(), None);
        assert_eq!(sent(&mut node), [ack_to(PEER, 5)]);
    }

    #[test]
    fn a_copy_heard_while_waiting_for_an_ack_is_acknowledged_again() {
        let mut node = node();
        radio(&mut node).hear(&frame(US, PEER, 5, 0, b"theirs"));
        node.receive(MS(100)).unwrap().unwrap();
        radio(&mut node)
            .hear(&frame(US, PEER, 5, flags::RETRY, b"theirs"))
            .hear(&ack_from(PEER, 1));
        node.send_to_wait(PEER, b"ours").unwrap();
        let sent = sent(&mut node);
        assert_eq!(sent.len(), 3);
        assert_eq!(
            (sent[0].clone(), sent[2].clone()),
            (ack_to(PEER, 5), ack_to(PEER, 5))
        );
        assert_eq!(sent[1].0.id, 1);
        assert_eq!(node.stats().duplicates, 1);
    }

    #[test]
    fn an_ack_the_budget_cannot_take_is_withheld_and_the_datagram_still_delivered() {
        let mut node = node_with(ReliableConfig::default(), Some(one_packet_budget()));
        radio(&mut node)
            .hear(&frame(US, PEER, 1, 0, b"first"))
            .hear(&frame(US, PEER, 2, 0, b"second"));
        assert!(node.receive(MS(100)).unwrap().is_some());
        assert_eq!(node.receive(MS(100)).unwrap().unwrap().data, b"second");
        assert_eq!(sent(&mut node), [ack_to(PEER, 1)]);
        let stats = node.stats();
        assert_eq!((stats.acks_sent, stats.acks_withheld), (1, 1));
    }

    #[test]
    fn a_send_the_budget_cannot_take_is_refused() {
        let mut node = node_with(ReliableConfig::default(), Some(one_packet_budget()));
        radio(&mut node).hear(&ack_from(PEER, 1));
        node.send_to_wait(PEER, b"first").unwrap();
        assert!(matches!(
            node.send_to_wait(PEER, b"second"),
            Err(LinkError::DutyCycle { .. })
        ));
        // A retry is refused alike: the first copy went, the budget has no room for the second.
        let mut node = node_with(ReliableConfig::default(), Some(one_packet_budget()));
        assert!(matches!(
            node.send_to_wait(PEER, b"unanswered"),
            Err(LinkError::DutyCycle { .. })
        ));
        assert_eq!(sent(&mut node).len(), 1);
    }

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

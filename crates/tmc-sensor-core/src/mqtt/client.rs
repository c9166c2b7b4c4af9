//! The client's bookkeeping around the codec, all driven by `now_ms` (a monotonic millisecond count):
//!
//! - [`PacketIds`]: packet identifiers 1, 2, …, 65535, 1, … (never 0).
//! - [`InFlight`]: the one QoS 1 PUBLISH a sensor has unacknowledged, resent with DUP after a timeout.
//!   MQTT 3.1.1 requires re-sending only on reconnect (section 4.4) but allows it within a connection;
//!   a sensor re-sends both ways, because a broker that lost a PUBLISH over a flaky link otherwise
//!   leaves the reading stuck until keep-alive notices. The broker treats the copy as a duplicate.
//! - [`KeepAlive`]: sends PINGREQ when the link has been idle for the keep-alive period and declares
//!   the connection lost when no answer comes within half of it.
//!
//! Clock readings that go backwards are taken as "no time passed" (saturating subtraction).

use super::{PacketId, QoS};

/// Packet identifiers in order, skipping 0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PacketIds {
    last: u16,
}

impl PacketIds {
    /// The first [`next_id`](Self::next_id) is 1.
    pub const fn new() -> Self {
        PacketIds { last: 0 }
    }

    /// The next identifier: 1 after 65535, never 0.
    pub fn next_id(&mut self) -> PacketId {
        self.last = self.last.wrapping_add(1);
        if self.last == 0 {
            self.last = 1;
        }
        PacketId::new(self.last).unwrap_or(PacketId::MIN)
    }
}

/// One QoS 1 PUBLISH sent and not yet acknowledged. It does not hold the packet: the sensor encodes it
/// again from the reading (same topic, same payload, same packet id) with the [`QoS`] this returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    packet_id: PacketId,
    retry_ms: u64,
    last_sent_ms: u64,
    sends: u32,
}

impl InFlight {
    /// The PUBLISH with `packet_id` was just sent (DUP clear) at `now_ms`; resend it when no PUBACK came
    /// within `retry_ms` (at least 1).
    pub fn sent(packet_id: PacketId, now_ms: u64, retry_ms: u64) -> Self {
        InFlight {
            packet_id,
            retry_ms: retry_ms.max(1),
            last_sent_ms: now_ms,
            sends: 1,
        }
    }

    pub fn packet_id(&self) -> PacketId {
        self.packet_id
    }

    /// How often it was sent, the first time included.
    pub fn sends(&self) -> u32 {
        self.sends
    }

    /// The QoS of the first send: the packet id, DUP clear.
    pub fn first_qos(&self) -> QoS {
        QoS::AtLeastOnce {
            packet_id: self.packet_id,
            dup: false,
        }
    }

    /// Whether this PUBACK acknowledges it (then drop the `InFlight`).
    pub fn is_acked_by(&self, puback: PacketId) -> bool {
        puback == self.packet_id
    }

    /// Milliseconds from `now_ms` until a resend is due (0: due now).
    pub fn wait_ms(&self, now_ms: u64) -> u64 {
        self.retry_ms
            .saturating_sub(now_ms.saturating_sub(self.last_sent_ms))
    }

    /// When the retry timeout has passed at `now_ms`: records a resend and returns the QoS to encode
    /// it with (same packet id, DUP set). `None` while the PUBACK may still come.
    pub fn poll(&mut self, now_ms: u64) -> Option<QoS> {
        if self.wait_ms(now_ms) > 0 {
            return None;
        }
        Some(self.resend(now_ms))
    }

    /// Records a resend at `now_ms` regardless of the timeout (after a reconnect that resumed the
    /// session: MQTT-4.4.0-1) and returns its QoS (DUP set).
    pub fn resend(&mut self, now_ms: u64) -> QoS {
        self.last_sent_ms = now_ms;
        self.sends = self.sends.saturating_add(1);
        QoS::AtLeastOnce {
            packet_id: self.packet_id,
            dup: true,
        }
    }
}

/// What [`KeepAlive::poll`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAliveAction {
    /// Nothing to do.
    Wait,
    /// Send PINGREQ now (already recorded as sent).
    SendPingReq,
    /// The broker did not answer a PINGREQ in time: close the connection and reconnect.
    ConnectionLost,
}

/// The client side of MQTT keep-alive.
///
/// - Idle means nothing sent **or** nothing received for the keep-alive period. The broker only needs
///   the client to send something within it (it drops a client after 1.5 × keep-alive of silence);
///   counting received packets too makes a sensor that publishes often but hears nothing (a half-open
///   TCP connection: PUBACKs stop coming) ping and find out.
/// - After a PINGREQ, the connection is lost when no packet at all arrives within half the keep-alive
///   period (any packet proves the broker alive, the PINGRESP included). Half, so that a dead link is
///   noticed after at most 1.5 × keep-alive, when the broker gives up on the client too.
/// - Keep-alive 0 turns all of this off, as in the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepAlive {
    period_ms: u64,
    last_sent_ms: u64,
    last_received_ms: u64,
    ping_sent_ms: Option<u64>,
}

impl KeepAlive {
    /// For a connection with CONNECT keep-alive `keep_alive_s`, established (CONNACK received) at
    /// `now_ms`.
    pub fn new(keep_alive_s: u16, now_ms: u64) -> Self {
        KeepAlive {
            period_ms: u64::from(keep_alive_s) * 1000,
            last_sent_ms: now_ms,
            last_received_ms: now_ms,
            ping_sent_ms: None,
        }
    }

    /// How long a PINGREQ may stay unanswered: half the keep-alive period.
    pub fn response_timeout_ms(&self) -> u64 {
        self.period_ms / 2
    }

    /// Whether a PINGREQ waits for its answer.
    pub fn ping_outstanding(&self) -> bool {
        self.ping_sent_ms.is_some()
    }

    /// The client sent a packet at `now_ms`.
    pub fn packet_sent(&mut self, now_ms: u64) {
        self.last_sent_ms = self.last_sent_ms.max(now_ms);
    }

    /// A packet arrived from the broker at `now_ms`: the link works, an outstanding PINGREQ is answered.
    pub fn packet_received(&mut self, now_ms: u64) {
        self.last_received_ms = self.last_received_ms.max(now_ms);
        self.ping_sent_ms = None;
    }

    /// What to do at `now_ms`. [`KeepAliveAction::SendPingReq`] counts as sent; `ConnectionLost`
    /// repeats until the caller reconnects (and makes a new `KeepAlive`).
    pub fn poll(&mut self, now_ms: u64) -> KeepAliveAction {
        if self.period_ms == 0 {
            return KeepAliveAction::Wait;
        }
        if let Some(sent) = self.ping_sent_ms {
            return if now_ms.saturating_sub(sent) >= self.response_timeout_ms() {
                KeepAliveAction::ConnectionLost
            } else {
                KeepAliveAction::Wait
            };
        }
        let idle_since = self.last_sent_ms.min(self.last_received_ms);
        if now_ms.saturating_sub(idle_since) >= self.period_ms {
            self.ping_sent_ms = Some(now_ms);
            self.last_sent_ms = self.last_sent_ms.max(now_ms);
            return KeepAliveAction::SendPingReq;
        }
        KeepAliveAction::Wait
    }

    /// Milliseconds from `now_ms` until [`poll`](Self::poll) may have something to do (`u64::MAX`
    /// when keep-alive is off): how long the firmware may sleep.
    pub fn wait_ms(&self, now_ms: u64) -> u64 {
        if self.period_ms == 0 {
            return u64::MAX;
        }
        // The time left, not a deadline: a deadline could saturate at the end of u64 time.
        let (since, limit) = match self.ping_sent_ms {
            Some(sent) => (sent, self.response_timeout_ms()),
            None => (self.last_sent_ms.min(self.last_received_ms), self.period_ms),
        };
        limit.saturating_sub(now_ms.saturating_sub(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    #[test]
    fn packet_ids_start_at_1_wrap_and_skip_0() {
        let mut ids = PacketIds::new();
        assert_eq!(ids.next_id().get(), 1);
        assert_eq!(ids.next_id().get(), 2);
        for _ in 3..65_535 {
            ids.next_id();
        }
        assert_eq!(ids.next_id().get(), 65_535);
        assert_eq!(ids.next_id().get(), 1, "wraps past 0");
        let mut ids = PacketIds::default();
        let mut seen = 0u32;
        for _ in 0..200_000 {
            assert_ne!(ids.next_id().get(), 0);
            seen += 1;
        }
        assert_eq!(seen, 200_000);
    }

    #[test]
    fn in_flight_resends_with_dup_after_the_timeout() {
        let mut f = InFlight::sent(id(7), 1_000, 5_000);
        assert_eq!(
            f.first_qos(),
            QoS::AtLeastOnce {
                packet_id: id(7),
                dup: false
            }
        );
        assert_eq!(f.poll(5_999), None);
        assert_eq!(f.wait_ms(5_999), 1);
        let dup = QoS::AtLeastOnce {
            packet_id: id(7),
            dup: true,
        };
        assert_eq!(f.poll(6_000), Some(dup));
        assert_eq!(f.sends(), 2);
        // The timer restarts from the resend.
        assert_eq!(f.poll(10_999), None);
        assert_eq!(f.poll(11_500), Some(dup));
        // After a reconnect: at once.
        assert_eq!(f.resend(12_000), dup);
        assert_eq!((f.sends(), f.wait_ms(12_000)), (4, 5_000));
        assert!(f.is_acked_by(id(7)) && !f.is_acked_by(id(8)));
        assert_eq!(f.packet_id(), id(7));
    }

    #[test]
    fn in_flight_survives_clock_edges() {
        let mut f = InFlight::sent(id(1), u64::MAX - 10, u64::MAX);
        assert_eq!(f.poll(u64::MAX), None);
        assert_eq!(f.poll(0), None, "clock going back: no time passed");
        let mut f = InFlight::sent(id(1), 0, 0);
        assert_eq!(f.poll(0), None, "retry 0 is taken as 1 ms");
        assert!(f.poll(1).is_some());
        let mut f = InFlight::sent(id(1), u64::MAX, 1);
        assert!(f.poll(u64::MAX).is_none());
        f.sends = u32::MAX;
        f.resend(u64::MAX);
        assert_eq!(f.sends(), u32::MAX);
    }

    #[test]
    fn keep_alive_pings_when_idle_and_waits_half_a_period() {
        let mut k = KeepAlive::new(60, 0);
        assert_eq!(k.response_timeout_ms(), 30_000);
        assert_eq!(k.poll(59_999), KeepAliveAction::Wait);
        assert_eq!(k.wait_ms(59_999), 1);
        assert_eq!(k.poll(60_000), KeepAliveAction::SendPingReq);
        assert!(k.ping_outstanding());
        assert_eq!(
            k.poll(60_001),
            KeepAliveAction::Wait,
            "one PINGREQ at a time"
        );
        k.packet_received(60_100); // PINGRESP
        assert!(!k.ping_outstanding());
        assert_eq!(k.poll(119_999), KeepAliveAction::Wait);
        assert_eq!(k.poll(120_000), KeepAliveAction::SendPingReq);
        assert_eq!(k.wait_ms(120_000), 30_000);
        assert_eq!(k.poll(149_999), KeepAliveAction::Wait);
        assert_eq!(k.poll(150_000), KeepAliveAction::ConnectionLost);
        assert_eq!(k.poll(150_001), KeepAliveAction::ConnectionLost);
    }

    #[test]
    fn traffic_both_ways_postpones_the_ping() {
        let mut k = KeepAlive::new(10, 0);
        for t in (1_000..100_000).step_by(1_000) {
            k.packet_sent(t);
            k.packet_received(t + 50);
            assert_eq!(k.poll(t + 100), KeepAliveAction::Wait, "{t}");
        }
        // Publishing without hearing back (a half-open connection): ping anyway.
        let mut k = KeepAlive::new(10, 0);
        for t in (1_000..10_000).step_by(1_000) {
            k.packet_sent(t);
            assert_eq!(k.poll(t), KeepAliveAction::Wait);
        }
        k.packet_sent(10_000);
        assert_eq!(k.poll(10_000), KeepAliveAction::SendPingReq);
        // Any packet answers it, not only PINGRESP.
        k.packet_received(12_000);
        assert_eq!(k.poll(16_000), KeepAliveAction::Wait);
    }

    #[test]
    fn keep_alive_zero_is_off_and_edges_do_not_overflow() {
        let mut k = KeepAlive::new(0, 0);
        assert_eq!(k.poll(u64::MAX), KeepAliveAction::Wait);
        assert_eq!(k.wait_ms(0), u64::MAX);
        let mut k = KeepAlive::new(u16::MAX, u64::MAX - 1);
        assert_eq!(k.poll(u64::MAX), KeepAliveAction::Wait);
        assert_eq!(k.wait_ms(u64::MAX), u64::from(u16::MAX) * 1000 - 1);
        assert_eq!(k.poll(0), KeepAliveAction::Wait, "clock going back");
        let mut k = KeepAlive::new(1, 0);
        assert_eq!(k.poll(u64::MAX), KeepAliveAction::SendPingReq);
        assert_eq!(k.wait_ms(u64::MAX), 500);
        assert_eq!(k.poll(u64::MAX), KeepAliveAction::Wait);
    }
}

//! Addressed datagrams as RadioHead's RHDatagram: every packet carries TO, FROM, ID, FLAGS; a node keeps what is
//! addressed to it or to the broadcast address, or everything in promiscuous mode. Every transmission passes the
//! duty-cycle limiter here, so data, retries and ACKs all count, and a [`TransmitObserver`] sees each of them as
//! it goes on air (live counters, a ledger of the airtime kept across restarts).

use core::time::Duration;

use thiserror::Error;

use crate::duty_cycle::{DutyCycleLimiter, FrameExceedsBudget};
use crate::frame::{Frame, FrameError, Header, BROADCAST, MAX_FRAME_LEN};
use crate::hal::Clock;
use crate::packet_radio::{PacketRadio, PacketRadioError, Reception};

/// A frame received and accepted by the address filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedFrame {
    /// Its header.
    pub header: Header,
    /// The data after the header.
    pub data: Vec<u8>,
    /// Packet RSSI, dBm.
    pub rssi_dbm: i16,
    /// Packet SNR, quarter dB.
    pub snr_quarter_db: i8,
}

/// Errors of the datagram layers.
#[derive(Debug, Error)]
pub enum LinkError {
    /// The radio failed.
    #[error(transparent)]
    Radio(#[from] PacketRadioError),
    /// The frame cannot be built.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The duty-cycle budget forbids sending now.
    #[error("duty cycle: a frame of {airtime:?} on air may not go before {wait:?} from now")]
    DutyCycle {
        /// Time on air of the refused frame.
        airtime: Duration,
        /// How long until it may go.
        wait: Duration,
    },
    /// The frame is longer than the whole budget.
    #[error(transparent)]
    ExceedsBudget(#[from] FrameExceedsBudget),
    /// The observer could not keep a record of the frame's airtime (the frame was not sent).
    #[error("keeping the airtime record: {0}")]
    Observer(#[source] std::io::Error),
    /// No acknowledgement after every retry.
    #[error("no ACK from node {to} for frame {id} after {attempts} transmissions")]
    NoAck {
        /// Destination.
        to: u8,
        /// Frame ID.
        id: u8,
        /// Transmissions made.
        attempts: u8,
    },
}

/// Counters of the datagram layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DatagramStats {
    /// Frames sent.
    pub sent: u64,
    /// Frames accepted.
    pub accepted: u64,
    /// Packets for another node, dropped by the address filter.
    pub filtered: u64,
    /// Packets too short to be frames.
    pub malformed: u64,
    /// Packets the radio rejected (CRC).
    pub rejected: u64,
}

/// One frame going on air, as a [`TransmitObserver`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct OnAir<'a> {
    pub header: Header,
    /// Its time on air.
    pub airtime: Duration,
    /// The clock's instant it starts.
    pub start: Duration,
    /// The duty-cycle limiter, already charged with this frame.
    pub limiter: Option<&'a DutyCycleLimiter>,
}

/// Told about every frame the datagram layer sends, while a reliable send's retries are still going on.
pub trait TransmitObserver: Send {
    /// Just before the frame goes on air, with the limiter already charged: keep the airtime record here, so
    /// that a crash during the transmission over-counts rather than under-counts. An error stops the frame.
    fn before_transmit(&mut self, _frame: &OnAir<'_>) -> std::io::Result<()> {
        Ok(())
    }

    /// The radio sent the frame.
    fn transmitted(&mut self, _frame: &OnAir<'_>) {}
}

/// RHDatagram over a [`PacketRadio`] with a [`Clock`].
pub struct Datagram<R, C> {
    radio: R,
    clock: C,
    address: u8,
    promiscuous: bool,
    limiter: Option<DutyCycleLimiter>,
    observer: Option<Box<dyn TransmitObserver>>,
    stats: DatagramStats,
}

impl<R: PacketRadio, C: Clock> Datagram<R, C> {
    /// A node with address `address` (not 0xFF) and no duty-cycle limit.
    pub fn new(radio: R, clock: C, address: u8) -> Self {
        Self {
            radio,
            clock,
            address,
            promiscuous: false,
            limiter: None,
            observer: None,
            stats: DatagramStats::default(),
        }
    }

    /// Limits every transmission by `limiter` (use the band's duty cycle from [`crate::region`]).
    pub fn with_duty_cycle(mut self, limiter: DutyCycleLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Tells `observer` about every frame this layer sends from now on (replacing any earlier one).
    pub fn set_observer(&mut self, observer: Box<dyn TransmitObserver>) {
        self.observer = Some(observer);
    }

    /// Accept every frame whatever its destination.
    pub fn set_promiscuous(&mut self, on: bool) {
        self.promiscuous = on;
    }

    /// This node's address.
    pub fn address(&self) -> u8 {
        self.address
    }

    /// Counters.
    pub fn stats(&self) -> DatagramStats {
        self.stats
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The radio.
    pub fn radio(&self) -> &R {
        &self.radio
    }

    /// The radio, mutably (diagnostics, reconfiguration).
    pub fn radio_mut(&mut self) -> &mut R {
        &mut self.radio
    }

    /// The duty-cycle limiter, if any.
    pub fn limiter(&self) -> Option<&DutyCycleLimiter> {
        self.limiter.as_ref()
    }

    /// The duty-cycle limiter, mutably (to restore a ledger kept across a restart).
    pub fn limiter_mut(&mut self) -> Option<&mut DutyCycleLimiter> {
        self.limiter.as_mut()
    }

    /// Gives radio and clock back.
    pub fn into_parts(self) -> (R, C) {
        (self.radio, self.clock)
    }

    /// How long from now until a frame with `data_len` data bytes may go (zero when it may go now).
    pub fn duty_cycle_wait(&self, data_len: usize) -> Result<Duration, LinkError> {
        let airtime = self.radio.time_on_air(crate::frame::HEADER_LEN + data_len);
        match &self.limiter {
            None => Ok(Duration::ZERO),
            Some(limiter) => {
                let now = self.clock.now();
                Ok(limiter.earliest_start(now, airtime)? - now)
            }
        }
    }

    /// Sends one frame with the given header fields (FROM is this node).
    pub fn send(&mut self, to: u8, id: u8, flags: u8, data: &[u8]) -> Result<(), LinkError> {
        let header = Header {
            to,
            from: self.address,
            id,
            flags,
        };
        let frame = Frame::new(header, data)?;
        let mut buf = [0u8; MAX_FRAME_LEN];
        let bytes = frame.encode(&mut buf);
        let airtime = self.radio.time_on_air(bytes.len());
        let now = self.clock.now();
        if let Some(limiter) = &self.limiter {
            let earliest = limiter.earliest_start(now, airtime)?;
            if earliest > now {
                return Err(LinkError::DutyCycle {
                    airtime,
                    wait: earliest - now,
                });
            }
        }
        // Charged before the radio is asked: a frame that may have gone out before the radio failed counts.
        if let Some(limiter) = &mut self.limiter {
            limiter.record(now, airtime);
        }
        let on_air = OnAir {
            header,
            airtime,
            start: now,
            limiter: self.limiter.as_ref(),
        };
        if let Some(observer) = &mut self.observer {
            observer
                .before_transmit(&on_air)
                .map_err(LinkError::Observer)?;
        }
        self.radio.transmit(bytes)?;
        self.stats.sent += 1;
        if let Some(observer) = &mut self.observer {
            observer.transmitted(&on_air);
        }
        Ok(())
    }

    /// Waits up to `timeout` for a frame that passes the address filter.
    pub fn receive(&mut self, timeout: Duration) -> Result<Option<ReceivedFrame>, LinkError> {
        let deadline = self.clock.now() + timeout;
        loop {
            let now = self.clock.now();
            if now >= deadline {
                return Ok(None);
            }
            match self.radio.receive(deadline - now)? {
                Reception::Timeout => continue,
                Reception::Rejected(_) => self.stats.rejected += 1,
                Reception::Packet(packet) => match Frame::parse(packet.payload()) {
                    Err(_) => self.stats.malformed += 1,
                    Ok(frame) => {
                        let to = frame.header.to;
                        if self.promiscuous || to == self.address || to == BROADCAST {
                            self.stats.accepted += 1;
                            return Ok(Some(ReceivedFrame {
                                header: frame.header,
                                data: frame.data.to_vec(),
                                rssi_dbm: packet.rssi_dbm,
                                snr_quarter_db: packet.snr_quarter_db,
                            }));
                        }
                        self.stats.filtered += 1;
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duty_cycle::DutyCycle;
    use crate::frame::flags;
    use crate::packet_radio::{RejectReason, RxPacket};
    use crate::scripted::{ScriptedClock, ScriptedRadio};

    const US: u8 = 1;
    const PEER: u8 = 10;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn node() -> Datagram<ScriptedRadio, ScriptedClock> {
        let clock = ScriptedClock::new();
        Datagram::new(ScriptedRadio::new(clock.clone()), clock, US)
    }

    fn frame(to: u8, from: u8, id: u8, data: &[u8]) -> Vec<u8> {
        Frame::new(
            Header {
                to,
                from,
                id,
                flags: 0,
            },
            data,
        )
        .unwrap()
        .to_vec()
    }

    #[test]
    fn keeps_frames_to_us_and_broadcasts_and_drops_the_rest() {
        let mut node = node();
        node.radio_mut()
            .hear(&frame(7, PEER, 1, b"for node 7"))
            .hear(&frame(US, PEER, 2, b"for us"))
            .hear(&frame(BROADCAST, PEER, 3, b"for all"))
            .hear(&frame(0, PEER, 4, b"for node 0"));
        let first = node.receive(MS(100)).unwrap().unwrap();
        assert_eq!((first.header.id, &first.data[..]), (2, &b"for us"[..]));
        let second = node.receive(MS(100)).unwrap().unwrap();
        assert_eq!((second.header.to, second.header.id), (BROADCAST, 3));
        assert_eq!(node.receive(MS(100)).unwrap(), None);
        let stats = node.stats();
        assert_eq!((stats.accepted, stats.filtered), (2, 2));
    }

    #[test]
    fn promiscuous_keeps_every_frame() {
        let mut node = node();
        node.set_promiscuous(true);
        node.radio_mut().hear(&frame(7, PEER, 1, b"for node 7"));
        let heard = node.receive(MS(100)).unwrap().unwrap();
        assert_eq!(heard.header.to, 7);
        assert_eq!(node.stats().filtered, 0);
    }

    #[test]
    fn rejected_and_malformed_packets_are_counted_and_skipped() {
        let mut node = node();
        node.radio_mut()
            .script(MS(0), Ok(Reception::Rejected(RejectReason::CrcError)))
            .hear(&[US, PEER, 1])
            // A wake-up with nothing in it (a chip's stale interrupt) is no packet either.
            .script(MS(0), Ok(Reception::Timeout))
            .script(
                MS(5),
                Ok(Reception::Packet(
                    RxPacket::new(&frame(US, PEER, 2, b"ok"), -101, -7).unwrap(),
                )),
            );
        let heard = node.receive(MS(100)).unwrap().unwrap();
        assert_eq!(
            (heard.data, heard.rssi_dbm, heard.snr_quarter_db),
            (b"ok".to_vec(), -101, -7)
        );
        let stats = node.stats();
        assert_eq!((stats.rejected, stats.malformed, stats.accepted), (1, 1, 1));
    }

    #[test]
    fn a_receive_with_nothing_heard_ends_at_its_timeout() {
        let mut node = node();
        node.radio_mut()
            .hear_at(MS(300), &frame(US, PEER, 1, b"late"));
        assert_eq!(node.receive(MS(200)).unwrap(), None);
        assert_eq!(node.clock().now(), MS(200));
        assert!(node.receive(MS(200)).unwrap().is_some());
        assert_eq!(node.clock().now(), MS(300));
    }

    #[test]
    fn sends_one_frame_from_this_node_with_the_given_header() {
        let mut node = node();
        node.send(PEER, 200, flags::RETRY, b"data").unwrap();
        let sent = node.radio().transmissions();
        assert_eq!(sent.len(), 1);
        let frame = sent[0].frame().unwrap();
        assert_eq!(
            frame.header,
            Header {
                to: PEER,
                from: US,
                id: 200,
                flags: flags::RETRY
            }
        );
        assert_eq!(frame.data, b"data");
        assert_eq!(node.stats().sent, 1);
    }

    #[test]
    fn radio_failures_come_up_as_link_errors() {
        let mut node = node();
        node.radio_mut()
            .fail_next_transmit(PacketRadioError::chip(std::io::Error::other("SPI gone")));
        let err = node.send(PEER, 1, 0, b"x").unwrap_err();
        assert!(matches!(err, LinkError::Radio(_)), "{err}");
        assert_eq!(err.to_string(), "SPI gone");
        assert_eq!(node.stats().sent, 0);
        node.radio_mut().script(
            MS(0),
            Err(PacketRadioError::chip(std::io::Error::other("DIO0 gone"))),
        );
        assert!(matches!(node.receive(MS(10)), Err(LinkError::Radio(_))));
    }

    #[test]
    fn a_frame_the_duty_cycle_budget_cannot_take_now_is_refused_until_it_can() {
        // 1 % of 10 s is 100 ms: room for one frame of 60 ms, not two.
        let clock = ScriptedClock::new();
        let radio = ScriptedRadio::new(clock.clone()).with_time_on_air(|_| MS(60));
        let limiter =
            DutyCycleLimiter::with_window(DutyCycle::ONE_PERCENT, Duration::from_secs(10));
        let mut node = Datagram::new(radio, clock.clone(), US).with_duty_cycle(limiter);
        assert_eq!(node.duty_cycle_wait(4).unwrap(), Duration::ZERO);
        node.send(PEER, 1, 0, b"data").unwrap();
        // The first frame ran 0..60 ms (now is 60 ms). A second of 60 ms fits once no more than 40 ms of the
        // first lies in the 10 s window that ends with it: starting at 9.96 s, 9.9 s from now.
        let wait = node.duty_cycle_wait(4).unwrap();
        assert_eq!(wait, MS(9_900));
        match node.send(PEER, 2, 0, b"data") {
            Err(LinkError::DutyCycle { airtime, wait: w }) => {
                assert_eq!((airtime, w), (MS(60), wait));
            }
            other => panic!("expected a duty-cycle refusal, got {other:?}"),
        }
        assert_eq!(node.radio().transmissions().len(), 1);
        assert_eq!(node.limiter().map(|l| l.used(clock.now())), Some(MS(60)));
        clock.advance(wait);
        node.send(PEER, 2, 0, b"data").unwrap();
        assert_eq!(node.radio().transmissions().len(), 2);
    }

    #[test]
    fn a_frame_longer_than_the_whole_budget_is_an_error_of_its_own() {
        let clock = ScriptedClock::new();
        let radio = ScriptedRadio::new(clock.clone()).with_time_on_air(|_| MS(200));
        let limiter =
            DutyCycleLimiter::with_window(DutyCycle::ONE_PERCENT, Duration::from_secs(10));
        let mut node = Datagram::new(radio, clock, US).with_duty_cycle(limiter);
        assert!(matches!(
            node.send(PEER, 1, 0, b"x"),
            Err(LinkError::ExceedsBudget(_))
        ));
        assert!(matches!(
            node.duty_cycle_wait(1),
            Err(LinkError::ExceedsBudget(_))
        ));
        assert!(node.radio().transmissions().is_empty());
    }
}

//! Addressed datagrams as RadioHead's RHDatagram: every packet carries TO, FROM, ID, FLAGS; a node keeps what is
//! addressed to it or to the broadcast address, or everything in promiscuous mode. Every transmission passes the
//! duty-cycle limiter here, so data, retries and ACKs all count.

use core::time::Duration;

use thiserror::Error;

use crate::duty_cycle::{DutyCycleLimiter, FrameExceedsBudget};
use crate::frame::{Frame, FrameError, Header, BROADCAST, MAX_FRAME_LEN};
use crate::hal::Clock;
use crate::packet_radio::PacketRadio;
use crate::sx1276::{RadioError, Reception};

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
    Radio(#[from] RadioError),
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

/// RHDatagram over a [`PacketRadio`] with a [`Clock`].
pub struct Datagram<R, C> {
    radio: R,
    clock: C,
    address: u8,
    promiscuous: bool,
    limiter: Option<DutyCycleLimiter>,
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
            stats: DatagramStats::default(),
        }
    }

    /// Limits every transmission by `limiter` (use the band's duty cycle from [`crate::region`]).
    pub fn with_duty_cycle(mut self, limiter: DutyCycleLimiter) -> Self {
        self.limiter = Some(limiter);
        self
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
        let frame = Frame::new(
            Header {
                to,
                from: self.address,
                id,
                flags,
            },
            data,
        )?;
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
        self.radio.transmit(bytes)?;
        if let Some(limiter) = &mut self.limiter {
            limiter.record(now, airtime);
        }
        self.stats.sent += 1;
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

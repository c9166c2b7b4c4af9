//! Register-level SX1276 simulator and a LoRa channel joining any number of simulated chips, in virtual time.
//!
//! The real `tmc_radio::Sx1276` driver runs on it unchanged: each simulated chip offers an
//! [`embedded_hal::spi::SpiDevice`], a RESET [`embedded_hal::digital::OutputPin`], a [`tmc_radio::hal::Dio0`]
//! and a [`embedded_hal::delay::DelayNs`], plus a [`tmc_radio::hal::Clock`] for the datagram layers.
//! [`sim_link`] puts the driver on a simulated chip under RadioHead reliable datagrams in one call.
//!
//! The channel delivers a packet from one chip to another only when frequency, spreading factor, bandwidth,
//! sync word and I/Q polarity agree and the receiver was listening when the preamble ended; it times packets
//! with the datasheet airtime, and can lose, corrupt (CRC error) and collide them. Randomness comes from one
//! seeded generator, so a run is repeatable.
//!
//! # Threads and virtual time
//! A [`Participant`] is one thread of control. Virtual time advances only when every participant is blocked
//! in the simulator (waiting for DIO0 or in a delay), idle ([`Participant::idle`]) or dropped; SPI transfers
//! take no time. Two drivers on two threads each get their own participant ([`SimChannel::add_chip`]); two
//! drivers used from one thread share one ([`SimChannel::add_chip_for`]). A participant that exists but does
//! nothing holds time still: drop it, or wrap work outside the simulator (sockets, queues) in
//! [`Participant::idle`]. Create every participant before any thread starts waiting: one created later
//! joins a clock that may already have run ahead without it.
//!
//! # Real time and the air directory
//! [`SimChannel::realtime`] makes a channel whose time is the wall time since it was created: delays, DIO0
//! waits and [`SimClock`] take as long as they say, participants never hold time back (so [`Participant::idle`]
//! is not needed, though harmless), and packets still go on air, lock and end at their datasheet times. That is
//! what a simulated node in a long-running process needs, e.g. a relay and a gateway that a test starts, kills
//! and restarts.
//!
//! [`air::join`] (Unix only) links such processes: every process that names the same directory (an [`air::AirSpec`],
//! written `sim:DIR,loss=0.2,corrupt=0.01,seed=7`) gets a real-time channel with one local chip, bound to the
//! Unix datagram socket `DIR/<name>.sock`. When the local chip starts transmitting, the packet and its radio
//! settings go to every other socket in the directory, and each receiver puts it on its own air at once from a
//! remote sender: it locks after the preamble and raises RxDone at the end of the time on air, as in one
//! process. Loss, corruption and collisions are decided by each receiver with its own configuration. Sockets
//! left by killed processes are skipped by senders and replaced when a process of that name joins again.
//!
//! [`air_bridge::AirBridge`] (Unix only) joins two such directories on two machines over one byte stream
//! (e.g. a serial port between two VMs): each side's bridge is a node of its directory that writes what the
//! local nodes send to the stream as hex lines, and sends what it reads from the stream to the local nodes.
//! The binary `tmc-air-bridge` runs one on a character device and reopens it when the peer goes away.

#[cfg(unix)]
pub mod air;
#[cfg(unix)]
pub mod air_bridge;
mod chip;
mod devices;
mod driver;
mod world;

use core::time::Duration;
use std::sync::Arc;

pub use devices::{SimClock, SimDelay, SimDio0, SimProbe, SimResetPin, SimSpi, SimSpiError};
pub use driver::{sim_link, SimSx1276};

use crate::chip::Chip;
use crate::world::{Participant as ParticipantState, Shared};

/// Channel behaviour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelConfig {
    /// Seed of the one random generator behind loss, corruption and corrupted bytes.
    pub seed: u64,
    /// Probability that a receiver misses a packet entirely (per packet and receiver).
    pub loss: f64,
    /// Probability that a received packet fails its CRC (per packet and receiver).
    pub corruption: f64,
    /// RegPktSnrValue of delivered packets (quarter dB).
    pub snr_quarter_db: i8,
    /// RegPktRssiValue of delivered packets.
    pub rssi_register: u8,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            loss: 0.0,
            corruption: 0.0,
            snr_quarter_db: 38,
            rssi_register: 90,
        }
    }
}

/// What happened on the channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Packets put on air.
    pub transmissions: u64,
    /// Packet receptions delivered intact.
    pub delivered: u64,
    /// Receptions lost to the configured loss.
    pub lost: u64,
    /// Receptions delivered with a CRC error (corruption or collision).
    pub corrupted: u64,
    /// Receptions garbled by an overlapping packet.
    pub collisions: u64,
    /// TX attempts with reserved modem register values.
    pub invalid_configs: u64,
}

/// A simulated LoRa channel. Cheap to clone; every clone is the same channel.
#[derive(Clone)]
pub struct SimChannel {
    shared: Arc<Shared>,
}

/// One thread of control in virtual time. Cloning shares it; when the last clone (including those inside the
/// chip devices) is dropped, the participant leaves and no longer holds time back.
#[derive(Clone)]
pub struct Participant {
    token: Arc<ParticipantToken>,
}

struct ParticipantToken {
    shared: Arc<Shared>,
    pid: usize,
}

impl Drop for ParticipantToken {
    fn drop(&mut self) {
        self.shared
            .set_participant(self.pid, ParticipantState::Detached);
    }
}

impl Participant {
    fn pid(&self) -> usize {
        self.token.pid
    }

    /// Runs `f` (something outside the simulator: a socket, a channel receive) without holding virtual time
    /// still, then takes part again.
    pub fn idle<R>(&self, f: impl FnOnce() -> R) -> R {
        self.token
            .shared
            .set_participant(self.pid(), ParticipantState::Idle);
        let result = f();
        self.token
            .shared
            .set_participant(self.pid(), ParticipantState::Running);
        result
    }

    /// A delay in virtual time for this participant.
    pub fn delay(&self) -> SimDelay {
        SimDelay {
            shared: self.token.shared.clone(),
            participant: self.clone(),
        }
    }

    /// Sleeps in virtual time (in real time: for `duration` of wall time).
    pub fn sleep(&self, duration: Duration) {
        let shared = &self.token.shared;
        let deadline = shared
            .lock()
            .now
            .saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
        shared.wait(self.pid(), deadline, None);
    }
}

/// Everything needed to build a driver on one simulated chip.
pub struct SimChip {
    /// SPI device (chip select included).
    pub spi: SimSpi,
    /// NRESET.
    pub reset: SimResetPin,
    /// DIO0.
    pub dio0: SimDio0,
    /// Delay in virtual time.
    pub delay: SimDelay,
    /// Virtual clock.
    pub clock: SimClock,
    /// Direct view of the chip.
    pub probe: SimProbe,
    /// The participant the chip's waits belong to.
    pub participant: Participant,
}

impl SimChannel {
    /// An empty channel at virtual time zero.
    pub fn new(config: ChannelConfig) -> Self {
        Self {
            shared: Arc::new(Shared::new(config)),
        }
    }

    /// An empty channel whose time follows the wall clock: zero now, then the time elapsed since (see the
    /// crate documentation). Waits take real time and no participant holds time back.
    pub fn realtime(config: ChannelConfig) -> Self {
        Self {
            shared: Arc::new(Shared::realtime(config)),
        }
    }

    /// Whether time follows the wall clock ([`SimChannel::realtime`]).
    pub fn is_realtime(&self) -> bool {
        self.shared.is_realtime()
    }

    /// A new participant (one per thread that drives chips).
    pub fn participant(&self) -> Participant {
        let mut world = self.shared.lock();
        world.participants.push(ParticipantState::Running);
        let pid = world.participants.len() - 1;
        Participant {
            token: Arc::new(ParticipantToken {
                shared: self.shared.clone(),
                pid,
            }),
        }
    }

    /// A new chip with its own participant: give it to its own thread.
    pub fn add_chip(&self) -> SimChip {
        let participant = self.participant();
        self.add_chip_for(&participant)
    }

    /// A new chip driven by an existing participant (several chips used from one thread).
    pub fn add_chip_for(&self, participant: &Participant) -> SimChip {
        let chip = {
            let mut world = self.shared.lock();
            world.chips.push(Chip::new());
            world.chips.len() - 1
        };
        let shared = &self.shared;
        SimChip {
            spi: SimSpi {
                shared: shared.clone(),
                chip,
                _participant: participant.clone(),
            },
            reset: SimResetPin {
                shared: shared.clone(),
                chip,
            },
            dio0: SimDio0 {
                shared: shared.clone(),
                chip,
                participant: participant.clone(),
            },
            delay: participant.delay(),
            clock: self.clock(),
            probe: SimProbe {
                shared: shared.clone(),
                chip,
            },
            participant: participant.clone(),
        }
    }

    /// The virtual clock.
    pub fn clock(&self) -> SimClock {
        SimClock {
            shared: self.shared.clone(),
        }
    }

    /// Current virtual time (in real time: the wall time since the channel was created).
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.shared.lock().now)
    }

    /// Counters. On a channel joined to an air directory they count what this process saw:
    /// `transmissions` are those of local chips, receptions include packets from other processes.
    pub fn stats(&self) -> ChannelStats {
        self.shared.lock().stats
    }

    /// Changes the loss probability from now on.
    pub fn set_loss(&self, loss: f64) {
        self.shared.lock().config.loss = loss;
    }

    /// Changes the corruption probability from now on.
    pub fn set_corruption(&self, corruption: f64) {
        self.shared.lock().config.corruption = corruption;
    }
}

//! The shared state behind a [`crate::SimChannel`]: every chip, what is on air, the participants (threads of
//! control) and virtual time.
//!
//! Time is virtual and advances only when every participant is waiting (on DIO0 or a delay) or idle. It then
//! jumps to the next thing that can happen — a transmission's preamble lock, its end, or a waiter's deadline —
//! and wakes exactly the participants whose wait is over. SPI transfers take no virtual time. With one seed
//! and the same sequence of operations, runs are identical.
//!
//! In real time ([`Shared::realtime`]) `now` is the wall time since the channel was made instead. Nobody holds
//! time back: every lock of the world first runs the on-air events that are due by the wall clock, and a waiter
//! sleeps on the condition variable until the earlier of its deadline and the next on-air event, so it wakes
//! in time to run that event itself even when no other thread touches the world.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use embedded_hal::spi::Operation;
use tmc_radio::airtime::{preamble_time, time_on_air};
use tmc_radio::modem::ModemConfig;
use tmc_radio::regs::irq;

use crate::chip::{AirParams, Chip, Locked};
use crate::{ChannelConfig, ChannelStats};

/// State of one participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Participant {
    /// Doing something: time may not advance.
    Running,
    /// Blocked until `deadline` (ns) or, if `dio0` names a chip, until its DIO0 is high.
    Waiting { deadline: u64, dio0: Option<usize> },
    /// Outside the simulation (e.g. waiting on a socket): does not hold time back.
    Idle,
    /// Gone for good.
    Detached,
}

/// What a transmitter puts on air: enough for any receiver, here or in another process, to time the packet
/// and decide whether it hears it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Emission {
    pub modem: ModemConfig,
    pub air: AirParams,
    pub payload: Vec<u8>,
}

/// Called when a local chip starts a transmission (the inter-process air forwards it). It runs with the world
/// locked, so it must be quick and must not touch the channel.
pub(crate) type TransmitHook = Box<dyn FnMut(&Emission) + Send>;

/// A packet on air.
#[derive(Clone, Debug)]
struct Transmission {
    id: u64,
    /// The local chip sending it, or `None` for a sender in another process: no local chip is its sender.
    from: Option<usize>,
    /// For a sender in another process, its identity on the air (see [`SharedWorld::inject`]).
    remote: Option<u32>,
    start: u64,
    lock_at: u64,
    end: u64,
    locked: bool,
    payload: Vec<u8>,
    air: AirParams,
    crc_on: bool,
}

impl Transmission {
    fn next_event(&self) -> (u64, u8) {
        // At equal times an end goes before a lock, so a receiver freed by one packet may lock on the next.
        if self.locked {
            (self.end, 0)
        } else {
            (self.lock_at, 1)
        }
    }
}

pub(crate) struct World {
    pub now: u64,
    pub config: ChannelConfig,
    pub stats: ChannelStats,
    pub chips: Vec<Chip>,
    pub participants: Vec<Participant>,
    rng: fastrand::Rng,
    on_air: Vec<Transmission>,
    next_tx_id: u64,
    on_transmit: Option<TransmitHook>,
}

pub(crate) struct Shared {
    world: Mutex<World>,
    wake: Condvar,
    /// Real-time mode: virtual time zero is this instant and `now` follows the wall clock.
    epoch: Option<Instant>,
}

impl Shared {
    /// A channel in virtual time.
    pub fn new(config: ChannelConfig) -> Self {
        Self::with_epoch(config, None)
    }

    /// A channel whose time is the wall time since now.
    pub fn realtime(config: ChannelConfig) -> Self {
        Self::with_epoch(config, Some(Instant::now()))
    }

    fn with_epoch(config: ChannelConfig, epoch: Option<Instant>) -> Self {
        let world = World {
            now: 0,
            rng: fastrand::Rng::with_seed(config.seed),
            config,
            stats: ChannelStats::default(),
            chips: Vec::new(),
            participants: Vec::new(),
            on_air: Vec::new(),
            next_tx_id: 0,
            on_transmit: None,
        };
        Self {
            world: Mutex::new(world),
            wake: Condvar::new(),
            epoch,
        }
    }

    /// Whether `now` follows the wall clock.
    pub fn is_realtime(&self) -> bool {
        self.epoch.is_some()
    }

    /// The world, recovering from a panicked participant (the state stays consistent between operations). In
    /// real time, the on-air events due by now have run.
    pub fn lock(&self) -> MutexGuard<'_, World> {
        let mut world = self.world.lock().unwrap_or_else(PoisonError::into_inner);
        self.catch_up(&mut world);
        world
    }

    /// Real time: runs the events due by the wall clock, and wakes the waiters if any ran (a DIO0 may be high).
    fn catch_up(&self, world: &mut World) {
        let Some(epoch) = self.epoch else { return };
        let wall = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if wall > world.now && world.run_events_until(wall) {
            self.wake.notify_all();
        }
    }

    /// Real time: something changed that waiters must re-evaluate (a DIO0 level, or a new event on air that
    /// may come before the deadline they sleep towards). In virtual time waiters are woken only by `step`, as
    /// before, so runs stay identical.
    pub fn touched(&self) {
        if self.is_realtime() {
            self.wake.notify_all();
        }
    }

    /// Installs (or removes) the hook told about every local transmission.
    pub fn set_transmit_hook(&self, hook: Option<TransmitHook>) {
        self.lock().on_transmit = hook;
    }

    /// A packet from sender `remote` in another process starts now. A radio sends one packet at a time, so its
    /// previous packet, if still on air here, ended by now: its datagram only arrived late (a thread not
    /// scheduled at once), and without this it would seem to overlap the next one and collide with it.
    pub fn inject(&self, remote: u32, emission: Emission) {
        let mut world = self.lock();
        while let Some(index) = world.on_air.iter().position(|t| t.remote == Some(remote)) {
            if !world.on_air[index].locked {
                world.lock_receivers(index);
            }
            let mut previous = world.on_air.remove(index);
            previous.end = world.now;
            world.end_transmission(previous);
        }
        world.put_on_air(None, Some(remote), emission);
        drop(world);
        self.wake.notify_all();
    }

    /// Changes a participant's state and lets waiters re-evaluate.
    pub fn set_participant(&self, pid: usize, state: Participant) {
        let mut world = self.lock();
        world.participants[pid] = state;
        drop(world);
        self.wake.notify_all();
    }

    /// Blocks participant `pid` until virtual time reaches `deadline` or the DIO0 of chip `dio0` is high.
    /// Returns whether DIO0 is high.
    pub fn wait(&self, pid: usize, deadline: u64, dio0: Option<usize>) -> bool {
        if self.is_realtime() {
            return self.wait_realtime(pid, deadline, dio0);
        }
        let mut world = self.lock();
        loop {
            let high = dio0.is_some_and(|c| world.chips[c].dio0());
            if high || world.now >= deadline {
                world.participants[pid] = Participant::Running;
                return high;
            }
            world.participants[pid] = Participant::Waiting { deadline, dio0 };
            if world.nobody_running() {
                world.step();
                self.wake.notify_all();
                continue;
            }
            world = self
                .wake
                .wait(world)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// [`wait`](Self::wait) in real time: sleeps until the deadline or the next on-air event, whichever comes
    /// first, runs what is due and looks again. Other participants never hold time back.
    fn wait_realtime(&self, pid: usize, deadline: u64, dio0: Option<usize>) -> bool {
        let mut world = self.lock();
        loop {
            let high = dio0.is_some_and(|c| world.chips[c].dio0());
            if high || world.now >= deadline {
                world.participants[pid] = Participant::Running;
                return high;
            }
            world.participants[pid] = Participant::Waiting { deadline, dio0 };
            let until = world.next_event().map_or(deadline, |e| e.min(deadline));
            let timeout = Duration::from_nanos(until.saturating_sub(world.now));
            world = self
                .wake
                .wait_timeout(world, timeout)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
            self.catch_up(&mut world);
        }
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Byte-level SPI protocol: the first byte is the address (bit 7 = write), then data with auto-increment
/// (except on RegFifo, whose pointer moves instead).
struct SpiCursor {
    address: Option<u8>,
    write: bool,
}

impl World {
    fn nobody_running(&self) -> bool {
        !self.participants.contains(&Participant::Running)
    }

    /// When the next on-air event (a preamble lock or a packet end) is due.
    fn next_event(&self) -> Option<u64> {
        self.on_air.iter().map(|t| t.next_event().0).min()
    }

    /// Advances to the next instant something happens and wakes whoever's wait is over.
    fn step(&mut self) {
        let deadline = self
            .participants
            .iter()
            .filter_map(|p| match p {
                Participant::Waiting { deadline, .. } => Some(*deadline),
                _ => None,
            })
            .min();
        let event = self.next_event();
        let Some(target) = deadline.into_iter().chain(event).min() else {
            return;
        };
        self.run_events_until(target.max(self.now));
        for p in &mut self.participants {
            if let Participant::Waiting { deadline, dio0 } = *p {
                if self.now >= deadline || dio0.is_some_and(|c| self.chips[c].dio0()) {
                    *p = Participant::Running;
                }
            }
        }
    }

    /// Runs every event due by `target` and moves `now` there. Returns whether any event ran.
    fn run_events_until(&mut self, target: u64) -> bool {
        let mut ran = false;
        loop {
            let next = self
                .on_air
                .iter()
                .enumerate()
                .map(|(i, t)| (t.next_event(), t.id, i))
                .filter(|((time, _), _, _)| *time <= target)
                .min();
            let Some(((time, kind), _, index)) = next else {
                break;
            };
            ran = true;
            self.now = time;
            if kind == 1 {
                self.lock_receivers(index);
            } else {
                let tx = self.on_air.remove(index);
                self.end_transmission(tx);
            }
        }
        self.now = target;
        ran
    }

    /// Preamble detected: every listening chip that hears the transmission locks on it (or loses it).
    fn lock_receivers(&mut self, index: usize) {
        self.on_air[index].locked = true;
        let tx = self.on_air[index].clone();
        for c in 0..self.chips.len() {
            let chip = &self.chips[c];
            if tx.from == Some(c) || !chip.is_listening() {
                continue;
            }
            let Ok(air) = chip.air_params() else { continue };
            if !air.hears(&tx.air) {
                continue;
            }
            if self.rng.f64() < self.config.loss {
                self.stats.lost += 1;
                continue;
            }
            let mut corrupted = self.rng.f64() < self.config.corruption;
            // Another packet already on air on the same channel garbles this one.
            if self
                .on_air
                .iter()
                .any(|o| o.id != tx.id && o.from != Some(c) && air.hears(&o.air))
            {
                corrupted = true;
                self.stats.collisions += 1;
            }
            self.chips[c].receiving = Some(Locked {
                tx: tx.id,
                corrupted,
            });
            self.chips[c].raise(irq::VALID_HEADER);
        }
    }

    fn end_transmission(&mut self, tx: Transmission) {
        if let Some(sender) = tx.from {
            if self.chips[sender].transmitting == Some(tx.id) {
                self.chips[sender].finish_tx();
            }
        }
        for c in 0..self.chips.len() {
            let Some(locked) = self.chips[c].receiving.filter(|l| l.tx == tx.id) else {
                continue;
            };
            let mut payload = tx.payload.clone();
            if locked.corrupted {
                self.stats.corrupted += 1;
                if !payload.is_empty() {
                    let i = self.rng.usize(..payload.len());
                    payload[i] ^= 0xA5;
                }
            } else {
                self.stats.delivered += 1;
            }
            let (snr, rssi) = (self.config.snr_quarter_db, self.config.rssi_register);
            // Without a CRC a garbled packet goes up unnoticed, as on a real chip.
            self.chips[c].deliver(
                &payload,
                tx.crc_on,
                locked.corrupted && tx.crc_on,
                snr,
                rssi,
            );
        }
    }

    /// Chip `c` entered TX: its FIFO payload goes on air now.
    fn start_transmission(&mut self, c: usize) {
        let chip = &self.chips[c];
        let (Ok(modem), Ok(air)) = (chip.modem(), chip.air_params()) else {
            // Reserved register values: nothing goes out and TxDone never comes, as a confused chip would do.
            self.stats.invalid_configs += 1;
            return;
        };
        let emission = Emission {
            modem,
            air,
            payload: chip.tx_payload(),
        };
        if let Some(hook) = &mut self.on_transmit {
            hook(&emission);
        }
        let id = self.put_on_air(Some(c), None, emission);
        self.stats.transmissions += 1;
        self.chips[c].transmitting = Some(id);
    }

    /// A packet from local chip `from` (or from another process) starts now. Returns its ID.
    fn put_on_air(&mut self, from: Option<usize>, remote: Option<u32>, emission: Emission) -> u64 {
        let Emission {
            modem,
            air,
            payload,
        } = emission;
        let id = self.next_tx_id;
        self.next_tx_id += 1;
        let start = self.now;
        let tx = Transmission {
            id,
            from,
            remote,
            start,
            lock_at: start.saturating_add(ns(preamble_time(&modem))),
            end: start.saturating_add(ns(time_on_air(&modem, payload.len()))),
            locked: false,
            payload,
            air,
            crc_on: modem.crc,
        };
        // A packet starting while others are being received on the same channel garbles them.
        for r in 0..self.chips.len() {
            if from == Some(r) {
                continue;
            }
            let Some(locked) = self.chips[r].receiving else {
                continue;
            };
            let hears = self.chips[r].air_params().is_ok_and(|a| a.hears(&tx.air));
            if hears && !locked.corrupted {
                self.chips[r].receiving = Some(Locked {
                    corrupted: true,
                    ..locked
                });
                self.stats.collisions += 1;
            }
        }
        debug_assert!(tx.start < tx.lock_at && tx.lock_at < tx.end);
        self.on_air.push(tx);
        id
    }

    /// Chip `c` left TX early, or was reset: its packet is cut off and nobody receives it.
    pub fn abort_transmission(&mut self, c: usize) {
        if let Some(id) = self.chips[c].transmitting.take() {
            self.on_air.retain(|t| t.id != id);
            for chip in &mut self.chips {
                if chip.receiving.is_some_and(|l| l.tx == id) {
                    chip.receiving = None;
                }
            }
        }
    }

    fn spi_byte(&mut self, c: usize, cursor: &mut SpiCursor, mosi: u8) -> u8 {
        let Some(address) = cursor.address else {
            cursor.address = Some(mosi & 0x7F);
            cursor.write = mosi & 0x80 != 0;
            return 0x00;
        };
        let miso = if cursor.write {
            let change = self.chips[c].write(address, mosi);
            if change.abort_tx {
                self.abort_transmission(c);
            }
            if change.start_tx {
                self.start_transmission(c);
            }
            0x00
        } else {
            self.chips[c].read(address)
        };
        if address != 0 {
            cursor.address = Some((address + 1) & 0x7F);
        }
        miso
    }

    /// One SPI transaction (chip select asserted throughout) on chip `c`. Returns false on an injected fault.
    pub fn spi_transaction(&mut self, c: usize, operations: &mut [Operation<'_, u8>]) -> bool {
        if self.chips[c].spi_fault {
            return false;
        }
        let mut cursor = SpiCursor {
            address: None,
            write: false,
        };
        for op in operations {
            match op {
                Operation::Read(buf) => {
                    for b in buf.iter_mut() {
                        *b = self.spi_byte(c, &mut cursor, 0x00);
                    }
                }
                Operation::Write(buf) => {
                    for b in buf.iter() {
                        self.spi_byte(c, &mut cursor, *b);
                    }
                }
                Operation::Transfer(read, write) => {
                    for i in 0..read.len().max(write.len()) {
                        let miso =
                            self.spi_byte(c, &mut cursor, write.get(i).copied().unwrap_or(0));
                        if let Some(r) = read.get_mut(i) {
                            *r = miso;
                        }
                    }
                }
                Operation::TransferInPlace(buf) => {
                    for b in buf.iter_mut() {
                        *b = self.spi_byte(c, &mut cursor, *b);
                    }
                }
                Operation::DelayNs(_) => {}
            }
        }
        true
    }
}

//! The shared state behind a [`crate::SimChannel`]: every chip, what is on air, the participants (threads of
//! control) and virtual time.
//!
//! Time is virtual and advances only when every participant is waiting (on DIO0 or a delay) or idle. It then
//! jumps to the next thing that can happen — a transmission's preamble lock, its end, or a waiter's deadline —
//! and wakes exactly the participants whose wait is over. SPI transfers take no virtual time. With one seed
//! and the same sequence of operations, runs are identical.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use embedded_hal::spi::Operation;
use tmc_radio::airtime::{preamble_time, time_on_air};
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

/// A packet on air.
#[derive(Clone, Debug)]
struct Transmission {
    id: u64,
    from: usize,
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
}

pub(crate) struct Shared {
    world: Mutex<World>,
    wake: Condvar,
}

impl Shared {
    pub fn new(config: ChannelConfig) -> Self {
        let world = World {
            now: 0,
            rng: fastrand::Rng::with_seed(config.seed),
            config,
            stats: ChannelStats::default(),
            chips: Vec::new(),
            participants: Vec::new(),
            on_air: Vec::new(),
            next_tx_id: 0,
        };
        Self {
            world: Mutex::new(world),
            wake: Condvar::new(),
        }
    }

    /// The world, recovering from a panicked participant (the state stays consistent between operations).
    pub fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
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
        let event = self.on_air.iter().map(|t| t.next_event().0).min();
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

    fn run_events_until(&mut self, target: u64) {
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
            self.now = time;
            if kind == 1 {
                self.lock_receivers(index);
            } else {
                let tx = self.on_air.remove(index);
                self.end_transmission(tx);
            }
        }
        self.now = target;
    }

    /// Preamble detected: every listening chip that hears the transmission locks on it (or loses it).
    fn lock_receivers(&mut self, index: usize) {
        self.on_air[index].locked = true;
        let tx = self.on_air[index].clone();
        for c in 0..self.chips.len() {
            let chip = &self.chips[c];
            if c == tx.from || !chip.is_listening() {
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
                .any(|o| o.id != tx.id && o.from != c && air.hears(&o.air))
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
        if self.chips[tx.from].transmitting == Some(tx.id) {
            self.chips[tx.from].finish_tx();
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
        let payload = chip.tx_payload();
        let id = self.next_tx_id;
        self.next_tx_id += 1;
        let start = self.now;
        let tx = Transmission {
            id,
            from: c,
            start,
            lock_at: start + preamble_time(&modem).as_nanos() as u64,
            end: start + time_on_air(&modem, payload.len()).as_nanos() as u64,
            locked: false,
            payload,
            air,
            crc_on: modem.crc,
        };
        // A packet starting while others are being received on the same channel garbles them.
        for r in 0..self.chips.len() {
            if r == c {
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
        self.stats.transmissions += 1;
        self.chips[c].transmitting = Some(id);
        self.on_air.push(tx);
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

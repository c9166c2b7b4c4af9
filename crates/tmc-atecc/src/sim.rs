//! A simulated ATECC508A/608A behind [`embedded_hal::i2c::I2c`] and [`embedded_hal::delay::DelayNs`], in
//! virtual time, that behaves as the datasheet says at the level of bytes on the bus:
//!
//! - It sleeps until woken: every transaction to its address is NACKed. A write to the general call address
//!   0x00 holds SDA low for 8 bit times; if that is ≥ t_WLO (60 µs, i.e. bus ≤ 133 kHz, see
//!   [`SimAtecc::set_bus_hz`]) the chip wakes, and answers `04 11 33 43` from t_WHI (1.5 ms) later. It NACKs
//!   until then.
//! - Word address 0x01 puts it to sleep (TempKey lost), 0x02 into idle (TempKey kept), 0x00 resets the
//!   output buffer pointer, 0x03 carries a command packet whose count and CRC it checks (status 0xFF when
//!   either is wrong).
//! - While a command executes it NACKs; its response can then be read in one or several reads.
//! - The watchdog puts it to sleep 1.3 s after a wake.
//! - It executes Info, Random, Nonce (pass-through), GenKey (public), Sign (external, TempKey from Nonce;
//!   status 0x0F without one) and Read (config zone, 4 or 32 bytes). Keys and signatures are deterministic
//!   fakes ([`SimAtecc::public_key`], [`SimAtecc::fake_signature`]), not real P-256: there is no P-256
//!   implementation in the workspace's lock file.
//! - Faults can be injected into the next response ([`Fault`]).
//!
//! The chip, its bus handle ([`SimI2c`]) and its delay ([`SimDelay`]) share state through `Rc<RefCell<_>>`:
//! one thread, which is what a driver test is.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{self, ErrorKind, ErrorType, NoAcknowledgeSource, Operation};

use crate::config::{CONFIG_ZONE_LEN, LOCK_CONFIG_OFFSET, LOCK_VALUE_OFFSET, UNLOCKED};
use crate::crc::crc16;
use crate::protocol::{mode, opcode, status, timing, word_address, DEFAULT_ADDRESS, WAKE_RESPONSE};

/// Watchdog: the chip sleeps this long after a wake (datasheet typical 1.3 s).
const WATCHDOG_NS: u64 = 1_300_000_000;

/// Which chip to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// ATECC508A: Info revision `00 00 50 00`.
    Atecc508a,
    /// ATECC608A: Info revision `00 00 60 02`.
    Atecc608a,
}

impl Model {
    /// What Info (revision mode) answers.
    pub const fn revision(self) -> [u8; 4] {
        match self {
            Self::Atecc508a => [0x00, 0x00, 0x50, 0x00],
            Self::Atecc608a => [0x00, 0x00, 0x60, 0x02],
        }
    }

    /// Simulated execution time of `op` in microseconds (typical-ish values, below the driver's maxima).
    const fn execution_time_us(self, op: u8) -> u64 {
        match op {
            opcode::INFO | opcode::READ => 500,
            opcode::RANDOM => 15_000,
            opcode::NONCE => 5_000,
            opcode::GENKEY => match self {
                Self::Atecc508a => 85_000,
                Self::Atecc608a => 60_000,
            },
            opcode::SIGN => match self {
                Self::Atecc508a => 40_000,
                Self::Atecc608a => 50_000,
            },
            _ => 1_000,
        }
    }
}

/// Power state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// Asleep: NACKs everything until a wake pulse; volatile state lost.
    Sleep,
    /// Idle: NACKs everything until a wake pulse; TempKey kept.
    Idle,
    /// Awake.
    Awake,
}

/// A fault the chip puts into its next command response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Flip a bit of the response's CRC.
    CorruptCrc,
    /// Answer this status byte instead of the result.
    Status(u8),
    /// Replace the count byte.
    Count(u8),
    /// Never finish executing (NACK until the watchdog fires).
    Hang,
}

/// One I²C operation seen on the bus, to any address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusEvent {
    /// A write of these bytes to this 7-bit address.
    Write(u8, Vec<u8>),
    /// A read of this many bytes from this 7-bit address.
    Read(u8, usize),
}

#[derive(Debug)]
struct Chip {
    model: Model,
    address: u8,
    bus_hz: u32,
    responsive: bool,
    now_ns: u64,
    power: Power,
    woke_at_ns: u64,
    ready_at_ns: u64,
    output: Vec<u8>,
    output_pos: usize,
    tempkey: Option<[u8; 32]>,
    config: [u8; CONFIG_ZONE_LEN],
    rng: u64,
    faults: VecDeque<Fault>,
    log: Vec<BusEvent>,
    executed: Vec<u8>,
    key_slots: u16,
}

/// The simulated chip. Clone it freely: clones are the same chip.
#[derive(Clone, Debug)]
pub struct SimAtecc {
    chip: Rc<RefCell<Chip>>,
}

/// The chip's I²C bus. Transactions to other addresses are NACKed (a write to 0x00 is the wake pulse).
#[derive(Clone, Debug)]
pub struct SimI2c {
    chip: Rc<RefCell<Chip>>,
}

/// A delay that advances the chip's virtual clock.
#[derive(Clone, Debug)]
pub struct SimDelay {
    chip: Rc<RefCell<Chip>>,
}

/// The simulated bus's error: what a real controller reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimI2cError(pub ErrorKind);

impl i2c::Error for SimI2cError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

const NACK_ADDRESS: SimI2cError =
    SimI2cError(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
const NACK_DATA: SimI2cError = SimI2cError(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data));

/// The sim's default config zone: serial number `01 23 a1 b2 | c3 d4 e5 f6 ee`, RevNum, I²C address 0xC0,
/// both zones locked.
fn default_config(model: Model) -> [u8; CONFIG_ZONE_LEN] {
    let mut config = [0u8; CONFIG_ZONE_LEN];
    config[0..4].copy_from_slice(&[0x01, 0x23, 0xA1, 0xB2]);
    config[4..8].copy_from_slice(&model.revision());
    config[8..13].copy_from_slice(&[0xC3, 0xD4, 0xE5, 0xF6, 0xEE]);
    config[14] = 0x01; // I2C_Enable
    config[16] = DEFAULT_ADDRESS << 1; // I2C_Address, 8-bit form
    config[LOCK_VALUE_OFFSET] = 0x00;
    config[LOCK_CONFIG_OFFSET] = 0x00;
    config
}

/// A response packet: count, data, CRC.
fn packet(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 3);
    // Responses here are at most 67 bytes.
    out.push((data.len() + 3) as u8);
    out.extend_from_slice(data);
    let crc = crc16(&out);
    out.extend_from_slice(&crc);
    out
}

impl SimAtecc {
    /// A sleeping chip at address 0x60 on a 100 kHz bus, keys in slots 0..=7.
    pub fn new(model: Model) -> Self {
        let chip = Chip {
            model,
            address: DEFAULT_ADDRESS,
            bus_hz: 100_000,
            responsive: true,
            now_ns: 0,
            power: Power::Sleep,
            woke_at_ns: 0,
            ready_at_ns: 0,
            output: Vec::new(),
            output_pos: 0,
            tempkey: None,
            config: default_config(model),
            rng: 0x9E37_79B9_7F4A_7C15,
            faults: VecDeque::new(),
            log: Vec::new(),
            executed: Vec::new(),
            key_slots: 0x00FF,
        };
        Self {
            chip: Rc::new(RefCell::new(chip)),
        }
    }

    /// The bus to give the driver.
    pub fn i2c(&self) -> SimI2c {
        SimI2c {
            chip: Rc::clone(&self.chip),
        }
    }

    /// The delay to give the driver.
    pub fn delay(&self) -> SimDelay {
        SimDelay {
            chip: Rc::clone(&self.chip),
        }
    }

    /// Bus clock: a wake pulse is 8 bit times of SDA low, so above 133 kHz it is shorter than t_WLO.
    pub fn set_bus_hz(&self, hz: u32) {
        self.chip.borrow_mut().bus_hz = hz.max(1);
    }

    /// An unresponsive chip (unpowered, or SDA stuck) never wakes.
    pub fn set_responsive(&self, responsive: bool) {
        self.chip.borrow_mut().responsive = responsive;
    }

    /// Moves the chip to another 7-bit address.
    pub fn set_address(&self, address: u8) {
        self.chip.borrow_mut().address = address;
    }

    /// Sets the LockConfig (87) and LockValue (86) bytes: locked 0x00, unlocked 0x55.
    pub fn set_locks(&self, config_locked: bool, data_locked: bool) {
        let byte = |locked: bool| if locked { 0x00 } else { UNLOCKED };
        let mut chip = self.chip.borrow_mut();
        chip.config[LOCK_CONFIG_OFFSET] = byte(config_locked);
        chip.config[LOCK_VALUE_OFFSET] = byte(data_locked);
    }

    /// The config zone.
    pub fn config(&self) -> [u8; CONFIG_ZONE_LEN] {
        self.chip.borrow().config
    }

    /// Queues a fault for the next command response.
    pub fn inject(&self, fault: Fault) {
        self.chip.borrow_mut().faults.push_back(fault);
    }

    /// Power state (after applying the watchdog at the current virtual time).
    pub fn power(&self) -> Power {
        let mut chip = self.chip.borrow_mut();
        chip.run_watchdog();
        chip.power
    }

    /// Virtual time since creation, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.chip.borrow().now_ns
    }

    /// Advances virtual time (e.g. to let the watchdog fire).
    pub fn advance_ns(&self, ns: u64) {
        self.chip.borrow_mut().now_ns += ns;
    }

    /// Every operation seen on the bus so far.
    pub fn bus_log(&self) -> Vec<BusEvent> {
        self.chip.borrow().log.clone()
    }

    /// The writes to the chip's address that carried a command (word address 0x03), as written.
    pub fn command_frames(&self) -> Vec<Vec<u8>> {
        let chip = self.chip.borrow();
        chip.log
            .iter()
            .filter_map(|event| match event {
                BusEvent::Write(a, bytes)
                    if *a == chip.address && bytes.first() == Some(&word_address::COMMAND) =>
                {
                    Some(bytes.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// Forgets the bus log.
    pub fn clear_log(&self) {
        self.chip.borrow_mut().log.clear();
    }

    /// Opcodes of the commands the chip accepted (count and CRC correct), in order.
    pub fn executed(&self) -> Vec<u8> {
        self.chip.borrow().executed.clone()
    }

    /// TempKey, if valid.
    pub fn tempkey(&self) -> Option<[u8; 32]> {
        self.chip.borrow().tempkey
    }

    /// The fake public key X || Y of `slot`.
    pub fn public_key(slot: u8) -> [u8; 64] {
        let mut key = [0u8; 64];
        for (i, byte) in key.iter_mut().enumerate() {
            // i < 64: the cast is exact.
            let i = i as u8;
            *byte = i.wrapping_mul(37) ^ slot.wrapping_mul(101) ^ 0x5A;
        }
        key
    }

    /// The fake signature R || S of `digest` with the key in `slot`: depends on every digest byte and the slot.
    pub fn fake_signature(slot: u8, digest: &[u8; 32]) -> [u8; 64] {
        let key = Self::public_key(slot);
        let mut signature = [0u8; 64];
        for (i, byte) in signature.iter_mut().enumerate() {
            *byte = digest[i % 32].rotate_left((i / 32) as u32 + 1) ^ key[63 - i];
        }
        signature
    }
}

impl Chip {
    fn run_watchdog(&mut self) {
        if self.power == Power::Awake && self.now_ns.saturating_sub(self.woke_at_ns) >= WATCHDOG_NS
        {
            self.power = Power::Sleep;
            self.tempkey = None;
        }
    }

    fn wake_pulse(&mut self) {
        let low_ns = 8 * 1_000_000_000 / u64::from(self.bus_hz);
        if !self.responsive || low_ns < u64::from(timing::WAKE_LOW_US) * 1_000 {
            return;
        }
        if self.power != Power::Awake {
            if self.power == Power::Sleep {
                self.tempkey = None;
            }
            self.power = Power::Awake;
            self.woke_at_ns = self.now_ns;
            self.ready_at_ns = self.now_ns + u64::from(timing::WAKE_HIGH_US) * 1_000;
            self.output = WAKE_RESPONSE.to_vec();
            self.output_pos = 0;
        }
    }

    /// Whether the chip ACKs its address now.
    fn acks(&mut self) -> bool {
        self.run_watchdog();
        self.power == Power::Awake && self.now_ns >= self.ready_at_ns
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SimI2cError> {
        let Some((&word, packet)) = bytes.split_first() else {
            return Ok(());
        };
        match word {
            word_address::RESET => self.output_pos = 0,
            word_address::SLEEP => {
                self.power = Power::Sleep;
                self.tempkey = None;
                self.output.clear();
            }
            word_address::IDLE => self.power = Power::Idle,
            word_address::COMMAND => self.command(packet),
            _ => return Err(NACK_DATA),
        }
        Ok(())
    }

    fn command(&mut self, packet: &[u8]) {
        let count_ok = packet.len() >= 7 && usize::from(packet[0]) == packet.len();
        let crc_ok = count_ok && {
            let (body, crc) = packet.split_at(packet.len() - 2);
            crc16(body) == [crc[0], crc[1]]
        };
        let (response, busy_us) = if crc_ok {
            self.executed.push(packet[1]);
            let param2 = u16::from_le_bytes([packet[3], packet[4]]);
            let data = &packet[5..packet.len() - 2];
            let response = self.execute(packet[1], packet[2], param2, data);
            (response, self.model.execution_time_us(packet[1]))
        } else {
            (packet_status(status::CRC_OR_COMM_ERROR), 100)
        };
        self.ready_at_ns = self.now_ns + busy_us * 1_000;
        self.output = response;
        self.output_pos = 0;
        if let Some(fault) = self.faults.pop_front() {
            match fault {
                Fault::CorruptCrc => {
                    if let Some(last) = self.output.last_mut() {
                        *last ^= 0x01;
                    }
                }
                Fault::Status(code) => self.output = packet_status(code),
                Fault::Count(count) => self.output[0] = count,
                Fault::Hang => self.ready_at_ns = u64::MAX,
            }
        }
    }

    fn execute(&mut self, op: u8, param1: u8, param2: u16, data: &[u8]) -> Vec<u8> {
        let parse_error = packet_status(status::PARSE_ERROR);
        match op {
            opcode::INFO => {
                if param1 != mode::INFO_REVISION || param2 != 0 || !data.is_empty() {
                    return parse_error;
                }
                packet(&self.model.revision())
            }
            opcode::RANDOM => {
                if param1 != mode::RANDOM_SEED_UPDATE || param2 != 0 || !data.is_empty() {
                    return parse_error;
                }
                let mut random = [0u8; 32];
                if self.config[LOCK_CONFIG_OFFSET] == UNLOCKED {
                    // Config unlocked: the chip returns a fixed test pattern.
                    for (i, byte) in random.iter_mut().enumerate() {
                        *byte = if i % 4 < 2 { 0xFF } else { 0x00 };
                    }
                } else {
                    for chunk in random.chunks_exact_mut(8) {
                        // xorshift64
                        self.rng ^= self.rng << 13;
                        self.rng ^= self.rng >> 7;
                        self.rng ^= self.rng << 17;
                        chunk.copy_from_slice(&self.rng.to_le_bytes());
                    }
                }
                packet(&random)
            }
            opcode::NONCE => {
                if param1 != mode::NONCE_PASSTHROUGH || param2 != 0 || data.len() != 32 {
                    return parse_error;
                }
                let mut tempkey = [0u8; 32];
                tempkey.copy_from_slice(data);
                self.tempkey = Some(tempkey);
                packet_status(status::SUCCESS)
            }
            opcode::GENKEY => {
                if param1 != mode::GENKEY_PUBLIC || param2 > 15 || !data.is_empty() {
                    return parse_error;
                }
                if self.key_slots & (1 << param2) == 0 {
                    return packet_status(status::EXECUTION_ERROR);
                }
                // param2 ≤ 15.
                packet(&SimAtecc::public_key(param2 as u8))
            }
            opcode::SIGN => {
                if param1 != mode::SIGN_EXTERNAL || param2 > 15 || !data.is_empty() {
                    return parse_error;
                }
                // Sign invalidates TempKey whatever the outcome.
                let Some(digest) = self.tempkey.take() else {
                    return packet_status(status::EXECUTION_ERROR);
                };
                if self.key_slots & (1 << param2) == 0 {
                    return packet_status(status::EXECUTION_ERROR);
                }
                packet(&SimAtecc::fake_signature(param2 as u8, &digest))
            }
            opcode::READ => {
                if param1 & 0x03 != mode::READ_ZONE_CONFIG || param1 & 0x7C != 0 || !data.is_empty()
                {
                    return parse_error;
                }
                let block = usize::from(param2 >> 3);
                let word = usize::from(param2 & 0x07);
                let (start, len) = if param1 & mode::READ_32_BYTES != 0 {
                    (block * 32, 32)
                } else {
                    (block * 32 + word * 4, 4)
                };
                if param2 > 0xFF || start + len > CONFIG_ZONE_LEN {
                    return parse_error;
                }
                packet(&self.config[start..start + len])
            }
            _ => parse_error,
        }
    }

    fn read(&mut self, buffer: &mut [u8]) {
        for byte in buffer {
            *byte = self.output.get(self.output_pos).copied().unwrap_or(0xFF);
            self.output_pos += 1;
        }
    }
}

fn packet_status(code: u8) -> Vec<u8> {
    packet(&[code])
}

impl ErrorType for SimI2c {
    type Error = SimI2cError;
}

impl i2c::I2c for SimI2c {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), SimI2cError> {
        let mut chip = self.chip.borrow_mut();
        for operation in operations.iter() {
            let event = match operation {
                Operation::Write(bytes) => BusEvent::Write(address, bytes.to_vec()),
                Operation::Read(buffer) => BusEvent::Read(address, buffer.len()),
            };
            chip.log.push(event);
        }
        if address == 0x00 {
            chip.wake_pulse();
            return Err(NACK_ADDRESS);
        }
        if address != chip.address {
            return Err(NACK_ADDRESS);
        }
        for operation in operations {
            if !chip.acks() {
                return Err(NACK_ADDRESS);
            }
            match operation {
                Operation::Write(bytes) => chip.write(bytes)?,
                Operation::Read(buffer) => chip.read(buffer),
            }
        }
        Ok(())
    }
}

impl DelayNs for SimDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.chip.borrow_mut().now_ns += u64::from(ns);
    }
}

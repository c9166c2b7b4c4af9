//! A simulated ATECC508A/608A behind [`embedded_hal::i2c::I2c`] and [`embedded_hal::delay::DelayNs`], in
//! virtual time, that behaves as the datasheet says at the level of bytes on the bus, with real P-256 keys:
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
//! - Faults can be injected into the next response ([`Fault`]).
//!
//! # Commands
//! | command | modes | what the sim does |
//! |---|---|---|
//! | Info 0x30 | 0x00 revision | `00 00 50 00` (508A) or `00 00 60 02` (608A) |
//! | Random 0x1B | 0x00 | 32 bytes from the chip's generator; the `FF FF 00 00` test pattern while the config zone is unlocked |
//! | Nonce 0x16 | 0x03 pass-through | TempKey := the 32 input bytes |
//! | GenKey 0x40 | 0x04 create, 0x00 public | a new P-256 private key made inside (only X ‖ Y leaves); the public key of the slot's key |
//! | Sign 0x41 | 0x80 external | ECDSA P-256 (RFC 6979) over the digest in TempKey; TempKey is invalid afterwards |
//! | Verify 0x45 | 0x02 external, KeyID 0x0004 (P-256) | signature R ‖ S and public key X ‖ Y in the data; 0x00 valid, 0x01 miscompare |
//! | Read 0x02 | config zone, data zone; 4 or 32 bytes | secret and private-key slots refused |
//!
//! Anything else (other opcodes, modes, KeyIDs, lengths) is a parse error, 0x03. Status codes, as the
//! ATECC508A/608A datasheets' status table and cryptoauthlib's `atca_status.h` define them:
//!
//! - **0x0F execution error** — the command is valid but not allowed in the chip's state (the datasheet: "the
//!   command was properly received but could not be executed by the device in its current state"): GenKey on a slot whose
//!   KeyConfig is not a P-256 private key (`Private` = 0), GenKey create on a slot whose SlotConfig forbids it
//!   (WriteConfig bit 1, SlotConfig bit 13 = 0) once the data zone is locked or on a slot-locked slot, any GenKey
//!   before the config zone is locked, Sign without a valid TempKey or on a slot whose
//!   ReadKey bit 0 (external signatures) is 0 or before the data zone is locked, Read of a slot with
//!   `IsSecret` = 1 or `Private` = 1 (Microchip: "Data slots 0 and 3 can never be read and an execution error
//!   will occur if so attempted", the Read section of the 608 TrustFLEX data sheets, whose slot 0 is such a
//!   slot) and any data zone Read before the data zone is locked. A real 508A answers 0x0F to GenKey on a slot
//!   that is not a private-key slot (reported on Microchip's forum for `atcab_genkey(1, …)`).
//! - **0x05 ECC fault** — this sim's choice for a private-key slot that holds no valid key (never generated:
//!   the shipped data zone is all zeros, and 0 is not a P-256 scalar): GenKey public mode and Sign answer
//!   0x05, the status the datasheet gives when the ECC computation cannot produce a valid result. Also
//!   GenKey create when 16 draws in a row were not a valid scalar (the datasheet: "on rare occasions an
//!   invalid ECC private key is generated and this too will cause an error"; practically never).
//! - **0x01 miscompare** — Verify: the signature does not verify (including R or S zero or ≥ n).
//! - Verify with a public key that is not a point on P-256 answers 0x0F (this sim's choice, after Microchip's
//!   note that ECDH needs a valid point and fails with an execution error otherwise).
//!
//! # Slot plan (the config zone of every simulated chip)
//! SlotConfig is config bytes 20..=51, KeyConfig bytes 96..=127, two bytes per slot, little-endian.
//!
//! | slot | size | use | SlotConfig | KeyConfig |
//! |---|---|---|---|---|
//! | 0 | 36 | the device's P-256 key (the TLS client key of a sensor or of a concentrator's relay) | `83 20` | `33 00` |
//! | 1 | 36 | spare P-256 key (rotation: make the new key here, switch over, then retire slot 0's) | `83 20` | `33 00` |
//! | 2 | 36 | second-purpose P-256 key (unused by TMC today; a future non-TLS signature) | `83 20` | `33 00` |
//! | 3 | 36 | spare P-256 key | `83 20` | `33 00` |
//! | 4 | 36 | factory key: generated before the data zone lock, GenKey off since: permanent | `81 00` | `33 00` |
//! | 5–7 | 36 | unused data | `00 00` | `3c 00` |
//! | 8 | 416 | general data (clear read and write) | `00 00` | `3c 00` |
//! | 9 | 72 | unused data | `00 00` | `3c 00` |
//! | 10 | 72 | device certificate (compressed, as Microchip's TNG/TFLXTLS parts) | `00 00` | `3c 00` |
//! | 11 | 72 | signer public key (of the CA that signed slot 10) | `00 00` | `30 00` |
//! | 12 | 72 | signer certificate (compressed) | `00 00` | `3c 00` |
//! | 13–15 | 72 | unused data | `00 00` | `3c 00` |
//!
//! Bits: SlotConfig `83 20` = ReadKey 0b0011 (external and internal Sign allowed, no ECDH: the key only
//! signs), IsSecret 1, EncryptRead 0, WriteConfig 0b0010 (GenKey allowed after the data lock, PrivWrite
//! never: a key can only be born inside the chip). `81 00` = external Sign only, WriteConfig 0 (neither
//! GenKey nor PrivWrite after the data lock). `00 00` = readable and writable in the clear (WriteConfig
//! "Always"). KeyConfig `33 00` = Private 1, PubInfo 1 (GenKey may output the public key), KeyType P-256
//! (0b100), Lockable 1 (a Lock SlotLock can freeze the key); `3c 00` = KeyType "not an ECC key" (0b111),
//! Lockable; `30 00` = a P-256 public key, not private, Lockable.
//!
//! The simulated chip is shipped and locked, like a pre-provisioned part: config zone locked (byte 87 = 0x00),
//! data and OTP zones locked (byte 86 = 0x00), no slot locked (bytes 88..=89 = `ff ff`); slot 4 holds its
//! factory key, slots 0..=3 hold no key until GenKey creates one; data slots are zero. [`SimAtecc::set_locks`]
//! changes the lock bytes for tests.
//!
//! # Randomness and keys
//! The chip's generator is deterministic so tests are reproducible: block *i* of a stream is
//! SHA-256(label ‖ serial number ‖ *i* as 8 bytes big-endian), with one stream ("key") for private keys and
//! another ("random") for the Random command, so no Random answer ever equals a private key. A private key
//! is a block taken as a P-256 scalar, drawing the next block when it is not valid (0 or ≥ n). Two chips with
//! different serial numbers ([`SimAtecc::with_serial`]) have different keys; the same serial gives the same
//! keys in the same order. The keys are real P-256 keys, but **predictable**: a sim is not a key store.
//!
//! # Non-volatile contents
//! [`SimAtecc::nonvolatile`] / [`SimAtecc::from_nonvolatile`] save and restore what survives a power cycle:
//! model, config zone (serial number and locks included), data zone (private keys included) and the
//! generators' counters. GenKey, [`SimAtecc::set_locks`] and [`SimAtecc::write_slot`] change them
//! ([`SimAtecc::nonvolatile_changed`]); Random advances its counter without counting as a change, so a Random
//! answer may repeat after reloading an older save. `file` (feature `sim-file`) keeps them in a 0600 file.
//!
//! The chip, its bus handle ([`SimI2c`]) and its delay ([`SimDelay`]) share state through `Rc<RefCell<_>>`:
//! one thread, which is what a driver test is.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{self, ErrorKind, ErrorType, NoAcknowledgeSource, Operation};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::SecretKey;
use sha2::{Digest, Sha256};

use crate::config::{CONFIG_ZONE_LEN, LOCK_CONFIG_OFFSET, LOCK_VALUE_OFFSET, UNLOCKED};
use crate::crc::crc16;
use crate::protocol::{
    mode, opcode, status, timing, word_address, DEFAULT_ADDRESS, VERIFY_KEY_P256, WAKE_RESPONSE,
};

#[cfg(feature = "sim-file")]
pub mod file;

/// Watchdog: the chip sleeps this long after a wake (datasheet typical 1.3 s).
const WATCHDOG_NS: u64 = 1_300_000_000;

/// Size of the data zone: slots 0..=7 of 36 bytes, slot 8 of 416, slots 9..=15 of 72.
pub const DATA_ZONE_LEN: usize = 8 * 36 + 416 + 7 * 72;
/// The default serial number: `01 23` and `ee` as on every real part, the rest arbitrary.
pub const DEFAULT_SERIAL: [u8; 9] = [0x01, 0x23, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0xEE];
/// Config byte of SlotConfig\[0\] (two bytes per slot, little-endian).
const SLOT_CONFIG_OFFSET: usize = 20;
/// Config byte of SlotLocked (bit n = 0: slot n locked).
const SLOT_LOCKED_OFFSET: usize = 88;
/// Config byte of KeyConfig\[0\].
const KEY_CONFIG_OFFSET: usize = 96;
/// The factory key slot (see the slot plan).
const FACTORY_KEY_SLOT: u8 = 4;
/// How many generator blocks GenKey draws before giving up with an ECC fault.
const KEY_DRAWS: u32 = 16;

/// SlotConfig and KeyConfig of each slot, as stored (little-endian byte pairs): the slot plan in the module
/// documentation.
const SLOT_PLAN: [([u8; 2], [u8; 2]); 16] = {
    const KEY: ([u8; 2], [u8; 2]) = ([0x83, 0x20], [0x33, 0x00]);
    const FACTORY_KEY: ([u8; 2], [u8; 2]) = ([0x81, 0x00], [0x33, 0x00]);
    const DATA: ([u8; 2], [u8; 2]) = ([0x00, 0x00], [0x3C, 0x00]);
    const PUBLIC_KEY: ([u8; 2], [u8; 2]) = ([0x00, 0x00], [0x30, 0x00]);
    [
        KEY,
        KEY,
        KEY,
        KEY,
        FACTORY_KEY,
        DATA,
        DATA,
        DATA,
        DATA,
        DATA,
        DATA,
        PUBLIC_KEY,
        DATA,
        DATA,
        DATA,
        DATA,
    ]
};

// SlotConfig bits.
const SLOT_READ_KEY_EXTERNAL_SIGN: u16 = 1 << 0;
const SLOT_ENCRYPT_READ: u16 = 1 << 6;
const SLOT_IS_SECRET: u16 = 1 << 7;
const SLOT_WRITE_CONFIG_GENKEY: u16 = 1 << 13;
const SLOT_WRITE_CONFIG_SHIFT: u16 = 12;
// KeyConfig bits.
const KEY_PRIVATE: u16 = 1 << 0;
const KEY_PUB_INFO: u16 = 1 << 1;
const KEY_TYPE_SHIFT: u16 = 2;
const KEY_TYPE_MASK: u16 = 0b111;
const KEY_TYPE_P256: u16 = 0b100;

/// Offset and length of `slot` in the data zone.
const fn slot_range(slot: u8) -> (usize, usize) {
    let slot = slot as usize;
    match slot {
        0..=7 => (slot * 36, 36),
        8 => (8 * 36, 416),
        _ => (8 * 36 + 416 + (slot - 9) * 72, 72),
    }
}

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

    /// The model byte of [`SimAtecc::nonvolatile`].
    const fn code(self) -> u8 {
        match self {
            Self::Atecc508a => 0,
            Self::Atecc608a => 1,
        }
    }

    const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Atecc508a),
            1 => Some(Self::Atecc608a),
            _ => None,
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
            opcode::VERIFY => match self {
                Self::Atecc508a => 58_000,
                Self::Atecc608a => 60_000,
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
    data: Vec<u8>,
    key_counter: u64,
    random_counter: u64,
    generation: u64,
    saved_generation: Option<u64>,
    faults: VecDeque<Fault>,
    log: Vec<BusEvent>,
    executed: Vec<u8>,
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

/// The config zone of a simulated chip: serial number, RevNum, I²C address 0xC0, the slot plan, both zones
/// locked, no slot locked.
fn default_config(model: Model, serial: &[u8; 9]) -> [u8; CONFIG_ZONE_LEN] {
    let mut config = [0u8; CONFIG_ZONE_LEN];
    config[0..4].copy_from_slice(&serial[..4]);
    config[4..8].copy_from_slice(&model.revision());
    config[8..13].copy_from_slice(&serial[4..]);
    if model == Model::Atecc608a {
        config[13] = 0x01; // AES_Enable (608 only; reserved on the 508A)
    }
    config[14] = 0x01; // I2C_Enable
    config[16] = DEFAULT_ADDRESS << 1; // I2C_Address, 8-bit form
    for (slot, (slot_config, key_config)) in SLOT_PLAN.iter().enumerate() {
        let at = SLOT_CONFIG_OFFSET + 2 * slot;
        config[at..at + 2].copy_from_slice(slot_config);
        let at = KEY_CONFIG_OFFSET + 2 * slot;
        config[at..at + 2].copy_from_slice(key_config);
    }
    // Counter[0] and Counter[1] at their initial value 0 (encoded as Microchip's configs do).
    for at in [52, 60] {
        config[at..at + 8].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00]);
    }
    config[LOCK_VALUE_OFFSET] = 0x00;
    config[LOCK_CONFIG_OFFSET] = 0x00;
    config[SLOT_LOCKED_OFFSET] = 0xFF;
    config[SLOT_LOCKED_OFFSET + 1] = 0xFF;
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

/// Block `counter` of the generator stream `label` of the chip with serial number `serial`.
fn generator_block(label: &[u8], serial: &[u8; 9], counter: u64) -> [u8; 32] {
    Sha256::new()
        .chain_update(label)
        .chain_update(serial)
        .chain_update(counter.to_be_bytes())
        .finalize()
        .into()
}

/// X ‖ Y of the public key of `secret`.
fn public_key_bytes(secret: &SecretKey) -> [u8; 64] {
    let point = secret.public_key().to_encoded_point(false);
    // An uncompressed SEC1 point is 04 ‖ X ‖ Y.
    let mut key = [0u8; 64];
    key.copy_from_slice(&point.as_bytes()[1..65]);
    key
}

/// Why [`SimAtecc::write_slot`] refused a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotWriteError {
    /// No such slot, or the bytes run past the slot's end.
    OutOfRange,
    /// A private-key slot: Write can never put a key there (GenKey makes keys).
    PrivateKeySlot,
    /// The slot is locked (SlotLocked), or the data zone is locked and the slot's WriteConfig is not "Always".
    NotWritable,
}

impl fmt::Display for SlotWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OutOfRange => "no such slot, or the bytes run past the slot's end",
            Self::PrivateKeySlot => {
                "a private-key slot cannot be written (keys are made by GenKey)"
            }
            Self::NotWritable => {
                "the slot is locked, or its WriteConfig forbids clear writes after the data lock"
            }
        })
    }
}

impl core::error::Error for SlotWriteError {}

/// Why [`SimAtecc::from_nonvolatile`] refused a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonVolatileError {
    /// Shorter than the magic and version.
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// The blob does not start with [`NONVOLATILE_MAGIC`]: not a simulated chip's contents.
    BadMagic,
    /// A format version this build does not know.
    UnknownVersion(u8),
    /// The length does not match the version's format.
    WrongLength {
        /// Bytes the version's format has.
        expected: usize,
        /// Bytes given.
        found: usize,
    },
    /// The SHA-256 at the end does not match the contents: the blob is corrupt.
    ChecksumMismatch,
    /// The model byte is neither 0 (ATECC508A) nor 1 (ATECC608A).
    UnknownModel(u8),
    /// The config zone's RevNum (bytes 4..=7) is not the model's.
    RevisionMismatch,
}

impl fmt::Display for NonVolatileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "simulated ATECC contents: only {len} bytes"),
            Self::BadMagic => f.write_str("not a simulated ATECC's contents (bad magic)"),
            Self::UnknownVersion(v) => write!(f, "simulated ATECC contents: unknown format version {v}"),
            Self::WrongLength { expected, found } => write!(
                f,
                "simulated ATECC contents: {found} bytes, format version {NONVOLATILE_VERSION} has {expected}"
            ),
            Self::ChecksumMismatch => f.write_str("simulated ATECC contents are corrupt (checksum mismatch)"),
            Self::UnknownModel(m) => write!(f, "simulated ATECC contents: unknown model byte {m}"),
            Self::RevisionMismatch => {
                f.write_str("simulated ATECC contents: the config zone's revision is not the model's")
            }
        }
    }
}

impl core::error::Error for NonVolatileError {}

/// First bytes of [`SimAtecc::nonvolatile`].
pub const NONVOLATILE_MAGIC: [u8; 8] = *b"TMCATSIM";
/// Format version of [`SimAtecc::nonvolatile`].
pub const NONVOLATILE_VERSION: u8 = 1;
/// Format version 1: magic, version, model, key counter (u64 LE), random counter (u64 LE), config zone,
/// data zone, SHA-256 of everything before it.
const NONVOLATILE_V1_LEN: usize = 8 + 1 + 1 + 8 + 8 + CONFIG_ZONE_LEN + DATA_ZONE_LEN + 32;

impl SimAtecc {
    /// A shipped-and-locked chip (see the slot plan) with the serial number [`DEFAULT_SERIAL`], sleeping, at
    /// address 0x60 on a 100 kHz bus.
    pub fn new(model: Model) -> Self {
        Self::with_serial(model, DEFAULT_SERIAL)
    }

    /// A shipped-and-locked chip with serial number `serial` (config bytes 0..=3 and 8..=12), whose generator,
    /// and so whose keys, follow from that serial number.
    pub fn with_serial(model: Model, serial: [u8; 9]) -> Self {
        let mut chip = Chip::new(
            model,
            default_config(model, &serial),
            alloc::vec![0; DATA_ZONE_LEN],
            0,
            0,
        );
        // The factory made slot 4's key before locking the data zone; its GenKey is off since.
        chip.create_key(FACTORY_KEY_SLOT);
        Self::from_chip(chip)
    }

    fn from_chip(chip: Chip) -> Self {
        Self {
            chip: Rc::new(RefCell::new(chip)),
        }
    }

    /// Which chip this is.
    pub fn model(&self) -> Model {
        self.chip.borrow().model
    }

    /// The 9-byte serial number (config bytes 0..=3 and 8..=12).
    pub fn serial_number(&self) -> [u8; 9] {
        crate::config::serial_from_block0(&self.chip.borrow().config)
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

    /// Sets the LockConfig (87) and LockValue (86) bytes: locked 0x00, unlocked 0x55. For tests: a real chip's
    /// locks only ever go from unlocked to locked, and never back.
    pub fn set_locks(&self, config_locked: bool, data_locked: bool) {
        let byte = |locked: bool| if locked { 0x00 } else { UNLOCKED };
        let mut chip = self.chip.borrow_mut();
        chip.config[LOCK_CONFIG_OFFSET] = byte(config_locked);
        chip.config[LOCK_VALUE_OFFSET] = byte(data_locked);
        chip.changed();
    }

    /// The config zone.
    pub fn config(&self) -> [u8; CONFIG_ZONE_LEN] {
        self.chip.borrow().config
    }

    /// Writes `bytes` at `offset` into data slot `slot`, as a clear Write command (or the provisioning step
    /// before the data lock) would: refused for private-key slots, slot-locked slots, and, once the data zone is
    /// locked, slots whose WriteConfig is not "Always". Certificates go into slots 10 and 12 this way.
    pub fn write_slot(&self, slot: u8, offset: usize, bytes: &[u8]) -> Result<(), SlotWriteError> {
        let mut chip = self.chip.borrow_mut();
        if slot > 15 {
            return Err(SlotWriteError::OutOfRange);
        }
        let (start, len) = slot_range(slot);
        let end = offset
            .checked_add(bytes.len())
            .ok_or(SlotWriteError::OutOfRange)?;
        if end > len {
            return Err(SlotWriteError::OutOfRange);
        }
        if chip.key_config(slot) & KEY_PRIVATE != 0 {
            return Err(SlotWriteError::PrivateKeySlot);
        }
        let write_config = chip.slot_config(slot) >> SLOT_WRITE_CONFIG_SHIFT;
        if chip.slot_locked(slot) || (chip.data_locked() && write_config != 0) {
            return Err(SlotWriteError::NotWritable);
        }
        chip.data[start + offset..start + end].copy_from_slice(bytes);
        chip.changed();
        Ok(())
    }

    /// The public key X ‖ Y of the private key in `slot`, as GenKey public mode would answer; `None` when the
    /// slot is not a private-key slot or holds no valid key.
    pub fn public_key(&self, slot: u8) -> Option<[u8; 64]> {
        let chip = self.chip.borrow();
        if slot > 15 || chip.key_config(slot) & KEY_PRIVATE == 0 {
            return None;
        }
        chip.private_key(slot)
            .map(|secret| public_key_bytes(&secret))
    }

    /// The chip's non-volatile contents (model, config zone, data zone with the private keys, generator
    /// counters) in a versioned, checksummed format for [`from_nonvolatile`](Self::from_nonvolatile). Marks
    /// them as saved for [`nonvolatile_changed`](Self::nonvolatile_changed). **It holds the private keys.**
    pub fn nonvolatile(&self) -> Vec<u8> {
        let mut chip = self.chip.borrow_mut();
        let mut out = Vec::with_capacity(NONVOLATILE_V1_LEN);
        out.extend_from_slice(&NONVOLATILE_MAGIC);
        out.push(NONVOLATILE_VERSION);
        out.push(chip.model.code());
        out.extend_from_slice(&chip.key_counter.to_le_bytes());
        out.extend_from_slice(&chip.random_counter.to_le_bytes());
        out.extend_from_slice(&chip.config);
        out.extend_from_slice(&chip.data);
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        chip.saved_generation = Some(chip.generation);
        out
    }

    /// A chip (sleeping, address 0x60, 100 kHz bus, no faults) with the non-volatile contents `bytes` from
    /// [`nonvolatile`](Self::nonvolatile). Refuses anything that is not exactly such a blob.
    pub fn from_nonvolatile(bytes: &[u8]) -> Result<Self, NonVolatileError> {
        if bytes.len() < NONVOLATILE_MAGIC.len() + 1 {
            return Err(NonVolatileError::TooShort { len: bytes.len() });
        }
        let (magic, rest) = bytes.split_at(NONVOLATILE_MAGIC.len());
        if magic != NONVOLATILE_MAGIC {
            return Err(NonVolatileError::BadMagic);
        }
        if rest[0] != NONVOLATILE_VERSION {
            return Err(NonVolatileError::UnknownVersion(rest[0]));
        }
        if bytes.len() != NONVOLATILE_V1_LEN {
            return Err(NonVolatileError::WrongLength {
                expected: NONVOLATILE_V1_LEN,
                found: bytes.len(),
            });
        }
        let (body, checksum) = bytes.split_at(NONVOLATILE_V1_LEN - 32);
        let computed: [u8; 32] = Sha256::digest(body).into();
        if computed[..] != *checksum {
            return Err(NonVolatileError::ChecksumMismatch);
        }
        let model = Model::from_code(body[9]).ok_or(NonVolatileError::UnknownModel(body[9]))?;
        let counter = |at: usize| {
            let mut le = [0u8; 8];
            le.copy_from_slice(&body[at..at + 8]);
            u64::from_le_bytes(le)
        };
        let (key_counter, random_counter) = (counter(10), counter(18));
        let mut config = [0u8; CONFIG_ZONE_LEN];
        config.copy_from_slice(&body[26..26 + CONFIG_ZONE_LEN]);
        if config[4..8] != model.revision() {
            return Err(NonVolatileError::RevisionMismatch);
        }
        let data = body[26 + CONFIG_ZONE_LEN..].to_vec();
        let mut chip = Chip::new(model, config, data, key_counter, random_counter);
        chip.saved_generation = Some(chip.generation);
        Ok(Self::from_chip(chip))
    }

    /// Counts the changes of the non-volatile contents (GenKey create, [`set_locks`](Self::set_locks),
    /// [`write_slot`](Self::write_slot)); starts at 0.
    pub fn nonvolatile_generation(&self) -> u64 {
        self.chip.borrow().generation
    }

    /// Whether the non-volatile contents changed since the last [`nonvolatile`](Self::nonvolatile) (or since
    /// [`from_nonvolatile`](Self::from_nonvolatile)); a new chip that was never saved counts as changed.
    pub fn nonvolatile_changed(&self) -> bool {
        let chip = self.chip.borrow();
        chip.saved_generation != Some(chip.generation)
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
}

impl Chip {
    fn new(
        model: Model,
        config: [u8; CONFIG_ZONE_LEN],
        data: Vec<u8>,
        key_counter: u64,
        random_counter: u64,
    ) -> Self {
        Self {
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
            config,
            data,
            key_counter,
            random_counter,
            generation: 0,
            saved_generation: None,
            faults: VecDeque::new(),
            log: Vec::new(),
            executed: Vec::new(),
        }
    }

    /// The non-volatile contents changed.
    fn changed(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    fn serial(&self) -> [u8; 9] {
        crate::config::serial_from_block0(&self.config)
    }

    fn slot_config(&self, slot: u8) -> u16 {
        let at = SLOT_CONFIG_OFFSET + 2 * usize::from(slot);
        u16::from_le_bytes([self.config[at], self.config[at + 1]])
    }

    fn key_config(&self, slot: u8) -> u16 {
        let at = KEY_CONFIG_OFFSET + 2 * usize::from(slot);
        u16::from_le_bytes([self.config[at], self.config[at + 1]])
    }

    /// KeyConfig says: a P-256 private key.
    fn is_p256_private(&self, slot: u8) -> bool {
        let key_config = self.key_config(slot);
        key_config & KEY_PRIVATE != 0
            && (key_config >> KEY_TYPE_SHIFT) & KEY_TYPE_MASK == KEY_TYPE_P256
    }

    fn slot_locked(&self, slot: u8) -> bool {
        let locked = u16::from_le_bytes([
            self.config[SLOT_LOCKED_OFFSET],
            self.config[SLOT_LOCKED_OFFSET + 1],
        ]);
        locked & (1 << slot) == 0
    }

    fn config_locked(&self) -> bool {
        self.config[LOCK_CONFIG_OFFSET] != UNLOCKED
    }

    fn data_locked(&self) -> bool {
        self.config[LOCK_VALUE_OFFSET] != UNLOCKED
    }

    /// The private key stored in `slot` (4 zero bytes then the 32-byte scalar, PrivWrite's layout), if valid.
    fn private_key(&self, slot: u8) -> Option<SecretKey> {
        let (start, _) = slot_range(slot);
        SecretKey::from_slice(&self.data[start + 4..start + 36]).ok()
    }

    /// A new private key in `slot` from the key stream; its public key, or `None` (ECC fault) when no valid
    /// scalar came out of [`KEY_DRAWS`] blocks.
    fn create_key(&mut self, slot: u8) -> Option<[u8; 64]> {
        let serial = self.serial();
        for _ in 0..KEY_DRAWS {
            let block = generator_block(b"key", &serial, self.key_counter);
            self.key_counter = self.key_counter.wrapping_add(1);
            if let Ok(secret) = SecretKey::from_slice(&block) {
                let (start, _) = slot_range(slot);
                self.data[start..start + 4].fill(0);
                self.data[start + 4..start + 36].copy_from_slice(&block);
                self.changed();
                return Some(public_key_bytes(&secret));
            }
        }
        self.changed();
        None
    }

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
                if !self.config_locked() {
                    // Config unlocked: the chip returns a fixed test pattern.
                    let pattern: [u8; 32] =
                        core::array::from_fn(|i| if i % 4 < 2 { 0xFF } else { 0x00 });
                    return packet(&pattern);
                }
                let random = generator_block(b"random", &self.serial(), self.random_counter);
                self.random_counter = self.random_counter.wrapping_add(1);
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
            opcode::GENKEY => self.genkey(param1, param2, data),
            opcode::SIGN => self.sign(param1, param2, data),
            opcode::VERIFY => self.verify(param1, param2, data),
            opcode::READ => self.read_zone(param1, param2, data),
            _ => parse_error,
        }
    }

    fn genkey(&mut self, param1: u8, param2: u16, data: &[u8]) -> Vec<u8> {
        let create = match param1 {
            mode::GENKEY_CREATE => true,
            mode::GENKEY_PUBLIC => false,
            _ => return packet_status(status::PARSE_ERROR),
        };
        if param2 > 15 || !data.is_empty() {
            return packet_status(status::PARSE_ERROR);
        }
        // param2 ≤ 15.
        let slot = param2 as u8;
        let execution_error = packet_status(status::EXECUTION_ERROR);
        if !self.config_locked() || !self.is_p256_private(slot) {
            return execution_error;
        }
        if create {
            // Before the data lock any private-key slot may be (re)generated; after it only those whose
            // WriteConfig allows GenKey, and never a locked slot.
            let genkey_allowed = self.slot_config(slot) & SLOT_WRITE_CONFIG_GENKEY != 0;
            if self.slot_locked(slot) || (self.data_locked() && !genkey_allowed) {
                return execution_error;
            }
            return match self.create_key(slot) {
                Some(public_key) => packet(&public_key),
                None => packet_status(status::ECC_FAULT),
            };
        }
        if self.key_config(slot) & KEY_PUB_INFO == 0 {
            return execution_error;
        }
        match self.private_key(slot) {
            Some(secret) => packet(&public_key_bytes(&secret)),
            None => packet_status(status::ECC_FAULT),
        }
    }

    fn sign(&mut self, param1: u8, param2: u16, data: &[u8]) -> Vec<u8> {
        if param1 != mode::SIGN_EXTERNAL || param2 > 15 || !data.is_empty() {
            return packet_status(status::PARSE_ERROR);
        }
        // param2 ≤ 15.
        let slot = param2 as u8;
        // Sign invalidates TempKey whatever the outcome.
        let Some(digest) = self.tempkey.take() else {
            return packet_status(status::EXECUTION_ERROR);
        };
        let external_sign = self.slot_config(slot) & SLOT_READ_KEY_EXTERNAL_SIGN != 0;
        if !self.data_locked() || !self.is_p256_private(slot) || !external_sign {
            return packet_status(status::EXECUTION_ERROR);
        }
        let Some(secret) = self.private_key(slot) else {
            return packet_status(status::ECC_FAULT);
        };
        let signing_key = SigningKey::from(&secret);
        // RFC 6979: deterministic, like everything else in the sim.
        let signature: Result<Signature, _> = signing_key.sign_prehash(&digest);
        match signature {
            Ok(signature) => packet(&signature.to_bytes()),
            Err(_) => packet_status(status::ECC_FAULT),
        }
    }

    fn verify(&mut self, param1: u8, param2: u16, data: &[u8]) -> Vec<u8> {
        if param1 != mode::VERIFY_EXTERNAL || param2 != VERIFY_KEY_P256 || data.len() != 128 {
            return packet_status(status::PARSE_ERROR);
        }
        let Some(digest) = self.tempkey else {
            return packet_status(status::EXECUTION_ERROR);
        };
        let (signature, public_key) = data.split_at(64);
        let mut sec1 = [0u8; 65];
        sec1[0] = 0x04; // uncompressed point
        sec1[1..].copy_from_slice(public_key);
        let Ok(verifying_key) = VerifyingKey::from_sec1_bytes(&sec1) else {
            return packet_status(status::EXECUTION_ERROR);
        };
        let valid = Signature::from_slice(signature)
            .and_then(|signature| verifying_key.verify_prehash(&digest, &signature))
            .is_ok();
        packet_status(if valid {
            status::SUCCESS
        } else {
            status::MISCOMPARE
        })
    }

    fn read_zone(&mut self, param1: u8, param2: u16, data: &[u8]) -> Vec<u8> {
        let parse_error = packet_status(status::PARSE_ERROR);
        if param1 & 0x7C != 0 || !data.is_empty() {
            return parse_error;
        }
        let len = if param1 & mode::READ_32_BYTES != 0 {
            32
        } else {
            4
        };
        let block = usize::from(param2 >> 8);
        let word = usize::from(param2 & 0x07);
        match param1 & 0x03 {
            mode::READ_ZONE_CONFIG => {
                let block = usize::from(param2 >> 3);
                let start = if len == 32 {
                    block * 32
                } else {
                    block * 32 + word * 4
                };
                if param2 > 0xFF || start + len > CONFIG_ZONE_LEN {
                    return parse_error;
                }
                packet(&self.config[start..start + len])
            }
            mode::READ_ZONE_DATA => {
                // Bits 7 and 12..15 of a data zone address are unused.
                if param2 & 0xF080 != 0 {
                    return parse_error;
                }
                // Four bits: ≤ 15.
                let slot = ((param2 >> 3) & 0x0F) as u8;
                let (slot_start, slot_len) = slot_range(slot);
                let start = if len == 32 {
                    block * 32
                } else {
                    block * 32 + word * 4
                };
                if start + len > slot_len {
                    return parse_error;
                }
                let secret = self.slot_config(slot) & (SLOT_IS_SECRET | SLOT_ENCRYPT_READ) != 0;
                if !self.data_locked() || secret || self.key_config(slot) & KEY_PRIVATE != 0 {
                    return packet_status(status::EXECUTION_ERROR);
                }
                packet(&self.data[slot_start + start..slot_start + start + len])
            }
            // The OTP zone is not simulated.
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

//! Bytes on the bus: word addresses, opcodes, status codes, command frames and execution times.
//!
//! An I²C write to the chip starts with a word address byte that says what the write is ([`word_address`]).
//! A command is word address 0x03 followed by the packet `[count, opcode, param1, param2 (u16 LE), data…,
//! crc16 LE]`, where `count` counts itself, the opcode, the parameters, the data and the CRC (7 + data). A
//! response is `[count, data…, crc16 LE]`; a 4-byte response carries one status byte ([`status`]).

use crate::crc::crc16;

/// Factory 7-bit I²C address of an unconfigured ATECC508A/608A (the datasheet's 0xC0 is the 8-bit form).
pub const DEFAULT_ADDRESS: u8 = 0x60;

/// What the chip answers right after a wake: count 4, status 0x11 ("after wake"), CRC `33 43`.
pub const WAKE_RESPONSE: [u8; 4] = [0x04, 0x11, 0x33, 0x43];

/// Bytes of a command packet around its data: count, opcode, param1, param2 (2), CRC (2).
pub const COMMAND_OVERHEAD: usize = 7;
/// Bytes of a response packet around its data: count and CRC (2).
pub const RESPONSE_OVERHEAD: usize = 3;
/// Largest data field this driver sends: Verify external takes signature R || S and public key X || Y.
pub const MAX_COMMAND_DATA: usize = 128;
/// Largest data field this driver accepts in a response (GenKey and Sign return 64 bytes).
pub const MAX_RESPONSE_DATA: usize = 64;
/// Largest I²C write this driver makes: word address + command packet.
pub const MAX_FRAME: usize = 1 + COMMAND_OVERHEAD + MAX_COMMAND_DATA;

/// Word address values: the first byte of every I²C write to the chip.
pub mod word_address {
    /// Reset the I/O buffer address counter.
    pub const RESET: u8 = 0x00;
    /// Enter sleep: all volatile state (TempKey included) is lost until the next wake.
    pub const SLEEP: u8 = 0x01;
    /// Enter idle: TempKey and the other volatile registers are kept until the next wake.
    pub const IDLE: u8 = 0x02;
    /// A command packet follows.
    pub const COMMAND: u8 = 0x03;
}

/// Command opcodes this driver uses.
pub mod opcode {
    /// Read a zone (config, OTP, data).
    pub const READ: u8 = 0x02;
    /// Load TempKey (here: pass-through of an external number).
    pub const NONCE: u8 = 0x16;
    /// Random number from the chip's RNG.
    pub const RANDOM: u8 = 0x1B;
    /// Device revision and state.
    pub const INFO: u8 = 0x30;
    /// Generate a private key or compute the public key of a slot.
    pub const GENKEY: u8 = 0x40;
    /// ECDSA P-256 signature.
    pub const SIGN: u8 = 0x41;
    /// ECDSA P-256 signature verification.
    pub const VERIFY: u8 = 0x45;
}

/// Command mode (param1) values this driver uses.
pub mod mode {
    /// Info: return the 4-byte revision.
    pub const INFO_REVISION: u8 = 0x00;
    /// Random: update the seed (the only mode of the 508A/608A).
    pub const RANDOM_SEED_UPDATE: u8 = 0x00;
    /// Nonce: pass-through, TempKey := the 32-byte NumIn.
    pub const NONCE_PASSTHROUGH: u8 = 0x03;
    /// GenKey: compute the public key of the private key in a slot.
    pub const GENKEY_PUBLIC: u8 = 0x00;
    /// GenKey: create a random private key inside the chip, store it in a slot, return its public key.
    pub const GENKEY_CREATE: u8 = 0x04;
    /// Sign: external message, the digest in TempKey (loaded by Nonce pass-through).
    pub const SIGN_EXTERNAL: u8 = 0x80;
    /// Verify: external mode, signature and public key in the data field, message digest in TempKey.
    pub const VERIFY_EXTERNAL: u8 = 0x02;
    /// Read: the config zone (zone bits 0..1 = 0).
    pub const READ_ZONE_CONFIG: u8 = 0x00;
    /// Read: the OTP zone.
    pub const READ_ZONE_OTP: u8 = 0x01;
    /// Read: the data zone (the 16 slots).
    pub const READ_ZONE_DATA: u8 = 0x02;
    /// Read: 32 bytes instead of 4 (bit 7).
    pub const READ_32_BYTES: u8 = 0x80;
}

/// Verify external: param2 (KeyID) names the curve; 0x0004 is P-256 (cryptoauthlib `VERIFY_KEY_P256`).
pub const VERIFY_KEY_P256: u16 = 0x0004;

/// Status codes of a 4-byte response.
pub mod status {
    /// Command executed.
    pub const SUCCESS: u8 = 0x00;
    /// CheckMac or Verify miscompare.
    pub const MISCOMPARE: u8 = 0x01;
    /// Parse error: illegal opcode, parameter or length.
    pub const PARSE_ERROR: u8 = 0x03;
    /// ECC fault: the computation failed (retry may succeed).
    pub const ECC_FAULT: u8 = 0x05;
    /// The chip is in self-test failure mode (608).
    pub const SELF_TEST_ERROR: u8 = 0x07;
    /// Random number generator health test failed.
    pub const HEALTH_TEST_ERROR: u8 = 0x08;
    /// The command could not be executed in the chip's current state.
    pub const EXECUTION_ERROR: u8 = 0x0F;
    /// Woken and no command received since.
    pub const AFTER_WAKE: u8 = 0x11;
    /// The watchdog is about to expire: too little time left to run the command.
    pub const WATCHDOG_ABOUT_TO_EXPIRE: u8 = 0xEE;
    /// The chip received a packet with a bad CRC, or another communication error.
    pub const CRC_OR_COMM_ERROR: u8 = 0xFF;
}

/// Datasheet timing of the wake sequence, in microseconds.
pub mod timing {
    /// t_WLO: SDA held low at least this long wakes the chip.
    pub const WAKE_LOW_US: u32 = 60;
    /// t_WHI: wait at least this long after the wake pulse before talking to the chip.
    pub const WAKE_HIGH_US: u32 = 1_500;
    /// t_WHIST: on a 608 with power-up self-test enabled the wake takes up to this long.
    pub const WAKE_HIGH_SELF_TEST_US: u32 = 20_000;
    /// Interval between two polls of a busy chip.
    pub const POLL_INTERVAL_US: u32 = 1_000;
}

/// Maximum execution time of a command in milliseconds: the larger of the ATECC508A's and the ATECC608A's
/// (default clock, ChipMode divider M0) values as tabulated by cryptoauthlib (`calib_execution.c`), or 250 ms
/// for an opcode this driver does not know. The 608's slower clock dividers (M1, M2) take longer: see
/// [`Atecc::set_execution_time_factor`](crate::Atecc::set_execution_time_factor).
pub const fn max_execution_time_ms(opcode: u8) -> u32 {
    match opcode {
        opcode::INFO => 5,
        opcode::READ => 5,
        opcode::RANDOM => 23,
        opcode::NONCE => 29,
        // 508A 115, 608 (M0) 115.
        opcode::GENKEY => 115,
        // 508A 60, 608 (M0) 115.
        opcode::SIGN => 115,
        // 508A 72, 608 (M0) 105.
        opcode::VERIFY => 105,
        _ => 250,
    }
}

/// One command packet, before framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    /// Opcode ([`opcode`]).
    pub opcode: u8,
    /// Param1, usually the mode ([`mode`]).
    pub param1: u8,
    /// Param2, usually a key id or an address; little-endian on the bus.
    pub param2: u16,
    /// Data field (at most [`MAX_COMMAND_DATA`] bytes).
    pub data: &'a [u8],
}

impl<'a> Command<'a> {
    /// Info, revision mode: answers 4 bytes.
    pub const fn info_revision() -> Self {
        Self {
            opcode: opcode::INFO,
            param1: mode::INFO_REVISION,
            param2: 0,
            data: &[],
        }
    }

    /// Random: answers 32 bytes.
    pub const fn random() -> Self {
        Self {
            opcode: opcode::RANDOM,
            param1: mode::RANDOM_SEED_UPDATE,
            param2: 0,
            data: &[],
        }
    }

    /// Nonce pass-through: TempKey := `num_in`. Answers a status byte.
    pub const fn nonce_passthrough(num_in: &'a [u8; 32]) -> Self {
        Self {
            opcode: opcode::NONCE,
            param1: mode::NONCE_PASSTHROUGH,
            param2: 0,
            data: num_in,
        }
    }

    /// GenKey public: the public key of the private key in `slot`. Answers 64 bytes, X || Y.
    pub const fn genkey_public(slot: u8) -> Self {
        Self {
            opcode: opcode::GENKEY,
            param1: mode::GENKEY_PUBLIC,
            param2: slot as u16,
            data: &[],
        }
    }

    /// GenKey create: a new private key in `slot` from the chip's RNG. Answers 64 bytes, the public key X || Y.
    pub const fn genkey_create(slot: u8) -> Self {
        Self {
            opcode: opcode::GENKEY,
            param1: mode::GENKEY_CREATE,
            param2: slot as u16,
            data: &[],
        }
    }

    /// Verify external, P-256: `signature_and_key` is R || S || X || Y; the digest is in TempKey (Nonce
    /// pass-through). Answers status 0x00 (valid) or 0x01 (miscompare).
    pub const fn verify_external(signature_and_key: &'a [u8; 128]) -> Self {
        Self {
            opcode: opcode::VERIFY,
            param1: mode::VERIFY_EXTERNAL,
            param2: VERIFY_KEY_P256,
            data: signature_and_key,
        }
    }

    /// Read 32 bytes of block `block` of data slot `slot`.
    pub const fn read_data_block(slot: u8, block: u8) -> Self {
        Self {
            opcode: opcode::READ,
            param1: mode::READ_ZONE_DATA | mode::READ_32_BYTES,
            param2: data_address(slot, block, 0),
            data: &[],
        }
    }

    /// Sign external: ECDSA signature of the digest in TempKey with the key in `slot`. Answers 64 bytes, R || S.
    pub const fn sign_external(slot: u8) -> Self {
        Self {
            opcode: opcode::SIGN,
            param1: mode::SIGN_EXTERNAL,
            param2: slot as u16,
            data: &[],
        }
    }

    /// Read 32 bytes of config block `block` (0..=3). Param2 is the word address `block << 3`.
    pub const fn read_config_block(block: u8) -> Self {
        Self {
            opcode: opcode::READ,
            param1: mode::READ_ZONE_CONFIG | mode::READ_32_BYTES,
            param2: config_address(block, 0),
            data: &[],
        }
    }

    /// Read the 4-byte word `word` (0..=7) of config block `block` (0..=3).
    pub const fn read_config_word(block: u8, word: u8) -> Self {
        Self {
            opcode: opcode::READ,
            param1: mode::READ_ZONE_CONFIG,
            param2: config_address(block, word),
            data: &[],
        }
    }

    /// Length of the command packet, count byte to CRC.
    pub const fn packet_len(&self) -> usize {
        COMMAND_OVERHEAD + self.data.len()
    }

    /// Writes word address 0x03 and the packet into `frame`; returns the number of bytes to send, or `None`
    /// when the data field is longer than [`MAX_COMMAND_DATA`].
    pub fn encode(&self, frame: &mut [u8; MAX_FRAME]) -> Option<usize> {
        if self.data.len() > MAX_COMMAND_DATA {
            return None;
        }
        let count = self.packet_len();
        let [p2_lo, p2_hi] = self.param2.to_le_bytes();
        frame[0] = word_address::COMMAND;
        // count ≤ 7 + 128: fits in the count byte.
        frame[1] = count as u8;
        frame[2] = self.opcode;
        frame[3] = self.param1;
        frame[4] = p2_lo;
        frame[5] = p2_hi;
        let data_end = 6 + self.data.len();
        frame[6..data_end].copy_from_slice(self.data);
        let crc = crc16(&frame[1..data_end]);
        frame[data_end..data_end + 2].copy_from_slice(&crc);
        Some(1 + count)
    }
}

/// Param2 of a data zone access (cryptoauthlib `calib_get_addr`): 4-byte word offset in bits 0..2, slot in
/// bits 3..6, 32-byte block in bits 8..11.
pub const fn data_address(slot: u8, block: u8, word: u8) -> u16 {
    ((block as u16 & 0x0F) << 8) | ((slot as u16 & 0x0F) << 3) | (word as u16 & 0x07)
}

/// Param2 of a config or OTP zone read: block in bits 3..7, 4-byte word offset in bits 0..2.
pub const fn config_address(block: u8, word: u8) -> u16 {
    ((block as u16) << 3) | (word as u16 & 0x07)
}

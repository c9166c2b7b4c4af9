//! The blocking driver, generic over an embedded-hal 1.0 I²C bus and delay.

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{ErrorKind, ErrorType, I2c};

use crate::config::{
    serial_from_block0, ConfigZone, LockStatus, Revision, BLOCK_LEN, CONFIG_ZONE_LEN,
};
use crate::crc::crc16;
use crate::error::AteccError;
use crate::protocol::{
    max_execution_time_ms, status, timing, word_address, Command, DEFAULT_ADDRESS, MAX_FRAME,
    MAX_RESPONSE_DATA, RESPONSE_OVERHEAD, WAKE_RESPONSE,
};

/// The error type of a driver on bus `I2C`.
pub type Error<I2C> = AteccError<<I2C as ErrorType>::Error>;

/// How many wake pulses [`Atecc::wake`] sends before giving up.
const WAKE_ATTEMPTS: u32 = 2;
/// Number of config blocks.
const CONFIG_BLOCKS: u8 = (CONFIG_ZONE_LEN / BLOCK_LEN) as u8;
/// Highest key slot.
const MAX_SLOT: u8 = 15;
/// Highest 32-byte block of a data slot: slot 8, the largest, has 416 bytes = 13 blocks.
const MAX_DATA_BLOCK: u8 = 12;

/// An ATECC508A or ATECC608A on an I²C bus.
///
/// # Wake, idle, sleep
/// The chip sleeps until SDA is held low for t_WLO ≥ 60 µs. On I²C this driver writes one byte to the general
/// call address 0x00: the address byte alone keeps SDA low for 8 bit times, 80 µs at 100 kHz, so **the bus
/// must run at 100 kHz or slower** (the Raspberry Pi's default; on a bit-banged bus choose the speed). Nobody
/// acknowledges that write and its error is ignored. Then the driver waits t_WHI = 1.5 ms and reads the
/// 4-byte wake response `04 11 33 43`, polling for up to 20 ms (t_WHIST of a 608 with power-up self-test).
///
/// Each high-level operation ([`info`](Self::info), [`random`](Self::random), [`sign_digest`](Self::sign_digest),
/// …) wakes the chip unless this driver already woke it, runs its command(s), and puts the chip into idle,
/// which keeps TempKey (so [`nonce_passthrough`](Self::nonce_passthrough) followed by
/// [`sign_tempkey`](Self::sign_tempkey) works) and stops the watchdog. [`sleep`](Self::sleep) is the lower
/// power state and forgets TempKey. [`execute`](Self::execute) is the raw command without wake or idle.
///
/// # Execution time
/// After sending a command the driver **polls**: every 1 ms it tries to read the response's count byte; the
/// chip NACKs its address while busy. It gives up with [`AteccError::Timeout`] once the command's maximum
/// execution time ([`max_execution_time_ms`], the larger of the 508A and 608A values, times
/// [`set_execution_time_factor`](Self::set_execution_time_factor)) plus one poll interval has passed, so the
/// number of retries is bounded. A read that fails with an error of kind `NoAcknowledge` or `Other` counts as
/// "busy" (Linux reports the bcm2835's NACK as `EREMOTEIO`, which linux-embedded-hal maps to `Other`); any
/// other bus error ends the operation.
#[derive(Debug)]
pub struct Atecc<I2C, D> {
    i2c: I2C,
    delay: D,
    address: u8,
    awake: bool,
    execution_time_factor: u32,
}

impl<I2C: I2c, D: DelayNs> Atecc<I2C, D> {
    /// The chip at the factory address 0x60.
    pub fn new(i2c: I2C, delay: D) -> Self {
        Self::with_address(i2c, delay, DEFAULT_ADDRESS)
    }

    /// The chip at 7-bit address `address`.
    pub fn with_address(i2c: I2C, delay: D, address: u8) -> Self {
        Self {
            i2c,
            delay,
            address,
            awake: false,
            execution_time_factor: 1,
        }
    }

    /// The 7-bit I²C address in use.
    pub fn address(&self) -> u8 {
        self.address
    }

    /// Multiplies every command's maximum execution time, for a 608 configured with a slower clock divider
    /// (ChipMode M1 ≈ ×2, M2 ≈ ×6). At least 1.
    pub fn set_execution_time_factor(&mut self, factor: u32) {
        self.execution_time_factor = factor.max(1);
    }

    /// Gives the bus and delay back.
    pub fn release(self) -> (I2C, D) {
        (self.i2c, self.delay)
    }

    /// Wakes the chip and checks its wake response `04 11 33 43`.
    pub fn wake(&mut self) -> Result<(), Error<I2C>> {
        self.awake = false;
        for _ in 0..WAKE_ATTEMPTS {
            // SDA low for the 8 bits of address 0x00 + write: the wake pulse. Nobody ACKs it.
            let _ = self.i2c.write(0x00, &[0x00]);
            self.delay.delay_us(timing::WAKE_HIGH_US);
            let mut waited = timing::WAKE_HIGH_US;
            loop {
                let mut response = [0u8; 4];
                match self.i2c.read(self.address, &mut response) {
                    Ok(()) => return self.check_wake(response),
                    Err(e) if is_busy(&e) => {}
                    Err(e) => return Err(AteccError::Bus(e)),
                }
                if waited >= timing::WAKE_HIGH_SELF_TEST_US {
                    break;
                }
                self.delay.delay_us(timing::POLL_INTERVAL_US);
                waited += timing::POLL_INTERVAL_US;
            }
        }
        Err(AteccError::NoWakeResponse)
    }

    fn check_wake(&mut self, response: [u8; 4]) -> Result<(), Error<I2C>> {
        if response == WAKE_RESPONSE {
            self.awake = true;
            return Ok(());
        }
        // A well-formed status packet other than "after wake" (e.g. 0x07 self-test failure on a 608).
        if response[0] == 4 && crc16(&response[..2]) == [response[2], response[3]] {
            if let Some(error) = AteccError::from_status(response[1]) {
                return Err(error);
            }
        }
        Err(AteccError::UnexpectedWakeResponse(response))
    }

    /// Puts the chip into idle (word address 0x02): TempKey is kept, the next command needs a wake. Does
    /// nothing unless this driver woke the chip (an idle or sleeping chip NACKs everything).
    pub fn idle(&mut self) -> Result<(), Error<I2C>> {
        if !self.awake {
            return Ok(());
        }
        self.awake = false;
        self.i2c
            .write(self.address, &[word_address::IDLE])
            .map_err(AteccError::Bus)
    }

    /// Puts the chip to sleep (word address 0x01): all volatile state is lost, the next command needs a wake.
    /// Wakes it first unless this driver already did (an idle chip NACKs the sleep word).
    pub fn sleep(&mut self) -> Result<(), Error<I2C>> {
        if !self.awake {
            self.wake()?;
        }
        self.awake = false;
        self.i2c
            .write(self.address, &[word_address::SLEEP])
            .map_err(AteccError::Bus)
    }

    /// Sends `command` to an awake chip, waits for it (polling, see the type's documentation) and reads its
    /// response into `response`, whose length is the number of data bytes the command answers (1 for a
    /// command that answers only a status byte: then `response[0]` is 0 on success). Checks the count byte
    /// and the CRC, and turns a status packet into its error.
    pub fn execute(
        &mut self,
        command: &Command<'_>,
        response: &mut [u8],
    ) -> Result<(), Error<I2C>> {
        if response.is_empty() || response.len() > MAX_RESPONSE_DATA {
            return Err(AteccError::InvalidArgument(
                "response length must be 1..=64 bytes",
            ));
        }
        let mut frame = [0u8; MAX_FRAME];
        let Some(len) = command.encode(&mut frame) else {
            return Err(AteccError::InvalidArgument(
                "command data longer than 64 bytes",
            ));
        };
        self.i2c
            .write(self.address, &frame[..len])
            .map_err(AteccError::Bus)?;

        let budget_us = max_execution_time_ms(command.opcode)
            .saturating_mul(1_000)
            .saturating_mul(self.execution_time_factor);
        let mut packet = [0u8; RESPONSE_OVERHEAD + MAX_RESPONSE_DATA];
        let mut waited = 0u32;
        loop {
            self.delay.delay_us(timing::POLL_INTERVAL_US);
            waited = waited.saturating_add(timing::POLL_INTERVAL_US);
            match self.i2c.read(self.address, &mut packet[..1]) {
                Ok(()) => break,
                Err(e) if is_busy(&e) => {
                    if waited > budget_us {
                        return Err(AteccError::Timeout {
                            opcode: command.opcode,
                        });
                    }
                }
                Err(e) => return Err(AteccError::Bus(e)),
            }
        }

        let count = usize::from(packet[0]);
        let full = RESPONSE_OVERHEAD + response.len();
        // `full` ≤ 67: fits in the count byte.
        let invalid = AteccError::InvalidCount {
            count: packet[0],
            expected: full as u8,
        };
        if count != 4 && count != full {
            return Err(invalid);
        }
        self.i2c
            .read(self.address, &mut packet[1..count])
            .map_err(AteccError::Bus)?;
        let computed = crc16(&packet[..count - 2]);
        let received = [packet[count - 2], packet[count - 1]];
        if computed != received {
            return Err(AteccError::BadCrc { computed, received });
        }
        if count == 4 {
            if let Some(error) = AteccError::from_status(packet[1]) {
                return Err(error);
            }
            if response.len() != 1 {
                // "Success" without the data the command owes.
                return Err(invalid);
            }
        }
        response.copy_from_slice(&packet[1..count - 2]);
        Ok(())
    }

    /// Runs `f` with the chip awake, then puts it into idle.
    fn session<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, Error<I2C>>,
    ) -> Result<T, Error<I2C>> {
        if !self.awake {
            self.wake()?;
        }
        let result = f(self);
        let idled = self.idle();
        let value = result?;
        idled?;
        Ok(value)
    }

    /// Info (revision mode): which chip this is.
    pub fn info(&mut self) -> Result<Revision, Error<I2C>> {
        self.session(|s| {
            let mut revision = [0u8; 4];
            s.execute(&Command::info_revision(), &mut revision)?;
            Ok(Revision(revision))
        })
    }

    /// 32 random bytes from the chip's RNG. (With the config zone unlocked the chip returns a fixed test
    /// pattern instead.)
    pub fn random(&mut self) -> Result<[u8; 32], Error<I2C>> {
        self.session(|s| {
            let mut random = [0u8; 32];
            s.execute(&Command::random(), &mut random)?;
            Ok(random)
        })
    }

    /// Nonce in pass-through mode: loads TempKey with `num_in` (e.g. a SHA-256 digest to sign).
    pub fn nonce_passthrough(&mut self, num_in: &[u8; 32]) -> Result<(), Error<I2C>> {
        self.session(|s| s.nonce_passthrough_awake(num_in))
    }

    fn nonce_passthrough_awake(&mut self, num_in: &[u8; 32]) -> Result<(), Error<I2C>> {
        let mut status_byte = [0u8; 1];
        self.execute(&Command::nonce_passthrough(num_in), &mut status_byte)?;
        debug_assert_eq!(status_byte[0], status::SUCCESS);
        Ok(())
    }

    /// GenKey (public mode): the P-256 public key X || Y of the private key in `slot` (0..=15).
    pub fn public_key(&mut self, slot: u8) -> Result<[u8; 64], Error<I2C>> {
        check_slot(slot)?;
        self.session(|s| {
            let mut key = [0u8; 64];
            s.execute(&Command::genkey_public(slot), &mut key)?;
            Ok(key)
        })
    }

    /// GenKey (create mode 0x04): the chip makes a new P-256 private key from its own RNG, stores it in `slot`
    /// (replacing any key there) and returns only the public key X || Y. The chip refuses (status 0x0F,
    /// [`AteccError::ExecutionError`]) a slot that is not a private-key slot, whose SlotConfig forbids GenKey
    /// once the data zone is locked, or that is slot-locked.
    pub fn generate_key(&mut self, slot: u8) -> Result<[u8; 64], Error<I2C>> {
        check_slot(slot)?;
        self.session(|s| {
            let mut key = [0u8; 64];
            s.execute(&Command::genkey_create(slot), &mut key)?;
            Ok(key)
        })
    }

    /// Verify (external mode, P-256): whether `signature` (R || S) is a valid ECDSA signature of `digest` under
    /// `public_key` (X || Y), checked by the chip: Nonce pass-through of the digest into TempKey, then Verify, in
    /// one wake. `Ok(false)` when the chip answers miscompare (0x01); any other failure is an error.
    pub fn verify_external(
        &mut self,
        public_key: &[u8; 64],
        digest: &[u8; 32],
        signature: &[u8; 64],
    ) -> Result<bool, Error<I2C>> {
        let mut data = [0u8; 128];
        data[..64].copy_from_slice(signature);
        data[64..].copy_from_slice(public_key);
        self.session(|s| {
            s.nonce_passthrough_awake(digest)?;
            let mut status_byte = [0u8; 1];
            match s.execute(&Command::verify_external(&data), &mut status_byte) {
                Ok(()) => Ok(true),
                Err(AteccError::Miscompare) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    /// Reads 32-byte block `block` (0..=12) of data slot `slot` (0..=15). The chip refuses (status 0x0F,
    /// [`AteccError::ExecutionError`]) a secret or private-key slot and any data read before the data zone is
    /// locked, and answers a parse error (0x03) for a block beyond the slot's end (slots 0..=7 hold 36 bytes:
    /// block 0 only; 9..=15 hold 72: blocks 0..=1; slot 8 holds 416: blocks 0..=12).
    pub fn read_slot_block(&mut self, slot: u8, block: u8) -> Result<[u8; BLOCK_LEN], Error<I2C>> {
        check_slot(slot)?;
        if block > MAX_DATA_BLOCK {
            return Err(AteccError::InvalidArgument("data block must be 0..=12"));
        }
        self.session(|s| {
            let mut data = [0u8; BLOCK_LEN];
            s.execute(&Command::read_data_block(slot, block), &mut data)?;
            Ok(data)
        })
    }

    /// Sign (external mode): ECDSA P-256 signature R || S, with the key in `slot`, of the digest that
    /// [`nonce_passthrough`](Self::nonce_passthrough) put into TempKey.
    pub fn sign_tempkey(&mut self, slot: u8) -> Result<[u8; 64], Error<I2C>> {
        check_slot(slot)?;
        self.session(|s| s.sign_tempkey_awake(slot))
    }

    fn sign_tempkey_awake(&mut self, slot: u8) -> Result<[u8; 64], Error<I2C>> {
        let mut signature = [0u8; 64];
        self.execute(&Command::sign_external(slot), &mut signature)?;
        Ok(signature)
    }

    /// Signs a 32-byte message digest (SHA-256 of the message) with the key in `slot`: Nonce pass-through
    /// then Sign external, in one wake. Returns R || S.
    pub fn sign_digest(&mut self, slot: u8, digest: &[u8; 32]) -> Result<[u8; 64], Error<I2C>> {
        check_slot(slot)?;
        self.session(|s| {
            s.nonce_passthrough_awake(digest)?;
            s.sign_tempkey_awake(slot)
        })
    }

    /// Reads 32-byte block `block` (0..=3) of the config zone.
    pub fn read_config_block(&mut self, block: u8) -> Result<[u8; BLOCK_LEN], Error<I2C>> {
        check_block(block)?;
        self.session(|s| s.read_config_block_awake(block))
    }

    fn read_config_block_awake(&mut self, block: u8) -> Result<[u8; BLOCK_LEN], Error<I2C>> {
        let mut data = [0u8; BLOCK_LEN];
        self.execute(&Command::read_config_block(block), &mut data)?;
        Ok(data)
    }

    /// Reads the 4-byte word `word` (0..=7) of config block `block` (0..=3).
    pub fn read_config_word(&mut self, block: u8, word: u8) -> Result<[u8; 4], Error<I2C>> {
        check_block(block)?;
        if word > 7 {
            return Err(AteccError::InvalidArgument("config word must be 0..=7"));
        }
        self.session(|s| {
            let mut data = [0u8; 4];
            s.execute(&Command::read_config_word(block, word), &mut data)?;
            Ok(data)
        })
    }

    /// Reads the whole 128-byte config zone (four 32-byte reads in one wake).
    pub fn read_config_zone(&mut self) -> Result<ConfigZone, Error<I2C>> {
        self.session(|s| {
            let mut zone = [0u8; CONFIG_ZONE_LEN];
            for (block, chunk) in (0..CONFIG_BLOCKS).zip(zone.chunks_exact_mut(BLOCK_LEN)) {
                chunk.copy_from_slice(&s.read_config_block_awake(block)?);
            }
            Ok(ConfigZone(zone))
        })
    }

    /// The 9-byte serial number (config bytes 0..=3 and 8..=12).
    pub fn serial_number(&mut self) -> Result<[u8; 9], Error<I2C>> {
        let block0 = self.read_config_block(0)?;
        Ok(serial_from_block0(&block0))
    }

    /// Whether the config and data zones are locked (config bytes 87 and 86, read as word 5 of block 2:
    /// bytes 84..=87).
    pub fn lock_status(&mut self) -> Result<LockStatus, Error<I2C>> {
        let [_, _, lock_value, lock_config] = self.read_config_word(2, 5)?;
        Ok(LockStatus::from_bytes(lock_value, lock_config))
    }
}

/// A read error that means "not now" (asleep or busy) rather than a broken bus.
fn is_busy<E: embedded_hal::i2c::Error>(error: &E) -> bool {
    matches!(error.kind(), ErrorKind::NoAcknowledge(_) | ErrorKind::Other)
}

fn check_slot<E>(slot: u8) -> Result<(), AteccError<E>> {
    if slot > MAX_SLOT {
        return Err(AteccError::InvalidArgument("slot must be 0..=15"));
    }
    Ok(())
}

fn check_block<E>(block: u8) -> Result<(), AteccError<E>> {
    if block >= CONFIG_BLOCKS {
        return Err(AteccError::InvalidArgument("config block must be 0..=3"));
    }
    Ok(())
}

//! The driver never panics, whatever the bus returns: every operation against a bus that answers random
//! bytes (and random errors) ends in `Ok` or an `AteccError`.

use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};
use tmc_atecc::sim::SimI2cError;
use tmc_atecc::{Atecc, AteccError};

struct GarbageBus {
    state: u64,
}

impl GarbageBus {
    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }
}

impl ErrorType for GarbageBus {
    type Error = SimI2cError;
}

impl I2c for GarbageBus {
    fn transaction(
        &mut self,
        _address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), SimI2cError> {
        match self.next() % 8 {
            0 => {
                return Err(SimI2cError(ErrorKind::NoAcknowledge(
                    NoAcknowledgeSource::Address,
                )))
            }
            1 => return Err(SimI2cError(ErrorKind::Bus)),
            _ => {}
        }
        for operation in operations {
            if let Operation::Read(buffer) = operation {
                // Let half of the wakes succeed so that the command paths see the garbage too.
                if buffer.len() == 4 && self.next().is_multiple_of(2) {
                    buffer.copy_from_slice(&tmc_atecc::WAKE_RESPONSE);
                    continue;
                }
                for byte in buffer.iter_mut() {
                    // Small counts are the interesting ones: bias a quarter of the bytes low.
                    let r = self.next();
                    *byte = if r.is_multiple_of(4) {
                        (r >> 8) as u8 % 72
                    } else {
                        (r >> 16) as u8
                    };
                }
            }
        }
        Ok(())
    }
}

struct NoDelay;

impl embedded_hal::delay::DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

#[test]
fn random_bytes_from_the_bus_never_panic() {
    let mut ok = 0;
    let mut errors = 0;
    for seed in 1..400u64 {
        let mut chip = Atecc::new(
            GarbageBus {
                state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            },
            NoDelay,
        );
        let results: [Result<(), AteccError<SimI2cError>>; 8] = [
            chip.wake(),
            chip.info().map(drop),
            chip.random().map(drop),
            chip.nonce_passthrough(&[0; 32]),
            chip.public_key(0).map(drop),
            chip.sign_digest(0, &[1; 32]).map(drop),
            chip.read_config_zone().map(drop),
            chip.lock_status().map(drop),
        ];
        for result in results {
            match result {
                Ok(()) => ok += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    errors += 1;
                }
            }
        }
    }
    assert!(errors > 0);
    // Garbage almost never carries a valid CRC; all that matters is that nothing panicked.
    let _ = ok;
}

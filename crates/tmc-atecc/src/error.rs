//! Everything that can go wrong talking to the chip.

use core::fmt;

use crate::protocol::status;

/// An ATECC508A/608A operation failed. `E` is the I²C bus's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AteccError<E> {
    /// The I²C transfer itself failed (other than the chip NACKing while asleep or busy).
    Bus(E),
    /// No answer to the wake sequence: the chip is absent, at another address, held asleep, or the bus is
    /// faster than 100 kHz so the wake pulse (SDA low ≥ 60 µs) was too short.
    NoWakeResponse,
    /// The chip answered the wake with something other than `04 11 33 43`.
    UnexpectedWakeResponse([u8; 4]),
    /// The chip did not answer within the command's maximum execution time.
    Timeout {
        /// Opcode of the command.
        opcode: u8,
    },
    /// The response's count byte is impossible for the command: shorter than a status packet, longer than
    /// the response, or a status packet where data was due.
    InvalidCount {
        /// The count byte read.
        count: u8,
        /// The count of a full response to this command.
        expected: u8,
    },
    /// The response's CRC does not match its bytes.
    BadCrc {
        /// CRC computed over the received bytes.
        computed: [u8; 2],
        /// CRC received.
        received: [u8; 2],
    },
    /// Status 0x01: CheckMac or Verify miscompare.
    Miscompare,
    /// Status 0x03: the chip could not parse the command (illegal opcode, parameter or length).
    ParseError,
    /// Status 0x05: ECC computation fault.
    EccFault,
    /// Status 0x07: the chip is in self-test failure mode.
    SelfTestError,
    /// Status 0x08: random number generator health test failed.
    HealthTestError,
    /// Status 0x0F: the command could not be executed in the chip's current state.
    ExecutionError,
    /// Status 0x11 in answer to a command: the chip has been asleep (watchdog) and was woken again, so the
    /// command was not executed.
    AfterWake,
    /// Status 0xEE: too little time left before the watchdog puts the chip to sleep.
    WatchdogAboutToExpire,
    /// Status 0xFF: the chip received a packet with a bad CRC, or another communication error.
    CommunicationError,
    /// A status byte the datasheet does not define.
    UnknownStatus(u8),
    /// The caller asked for something impossible (slot, block, length out of range).
    InvalidArgument(&'static str),
}

impl<E> AteccError<E> {
    /// The error a non-zero status byte stands for; `None` for 0x00 (success).
    pub const fn from_status(code: u8) -> Option<Self> {
        Some(match code {
            status::SUCCESS => return None,
            status::MISCOMPARE => Self::Miscompare,
            status::PARSE_ERROR => Self::ParseError,
            status::ECC_FAULT => Self::EccFault,
            status::SELF_TEST_ERROR => Self::SelfTestError,
            status::HEALTH_TEST_ERROR => Self::HealthTestError,
            status::EXECUTION_ERROR => Self::ExecutionError,
            status::AFTER_WAKE => Self::AfterWake,
            status::WATCHDOG_ABOUT_TO_EXPIRE => Self::WatchdogAboutToExpire,
            status::CRC_OR_COMM_ERROR => Self::CommunicationError,
            other => Self::UnknownStatus(other),
        })
    }

    /// The status byte behind this error, if it came from the chip's status packet.
    pub const fn status_code(&self) -> Option<u8> {
        match self {
            Self::Miscompare => Some(status::MISCOMPARE),
            Self::ParseError => Some(status::PARSE_ERROR),
            Self::EccFault => Some(status::ECC_FAULT),
            Self::SelfTestError => Some(status::SELF_TEST_ERROR),
            Self::HealthTestError => Some(status::HEALTH_TEST_ERROR),
            Self::ExecutionError => Some(status::EXECUTION_ERROR),
            Self::AfterWake => Some(status::AFTER_WAKE),
            Self::WatchdogAboutToExpire => Some(status::WATCHDOG_ABOUT_TO_EXPIRE),
            Self::CommunicationError => Some(status::CRC_OR_COMM_ERROR),
            Self::UnknownStatus(code) => Some(*code),
            _ => None,
        }
    }
}

impl<E: fmt::Debug> fmt::Display for AteccError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bus(e) => write!(f, "ATECC: I2C bus error: {e:?}"),
            Self::NoWakeResponse => f.write_str(
                "ATECC: no answer to the wake sequence (chip absent, wrong address, or bus faster than 100 kHz)",
            ),
            Self::UnexpectedWakeResponse(b) => write!(
                f,
                "ATECC: unexpected wake response {:02x} {:02x} {:02x} {:02x} (expected 04 11 33 43)",
                b[0], b[1], b[2], b[3]
            ),
            Self::Timeout { opcode } => {
                write!(f, "ATECC: no response to command 0x{opcode:02x} within its maximum execution time")
            }
            Self::InvalidCount { count, expected } => write!(
                f,
                "ATECC: response count byte {count} is invalid (expected 4 for a status or {expected})"
            ),
            Self::BadCrc { computed, received } => write!(
                f,
                "ATECC: response CRC mismatch (received {:02x} {:02x}, computed {:02x} {:02x})",
                received[0], received[1], computed[0], computed[1]
            ),
            Self::Miscompare => f.write_str("ATECC status 0x01: CheckMac or Verify miscompare"),
            Self::ParseError => f.write_str("ATECC status 0x03: parse error (illegal opcode, parameter or length)"),
            Self::EccFault => f.write_str("ATECC status 0x05: ECC computation fault"),
            Self::SelfTestError => f.write_str("ATECC status 0x07: self-test error"),
            Self::HealthTestError => f.write_str("ATECC status 0x08: random number generator health test error"),
            Self::ExecutionError => {
                f.write_str("ATECC status 0x0f: execution error (command not allowed in the chip's current state)")
            }
            Self::AfterWake => f.write_str(
                "ATECC status 0x11: chip was put to sleep by its watchdog and woken again; command not executed",
            ),
            Self::WatchdogAboutToExpire => f.write_str("ATECC status 0xee: watchdog about to expire"),
            Self::CommunicationError => {
                f.write_str("ATECC status 0xff: the chip received a bad CRC or another communication error")
            }
            Self::UnknownStatus(code) => write!(f, "ATECC: unknown status 0x{code:02x}"),
            Self::InvalidArgument(what) => write!(f, "ATECC: invalid argument: {what}"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for AteccError<E> {}

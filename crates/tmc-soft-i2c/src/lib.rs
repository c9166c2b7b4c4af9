//! Bit-banged I²C master (7-bit addresses) implementing
//! `embedded_hal::i2c::I2c`, portable over a tiny [`Pins`] trait and a
//! `DelayNs`. The ESP8266 firmware runs it over its GPIO14/GPIO12 pins
//! (`tmc_firmware::hw::gpio::I2cPins`); [`model`] (feature `model`) is an
//! open-drain wire with a target on it, which `cargo test` here and the
//! firmware's on-target checks in QEMU drive it against.
//!
//! Open drain: a line is either pulled low by the master or released (input,
//! the pull-up raises it). Protocol: START, address byte + R/W, ACK/NACK,
//! data bytes MSB first, the master ACKs every read byte except the last of a
//! run of reads, repeated START between operations of different direction
//! (consecutive operations of the same direction are merged, as
//! `embedded_hal::i2c::I2c::transaction` specifies), STOP at the end and after
//! any error. SCL clock stretching is honoured up to `stretch_timeout_us`.
//! No multi-master arbitration.
#![no_std]

#[cfg(any(test, feature = "model"))]
extern crate alloc;

#[cfg(any(test, feature = "model"))]
pub mod model;

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{
    self, ErrorKind, ErrorType, NoAcknowledgeSource, Operation, SevenBitAddress,
};

/// The two open-drain lines. "low" drives the line to 0, "release" lets the
/// pull-up take it to 1 (unless someone else holds it low).
pub trait Pins {
    fn set_scl_low(&mut self);
    fn release_scl(&mut self);
    fn set_sda_low(&mut self);
    fn release_sda(&mut self);
    /// Level on the SDA line (true = high).
    fn read_sda(&mut self) -> bool;
    /// Level on the SCL line (true = high); low after a release = a target stretching the clock.
    fn read_scl(&mut self) -> bool;
}

/// Bus errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The address or a data byte was not acknowledged.
    NoAcknowledge(NoAcknowledgeSource),
    /// SCL stayed low longer than the stretch timeout (target hung, no pull-up, short).
    ClockStretchTimeout,
    /// SDA low while the bus should be idle (a target stuck mid-byte, no pull-up).
    BusStuck,
}

impl i2c::Error for Error {
    fn kind(&self) -> ErrorKind {
        match *self {
            Error::NoAcknowledge(source) => ErrorKind::NoAcknowledge(source),
            Error::ClockStretchTimeout | Error::BusStuck => ErrorKind::Bus,
        }
    }
}

/// The bit-banged master.
pub struct BitBangI2c<P, D> {
    pins: P,
    delay: D,
    half_period_ns: u32,
    stretch_timeout_us: u32,
}

impl<P: Pins, D: DelayNs> BitBangI2c<P, D> {
    /// Master at about `bus_hz` (the delay sets the half periods; pin access
    /// time comes on top, so the real clock is slower). Releases both lines.
    pub fn new(mut pins: P, delay: D, bus_hz: u32) -> Self {
        pins.release_sda();
        pins.release_scl();
        BitBangI2c {
            pins,
            delay,
            half_period_ns: 500_000_000 / bus_hz.max(1),
            stretch_timeout_us: 1_000,
        }
    }

    /// How long a target may hold SCL low (default 1 ms).
    pub fn set_stretch_timeout_us(&mut self, us: u32) {
        self.stretch_timeout_us = us;
    }

    pub fn release(self) -> (P, D) {
        (self.pins, self.delay)
    }

    fn half(&mut self) {
        self.delay.delay_ns(self.half_period_ns);
    }

    /// Release SCL and wait (clock stretching) until it is high.
    fn scl_high(&mut self) -> Result<(), Error> {
        self.pins.release_scl();
        let mut waited = 0;
        while !self.pins.read_scl() {
            if waited >= self.stretch_timeout_us {
                return Err(Error::ClockStretchTimeout);
            }
            self.delay.delay_us(1);
            waited += 1;
        }
        Ok(())
    }

    /// START or repeated START (SCL may be low or high on entry).
    fn start(&mut self) -> Result<(), Error> {
        self.pins.release_sda();
        self.half();
        self.scl_high()?;
        if !self.pins.read_sda() {
            return Err(Error::BusStuck);
        }
        self.half();
        self.pins.set_sda_low();
        self.half();
        self.pins.set_scl_low();
        Ok(())
    }

    fn stop(&mut self) -> Result<(), Error> {
        self.pins.set_sda_low();
        self.half();
        let r = self.scl_high();
        self.half();
        self.pins.release_sda();
        self.half();
        r
    }

    /// One bit; SCL is low on entry and on exit.
    fn write_bit(&mut self, bit: bool) -> Result<(), Error> {
        if bit {
            self.pins.release_sda();
        } else {
            self.pins.set_sda_low();
        }
        self.half();
        self.scl_high()?;
        self.half();
        self.pins.set_scl_low();
        Ok(())
    }

    fn read_bit(&mut self) -> Result<bool, Error> {
        self.pins.release_sda();
        self.half();
        self.scl_high()?;
        self.half();
        let bit = self.pins.read_sda();
        self.pins.set_scl_low();
        Ok(bit)
    }

    /// Byte MSB first; returns true if the target ACKed (SDA low on the 9th clock).
    fn write_byte(&mut self, byte: u8) -> Result<bool, Error> {
        for i in (0..8).rev() {
            self.write_bit(byte & (1 << i) != 0)?;
        }
        Ok(!self.read_bit()?)
    }

    fn read_byte(&mut self, ack: bool) -> Result<u8, Error> {
        let mut byte = 0u8;
        for _ in 0..8 {
            byte = (byte << 1) | u8::from(self.read_bit()?);
        }
        self.write_bit(!ack)?;
        self.pins.release_sda();
        Ok(byte)
    }

    fn run(&mut self, address: u8, operations: &mut [Operation<'_>]) -> Result<(), Error> {
        let mut previous_read: Option<bool> = None;
        let count = operations.len();
        for index in 0..count {
            let is_read = matches!(operations[index], Operation::Read(_));
            if previous_read != Some(is_read) {
                self.start()?;
                if !self.write_byte((address << 1) | u8::from(is_read))? {
                    return Err(Error::NoAcknowledge(NoAcknowledgeSource::Address));
                }
                previous_read = Some(is_read);
            }
            // The last byte of a run of reads is NACKed.
            let next_is_read =
                index + 1 < count && matches!(operations[index + 1], Operation::Read(_));
            match &mut operations[index] {
                Operation::Write(bytes) => {
                    for &b in bytes.iter() {
                        if !self.write_byte(b)? {
                            return Err(Error::NoAcknowledge(NoAcknowledgeSource::Data));
                        }
                    }
                }
                Operation::Read(buffer) => {
                    let len = buffer.len();
                    for (i, slot) in buffer.iter_mut().enumerate() {
                        let last = i + 1 == len && !next_is_read;
                        *slot = self.read_byte(!last)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl<P: Pins, D: DelayNs> ErrorType for BitBangI2c<P, D> {
    type Error = Error;
}

impl<P: Pins, D: DelayNs> i2c::I2c<SevenBitAddress> for BitBangI2c<P, D> {
    fn transaction(&mut self, address: u8, operations: &mut [Operation<'_>]) -> Result<(), Error> {
        if operations.is_empty() {
            return Ok(());
        }
        let result = self.run(address, operations);
        // Always end with STOP (also after a NACK or a timeout).
        let stopped = self.stop();
        result.and(stopped)
    }
}

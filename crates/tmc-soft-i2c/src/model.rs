//! A model of the open-drain I²C wire with one target on it, for driving [`BitBangI2c`] without
//! hardware: the line levels are the wired-AND of the master's and the target's pull-downs, and the
//! target sees every edge the master makes (it samples SDA on rising SCL, changes SDA only while SCL is
//! low, detects START and STOP), so the bytes it logs are what the master really put on the wire.
//!
//! What answers behind the bit-level target is a [`Device`]: [`Scripted`] (one address, canned read
//! bytes) or [`I2cDevice`], any transaction-level `embedded_hal::i2c::I2c` target (such as
//! `tmc_atecc::sim`'s chip), which gets each write when it ends and each read byte as it is clocked out.
//!
//! [`protocol_check`] is the walk-through that `cargo test` runs here and the firmware's on-target check
//! `i2c_bitbang_protocol` runs on the lx106 in QEMU.
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Debug;

use embedded_hal::i2c::{ErrorKind, I2c, NoAcknowledgeSource};

use crate::{BitBangI2c, Error, Pins};

/// One event on the wire, as the target saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Start,
    Stop,
    /// Byte the target received (address bytes included) and whether it ACKed.
    Rx(u8, bool),
    /// Byte the target sent and whether the master ACKed it.
    Tx(u8, bool),
}

/// What answers behind the bit-level target.
pub trait Device {
    /// Whether the target ACKs its 7-bit `address` (0: the general call, the ATECC's wake pulse).
    fn address_ack(&mut self, address: u8) -> bool;
    /// A write to `address` ended (STOP or repeated START) with these data bytes (never empty).
    fn write(&mut self, address: u8, bytes: &[u8]);
    /// The next byte a read from `address` clocks out.
    fn read_byte(&mut self, address: u8) -> u8;
}

/// A target at one address that ACKs every written byte and sends canned bytes (then 0xFF).
pub struct Scripted {
    address: u8,
    tx: Vec<u8>,
    tx_pos: usize,
}

impl Scripted {
    pub fn new(address: u8, tx: &[u8]) -> Self {
        Scripted {
            address,
            tx: tx.to_vec(),
            tx_pos: 0,
        }
    }
}

impl Device for Scripted {
    fn address_ack(&mut self, address: u8) -> bool {
        address == self.address
    }
    fn write(&mut self, _address: u8, _bytes: &[u8]) {}
    fn read_byte(&mut self, _address: u8) -> u8 {
        let byte = self.tx.get(self.tx_pos).copied().unwrap_or(0xFF);
        self.tx_pos += 1;
        byte
    }
}

/// A transaction-level target behind the wire: the address is probed with an empty read (an empty
/// write for address 0), writes are handed over when they end, reads fetch one byte at a time.
pub struct I2cDevice<I>(pub I);

impl<I: I2c> Device for I2cDevice<I> {
    fn address_ack(&mut self, address: u8) -> bool {
        if address == 0 {
            self.0.write(0, &[]).is_ok()
        } else {
            self.0.read(address, &mut []).is_ok()
        }
    }
    fn write(&mut self, address: u8, bytes: &[u8]) {
        // A refused write shows as wrong answers later, as on a real bus.
        let _ = self.0.write(address, bytes);
    }
    fn read_byte(&mut self, address: u8) -> u8 {
        let mut byte = [0xFF];
        let _ = self.0.read(address, &mut byte);
        byte[0]
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Idle,
    Addr,
    Write,
    Read,
}

/// The target's bit-level state machine and what it logged.
struct Target<D> {
    device: D,
    mode: Mode,
    bit: u8,
    shift: u8,
    sda_low: bool,
    tx_byte: u8,
    master_acked: bool,
    log: Vec<Wire>,
    rx: Vec<u8>,
    /// Bytes of the current write, handed to the device at STOP / repeated START.
    pending: Vec<u8>,
    pending_addr: u8,
}

impl<D: Device> Target<D> {
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.device.write(self.pending_addr, &self.pending);
        }
        self.pending.clear();
    }

    fn load(&mut self) {
        self.tx_byte = self.device.read_byte(self.pending_addr);
        self.sda_low = self.tx_byte & 0x80 == 0;
    }
}

/// The wire: the master's [`Pins`], with the target on the other end.
pub struct WireBus<D> {
    m_scl_low: bool,
    m_sda_low: bool,
    scl_stuck: bool,
    stretch_per_byte: u32,
    stretching: u32,
    scl: bool,
    sda: bool,
    target: Target<D>,
}

impl<D: Device> WireBus<D> {
    pub fn new(device: D) -> Self {
        WireBus {
            m_scl_low: false,
            m_sda_low: false,
            scl_stuck: false,
            stretch_per_byte: 0,
            stretching: 0,
            scl: true,
            sda: true,
            target: Target {
                device,
                mode: Mode::Idle,
                bit: 0,
                shift: 0,
                sda_low: false,
                tx_byte: 0,
                master_acked: false,
                log: Vec::new(),
                rx: Vec::new(),
                pending: Vec::new(),
                pending_addr: 0,
            },
        }
    }

    /// The target holds SCL low for good (hung target, no pull-up, short).
    pub fn hold_scl_low(&mut self) {
        self.scl_stuck = true;
    }

    /// The target stretches the clock after each byte it receives: it holds SCL low until the master
    /// has read SCL `polls` times.
    pub fn stretch_after_each_byte(&mut self, polls: u32) {
        self.stretch_per_byte = polls;
    }

    /// The target holds SDA low (stuck mid-byte).
    pub fn hold_sda_low(&mut self) {
        self.target.sda_low = true;
        self.sda = self.line_sda();
    }

    /// START, STOP and bytes as the target saw them.
    pub fn log(&self) -> &[Wire] {
        &self.target.log
    }

    /// Data bytes written to the target (address bytes not included).
    pub fn received(&self) -> &[u8] {
        &self.target.rx
    }

    pub fn device(&self) -> &D {
        &self.target.device
    }

    /// Both lines high: nobody holds the bus.
    pub fn is_idle(&self) -> bool {
        self.line_scl() && self.line_sda()
    }

    fn line_scl(&self) -> bool {
        !(self.m_scl_low || self.scl_stuck || self.stretching > 0)
    }

    fn line_sda(&self) -> bool {
        !(self.m_sda_low || self.target.sda_low)
    }

    /// Called after every change of a line: the target sees the edges.
    fn settle(&mut self) {
        let (scl, sda) = (self.line_scl(), self.line_sda());
        let t = &mut self.target;
        let mut stretch = false;
        if scl && self.scl && sda != self.sda {
            t.flush();
            if !sda {
                t.log.push(Wire::Start);
                t.mode = Mode::Addr;
                t.bit = 0;
                t.shift = 0;
            } else {
                t.log.push(Wire::Stop);
                t.mode = Mode::Idle;
            }
            t.sda_low = false;
        } else if scl && !self.scl {
            // rising SCL: sample
            match t.mode {
                Mode::Addr | Mode::Write if t.bit < 8 => {
                    t.shift = (t.shift << 1) | u8::from(sda);
                    t.bit += 1;
                }
                Mode::Read if t.bit == 8 => t.master_acked = !sda,
                _ => {}
            }
        } else if !scl && self.scl {
            // falling SCL: drive the next bit
            match t.mode {
                Mode::Addr | Mode::Write if t.bit == 8 => {
                    let ack = if t.mode == Mode::Write {
                        true
                    } else {
                        t.device.address_ack(t.shift >> 1)
                    };
                    t.log.push(Wire::Rx(t.shift, ack));
                    if t.mode == Mode::Write {
                        t.rx.push(t.shift);
                        t.pending.push(t.shift);
                    } else {
                        t.pending_addr = t.shift >> 1;
                    }
                    t.sda_low = ack;
                    t.bit = 9;
                    if !ack {
                        t.mode = Mode::Idle;
                    }
                    stretch = ack;
                }
                Mode::Addr | Mode::Write if t.bit == 9 => {
                    t.sda_low = false;
                    t.bit = 0;
                    if t.mode == Mode::Addr && t.shift & 1 == 1 {
                        t.mode = Mode::Read;
                        t.load();
                    } else {
                        t.mode = Mode::Write;
                        t.shift = 0;
                    }
                }
                Mode::Read if t.bit < 7 => {
                    t.bit += 1;
                    t.sda_low = t.tx_byte & (0x80 >> t.bit) == 0;
                }
                Mode::Read if t.bit == 7 => {
                    t.bit = 8;
                    t.sda_low = false;
                }
                Mode::Read => {
                    t.log.push(Wire::Tx(t.tx_byte, t.master_acked));
                    if t.master_acked {
                        t.bit = 0;
                        t.load();
                    } else {
                        t.mode = Mode::Idle;
                        t.sda_low = false;
                    }
                }
                Mode::Idle => t.sda_low = false,
                _ => {}
            }
        }
        if stretch {
            self.stretching = self.stretch_per_byte;
        }
        self.scl = self.line_scl();
        self.sda = self.line_sda();
    }
}

impl<D: Device> Pins for WireBus<D> {
    fn set_scl_low(&mut self) {
        self.m_scl_low = true;
        self.settle();
    }
    fn release_scl(&mut self) {
        self.m_scl_low = false;
        self.settle();
    }
    fn set_sda_low(&mut self) {
        self.m_sda_low = true;
        self.settle();
    }
    fn release_sda(&mut self) {
        self.m_sda_low = false;
        self.settle();
    }
    fn read_sda(&mut self) -> bool {
        self.line_sda()
    }
    fn read_scl(&mut self) -> bool {
        if self.stretching > 0 {
            self.stretching -= 1;
            if self.stretching == 0 {
                // The target lets go: the master's released SCL rises now.
                self.settle();
            }
        }
        self.line_scl()
    }
}

/// A delay that takes no time (the model has no clock).
pub struct NoDelay;

impl embedded_hal::delay::DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

fn expect<T: PartialEq + Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} = {got:?}, want {want:?}"))
    }
}

/// The ATECC's Info command frame, a typical write.
pub const INFO_FRAME: [u8; 8] = [0x03, 0x07, 0x30, 0x00, 0x00, 0x00, 0x03, 0x5D];

/// The master against a scripted target at 0x60: a write (START, `C0` ACK, the bytes ACKed, STOP), a
/// read (ACK on every byte but the last, STOP), `write_read` with a repeated START, a wrong address
/// (NACK, STOP, `ErrorKind::NoAcknowledge(Address)`) and SCL held low (`ClockStretchTimeout`,
/// `ErrorKind::Bus`, no hang). The error names what differed.
pub fn protocol_check() -> Result<(), String> {
    use embedded_hal::i2c::Error as _;
    use Wire::*;

    let mut i2c = BitBangI2c::new(WireBus::new(Scripted::new(0x60, &[])), NoDelay, 100_000);
    i2c.write(0x60, core::hint::black_box(&INFO_FRAME))
        .map_err(|e| format!("write: {e:?}"))?;
    let (bus, _) = i2c.release();
    let mut want = vec![Start, Rx(0xC0, true)];
    want.extend(INFO_FRAME.iter().map(|&b| Rx(b, true)));
    want.push(Stop);
    expect("write on the wire", bus.log(), &want[..])?;
    expect("bytes received", bus.received(), &INFO_FRAME[..])?;
    expect("bus idle after the write", bus.is_idle(), true)?;

    let resp = [0x04, 0x11, 0x33, 0x43];
    let mut i2c = BitBangI2c::new(WireBus::new(Scripted::new(0x60, &resp)), NoDelay, 100_000);
    let mut buf = [0u8; 4];
    i2c.read(0x60, &mut buf)
        .map_err(|e| format!("read: {e:?}"))?;
    expect("read", buf, resp)?;
    let (bus, _) = i2c.release();
    expect(
        "read on the wire",
        bus.log(),
        &[
            Start,
            Rx(0xC1, true),
            Tx(0x04, true),
            Tx(0x11, true),
            Tx(0x33, true),
            Tx(0x43, false),
            Stop,
        ][..],
    )?;

    let script = [0xA5, 0x5A];
    let mut i2c = BitBangI2c::new(WireBus::new(Scripted::new(0x60, &script)), NoDelay, 100_000);
    let mut buf = [0u8; 2];
    i2c.write_read(0x60, &[0x03], &mut buf)
        .map_err(|e| format!("write_read: {e:?}"))?;
    expect("write_read", buf, script)?;
    let (bus, _) = i2c.release();
    expect(
        "write_read on the wire",
        bus.log(),
        &[
            Start,
            Rx(0xC0, true),
            Rx(0x03, true),
            Start,
            Rx(0xC1, true),
            Tx(0xA5, true),
            Tx(0x5A, false),
            Stop,
        ][..],
    )?;

    let mut i2c = BitBangI2c::new(WireBus::new(Scripted::new(0x60, &[])), NoDelay, 100_000);
    let err = i2c.write(0x61, &[0x01]).err();
    let nack = Error::NoAcknowledge(NoAcknowledgeSource::Address);
    expect("write to a wrong address", err, Some(nack))?;
    expect(
        "its kind",
        nack.kind(),
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address),
    )?;
    let (bus, _) = i2c.release();
    expect(
        "wrong address on the wire",
        bus.log(),
        &[Start, Rx(0xC2, false), Stop][..],
    )?;

    let mut bus = WireBus::new(Scripted::new(0x60, &[]));
    bus.hold_scl_low();
    let mut i2c = BitBangI2c::new(bus, NoDelay, 100_000);
    i2c.set_stretch_timeout_us(50);
    let err = i2c.write(0x60, &[0x01]).err();
    expect("SCL held low", err, Some(Error::ClockStretchTimeout))?;
    expect(
        "its kind",
        Error::ClockStretchTimeout.kind(),
        ErrorKind::Bus,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::delay::DelayNs;
    use Wire::*;

    #[test]
    fn protocol_walk_through() {
        protocol_check().unwrap();
    }

    /// An EEPROM-like target: a register pointer set by the first written byte, auto-increment.
    #[derive(Default)]
    struct Eeprom {
        memory: [u8; 16],
        pointer: usize,
    }

    impl embedded_hal::i2c::ErrorType for Eeprom {
        type Error = ErrorKind;
    }

    impl I2c for Eeprom {
        fn transaction(
            &mut self,
            address: u8,
            operations: &mut [embedded_hal::i2c::Operation<'_>],
        ) -> Result<(), ErrorKind> {
            if address != 0x50 {
                return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
            }
            for op in operations {
                match op {
                    embedded_hal::i2c::Operation::Write(bytes) => {
                        if let Some((&pointer, data)) = bytes.split_first() {
                            self.pointer = usize::from(pointer) % 16;
                            for &b in data {
                                self.memory[self.pointer] = b;
                                self.pointer = (self.pointer + 1) % 16;
                            }
                        }
                    }
                    embedded_hal::i2c::Operation::Read(buf) => {
                        for slot in buf.iter_mut() {
                            *slot = self.memory[self.pointer];
                            self.pointer = (self.pointer + 1) % 16;
                        }
                    }
                }
            }
            Ok(())
        }
    }

    #[test]
    fn eeprom_write_then_random_read() {
        let bus = WireBus::new(I2cDevice(Eeprom::default()));
        let mut i2c = BitBangI2c::new(bus, NoDelay, 400_000);
        i2c.write(0x50, &[0x04, 0xDE, 0xAD, 0xBE]).unwrap();
        let mut buf = [0u8; 3];
        i2c.write_read(0x50, &[0x04], &mut buf).unwrap();
        assert_eq!(buf, [0xDE, 0xAD, 0xBE]);
        // Current-address read continues after the last byte read.
        let mut next = [0u8; 1];
        i2c.read(0x50, &mut next).unwrap();
        assert_eq!(next, [0x00]);
        let (bus, _) = i2c.release();
        assert_eq!(bus.device().0.memory[4..7], [0xDE, 0xAD, 0xBE]);
        assert_eq!(bus.received(), &[0x04, 0xDE, 0xAD, 0xBE, 0x04]);
        assert_eq!(
            bus.log(),
            &[
                Start,
                Rx(0xA0, true),
                Rx(0x04, true),
                Rx(0xDE, true),
                Rx(0xAD, true),
                Rx(0xBE, true),
                Stop,
                Start,
                Rx(0xA0, true),
                Rx(0x04, true),
                Start,
                Rx(0xA1, true),
                Tx(0xDE, true),
                Tx(0xAD, true),
                Tx(0xBE, false),
                Stop,
                Start,
                Rx(0xA1, true),
                Tx(0x00, false),
                Stop,
            ]
        );
        assert!(bus.is_idle());
    }

    #[test]
    fn nack_from_an_absent_device_ends_with_stop() {
        let bus = WireBus::new(I2cDevice(Eeprom::default()));
        let mut i2c = BitBangI2c::new(bus, NoDelay, 100_000);
        let mut buf = [0u8; 2];
        assert_eq!(
            i2c.read(0x51, &mut buf),
            Err(Error::NoAcknowledge(NoAcknowledgeSource::Address))
        );
        let (bus, _) = i2c.release();
        assert_eq!(bus.log(), &[Start, Rx(0xA3, false), Stop]);
        assert!(bus.is_idle());
    }

    #[test]
    fn consecutive_operations_of_one_direction_are_one_run() {
        let mut i2c = BitBangI2c::new(
            WireBus::new(Scripted::new(0x60, &[1, 2, 3])),
            NoDelay,
            100_000,
        );
        let (mut a, mut b) = ([0u8; 1], [0u8; 2]);
        i2c.transaction(
            0x60,
            &mut [
                embedded_hal::i2c::Operation::Write(&[0x10]),
                embedded_hal::i2c::Operation::Write(&[0x11]),
                embedded_hal::i2c::Operation::Read(&mut a),
                embedded_hal::i2c::Operation::Read(&mut b),
            ],
        )
        .unwrap();
        assert_eq!((a, b), ([1], [2, 3]));
        let (bus, _) = i2c.release();
        // One START per direction; only the very last read byte is NACKed.
        assert_eq!(
            bus.log(),
            &[
                Start,
                Rx(0xC0, true),
                Rx(0x10, true),
                Rx(0x11, true),
                Start,
                Rx(0xC1, true),
                Tx(1, true),
                Tx(2, true),
                Tx(3, false),
                Stop,
            ]
        );
    }

    #[test]
    fn empty_transaction_leaves_the_bus_alone() {
        let mut i2c = BitBangI2c::new(WireBus::new(Scripted::new(0x60, &[])), NoDelay, 100_000);
        i2c.transaction(0x60, &mut []).unwrap();
        let (bus, _) = i2c.release();
        assert!(bus.log().is_empty());
    }

    /// Counts the microseconds the master waited.
    #[derive(Default)]
    struct CountingDelay {
        us: u32,
    }

    impl DelayNs for CountingDelay {
        fn delay_ns(&mut self, _ns: u32) {}
        fn delay_us(&mut self, us: u32) {
            self.us += us;
        }
    }

    #[test]
    fn clock_stretching_within_the_timeout_is_waited_out() {
        let mut bus = WireBus::new(Scripted::new(0x60, &[]));
        bus.stretch_after_each_byte(20);
        let mut i2c = BitBangI2c::new(bus, CountingDelay::default(), 100_000);
        i2c.set_stretch_timeout_us(50);
        i2c.write(0x60, &[0xAB, 0xCD]).unwrap();
        let (bus, delay) = i2c.release();
        assert_eq!(
            bus.log(),
            &[Start, Rx(0xC0, true), Rx(0xAB, true), Rx(0xCD, true), Stop]
        );
        // Three bytes ACKed, each stretched for 19 waits of 1 µs (the 20th read sees SCL high).
        assert_eq!(delay.us, 3 * 19);
    }

    #[test]
    fn clock_stretched_past_the_timeout_fails_without_hanging() {
        let mut bus = WireBus::new(Scripted::new(0x60, &[]));
        bus.stretch_after_each_byte(100);
        let mut i2c = BitBangI2c::new(bus, NoDelay, 100_000);
        i2c.set_stretch_timeout_us(50);
        assert_eq!(i2c.write(0x60, &[0xAB]), Err(Error::ClockStretchTimeout));
    }

    #[test]
    fn sda_held_low_at_start_is_bus_stuck() {
        let mut bus = WireBus::new(Scripted::new(0x60, &[]));
        bus.hold_sda_low();
        let mut i2c = BitBangI2c::new(bus, NoDelay, 100_000);
        let err = i2c.write(0x60, &[0x01]).unwrap_err();
        assert_eq!(err, Error::BusStuck);
        assert_eq!(embedded_hal::i2c::Error::kind(&err), ErrorKind::Bus);
        let (bus, _) = i2c.release();
        // No START could be made, so the target saw nothing.
        assert!(bus.log().is_empty());
    }
}

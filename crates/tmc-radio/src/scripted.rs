//! A scripted [`PacketRadio`] for testing the layers above the seam without a chip or the register simulator
//! (feature `test-double`).
//!
//! The radio plays a script of receptions, each due at an instant of its [`ScriptedClock`], and records every
//! packet sent. Time is virtual and moves only through the radio (or a test's [`ScriptedClock::advance`]): a
//! transmission takes its time on air, a wait with nothing due takes its whole timeout, a wait for an entry due
//! later takes until it is due. So a layer's deadlines, retries and duty-cycle budget run as they would on air,
//! at once and repeatably.

use core::time::Duration;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::airtime::time_on_air;
use crate::frame::{Frame, FrameError, MAX_FRAME_LEN};
use crate::hal::Clock;
use crate::modem::ModemConfig;
use crate::packet_radio::{PacketRadio, PacketRadioError, Reception, RxPacket};

/// RSSI of packets scripted with [`ScriptedRadio::hear`], dBm.
pub const HEARD_RSSI_DBM: i16 = -70;
/// SNR of packets scripted with [`ScriptedRadio::hear`], quarter dB.
pub const HEARD_SNR_QUARTER_DB: i8 = 28;

/// Virtual time shared by a [`ScriptedRadio`] and the layers above it (clones see the same instant).
#[derive(Clone, Debug, Default)]
pub struct ScriptedClock {
    nanos: Arc<AtomicU64>,
}

impl ScriptedClock {
    /// A clock at instant zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time on by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(nanos(by), Ordering::SeqCst);
    }

    /// Moves time on to `instant`, if it is later than now.
    pub fn advance_to(&self, instant: Duration) {
        self.nanos.fetch_max(nanos(instant), Ordering::SeqCst);
    }
}

impl Clock for ScriptedClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// Virtual time stays far below u64 nanoseconds (584 years); saturate rather than wrap if a test overdoes it.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// One packet the radio sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmission {
    /// When it went on air.
    pub at: Duration,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl Transmission {
    /// The bytes read as a RadioHead frame.
    pub fn frame(&self) -> Result<Frame<'_>, FrameError> {
        Frame::parse(&self.bytes)
    }
}

/// One entry of the script: what a wait returns, and from when.
#[derive(Debug)]
struct Entry {
    due: Duration,
    outcome: Result<Reception, PacketRadioError>,
}

/// Time on air of a packet of a given length.
type Airtime = Box<dyn Fn(usize) -> Duration + Send>;

/// The scripted radio.
pub struct ScriptedRadio {
    clock: ScriptedClock,
    script: VecDeque<Entry>,
    transmit_failures: VecDeque<PacketRadioError>,
    sent: Vec<Transmission>,
    airtime: Airtime,
}

impl ScriptedRadio {
    /// A radio on `clock` with an empty script, timing packets as RadioHead's default modem (SF7, 125 kHz).
    pub fn new(clock: ScriptedClock) -> Self {
        Self {
            clock,
            script: VecDeque::new(),
            transmit_failures: VecDeque::new(),
            sent: Vec::new(),
            airtime: Box::new(|len| time_on_air(&ModemConfig::RADIOHEAD_DEFAULT, len)),
        }
    }

    /// Times packets with `airtime` instead (e.g. a fixed time per packet, or another modem).
    pub fn with_time_on_air(
        mut self,
        airtime: impl Fn(usize) -> Duration + Send + 'static,
    ) -> Self {
        self.airtime = Box::new(airtime);
        self
    }

    /// The clock.
    pub fn clock(&self) -> &ScriptedClock {
        &self.clock
    }

    /// Appends `outcome` to the script: the wait that reaches it returns it at instant `due` (at once if `due` has
    /// passed). Entries are played in the order they were added.
    pub fn script(
        &mut self,
        due: Duration,
        outcome: Result<Reception, PacketRadioError>,
    ) -> &mut Self {
        self.script.push_back(Entry { due, outcome });
        self
    }

    /// Appends a valid packet carrying `payload`, heard by the next wait at once.
    ///
    /// # Panics
    /// When `payload` is longer than a LoRa packet (a mistake in the test).
    pub fn hear(&mut self, payload: &[u8]) -> &mut Self {
        self.hear_at(Duration::ZERO, payload)
    }

    /// Appends a valid packet carrying `payload`, heard at instant `due`.
    ///
    /// # Panics
    /// When `payload` is longer than a LoRa packet (a mistake in the test).
    pub fn hear_at(&mut self, due: Duration, payload: &[u8]) -> &mut Self {
        let Some(packet) = RxPacket::new(payload, HEARD_RSSI_DBM, HEARD_SNR_QUARTER_DB) else {
            panic!(
                "a scripted packet of {} bytes is longer than {MAX_FRAME_LEN}",
                payload.len()
            );
        };
        self.script(due, Ok(Reception::Packet(packet)))
    }

    /// Makes the next transmission fail with `error` (queued: one error per transmission).
    pub fn fail_next_transmit(&mut self, error: PacketRadioError) -> &mut Self {
        self.transmit_failures.push_back(error);
        self
    }

    /// Script entries not played yet.
    pub fn pending(&self) -> usize {
        self.script.len()
    }

    /// Every packet sent so far, oldest first.
    pub fn transmissions(&self) -> &[Transmission] {
        &self.sent
    }

    /// Every packet sent since the last call, oldest first.
    pub fn take_transmissions(&mut self) -> Vec<Transmission> {
        std::mem::take(&mut self.sent)
    }
}

impl PacketRadio for ScriptedRadio {
    /// Checks the length as a chip would, fails if told to, else records the packet and takes its time on air.
    fn transmit(&mut self, payload: &[u8]) -> Result<(), PacketRadioError> {
        if payload.is_empty() || payload.len() > MAX_FRAME_LEN {
            return Err(PacketRadioError::PayloadLength { len: payload.len() });
        }
        if let Some(error) = self.transmit_failures.pop_front() {
            return Err(error);
        }
        self.sent.push(Transmission {
            at: self.clock.now(),
            bytes: payload.to_vec(),
        });
        self.clock.advance(self.time_on_air(payload.len()));
        Ok(())
    }

    /// Returns the next script entry if it is due within `timeout` (time moves on to it), else times out after
    /// the whole `timeout`.
    fn receive(&mut self, timeout: Duration) -> Result<Reception, PacketRadioError> {
        let deadline = self.clock.now() + timeout;
        match self.script.pop_front() {
            Some(entry) if entry.due <= deadline => {
                self.clock.advance_to(entry.due);
                entry.outcome
            }
            not_due => {
                if let Some(entry) = not_due {
                    self.script.push_front(entry);
                }
                self.clock.advance_to(deadline);
                Ok(Reception::Timeout)
            }
        }
    }

    fn time_on_air(&self, len: usize) -> Duration {
        (self.airtime)(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet_radio::RejectReason;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn waits_return_what_is_due_and_time_out_otherwise() {
        let clock = ScriptedClock::new();
        let mut radio = ScriptedRadio::new(clock.clone());
        radio
            .hear(b"now")
            .hear_at(MS(500), b"later")
            .script(MS(600), Ok(Reception::Rejected(RejectReason::CrcError)));
        let Reception::Packet(packet) = radio.receive(MS(100)).unwrap() else {
            panic!("the first entry is due at once");
        };
        assert_eq!(packet.payload(), b"now");
        assert_eq!(packet.rssi_dbm, HEARD_RSSI_DBM);
        assert_eq!(clock.now(), Duration::ZERO);
        // Not due within 100 ms: the wait takes all of it.
        assert_eq!(radio.receive(MS(100)).unwrap(), Reception::Timeout);
        assert_eq!(clock.now(), MS(100));
        assert!(matches!(
            radio.receive(MS(1000)).unwrap(),
            Reception::Packet(_)
        ));
        assert_eq!(clock.now(), MS(500));
        assert_eq!(
            radio.receive(MS(1000)).unwrap(),
            Reception::Rejected(RejectReason::CrcError)
        );
        assert_eq!(radio.pending(), 0);
        assert_eq!(radio.receive(MS(50)).unwrap(), Reception::Timeout);
        assert_eq!(clock.now(), MS(650));
    }

    #[test]
    fn transmissions_are_recorded_and_take_their_time_on_air() {
        let clock = ScriptedClock::new();
        let mut radio = ScriptedRadio::new(clock.clone()).with_time_on_air(|len| MS(len as u64));
        radio.transmit(b"abc").unwrap();
        radio.fail_next_transmit(PacketRadioError::chip(std::io::Error::other("bus")));
        assert_eq!(radio.transmit(b"de").unwrap_err().to_string(), "bus");
        assert!(matches!(
            radio.transmit(&[]),
            Err(PacketRadioError::PayloadLength { len: 0 })
        ));
        radio.transmit(b"fg").unwrap();
        assert_eq!(clock.now(), MS(5));
        assert_eq!(
            radio.take_transmissions(),
            vec![
                Transmission {
                    at: MS(0),
                    bytes: b"abc".to_vec()
                },
                Transmission {
                    at: MS(3),
                    bytes: b"fg".to_vec()
                },
            ]
        );
        assert!(radio.transmissions().is_empty());
    }
}

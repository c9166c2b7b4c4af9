//! Test doubles for the node (feature `sim`, needs `alloc`): a broker simulated byte for byte with this
//! crate's own codec behind [`Transport`], and the simulated ADC behind [`Sensor`].
//!
//! One implementation serves the host tests (`cargo test`) and the firmware's on-target checks on the
//! lx106 in QEMU, so the node is held to the same broker on both. The broker never panics: anything the
//! node sends that a broker would reject is recorded in [`SimBroker::violations`], which a test asserts
//! is empty.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::mqtt::{decode_remaining_length, ConnAck, ConnectRefused, Packet, PacketId};
use crate::node::{Sensor, Transport};

/// MQTT remaining lengths and their encoding (MQTT 3.1.1 § 2.2.3): each boundary of the 1–4 byte
/// forms. The host tests and the on-target checks run the same vectors.
pub const REMAINING_LENGTH_VECTORS: [(u32, &[u8]); 8] = [
    (0, &[0x00]),
    (127, &[0x7F]),
    (128, &[0x80, 0x01]),
    (16_383, &[0xFF, 0x7F]),
    (16_384, &[0x80, 0x80, 0x01]),
    (2_097_151, &[0xFF, 0xFF, 0x7F]),
    (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
    (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
];

/// One PUBLISH as the broker received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The reading's `id`.
    pub id: String,
    /// The reading's `seq`.
    pub seq: u64,
    /// The reading's `adc`.
    pub adc: u16,
    /// The DUP flag (a resend).
    pub dup: bool,
    /// The QoS 1 packet id.
    pub packet_id: u16,
    /// The topic.
    pub topic: String,
    /// The payload as sent.
    pub payload: Vec<u8>,
}

/// A scripted MQTT 3.1.1 broker behind the node's transport. Set the script fields, run the node, read
/// the record fields.
#[derive(Debug, Default)]
pub struct SimBroker {
    connected: bool,
    inbox: Vec<u8>,
    outbox: VecDeque<u8>,
    // Script.
    /// CONNACK return codes for the next CONNECTs (empty: accept).
    pub refuse: VecDeque<u8>,
    /// Transport connects that fail.
    pub fail_connects: usize,
    /// Next PUBLISHes answered with nothing.
    pub drop_pubacks: usize,
    /// Next PUBLISHes after which the connection breaks (received, not acknowledged).
    pub drop_conn_on_publish: usize,
    /// No PINGRESP on PINGREQ.
    pub silent: bool,
    /// CONNECTs left unanswered.
    pub mute_connects: usize,
    /// Answers held back this many `recv` calls (a slow link).
    pub delay_recvs: usize,
    /// At most this many bytes per `recv` (0: all there are), so that the node must reassemble packets.
    pub recv_chunk: usize,
    // Record.
    /// Every CONNECT packet, byte for byte.
    pub connect_packets: Vec<Vec<u8>>,
    /// CONNECTs accepted.
    pub connects: usize,
    /// Transport connects tried (failed ones included).
    pub connect_attempts: usize,
    /// Transport closes.
    pub closes: usize,
    /// PINGREQs.
    pub pings: usize,
    /// Every PUBLISH, resends included.
    pub publishes: Vec<Received>,
    /// The `seq` of every PUBLISH acknowledged, in order.
    pub acked: Vec<u64>,
    /// What a real broker would have rejected, one line each.
    pub violations: Vec<String>,
}

impl SimBroker {
    /// Whether the transport is connected.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The link breaks: sends and receives fail until the node connects again.
    pub fn break_connection(&mut self) {
        self.connected = false;
    }

    fn answer(&mut self, packet: Packet<'_>) {
        let mut buf = [0u8; 8];
        match packet.encode(&mut buf) {
            Ok(n) => self.outbox.extend(&buf[..n]),
            Err(e) => self
                .violations
                .push(format!("broker could not encode {packet:?}: {e:?}")),
        }
    }

    /// Handles every complete packet in the inbox.
    fn handle(&mut self) {
        while self.inbox.len() >= 2 {
            let (len, len_bytes) = match decode_remaining_length(&self.inbox[1..]) {
                Ok(v) => v,
                Err(e) if e.is_need_more() => return,
                Err(e) => {
                    self.violations.push(format!("bad remaining length: {e:?}"));
                    self.inbox.clear();
                    return;
                }
            };
            let total = 1 + len_bytes + len as usize;
            if self.inbox.len() < total {
                return;
            }
            let packet: Vec<u8> = self.inbox.drain(..total).collect();
            let header = packet[0];
            let body = &packet[1 + len_bytes..];
            match header >> 4 {
                1 => {
                    self.connect_packets.push(packet.clone());
                    if self.mute_connects > 0 {
                        self.mute_connects -= 1;
                        continue;
                    }
                    let code = self.refuse.pop_front().unwrap_or(0);
                    if code == 0 {
                        self.connects += 1;
                    }
                    self.answer(Packet::ConnAck(ConnAck {
                        session_present: false,
                        refused: ConnectRefused::from_code(code),
                    }));
                }
                3 => {
                    if !self.publish(header, body) {
                        return;
                    }
                }
                12 => {
                    self.pings += 1;
                    if !self.silent {
                        self.answer(Packet::PingResp);
                    }
                }
                14 => {}
                other => self
                    .violations
                    .push(format!("unexpected packet type {other}")),
            }
        }
    }

    /// Records a PUBLISH and answers it; false when the script breaks the connection.
    fn publish(&mut self, header: u8, body: &[u8]) -> bool {
        if header & 0b0111 != 0b0010 {
            self.violations.push(format!(
                "PUBLISH flags {:04b}: not QoS 1 without retain",
                header & 0x0F
            ));
        }
        let Some(received) = parse_publish(header, body) else {
            self.violations
                .push(format!("PUBLISH not a reading: {body:02x?}"));
            return true;
        };
        let (seq, packet_id) = (received.seq, received.packet_id);
        self.publishes.push(received);
        if self.drop_conn_on_publish > 0 {
            self.drop_conn_on_publish -= 1;
            self.connected = false;
            self.outbox.clear();
            self.inbox.clear();
            return false;
        }
        if self.drop_pubacks > 0 {
            self.drop_pubacks -= 1;
            return true;
        }
        self.acked.push(seq);
        match PacketId::new(packet_id) {
            Some(id) => self.answer(Packet::PubAck(id)),
            None => self
                .violations
                .push(String::from("PUBLISH QoS 1 with packet id 0")),
        }
        true
    }
}

/// Topic, packet id and the reading `{"id":"…","seq":N,"adc":A}` of a QoS 1 PUBLISH body.
fn parse_publish(header: u8, body: &[u8]) -> Option<Received> {
    let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let topic = core::str::from_utf8(body.get(2..2 + topic_len)?).ok()?;
    let id = body.get(2 + topic_len..4 + topic_len)?;
    let payload = body.get(4 + topic_len..)?;
    let text = core::str::from_utf8(payload).ok()?;
    let rest = text.strip_prefix("{\"id\":\"")?;
    let (id_text, rest) = rest.split_once("\",\"seq\":")?;
    let (seq, rest) = rest.split_once(",\"adc\":")?;
    let adc = rest.strip_suffix('}')?;
    Some(Received {
        id: String::from(id_text),
        seq: seq.parse().ok()?,
        adc: adc.parse().ok()?,
        dup: header & 0b1000 != 0,
        packet_id: u16::from_be_bytes([id[0], id[1]]),
        topic: String::from(topic),
        payload: payload.to_vec(),
    })
}

impl Transport for SimBroker {
    type Error = &'static str;

    fn connect(&mut self) -> Result<(), Self::Error> {
        self.connect_attempts += 1;
        if self.fail_connects > 0 {
            self.fail_connects -= 1;
            return Err("host unreachable");
        }
        self.connected = true;
        self.inbox.clear();
        self.outbox.clear();
        Ok(())
    }

    fn send(&mut self, data: &[u8]) -> Result<(), Self::Error> {
        if !self.connected {
            return Err("connection reset");
        }
        self.inbox.extend_from_slice(data);
        self.handle();
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if !self.connected {
            return Err("connection reset");
        }
        if self.delay_recvs > 0 {
            self.delay_recvs -= 1;
            return Ok(0);
        }
        let mut n = buf.len().min(self.outbox.len());
        if self.recv_chunk > 0 {
            n = n.min(self.recv_chunk);
        }
        for (slot, byte) in buf.iter_mut().zip(self.outbox.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    fn close(&mut self) {
        self.closes += 1;
        self.connected = false;
    }
}

/// The simulated ADC: reading `n` (from 1) is [`crate::adc`]`(id, n)`.
#[derive(Debug, Clone)]
pub struct SimSensor<'a> {
    id: &'a str,
    /// Readings taken.
    pub reads: u64,
}

impl<'a> SimSensor<'a> {
    /// The waveform of sensor `id`.
    pub fn new(id: &'a str) -> Self {
        SimSensor { id, reads: 0 }
    }
}

impl Sensor for SimSensor<'_> {
    type Error = &'static str;

    fn read(&mut self) -> Result<u16, Self::Error> {
        self.reads += 1;
        Ok(crate::adc(self.id, self.reads))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{Connect, Publish, QoS};

    #[test]
    fn a_publish_that_is_not_a_reading_is_a_violation_not_a_panic() {
        let mut broker = SimBroker::default();
        broker.connect().unwrap();
        let mut buf = [0u8; 64];
        let n = Connect::new("esp8266", 60, true).encode(&mut buf).unwrap();
        broker.send(&buf[..n]).unwrap();
        let publish = Publish {
            topic: "/esp8266",
            payload: b"not json",
            qos: QoS::AtLeastOnce {
                packet_id: PacketId::new(1).unwrap(),
                dup: false,
            },
            retain: false,
        };
        let n = publish.encode(&mut buf).unwrap();
        broker.send(&buf[..n]).unwrap();
        // A packet type a broker never receives from a client (CONNACK).
        broker.send(&[0x20, 0x02, 0x00, 0x00]).unwrap();
        assert_eq!(broker.connects, 1);
        assert!(broker.publishes.is_empty());
        assert_eq!(broker.violations.len(), 2, "{:?}", broker.violations);
        assert!(broker.violations[0].starts_with("PUBLISH not a reading"));
        assert_eq!(broker.violations[1], "unexpected packet type 2");
    }
}

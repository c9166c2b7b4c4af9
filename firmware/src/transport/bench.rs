//! Bench transport: a loopback MQTT broker on the console.
//!
//! Every `send` is printed as `tx: <hex bytes>` and parsed; the replies a
//! broker would send are queued and handed out by `recv` (printed as
//! `rx: ...`):
//!
//! | node sends | reply |
//! |------------|-------|
//! | CONNECT (0x10) | CONNACK accepted `20 02 00 00` |
//! | PUBLISH QoS 1 (0x32, 0x3A with DUP) | PUBACK `40 02 <id>` |
//! | PUBLISH QoS 0 | nothing |
//! | PINGREQ (0xC0) | PINGRESP `D0 00` |
//! | DISCONNECT (0xE0) | nothing |
//!
//! Anything else (or a malformed packet) is an error, as a real broker would
//! drop the connection.
use core::fmt::{self, Write};

use tmc_sensor_core::mqtt::decode_remaining_length;
use tmc_sensor_core::node::Transport;

/// Loopback broker writing its trace to `W` (the UART0 console on the chip).
pub struct BenchTransport<W: Write> {
    out: W,
    connected: bool,
    reply: [u8; 64],
    reply_len: usize,
}

/// Why the bench broker dropped the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchError {
    NotConnected,
    Malformed,
    Unexpected(u8),
    ReplyOverflow,
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::NotConnected => f.write_str("bench: not connected"),
            BenchError::Malformed => f.write_str("bench: malformed packet"),
            BenchError::Unexpected(b) => write!(f, "bench: unexpected packet type 0x{b:02X}"),
            BenchError::ReplyOverflow => f.write_str("bench: reply queue full"),
        }
    }
}

fn hex_line<W: Write>(out: &mut W, tag: &str, data: &[u8]) {
    let _ = out.write_str(tag);
    for (i, b) in data.iter().enumerate() {
        let _ = write!(out, "{}{b:02x}", if i == 0 { "" } else { " " });
    }
    let _ = out.write_str("\n");
}

impl<W: Write> BenchTransport<W> {
    pub fn new(out: W) -> Self {
        BenchTransport {
            out,
            connected: false,
            reply: [0; 64],
            reply_len: 0,
        }
    }

    fn queue(&mut self, bytes: &[u8]) -> Result<(), BenchError> {
        let end = self.reply_len + bytes.len();
        if end > self.reply.len() {
            return Err(BenchError::ReplyOverflow);
        }
        self.reply[self.reply_len..end].copy_from_slice(bytes);
        self.reply_len = end;
        Ok(())
    }

    /// Answers one packet; returns its length.
    fn answer(&mut self, data: &[u8]) -> Result<usize, BenchError> {
        let first = *data.first().ok_or(BenchError::Malformed)?;
        let (remaining, n) =
            decode_remaining_length(&data[1..]).map_err(|_| BenchError::Malformed)?;
        let body_start = 1 + n;
        let total = body_start + remaining as usize;
        if total > data.len() {
            return Err(BenchError::Malformed);
        }
        let body = &data[body_start..total];
        match first >> 4 {
            1 => self.queue(&[0x20, 0x02, 0x00, 0x00])?,
            3 => {
                let qos = (first >> 1) & 3;
                if qos == 1 {
                    let topic_len = match body {
                        [h, l, ..] => u16::from_be_bytes([*h, *l]) as usize,
                        _ => return Err(BenchError::Malformed),
                    };
                    let id = body
                        .get(2 + topic_len..4 + topic_len)
                        .ok_or(BenchError::Malformed)?;
                    self.queue(&[0x40, 0x02, id[0], id[1]])?;
                } else if qos != 0 {
                    return Err(BenchError::Unexpected(first));
                }
            }
            12 => self.queue(&[0xD0, 0x00])?,
            14 => {}
            _ => return Err(BenchError::Unexpected(first)),
        }
        Ok(total)
    }
}

impl<W: Write> Transport for BenchTransport<W> {
    type Error = BenchError;

    fn connect(&mut self) -> Result<(), BenchError> {
        let _ = writeln!(self.out, "bench: connected (loopback broker, no Wi-Fi)");
        self.connected = true;
        self.reply_len = 0;
        Ok(())
    }

    fn send(&mut self, data: &[u8]) -> Result<(), BenchError> {
        if !self.connected {
            return Err(BenchError::NotConnected);
        }
        hex_line(&mut self.out, "tx: ", data);
        let mut rest = data;
        while !rest.is_empty() {
            let n = self.answer(rest)?;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, BenchError> {
        if !self.connected {
            return Err(BenchError::NotConnected);
        }
        let n = self.reply_len.min(buf.len());
        if n > 0 {
            buf[..n].copy_from_slice(&self.reply[..n]);
            hex_line(&mut self.out, "rx: ", &buf[..n]);
            self.reply.copy_within(n..self.reply_len, 0);
            self.reply_len -= n;
        }
        Ok(n)
    }

    fn close(&mut self) {
        let _ = writeln!(self.out, "bench: closed");
        self.connected = false;
        self.reply_len = 0;
    }
}

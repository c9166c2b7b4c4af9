//! An MQTT 3.1.1 client codec (OASIS MQTT Version 3.1.1, 2014): the packets a publishing sensor sends,
//! the packets a broker answers with, and the client's timers ([`client`]).
//!
//! Out (encoders, into the caller's buffer): CONNECT, PUBLISH at QoS 0 or 1, PUBACK, PINGREQ,
//! DISCONNECT. In ([`decode`], borrowing from the caller's buffer): CONNACK, PUBACK, PINGRESP, SUBACK,
//! PUBLISH at QoS 0 or 1. [`Packet::encode`] writes the decoded kinds too (a test broker needs them,
//! and the fuzz target checks that whatever decodes re-encodes to the same bytes).
//!
//! The decoder never panics: any byte string either decodes, asks for more ([`DecodeError::NeedMore`]:
//! not an error, read more bytes and call again), or is refused with the reason. It refuses as soon as
//! the first bytes show a packet is wrong (an unexpected type, reserved flags, a length a fixed-size
//! packet cannot have), so garbage never makes the client wait for megabytes that will not come.
//!
//! QoS 2 is not supported (the sensors publish at QoS 1 and subscribe to nothing): a QoS 2 PUBLISH
//! from the broker is refused with [`DecodeError::UnsupportedQos2`].

pub mod client;

use core::fmt;
use core::num::NonZeroU16;

/// Largest Remaining Length (four 7-bit groups): 256 MiB − 1.
pub const MAX_REMAINING_LENGTH: u32 = 268_435_455;
/// Protocol level of MQTT 3.1.1 in CONNECT.
pub const PROTOCOL_LEVEL: u8 = 4;
/// PINGREQ: the whole packet.
pub const PINGREQ: [u8; 2] = [0xC0, 0x00];
/// DISCONNECT: the whole packet.
pub const DISCONNECT: [u8; 2] = [0xE0, 0x00];

/// A packet identifier: never 0 (MQTT-2.3.1-1).
pub type PacketId = NonZeroU16;

/// Control packet types (the high nibble of the first byte).
mod kind {
    pub const CONNECT: u8 = 1;
    pub const CONNACK: u8 = 2;
    pub const PUBLISH: u8 = 3;
    pub const PUBACK: u8 = 4;
    pub const SUBACK: u8 = 9;
    pub const PINGREQ: u8 = 12;
    pub const PINGRESP: u8 = 13;
    pub const DISCONNECT: u8 = 14;
}

/// Delivery of a PUBLISH. The packet id and DUP exist only at QoS 1, so they live in that variant
/// (a QoS 0 packet with DUP set is malformed: MQTT-3.3.1-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QoS {
    /// QoS 0: fire and forget.
    AtMostOnce,
    /// QoS 1: the receiver answers PUBACK with `packet_id`; `dup` marks a re-delivery.
    AtLeastOnce { packet_id: PacketId, dup: bool },
}

/// A CONNECT packet (no will message: the sensors do not use one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect<'a> {
    pub client_id: &'a str,
    /// Seconds; 0 turns keep-alive off.
    pub keep_alive_s: u16,
    /// Start a new session (and drop it at disconnect) instead of resuming the stored one.
    pub clean_session: bool,
    pub username: Option<&'a str>,
    /// Only with a username (MQTT-3.1.2-22).
    pub password: Option<&'a [u8]>,
}

impl<'a> Connect<'a> {
    /// A CONNECT without credentials (the sensors authenticate with their TLS client certificate).
    pub fn new(client_id: &'a str, keep_alive_s: u16, clean_session: bool) -> Self {
        Connect {
            client_id,
            keep_alive_s,
            clean_session,
            username: None,
            password: None,
        }
    }

    /// Bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        total_len(self.remaining_len()?)
    }

    fn remaining_len(&self) -> Result<u32, EncodeError> {
        if self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::PasswordWithoutUsername);
        }
        // Protocol name (2 + 4), level, flags, keep-alive.
        let mut len = 10 + string_len(self.client_id.as_bytes())?;
        if let Some(username) = self.username {
            len += string_len(username.as_bytes())?;
        }
        if let Some(password) = self.password {
            len += string_len(password)?;
        }
        remaining(len)
    }

    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len()?;
        let mut w = Writer::start(out, kind::CONNECT << 4, remaining)?;
        w.string(b"MQTT");
        w.byte(PROTOCOL_LEVEL);
        let flags = (u8::from(self.username.is_some()) << 7)
            | (u8::from(self.password.is_some()) << 6)
            | (u8::from(self.clean_session) << 1);
        w.byte(flags);
        w.u16(self.keep_alive_s);
        w.string(self.client_id.as_bytes());
        if let Some(username) = self.username {
            w.string(username.as_bytes());
        }
        if let Some(password) = self.password {
            w.string(password);
        }
        Ok(w.finish())
    }
}

/// A PUBLISH packet, to send or as received (borrowing the receive buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// A topic name: not empty, no wildcards (`+`, `#`), no U+0000.
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: QoS,
    pub retain: bool,
}

impl Publish<'_> {
    /// Bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        total_len(self.remaining_len()?)
    }

    fn remaining_len(&self) -> Result<u32, EncodeError> {
        check_topic(self.topic).map_err(|_| EncodeError::InvalidTopic)?;
        let id = match self.qos {
            QoS::AtMostOnce => 0,
            QoS::AtLeastOnce { .. } => 2,
        };
        remaining(
            string_len(self.topic.as_bytes())?
                .saturating_add(id)
                .saturating_add(self.payload.len()),
        )
    }

    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len()?;
        let flags = match self.qos {
            QoS::AtMostOnce => 0,
            QoS::AtLeastOnce { dup, .. } => (u8::from(dup) << 3) | (1 << 1),
        } | u8::from(self.retain);
        let mut w = Writer::start(out, (kind::PUBLISH << 4) | flags, remaining)?;
        w.string(self.topic.as_bytes());
        if let QoS::AtLeastOnce { packet_id, .. } = self.qos {
            w.u16(packet_id.get());
        }
        w.bytes(self.payload);
        Ok(w.finish())
    }
}

/// Why the broker refused a connection (CONNACK return codes 1–5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectRefused {
    /// 1: the broker does not speak MQTT 3.1.1.
    UnacceptableProtocolVersion,
    /// 2: the client id is not allowed (empty with clean session off, or too long, or taken by policy).
    IdentifierRejected,
    /// 3: the network connection works but the MQTT service does not.
    ServerUnavailable,
    /// 4: the user name or password is malformed.
    BadUserNameOrPassword,
    /// 5: the client is not authorized to connect (for TMC: its certificate is not accepted).
    NotAuthorized,
}

impl ConnectRefused {
    /// The CONNACK return code.
    pub fn code(self) -> u8 {
        match self {
            ConnectRefused::UnacceptableProtocolVersion => 1,
            ConnectRefused::IdentifierRejected => 2,
            ConnectRefused::ServerUnavailable => 3,
            ConnectRefused::BadUserNameOrPassword => 4,
            ConnectRefused::NotAuthorized => 5,
        }
    }

    /// The refusal with CONNACK return code `code`; `None` for 0 (accepted) and the reserved 6–255.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => ConnectRefused::UnacceptableProtocolVersion,
            2 => ConnectRefused::IdentifierRejected,
            3 => ConnectRefused::ServerUnavailable,
            4 => ConnectRefused::BadUserNameOrPassword,
            5 => ConnectRefused::NotAuthorized,
            _ => return None,
        })
    }
}

impl fmt::Display for ConnectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            ConnectRefused::UnacceptableProtocolVersion => "unacceptable protocol version",
            ConnectRefused::IdentifierRejected => "client identifier rejected",
            ConnectRefused::ServerUnavailable => "server unavailable",
            ConnectRefused::BadUserNameOrPassword => "bad user name or password",
            ConnectRefused::NotAuthorized => "not authorized",
        };
        write!(f, "connection refused: {what} (CONNACK {})", self.code())
    }
}

impl core::error::Error for ConnectRefused {}

/// A CONNACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck {
    /// The broker resumed a stored session (always false with a refusal: MQTT-3.2.2-4).
    pub session_present: bool,
    /// `None`: accepted (return code 0).
    pub refused: Option<ConnectRefused>,
}

impl ConnAck {
    /// `Ok(session_present)` when the connection was accepted, the refusal otherwise.
    pub fn result(&self) -> Result<bool, ConnectRefused> {
        match self.refused {
            None => Ok(self.session_present),
            Some(refused) => Err(refused),
        }
    }
}

/// A SUBACK: one return code per requested filter, `0x00`–`0x02` (granted QoS) or `0x80` (failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubAck<'a> {
    pub packet_id: PacketId,
    /// Not empty.
    pub return_codes: &'a [u8],
}

/// A packet the broker sends a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    ConnAck(ConnAck),
    PubAck(PacketId),
    PingResp,
    SubAck(SubAck<'a>),
    Publish(Publish<'a>),
}

impl Packet<'_> {
    /// Writes the packet as the broker would send it (for test brokers and the fuzz round trip).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Packet::ConnAck(ack) => {
                if ack.session_present && ack.refused.is_some() {
                    return Err(EncodeError::SessionPresentWithRefusal);
                }
                let code = ack.refused.map_or(0, ConnectRefused::code);
                let mut w = Writer::start(out, kind::CONNACK << 4, 2)?;
                w.byte(u8::from(ack.session_present));
                w.byte(code);
                Ok(w.finish())
            }
            Packet::PubAck(packet_id) => encode_puback(*packet_id, out),
            Packet::PingResp => Writer::start(out, kind::PINGRESP << 4, 0).map(Writer::finish),
            Packet::SubAck(ack) => {
                if ack.return_codes.is_empty()
                    || !ack.return_codes.iter().all(|&c| valid_suback_code(c))
                {
                    return Err(EncodeError::InvalidSubAck);
                }
                let len = remaining(ack.return_codes.len().saturating_add(2))?;
                let mut w = Writer::start(out, kind::SUBACK << 4, len)?;
                w.u16(ack.packet_id.get());
                w.bytes(ack.return_codes);
                Ok(w.finish())
            }
            Packet::Publish(publish) => publish.encode(out),
        }
    }
}

/// PUBACK for `packet_id`: `40 02 <id>`.
pub fn encode_puback(packet_id: PacketId, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut w = Writer::start(out, kind::PUBACK << 4, 2)?;
    w.u16(packet_id.get());
    Ok(w.finish())
}

/// PINGREQ: `C0 00`.
pub fn encode_pingreq(out: &mut [u8]) -> Result<usize, EncodeError> {
    Writer::start(out, kind::PINGREQ << 4, 0).map(Writer::finish)
}

/// DISCONNECT: `E0 00`.
pub fn encode_disconnect(out: &mut [u8]) -> Result<usize, EncodeError> {
    Writer::start(out, kind::DISCONNECT << 4, 0).map(Writer::finish)
}

/// A packet that cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The caller's buffer is too small; nothing was written.
    BufferTooSmall { needed: usize, available: usize },
    /// A string or binary field longer than 65 535 bytes.
    StringTooLong,
    /// The packet is longer than [`MAX_REMAINING_LENGTH`] allows.
    TooLarge,
    /// A PUBLISH topic that is empty or has `+`, `#` or U+0000.
    InvalidTopic,
    /// CONNECT with a password but no user name (MQTT-3.1.2-22).
    PasswordWithoutUsername,
    /// CONNACK with session present and a refusal (MQTT-3.2.2-4).
    SessionPresentWithRefusal,
    /// SUBACK without return codes or with one outside 0, 1, 2, 0x80.
    InvalidSubAck,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed, available } => write!(
                f,
                "MQTT packet needs {needed} bytes, the buffer has {available}"
            ),
            EncodeError::StringTooLong => f.write_str("MQTT string longer than 65535 bytes"),
            EncodeError::TooLarge => f.write_str("MQTT packet longer than 268435455 bytes"),
            EncodeError::InvalidTopic => {
                f.write_str("MQTT topic name empty or with a wildcard or U+0000")
            }
            EncodeError::PasswordWithoutUsername => {
                f.write_str("MQTT CONNECT with a password needs a user name")
            }
            EncodeError::SessionPresentWithRefusal => {
                f.write_str("MQTT CONNACK refusing a connection cannot have a session present")
            }
            EncodeError::InvalidSubAck => f.write_str("MQTT SUBACK return codes invalid"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Bytes that do not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not an error: the packet is not complete yet; read more bytes and decode again.
    NeedMore,
    /// A Remaining Length with a continuation bit in its fourth byte.
    MalformedRemainingLength,
    /// A packet type a broker does not send a client (or QoS 2 flow packets, or the reserved 0 / 15).
    UnexpectedPacketType(u8),
    /// Flag bits a packet type reserves are not as the specification fixes them.
    InvalidFlags { packet_type: u8, flags: u8 },
    /// A Remaining Length this packet type cannot have.
    InvalidLength { packet_type: u8, len: u32 },
    /// CONNACK acknowledge flags with reserved bits set, or session present with a refusal.
    InvalidConnAckFlags(u8),
    /// CONNACK return code 6–255 (reserved).
    UnknownConnectReturnCode(u8),
    /// Packet identifier 0.
    ZeroPacketId,
    /// PUBLISH with both QoS bits set.
    InvalidQos,
    /// PUBLISH at QoS 2, which this client does not support.
    UnsupportedQos2,
    /// PUBLISH at QoS 0 with DUP set (MQTT-3.3.1-2).
    DupWithoutQos,
    /// A string field longer than the packet.
    StringOverrun,
    /// A string that is not UTF-8.
    InvalidUtf8,
    /// A PUBLISH topic that is empty or has `+`, `#` or U+0000.
    InvalidTopic,
    /// A SUBACK return code outside 0, 1, 2, 0x80.
    InvalidSubAckCode(u8),
}

impl DecodeError {
    /// True for [`DecodeError::NeedMore`]: wait for more bytes, the connection is fine.
    pub fn is_need_more(&self) -> bool {
        matches!(self, DecodeError::NeedMore)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NeedMore => f.write_str("incomplete MQTT packet"),
            DecodeError::MalformedRemainingLength => {
                f.write_str("malformed MQTT remaining length (more than 4 bytes)")
            }
            DecodeError::UnexpectedPacketType(t) => {
                write!(f, "unexpected MQTT packet type {t} from the broker")
            }
            DecodeError::InvalidFlags { packet_type, flags } => {
                write!(
                    f,
                    "MQTT packet type {packet_type} with invalid flags {flags:#06b}"
                )
            }
            DecodeError::InvalidLength { packet_type, len } => {
                write!(
                    f,
                    "MQTT packet type {packet_type} with invalid remaining length {len}"
                )
            }
            DecodeError::InvalidConnAckFlags(flags) => {
                write!(f, "invalid MQTT CONNACK flags {flags:#04x}")
            }
            DecodeError::UnknownConnectReturnCode(code) => {
                write!(f, "unknown MQTT CONNACK return code {code}")
            }
            DecodeError::ZeroPacketId => f.write_str("MQTT packet identifier 0"),
            DecodeError::InvalidQos => f.write_str("MQTT PUBLISH with QoS 3"),
            DecodeError::UnsupportedQos2 => f.write_str("MQTT PUBLISH with QoS 2 (unsupported)"),
            DecodeError::DupWithoutQos => f.write_str("MQTT PUBLISH at QoS 0 with DUP set"),
            DecodeError::StringOverrun => f.write_str("MQTT string runs past the packet"),
            DecodeError::InvalidUtf8 => f.write_str("MQTT string is not UTF-8"),
            DecodeError::InvalidTopic => {
                f.write_str("MQTT topic name empty or with a wildcard or U+0000")
            }
            DecodeError::InvalidSubAckCode(code) => {
                write!(f, "invalid MQTT SUBACK return code {code:#04x}")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// Bytes the Remaining Length `len` takes (1–4; `len` above the maximum counts as 4).
pub fn remaining_length_len(len: u32) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes the Remaining Length `len` (7 bits per byte, least significant group first, high bit =
/// more follows) and returns its size.
pub fn encode_remaining_length(len: u32, out: &mut [u8]) -> Result<usize, EncodeError> {
    if len > MAX_REMAINING_LENGTH {
        return Err(EncodeError::TooLarge);
    }
    let needed = remaining_length_len(len);
    let Some(dst) = out.get_mut(..needed) else {
        return Err(EncodeError::BufferTooSmall {
            needed,
            available: out.len(),
        });
    };
    let mut rest = len;
    for byte in dst.iter_mut() {
        *byte = (rest & 0x7f) as u8;
        rest >>= 7;
        if rest > 0 {
            *byte |= 0x80;
        }
    }
    Ok(needed)
}

/// Reads a Remaining Length from the start of `input`: the value and the bytes it took.
/// [`DecodeError::NeedMore`] when `input` ends inside it; [`DecodeError::MalformedRemainingLength`]
/// when the fourth byte still says "more follows" (known without the fifth). Non-minimal encodings
/// (`80 00` for 0) are accepted, as MQTT 3.1.1 does not forbid them.
pub fn decode_remaining_length(input: &[u8]) -> Result<(u32, usize), DecodeError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&byte) = input.get(i) else {
            return Err(DecodeError::NeedMore);
        };
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(DecodeError::MalformedRemainingLength)
}

/// The whole length of the packet at the start of `input` (fixed header + remaining length), as soon
/// as the fixed header is complete and valid: to check the receive buffer can ever hold it.
pub fn packet_len(input: &[u8]) -> Result<usize, DecodeError> {
    let (_, _, header_len, remaining) = fixed_header(input)?;
    Ok(header_len + remaining as usize)
}

/// Validates the fixed header: (type, flags, header length, remaining length).
fn fixed_header(input: &[u8]) -> Result<(u8, u8, usize, u32), DecodeError> {
    let Some((&first, rest)) = input.split_first() else {
        return Err(DecodeError::NeedMore);
    };
    let (packet_type, flags) = (first >> 4, first & 0x0f);
    let fixed_flags = match packet_type {
        kind::CONNACK | kind::PUBACK | kind::SUBACK | kind::PINGRESP => Some(0),
        kind::PUBLISH => None,
        _ => return Err(DecodeError::UnexpectedPacketType(packet_type)),
    };
    if fixed_flags.is_some_and(|f| f != flags) {
        return Err(DecodeError::InvalidFlags { packet_type, flags });
    }
    if packet_type == kind::PUBLISH {
        match (flags >> 1) & 3 {
            3 => return Err(DecodeError::InvalidQos),
            2 => return Err(DecodeError::UnsupportedQos2),
            0 if flags & 0x08 != 0 => return Err(DecodeError::DupWithoutQos),
            _ => {}
        }
    }
    let (len, len_bytes) = decode_remaining_length(rest)?;
    let len_ok = match packet_type {
        kind::CONNACK | kind::PUBACK => len == 2,
        kind::PINGRESP => len == 0,
        kind::SUBACK => len >= 3,
        // Topic length (2) and at least one character; QoS 1 adds the packet id.
        _ => len >= 3 + if flags & 0x06 != 0 { 2 } else { 0 },
    };
    if !len_ok {
        return Err(DecodeError::InvalidLength { packet_type, len });
    }
    Ok((packet_type, flags, 1 + len_bytes, len))
}

/// Decodes the packet at the start of `input`: the packet (borrowing `input`) and the bytes it took.
pub fn decode(input: &[u8]) -> Result<(Packet<'_>, usize), DecodeError> {
    let (packet_type, flags, header_len, remaining) = fixed_header(input)?;
    // u32 → usize: fine on 32- and 64-bit targets; the sum cannot overflow (≤ 5 + 2^28).
    let total = header_len + remaining as usize;
    let Some(body) = input.get(header_len..total) else {
        return Err(DecodeError::NeedMore);
    };
    let mut r = Reader { body };
    let packet = match packet_type {
        kind::CONNACK => {
            let ack_flags = r.byte()?;
            let code = r.byte()?;
            let refused = match code {
                0 => None,
                _ => Some(
                    ConnectRefused::from_code(code)
                        .ok_or(DecodeError::UnknownConnectReturnCode(code))?,
                ),
            };
            if ack_flags & 0xfe != 0 || (ack_flags != 0 && refused.is_some()) {
                return Err(DecodeError::InvalidConnAckFlags(ack_flags));
            }
            Packet::ConnAck(ConnAck {
                session_present: ack_flags == 1,
                refused,
            })
        }
        kind::PUBACK => Packet::PubAck(r.packet_id()?),
        kind::PINGRESP => Packet::PingResp,
        kind::SUBACK => {
            let packet_id = r.packet_id()?;
            let return_codes = r.body;
            if let Some(&bad) = return_codes.iter().find(|&&c| !valid_suback_code(c)) {
                return Err(DecodeError::InvalidSubAckCode(bad));
            }
            Packet::SubAck(SubAck {
                packet_id,
                return_codes,
            })
        }
        _ => {
            let topic = r.string()?;
            check_topic(topic)?;
            let qos = if flags & 0x02 != 0 {
                QoS::AtLeastOnce {
                    packet_id: r.packet_id()?,
                    dup: flags & 0x08 != 0,
                }
            } else {
                QoS::AtMostOnce
            };
            Packet::Publish(Publish {
                topic,
                payload: r.body,
                qos,
                retain: flags & 0x01 != 0,
            })
        }
    };
    Ok((packet, total))
}

fn valid_suback_code(code: u8) -> bool {
    matches!(code, 0x00..=0x02 | 0x80)
}

/// A topic name a PUBLISH may carry (MQTT-4.7.3-1, MQTT-3.3.2-2, MQTT-1.5.3-2).
fn check_topic(topic: &str) -> Result<(), DecodeError> {
    if !crate::config::is_publish_topic(topic) {
        return Err(DecodeError::InvalidTopic);
    }
    Ok(())
}

/// Length of a length-prefixed string or binary field.
fn string_len(s: &[u8]) -> Result<usize, EncodeError> {
    if s.len() > usize::from(u16::MAX) {
        return Err(EncodeError::StringTooLong);
    }
    Ok(2 + s.len())
}

fn remaining(len: usize) -> Result<u32, EncodeError> {
    u32::try_from(len)
        .ok()
        .filter(|&len| len <= MAX_REMAINING_LENGTH)
        .ok_or(EncodeError::TooLarge)
}

fn total_len(remaining: u32) -> Result<usize, EncodeError> {
    Ok(1 + remaining_length_len(remaining) + remaining as usize)
}

/// Reads a packet body; every read is checked (never an index out of bounds).
struct Reader<'a> {
    body: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.body.len() {
            return None;
        }
        let (head, tail) = self.body.split_at(n);
        self.body = tail;
        Some(head)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        // The lengths were checked against the packet type, so a short body is a length error.
        self.take(1)
            .and_then(|b| b.first().copied())
            .ok_or(DecodeError::StringOverrun)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        match self.take(2) {
            Some(&[hi, lo]) => Ok(u16::from_be_bytes([hi, lo])),
            _ => Err(DecodeError::StringOverrun),
        }
    }

    fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        PacketId::new(self.u16()?).ok_or(DecodeError::ZeroPacketId)
    }

    fn string(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.u16()?;
        let bytes = self
            .take(usize::from(len))
            .ok_or(DecodeError::StringOverrun)?;
        core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)
    }
}

/// Writes a packet whose total size was checked against the buffer in [`Writer::start`]; writes past
/// the end are dropped rather than panicking (they cannot happen: the sizes are computed from the
/// same fields).
struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// Checks that the buffer holds the whole packet, then writes the fixed header.
    fn start(out: &'a mut [u8], first: u8, remaining: u32) -> Result<Self, EncodeError> {
        let needed = total_len(remaining)?;
        if out.len() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        let mut w = Writer { out, len: 0 };
        w.byte(first);
        let mut varint = [0u8; 4];
        let n = encode_remaining_length(remaining, &mut varint)?;
        w.bytes(varint.get(..n).unwrap_or_default());
        Ok(w)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.len += bytes.len();
    }

    fn byte(&mut self, b: u8) {
        self.bytes(&[b]);
    }

    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    /// A length-prefixed field (the length was checked by `string_len`).
    fn string(&mut self, s: &[u8]) {
        self.u16(s.len() as u16);
        self.bytes(s);
    }

    fn finish(self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests;

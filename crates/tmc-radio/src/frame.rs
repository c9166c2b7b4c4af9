//! RadioHead frame format (RHDatagram over RH_RF95): a 4-byte header TO, FROM, ID, FLAGS, then up to 251 data
//! bytes, all inside one LoRa explicit-header packet of at most 255 bytes.

use thiserror::Error;

/// Length of the RadioHead header.
pub const HEADER_LEN: usize = 4;
/// Largest LoRa payload the SX1276 FIFO takes.
pub const MAX_FRAME_LEN: usize = 255;
/// Largest data part of one frame (RH_RF95_MAX_MESSAGE_LEN).
pub const MAX_DATA_LEN: usize = MAX_FRAME_LEN - HEADER_LEN;
/// Destination address that every node accepts.
pub const BROADCAST: u8 = 0xFF;

/// FLAGS bits. The top four belong to RadioHead, the low four to the application.
pub mod flags {
    /// This frame acknowledges the frame with the same ID.
    pub const ACK: u8 = 0x80;
    /// This frame is a retransmission (RadioHead ≥ 1.8x sets it; older senders never do).
    pub const RETRY: u8 = 0x40;
    /// Bits left to the application.
    pub const APPLICATION: u8 = 0x0F;
}

/// The RadioHead header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Destination node, [`BROADCAST`] for all.
    pub to: u8,
    /// Sending node.
    pub from: u8,
    /// Sequence number; an ACK carries the ID of the frame it acknowledges.
    pub id: u8,
    /// [`flags`].
    pub flags: u8,
}

impl Header {
    /// Whether the ACK flag is set.
    pub fn is_ack(&self) -> bool {
        self.flags & flags::ACK != 0
    }

    /// Whether the RETRY flag is set.
    pub fn is_retry(&self) -> bool {
        self.flags & flags::RETRY != 0
    }

    /// The header bytes in air order.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        [self.to, self.from, self.id, self.flags]
    }
}

/// A parsed frame borrowing its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The header.
    pub header: Header,
    /// The data after the header (may be empty).
    pub data: &'a [u8],
}

/// Bytes that are not a RadioHead frame, or data that does not fit in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Fewer bytes than a header.
    #[error("a {len}-byte packet is too short for the 4-byte RadioHead header")]
    TooShort {
        /// Packet length.
        len: usize,
    },
    /// More bytes than the radio can carry.
    #[error("a {len}-byte packet is longer than the 255 bytes an SX1276 frame holds")]
    TooLong {
        /// Packet length.
        len: usize,
    },
    /// Too much data for one frame.
    #[error("{len} data bytes do not fit in one frame (at most 251)")]
    DataTooLong {
        /// Data length.
        len: usize,
    },
}

impl<'a> Frame<'a> {
    /// Parses a received LoRa payload.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FrameError> {
        if bytes.len() > MAX_FRAME_LEN {
            return Err(FrameError::TooLong { len: bytes.len() });
        }
        match bytes {
            [to, from, id, flags, data @ ..] => Ok(Frame {
                header: Header {
                    to: *to,
                    from: *from,
                    id: *id,
                    flags: *flags,
                },
                data,
            }),
            _ => Err(FrameError::TooShort { len: bytes.len() }),
        }
    }

    /// A frame to send; fails if `data` exceeds [`MAX_DATA_LEN`].
    pub fn new(header: Header, data: &'a [u8]) -> Result<Self, FrameError> {
        if data.len() > MAX_DATA_LEN {
            return Err(FrameError::DataTooLong { len: data.len() });
        }
        Ok(Frame { header, data })
    }

    /// Length on air.
    pub fn len(&self) -> usize {
        HEADER_LEN + self.data.len()
    }

    /// Never true: a frame always has its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the frame into `out` and returns the written prefix.
    pub fn encode<'b>(&self, out: &'b mut [u8; MAX_FRAME_LEN]) -> &'b [u8] {
        let len = self.len();
        out[..HEADER_LEN].copy_from_slice(&self.header.to_bytes());
        out[HEADER_LEN..len].copy_from_slice(self.data);
        &out[..len]
    }

    /// The frame bytes as a vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        v.extend_from_slice(&self.header.to_bytes());
        v.extend_from_slice(self.data);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radiohead_hello_is_byte_exact() {
        let header = Header {
            to: 1,
            from: 10,
            id: 0,
            flags: 0,
        };
        let frame = Frame::new(header, b"Hi Raspi!\0").unwrap();
        let mut buf = [0; MAX_FRAME_LEN];
        let bytes = frame.encode(&mut buf);
        assert_eq!(bytes, b"\x01\x0A\x00\x00Hi Raspi!\0");
        assert_eq!(Frame::parse(bytes), Ok(frame));
    }

    #[test]
    fn short_and_long_packets_are_refused() {
        assert_eq!(
            Frame::parse(&[1, 2, 3]),
            Err(FrameError::TooShort { len: 3 })
        );
        assert_eq!(
            Frame::parse(&[0; 256]),
            Err(FrameError::TooLong { len: 256 })
        );
        assert_eq!(
            Frame::new(
                Header {
                    to: 1,
                    from: 2,
                    id: 3,
                    flags: 0
                },
                &[0; 252]
            )
            .err(),
            Some(FrameError::DataTooLong { len: 252 })
        );
        let empty = Frame::parse(&[0xFF, 2, 3, 0x80]).unwrap();
        assert!(empty.data.is_empty() && empty.header.is_ack() && !empty.header.is_retry());
    }
}

//! Readings and the plaintext that carries a batch of them inside one token.
//!
//! Two layouts, both specified in `docs/wire-format.md` (all integers canonical LEB128 varints):
//! - **version 1** names each topic once and carries every reading's bytes as they are;
//! - **version 2** (first byte 0) also names each topic's JSON keys once and carries only the values of
//!   flat JSON readings, counters as deltas: the firmware's 35-byte reading takes about 6 bytes.
//!
//! [`encode`] writes whichever is shorter (version 1 on a tie); [`decode`] reads both. Either way every
//! reading comes out byte for byte as the sensor sent it.

use crate::batch::{v1, v2};
use crate::varint::VarintError;

/// One sensor reading: what the sensor sent, where it came from, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// Source MQTT topic or sensor id (for example `/esp8266` or `sensors/kitchen/reading`).
    pub topic: String,
    /// Time of the reading, Unix seconds.
    pub time: u64,
    /// The reading's bytes, exactly as the sensor sent them.
    pub data: Vec<u8>,
}

impl Reading {
    pub fn new(topic: impl Into<String>, time: u64, data: impl Into<Vec<u8>>) -> Self {
        Reading {
            topic: topic.into(),
            time,
            data: data.into(),
        }
    }
}

/// Why a decrypted plaintext is not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch has no readings")]
    Empty,
    #[error("batch {what}: {cause}")]
    Varint {
        what: &'static str,
        cause: VarintError,
    },
    #[error("batch {what} runs past the end of the plaintext")]
    Truncated { what: &'static str },
    #[error("batch topic {index} is not UTF-8")]
    TopicNotUtf8 { index: usize },
    #[error("batch reading {reading} names topic {topic}, but there are only {count}")]
    BadTopicIndex {
        reading: usize,
        topic: u64,
        count: usize,
    },
    #[error("batch reading {reading} has a time outside the representable range")]
    BadTime { reading: usize },
    #[error("batch has {0} trailing bytes")]
    Trailing(usize),
    #[error("batch layout version {0} is not known (this receiver reads 1 and 2)")]
    UnknownVersion(u64),
    #[error("batch reading {reading}: its shape {problem}")]
    Shape {
        reading: usize,
        problem: &'static str,
    },
}

/// The plaintext for a non-empty batch, in the shorter layout. Times are stored relative to `iat`.
pub fn encode(readings: &[Reading], iat: u64) -> Vec<u8> {
    let v1 = v1::encode(readings, iat);
    let v2 = v2::encode(readings, iat);
    if v2.len() < v1.len() {
        v2
    } else {
        v1
    }
}

/// Size of the plaintext [`encode`] produces.
pub fn encoded_len(readings: &[Reading], iat: u64) -> usize {
    encode(readings, iat).len()
}

/// Decodes a plaintext in either layout.
pub fn decode(input: &[u8], iat: u64) -> Result<Vec<Reading>, BatchError> {
    match input.split_first() {
        Some((&0, rest)) => v2::decode(rest, iat),
        _ => v1::decode(input, iat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_topic_is_named_once() {
        let readings: Vec<_> = (0..3)
            .map(|i| Reading::new("/esp8266", 1000 + i, vec![i as u8; 2]))
            .collect();
        let bytes = encode(&readings, 1002);
        assert_eq!(
            bytes,
            [
                1, 8, b'/', b'e', b's', b'p', b'8', b'2', b'6', b'6', // topic table
                3,    // reading count
                3, 2, 0, 0, // time −2 (zigzag 3), 2 bytes
                1, 2, 1, 1, // time −1
                0, 2, 2, 2, // time 0
            ]
        );
        assert_eq!(encoded_len(&readings, 1002), bytes.len());
        assert_eq!(decode(&bytes, 1002).unwrap(), readings);
    }

    #[test]
    fn several_topics_are_indexed() {
        let readings = vec![
            Reading::new("a", 5, b"x".to_vec()),
            Reading::new("b", 5, b"y".to_vec()),
            Reading::new("a", 6, b"".to_vec()),
        ];
        let bytes = encode(&readings, 5);
        assert_eq!(
            bytes,
            [2, 1, b'a', 1, b'b', 3, 0, 0, 1, b'x', 1, 0, 1, b'y', 0, 2, 0]
        );
        assert_eq!(decode(&bytes, 5).unwrap(), readings);
    }

    #[test]
    fn rejects_malformed_batches() {
        assert!(matches!(decode(&[0], 0), Err(BatchError::Varint { .. })));
        assert_eq!(decode(&[0, 3], 0), Err(BatchError::UnknownVersion(3)));
        assert_eq!(decode(&[1, 0, 0], 0), Err(BatchError::Empty));
        assert!(matches!(
            decode(&[1, 5, b'a'], 0),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&[1, 1, 0xff, 1, 0, 0], 0),
            Err(BatchError::TopicNotUtf8 { index: 0 })
        ));
        assert!(matches!(
            decode(&[2, 0, 0, 1, 7, 0, 0], 0),
            Err(BatchError::BadTopicIndex { topic: 7, .. })
        ));
        // time 0 − 1 second is before the epoch
        assert!(matches!(
            decode(&[1, 0, 1, 1, 0], 0),
            Err(BatchError::BadTime { .. })
        ));
        assert_eq!(decode(&[1, 0, 1, 0, 0, 9], 0), Err(BatchError::Trailing(1)));
        assert!(matches!(
            decode(&[0xff, 0xff, 0xff, 0x0f], 0),
            Err(BatchError::Truncated { .. })
        ));
    }
}

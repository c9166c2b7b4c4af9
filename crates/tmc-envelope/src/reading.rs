//! Readings and the plaintext that carries a batch of them inside one token.
//!
//! Plaintext layout (all integers are canonical LEB128 varints, see `docs/wire-format.md`):
//!
//! ```text
//! topic_count  (≥ 1)            then per topic:   len, UTF-8 bytes      (first-appearance order)
//! reading_count (≥ 1)           then per reading: [topic index, only when topic_count > 1]
//!                                                 zigzag(time − iat), len, data bytes
//! ```
//!
//! A batch from one sensor names its topic once, which is what lets eight 16-byte readings fit one
//! LoRa frame with more than half of the frame being reading bytes.

use crate::varint::{self, VarintError};

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
}

/// The distinct topics of `readings` in first-appearance order, and each reading's index into them.
fn topic_table(readings: &[Reading]) -> (Vec<&str>, Vec<usize>) {
    let mut topics: Vec<&str> = Vec::new();
    let mut indices = Vec::with_capacity(readings.len());
    for r in readings {
        let index = match topics.iter().position(|t| *t == r.topic) {
            Some(i) => i,
            None => {
                topics.push(&r.topic);
                topics.len() - 1
            }
        };
        indices.push(index);
    }
    (topics, indices)
}

fn time_offset(time: u64, iat: u64) -> u64 {
    varint::zigzag((time as i64).wrapping_sub(iat as i64))
}

/// Size of the plaintext [`encode`] produces, without producing it.
pub fn encoded_len(readings: &[Reading], iat: u64) -> usize {
    let (topics, indices) = topic_table(readings);
    let mut n = varint::len(topics.len() as u64) + varint::len(readings.len() as u64);
    n += topics
        .iter()
        .map(|t| varint::len(t.len() as u64) + t.len())
        .sum::<usize>();
    for (r, &index) in readings.iter().zip(&indices) {
        if topics.len() > 1 {
            n += varint::len(index as u64);
        }
        n += varint::len(time_offset(r.time, iat));
        n += varint::len(r.data.len() as u64) + r.data.len();
    }
    n
}

/// Encodes a non-empty batch. Times are stored relative to the token's `iat`.
pub fn encode(readings: &[Reading], iat: u64) -> Vec<u8> {
    let (topics, indices) = topic_table(readings);
    let mut out = Vec::with_capacity(encoded_len(readings, iat));
    varint::put(&mut out, topics.len() as u64);
    for t in &topics {
        varint::put(&mut out, t.len() as u64);
        out.extend_from_slice(t.as_bytes());
    }
    varint::put(&mut out, readings.len() as u64);
    for (r, &index) in readings.iter().zip(&indices) {
        if topics.len() > 1 {
            varint::put(&mut out, index as u64);
        }
        varint::put(&mut out, time_offset(r.time, iat));
        varint::put(&mut out, r.data.len() as u64);
        out.extend_from_slice(&r.data);
    }
    out
}

fn take_varint(input: &mut &[u8], what: &'static str) -> Result<u64, BatchError> {
    varint::take(input).map_err(|cause| BatchError::Varint { what, cause })
}

/// Takes a length-prefixed byte string; the length is checked against what is left before any
/// allocation, so a hostile length cannot make us allocate.
fn take_bytes<'a>(input: &mut &'a [u8], what: &'static str) -> Result<&'a [u8], BatchError> {
    let len = take_varint(input, what)?;
    if len > input.len() as u64 {
        return Err(BatchError::Truncated { what });
    }
    let (bytes, rest) = input.split_at(len as usize);
    *input = rest;
    Ok(bytes)
}

/// Decodes a plaintext produced by [`encode`].
pub fn decode(mut input: &[u8], iat: u64) -> Result<Vec<Reading>, BatchError> {
    let input = &mut input;
    let topic_count = take_varint(input, "topic count")?;
    // Every topic takes at least one byte: a count beyond the remaining bytes is a lie.
    if topic_count == 0 {
        return Err(BatchError::Empty);
    }
    if topic_count > input.len() as u64 {
        return Err(BatchError::Truncated { what: "topic list" });
    }
    let mut topics = Vec::with_capacity(topic_count as usize);
    for index in 0..topic_count as usize {
        let bytes = take_bytes(input, "topic")?;
        let topic = std::str::from_utf8(bytes).map_err(|_| BatchError::TopicNotUtf8 { index })?;
        topics.push(topic);
    }
    let reading_count = take_varint(input, "reading count")?;
    if reading_count == 0 {
        return Err(BatchError::Empty);
    }
    if reading_count > input.len() as u64 {
        return Err(BatchError::Truncated {
            what: "reading list",
        });
    }
    let mut readings = Vec::with_capacity(reading_count as usize);
    for reading in 0..reading_count as usize {
        let topic_index = if topics.len() > 1 {
            take_varint(input, "topic index")?
        } else {
            0
        };
        let topic = *topics
            .get(topic_index as usize)
            .ok_or(BatchError::BadTopicIndex {
                reading,
                topic: topic_index,
                count: topics.len(),
            })?;
        let offset = varint::unzigzag(take_varint(input, "time")?);
        let time = (iat as i64)
            .checked_add(offset)
            .and_then(|t| u64::try_from(t).ok())
            .ok_or(BatchError::BadTime { reading })?;
        let data = take_bytes(input, "reading data")?;
        readings.push(Reading::new(topic, time, data));
    }
    if !input.is_empty() {
        return Err(BatchError::Trailing(input.len()));
    }
    Ok(readings)
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
        assert_eq!(decode(&[0], 0), Err(BatchError::Empty));
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

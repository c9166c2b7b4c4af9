//! The two layouts of a batch plaintext, and what they share: the topic table, times relative to a base,
//! varints and length-prefixed bytes read without trusting a length.

pub(crate) mod flat_json;
pub(crate) mod v1;
pub(crate) mod v2;

use crate::reading::{BatchError, Reading};
use crate::varint;

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

/// Writes the topic count and each topic, length-prefixed.
fn put_topics(out: &mut Vec<u8>, topics: &[&str]) {
    varint::put(out, topics.len() as u64);
    for t in topics {
        put_bytes(out, t.as_bytes());
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    varint::put(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `time` relative to `base`, zig-zagged.
fn time_offset(time: u64, base: u64) -> u64 {
    varint::zigzag((time as i64).wrapping_sub(base as i64))
}

fn take_varint(input: &mut &[u8], what: &'static str) -> Result<u64, BatchError> {
    varint::take(input).map_err(|cause| BatchError::Varint { what, cause })
}

/// Takes a length-prefixed byte string; the length is checked against what is left before any
/// allocation, so a hostile length cannot make us allocate.
fn take_bytes<'a>(input: &mut &'a [u8], what: &'static str) -> Result<&'a [u8], BatchError> {
    let len = take_varint(input, what)?;
    take_exactly(input, len, what)
}

fn take_exactly<'a>(
    input: &mut &'a [u8],
    len: u64,
    what: &'static str,
) -> Result<&'a [u8], BatchError> {
    if len > input.len() as u64 {
        return Err(BatchError::Truncated { what });
    }
    let (bytes, rest) = input.split_at(len as usize);
    *input = rest;
    Ok(bytes)
}

/// A count of items that each take at least one byte: zero is refused, and a count beyond the bytes left
/// is a lie (refused before anything is allocated for it).
fn take_count(input: &mut &[u8], what: &'static str) -> Result<usize, BatchError> {
    let count = take_varint(input, what)?;
    if count == 0 {
        return Err(BatchError::Empty);
    }
    if count > input.len() as u64 {
        return Err(BatchError::Truncated { what });
    }
    Ok(count as usize)
}

/// Reads the topic table [`put_topics`] wrote.
fn take_topics<'a>(input: &mut &'a [u8]) -> Result<Vec<&'a str>, BatchError> {
    let count = take_count(input, "topic list")?;
    let mut topics = Vec::with_capacity(count);
    for index in 0..count {
        let bytes = take_bytes(input, "topic")?;
        let topic = std::str::from_utf8(bytes).map_err(|_| BatchError::TopicNotUtf8 { index })?;
        topics.push(topic);
    }
    Ok(topics)
}

/// The topic at `index`, for reading number `reading`.
fn topic_at<'a>(topics: &[&'a str], index: u64, reading: usize) -> Result<&'a str, BatchError> {
    topics
        .get(index as usize)
        .copied()
        .ok_or(BatchError::BadTopicIndex {
            reading,
            topic: index,
            count: topics.len(),
        })
}

/// A time stored relative to `base`.
fn take_time(input: &mut &[u8], base: u64, reading: usize) -> Result<u64, BatchError> {
    let offset = varint::unzigzag(take_varint(input, "time")?);
    (base as i64)
        .checked_add(offset)
        .and_then(|t| u64::try_from(t).ok())
        .ok_or(BatchError::BadTime { reading })
}

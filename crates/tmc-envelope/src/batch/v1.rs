//! Batch layout version 1: a topic table, then each reading's topic index, time and bytes as they are.
//!
//! ```text
//! topic_count  (≥ 1)            then per topic:   len, UTF-8 bytes      (first-appearance order)
//! reading_count (≥ 1)           then per reading: [topic index, only when topic_count > 1]
//!                                                 zigzag(time − iat), len, data bytes
//! ```

use super::{
    put_bytes, put_topics, take_bytes, take_count, take_time, take_topics, take_varint,
    time_offset, topic_at, topic_table,
};
use crate::reading::{BatchError, Reading};
use crate::varint;

pub fn encode(readings: &[Reading], iat: u64) -> Vec<u8> {
    let (topics, indices) = topic_table(readings);
    let mut out = Vec::new();
    put_topics(&mut out, &topics);
    varint::put(&mut out, readings.len() as u64);
    for (r, &index) in readings.iter().zip(&indices) {
        if topics.len() > 1 {
            varint::put(&mut out, index as u64);
        }
        varint::put(&mut out, time_offset(r.time, iat));
        put_bytes(&mut out, &r.data);
    }
    out
}

pub fn decode(mut input: &[u8], iat: u64) -> Result<Vec<Reading>, BatchError> {
    let input = &mut input;
    let topics = take_topics(input)?;
    let count = take_count(input, "reading list")?;
    let mut readings = Vec::with_capacity(count);
    for reading in 0..count {
        let index = if topics.len() > 1 {
            take_varint(input, "topic index")?
        } else {
            0
        };
        let topic = topic_at(&topics, index, reading)?;
        let time = take_time(input, iat, reading)?;
        let data = take_bytes(input, "reading data")?;
        readings.push(Reading::new(topic, time, data));
    }
    if !input.is_empty() {
        return Err(BatchError::Trailing(input.len()));
    }
    Ok(readings)
}

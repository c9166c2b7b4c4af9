//! Batch layout version 2: flat JSON readings as values against a per-topic shape.
//!
//! Sensor readings are small JSON objects whose keys repeat and whose counters grow by one. Version 2
//! names each topic's keys once per token and then carries only values: integers and decimals as
//! zig-zag varint deltas from the same field's previous value, strings as "same as before" or their
//! bytes. A reading that is not such an object (or would not render back byte for byte) is carried raw.
//!
//! ```text
//! 0x00 0x02                     (version 1 never starts with 0: its topic count is ≥ 1)
//! topic_count (≥ 1), per topic: len, UTF-8 bytes
//! reading_count (≥ 1), per reading:
//!     head = topic index × 3 + form
//!     zigzag(time − previous time)            previous: the token's iat, then the reading before
//!     form 0 raw:        len, bytes
//!     form 1 new shape:  field_count (1..=32), per field: key len, key, kind; then the values
//!     form 2 same shape: the values, against the topic's shape
//! kind: 0 integer, 1 string, 1 + s decimal with s (1..=18) fraction digits
//! value per field: integer/decimal  zigzag(value − field's previous value), wrapping in i64 (previous: 0)
//!                  string           0 = the field's previous string; n ≥ 1: n − 1 bytes follow
//! ```
//!
//! A shape and the previous values belong to one topic within one token: a new shape resets them, and
//! nothing carries over from one token to the next (the receiver may have missed or forgotten it).

use super::flat_json::{self, Field, Kind, Value};
use super::{
    put_bytes, put_topics, take_bytes, take_count, take_exactly, take_time, take_topics,
    take_varint, time_offset, topic_at, topic_table,
};
use crate::reading::{BatchError, Reading};
use crate::varint;

/// The plaintext's first two bytes.
pub const MARKER: [u8; 2] = [0, 2];

const RAW: u64 = 0;
const NEW_SHAPE: u64 = 1;
const SAME_SHAPE: u64 = 2;
const FORMS: u64 = 3;

/// One field of a topic's shape and its previous value.
#[derive(Debug, Clone)]
struct FieldState {
    key: Vec<u8>,
    kind: Kind,
    number: i64,
    string: Option<Vec<u8>>,
}

/// What a topic's next reading is encoded against.
#[derive(Debug, Clone, Default)]
struct TopicState {
    fields: Vec<FieldState>,
}

impl TopicState {
    fn matches(&self, fields: &[Field<'_>]) -> bool {
        self.fields.len() == fields.len()
            && self
                .fields
                .iter()
                .zip(fields)
                .all(|(s, f)| s.key == f.key && s.kind == f.kind)
    }

    fn set_shape<'k>(&mut self, shape: impl Iterator<Item = (&'k [u8], Kind)>) {
        self.fields = shape
            .map(|(key, kind)| FieldState {
                key: key.to_vec(),
                kind,
                number: 0,
                string: None,
            })
            .collect();
    }
}

pub fn encode(readings: &[Reading], iat: u64) -> Vec<u8> {
    let (topics, indices) = topic_table(readings);
    let mut out = MARKER.to_vec();
    put_topics(&mut out, &topics);
    varint::put(&mut out, readings.len() as u64);
    let mut states = vec![TopicState::default(); topics.len()];
    let mut previous_time = iat;
    for (r, &index) in readings.iter().zip(&indices) {
        let state = &mut states[index];
        let fields = flat_json::parse(&r.data);
        let form = match &fields {
            None => RAW,
            Some(fields) if state.matches(fields) => SAME_SHAPE,
            Some(_) => NEW_SHAPE,
        };
        varint::put(&mut out, index as u64 * FORMS + form);
        varint::put(&mut out, time_offset(r.time, previous_time));
        previous_time = r.time;
        let Some(fields) = fields else {
            put_bytes(&mut out, &r.data);
            continue;
        };
        if form == NEW_SHAPE {
            varint::put(&mut out, fields.len() as u64);
            for f in &fields {
                put_bytes(&mut out, f.key);
                varint::put(&mut out, f.kind.code());
            }
            state.set_shape(fields.iter().map(|f| (f.key, f.kind)));
        }
        for (f, s) in fields.iter().zip(&mut state.fields) {
            match f.value {
                Value::Number(n) => {
                    varint::put(&mut out, varint::zigzag(n.wrapping_sub(s.number)));
                    s.number = n;
                }
                Value::Bytes(b) if s.string.as_deref() == Some(b) => varint::put(&mut out, 0),
                Value::Bytes(b) => {
                    varint::put(&mut out, b.len() as u64 + 1);
                    out.extend_from_slice(b);
                    s.string = Some(b.to_vec());
                }
            }
        }
    }
    out
}

/// Decodes what follows [`MARKER`]'s first byte (the version and on).
pub fn decode(mut input: &[u8], iat: u64) -> Result<Vec<Reading>, BatchError> {
    let input = &mut input;
    let version = take_varint(input, "version")?;
    if version != u64::from(MARKER[1]) {
        return Err(BatchError::UnknownVersion(version));
    }
    let topics = take_topics(input)?;
    let count = take_count(input, "reading list")?;
    let mut states = vec![TopicState::default(); topics.len()];
    let mut readings = Vec::with_capacity(count);
    let mut previous_time = iat;
    for reading in 0..count {
        let head = take_varint(input, "reading head")?;
        let topic = topic_at(&topics, head / FORMS, reading)?;
        let state = &mut states[(head / FORMS) as usize];
        let time = take_time(input, previous_time, reading)?;
        previous_time = time;
        let data = match head % FORMS {
            RAW => take_bytes(input, "reading data")?.to_vec(),
            NEW_SHAPE => {
                take_shape(input, state, reading)?;
                take_values(input, state, reading)?
            }
            _ if state.fields.is_empty() => {
                return Err(BatchError::Shape {
                    reading,
                    problem: "uses its topic's shape before one was given",
                })
            }
            _ => take_values(input, state, reading)?,
        };
        readings.push(Reading::new(topic, time, data));
    }
    if !input.is_empty() {
        return Err(BatchError::Trailing(input.len()));
    }
    Ok(readings)
}

fn take_shape(input: &mut &[u8], state: &mut TopicState, reading: usize) -> Result<(), BatchError> {
    let count = take_count(input, "shape")?;
    if count > flat_json::MAX_FIELDS {
        return Err(BatchError::Shape {
            reading,
            problem: "has more than 32 fields",
        });
    }
    let mut shape = Vec::with_capacity(count);
    for _ in 0..count {
        let key = take_bytes(input, "shape key")?;
        if !flat_json::plain_string(key) {
            return Err(BatchError::Shape {
                reading,
                problem: "has a key with a quote, backslash or control byte",
            });
        }
        let kind = Kind::from_code(take_varint(input, "shape kind")?).ok_or(BatchError::Shape {
            reading,
            problem: "has an unknown value kind",
        })?;
        shape.push((key, kind));
    }
    state.set_shape(shape.into_iter());
    Ok(())
}

/// The values of one reading against `state`'s shape, rendered as the JSON object the sensor sent.
fn take_values(
    input: &mut &[u8],
    state: &mut TopicState,
    reading: usize,
) -> Result<Vec<u8>, BatchError> {
    for s in &mut state.fields {
        if s.kind == Kind::String {
            let n = take_varint(input, "string value")?;
            if n == 0 {
                if s.string.is_none() {
                    return Err(BatchError::Shape {
                        reading,
                        problem: "repeats a string that was never given",
                    });
                }
                continue;
            }
            let bytes = take_exactly(input, n - 1, "string value")?;
            if !flat_json::plain_string(bytes) {
                return Err(BatchError::Shape {
                    reading,
                    problem: "has a string with a quote, backslash or control byte",
                });
            }
            s.string = Some(bytes.to_vec());
        } else {
            let delta = varint::unzigzag(take_varint(input, "number value")?);
            s.number = s.number.wrapping_add(delta);
        }
    }
    let fields: Vec<Field<'_>> = state
        .fields
        .iter()
        .map(|s| Field {
            key: &s.key,
            kind: s.kind,
            value: match &s.string {
                Some(bytes) if s.kind == Kind::String => Value::Bytes(bytes),
                _ => Value::Number(s.number),
            },
        })
        .collect();
    let mut data = Vec::new();
    flat_json::render(&fields, &mut data);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn firmware(sensor: u32, seq: u32, adc: u32) -> Reading {
        Reading::new(
            format!("sensors/sensor{sensor}/reading"),
            1000,
            format!(r#"{{"id":"sensor{sensor}","seq":{seq},"adc":{adc}}}"#),
        )
    }

    #[test]
    fn keys_once_then_values_as_deltas() {
        let readings = [firmware(1, 17, 512), firmware(1, 18, 498)];
        let bytes = encode(&readings, 1000);
        let mut expected = vec![0, 2, 1, 23];
        expected.extend_from_slice(b"sensors/sensor1/reading");
        expected.extend_from_slice(&[2]); // two readings
        expected.extend_from_slice(&[1, 0, 3]); // topic 0 new shape, time +0, three fields
        expected.extend_from_slice(&[
            2, b'i', b'd', 1, 3, b's', b'e', b'q', 0, 3, b'a', b'd', b'c', 0,
        ]);
        expected.extend_from_slice(&[8, b's', b'e', b'n', b's', b'o', b'r', b'1']); // "sensor1"
        expected.extend_from_slice(&[34, 0x80, 0x08]); // 17, 512
        expected.extend_from_slice(&[2, 0, 0, 2, 27]); // same shape, +0 s, same id, +1, −14
        assert_eq!(bytes, expected);
        assert_eq!(decode(&bytes[1..], 1000).unwrap(), readings);
        // The second reading costs 5 bytes instead of 36.
        assert!(encode(&readings[..1], 1000).len() + 5 == bytes.len());
    }

    #[test]
    fn interleaved_topics_keep_their_own_shapes() {
        let mut readings = Vec::new();
        for seq in 0..6 {
            for sensor in 1..=3 {
                readings.push(firmware(sensor, 100 + seq, 300 + sensor * seq));
            }
        }
        readings.push(Reading::new(
            "sensors/sensor2/reading",
            1003,
            b"t=21.5".to_vec(),
        ));
        readings.push(Reading::new(
            "sensors/sensor2/reading",
            990,
            br#"{"id":"sensor2","t":-0.5}"#.to_vec(),
        ));
        readings.push(firmware(2, 106, 1));
        let bytes = encode(&readings, 1000);
        assert_eq!(decode(&bytes[1..], 1000).unwrap(), readings);
    }

    #[test]
    fn malformed_shapes_and_values_are_refused() {
        // one topic "a", one reading: same shape before any shape
        assert!(matches!(
            decode(&[2, 1, 1, b'a', 1, 2, 0], 0),
            Err(BatchError::Shape { reading: 0, .. })
        ));
        // new shape, one string field "k", value: repeat of a string never given
        assert!(matches!(
            decode(&[2, 1, 1, b'a', 1, 1, 0, 1, 1, b'k', 1, 0], 0),
            Err(BatchError::Shape { reading: 0, .. })
        ));
        // unknown kind 20
        assert!(matches!(
            decode(&[2, 1, 1, b'a', 1, 1, 0, 1, 1, b'k', 20, 0], 0),
            Err(BatchError::Shape { .. })
        ));
        // a key with a quote
        assert!(matches!(
            decode(&[2, 1, 1, b'a', 1, 1, 0, 1, 1, b'"', 0, 0], 0),
            Err(BatchError::Shape { .. })
        ));
        // a string value with a backslash
        assert!(matches!(
            decode(&[2, 1, 1, b'a', 1, 1, 0, 1, 1, b'k', 1, 2, b'\\'], 0),
            Err(BatchError::Shape { .. })
        ));
        // 33 fields
        let mut many = vec![2, 1, 1, b'a', 1, 1, 0, 33];
        for _ in 0..33 {
            many.extend_from_slice(&[1, b'k', 0, 0]);
        }
        assert!(matches!(decode(&many, 0), Err(BatchError::Shape { .. })));
        // topic 1 of 1
        assert!(matches!(
            decode(&[2, 1, 1, b'a', 1, 3, 0, 0], 0),
            Err(BatchError::BadTopicIndex { topic: 1, .. })
        ));
        // a valid raw reading, then a trailing byte
        assert_eq!(
            decode(&[2, 1, 1, b'a', 1, 0, 0, 1, b'x', 9], 0),
            Err(BatchError::Trailing(1))
        );
        assert_eq!(
            decode(&[2, 1, 1, b'a', 1, 0, 0, 1, b'x'], 0).unwrap(),
            [Reading::new("a", 0, b"x".to_vec())]
        );
    }

    fn json_payload() -> impl Strategy<Value = Vec<u8>> {
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (any::<i32>(), 1u32..4).prop_map(|(m, s)| format!("{}.{}", m, "5".repeat(s as usize))),
            "[a-z ,}{]{0,6}".prop_map(|s| format!("\"{s}\"")),
            Just("01".to_string()),
            Just("\"x\\\"y\"".to_string()),
        ];
        proptest::collection::vec(("[a-c]{1,2}", value), 1..4).prop_map(|fields| {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", body.join(",")).into_bytes()
        })
    }

    proptest! {
        /// Whatever the readings (JSON-like or not), version 2 gives them back byte for byte.
        #[test]
        fn round_trips_byte_for_byte(
            readings in proptest::collection::vec(
                (0u8..3, 0u64..2000, prop_oneof![json_payload(), proptest::collection::vec(any::<u8>(), 0..20)]),
                1..12,
            )
        ) {
            let readings: Vec<Reading> = readings
                .into_iter()
                .map(|(t, time, data)| Reading::new(format!("t{t}"), time, data))
                .collect();
            let bytes = encode(&readings, 1000);
            prop_assert_eq!(decode(&bytes[1..], 1000).unwrap(), readings.clone());
            prop_assert_eq!(crate::reading::decode(&crate::reading::encode(&readings, 1000), 1000).unwrap(), readings);
        }
    }
}

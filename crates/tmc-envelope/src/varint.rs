//! Unsigned LEB128 with a canonical (shortest) form.
//!
//! The packed encoding must map one-to-one onto the compact JWT, so a number has exactly one
//! encoding: over-long forms (trailing zero groups) are rejected, as are values that overflow.

/// Appends `value` in its shortest LEB128 form.
pub fn put(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Number of bytes [`put`] writes for `value`.
pub fn len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    Truncated,
    Overlong,
    Overflow,
}

impl std::fmt::Display for VarintError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VarintError::Truncated => "varint cut short",
            VarintError::Overlong => "varint not in its shortest form",
            VarintError::Overflow => "varint too large",
        })
    }
}

/// Reads one varint from the front of `input`, advancing it.
pub fn take(input: &mut &[u8]) -> Result<u64, VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate() {
        let shift = 7 * i as u32;
        if shift >= 64 || (shift == 63 && byte & 0x7f > 1) {
            return Err(VarintError::Overflow);
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(VarintError::Overlong);
            }
            *input = &input[i + 1..];
            return Ok(value);
        }
    }
    Err(VarintError::Truncated)
}

/// Zig-zag maps signed to unsigned so that small magnitudes stay short.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let cases: [(u64, &[u8]); 5] = [
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            put(&mut out, value);
            assert_eq!(out, bytes);
            assert_eq!(len(value), bytes.len());
            let mut input = bytes;
            assert_eq!(take(&mut input), Ok(value));
            assert!(input.is_empty());
        }
    }

    #[test]
    fn rejects_non_canonical_and_broken_forms() {
        assert_eq!(take(&mut &[0x80, 0x00][..]), Err(VarintError::Overlong));
        assert_eq!(take(&mut &[0x80][..]), Err(VarintError::Truncated));
        assert_eq!(take(&mut &[][..]), Err(VarintError::Truncated));
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(take(&mut &too_big[..]), Err(VarintError::Overflow));
        let eleven = [0x80; 11];
        assert_eq!(take(&mut &eleven[..]), Err(VarintError::Overflow));
    }

    proptest! {
        #[test]
        fn round_trips(value: u64, signed: i64) {
            let mut out = Vec::new();
            put(&mut out, value);
            prop_assert_eq!(out.len(), len(value));
            let mut input = &out[..];
            prop_assert_eq!(take(&mut input), Ok(value));
            prop_assert_eq!(unzigzag(zigzag(signed)), signed);
        }
    }
}

//! The flat JSON objects sensors send, split into a shape (keys and value kinds) and values, and rendered
//! back byte for byte.
//!
//! Only what renders back exactly is accepted: `{"key":value,...}` with no whitespace, keys and strings
//! without `"`, `\` or control bytes, integers in canonical form within `i64`, decimals written as digits,
//! a point and at least one fraction digit. [`parse`] renders what it read and compares, so anything it
//! returns is known to reproduce the payload; everything else is carried as raw bytes by the batch.

/// What a field's value is; part of the shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON integer.
    Integer,
    /// A JSON string (its bytes between the quotes).
    String,
    /// A JSON number with this many digits after the point (1..=[`MAX_SCALE`]), kept as an integer mantissa.
    Decimal(u8),
}

/// Most fraction digits a decimal field may have.
pub const MAX_SCALE: u8 = 18;

/// Most fields an object may have to be encoded by shape.
pub const MAX_FIELDS: usize = 32;

impl Kind {
    /// The kind's number on the wire: 0 integer, 1 string, 1 + scale for a decimal.
    pub fn code(self) -> u64 {
        match self {
            Kind::Integer => 0,
            Kind::String => 1,
            Kind::Decimal(scale) => 1 + u64::from(scale),
        }
    }

    pub fn from_code(code: u64) -> Option<Kind> {
        match code {
            0 => Some(Kind::Integer),
            1 => Some(Kind::String),
            c if c <= 1 + u64::from(MAX_SCALE) => Some(Kind::Decimal((c - 1) as u8)),
            _ => None,
        }
    }
}

/// A field's value: an integer (or a decimal's mantissa), or a string's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Number(i64),
    Bytes(&'a [u8]),
}

/// One `"key":value` pair of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub key: &'a [u8],
    pub kind: Kind,
    pub value: Value<'a>,
}

/// Whether `bytes` may stand between quotes and be rendered back unchanged: no quote, no backslash, no
/// control byte.
pub fn plain_string(bytes: &[u8]) -> bool {
    !bytes.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20)
}

/// The fields of `data` when it is a flat object that renders back byte for byte; `None` otherwise.
pub fn parse(data: &[u8]) -> Option<Vec<Field<'_>>> {
    let inner = data.strip_prefix(b"{")?.strip_suffix(b"}")?;
    let mut fields = Vec::new();
    let mut rest = inner;
    loop {
        if fields.len() == MAX_FIELDS {
            return None;
        }
        let (key, after_key) = quoted(rest)?;
        let after_colon = after_key.strip_prefix(b":")?;
        let (kind, value, after_value) = if after_colon.first() == Some(&b'"') {
            let (s, tail) = quoted(after_colon)?;
            (Kind::String, Value::Bytes(s), tail)
        } else {
            let end = after_colon
                .iter()
                .position(|&b| b == b',')
                .unwrap_or(after_colon.len());
            let (token, tail) = after_colon.split_at(end);
            let (kind, value) = number(token)?;
            (kind, value, tail)
        };
        fields.push(Field { key, kind, value });
        match after_value.split_first() {
            None => break,
            Some((b',', tail)) => rest = tail,
            Some(_) => return None,
        }
    }
    let mut rendered = Vec::with_capacity(data.len());
    render(&fields, &mut rendered);
    (rendered == data).then_some(fields)
}

/// A string at the front of `input`: its bytes between the quotes, and what follows.
fn quoted(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let body = input.strip_prefix(b"\"")?;
    let end = body.iter().position(|&b| b == b'"')?;
    let s = &body[..end];
    plain_string(s).then_some((s, &body[end + 1..]))
}

/// An integer or a decimal; the caller's render-and-compare catches every non-canonical form.
fn number(token: &[u8]) -> Option<(Kind, Value<'static>)> {
    let text = std::str::from_utf8(token).ok()?;
    let (digits, scale) = match text.split_once('.') {
        None => (text.to_owned(), 0usize),
        Some((whole, fraction)) => {
            if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (format!("{whole}{fraction}"), fraction.len())
        }
    };
    let body = digits.strip_prefix('-').unwrap_or(&digits);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mantissa: i64 = digits.parse().ok()?;
    let kind = match scale {
        0 => Kind::Integer,
        s if s <= usize::from(MAX_SCALE) => Kind::Decimal(s as u8),
        _ => return None,
    };
    Some((kind, Value::Number(mantissa)))
}

/// Writes the object `{"key":value,...}` for `fields`.
pub fn render(fields: &[Field<'_>], out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(field.key);
        out.extend_from_slice(b"\":");
        match (field.kind, field.value) {
            (_, Value::Bytes(s)) => {
                out.push(b'"');
                out.extend_from_slice(s);
                out.push(b'"');
            }
            (Kind::Decimal(scale), Value::Number(m)) => render_decimal(m, scale, out),
            (_, Value::Number(n)) => out.extend_from_slice(n.to_string().as_bytes()),
        }
    }
    out.push(b'}');
}

/// `mantissa` × 10^−`scale` with exactly `scale` fraction digits and at least one digit before the point.
fn render_decimal(mantissa: i64, scale: u8, out: &mut Vec<u8>) {
    let scale = usize::from(scale);
    let digits = mantissa.unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale + 1);
    if mantissa < 0 {
        out.push(b'-');
    }
    let (whole, fraction) = digits.split_at(digits.len() - scale);
    out.extend_from_slice(whole.as_bytes());
    out.push(b'.');
    out.extend_from_slice(fraction.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firmware_reading_is_three_fields() {
        let data = br#"{"id":"sensor1","seq":17,"adc":512}"#;
        let fields = parse(data).unwrap();
        assert_eq!(
            fields,
            [
                Field {
                    key: b"id",
                    kind: Kind::String,
                    value: Value::Bytes(b"sensor1")
                },
                Field {
                    key: b"seq",
                    kind: Kind::Integer,
                    value: Value::Number(17)
                },
                Field {
                    key: b"adc",
                    kind: Kind::Integer,
                    value: Value::Number(512)
                },
            ]
        );
    }

    #[test]
    fn decimals_keep_their_digits() {
        let fields = parse(br#"{"a":"x,y","b":"}"}"#).unwrap();
        assert_eq!(fields[0].value, Value::Bytes(b"x,y"));
        assert_eq!(fields[1].value, Value::Bytes(b"}"));
        for text in ["21.5", "-0.05", "0.0", "100.250", "-12.3"] {
            let data = format!(r#"{{"t":{text}}}"#);
            let fields = parse(data.as_bytes()).unwrap_or_else(|| panic!("{text}"));
            let mut out = Vec::new();
            render(&fields, &mut out);
            assert_eq!(out, data.as_bytes());
        }
        let fields = parse(br#"{"t":-0.05}"#).unwrap();
        assert_eq!(fields[0].kind, Kind::Decimal(2));
        assert_eq!(fields[0].value, Value::Number(-5));
    }

    #[test]
    fn what_would_not_render_back_is_refused() {
        for data in [
            &br#"{"a":1, "b":2}"#[..],
            br#"{"a":01}"#,
            br#"{"a":-0}"#,
            br#"{"a":-0.0}"#,
            br#"{"a":1e3}"#,
            br#"{"a":1.}"#,
            br#"{"a":.5}"#,
            br#"{"a":true}"#,
            br#"{"a":"x\"y"}"#,
            br#"{"a":"x\\y"}"#,
            br#"{"a":{"b":1}}"#,
            br#"{"a":9223372036854775808}"#,
            br#"{}"#,
            br#"{"a":1}x"#,
            b"t=21.5",
            br#"{"a":1,}"#,
        ] {
            assert_eq!(parse(data), None, "{}", String::from_utf8_lossy(data));
        }
    }
}

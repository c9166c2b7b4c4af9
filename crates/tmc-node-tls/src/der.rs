//! A minimal DER reader over a borrowed slice: just enough of X.509 for [`crate::cert`]. No allocation,
//! no recursion; every length is checked against what is left, so a hostile certificate can only make it
//! return an error.

/// Universal tags used by the certificate walker.
pub(crate) const BOOLEAN: u8 = 0x01;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const NULL: u8 = 0x05;
pub(crate) const OID: u8 = 0x06;
pub(crate) const SEQUENCE: u8 = 0x30;

/// The encoding is not DER this reader understands (truncated, indefinite or over-long length,
/// multi-byte tag, or an unexpected tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DerError;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

/// One element: its tag, its contents and its whole encoding (tag and length included).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    pub(crate) fn read_any(&mut self) -> Result<Tlv<'a>, DerError> {
        let (&tag, rest) = self.data.split_first().ok_or(DerError)?;
        // Low tag numbers only: X.509 never needs the multi-byte form.
        if tag & 0x1f == 0x1f {
            return Err(DerError);
        }
        let (&first, mut rest) = rest.split_first().ok_or(DerError)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            // Long form, 1..=3 length bytes (a certificate is far below 16 MB), minimal as DER demands.
            let n = usize::from(first & 0x7f);
            if !(1..=3).contains(&n) || rest.len() < n {
                return Err(DerError);
            }
            let (bytes, after) = rest.split_at(n);
            rest = after;
            if bytes[0] == 0 {
                return Err(DerError);
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 {
                return Err(DerError);
            }
            len
        };
        if rest.len() < len {
            return Err(DerError);
        }
        let header = self.data.len() - rest.len();
        let (raw, after) = self.data.split_at(header + len);
        self.data = after;
        Ok(Tlv {
            tag,
            value: &raw[header..],
            raw,
        })
    }

    /// The contents of the next element, which must have `tag`.
    pub(crate) fn read(&mut self, tag: u8) -> Result<&'a [u8], DerError> {
        let tlv = self.read_any()?;
        if tlv.tag == tag {
            Ok(tlv.value)
        } else {
            Err(DerError)
        }
    }

    /// The next element if it has `tag`, else nothing consumed.
    pub(crate) fn read_optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A reader over the contents of the next element, which must have `tag`.
    pub(crate) fn nested(&mut self, tag: u8) -> Result<Reader<'a>, DerError> {
        self.read(tag).map(Reader::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut long = [0u8; 3 + 200];
        long[..3].copy_from_slice(&[0x04, 0x81, 200]);
        let mut r = Reader::new(&long);
        assert_eq!(r.read(OCTET_STRING).map(<[u8]>::len), Ok(200));
        assert!(r.is_empty());
        let mut r = Reader::new(&[0x02, 0x01, 0x05, 0x05, 0x00]);
        assert_eq!(r.read(INTEGER), Ok(&[5u8][..]));
        assert_eq!(r.read_optional(INTEGER), Ok(None));
        assert_eq!(r.read(NULL), Ok(&[][..]));
    }

    #[test]
    fn rejects_bad_encodings() {
        for bad in [
            &[0x30, 0x05, 0x00][..],          // truncated
            &[0x30, 0x80, 0x00, 0x00][..],    // indefinite length
            &[0x30, 0x81, 0x05, 0, 0, 0][..], // long form for a short length
            &[0x30, 0x82, 0x00, 0x90][..],    // leading zero length byte
            &[0x1f, 0x01, 0x00][..],          // multi-byte tag
            &[0x30][..],
            &[][..],
        ] {
            assert_eq!(
                Reader::new(bad).read_any().map(|t| t.tag),
                Err(DerError),
                "{bad:x?}"
            );
        }
        assert_eq!(Reader::new(&[0x02, 0x00]).read(SEQUENCE), Err(DerError));
    }
}

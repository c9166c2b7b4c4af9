//! A PEM block received line by line into a borrowed buffer, decoded once its last line is in.

/// How a PEM block's first line starts.
const BEGIN: &[u8] = b"-----BEGIN ";
/// How its last line starts.
const END: &[u8] = b"-----END ";

/// What a line did to the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PemLine {
    /// Taken; the block goes on.
    More,
    /// The block's last line: decode it.
    End,
    /// Not a PEM block (the reason); the block is dropped.
    Abandoned(&'static str),
}

/// The block's text so far (lines joined with `\n`, what `pem_rfc7468::decode` reads) in a buffer the
/// caller owns, and whether it outgrew it (reported at the block's end, so a long block is one refusal).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PemBlock {
    len: usize,
    overflowed: bool,
}

impl PemBlock {
    /// Takes `line` into `text`.
    pub(crate) fn push(&mut self, line: &[u8], text: &mut [u8]) -> PemLine {
        if self.len == 0 && !self.overflowed && !line.starts_with(BEGIN) {
            return PemLine::Abandoned(
                "expected a PEM block, starting -----BEGIN CERTIFICATE-----",
            );
        }
        if line.is_empty() {
            return PemLine::Abandoned("PEM block abandoned at an empty line");
        }
        match text.get_mut(self.len..self.len + line.len() + 1) {
            Some(room) if !self.overflowed => {
                let (body, newline) = room.split_at_mut(line.len());
                body.copy_from_slice(line);
                newline[0] = b'\n';
                self.len += line.len() + 1;
            }
            _ => self.overflowed = true,
        }
        if line.starts_with(END) {
            PemLine::End
        } else {
            PemLine::More
        }
    }

    /// The whole block, `None` when it did not fit.
    pub(crate) fn text<'t>(&self, text: &'t [u8]) -> Option<&'t [u8]> {
        if self.overflowed {
            None
        } else {
            text.get(..self.len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_joined_with_newlines_and_ends_at_its_end_line() {
        let mut text = [0u8; 64];
        let mut block = PemBlock::default();
        assert_eq!(block.push(b"-----BEGIN X-----", &mut text), PemLine::More);
        assert_eq!(block.push(b"QUJD", &mut text), PemLine::More);
        assert_eq!(block.push(b"-----END X-----", &mut text), PemLine::End);
        assert_eq!(
            block.text(&text),
            Some(&b"-----BEGIN X-----\nQUJD\n-----END X-----\n"[..])
        );
    }

    #[test]
    fn garbage_first_lines_empty_lines_and_overflow_are_refused() {
        let mut text = [0u8; 24];
        assert!(matches!(
            PemBlock::default().push(b"hello", &mut text),
            PemLine::Abandoned(_)
        ));
        let mut block = PemBlock::default();
        block.push(b"-----BEGIN X-----", &mut text);
        assert!(matches!(block.push(b"", &mut text), PemLine::Abandoned(_)));
        let mut block = PemBlock::default();
        block.push(b"-----BEGIN X-----", &mut text);
        assert_eq!(block.push(b"QUJDQUJDQUJD", &mut text), PemLine::More);
        assert_eq!(block.push(b"-----END X-----", &mut text), PemLine::End);
        assert_eq!(block.text(&text), None);
    }
}

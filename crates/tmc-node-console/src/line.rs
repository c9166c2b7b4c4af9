//! Lines from a byte stream, in a fixed buffer.

/// The longest line the console takes, without its `\r\n`: a PEM line is 64 characters, the longest command
/// (`csr` + a 23-character name + ` new-key`) 35.
pub const MAX_LINE_LEN: usize = 96;

/// What a byte completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEvent {
    /// A line ended: [`LineBuffer::line`] holds it (without `\r` and `\n`).
    Complete,
    /// A line longer than the buffer ended; its bytes are gone.
    TooLong,
}

/// Collects bytes up to `\n`; `\r` is dropped anywhere (terminals send `\r\n` or a bare `\r` before `\n`).
#[derive(Debug, Clone)]
pub struct LineBuffer<const N: usize = MAX_LINE_LEN> {
    buf: [u8; N],
    len: usize,
    /// Bytes were dropped from the line being collected.
    overflowed: bool,
    /// The last byte ended a line: the next one starts a new line.
    ended: bool,
}

impl<const N: usize> Default for LineBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineBuffer<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        LineBuffer {
            buf: [0; N],
            len: 0,
            overflowed: false,
            ended: false,
        }
    }

    /// Takes one byte; `Some` when it ended a line.
    pub fn push(&mut self, byte: u8) -> Option<LineEvent> {
        if self.ended {
            self.clear();
        }
        match byte {
            b'\r' => None,
            b'\n' => {
                self.ended = true;
                Some(if self.overflowed {
                    LineEvent::TooLong
                } else {
                    LineEvent::Complete
                })
            }
            _ if self.len < N => {
                self.buf[self.len] = byte;
                self.len += 1;
                None
            }
            _ => {
                self.overflowed = true;
                None
            }
        }
    }

    /// The line collected so far (after [`LineEvent::Complete`]: the whole line).
    pub fn line(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Forgets the line.
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = false;
        self.ended = false;
    }
}

/// Watches a console outside provisioning mode for the line [`ENTER_COMMAND`](crate::ENTER_COMMAND) (what
/// the firmware and the pty double do at the banner); every other line is ignored.
#[derive(Debug, Clone, Default)]
pub struct EnterWatch {
    line: LineBuffer<MAX_LINE_LEN>,
}

impl EnterWatch {
    pub const fn new() -> Self {
        EnterWatch {
            line: LineBuffer::new(),
        }
    }

    /// Takes one byte; `true` when it ended the line `provision` (surrounding blanks allowed).
    pub fn push(&mut self, byte: u8) -> bool {
        self.line.push(byte) == Some(LineEvent::Complete)
            && self.line.line().trim_ascii() == crate::ENTER_COMMAND.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed<const N: usize>(buf: &mut LineBuffer<N>, bytes: &[u8]) -> Option<LineEvent> {
        bytes.iter().fold(None, |_, &b| buf.push(b))
    }

    #[test]
    fn lines_end_at_newline_and_drop_carriage_returns() {
        let mut buf = LineBuffer::<8>::new();
        assert_eq!(feed(&mut buf, b"sh\row\r\n"), Some(LineEvent::Complete));
        assert_eq!(buf.line(), b"show");
        assert_eq!(feed(&mut buf, b"ab"), None);
        assert_eq!(buf.line(), b"ab");
    }

    #[test]
    fn an_over_long_line_is_reported_once_and_the_next_starts_clean() {
        let mut buf = LineBuffer::<4>::new();
        assert_eq!(feed(&mut buf, b"abcdefgh\n"), Some(LineEvent::TooLong));
        assert_eq!(feed(&mut buf, b"abcd\n"), Some(LineEvent::Complete));
        assert_eq!(buf.line(), b"abcd");
    }

    #[test]
    fn enter_watch_fires_on_the_provision_line_only() {
        let mut watch = EnterWatch::new();
        let fired: std::vec::Vec<bool> = b"hello\nprovisioning\r\n  provision \r\n"
            .iter()
            .map(|&b| watch.push(b))
            .collect();
        assert_eq!(fired.iter().filter(|&&f| f).count(), 1);
        assert!(fired[fired.len() - 1]);
    }
}

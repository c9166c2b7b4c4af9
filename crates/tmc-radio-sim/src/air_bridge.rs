//! A bridge that carries an air directory over a byte stream, so that nodes on two machines (two VMs joined by
//! a serial port, say) hear each other as if they shared one directory.
//!
//! A bridge joins its directory like any node, with the socket `DIR/<name>.sock` (see [`crate::air`]), but
//! has no chip. Each side of the stream has one bridge:
//!
//! - every datagram another node of the directory sends to the bridge's socket (every packet a local chip
//!   starts to transmit) is written to the stream as one line: the datagram's bytes in lowercase hex, then
//!   `\n`;
//! - every line read from the stream is decoded and, if it is a valid air datagram, sent to every other node
//!   of the directory, as if its sender were one of them. The bridge never sends to its own socket, so
//!   nothing it injects comes back to it and goes back over the stream.
//!
//! A line that is not a valid datagram (not hex, an odd number of digits, longer than any datagram makes, or
//! hex of bytes that do not decode) is counted and dropped; the next newline resynchronises. Such lines are
//! what a peer killed in the middle of a line leaves behind: its partial line runs into the next one. To lose
//! no more than that partial line, a bridge starts every stream it is given with an empty line (empty lines
//! are ignored), which ends whatever its predecessor on that stream left unfinished.
//!
//! The stream is anything readable and writable ([`AirBridge::carry`]); the caller (re)opens it, and
//! [`AirBridge::carry`] returns when it ends. Datagrams that cannot be written to the stream (none is
//! attached, the write fails) are counted and dropped: on the real air a packet nobody hears is lost too.
//! There is no other framing, acknowledgement or retransmission: the radio protocols above already cope with
//! lost packets.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use thiserror::Error;

use crate::air::{bump, decode, AirError, Broadcaster, Counters, NodeSocket, MAX_DATAGRAM};

/// The longest line kept, newline excluded: the hex of the longest datagram, and some slack so that a line
/// just too long is dropped as "not a datagram" rather than unread.
const MAX_LINE: usize = 2 * MAX_DATAGRAM + 16;
/// How much is read from the stream at once.
const READ_CHUNK: usize = 4096;

/// Counters of a bridge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Streams attached so far, counted once the nodes' datagrams go to the stream
    /// ([`AirBridge::carry`]).
    pub streams: u64,
    /// Datagrams from the local nodes written to the stream.
    pub to_stream: u64,
    /// Datagrams from the local nodes that could not be written to the stream (no stream attached, or the
    /// write failed), and were dropped.
    pub unwritable: u64,
    /// Datagrams from the local nodes that did not decode, dropped rather than sent over the stream.
    pub malformed_datagrams: u64,
    /// Valid datagrams read from the stream and sent to the local nodes.
    pub from_stream: u64,
    /// Lines read from the stream and dropped because they are no valid datagram (including an unfinished
    /// line at the end of a stream).
    pub malformed_lines: u64,
    /// Datagrams from the stream handed to a local node's socket (one per node and datagram).
    pub sent: u64,
    /// Datagrams from the stream that a local node's socket refused (a killed node), or that could not be
    /// sent because the directory was unreadable.
    pub send_failures: u64,
}

#[derive(Default)]
struct BridgeCounters {
    streams: AtomicU64,
    /// What the bridge hands to the nodes (`sent`, `send_failures`) and gets from them but cannot decode
    /// (`malformed`), counted as a node's are.
    nodes: Counters,
    to_stream: AtomicU64,
    unwritable: AtomicU64,
    from_stream: AtomicU64,
    malformed_lines: AtomicU64,
}

/// Where the datagrams of the local nodes go: the writer of the stream being carried, if any.
type StreamWriter = Arc<Mutex<Option<Box<dyn Write + Send>>>>;

fn lock(writer: &StreamWriter) -> MutexGuard<'_, Option<Box<dyn Write + Send>>> {
    // A panic while writing leaves nothing half-updated that matters: the next write starts a fresh line.
    writer.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bridge node in an air directory. Dropping it leaves the air (stops its socket's reader thread and
/// removes the socket file); end a running [`AirBridge::carry`] first by ending its stream.
pub struct AirBridge {
    counters: Arc<BridgeCounters>,
    stream_writer: StreamWriter,
    broadcaster: Broadcaster,
    socket: NodeSocket,
}

impl AirBridge {
    /// Joins the air directory `dir` as `name` (e.g. `bridge`), as [`crate::air::join`] joins a chip: creates
    /// the directory if missing and replaces a socket left by a killed node of that name; a live node of that
    /// name is an error. Until a stream is attached ([`AirBridge::carry`]), what the nodes send is dropped.
    pub fn join(dir: impl AsRef<Path>, name: &str) -> Result<AirBridge, AirError> {
        let counters = Arc::new(BridgeCounters::default());
        let stream_writer = StreamWriter::default();
        let (socket, broadcaster) = NodeSocket::open(dir.as_ref(), name, {
            let (counters, stream_writer) = (counters.clone(), stream_writer.clone());
            move |datagram| write_to_stream(datagram, &stream_writer, &counters)
        })?;
        Ok(AirBridge {
            counters,
            stream_writer,
            broadcaster,
            socket,
        })
    }

    /// Carries the air over one stream until it ends: from now on the nodes' datagrams are written to
    /// `stream_writer`, and the datagrams read from `stream_reader` are sent to the nodes, on the calling
    /// thread. Returns when reading reaches the end of the stream or fails, after which the nodes' datagrams
    /// are dropped again until the next call; the caller decides whether and when to reopen the stream.
    ///
    /// Carry one stream at a time: with concurrent calls, the writer attached last gets the datagrams, and
    /// the first stream to end detaches it.
    /// `stream_writer` is written by the thread that reads the bridge's socket; should a write block (a peer
    /// that does not read), the nodes' datagrams wait in the socket's queue meanwhile, and the nodes count
    /// send failures once it is full.
    pub fn carry(
        &self,
        mut stream_reader: impl Read,
        mut stream_writer: impl Write + Send + 'static,
    ) -> StreamEnd {
        // An empty line first ends a line a killed predecessor may have left unfinished on this stream, so
        // that the peer drops only that line and not our first datagram with it. Best effort: if it cannot be
        // written, neither can datagrams, and they are counted then. Written before the writer is shared with
        // the socket's reader thread, so that no datagram line can cut into it.
        stream_writer
            .write_all(b"\n")
            .and_then(|()| stream_writer.flush())
            .ok();
        *lock(&self.stream_writer) = Some(Box::new(stream_writer));
        bump(&self.counters.streams);

        let mut lines = LineSplitter::default();
        let mut buf = [0u8; READ_CHUNK];
        let mut bytes_read = 0u64;
        let error = loop {
            match stream_reader.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => {
                    bytes_read += n as u64;
                    lines.feed(buf.get(..n).unwrap_or(&buf), &mut |line| {
                        self.take_line(line);
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e),
            }
        };
        if lines.finish() {
            bump(&self.counters.malformed_lines);
        }
        *lock(&self.stream_writer) = None;
        StreamEnd { bytes_read, error }
    }

    /// A line read from the stream: a datagram to send to the nodes, an empty line to skip, or garbage.
    fn take_line(&self, line: Result<&[u8], LineError>) {
        match line {
            Ok([]) => {}
            Ok(line) => match decode_line(line) {
                Ok(datagram) => {
                    self.broadcaster.send(&datagram, &self.counters.nodes);
                    // Counted after the hand-over, so that a test that sees the count finds the datagram
                    // in the nodes' queues.
                    bump(&self.counters.from_stream);
                }
                Err(_) => bump(&self.counters.malformed_lines),
            },
            Err(_) => bump(&self.counters.malformed_lines),
        }
    }

    /// The bridge's node name.
    pub fn name(&self) -> &str {
        self.socket.name()
    }

    /// The bridge's socket file.
    pub fn socket_path(&self) -> &Path {
        self.socket.path()
    }

    /// Counters.
    pub fn stats(&self) -> BridgeStats {
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        BridgeStats {
            streams: load(&c.streams),
            to_stream: load(&c.to_stream),
            unwritable: load(&c.unwritable),
            malformed_datagrams: load(&c.nodes.malformed),
            from_stream: load(&c.from_stream),
            malformed_lines: load(&c.malformed_lines),
            sent: load(&c.nodes.sent),
            send_failures: load(&c.nodes.send_failures),
        }
    }
}

impl fmt::Debug for AirBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AirBridge")
            .field("name", &self.name())
            .field("path", &self.socket_path())
            .finish_non_exhaustive()
    }
}

/// How a stream carried by [`AirBridge::carry`] ended.
#[derive(Debug)]
pub struct StreamEnd {
    /// Bytes read from the stream before it ended; 0 if the peer sent nothing at all (a virtio-serial port
    /// whose host side is not connected reads end of file at once).
    pub bytes_read: u64,
    /// The read error that ended it; `None` at end of file.
    pub error: Option<io::Error>,
}

impl fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            None => write!(f, "end of stream after {} bytes", self.bytes_read),
            Some(e) => write!(f, "read error after {} bytes: {e}", self.bytes_read),
        }
    }
}

/// A datagram from a local node: over the stream if one is attached and takes it, else counted as dropped.
fn write_to_stream(datagram: &[u8], stream_writer: &StreamWriter, counters: &BridgeCounters) {
    if decode(datagram).is_none() {
        bump(&counters.nodes.malformed);
        return;
    }
    let line = encode_line(datagram);
    let written = lock(stream_writer).as_mut().is_some_and(|writer| {
        writer
            .write_all(&line)
            .and_then(|()| writer.flush())
            .is_ok()
    });
    bump(if written {
        &counters.to_stream
    } else {
        &counters.unwritable
    });
}

/// A line of the stream that is no valid datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
enum LineError {
    #[error("the line is longer than {MAX_LINE} characters")]
    TooLong,
    #[error("the line has an odd number of characters")]
    OddLength,
    #[error("the line is not hex")]
    NotHex,
    #[error("the line's bytes are no valid air datagram")]
    NotADatagram,
}

/// A datagram as a stream line: lowercase hex and a newline.
fn encode_line(datagram: &[u8]) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut line = Vec::with_capacity(2 * datagram.len() + 1);
    for byte in datagram {
        line.push(DIGITS[usize::from(byte >> 4)]);
        line.push(DIGITS[usize::from(byte & 0x0f)]);
    }
    line.push(b'\n');
    line
}

/// The datagram of a stream line (without its newline), if it is hex of a valid one. Upper-case digits are
/// accepted too.
fn decode_line(line: &[u8]) -> Result<Vec<u8>, LineError> {
    if line.len() > MAX_LINE {
        return Err(LineError::TooLong);
    }
    if !line.len().is_multiple_of(2) {
        return Err(LineError::OddLength);
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let datagram = line
        .chunks_exact(2)
        .map(|pair| match *pair {
            [high, low] => Some(digit(high)? << 4 | digit(low)?),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or(LineError::NotHex)?;
    match decode(&datagram) {
        Some(_) => Ok(datagram),
        None => Err(LineError::NotADatagram),
    }
}

/// Cuts a byte stream into lines, keeping at most [`MAX_LINE`] bytes of one: the rest of a longer line is
/// skipped up to its newline, so that garbage without newlines cannot grow memory.
#[derive(Default)]
struct LineSplitter {
    line: Vec<u8>,
    overlong: bool,
}

impl LineSplitter {
    /// Takes the next bytes of the stream; calls `on_line` with each line they complete (without its newline),
    /// or with [`LineError::TooLong`] for one that was too long.
    fn feed(&mut self, mut bytes: &[u8], on_line: &mut impl FnMut(Result<&[u8], LineError>)) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let (part, rest) = bytes.split_at(newline.unwrap_or(bytes.len()));
            if !self.overlong {
                if self.line.len() + part.len() > MAX_LINE {
                    self.overlong = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(part);
                }
            }
            if newline.is_some() {
                on_line(if self.overlong {
                    Err(LineError::TooLong)
                } else {
                    Ok(&self.line)
                });
                self.line.clear();
                self.overlong = false;
            }
            // `rest` starts with the newline, if there was one.
            bytes = rest.get(1..).unwrap_or_default();
        }
    }

    /// At the end of the stream: forgets an unfinished line and tells whether there was one.
    fn finish(&mut self) -> bool {
        let unfinished = self.overlong || !self.line.is_empty();
        self.line.clear();
        self.overlong = false;
        unfinished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid datagram: header of the RadioHead default modem at 868 MHz, from sender 7, and `payload`.
    fn datagram(payload: &[u8]) -> Vec<u8> {
        let mut d = b"TMCA\x02".to_vec();
        d.extend_from_slice(&868_000_000u32.to_be_bytes());
        d.extend_from_slice(&[0x72, 0x74, 0x04, 0x00, 0x08, 0x12, 0x00]);
        d.extend_from_slice(&7u32.to_be_bytes());
        d.extend_from_slice(payload);
        assert!(decode(&d).is_some(), "the test datagram must be valid");
        d
    }

    fn split(chunks: &[&[u8]]) -> (Vec<Result<Vec<u8>, LineError>>, bool) {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.feed(chunk, &mut |line| lines.push(line.map(<[u8]>::to_vec)));
        }
        (lines, splitter.finish())
    }

    #[test]
    fn datagrams_round_trip_as_lowercase_hex_lines() {
        let d = datagram(&[0x00, 0xab, 0xff, 0x10]);
        let line = encode_line(&d);
        assert_eq!(
            &line[..10],
            b"544d434102",
            "magic and version, lowercase hex"
        );
        assert_eq!(line.last(), Some(&b'\n'));
        assert!(line[..line.len() - 1]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)));
        assert_eq!(decode_line(&line[..line.len() - 1]), Ok(d.clone()));
        let upper = line[..line.len() - 1].to_ascii_uppercase();
        assert_eq!(decode_line(&upper), Ok(d));
        // The longest datagram fits a line.
        let longest = encode_line(&datagram(&[0x5a; 255]));
        assert_eq!(longest.len(), 2 * MAX_DATAGRAM + 1);
        assert!(decode_line(&longest[..longest.len() - 1]).is_ok());
    }

    #[test]
    fn lines_that_are_no_datagram_are_refused_with_the_reason() {
        let good = encode_line(&datagram(b"hi"));
        let good = &good[..good.len() - 1];
        assert_eq!(
            decode_line(&good[..good.len() - 1]),
            Err(LineError::OddLength)
        );
        assert_eq!(decode_line(&good[..20]), Err(LineError::NotADatagram));
        let mut not_hex = good.to_vec();
        not_hex[3] = b'g';
        assert_eq!(decode_line(&not_hex), Err(LineError::NotHex));
        assert_eq!(decode_line(b"+1"), Err(LineError::NotHex));
        assert_eq!(decode_line(b"garbage!"), Err(LineError::NotHex));
        // A killed peer's partial line followed by a whole one.
        let mut joined = good[..31].to_vec();
        joined.extend_from_slice(good);
        assert!(decode_line(&joined).is_err());
        assert_eq!(decode_line(&[b'a'; MAX_LINE + 2]), Err(LineError::TooLong));
        // Hex of too long a datagram (payload of 256) still fits MAX_LINE but does not decode.
        let mut too_long = datagram(&[0; 255]);
        too_long.push(0);
        let line = encode_line(&too_long);
        assert_eq!(
            decode_line(&line[..line.len() - 1]),
            Err(LineError::NotADatagram)
        );
    }

    #[test]
    fn the_splitter_cuts_lines_across_reads_and_skips_overlong_ones_without_keeping_them() {
        let (lines, unfinished) = split(&[b"ab", b"c\n\nde", b"f\nxy"]);
        assert_eq!(
            lines,
            vec![Ok(b"abc".to_vec()), Ok(Vec::new()), Ok(b"def".to_vec())]
        );
        assert!(unfinished, "xy has no newline");

        let long = vec![b'a'; 3 * MAX_LINE];
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        for chunk in long.chunks(100) {
            splitter.feed(chunk, &mut |line| lines.push(line.map(<[u8]>::to_vec)));
            assert!(splitter.line.len() <= MAX_LINE);
        }
        splitter.feed(b"\nok\n", &mut |line| lines.push(line.map(<[u8]>::to_vec)));
        assert_eq!(lines, vec![Err(LineError::TooLong), Ok(b"ok".to_vec())]);
        assert!(!splitter.finish());

        // Exactly MAX_LINE is kept; one more is too long.
        let (lines, _) = split(&[&[b'a'; MAX_LINE], b"\n", &[b'a'; MAX_LINE + 1], b"\n"]);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].as_ref().is_ok_and(|l| l.len() == MAX_LINE));
        assert_eq!(lines[1], Err(LineError::TooLong));
    }
}

//! Host files through QEMU's Xtensa semihosting (`-semihosting`, `target/xtensa/xtensa-semi.c`): how the
//! on-target checks exchange bytes with processes the test runs on the host. The mTLS check reaches the
//! real broker through two named pipes that `tools/mtls-harness` bridges to TCP ([`PipeSocket`]).
//!
//! QEMU only: on a chip `simcall` is not a host call. Every call blocks the emulated CPU until the host
//! call returns, which is what a blocking socket wants.
use core::ffi::CStr;
use core::fmt;

extern "C" {
    fn semihost_call(nr: u32, a: u32, b: u32, c: u32) -> i32;
}

const SYS_READ: u32 = 3;
const SYS_WRITE: u32 = 4;
const SYS_OPEN: u32 = 5;
const SYS_CLOSE: u32 = 6;
const SYS_SELECT_ONE: u32 = 29;
/// Open flags as xtensa-semi.c takes them (the GDB/newlib values; read-only and write-only are 0 and 1
/// everywhere).
const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 1;
const SELECT_ONE_READ: u32 = 1;

/// A host call that failed; says which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError {
    pub op: &'static str,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "semihosting {} failed", self.op)
    }
}

impl core::error::Error for HostError {}

impl embedded_io::Error for HostError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

fn call(nr: u32, a: u32, b: u32, c: u32, op: &'static str) -> Result<u32, HostError> {
    // SAFETY: the call reads/writes only the guest memory its arguments name, which the callers pass as
    // valid slices / NUL-terminated strings that outlive the call.
    let r = unsafe { semihost_call(nr, a, b, c) };
    u32::try_from(r).map_err(|_| HostError { op })
}

/// An open host file (or pipe), closed on drop.
#[derive(Debug)]
pub struct HostFile(u32);

impl HostFile {
    /// Opens `path` (relative to QEMU's working directory) for reading. On a named pipe this waits for
    /// the writer.
    pub fn open_read(path: &CStr) -> Result<Self, HostError> {
        call(
            SYS_OPEN,
            path.as_ptr() as u32,
            O_RDONLY,
            0,
            "open for reading",
        )
        .map(HostFile)
    }

    /// Opens an existing `path` for writing. On a named pipe this waits for the reader.
    pub fn open_write(path: &CStr) -> Result<Self, HostError> {
        call(
            SYS_OPEN,
            path.as_ptr() as u32,
            O_WRONLY,
            0,
            "open for writing",
        )
        .map(HostFile)
    }

    /// Reads what is there (blocking until something is); 0 = end of file.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        call(
            SYS_READ,
            self.0,
            buf.as_mut_ptr() as u32,
            buf.len() as u32,
            "read",
        )
        .map(|n| n as usize)
    }

    /// Writes all of `bytes`.
    pub fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), HostError> {
        while !bytes.is_empty() {
            let n = call(
                SYS_WRITE,
                self.0,
                bytes.as_ptr() as u32,
                bytes.len() as u32,
                "write",
            )?;
            if n == 0 {
                return Err(HostError {
                    op: "write (nothing written)",
                });
            }
            bytes = &bytes[(n as usize).min(bytes.len())..];
        }
        Ok(())
    }

    /// Whether a read would return at once (bytes, or end of file), waiting up to `timeout_us`.
    pub fn readable_within(&mut self, timeout_us: u32) -> Result<bool, HostError> {
        let timeval = [timeout_us / 1_000_000, timeout_us % 1_000_000];
        call(
            SYS_SELECT_ONE,
            self.0,
            SELECT_ONE_READ,
            timeval.as_ptr() as u32,
            "select",
        )
        .map(|n| n > 0)
    }

    /// Fills `buf` exactly; end of file before that is an error.
    pub fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), HostError> {
        let mut len = 0;
        while len < buf.len() {
            match self.read(&mut buf[len..])? {
                0 => {
                    return Err(HostError {
                        op: "read (end of file too early)",
                    })
                }
                n => len += n,
            }
        }
        Ok(())
    }

    /// Reads until end of file into `buf`; a file longer than `buf` is an error, not a silent cut.
    pub fn read_to_end(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        let mut len = 0;
        loop {
            if len == buf.len() {
                let mut probe = [0u8; 1];
                return match self.read(&mut probe)? {
                    0 => Ok(len),
                    _ => Err(HostError {
                        op: "read (file larger than the buffer)",
                    }),
                };
            }
            match self.read(&mut buf[len..])? {
                0 => return Ok(len),
                n => len += n,
            }
        }
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        let _ = call(SYS_CLOSE, self.0, 0, 0, "close");
    }
}

/// A byte stream to a host process over two named pipes (this side writes `tx`, reads `rx`): the
/// node's socket in the on-target mTLS check. `open` opens `tx` first, then `rx`; the host side must
/// open them in the same order (a named pipe's open waits for its other end).
#[derive(Debug)]
pub struct PipeSocket {
    tx_path: &'static CStr,
    rx_path: &'static CStr,
    tx: Option<HostFile>,
    rx: Option<HostFile>,
    ready_wait_us: u32,
}

impl PipeSocket {
    /// `ready_wait_us`: how long [`read_ready`](embedded_io::ReadReady::read_ready) waits for bytes before
    /// it answers no. It stands for the time that passes between two polls on a chip: without it a node
    /// polling in a tight loop would see its timeouts expire before the host had time to answer.
    pub const fn new(tx_path: &'static CStr, rx_path: &'static CStr, ready_wait_us: u32) -> Self {
        PipeSocket {
            tx_path,
            rx_path,
            tx: None,
            rx: None,
            ready_wait_us,
        }
    }

    /// Waits up to `timeout_us` for bytes (or the end of the stream) from the host.
    pub fn readable_within(&mut self, timeout_us: u32) -> Result<bool, HostError> {
        match &mut self.rx {
            Some(rx) => rx.readable_within(timeout_us),
            None => Err(HostError {
                op: "select (not open)",
            }),
        }
    }
}

impl embedded_io::ErrorType for PipeSocket {
    type Error = HostError;
}

impl embedded_io::Read for PipeSocket {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        match &mut self.rx {
            Some(rx) => rx.read(buf),
            None => Err(HostError {
                op: "read (not open)",
            }),
        }
    }
}

impl embedded_io::Write for PipeSocket {
    fn write(&mut self, buf: &[u8]) -> Result<usize, HostError> {
        match &mut self.tx {
            Some(tx) => tx.write_all(buf).map(|()| buf.len()),
            None => Err(HostError {
                op: "write (not open)",
            }),
        }
    }
    fn flush(&mut self) -> Result<(), HostError> {
        Ok(())
    }
}

impl embedded_io::ReadReady for PipeSocket {
    fn read_ready(&mut self) -> Result<bool, HostError> {
        self.readable_within(self.ready_wait_us)
    }
}

impl tmc_node_tls::Socket for PipeSocket {
    fn open(&mut self) -> Result<(), HostError> {
        self.close();
        self.tx = Some(HostFile::open_write(self.tx_path)?);
        self.rx = Some(HostFile::open_read(self.rx_path)?);
        Ok(())
    }
    fn close(&mut self) {
        // Dropping closes: the host sees end of file on `tx` and drops the TCP connection.
        self.tx = None;
        self.rx = None;
    }
}

//! [`StdTcpSocket`]: a [`Socket`] over `std::net::TcpStream`, for the simulator and tests on Linux.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::string::String;
use std::time::Duration;

use embedded_io::{ErrorType, Read, ReadReady, Write};

use crate::tls::Socket;

/// Connect and I/O timeouts by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP connection to `host:port`, (re)opened by [`Socket::open`].
#[derive(Debug)]
pub struct StdTcpSocket {
    host: String,
    port: u16,
    connect_timeout: Duration,
    io_timeout: Duration,
    stream: Option<TcpStream>,
}

impl StdTcpSocket {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        StdTcpSocket {
            host: host.into(),
            port,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            io_timeout: DEFAULT_IO_TIMEOUT,
            stream: None,
        }
    }

    /// How long `open` waits per address, and how long a read or write may block.
    pub fn with_timeouts(mut self, connect: Duration, io: Duration) -> Self {
        self.connect_timeout = connect;
        self.io_timeout = io;
        self
    }

    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "socket not open"))
    }

    fn connect_any(&self) -> io::Result<TcpStream> {
        let addrs: std::vec::Vec<SocketAddr> =
            (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for the broker");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl ErrorType for StdTcpSocket {
    type Error = io::Error;
}

impl Read for StdTcpSocket {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.stream()?.read(buf)
    }
}

impl Write for StdTcpSocket {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.stream()?.write(buf)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.stream()?.flush()
    }
}

impl ReadReady for StdTcpSocket {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        let stream = self.stream()?;
        stream.set_nonblocking(true)?;
        let mut byte = [0u8; 1];
        let ready = match stream.peek(&mut byte) {
            // Bytes, or end of stream (read returns 0 at once): both "ready".
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e),
        };
        stream.set_nonblocking(false)?;
        ready
    }
}

impl Socket for StdTcpSocket {
    fn open(&mut self) -> Result<(), Self::Error> {
        self.stream = None;
        let stream = self.connect_any()?;
        stream.set_read_timeout(Some(self.io_timeout))?;
        stream.set_write_timeout(Some(self.io_timeout))?;
        // Small records, one per MQTT packet: do not wait for more.
        stream.set_nodelay(true)?;
        self.stream = Some(stream);
        Ok(())
    }

    fn close(&mut self) {
        if let Some(stream) = self.stream.take() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

//! The byte streams under the node: plain TCP (a bring-up listener) and the adapter that tells the sensor
//! loop when the node has closed its connection.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use tmc_sensor_core::node::Transport;

/// How long a TCP connect may take before the node counts the attempt as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A plain TCP connection failure.
#[derive(Debug)]
pub struct TcpError(String);

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Opens a TCP connection to `host:port` (every address the name has, in turn).
pub fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, TcpError> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| TcpError(format!("{host}:{port}: {e}")))?;
    let mut last = TcpError(format!("{host}:{port}: no address"));
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                // One small packet at a time, each waited for: Nagle would only delay it.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = TcpError(format!("{addr}: {e}")),
        }
    }
    Err(last)
}

/// MQTT over plain TCP: what a bring-up listener (no TLS) takes.
#[derive(Debug)]
pub struct PlainTcp {
    host: String,
    port: u16,
    stream: Option<TcpStream>,
}

impl PlainTcp {
    pub fn new(host: &str, port: u16) -> Self {
        PlainTcp {
            host: host.to_owned(),
            port,
            stream: None,
        }
    }

    fn stream(&mut self) -> Result<&mut TcpStream, TcpError> {
        self.stream
            .as_mut()
            .ok_or_else(|| TcpError("not connected".into()))
    }
}

impl Transport for PlainTcp {
    type Error = TcpError;

    fn connect(&mut self) -> Result<(), TcpError> {
        self.stream = Some(tcp_connect(&self.host, self.port)?);
        Ok(())
    }

    fn send(&mut self, data: &[u8]) -> Result<(), TcpError> {
        self.stream()?
            .write_all(data)
            .map_err(|e| TcpError(format!("send: {e}")))
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TcpError> {
        let stream = self.stream()?;
        // Non-blocking only for the read: sends block until the kernel took the bytes.
        stream
            .set_nonblocking(true)
            .map_err(|e| TcpError(format!("recv: {e}")))?;
        let read = stream.read(buf);
        let _ = stream.set_nonblocking(false);
        match read {
            Ok(0) if !buf.is_empty() => Err(TcpError("the broker closed the connection".into())),
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => Ok(0),
            Err(e) => Err(TcpError(format!("recv: {e}"))),
        }
    }

    fn close(&mut self) {
        if let Some(stream) = self.stream.take() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A transport that remembers whether the node closed it: a TLS connection is one attempt, so the sensor
/// loop makes a new one for the next.
pub struct Watched<'t, T> {
    inner: &'t mut T,
    opened: bool,
    closed: bool,
}

impl<'t, T: Transport> Watched<'t, T> {
    pub fn new(inner: &'t mut T) -> Self {
        Watched {
            inner,
            opened: false,
            closed: false,
        }
    }

    /// The node closed the connection (after a failure): this transport is used up.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Leaves: MQTT DISCONNECT first when the session is up (the broker then logs a clean disconnect
    /// rather than a lost client), then closes.
    pub fn leave(&mut self, connected: bool) {
        if connected && self.opened && !self.closed {
            let _ = self.inner.send(&tmc_sensor_core::mqtt::DISCONNECT);
        }
        self.close();
    }
}

impl<T: Transport> Transport for Watched<'_, T> {
    type Error = T::Error;

    fn connect(&mut self) -> Result<(), T::Error> {
        self.opened = true;
        self.inner.connect()
    }

    fn send(&mut self, data: &[u8]) -> Result<(), T::Error> {
        self.inner.send(data)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, T::Error> {
        self.inner.recv(buf)
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.inner.close();
        }
    }
}

//! The byte streams under the node: plain TCP (a bring-up listener) and the adapter that tells the sensor
//! loop when the node has closed its connection.

use std::fmt;

use embedded_io::{Read, ReadReady, Write};
use tmc_node_tls::{Socket, StdTcpSocket};
use tmc_sensor_core::node::Transport;

/// A plain TCP connection failure.
#[derive(Debug)]
pub struct TcpError(String);

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// MQTT over plain TCP: what a bring-up listener (no TLS) takes. The same socket the TLS client runs on,
/// without TLS.
#[derive(Debug)]
pub struct PlainTcp {
    socket: StdTcpSocket,
    address: String,
}

impl PlainTcp {
    pub fn new(host: &str, port: u16) -> Self {
        PlainTcp {
            socket: StdTcpSocket::new(host, port),
            address: format!("{host}:{port}"),
        }
    }

    fn failed(&self, doing: &str, e: std::io::Error) -> TcpError {
        TcpError(format!("{doing} {}: {e}", self.address))
    }
}

impl Transport for PlainTcp {
    type Error = TcpError;

    fn connect(&mut self) -> Result<(), TcpError> {
        self.socket.open().map_err(|e| self.failed("connect", e))
    }

    fn send(&mut self, data: &[u8]) -> Result<(), TcpError> {
        self.socket
            .write_all(data)
            .map_err(|e| self.failed("send to", e))
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TcpError> {
        // Non-blocking: only what has arrived (or the end of the stream) is read.
        if !self
            .socket
            .read_ready()
            .map_err(|e| self.failed("recv from", e))?
        {
            return Ok(0);
        }
        match self.socket.read(buf) {
            Ok(0) if !buf.is_empty() => Err(TcpError("the broker closed the connection".into())),
            Ok(n) => Ok(n),
            Err(e) => Err(self.failed("recv from", e)),
        }
    }

    fn close(&mut self) {
        self.socket.close();
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

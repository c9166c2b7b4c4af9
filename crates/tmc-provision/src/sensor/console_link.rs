//! A node's UART console as lines: the tty opened raw (115200 8N1, no echo, no line discipline), lines
//! read with a deadline.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, BaudRate, ControlFlags, SetArg};

/// The console's speed (the firmware's UART0).
const BAUD: BaudRate = BaudRate::B115200;

/// The node's console.
#[derive(Debug)]
pub(crate) struct ConsoleLink {
    file: File,
    path: PathBuf,
    /// Bytes received after the last complete line.
    partial: Vec<u8>,
}

impl ConsoleLink {
    /// Opens `path` (a serial adapter or a pty) and makes it raw.
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        // O_NOCTTY: the node's console must not become this process's controlling terminal.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY)
            .open(path)?;
        let mut settings = termios::tcgetattr(file.as_fd())?;
        termios::cfmakeraw(&mut settings);
        termios::cfsetspeed(&mut settings, BAUD)?;
        // No modem lines to wait for; receiver on.
        settings.control_flags |= ControlFlags::CLOCAL | ControlFlags::CREAD;
        termios::tcsetattr(file.as_fd(), SetArg::TCSANOW, &settings)?;
        Ok(ConsoleLink {
            file,
            path: path.to_path_buf(),
            partial: Vec::new(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `line` and its `\n`.
    pub(crate) fn send_line(&mut self, line: &str) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.file.write_all(&bytes)?;
        self.file.flush()
    }

    /// The next line (without `\r\n`), or `None` when `deadline` passed first.
    pub(crate) fn read_line(&mut self, deadline: Instant) -> std::io::Result<Option<String>> {
        loop {
            if let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, timeout)? == 0 {
                continue;
            }
            let mut buf = [0u8; 512];
            let n = self.file.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the console closed",
                ));
            }
            self.partial.extend_from_slice(&buf[..n]);
        }
    }

    /// What was received after the last complete line (for an error message).
    pub(crate) fn partial_line(&self) -> String {
        String::from_utf8_lossy(&self.partial).into_owned()
    }
}

//! The pty double of a flashed node (`tmc-node-console-sim`): the console on a pseudo-terminal, with a
//! simulated ATECC608A kept in a 0600 file and the identity sector in another 0600 file, so that
//! `tmc-provision sensor-console` can be tested without a board.
//!
//! It prints the pty's path on stdout, then a banner on the pty as the firmware does; the line `provision`
//! typed at the banner enters provisioning mode. It exits after `exit` (once the other side has closed the
//! pty, so that the `ok exit` line is not lost in the pty's hangup) or on SIGTERM/SIGINT.

use std::boxed::Box;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::string::String;
use std::vec;
use std::vec::Vec;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use thiserror::Error;
use tmc_atecc::sim::file::SimFileError;
use tmc_atecc::sim::{Model, SimAtecc};
use tmc_atecc::Atecc;
use tmc_node_tls::atecc::AteccElement;
use tmc_node_tls::identity::SECTOR_LEN;
use tmc_secret_file::{Overwrite, SecretFileError};

use crate::{Console, EnterWatch, IdentityFlash, Step, ENTER_COMMAND};

/// The identity sector in a file: a whole 4096-byte sector image (absent: erased), written atomically 0600.
#[derive(Debug, Clone)]
pub struct FileFlash {
    path: PathBuf,
}

impl FileFlash {
    /// The sector kept in `path`.
    pub fn new(path: &Path) -> Self {
        FileFlash {
            path: path.to_path_buf(),
        }
    }

    /// The whole sector as it is now (0xFF where nothing was written).
    pub fn sector(&self) -> Result<Vec<u8>, SecretFileError> {
        let mut sector = vec![0xFF; SECTOR_LEN];
        if self.path.exists() {
            let bytes = tmc_secret_file::read_private(&self.path)?;
            let len = bytes.len().min(SECTOR_LEN);
            sector[..len].copy_from_slice(&bytes[..len]);
        }
        Ok(sector)
    }
}

impl IdentityFlash for FileFlash {
    type Error = SecretFileError;

    fn read(&mut self, buf: &mut [u8]) -> Result<(), Self::Error> {
        let sector = self.sector()?;
        let len = buf.len().min(SECTOR_LEN);
        buf[..len].copy_from_slice(&sector[..len]);
        buf[len..].fill(0xFF);
        Ok(())
    }

    fn write(&mut self, record: &[u8]) -> Result<(), Self::Error> {
        let mut sector = vec![0xFF; SECTOR_LEN];
        let len = record.len().min(SECTOR_LEN);
        sector[..len].copy_from_slice(&record[..len]);
        tmc_secret_file::write_private(&self.path, &sector, Overwrite::Replace)
    }
}

/// What the double runs on.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The simulated chip's file (created 0600 if absent).
    pub chip: PathBuf,
    /// The identity sector's file (absent: an erased sector).
    pub flash: PathBuf,
    /// The device key's slot.
    pub slot: u8,
}

/// Why the double stopped.
#[derive(Debug, Error)]
pub enum SimError {
    /// The chip file.
    #[error("chip {}: {source}", path.display())]
    Chip {
        /// The file.
        path: PathBuf,
        /// Why.
        source: SimFileError,
    },
    /// The pseudo-terminal or the signals.
    #[error("{doing}: {source}")]
    Sys {
        /// What was being done.
        doing: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// Reading or writing the pty.
    #[error("pty: {0}")]
    Io(#[from] std::io::Error),
}

fn sys(doing: &'static str) -> impl FnOnce(nix::Error) -> SimError {
    move |source| SimError::Sys { doing, source }
}

/// Output collected while a chunk of input is handled, then written to the pty in one go.
#[derive(Default)]
struct Output(String);

impl std::fmt::Write for Output {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.push_str(s);
        Ok(())
    }
}

/// Runs the double until `exit` or SIGTERM/SIGINT. `on_pty` gets the pty's path once it is ready (the
/// binary prints it).
pub fn run(options: &SimOptions, on_pty: impl FnOnce(&Path)) -> Result<(), SimError> {
    let chip_error = |source| SimError::Chip {
        path: options.chip.clone(),
        source,
    };
    let sim = tmc_atecc::sim::file::load_or_create(&options.chip, Model::Atecc608a)
        .map_err(chip_error)?;
    let mut atecc = Atecc::new(sim.i2c(), sim.delay());
    let mut flash = FileFlash::new(&options.flash);

    // Signals as a file descriptor: the loop waits on the pty and on them, no handler needed.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block().map_err(sys("blocking SIGTERM"))?;
    let signal_fd = SignalFd::new(&signals).map_err(sys("signalfd"))?;

    let pty = nix::pty::openpty(None, None).map_err(sys("openpty"))?;
    // A UART: no echo, no line discipline, bytes as they are.
    let mut termios = tcgetattr(&pty.slave).map_err(sys("tcgetattr"))?;
    cfmakeraw(&mut termios);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &termios).map_err(sys("tcsetattr"))?;
    let path = nix::unistd::ttyname(&pty.slave).map_err(sys("ttyname"))?;
    // Our own end of the slave stays open until `exit`: a PC side that closes the pty in between does
    // not hang it up.
    let slave = pty.slave;
    let mut master = File::from(pty.master);
    on_pty(&path);

    let mut out = Output::default();
    writeln!(
        out,
        "\ntmc-sensor console double, chip {}, identity sector {}\ntype {ENTER_COMMAND} to enter provisioning mode",
        options.chip.display(),
        options.flash.display()
    )
    .map_err(|_| std::io::Error::other("formatting the banner"))?;
    master.write_all(out.0.as_bytes())?;

    let mut banner = EnterWatch::new();
    let mut console = Box::new(Console::new());
    let mut provisioning = false;
    let mut buf = [0u8; 256];
    loop {
        let mut fds = [
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN),
        ];
        poll(&mut fds, PollTimeout::NONE).map_err(sys("poll"))?;
        if fds[1].any().unwrap_or(false) {
            return Ok(());
        }
        let n = master.read(&mut buf)?;
        let mut out = Output::default();
        let mut step = Step::Stay;
        for &byte in &buf[..n] {
            if !provisioning {
                if banner.push(byte) {
                    provisioning = true;
                    console
                        .start(&mut out)
                        .map_err(|_| std::io::Error::other("output"))?;
                }
                continue;
            }
            let mut element = AteccElement {
                chip: &mut atecc,
                slot: options.slot,
            };
            step = console
                .feed(byte, &mut element, &mut flash, &mut out)
                .map_err(|_| std::io::Error::other("output"))?;
            save_if_changed(&sim, &options.chip).map_err(chip_error)?;
            if step == Step::Exit {
                break;
            }
        }
        master.write_all(out.0.as_bytes())?;
        if step == Step::Exit {
            drop(slave);
            return wait_for_hangup(&master, &signal_fd);
        }
    }
}

/// After `exit`: waits until the other side has closed the pty (or a signal). Exiting at once would hang
/// the pty up, and the hangup discards the `ok exit` the other side may not have read yet.
fn wait_for_hangup(master: &File, signal_fd: &SignalFd) -> Result<(), SimError> {
    loop {
        let mut fds = [
            PollFd::new(master.as_fd(), PollFlags::empty()),
            PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN),
        ];
        poll(&mut fds, PollTimeout::NONE).map_err(sys("poll"))?;
        let hung_up = fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR));
        if hung_up || fds[1].any().unwrap_or(false) {
            return Ok(());
        }
    }
}

/// A key made by GenKey survives, as in a real chip.
fn save_if_changed(sim: &SimAtecc, path: &Path) -> Result<(), SimFileError> {
    if sim.nonvolatile_changed() {
        tmc_atecc::sim::file::save(path, sim)?;
    }
    Ok(())
}

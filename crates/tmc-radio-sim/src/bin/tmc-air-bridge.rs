//! `tmc-air-bridge --air DIR --port PATH [--name NAME]`: carries the simulated air of directory DIR over a
//! character device (e.g. the virtio-serial port `/dev/virtio-ports/tmc.air` between two VMs), with a bridge
//! of its own at the other end (see `tmc_radio_sim::air_bridge`).
//!
//! When the port ends (the peer is gone: a virtio-serial port whose host side is disconnected reads end of
//! file), it logs that once and reopens the port every 500 ms until the peer is back. It runs until killed.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use tmc_radio_sim::air::AirSpec;
use tmc_radio_sim::air_bridge::AirBridge;

const USAGE: &str = "usage: tmc-air-bridge --air DIR --port PATH [--name NAME]";
const HELP: &str = "\
Carries the simulated air of an air directory over a character device, to a bridge at its other end.

  --air DIR     the air directory (sim:DIR is accepted too; loss, corrupt and seed belong to the nodes)
  --port PATH   the device, opened read+write (e.g. /dev/virtio-ports/tmc.air)
  --name NAME   the bridge's node name in DIR (default: bridge)";
/// Pause between attempts to reopen the port while the peer is gone.
const REOPEN_PAUSE: Duration = Duration::from_millis(500);
/// How long a write waits for the port to take data before the datagram is dropped.
const WRITE_WAIT: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Options {
    air: PathBuf,
    port: PathBuf,
    name: String,
}

enum Command {
    Run(Options),
    Help,
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            println!("{USAGE}\n\n{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("tmc-air-bridge: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let bridge = match AirBridge::join(&options.air, &options.name) {
        Ok(bridge) => bridge,
        Err(e) => {
            eprintln!("tmc-air-bridge: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "tmc-air-bridge: on the air as {}, carrying it over {}",
        bridge.socket_path().display(),
        options.port.display()
    );
    carry_forever(&bridge, &options.port)
}

/// Opens `port` and carries the air over it, again and again.
fn carry_forever(bridge: &AirBridge, port: &Path) -> ! {
    let mut log = TroubleLog::default();
    loop {
        match open_port(port) {
            Err(e) => log.report(port, format!("cannot open: {e}; retrying every 500 ms")),
            Ok((reader, writer)) => {
                let end = bridge.carry(reader, writer);
                if end.bytes_read > 0 {
                    // It was up: whatever happens next is news.
                    log.forget();
                }
                let what = match (&end.error, end.bytes_read) {
                    (None, 0) => {
                        "end of file: the peer is not connected; reopening every 500 ms".to_owned()
                    }
                    _ => format!("{end}; reopening every 500 ms until the peer is back"),
                };
                log.report(port, what);
            }
        }
        thread::sleep(REOPEN_PAUSE);
    }
}

/// Logs each new kind of trouble once, so that a peer that stays away (each reopened port reads end of file
/// at once) does not fill the log.
#[derive(Default)]
struct TroubleLog {
    last: Option<String>,
}

impl TroubleLog {
    fn report(&mut self, port: &Path, what: String) {
        if self.last.as_ref() != Some(&what) {
            eprintln!("tmc-air-bridge: {}: {what}", port.display());
            self.last = Some(what);
        }
    }

    fn forget(&mut self) {
        self.last = None;
    }
}

fn open_port(port: &Path) -> io::Result<(File, PortWriter)> {
    let file = OpenOptions::new().read(true).write(true).open(port)?;
    // One open file for both directions: a virtio-serial port can be open only once at a time.
    let writer = PortWriter(file.try_clone()?);
    Ok((file, writer))
}

/// The port's writing side, which gives up rather than block: a virtio-serial port blocks writers while its
/// host side is not connected, and the bridge's socket reader, which writes, would hang until the peer is
/// back (then send it stale packets) instead of dropping what nobody hears.
struct PortWriter(File);

impl Write for PortWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let wait = Timespec {
            tv_sec: 0,
            tv_nsec: WRITE_WAIT.as_nanos().try_into().unwrap_or(0),
        };
        let mut fds = [PollFd::new(&self.0, PollFlags::OUT)];
        rustix::event::poll(&mut fds, Some(&wait))?;
        if !fds.iter().all(|fd| fd.revents().contains(PollFlags::OUT)) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the port takes no data (is the peer connected?)",
            ));
        }
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let (mut air, mut port, mut name) = (None, None, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(arg) = arg.to_str().map(str::to_owned) else {
            return Err(format!("argument {arg:?} is not UTF-8"));
        };
        // --key VALUE or --key=VALUE
        let (key, inline_value) = match arg.split_once('=') {
            Some((key, value)) if key.starts_with("--") => (key.to_owned(), Some(value.into())),
            _ => (arg, None),
        };
        let slot: &mut Option<OsString> = match key.as_str() {
            "--air" => &mut air,
            "--port" => &mut port,
            "--name" => &mut name,
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = match inline_value {
            Some(value) => value,
            None => args.next().ok_or_else(|| format!("{key} needs a value"))?,
        };
        if value.is_empty() {
            return Err(format!("{key} is empty"));
        }
        if slot.replace(value).is_some() {
            return Err(format!("{key} is given twice"));
        }
    }
    let air = air.ok_or("--air DIR is required")?;
    let port = port.ok_or("--port PATH is required")?;
    let name = match name {
        None => "bridge".to_owned(),
        Some(name) => name
            .into_string()
            .map_err(|name| format!("--name {name:?} is not UTF-8"))?,
    };
    Ok(Command::Run(Options {
        air: air_dir(air)?,
        port: port.into(),
        name,
    }))
}

/// The directory of `--air`: a path, or the `sim:DIR` spec the nodes are given, without their options.
fn air_dir(air: OsString) -> Result<PathBuf, String> {
    let Some(text) = air.to_str() else {
        return Ok(air.into());
    };
    let spec: AirSpec = text.parse().map_err(|e| format!("--air: {e}"))?;
    if spec != AirSpec::new(&spec.dir) {
        return Err(format!(
            "--air {text:?}: loss, corrupt and seed are the nodes' settings, not the bridge's"
        ));
    }
    Ok(spec.dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(OsString::from))
    }

    fn options(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Run(options)) => options,
            Ok(Command::Help) => panic!("{args:?}: help, not options"),
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn options_parse_in_both_spellings_with_the_default_name() {
        let o = options(&[
            "--air",
            "/var/lib/tmc/air",
            "--port=/dev/virtio-ports/tmc.air",
        ]);
        assert_eq!(o.air, Path::new("/var/lib/tmc/air"));
        assert_eq!(o.port, Path::new("/dev/virtio-ports/tmc.air"));
        assert_eq!(o.name, "bridge");
        let o = options(&["--name", "b2", "--port", "p", "--air", "sim:/air"]);
        assert_eq!((o.air.to_str(), o.name.as_str()), (Some("/air"), "b2"));
        assert!(matches!(parse(&["--air", "a", "-h"]), Ok(Command::Help)));
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        for (args, expected) in [
            (&["--port", "p"][..], "--air DIR is required"),
            (&["--air", "a"][..], "--port PATH is required"),
            (&["--air"][..], "--air needs a value"),
            (
                &["--air", "a", "--air", "b", "--port", "p"][..],
                "given twice",
            ),
            (
                &["--air", "a", "--port", "p", "--speed", "3"][..],
                "unknown argument \"--speed\"",
            ),
            (&["--air=", "--port", "p"][..], "--air is empty"),
            (
                &["--air", "sim:/a,loss=0.5", "--port", "p"][..],
                "nodes' settings",
            ),
            (
                &["--air", "sim:/a,bogus", "--port", "p"][..],
                "not key=value",
            ),
        ] {
            match parse(args) {
                Err(e) => assert!(e.contains(expected), "{args:?}: {e}"),
                Ok(_) => panic!("{args:?} parsed"),
            }
        }
    }
}

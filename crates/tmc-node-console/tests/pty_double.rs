//! The `tmc-node-console-sim` binary: banner, `provision`, the console over a pty, `exit` and SIGTERM.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use tmc_node_console::PROMPT;

/// The double, stopped by pid (SIGTERM) when dropped.
struct Double {
    child: Child,
    pty: PathBuf,
}

impl Double {
    fn start(dir: &Path) -> Self {
        let mut child = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-node-console-sim"))
            .arg("--chip")
            .arg(dir.join("node.chip"))
            .arg("--flash")
            .arg(dir.join("node.flash"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Double {
            child,
            pty: PathBuf::from(line.trim_end()),
        }
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = tmc_testkit::signal(self.child.id(), "TERM");
        }
        let _ = self.child.wait();
    }
}

fn open(pty: &Path) -> (File, BufReader<File>) {
    let file = OpenOptions::new().read(true).write(true).open(pty).unwrap();
    let reader = BufReader::new(file.try_clone().unwrap());
    (file, reader)
}

fn line(reader: &mut BufReader<File>) -> String {
    let mut line = String::new();
    assert!(reader.read_line(&mut line).unwrap() > 0);
    line.trim_end().to_owned()
}

#[test]
fn provision_at_the_banner_enters_the_console_and_exit_ends_the_double() {
    let dir = tempfile::tempdir().unwrap();
    let mut double = Double::start(dir.path());
    let (mut tty, mut reader) = open(&double.pty);
    assert_eq!(line(&mut reader), "");
    assert!(line(&mut reader).starts_with("tmc-sensor console double"));
    assert_eq!(
        line(&mut reader),
        "type provision to enter provisioning mode"
    );
    // Anything else at the banner is boot-time noise.
    tty.write_all(b"show\r\nprovision\r\n").unwrap();
    assert_eq!(line(&mut reader), PROMPT);
    tty.write_all(b"show\n").unwrap();
    assert!(line(&mut reader).starts_with("identity: none (no identity stored"));
    tty.write_all(b"exit\n").unwrap();
    assert_eq!(line(&mut reader), "ok exit");
    drop((tty, reader));
    // Once the other side closed the pty.
    assert!(double.child.wait().unwrap().success());
    assert!(!dir.path().join("node.flash").exists(), "nothing written");
}

#[test]
fn sigterm_ends_the_double() {
    let dir = tempfile::tempdir().unwrap();
    let mut double = Double::start(dir.path());
    tmc_testkit::signal(double.child.id(), "TERM").unwrap();
    assert!(double.child.wait().unwrap().success());
}

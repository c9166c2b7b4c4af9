//! What the integration tests share: `tmc-web` started as a process over a receiver configuration and its
//! files in a temporary directory, and plain HTTP requests to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// Guards a test against a server that never answers; not a synchronisation.
pub const IO_LIMIT: Duration = Duration::from_secs(20);

pub struct Web {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Web {
    /// Starts tmc-web over a receiver whose output file already holds `readings`, on any free port.
    pub fn start(readings: &str) -> Web {
        Web::start_with(readings, "", &["--listen", "127.0.0.1:0"])
    }

    /// As [`Web::start`], with `tables` appended to receiver.toml and `args` on tmc-web's command line.
    pub fn start_with(readings: &str, tables: &str, args: &[&str]) -> Web {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("receiver.toml"),
            format!(
                "state_dir = \"state\"\n[radio]\nsim = \"sim:/tmp/unused-air\"\n[link]\npeers = [10]\n\
                 [envelope]\nkeys = \"keys.toml\"\n[output]\nfile = \"state/readings.jsonl\"\n{tables}"
            ),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        std::fs::write(dir.path().join("state/readings.jsonl"), readings).unwrap();
        let mut cmd = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-web"));
        cmd.arg("--receiver-config")
            .arg(dir.path().join("receiver.toml"))
            .args(args)
            .args(["--poll-ms", "50"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.strip_suffix('/'))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Web { child, addr, dir }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn connect(&self, request: &str) -> TcpStream {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(IO_LIMIT)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        stream
    }

    /// The whole answer (the server closes the connection after it).
    pub fn get(&self, path: &str) -> (String, String) {
        self.request(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
    }

    pub fn request(&self, request: &str) -> (String, String) {
        let mut answer = String::new();
        self.connect(request).read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        (head.to_owned(), body.to_owned())
    }
}

pub fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

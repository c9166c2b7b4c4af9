//! Helpers for TMC's integration tests.

pub mod chromium;

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// A command that runs one of the workspace's binaries.
///
/// When the tests themselves run under an emulator (`make test` runs the aarch64 build under
/// `qemu-aarch64-static`), a spawned aarch64 binary needs the emulator too, and the kernel may have
/// no binfmt handler for it. `TMC_TEST_RUNNER` (for example
/// `qemu-aarch64-static -L /usr/aarch64-linux-gnu`) is then put in front of the binary.
pub fn bin_command(path: &str) -> Command {
    match std::env::var("TMC_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap_or_default());
            cmd.args(words).arg(path);
            cmd
        }
        _ => Command::new(path),
    }
}

/// Runs `cmd` with `stdin` as its standard input and collects its output.
pub fn run_with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn the command under test");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .expect("write the command's stdin");
    child.wait_with_output().expect("wait for the command")
}

/// Asserts the command succeeded and returns its stdout.
pub fn success_stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

/// Asserts the command failed with status 1 and gave exactly one reason line on stderr (log lines,
/// such as warnings, may come before it), and returns that line.
pub fn failure_reason(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected failure; stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let text = String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8");
    let reasons: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("WARN"))
        .collect();
    assert_eq!(reasons.len(), 1, "one reason line expected: {text:?}");
    reasons[0].to_owned()
}

/// A free TCP port on 127.0.0.1 (the OS picks it; there is a small window in which another
/// process could take it, acceptable for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// The real mosquitto from Debian, started on 127.0.0.1 by a test and killed (by pid) on drop.
pub struct Mosquitto {
    child: std::process::Child,
    pub port: u16,
    pub log: std::path::PathBuf,
}

impl Mosquitto {
    /// Path of the mosquitto binary (Debian puts it in /usr/sbin, not always on PATH).
    pub fn binary() -> Option<std::path::PathBuf> {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .chain([std::path::PathBuf::from("/usr/sbin")])
            .map(|d| d.join("mosquitto"))
            .find(|p| p.is_file())
    }

    /// Starts mosquitto with `include_dir` holding the configuration under test (which must make it
    /// listen on 127.0.0.1:`port`) and waits until the port accepts connections.
    /// The test harness's own settings (pid, persistence and log in `state_dir`) go in a main file.
    pub fn start(
        include_dir: &std::path::Path,
        state_dir: &std::path::Path,
        port: u16,
    ) -> Mosquitto {
        Self::try_start(include_dir, state_dir, port).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`start`](Self::start) that reports failure instead of panicking (for programs such as the demo).
    pub fn try_start(
        include_dir: &std::path::Path,
        state_dir: &std::path::Path,
        port: u16,
    ) -> Result<Mosquitto, String> {
        let binary = Self::binary().ok_or("mosquitto is not installed: run `make deps`")?;
        let main = state_dir.join("mosquitto-main.conf");
        let log = state_dir.join("mosquitto.log");
        // `user root`: the test runs as root and the broker key is 0600 root; on a Pi the first-boot
        // setup hands the key to the mosquitto user instead.
        std::fs::write(
            &main,
            format!(
                "user root\npersistence_location {state}/\nlog_dest file {log}\nlog_type all\ninclude_dir {dir}\n",
                state = state_dir.display(),
                log = log.display(),
                dir = include_dir.display()
            ),
        )
        .map_err(|e| format!("writing {}: {e}", main.display()))?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&main)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let mut broker = Mosquitto { child, port, log };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                return Err(format!(
                    "mosquitto exited ({status}) before listening:\n{}",
                    broker.log_text()
                ));
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!(
                    "mosquitto did not listen on {port}:\n{}",
                    broker.log_text()
                ));
            }
            // Polling a port another process opens: there is nothing to wait on instead.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(broker)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the broker as systemd would (SIGTERM): it saves its persistence database (sessions and queued
    /// messages) before exiting, so a new broker on the same state directory resumes them.
    pub fn stop(mut self) {
        let _ = signal(self.child.id(), "TERM");
        let _ = self.child.wait();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends signal `name` (`TERM`, `KILL`, …) to process `pid` with kill(1): std can only SIGKILL a child, and the
/// tests stop services the way systemd does.
pub fn signal(pid: u32, name: &str) -> std::io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("kill -{name} {pid} failed")))
    }
}

/// A Prometheus scrape (text format), parsed by a Prometheus text parser.
pub struct Metrics {
    scrape: prometheus_parse::Scrape,
}

impl Metrics {
    /// Parses `body`; panics on text that is not Prometheus' text format.
    pub fn parse(body: &str) -> Metrics {
        let lines = body.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines)
            .unwrap_or_else(|e| panic!("not a Prometheus scrape ({e}):\n{body}"));
        Metrics { scrape }
    }

    /// The value of the counter or gauge `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let sample = self.scrape.samples.iter().find(|s| {
            s.metric == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(k).is_some_and(|l| l == *v))
        })?;
        match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        }
    }

    /// The buckets of the histogram `name` (without labels) as `(upper bound, cumulative count)`, the last
    /// bound +Inf.
    pub fn histogram(&self, name: &str) -> Option<Vec<(f64, f64)>> {
        let sample = self.scrape.samples.iter().find(|s| s.metric == name)?;
        match &sample.value {
            prometheus_parse::Value::Histogram(buckets) => {
                Some(buckets.iter().map(|b| (b.less_than, b.count)).collect())
            }
            _ => None,
        }
    }
}

/// `promtool check metrics`: Prometheus' own lint of a scrape (names, `_total`, units, types, help). Where
/// promtool is not installed (Debian's `prometheus` package, which `make deps` installs) the check is skipped
/// with a message, unless `TMC_REQUIRE_PROMTOOL` is set, as `make test` does.
pub fn promtool_check_metrics(body: &str) {
    let mut cmd = Command::new("promtool");
    cmd.args(["check", "metrics"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if std::env::var_os("TMC_REQUIRE_PROMTOOL").is_none() => {
            eprintln!("SKIPPED promtool check metrics: promtool cannot run ({e}); `make deps` installs it");
            return;
        }
        Err(e) => {
            panic!("promtool check metrics: {e} (TMC_REQUIRE_PROMTOOL is set: run `make deps`)")
        }
    };
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(body.as_bytes())
        .expect("write promtool's stdin");
    let output = child.wait_with_output().expect("wait for promtool");
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

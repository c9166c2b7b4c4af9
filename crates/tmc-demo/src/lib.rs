//! A whole TMC site on one machine, for `make demo` and for the end-to-end and fault tests.
//!
//! [`SiteFiles::create`] makes a throwaway site under a directory: the PKI (CA, broker certificate that also
//! names 127.0.0.1, the relay's certificate, and for each sensor a simulated ATECC608A holding its key with
//! a certificate issued from the chip's CSR), the envelope key ring (0600), the mosquitto mTLS drop-in (on
//! 127.0.0.1 only), and `relay.toml` / `receiver.toml` joined by a simulated air directory. The sensors
//! (`tmc-sensor-sim`) run the firmware's node code over the node's TLS client, signing with their chips.
//! [`Service`] runs one of the real binaries (`tmc-relay run`, `tmc-receiver run`, `tmc-sensor-sim`) and
//! stops it by pid: SIGTERM for an orderly stop, SIGKILL for a crash.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use tmc_config::listen::ListenSection;
use tmc_config::mqtt::BrokerConfig;
use tmc_config::radio::RadioSection;
use tmc_config::receiver::ReceiverFile;
pub use tmc_config::receiver::{OutputSection, UpstreamSection};
use tmc_config::relay::RelayConfig;
use tmc_envelope::{KeyRing, Overwrite};
use tmc_pki::{broker, Role, Site, SiteInit, Validity};

/// Relay and gateway node addresses (as at the existing sites: node 10 → gateway 1).
pub const RELAY_NODE: u8 = 10;
pub const GATEWAY_NODE: u8 = 1;

/// How the site is made.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    pub sensors: usize,
    /// Broker TLS port on 127.0.0.1.
    pub broker_port: u16,
    /// Loss and corruption probabilities on the simulated air (each receiver draws its own).
    pub loss: f64,
    pub corruption: f64,
    /// Duty cycle of the simulated air in percent (1 % is the law at 868.0 MHz; tests that cannot wait an
    /// hour for the budget raise it).
    pub duty_cycle: f64,
    /// Board preset whose frequency and modem the air simulates (default: RadioHead's, 868.0 MHz, SF7).
    pub board: Option<PathBuf>,
    /// Receiver's `[upstream]` table.
    pub upstream: Option<UpstreamSection>,
    /// Receiver's `[output]` table.
    pub output: OutputSection,
    /// Relay `[link]` back-off in seconds (short in tests).
    pub backoff: f64,
    /// Relay `[envelope] max_batch` (readings per token), when not the default.
    pub max_batch: Option<usize>,
    /// Receiver `[envelope] legacy`: also accept the old deployment's frames.
    pub legacy: bool,
    /// Relay and receiver `[metrics] listen`, when they serve metrics.
    pub relay_metrics: Option<SocketAddr>,
    pub receiver_metrics: Option<SocketAddr>,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            sensors: 3,
            broker_port: 8883,
            loss: 0.05,
            corruption: 0.0,
            duty_cycle: 1.0,
            board: None,
            upstream: None,
            output: OutputSection {
                stdout: true,
                file: Some("readings.jsonl".into()),
            },
            backoff: 2.0,
            max_batch: None,
            legacy: false,
            relay_metrics: None,
            receiver_metrics: None,
        }
    }
}

/// The files of a throwaway site.
pub struct SiteFiles {
    pub dir: PathBuf,
    pub site: Site,
    pub sensors: Vec<String>,
    pub broker_port: u16,
}

impl SiteFiles {
    /// Makes the site in `dir` (created if missing). A relative `dir` is taken from the current directory once,
    /// here: the services run in the site directory and are given its paths, which must not be relative.
    pub fn create(dir: &Path, options: &SiteOptions) -> anyhow::Result<SiteFiles> {
        let dir = &std::path::absolute(dir)
            .with_context(|| format!("site directory {}", dir.display()))?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let site = Site::init(
            &dir.join("site"),
            &SiteInit {
                extra_names: vec!["127.0.0.1".into()],
                ..SiteInit::default()
            },
        )?;
        site.issue("relay", Role::Relay, &[], Validity::days(30))?;
        let sensors: Vec<String> = (1..=options.sensors)
            .map(|i| format!("sensor{i}"))
            .collect();
        // Each sensor's key is made in its own simulated ATECC608A (SITE/chips/<name>.atecc) and certified
        // from the chip's CSR, before the broker's ACL is written (it lists the sensors).
        for name in &sensors {
            tmc_sensor_sim::enroll_sensor(&site, name, &[])?;
        }
        KeyRing::generate(1)?.save(&dir.join("keys.toml"), Overwrite::Refuse)?;
        broker::write(
            &site,
            &broker::BrokerOptions::loopback(options.broker_port),
            &dir.join("broker"),
        )?;
        for sub in ["broker-state", "relay-state", "receiver-state", "air"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let files = SiteFiles {
            dir: dir.to_owned(),
            site,
            sensors,
            broker_port: options.broker_port,
        };
        let relay = relay_config(files.site.dir(), files.broker_port, options);
        std::fs::write(
            files.relay_config(),
            relay.to_toml("Throwaway demo relay: the site broker on 127.0.0.1, the simulated air."),
        )?;
        let receiver = receiver_config(options);
        std::fs::write(
            files.receiver_config(),
            receiver.to_toml("Throwaway demo receiver on the simulated air."),
        )?;
        Ok(files)
    }

    pub fn relay_config(&self) -> PathBuf {
        self.dir.join("relay.toml")
    }

    pub fn receiver_config(&self) -> PathBuf {
        self.dir.join("receiver.toml")
    }

    pub fn readings_file(&self) -> PathBuf {
        self.dir.join("readings.jsonl")
    }

    pub fn broker_dir(&self) -> PathBuf {
        self.dir.join("broker")
    }

    pub fn broker_state(&self) -> PathBuf {
        self.dir.join("broker-state")
    }

    /// Starts `tmc-sensor-sim` for every sensor of the site, one reading per `interval` each (`readings` per
    /// sensor, or until stopped), listing what the broker acknowledged in `ledger`.
    pub fn start_sensors(
        &self,
        interval: &str,
        readings: Option<u64>,
        ledger: Option<&Path>,
    ) -> anyhow::Result<Service> {
        self.start_sensors_from(1, interval, readings, ledger)
    }

    /// [`start_sensors`](Self::start_sensors) continuing an earlier run: each sensor's first reading is
    /// `first_seq`.
    pub fn start_sensors_from(
        &self,
        first_seq: u64,
        interval: &str,
        readings: Option<u64>,
        ledger: Option<&Path>,
    ) -> anyhow::Result<Service> {
        let mut args: Vec<String> = [
            "--first-seq",
            &first_seq.to_string(),
            "--site",
            &self.site.dir().display().to_string(),
            "--sensors",
            &self.sensors.join(","),
            "--host",
            "127.0.0.1",
            "--port",
            &self.broker_port.to_string(),
            "--interval",
            interval,
        ]
        .map(String::from)
        .to_vec();
        if let Some(n) = readings {
            args.extend(["--readings".into(), n.to_string()]);
        }
        if let Some(ledger) = ledger {
            args.extend(["--ledger".into(), ledger.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Service::start("tmc-sensor-sim", &args, &self.dir, false)
    }

    /// Starts `tmc-web` over the site's receiver on a free port of 127.0.0.1 and returns it with the page's
    /// address, once it listens. With `watch_log` it logs at info level to a pipe (see [`Service::stderr`]),
    /// for a test to wait on its lines; otherwise its warnings go to this program's stderr.
    pub fn start_web(&self, watch_log: bool) -> anyhow::Result<(Service, SocketAddr)> {
        let config = self.receiver_config().display().to_string();
        let args = ["--receiver-config", &config, "--listen", "127.0.0.1:0"];
        let env: &[(&str, &str)] = if watch_log {
            &[("RUST_LOG", "info")]
        } else {
            &[]
        };
        let mut web = Service::spawn("tmc-web", &args, &self.dir, true, watch_log, env)?;
        let address = web_address(&mut web)?;
        Ok((web, address))
    }

    pub fn relay_status(&self) -> PathBuf {
        self.dir.join("relay-state/relay.status.json")
    }

    /// Waits (up to `limit`) until `relay` reports its subscriptions confirmed, so that the first readings of
    /// sensors started now have a subscriber. Fails at once if the relay exits meanwhile. The relay looks at its
    /// status every two seconds and writes it when it changed.
    pub fn wait_for_relay_subscribed(
        &self,
        relay: &mut Service,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        let pid = relay.pid();
        loop {
            let status: Result<tmc_relay::service::RelayStatus, _> =
                tmc_service::read_status(&self.relay_status());
            if status.is_ok_and(|s| s.pid == pid && s.running && s.ingest.subscribed) {
                return Ok(());
            }
            if let Some(exit) = relay.try_wait() {
                anyhow::bail!(
                    "{} exited ({exit}) before it subscribed (see its messages)",
                    relay.name
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the relay did not subscribe within {limit:?} (see its messages)"
            );
            // The relay is another process: its status file is what there is to watch.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `[radio]` on the simulated air as node `node`, with the board preset's frequency and modem if there is one.
fn radio(options: &SiteOptions, node: u8) -> RadioSection {
    RadioSection {
        board: options.board.clone(),
        sim: Some(format!(
            "sim:air,loss={},corrupt={}",
            options.loss, options.corruption
        )),
        address: Some(node),
        duty_cycle: Some(options.duty_cycle),
    }
}

/// The demo relay's `relay.toml` (relative paths: the site directory's), the site's PKI in `site_dir`.
fn relay_config(site_dir: &Path, broker_port: u16, options: &SiteOptions) -> RelayConfig {
    let mut broker = BrokerConfig::plain("127.0.0.1", broker_port);
    broker.ca = Some(site_dir.join("ecc.ca.cert.pem"));
    broker.cert = Some(site_dir.join("ecc.relay.cert.pem"));
    broker.key = Some(site_dir.join("ecc.relay.key.pem"));
    let mut config = RelayConfig::new(broker.into(), radio(options, RELAY_NODE), "keys.toml");
    config.state_dir = "relay-state".into();
    config.link.gateway = GATEWAY_NODE;
    config.link.backoff = options.backoff;
    config.link.max_backoff = options.backoff * 8.0;
    config.envelope.encoding = tmc_envelope::Encoding::Packed;
    if let Some(max_batch) = options.max_batch {
        config.envelope.max_batch = max_batch;
    }
    config.metrics = options.relay_metrics.map(|listen| ListenSection {
        listen: Some(listen),
    });
    config
}

/// The demo receiver's `receiver.toml`.
fn receiver_config(options: &SiteOptions) -> ReceiverFile {
    let mut file = ReceiverFile::new(radio(options, GATEWAY_NODE), vec![RELAY_NODE], "keys.toml");
    file.state_dir = "receiver-state".into();
    file.envelope.legacy = options.legacy;
    file.output = options.output.clone();
    file.upstream = options.upstream.clone();
    file.metrics = options.receiver_metrics.map(|listen| ListenSection {
        listen: Some(listen),
    });
    file
}

/// Where a `tmc-web` started with its stdout piped serves, once it listens: its one stdout line,
/// `listening on http://ADDR/`.
pub fn web_address(web: &mut Service) -> anyhow::Result<SocketAddr> {
    let stdout = web.stdout().context("tmc-web's stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    line.trim()
        .strip_prefix("listening on http://")
        .and_then(|a| a.strip_suffix('/'))
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("tmc-web did not say where it listens: {line:?}"))
}

/// Where the TMC binaries are: next to this program (target/<profile>/), or in `TMC_BIN_DIR`.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TMC_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().context("locating this program")?;
    let mut dir = exe.parent().context("program has no directory")?.to_owned();
    // Test executables live in target/<profile>/deps.
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// Waits (up to `limit`) until `service` accepts connections on `address`; fails at once if it exits.
pub fn wait_for_listener(
    service: &mut Service,
    address: SocketAddr,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if std::net::TcpStream::connect_timeout(&address, limit).is_ok() {
            return Ok(());
        }
        if let Some(exit) = service.try_wait() {
            anyhow::bail!(
                "{} exited ({exit}) before it listened on {address}",
                service.name
            );
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} did not listen on {address} within {limit:?}",
            service.name
        );
        // Another process binds it: try again.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A memory figure of process `pid` in KiB (`VmRSS`, `VmHWM`, … from `/proc/<pid>/status`), while it runs.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One running TMC program, stopped by pid when dropped (SIGKILL if still running).
pub struct Service {
    pub name: String,
    child: Child,
}

impl Service {
    /// Starts `program` (a TMC binary in [`bin_dir`]) with `args` in `dir`, through `TMC_TEST_RUNNER` (qemu for
    /// cross builds) like every test-started binary. Its stdout is piped when `capture` is set.
    pub fn start(
        program: &str,
        args: &[&str],
        dir: &Path,
        capture: bool,
    ) -> anyhow::Result<Service> {
        Self::spawn(program, args, dir, capture, false, &[])
    }

    /// [`start`](Self::start) with extra environment variables (systemd's `NOTIFY_SOCKET`, `RUST_LOG`).
    pub fn start_with_env(
        program: &str,
        args: &[&str],
        dir: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Service> {
        Self::spawn(program, args, dir, false, false, env)
    }

    fn spawn(
        program: &str,
        args: &[&str],
        dir: &Path,
        capture: bool,
        capture_stderr: bool,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Service> {
        let path = bin_dir()?.join(program);
        anyhow::ensure!(
            path.is_file(),
            "{} is not built (cargo build --workspace)",
            path.display()
        );
        let mut cmd = tmc_testkit::bin_command(&path.display().to_string());
        cmd.args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .envs(env.iter().copied());
        if capture {
            cmd.stdout(Stdio::piped());
        }
        if capture_stderr {
            cmd.stderr(Stdio::piped());
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        Ok(Service {
            name: program.into(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    pub fn stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// Whether it has exited (and how).
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM and wait: the orderly stop systemd does. A program that already exited reports how.
    pub fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        if let Some(status) = self.try_wait() {
            return Ok(status);
        }
        tmc_testkit::signal(self.child.id(), "TERM")?;
        Ok(self.child.wait()?)
    }

    /// SIGKILL and wait: a crash or power cut.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    pub fn wait(mut self) -> anyhow::Result<std::process::ExitStatus> {
        Ok(self.child.wait()?)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files the demo writes are what the services load, with every option applied.
    #[test]
    fn rendered_configs_load_as_the_services_read_them() {
        let dir = tempfile::tempdir().unwrap();
        let options = SiteOptions {
            board: Some(dir.path().join("board.toml")),
            max_batch: Some(3),
            legacy: true,
            backoff: 0.5,
            relay_metrics: Some("127.0.0.1:19101".parse().unwrap()),
            receiver_metrics: Some("127.0.0.1:19102".parse().unwrap()),
            ..SiteOptions::default()
        };
        let relay_path = dir.path().join("relay.toml");
        std::fs::write(
            &relay_path,
            relay_config(Path::new("/site"), 18883, &options).to_toml("demo"),
        )
        .unwrap();
        let relay = RelayConfig::load(&relay_path).unwrap();
        assert_eq!(relay.mqtt.broker.address(), "127.0.0.1:18883");
        assert_eq!(
            relay.mqtt.broker.key.as_deref(),
            Some(Path::new("/site/ecc.relay.key.pem"))
        );
        assert_eq!(relay.state_dir, dir.path().join("relay-state"));
        assert_eq!((relay.link.backoff, relay.link.max_backoff), (0.5, 4.0));
        assert_eq!(
            (relay.envelope.max_batch, relay.radio.address),
            (3, Some(RELAY_NODE))
        );
        assert_eq!(
            relay.radio.sim.as_deref(),
            Some(format!("sim:{}/air,loss=0.05,corrupt=0", dir.path().display()).as_str())
        );
        assert_eq!(relay.radio.duty_cycle, Some(1.0));
        assert_eq!(relay.metrics_address(), options.relay_metrics);

        let receiver_path = dir.path().join("receiver.toml");
        std::fs::write(&receiver_path, receiver_config(&options).to_toml("demo")).unwrap();
        let receiver = tmc_config::receiver::Config::load(&receiver_path).unwrap();
        assert_eq!(receiver.peers, [RELAY_NODE]);
        assert!(receiver.legacy && receiver.stdout);
        assert_eq!(receiver.file, Some(dir.path().join("readings.jsonl")));
        assert_eq!(receiver.radio.board, options.board);
        assert_eq!(receiver.metrics, options.receiver_metrics);
    }
}

//! The site harness shared by the end-to-end and fault tests: real mosquitto (mTLS) on 127.0.0.1, the real
//! `tmc-relay run` and `tmc-receiver run` on the simulated air, `tmc-sensor-sim` as the sensors.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tmc_demo::{Service, SiteFiles, SiteOptions};
use tmc_testkit::Mosquitto;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub files: SiteFiles,
}

impl Harness {
    /// A new site in a temporary directory (kept, and printed, when `TMC_KEEP_TEST_DIR` is set).
    pub fn new(options: SiteOptions) -> Harness {
        Self::new_in(&std::env::temp_dir(), options)
    }

    /// [`new`](Self::new) under the build's own temporary directory: on the disk the build is on, where the
    /// kernel counts the bytes a process writes (`/proc/<pid>/io`), unlike a tmpfs `/tmp`.
    pub fn on_disk(options: SiteOptions) -> Harness {
        Self::new_in(Path::new(env!("CARGO_TARGET_TMPDIR")), options)
    }

    fn new_in(parent: &Path, options: SiteOptions) -> Harness {
        let mut dir = tempfile::tempdir_in(parent).unwrap();
        if std::env::var_os("TMC_KEEP_TEST_DIR").is_some() {
            dir.disable_cleanup(true);
            eprintln!("test site kept in {}", dir.path().display());
        }
        let board =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fast-sim-board.toml");
        let options = SiteOptions {
            broker_port: tmc_testkit::free_port(),
            board: Some(board),
            ..options
        };
        let files = SiteFiles::create(dir.path(), &options).unwrap();
        Harness { dir, files }
    }

    pub fn broker(&self) -> Mosquitto {
        Mosquitto::start(
            &self.files.broker_dir(),
            &self.files.broker_state(),
            self.files.broker_port,
        )
    }

    /// Starts the relay; returns once it has subscribed (its status says so), so that no reading published
    /// from now on finds the broker without a subscriber. `TMC_RELAY_LOG` sets its `RUST_LOG`.
    pub fn relay(&self) -> Service {
        let config = self.files.relay_config().display().to_string();
        let log = std::env::var("TMC_RELAY_LOG").unwrap_or_else(|_| "warn".into());
        let mut relay = Service::start_with_env(
            "tmc-relay",
            &["run", "--config", &config],
            self.dir.path(),
            &[("RUST_LOG", log.as_str())],
        )
        .unwrap();
        self.files
            .wait_for_relay_subscribed(&mut relay, Duration::from_secs(60))
            .unwrap();
        relay
    }

    pub fn receiver(&self) -> Service {
        let config = self.files.receiver_config().display().to_string();
        Service::start(
            "tmc-receiver",
            &["run", "--config", &config],
            self.dir.path(),
            false,
        )
        .unwrap()
    }

    /// The sensors, each publishing `readings` readings `interval` apart; acknowledged ones go to the ledger.
    pub fn sensors(&self, readings: u64, interval: &str) -> Service {
        self.files
            .start_sensors(interval, Some(readings), Some(&self.ledger_path()))
            .unwrap()
    }

    /// [`sensors`](Self::sensors) continuing an earlier run from `first_seq`.
    pub fn sensors_from(&self, first_seq: u64, readings: u64, interval: &str) -> Service {
        self.files
            .start_sensors_from(
                first_seq,
                interval,
                Some(readings),
                Some(&self.ledger_path()),
            )
            .unwrap()
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.dir.path().join("ledger.jsonl")
    }

    /// Readings the broker acknowledged to the sensors: payload by (sensor, seq).
    pub fn acknowledged(&self) -> BTreeMap<(String, u64), String> {
        let text = std::fs::read_to_string(self.ledger_path()).unwrap_or_default();
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = (
                v["sensor"].as_str().unwrap().to_owned(),
                v["seq"].as_u64().unwrap(),
            );
            let payload = v["payload"].as_str().unwrap().to_owned();
            assert!(
                out.insert(key.clone(), payload).is_none(),
                "ledger repeats {key:?}"
            );
        }
        out
    }

    /// Readings in the receiver's JSON-lines file, in file order: (sensor, seq, payload).
    pub fn output(&self) -> Vec<(String, u64, String)> {
        readings(&self.lines())
    }

    /// The lines of the receiver's JSON-lines file.
    fn lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.files.readings_file()).unwrap_or_default();
        text.lines().map(str::to_owned).collect()
    }

    /// Lines of the receiver's JSON-lines file once it has at least `n` (bounded wait).
    pub fn wait_for_lines(&self, n: usize, limit: Duration) -> Vec<String> {
        self.wait_for_lines_with(n, limit, || {})
    }

    /// [`wait_for_lines`](Self::wait_for_lines), calling `on_poll` each time it looks (to sample the site
    /// while it waits).
    pub fn wait_for_lines_with(
        &self,
        n: usize,
        limit: Duration,
        mut on_poll: impl FnMut(),
    ) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let lines = self.lines();
            on_poll();
            if lines.len() >= n || Instant::now() >= deadline {
                return lines;
            }
            // Another process writes the file: poll it.
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits (bounded) until the output holds at least `n` readings.
    pub fn wait_for_output(&self, n: usize, limit: Duration) -> Vec<(String, u64, String)> {
        readings(&self.wait_for_lines(n, limit))
    }

    /// [`wait_for_output`](Self::wait_for_output), calling `on_poll` each time it looks.
    pub fn wait_for_output_with(
        &self,
        n: usize,
        limit: Duration,
        on_poll: impl FnMut(),
    ) -> Vec<(String, u64, String)> {
        readings(&self.wait_for_lines_with(n, limit, on_poll))
    }
}

/// The sensor readings in output lines: (sensor, seq, payload).
fn readings(lines: &[String]) -> Vec<(String, u64, String)> {
    lines
        .iter()
        .map(|line| {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("output line {line:?}: {e}"));
            let payload = v["data"].as_str().unwrap().to_owned();
            let p: serde_json::Value = serde_json::from_str(&payload).unwrap();
            (
                p["id"].as_str().unwrap().to_owned(),
                p["seq"].as_u64().unwrap(),
                payload,
            )
        })
        .collect()
}

/// Checks exactly-once, per-sensor order and content; returns (acknowledged, output, extra) counts where extra
/// are readings output that the broker never acknowledged to the sensor (sent, connection lost before PUBACK).
pub fn verify(
    acknowledged: &BTreeMap<(String, u64), String>,
    output: &[(String, u64, String)],
) -> (usize, usize, usize) {
    let mut seen: HashMap<(String, u64), usize> = HashMap::new();
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    for (sensor, seq, payload) in output {
        *seen.entry((sensor.clone(), *seq)).or_default() += 1;
        if let Some(expected) = acknowledged.get(&(sensor.clone(), *seq)) {
            assert_eq!(payload, expected, "{sensor} #{seq}: content changed");
        }
        let last = last_seq.entry(sensor.clone()).or_default();
        assert!(*seq > *last, "{sensor}: #{seq} after #{last}: out of order");
        *last = *seq;
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "output more than once: {duplicates:?}"
    );
    let missing: Vec<_> = acknowledged
        .keys()
        .filter(|k| !seen.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but never output: {} e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let extra = seen
        .keys()
        .filter(|k| !acknowledged.contains_key(*k))
        .count();
    (acknowledged.len(), output.len(), extra)
}

/// Checks every output payload is byte for byte what the node code sends for that sensor and seq.
pub fn assert_payloads_as_sent(output: &[(String, u64, String)]) {
    for (sensor, seq, payload) in output {
        assert_eq!(
            payload.as_bytes(),
            tmc_sensor_sim::payload(sensor, *seq),
            "{sensor} #{seq}"
        );
    }
}

/// A second, plain-TCP mosquitto on 127.0.0.1 standing in for the upstream broker cluster.
pub struct Upstream {
    pub port: u16,
    pub conf: PathBuf,
    pub state: PathBuf,
}

impl Upstream {
    pub fn new(dir: &Path) -> Upstream {
        let port = tmc_testkit::free_port();
        let conf = dir.join("upstream-conf");
        let state = dir.join("upstream-state");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(
            conf.join("upstream.conf"),
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"),
        )
        .unwrap();
        Upstream { port, conf, state }
    }

    pub fn receiver_table(&self) -> tmc_demo::UpstreamSection {
        tmc_demo::UpstreamSection {
            host: "127.0.0.1".into(),
            port: Some(self.port),
            ca: None,
            cert: None,
            key: None,
            client_id: None,
            keep_alive: None,
            topic: "tmc/{sender}/{topic}".parse().unwrap(),
            home_assistant: None,
        }
    }

    pub fn start(&self) -> Mosquitto {
        Mosquitto::start(&self.conf, &self.state, self.port)
    }
}

impl Harness {
    /// `tmc-receiver status --json`.
    pub fn receiver_status(&self) -> serde_json::Value {
        self.status_json("tmc-receiver", &self.files.receiver_config())
    }

    /// `tmc-relay status --json`.
    pub fn relay_status(&self) -> serde_json::Value {
        self.status_json("tmc-relay", &self.files.relay_config())
    }

    fn status_json(&self, program: &str, config: &Path) -> serde_json::Value {
        let config = config.display().to_string();
        let bin = tmc_demo::bin_dir().unwrap().join(program);
        let mut cmd = tmc_testkit::bin_command(&bin.display().to_string());
        cmd.args(["status", "--json", "--config", &config]);
        let out = cmd.output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// Waits (bounded) until `check` holds for the receiver's status.
    pub fn wait_for_receiver(
        &self,
        limit: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        wait_for_status(limit, || self.receiver_status(), check)
    }

    /// Waits (bounded) until `check` holds for the relay's status.
    pub fn wait_for_relay(
        &self,
        limit: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        wait_for_status(limit, || self.relay_status(), check)
    }
}

/// Polls a status (another process rewrites it when it changes, looking every two seconds) until `check` holds
/// or `limit` passes.
fn wait_for_status(
    limit: Duration,
    read: impl Fn() -> serde_json::Value,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let status = read();
        if check(&status) || Instant::now() >= deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every packet the receiver heard ends in exactly one counted fate (its status says how many of each).
pub fn assert_every_frame_accounted(link: &serde_json::Value) {
    let n = |key: &str| {
        link[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key} in {link}"))
    };
    let refused: u64 = link["refused"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let fates = [
        "crc_errors",
        "malformed_frames",
        "other_node",
        "stray_acks",
        "resent_copies",
        "unknown_node",
        "tokens_stored",
        "duplicates",
        "stale",
        "commit_failures",
    ]
    .iter()
    .map(|k| n(k))
    .sum::<u64>()
        + refused;
    assert_eq!(n("frames_heard"), fates, "a frame without a fate: {link}");
    assert_eq!(
        n("frames_received"),
        n("tokens_stored") + n("duplicates") + n("stale") + refused + n("commit_failures"),
        "a token without a fate: {link}"
    );
}

//! The services as systemd runs them (`Type=notify`, `WatchdogSec=`): READY=1 once they are up, watchdog pings
//! while their loops make progress, STOPPING=1 and exit status 0 on SIGTERM. The test plays systemd's part
//! with its own notify socket.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tmc_demo::{OutputSection, Service, SiteOptions};

/// Datagrams received on `socket` until one contains `want` (bounded); returns all of them.
fn until(socket: &UnixDatagram, want: &str) -> Vec<String> {
    until_within(socket, want, Duration::from_secs(60))
}

fn until_within(socket: &UnixDatagram, want: &str, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(deadline - Instant::now()))
            .unwrap();
        let Ok(n) = socket.recv(&mut buf) else { break };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = text.lines().any(|l| l == want);
        seen.push(text);
        if done {
            return seen;
        }
    }
    panic!("no {want} within {limit:?}; got {seen:?}");
}

fn notify_socket(dir: &std::path::Path, name: &str) -> (UnixDatagram, String) {
    let path = dir.join(name);
    (
        UnixDatagram::bind(&path).unwrap(),
        path.display().to_string(),
    )
}

#[test]
fn relay_and_receiver_tell_systemd_they_are_ready_alive_and_stopping() {
    let h = common::Harness::new(SiteOptions {
        sensors: 1,
        output: OutputSection {
            stdout: false,
            file: Some("readings.jsonl".into()),
        },
        ..SiteOptions::default()
    });
    let _broker = h.broker();
    for (program, config) in [
        ("tmc-receiver", h.files.receiver_config()),
        ("tmc-relay", h.files.relay_config()),
    ] {
        let (socket, path) = notify_socket(h.dir.path(), &format!("{program}.notify"));
        let config = config.display().to_string();
        let service = Service::start_with_env(
            program,
            &["run", "--config", &config],
            h.dir.path(),
            &[
                ("NOTIFY_SOCKET", path.as_str()),
                ("WATCHDOG_USEC", "2000000"),
            ],
        )
        .unwrap();
        let ready = until(&socket, "READY=1");
        assert!(ready.concat().contains("STATUS="), "{program}: {ready:?}");
        // WatchdogSec=2: pings come every second while the loops beat.
        until(&socket, "WATCHDOG=1");
        until(&socket, "WATCHDOG=1");
        let status = service.terminate().unwrap();
        until(&socket, "STOPPING=1");
        assert!(status.success(), "{program} exited with {status}");
    }
}

/// A unit file as meta-tmc ships it (`@BINDIR@` is the recipe's placeholder for `${bindir}`).
struct Unit {
    name: &'static str,
    text: String,
}

impl Unit {
    /// Installs the unit with `program` (built in the target directory) as its binary and has
    /// `systemd-analyze verify` accept it without a word.
    fn verify(&self, program: &str) {
        let dir = tempfile::tempdir().unwrap();
        let bindir = tmc_demo::bin_dir().unwrap();
        assert!(
            bindir.join(program).is_file(),
            "{program} not built in {}",
            bindir.display()
        );
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(self.install(dir.path(), &bindir))
            .output()
            .expect("systemd-analyze (make deps installs systemd)");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "systemd-analyze verify {}: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn shipped(name: &'static str) -> Unit {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../meta-tmc/recipes-tmc/tmc/files")
            .join(name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Unit { name, text }
    }

    /// The values of `key` in `[section]`, in order.
    fn values(&self, section: &str, key: &str) -> Vec<&str> {
        let mut current = "";
        let mut found = Vec::new();
        for line in self.text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = name;
            } else if let Some((k, v)) = line.split_once('=') {
                if current == section && k.trim() == key {
                    found.push(v.trim());
                }
            }
        }
        found
    }

    fn value(&self, section: &str, key: &str) -> &str {
        match self.values(section, key).as_slice() {
            [one] => one,
            other => panic!("{}: [{section}] {key}: {other:?}", self.name),
        }
    }

    /// `WatchdogSec=` as systemd reads the forms we use (`30s`, `1min`, `30`).
    fn watchdog(&self) -> Duration {
        let value = self.value("Service", "WatchdogSec");
        let (number, unit) = value.split_at(
            value
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(value.len()),
        );
        let n: u64 = number
            .parse()
            .unwrap_or_else(|_| panic!("{}: WatchdogSec={value}", self.name));
        match unit {
            "" | "s" | "sec" => Duration::from_secs(n),
            "min" => Duration::from_secs(60 * n),
            _ => panic!(
                "{}: WatchdogSec={value}: unit {unit:?} not understood",
                self.name
            ),
        }
    }

    /// The unit's command line for `program`, without the binary.
    fn exec_args(&self, program: &str) -> Vec<String> {
        let exec = self.value("Service", "ExecStart");
        let mut words = exec.split_whitespace();
        assert_eq!(
            words.next(),
            Some(format!("@BINDIR@/{program}").as_str()),
            "{}",
            self.name
        );
        words.map(str::to_owned).collect()
    }

    /// ExecStart's arguments with the configuration file the unit is conditioned on (ConditionPathExists)
    /// replaced by `config`, which they must name.
    fn exec_args_with_config(&self, program: &str, config: &Path) -> Vec<String> {
        let shipped_config = self.value("Unit", "ConditionPathExists").to_owned();
        let config = config.display().to_string();
        let args: Vec<String> = self
            .exec_args(program)
            .into_iter()
            .map(|a| {
                if a == shipped_config {
                    config.clone()
                } else {
                    a
                }
            })
            .collect();
        assert!(
            args.contains(&config),
            "{}: ExecStart does not read the file of ConditionPathExists={shipped_config}",
            self.name
        );
        args
    }

    /// A copy with `@BINDIR@` replaced, for `systemd-analyze verify`.
    fn install(&self, dir: &Path, bindir: &Path) -> PathBuf {
        let path = dir.join(self.name);
        std::fs::write(
            &path,
            self.text.replace("@BINDIR@", &bindir.display().to_string()),
        )
        .unwrap();
        path
    }
}

const SERVICE_UNITS: [(&str, &str); 2] = [
    ("tmc-receiver", "tmc-receiver.service"),
    ("tmc-relay", "tmc-relay.service"),
];

/// The shipped units start the services the way systemd will (their own ExecStart, their WatchdogSec), and the
/// services answer within the unit's watchdog: READY=1 with a STATUS, a WATCHDOG=1 before WatchdogSec is up,
/// STOPPING=1 and exit status 0 on SIGTERM.
#[test]
fn shipped_units_start_the_services_and_their_watchdog_is_served() {
    let h = common::Harness::new(SiteOptions {
        sensors: 1,
        output: OutputSection {
            stdout: false,
            file: Some("readings.jsonl".into()),
        },
        ..SiteOptions::default()
    });
    let _broker = h.broker();
    let configs = [h.files.receiver_config(), h.files.relay_config()];
    let mut running = Vec::new();
    for ((program, unit_name), config) in SERVICE_UNITS.into_iter().zip(configs) {
        let unit = Unit::shipped(unit_name);
        assert_eq!(unit.value("Service", "Type"), "notify", "{unit_name}");
        let args = unit.exec_args_with_config(program, &config);
        let watchdog = unit.watchdog();
        let usec = watchdog.as_micros().to_string();
        let (socket, path) = notify_socket(h.dir.path(), &format!("{program}.unit.notify"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let service = Service::start_with_env(
            program,
            &args,
            h.dir.path(),
            &[
                ("NOTIFY_SOCKET", path.as_str()),
                ("WATCHDOG_USEC", usec.as_str()),
            ],
        )
        .unwrap();
        let ready = until(&socket, "READY=1");
        assert!(ready.concat().contains("STATUS="), "{program}: {ready:?}");
        running.push((program, service, socket, watchdog));
    }
    for (program, service, socket, watchdog) in running {
        // systemd kills the service when no ping comes within WatchdogSec.
        until_within(&socket, "WATCHDOG=1", watchdog);
        let status = service.terminate().unwrap();
        until(&socket, "STOPPING=1");
        assert!(status.success(), "{program} exited with {status}");
    }
}

/// The hardening the services are written for (no root, one writable path: the state directory), and
/// `systemd-analyze verify` accepts the units with the binaries in place.
#[test]
fn shipped_units_are_hardened_and_verify() {
    for (program, unit_name) in SERVICE_UNITS {
        let unit = Unit::shipped(unit_name);
        for (key, want) in [
            ("Type", "notify"),
            ("Restart", "on-failure"),
            ("User", "tmc"),
            ("StateDirectory", "tmc"),
            ("ReadWritePaths", "/var/lib/tmc"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
        ] {
            assert_eq!(unit.value("Service", key), want, "{unit_name}: {key}");
        }
        assert!(
            unit.watchdog() >= Duration::from_secs(5),
            "{unit_name}: WatchdogSec below the services' 1 s wait slices with margin"
        );
        unit.verify(program);
    }
}

/// First boot runs once the file systems are up, before networking and the services it configures, and
/// `systemd-analyze verify` accepts it.
#[test]
fn shipped_firstboot_unit_runs_before_the_services_and_verifies() {
    let unit = Unit::shipped("tmc-firstboot.service");
    assert_eq!(unit.value("Service", "Type"), "oneshot");
    assert_eq!(
        unit.exec_args("tmc-provision"),
        ["firstboot", "--boot", "/boot", "--root", "/"]
    );
    assert_eq!(unit.value("Unit", "ConditionPathExists"), "/boot/tmc.toml");
    let before = unit.value("Unit", "Before");
    assert!(
        before.split_whitespace().any(|t| t == "network-pre.target"),
        "{before}"
    );
    unit.verify("tmc-provision");
}

/// The web page's unit: it only reads (no writable path, no state directory of its own), runs as a dynamic
/// user in group tmc (the receiver's files, not its keys), after the receiver, only on a gateway, and
/// `systemd-analyze verify` accepts it.
#[test]
fn shipped_web_unit_only_reads_and_verifies() {
    let unit = Unit::shipped("tmc-web.service");
    for (key, want) in [
        ("Restart", "on-failure"),
        ("DynamicUser", "yes"),
        ("SupplementaryGroups", "tmc"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(unit.value("Service", key), want, "tmc-web.service: {key}");
    }
    for key in ["ReadWritePaths", "StateDirectory", "User", "WatchdogSec"] {
        assert!(
            unit.values("Service", key).is_empty(),
            "tmc-web.service: {key}"
        );
    }
    assert_eq!(
        unit.value("Unit", "ConditionPathExists"),
        "/etc/tmc/receiver.toml"
    );
    let after = unit.value("Unit", "After");
    assert!(
        after
            .split_whitespace()
            .any(|u| u == "tmc-receiver.service"),
        "{after}"
    );
    unit.verify("tmc-web");
}

/// The unit's own command line, given a receiver.toml without `[web]`, ends at once and successfully (so the
/// unit can be enabled on every gateway); with `[web]` it serves the page where that table says.
#[test]
fn shipped_web_unit_is_off_without_web_and_serves_with_it() {
    let h = common::Harness::new(SiteOptions {
        sensors: 1,
        output: OutputSection {
            stdout: false,
            file: Some("readings.jsonl".into()),
        },
        ..SiteOptions::default()
    });
    let config = h.files.receiver_config();
    let unit = Unit::shipped("tmc-web.service");
    let args = unit.exec_args_with_config("tmc-web", &config);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let bin = tmc_demo::bin_dir().unwrap().join("tmc-web");
    let out = tmc_testkit::bin_command(&bin.display().to_string())
        .args(&args)
        .current_dir(h.dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert!(stderr.contains("the page is off: no [web]"), "{stderr}");

    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[web]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&config, text).unwrap();
    let mut web = Service::start("tmc-web", &args, h.dir.path(), true).unwrap();
    let address = tmc_demo::web_address(&mut web).unwrap();
    for path in ["/", "/api/readings"] {
        let (code, body) = tmc_service::metrics::http_get(address, path).unwrap();
        assert_eq!(code, 200, "{path}: {body}");
    }
    // It holds nothing to save: SIGTERM (systemd's stop) ends it by the default action.
    let status = web.terminate().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(15),
        "tmc-web ended with {status}"
    );
}

//! Memory and size of the services: relay and receiver RSS while idle and under load (1000 readings from 5
//! sensors through real mosquitto and the simulated air, republished by the receiver to a second mosquitto
//! standing in for the upstream broker), their peak (VmHWM), and the stripped aarch64 binary sizes. Both serve
//! `[metrics]`, scraped once a second under load, and `tmc-web` serves the page over the receiver, its view
//! fetched once a second, so their cost is in the figures.
//!
//!     cargo build --release -p tmc-relay -p tmc-receiver -p tmc-sensor-sim -p tmc-web
//!     make cross                      # for the aarch64 sizes (target/debian/aarch64-unknown-linux-gnu/release)
//!     cargo bench -p tmc-demo --bench footprint
//!
//! RSS is VmRSS from /proc (idle: after 5 s; under load: the largest of samples every 50 ms), VmHWM the kernel's
//! own peak of VmRSS over the whole run; the binaries are the release build on this machine (x86_64), which is
//! close to aarch64 for resident memory. Targets (issue 19): relay < 10 MB idle and under load, VmHWM < 12 MB;
//! receiver with upstream output < 8 MB.

use std::path::Path;
use std::time::{Duration, Instant};

use tmc_demo::{OutputSection, Service, SiteFiles, SiteOptions, UpstreamSection};

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let bins = tmc_demo::bin_dir().unwrap();
    for b in ["tmc-relay", "tmc-receiver", "tmc-sensor-sim", "tmc-web"] {
        if !bins.join(b).is_file() {
            println!(
                "footprint: {} missing: cargo build --release -p tmc-relay -p tmc-receiver -p tmc-sensor-sim -p tmc-web first",
                bins.join(b).display()
            );
            return;
        }
    }
    sizes();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let board = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fast-sim-board.toml");
    let upstream_port = tmc_testkit::free_port();
    let upstream_conf = dir.path().join("upstream-conf");
    let upstream_state = dir.path().join("upstream-state");
    std::fs::create_dir_all(&upstream_conf).unwrap();
    std::fs::create_dir_all(&upstream_state).unwrap();
    std::fs::write(
        upstream_conf.join("upstream.conf"),
        format!("listener {upstream_port} 127.0.0.1\nallow_anonymous true\n"),
    )
    .unwrap();
    let _upstream = tmc_testkit::Mosquitto::start(&upstream_conf, &upstream_state, upstream_port);
    let (relay_metrics, receiver_metrics) = (local_port(), local_port());
    let files = SiteFiles::create(
        dir.path(),
        &SiteOptions {
            sensors: 5,
            broker_port: tmc_testkit::free_port(),
            loss: 0.0,
            duty_cycle: 100.0,
            board: Some(board),
            output: OutputSection {
                stdout: false,
                file: Some("readings.jsonl".into()),
            },
            upstream: Some(UpstreamSection {
                host: "127.0.0.1".into(),
                port: Some(upstream_port),
                ca: None,
                cert: None,
                key: None,
                client_id: None,
                keep_alive: None,
                topic: Default::default(),
                home_assistant: None,
            }),
            relay_metrics: Some(relay_metrics),
            receiver_metrics: Some(receiver_metrics),
            ..SiteOptions::default()
        },
    )
    .unwrap();
    let _broker = tmc_testkit::Mosquitto::start(
        &files.broker_dir(),
        &files.broker_state(),
        files.broker_port,
    );
    let rc = files.receiver_config().display().to_string();
    let receiver =
        Service::start("tmc-receiver", &["run", "--config", &rc], dir.path(), false).unwrap();
    let c = files.relay_config().display().to_string();
    let relay = Service::start("tmc-relay", &["run", "--config", &c], dir.path(), false).unwrap();
    let (web, page) = files.start_web(false).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let idle = (
        status_kib(relay.pid(), "VmRSS"),
        status_kib(receiver.pid(), "VmRSS"),
        status_kib(web.pid(), "VmRSS"),
    );
    // What a Prometheus and an open page ask for, once a second.
    let mut looked = Instant::now();
    let look = || {
        for (address, path) in [
            (relay_metrics, "/metrics"),
            (receiver_metrics, "/metrics"),
            (page, "/api/readings"),
        ] {
            let (code, _) = tmc_service::metrics::http_get(address, path).unwrap();
            assert_eq!(code, 200, "http://{address}{path}");
        }
    };
    look();

    let sim = files.start_sensors("10ms", Some(200), None).unwrap();
    let start = Instant::now();
    let mut peak = (0, 0, 0);
    let readings = files.readings_file();
    while std::fs::read_to_string(&readings).map_or(0, |t| t.lines().count()) < 1000
        && start.elapsed() < Duration::from_secs(300)
    {
        peak.0 = peak.0.max(status_kib(relay.pid(), "VmRSS"));
        peak.1 = peak.1.max(status_kib(receiver.pid(), "VmRSS"));
        peak.2 = peak.2.max(status_kib(web.pid(), "VmRSS"));
        if looked.elapsed() >= Duration::from_secs(1) {
            look();
            looked = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = start.elapsed();
    drop(sim);
    let hwm = (
        status_kib(relay.pid(), "VmHWM"),
        status_kib(receiver.pid(), "VmHWM"),
        status_kib(web.pid(), "VmHWM"),
    );
    println!("footprint: memory (KiB)   RSS idle   RSS under load   VmHWM");
    for (name, i, p, h) in [
        ("tmc-relay", idle.0, peak.0, hwm.0),
        ("tmc-receiver", idle.1, peak.1, hwm.1),
        ("tmc-web", idle.2, peak.2, hwm.2),
    ] {
        println!("  {name:<20} {i:>9}   {p:>14}   {h:>5}");
    }
    println!(
        "  load: 1000 readings from 5 sensors, relayed and output (file and upstream) in {:.1} s",
        elapsed.as_secs_f64()
    );
    relay.terminate().unwrap();
    receiver.terminate().unwrap();
    web.terminate().unwrap();
}

fn local_port() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], tmc_testkit::free_port()))
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`); 0 when unreadable.
/// A memory figure of `pid` in KiB, 0 once the process is gone.
fn status_kib(pid: u32, field: &str) -> u64 {
    tmc_demo::proc_status_kib(pid, field).unwrap_or(0)
}

fn sizes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/debian/aarch64-unknown-linux-gnu/release");
    println!(
        "footprint: stripped aarch64 release binaries ({})",
        dir.display()
    );
    for b in ["tmc-relay", "tmc-receiver", "tmc-pki", "tmc-ap", "tmc-web"] {
        match std::fs::metadata(dir.join(b)) {
            Ok(m) => println!("  {b:<14} {:>6} KiB", m.len() / 1024),
            Err(_) => println!("  {b:<14} not built (make cross)"),
        }
    }
}

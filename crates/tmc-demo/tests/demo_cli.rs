//! `tmc-demo` itself: a site directory given relative to where it is started, a relay that cannot start, and
//! `--web`'s page and metrics.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use tmc_demo::{Service, SiteFiles, SiteOptions};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn a_relative_site_directory_is_the_one_under_the_current_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-demo"));
    cmd.current_dir(cwd.path()).args([
        "--dir",
        "site",
        "--duration",
        "1",
        "--sensors",
        "1",
        "--board",
        &fixture("fast-sim-board.toml"),
    ]);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Success means the relay subscribed and no service exited: each found its files.
    assert!(out.status.success(), "{stderr}");
    let site = cwd.path().join("site");
    assert!(
        stderr.contains(&format!("demo site in {} ", site.display())),
        "{stderr}"
    );
    assert!(site.join("relay-state/relay.status.json").is_file());
    assert!(site.join("receiver-state/receiver.status.json").is_file());
}

#[test]
fn waiting_for_the_relay_ends_when_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let files = SiteFiles::create(
        dir.path(),
        &SiteOptions {
            sensors: 1,
            ..SiteOptions::default()
        },
    )
    .unwrap();
    // No broker, and no configuration where the relay is told to look: it exits at once.
    let mut relay = Service::start(
        "tmc-relay",
        &["run", "--config", "missing.toml"],
        dir.path(),
        false,
    )
    .unwrap();
    // The limit is far away: only the relay's exit ends this wait.
    let err = files
        .wait_for_relay_subscribed(&mut relay, Duration::from_secs(3600))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("tmc-relay exited (exit status: ")
            && err.contains(") before it subscribed"),
        "{err}"
    );
}

/// The address in a line `<label>: http://ADDR<path>` of the demo's stderr.
fn printed_address(lines: &[String], label: &str, path: &str) -> Option<SocketAddr> {
    lines.iter().find_map(|line| {
        line.strip_prefix(label)?
            .strip_prefix(": http://")?
            .strip_suffix(path)?
            .parse()
            .ok()
    })
}

#[test]
fn with_web_the_page_and_both_metrics_answer_at_the_printed_addresses() {
    let mut cmd = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-demo"));
    // The duration only bounds a demo this test fails to stop.
    cmd.args([
        "--web",
        "--duration",
        "300",
        "--sensors",
        "1",
        "--interval",
        "200ms",
        "--board",
        &fixture("fast-sim-board.toml"),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut demo = cmd.spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = demo.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[demo] {line}");
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let addresses = loop {
        let found = (
            printed_address(&lines, "web page", "/"),
            printed_address(&lines, "tmc-relay metrics", "/metrics"),
            printed_address(&lines, "tmc-receiver metrics", "/metrics"),
        );
        if let (Some(page), Some(relay), Some(receiver)) = found {
            break (page, relay, receiver);
        }
        // The demo prints them once every service is up; a demo that exits ends the wait.
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => lines.push(line),
            Err(e) => panic!("the demo printed no addresses ({e}): {lines:?}"),
        }
    };
    let (page, relay, receiver) = addresses;

    let (code, html) = tmc_service::metrics::http_get(page, "/").unwrap();
    assert_eq!(code, 200, "{html}");
    assert!(html.contains("<title>TMC readings</title>"), "{html}");
    for (address, metric) in [
        (relay, "tmc_relay_mqtt_connected"),
        (receiver, "tmc_receiver_readings_stored_total"),
    ] {
        let (code, body) = tmc_service::metrics::http_get(address, "/metrics").unwrap();
        assert_eq!(code, 200, "{body}");
        let metrics = tmc_testkit::Metrics::parse(&body);
        assert!(
            metrics.value(metric, &[]).is_some(),
            "{metric} not in\n{body}"
        );
    }

    // Ctrl-C's orderly stop.
    tmc_testkit::signal(demo.id(), "INT").unwrap();
    let status = demo.wait().unwrap();
    assert!(status.success(), "{status}: {lines:?}");
}

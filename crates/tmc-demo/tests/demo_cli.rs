//! `tmc-demo` itself: a site directory given relative to where it is started, and a relay that cannot start.

use std::path::Path;
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

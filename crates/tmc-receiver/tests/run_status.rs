//! `tmc-receiver run` refusing bad configurations, and `tmc-receiver status` before the service ever ran.

use std::path::{Path, PathBuf};
use std::process::Output;

use tmc_envelope::{KeyRing, Overwrite};
use tmc_testkit::{failure_reason, success_stdout};

fn receiver(args: &[&str], config: &Path) -> Output {
    tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-receiver"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

/// A site directory with a key ring and a configuration built from `radio` and `extra`.
fn site(radio: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    KeyRing::generate(1)
        .unwrap()
        .save(&dir.path().join("keys.toml"), Overwrite::Refuse)
        .unwrap();
    let config = dir.path().join("receiver.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"state\"\n[radio]\n{radio}\n[link]\npeers = [10]\n[envelope]\nkeys = \"keys.toml\"\n[output]\nfile = \"r.jsonl\"\n{extra}"
        ),
    )
    .unwrap();
    (dir, config)
}

#[test]
fn configuration_errors_are_one_line_each() {
    let (_dir, config) = site("sim = \"sim:/tmp/air\"", "colour = \"blue\"\n");
    let err = failure_reason(&receiver(&["run"], &config));
    assert_eq!(
        err,
        format!(
            "tmc-receiver: {}: line 10, column 1: unknown field `colour`, expected `stdout` or `file`",
            config.display()
        )
    );

    let (dir, config) = site("sim = \"sim:/tmp/air\"", "");
    std::fs::remove_file(dir.path().join("keys.toml")).unwrap();
    let err = failure_reason(&receiver(&["run"], &config));
    assert!(
        err.starts_with("tmc-receiver: [envelope] keys: ")
            && err.contains(&dir.path().join("keys.toml").display().to_string()),
        "{err}"
    );

    let (_dir, config) = site("address = 1", "");
    let err = failure_reason(&receiver(&["run"], &config));
    assert!(
        err.starts_with(&format!(
            "tmc-receiver: {}: [radio]: set `board`",
            config.display()
        )),
        "{err}"
    );

    let err = failure_reason(&receiver(
        &["status"],
        Path::new("/nonexistent/receiver.toml"),
    ));
    assert!(
        err.contains("/nonexistent/receiver.toml: No such file"),
        "{err}"
    );
}

#[test]
fn status_says_when_the_service_never_ran() {
    let (dir, config) = site("sim = \"sim:/tmp/air\"", "");
    let text = success_stdout(&receiver(&["status"], &config));
    let snapshot = dir.path().join("state/receiver.status.json");
    assert_eq!(
        text.trim(),
        format!(
            "tmc-receiver has never run with this configuration: no status snapshot at {}",
            snapshot.display()
        )
    );
    let json: serde_json::Value =
        serde_json::from_str(&success_stdout(&receiver(&["status", "--json"], &config))).unwrap();
    assert_eq!(json["state"], "never_run");
    assert!(json["snapshot"].is_null());
    assert_eq!(json["status_file"], snapshot.display().to_string());
}

//! The `tmc-provision` command: what it prints, and one line on stderr with status 1 when it refuses.

mod common;

use std::process::Command;

use common::*;
use tmc_testkit::{failure_reason, success_stdout};

fn tmc_provision() -> Command {
    tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-provision"))
}

#[test]
fn write_then_firstboot_through_the_command() {
    let f = Fixture::new();
    let out = tmc_provision()
        .args(["write", "--boot"])
        .arg(&f.boot)
        .args(["--role", "gateway", "--site"])
        .arg(f.site.dir())
        .args(["--name", "gw-1", "--peers", "10,11", "--board"])
        .arg(dragino())
        .output()
        .unwrap();
    let stdout = success_stdout(&out);
    assert!(
        stdout.contains(&format!("wrote    {}", f.boot.join("tmc.toml").display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("gateway \"gw-1\" is on the card"),
        "{stdout}"
    );

    let firstboot = |f: &Fixture| {
        tmc_provision()
            .args(["firstboot", "--boot"])
            .arg(&f.boot)
            .arg("--root")
            .arg(&f.root)
            .output()
            .unwrap()
    };
    let stdout = success_stdout(&firstboot(&f));
    for line in [
        "installed          /etc/tmc/keys.toml",
        "enabled            tmc-receiver.service",
        "enabled            tmc-web.service",
        &format!(
            "removed from boot  {}",
            f.boot.join("tmc/keys.toml").display()
        ),
        "recorded           /etc/tmc/provisioned.toml",
        "provisioned: gateway \"gw-1\" (no service touched: --offline or --root)",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} in:\n{stdout}");
    }
    let stdout = success_stdout(&firstboot(&f));
    assert_eq!(stdout, "already provisioned: gateway \"gw-1\"\n");
}

/// `--web` and `--metrics` take an address or none (the default one); a following option is not their value.
#[test]
fn web_and_metrics_options_with_and_without_an_address() {
    let f = Fixture::new();
    let write = |extra: &[&str]| {
        let out = tmc_provision()
            .args(["write", "--force", "--boot"])
            .arg(&f.boot)
            .args(["--role", "gateway", "--site"])
            .arg(f.site.dir())
            .args(["--name", "gw-1", "--board"])
            .arg(dragino())
            .args(extra)
            .output()
            .unwrap();
        success_stdout(&out);
        tmc_config::receiver::Config::load(&f.boot.join("tmc/receiver.toml")).unwrap()
    };
    let c = write(&["--web", "--metrics=127.0.0.1:9300"]);
    assert_eq!(c.web, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(c.metrics, Some("127.0.0.1:9300".parse().unwrap()));
    let c = write(&["--metrics", "--web", "127.0.0.1:8090"]);
    assert_eq!(c.web, Some("127.0.0.1:8090".parse().unwrap()));
    assert_eq!(c.metrics, Some("127.0.0.1:9102".parse().unwrap()));
    let c = write(&[]);
    assert_eq!((c.web, c.metrics), (None, None));

    let out = tmc_provision()
        .args(["write", "--boot"])
        .arg(&f.boot)
        .args(["--role", "gateway", "--site"])
        .arg(f.site.dir())
        .args(["--name", "gw-1", "--board"])
        .arg(dragino())
        .args(["--web", "localhost"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid socket address"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn nothing_to_provision_and_refusals() {
    let f = Fixture::new();
    let out = tmc_provision()
        .args(["firstboot", "--offline", "--boot"])
        .arg(&f.boot)
        .arg("--root")
        .arg(&f.root)
        .output()
        .unwrap();
    assert!(success_stdout(&out).starts_with("nothing to provision"));

    let out = tmc_provision()
        .args(["write", "--boot"])
        .arg(&f.boot)
        .args(["--role", "concentrator", "--site"])
        .arg(f.dir.join("no-site"))
        .args(["--name", "relay-1", "--board"])
        .arg(dragino())
        .output()
        .unwrap();
    let reason = failure_reason(&out);
    assert!(reason.contains("not a TMC site directory"), "{reason}");

    // --board is required: the Makefile passes the default preset.
    let out = tmc_provision()
        .args([
            "write", "--boot", "b", "--role", "gateway", "--site", "s", "--name", "n",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--board"));
}

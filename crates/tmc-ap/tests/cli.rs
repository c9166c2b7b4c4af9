//! The `tmc-ap` binary: check (own rules, then the real dnsmasq, hostapd and nft), render, apply --root.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tmc_testkit::{bin_command, failure_reason, success_stdout};

fn tmc_ap() -> Command {
    bin_command(env!("CARGO_BIN_EXE_tmc-ap"))
}

fn site(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("site.toml");
    fs::write(&path, text).unwrap();
    path
}

fn installed(program: &str) -> bool {
    tmc_ap::daemons::find_program(program).is_some()
}

/// A site with every option set, NAT included, so every daemon check runs.
const FULL: &str = include_str!("../../../board-config/site.toml");

#[test]
fn check_accepts_the_example_and_the_daemons_agree() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{FULL}\nupstream_interface = \"eth0\"\nupstream_dns = [\"9.9.9.9\"]\n");
    let text = text.replace(
        "# passphrase = \"tmc-sensors-change-me\"",
        "passphrase = \"a long enough passphrase\"",
    );
    let path = site(dir.path(), &text);
    let out = tmc_ap()
        .arg("--site")
        .arg(&path)
        .arg("check")
        .output()
        .unwrap();
    let stdout = success_stdout(&out);
    for (program, line) in [
        ("dnsmasq", "dnsmasq --test: ok"),
        ("hostapd", "hostapd configuration parse: ok"),
    ] {
        if installed(program) {
            assert!(stdout.contains(line), "{stdout}");
        } else {
            eprintln!("SKIP part: {program} is not installed (scripts/deps.sh installs it)");
        }
    }
    assert!(stdout.contains("nft --check: "), "{stdout}");
    assert!(stdout.ends_with(": ok\n"), "{stdout}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("default passphrase"),
        "own passphrase: no warning"
    );
}

#[test]
fn check_warns_about_the_default_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let path = site(dir.path(), "[ap]\n");
    let out = tmc_ap()
        .arg("--site")
        .arg(&path)
        .arg("check")
        .output()
        .unwrap();
    success_stdout(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: ") && stderr.contains("ap.passphrase: not set"),
        "{stderr}"
    );
}

#[test]
fn bad_passphrase_is_caught_by_check_before_hostapd_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = site(dir.path(), "[ap]\npassphrase = \"short\"\n");
    let out = tmc_ap()
        .arg("--site")
        .arg(&path)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{}: ap.passphrase: 5 characters is not allowed: a WPA2 passphrase is 8–63 printable ASCII characters or 64 hex digits", path.display()),
            format!("tmc-ap: {}: 1 problem in the site file", path.display()),
        ]
    );
    assert!(
        out.stdout.is_empty(),
        "no daemon ran: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The same passphrase slipped past check would only fail in hostapd, at start-up on the Pi.
    if installed("hostapd") {
        let ap = tmc_config::SiteConfig::from_toml_str("", "site.toml")
            .unwrap()
            .ap;
        let conf = tmc_ap::render(&ap)
            .into_iter()
            .find(|f| f.out_name == "hostapd.conf")
            .unwrap();
        let bad = conf.contents().unwrap().replace(
            "wpa_passphrase=tmc-sensors-change-me",
            "wpa_passphrase=short",
        );
        let verdict = tmc_ap::daemons::hostapd_parse(&bad);
        assert!(
            verdict
                .to_string()
                .contains("invalid WPA passphrase length 5"),
            "{verdict}"
        );
    }
}

#[test]
fn check_reports_every_problem_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let path = site(
        dir.path(),
        "[ap]\nssid = \"\"\ncountry = \"XX\"\ndhcp_start = \"10.33.33.1\"\n",
    );
    let out = tmc_ap()
        .arg("--site")
        .arg(&path)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fields: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{}: ", path.display())))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["ap.ssid", "ap.country", "ap.dhcp_start"],
        "{stderr}"
    );
    assert!(
        stderr.ends_with("3 problems in the site file\n"),
        "{stderr}"
    );
}

#[test]
fn a_syntax_error_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = site(dir.path(), "[ap]\nssid = tmc-sensors\n");
    for cmd in ["check", "render"] {
        let mut c = tmc_ap();
        c.arg("--site").arg(&path).arg(cmd);
        if cmd == "render" {
            c.arg("--out").arg(dir.path().join("out"));
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{cmd}: {stderr}");
        assert!(stderr.contains("line 2, column 8"), "{cmd}: {stderr}");
    }
    let out = tmc_ap()
        .args(["--site", "/nonexistent/site.toml", "check"])
        .output()
        .unwrap();
    let reason = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        reason,
        "tmc-ap: /nonexistent/site.toml: cannot read the site file: No such file or directory (os error 2)\n"
    );
}

#[test]
fn render_writes_the_files_with_their_modes() {
    let dir = tempfile::tempdir().unwrap();
    let path = site(dir.path(), "[ap]\nupstream_interface = \"eth0\"\n");
    let out_dir = dir.path().join("out");
    let out = tmc_ap()
        .arg("--site")
        .arg(&path)
        .args(["render", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = success_stdout(&out);
    assert!(
        stdout.contains("installs as /etc/hostapd/hostapd.conf"),
        "{stdout}"
    );
    let mode = |name: &str| fs::metadata(out_dir.join(name)).unwrap().mode() & 0o777;
    assert_eq!(mode("hostapd.conf"), 0o600);
    assert_eq!(mode("dnsmasq.d-tmc-ap.conf"), 0o644);
    assert_eq!(mode("nat.nft"), 0o644);
    let first = fs::read(out_dir.join("hostapd.conf")).unwrap();
    success_stdout(
        &tmc_ap()
            .arg("--site")
            .arg(&path)
            .args(["render", "--out"])
            .arg(&out_dir)
            .output()
            .unwrap(),
    );
    assert_eq!(
        fs::read(out_dir.join("hostapd.conf")).unwrap(),
        first,
        "deterministic"
    );
}

fn apply_root(site: &Path, root: &Path) -> String {
    success_stdout(
        &tmc_ap()
            .arg("--site")
            .arg(site)
            .args(["apply", "--root"])
            .arg(root)
            .output()
            .unwrap(),
    )
}

#[test]
fn apply_root_twice_the_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("image");
    fs::create_dir(&root).unwrap();
    let path = site(dir.path(), "[ap]\npassphrase = \"first passphrase\"\n");

    let first = apply_root(&path, &root);
    assert!(
        first.contains("created  /etc/hostapd/hostapd.conf"),
        "{first}"
    );
    assert!(first.contains("services untouched (--root)"), "{first}");
    assert!(!first.contains("systemctl"), "{first}");
    let conf = root.join("etc/hostapd/hostapd.conf");
    assert_eq!(fs::metadata(&conf).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        fs::metadata(root.join("etc/dnsmasq.d/tmc-ap.conf"))
            .unwrap()
            .mode()
            & 0o777,
        0o644
    );

    let second = apply_root(&path, &root);
    assert_eq!(second, "no changes: 9 files already up to date\n");

    // A changed passphrase rewrites only hostapd.conf, keeping the old one as a 0600 backup.
    fs::write(&path, "[ap]\npassphrase = \"second passphrase\"\n").unwrap();
    let third = apply_root(&path, &root);
    let lines: Vec<&str> = third.lines().collect();
    assert_eq!(lines.len(), 2, "{third}");
    assert!(
        lines[0].starts_with("updated  /etc/hostapd/hostapd.conf (backup: "),
        "{third}"
    );
    let backup = lines[0]
        .split("(backup: ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')');
    assert!(fs::read_to_string(backup)
        .unwrap()
        .contains("wpa_passphrase=first passphrase"));
    assert_eq!(fs::metadata(backup).unwrap().mode() & 0o777, 0o600);
    assert!(fs::read_to_string(&conf)
        .unwrap()
        .contains("wpa_passphrase=second passphrase"));
    assert_eq!(
        apply_root(&path, &root),
        "no changes: 9 files already up to date\n"
    );
}

#[test]
fn apply_root_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let path = site(dir.path(), "[ap]\n");
    let out = tmc_ap()
        .arg("--site")
        .arg(&path)
        .args(["apply", "--root", "/nonexistent/image"])
        .output()
        .unwrap();
    let reason = failure_reason(&out);
    assert_eq!(
        reason,
        "tmc-ap: /nonexistent/image: --root must be an existing directory"
    );
}

//! The page in a real browser: Debian's Chromium, headless, loads it from a running `tmc-web`, takes a
//! screenshot, and its DOM after the script ran must show the readings in the output file.
//!
//! Ignored unless asked for (`cargo test -p tmc-web -- --ignored`): it needs the `chromium` package, which
//! `scripts/deps.sh` installs.

// Each test file uses its own part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::process::Command;

use common::Web;

/// Debian's Chromium, if installed.
fn chromium() -> Option<String> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find_map(|name| {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            found
                .status
                .success()
                .then(|| String::from_utf8_lossy(&found.stdout).trim().to_owned())
        })
}

/// Headless Chromium's common flags: no sandbox (tests may run as root), no GPU, scripts given virtual time
/// to run before the page is dumped (the event stream never ends, so "loaded" alone is not the moment).
fn headless(browser: &str, profile: &std::path::Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--virtual-time-budget=5000",
        "--window-size=1024,900",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

#[test]
#[ignore = "needs Debian's chromium (scripts/deps.sh installs it)"]
fn chromium_shows_the_readings_that_were_sent() {
    let browser = chromium().expect("chromium is not installed: run scripts/deps.sh");
    let web = Web::start(
        "{\"topic\":\"sensors/kitchen/temperature\",\"time\":1763766000,\"sender\":10,\"data\":\"21.5\"}\n\
         {\"topic\":\"sensors/kitchen/temperature\",\"time\":1763766060,\"sender\":10,\"data\":\"21.75\"}\n\
         {\"topic\":\"sensors/cellar/humidity\",\"time\":1763766030,\"sender\":10,\"data\":\"{\\\"h\\\":81}\"}\n",
    );
    let url = format!("http://{}/", web.addr);
    let profile = web.dir.path().join("chromium-profile");

    let screenshot = web.dir.path().join("page.png");
    let shot = headless(&browser, &profile)
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");

    let dump = headless(&browser, &profile)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dom = String::from_utf8(dump.stdout).unwrap();
    // Rows the script built from the view: the topic and its last value in their cells.
    assert!(
        dom.contains("<tr data-topic=\"sensors/kitchen/temperature\"><td>sensors/kitchen/temperature</td><td class=\"value\">21.75</td>"),
        "{dom}"
    );
    assert!(dom.contains("<td class=\"value\">{\"h\":81}</td>"), "{dom}");
    // One chart per sensor with numbers, a line per series.
    assert_eq!(dom.matches("<polyline").count(), 2, "{dom}");
    assert!(dom.contains("data-series=\"value\"") && dom.contains("data-series=\"h\""));
}

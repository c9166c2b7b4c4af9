//! The web page over a real site: sensors publish through mosquitto, the relay and the receiver carry the
//! readings over the simulated air, `tmc-web` serves the receiver's files, and Debian's Chromium (headless)
//! shows them: once loaded, and live while the page stays open and more readings arrive.
//!
//! Skipped with a message where Chromium is not installed, unless `TMC_REQUIRE_CHROMIUM` is set (`make test`).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use tmc_demo::{OutputSection, SiteOptions};
use tmc_testkit::chromium;

const SENSORS: usize = 2;
const READINGS: u64 = 3;
/// Guards against a site that stopped: readings take well under a second here.
const LIMIT: Duration = Duration::from_secs(120);

/// The receiver's output file as the page shows it: each topic's last reading.
fn last_per_topic(h: &common::Harness) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(h.files.readings_file()).unwrap();
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let topic = v["topic"].as_str().unwrap().to_owned();
            (topic, v["data"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The sensor table's row for `topic` with `value` as its last reading, as the page's script builds it.
fn row(topic: &str, value: &str) -> String {
    format!("<tr data-topic=\"{topic}\"><td>{topic}</td><td class=\"value\">{value}</td>")
}

/// Checks the readings that arrived are those the sensors sent and the broker acknowledged, and returns
/// each topic's last one.
fn arrived_as_sent(h: &common::Harness, readings: usize) -> BTreeMap<String, String> {
    let output = h.wait_for_output(readings, LIMIT);
    let (acknowledged, output_count, _) = common::verify(&h.acknowledged(), &output);
    assert_eq!((acknowledged, output_count), (readings, readings));
    common::assert_payloads_as_sent(&output);
    let last = last_per_topic(h);
    assert_eq!(last.len(), SENSORS, "{last:?}");
    last
}

#[test]
fn chromium_shows_the_readings_sent_over_the_air_and_their_updates() {
    let Some(browser) =
        chromium::find("chromium_shows_the_readings_sent_over_the_air_and_their_updates")
    else {
        return;
    };
    let h = common::Harness::new(SiteOptions {
        sensors: SENSORS,
        loss: 0.0,
        duty_cycle: 100.0,
        output: OutputSection {
            stdout: false,
            file: Some("readings.jsonl".into()),
        },
        ..SiteOptions::default()
    });
    let _broker = h.broker();
    let receiver = h.receiver();
    let relay = h.relay();
    assert!(h.sensors(READINGS, "50ms").wait().unwrap().success());
    let sent = arrived_as_sent(&h, SENSORS * READINGS as usize);

    let (mut web, address) = h.files.start_web(true).unwrap();
    // tmc-web's log lines, to wait on (and shown with the test's output).
    let (log_tx, log) = mpsc::channel();
    let stderr = web.stderr().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[tmc-web] {line}");
            let _ = log_tx.send(line);
        }
    });
    let url = format!("http://{address}/");

    // The page open (the only browser so far, so the log line is its): once its event stream is open, more readings arrive and the same page shows them.
    let mut page = chromium::Session::open(&browser, &h.dir.path().join("profile-live"), &url);
    loop {
        let line = log
            .recv_timeout(chromium::BROWSER_LIMIT)
            .expect("tmc-web logged no event stream");
        if line.contains("event stream opened") {
            break;
        }
    }
    let before = page.dom();
    for (topic, value) in &sent {
        assert!(before.contains(&row(topic, value)), "{before}");
    }
    assert!(h
        .sensors_from(READINGS + 1, 1, "50ms")
        .wait()
        .unwrap()
        .success());
    let newer = arrived_as_sent(&h, SENSORS * (READINGS as usize + 1));
    assert!(newer.iter().all(|(topic, value)| sent[topic] != *value));
    let shows_newer = |dom: &str| {
        newer
            .iter()
            .all(|(topic, value)| dom.contains(&row(topic, value)))
    };
    let after = page.wait_for_dom(chromium::BROWSER_LIMIT, shows_newer);
    assert!(
        shows_newer(&after),
        "the open page was not updated:\n{after}"
    );
    assert!(
        after.contains("id=\"live\" class=\"muted\">live<"),
        "{after}"
    );
    assert_eq!(after.matches("<div class=\"sensor\">").count(), SENSORS);
    let screenshot = h.dir.path().join("page.png");
    page.screenshot(&screenshot);
    drop(page);
    // The receiver's snapshot has every frame (it is written a few seconds after a change): the frames the
    // page charts and the airtime it sums.
    let status = h.wait_for_receiver(Duration::from_secs(30), |s| {
        s["snapshot"]["link"]["readings_stored"].as_u64()
            == Some((SENSORS * (READINGS as usize + 1)) as u64)
    });
    let frames = status["snapshot"]["link"]["recent_frames"]
        .as_array()
        .unwrap()
        .len();
    assert!(frames > 0, "{status}");
    // A visitor's load, after it: every sensor's topic and its last reading, one chart each, the link quality
    // of every frame and the relay's airtime against the band's budget (100 % here: 3600 s).
    let loaded = h.dir.path().join("loaded.png");
    let dom = chromium::load(&browser, &h.dir.path().join("profile-load"), &url, &loaded);
    for (topic, value) in &newer {
        assert!(dom.contains(&row(topic, value)), "{topic} {value}:\n{dom}");
        assert!(
            dom.contains(&format!("font-size=\"12\">{topic}</text>")),
            "{dom}"
        );
    }
    assert_eq!(
        dom.matches("<div class=\"sensor\">").count(),
        SENSORS,
        "{dom}"
    );
    assert!(
        dom.contains(&format!("RSSI / SNR per frame ({frames} frames)")),
        "{dom}"
    );
    assert!(
        dom.contains("s of the band's 3600 s budget (0 % used)</td>"),
        "{dom}"
    );
    eprintln!(
        "screenshots: {} (the open page, updated live), {} (loaded after)",
        screenshot.display(),
        loaded.display()
    );

    // tmc-web holds nothing to finish: it is stopped, not drained.
    web.kill().unwrap();
    assert!(relay.terminate().unwrap().success());
    assert!(receiver.terminate().unwrap().success());
}

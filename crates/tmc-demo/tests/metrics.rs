//! `[metrics]` on the real services: `tmc-relay run` and `tmc-receiver run` serve Prometheus metrics over HTTP
//! that say what was sent (parsed as Prometheus parses them, and linted by `promtool check metrics`).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tmc_demo::{OutputSection, SiteOptions};

const READINGS: u64 = 30;

/// Adds `[metrics] listen = <a free port on 127.0.0.1>` to the configuration file at `config`.
fn serve_metrics(config: &Path) -> SocketAddr {
    let address: SocketAddr = format!("127.0.0.1:{}", tmc_testkit::free_port())
        .parse()
        .unwrap();
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!("\n[metrics]\nlisten = \"{address}\"\n"));
    std::fs::write(config, text).unwrap();
    address
}

fn scrape(address: SocketAddr) -> (tmc_testkit::Metrics, String) {
    let (code, body) = tmc_service::metrics::http_get(address, "/metrics").unwrap();
    assert_eq!(code, 200, "{body}");
    tmc_testkit::promtool_check_metrics(&body);
    (tmc_testkit::Metrics::parse(&body), body)
}

#[test]
fn relay_and_receiver_metrics_say_what_was_sent() {
    let h = common::Harness::new(SiteOptions {
        sensors: 1,
        loss: 0.0,
        duty_cycle: 100.0,
        output: OutputSection {
            stdout: false,
            file: Some("readings.jsonl".into()),
        },
        ..SiteOptions::default()
    });
    let relay_metrics = serve_metrics(&h.files.relay_config());
    let receiver_metrics = serve_metrics(&h.files.receiver_config());
    let _broker = h.broker();
    let receiver = h.receiver();
    let relay = h.relay();
    let sensors = h.sensors(READINGS, "20ms");
    assert!(sensors.wait().unwrap().success(), "sensor simulator failed");
    h.wait_for_output(READINGS as usize, Duration::from_secs(120));
    // The relay counts its delivery once the ACK came back; its status shows it within a few seconds.
    let status = h.wait_for_relay(Duration::from_secs(30), |s| {
        s["service"]["link"]["readings_delivered"].as_u64() == Some(READINGS)
    });
    let link = &status["service"]["link"];

    let (metrics, body) = scrape(relay_metrics);
    let value = |name: &str, labels: &[(&str, &str)]| {
        metrics
            .value(name, labels)
            .unwrap_or_else(|| panic!("{name} {labels:?} not in\n{body}"))
    };
    let n = READINGS as f64;
    assert_eq!(value("tmc_relay_readings_stored_total", &[]), n);
    assert_eq!(value("tmc_relay_readings_delivered_total", &[]), n);
    assert_eq!(
        value("tmc_relay_tokens_delivered_total", &[]),
        link["tokens_delivered"].as_f64().unwrap()
    );
    assert_eq!(
        value("tmc_relay_frames_sent_total", &[]),
        link["frames_sent"].as_f64().unwrap()
    );
    assert_eq!(
        value("tmc_relay_retries_total", &[]),
        link["retries"].as_f64().unwrap()
    );
    assert_eq!(
        value("tmc_relay_readings_rejected_total", &[("reason", "topic")]),
        0.0
    );
    assert_eq!(value("tmc_relay_mqtt_connected", &[]), 1.0);
    assert_eq!(value("tmc_relay_queue_readings", &[]), 0.0);
    assert_eq!(value("tmc_relay_queue_oldest_age_seconds", &[]), 0.0);
    let used = value("tmc_relay_airtime_used_seconds", &[]);
    let budget = value("tmc_relay_airtime_budget_seconds", &[]);
    assert!(used > 0.0 && used <= budget, "{used} of {budget}");
    assert!(value("process_resident_memory_bytes", &[]) > 0.0);

    let (metrics, body) = scrape(receiver_metrics);
    let value = |name: &str, labels: &[(&str, &str)]| {
        metrics
            .value(name, labels)
            .unwrap_or_else(|| panic!("{name} {labels:?} not in\n{body}"))
    };
    assert_eq!(value("tmc_receiver_readings_stored_total", &[]), n);
    assert_eq!(
        value("tmc_receiver_tokens_stored_total", &[]),
        link["tokens_delivered"].as_f64().unwrap()
    );
    assert!(value("tmc_receiver_last_frame_rssi_dbm", &[]) < 0.0);
    // Nothing lost on this air: the gateway heard every frame the relay spent airtime on (to the millisecond
    // per frame it counts in), against the same band's budget.
    let heard = value("tmc_receiver_relay_airtime_heard_seconds", &[]);
    let frames = link["frames_sent"].as_f64().unwrap();
    assert!(
        heard <= used && used - heard <= frames * 0.001,
        "heard {heard} s of the relay's {used} s in {frames} frames"
    );
    assert_eq!(value("tmc_receiver_airtime_budget_seconds", &[]), budget);
    assert!(value("process_resident_memory_bytes", &[]) > 0.0);
    eprintln!("receiver scrape:\n{body}");

    assert!(relay.terminate().unwrap().success());
    assert!(receiver.terminate().unwrap().success());
}

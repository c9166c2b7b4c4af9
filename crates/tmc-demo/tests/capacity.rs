//! Readings per frame with real processes: a backlog of the firmware's readings from five sensors goes out in
//! tokens that each gather one sensor's readings (batch layout 2, keys once per topic), and every reading
//! comes out byte for byte, in per-sensor order. The relay's rule before (the oldest 8 in order, 3 of these
//! readings per frame) needed 17 tokens for these 50 readings, and any rule of at most 8 per token 7; 3 is what
//! this takes now.

mod common;

use std::time::Duration;

use tmc_demo::{OutputSection, SiteOptions};

const WAIT: Duration = Duration::from_secs(180);

#[test]
fn a_backlog_of_fifty_readings_from_five_sensors_goes_out_in_at_most_eight_tokens() {
    let h = common::Harness::new(SiteOptions {
        sensors: 5,
        loss: 0.0,
        duty_cycle: 100.0,
        output: OutputSection {
            stdout: false,
            file: Some("readings.jsonl".into()),
        },
        ..SiteOptions::default()
    });
    let _broker = h.broker();
    // The relay subscribes once and stops: the broker keeps its session and what the sensors publish meanwhile.
    assert!(h.relay().terminate().unwrap().success());
    assert!(h.sensors(10, "20ms").wait().unwrap().success());
    let acknowledged = h.acknowledged();
    assert_eq!(acknowledged.len(), 50);

    let receiver = h.receiver();
    let relay = h.relay();
    let output = h.wait_for_output(50, WAIT);
    let (_, out, extra) = common::verify(&acknowledged, &output);
    assert_eq!((out, extra), (50, 0));
    common::assert_payloads_as_sent(&output);
    let status = h.wait_for_relay(WAIT, |s| {
        s["service"]["link"]["readings_delivered"].as_u64() == Some(50)
    });
    let tokens = status["service"]["link"]["tokens_delivered"]
        .as_u64()
        .unwrap();
    eprintln!("50 readings in {tokens} tokens");
    assert!(tokens <= 6, "50 readings took {tokens} tokens: {status}");
    assert!(relay.terminate().unwrap().success());
    assert!(receiver.terminate().unwrap().success());
}

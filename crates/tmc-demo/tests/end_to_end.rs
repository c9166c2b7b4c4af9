//! The whole data path with real processes: sensors → mosquitto (mTLS) → `tmc-relay run` → simulated LoRa →
//! `tmc-receiver run` → JSON-lines file. 1000 readings from 5 sensors arrive exactly once, in per-sensor order,
//! with content intact.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use tmc_demo::SiteOptions;

#[test]
fn a_thousand_readings_from_five_sensors_arrive_exactly_once_in_order() {
    let h = common::Harness::new(SiteOptions {
        sensors: 5,
        loss: 0.05,
        duty_cycle: 100.0,
        output: "stdout = false\nfile = \"readings.jsonl\"\n".into(),
        backoff: 0.2,
        ..SiteOptions::default()
    });
    let _broker = h.broker();
    let receiver = h.receiver();
    let relay = h.relay();
    let sensors = h.sensors(200, "20ms");
    assert!(sensors.wait().unwrap().success(), "sensor simulator failed");
    let acknowledged = h.acknowledged();
    assert_eq!(acknowledged.len(), 1000);
    let output = h.wait_for_output(1000, Duration::from_secs(240));
    let (acked, out, extra) = common::verify(&acknowledged, &output);
    eprintln!("acknowledged {acked}, output {out}, output without acknowledgement {extra}");
    assert_eq!((out, extra), (1000, 0));
    assert!(relay.terminate().unwrap().success());
    assert!(receiver.terminate().unwrap().success());
}

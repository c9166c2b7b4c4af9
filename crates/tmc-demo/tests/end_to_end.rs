//! The whole data path with real processes: sensors (the firmware's node code, MQTT 3.1.1 over the node's TLS
//! client, each key in its own simulated ATECC608A) → mosquitto (mTLS, ACL) → `tmc-relay run` → simulated
//! LoRa → `tmc-receiver run` → JSON-lines file. 1000 readings from 5 sensors arrive exactly once, in
//! per-sensor order, byte for byte what the node sent.

mod common;

use std::time::Duration;

use tmc_demo::{OutputSection, SiteOptions};

#[test]
fn a_thousand_readings_from_five_sensors_arrive_exactly_once_in_order() {
    let h = common::Harness::new(SiteOptions {
        sensors: 5,
        loss: 0.05,
        duty_cycle: 100.0,
        output: OutputSection {
            stdout: false,
            file: Some("readings.jsonl".into()),
        },
        backoff: 0.2,
        ..SiteOptions::default()
    });
    // The sensors' keys are in their chips: the site holds their certificates, and no key files.
    for name in &h.files.sensors {
        assert!(tmc_sensor_sim::chip_path(h.files.site.dir(), name).is_file());
        assert!(!h.files.site.key_path(name).exists(), "{name}");
    }
    let broker = h.broker();
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
    // Byte-identical to the node's payload: {"id":…,"seq":…,"adc":adc(id, seq)}.
    common::assert_payloads_as_sent(&output);
    // Each sensor connected with its certificate as identity, over MQTT 3.1.1 (mosquitto's "p2").
    let log = broker.log_text();
    for name in &h.files.sensors {
        assert!(
            log.contains(&format!("as {name} (p2, c1, k30, u'{name}')")),
            "{name} did not connect over MQTT 3.1.1 with its certificate"
        );
    }
    assert!(relay.terminate().unwrap().success());
    assert!(receiver.terminate().unwrap().success());
}

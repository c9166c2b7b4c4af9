//! The relay's airtime as `tmc-relay status` shows it, with real processes on the simulated air and no gateway
//! answering: the counters move while a token is still being retried, and a relay killed after spending its
//! duty-cycle budget starts again with the budget spent.

mod common;

use std::time::Duration;

use tmc_demo::SiteOptions;

const WAIT: Duration = Duration::from_secs(120);

fn link(status: &serde_json::Value) -> (u64, u64, f64, f64) {
    let link = &status["service"]["link"];
    (
        link["frames_sent"].as_u64().unwrap_or(0),
        link["tokens_delivered"].as_u64().unwrap_or(0),
        link["airtime_used_s"].as_f64().unwrap_or(0.0),
        link["airtime_budget_s"].as_f64().unwrap_or(0.0),
    )
}

#[test]
fn airtime_shows_while_a_silent_gateway_is_retried_and_survives_a_relay_kill() {
    // 0.005 % of an hour is 180 ms: two or three frames of this token on the test board's modem.
    let h = common::Harness::new(SiteOptions {
        sensors: 1,
        loss: 0.0,
        duty_cycle: 0.005,
        backoff: 0.2,
        ..SiteOptions::default()
    });
    let _broker = h.broker();
    let relay = h.relay();
    assert!(h.sensors(1, "10ms").wait().unwrap().success());

    // No receiver: the token is never acknowledged, so the send that is retrying it never returns.
    let status = h.wait_for_relay(WAIT, |s| link(s).0 >= 1);
    let (frames, delivered, used, budget) = link(&status);
    assert!(frames >= 1 && used > 0.0, "{status}");
    assert_eq!(delivered, 0, "{status}");

    // Retried until the next frame no longer fits the budget.
    let spent = |s: &serde_json::Value| {
        let (frames, _, used, budget) = link(s);
        frames > 0 && used + used / frames as f64 > budget
    };
    let status = h.wait_for_relay(WAIT, spent);
    assert!(spent(&status), "{status}");
    let (frames_before, _, used_before, _) = link(&status);
    let frame = used_before / frames_before as f64;
    assert!(used_before <= budget + 1e-9, "{status}");
    relay.kill().unwrap();

    // The next relay has sent nothing yet and already counts what the one before it used.
    let relay = h.relay();
    let pid = u64::from(relay.pid());
    let status = h.wait_for_relay(WAIT, |s| s["service"]["pid"].as_u64() == Some(pid));
    let (frames, _, used_after, _) = link(&status);
    assert_eq!(frames, 0, "{status}");
    assert!(
        used_after >= used_before - 1e-6 && used_after + frame > budget,
        "before the kill {used_before} s of {budget} s, after it: {status}"
    );
    assert!(relay.terminate().unwrap().success());
}

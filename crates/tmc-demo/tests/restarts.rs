//! What each side remembers across restarts, with real processes on the simulated air.
//!
//! - The relay is killed after exactly 1, 255 and 256 tokens (one frame each, one header ID each) and after a
//!   random number, once with its header-ID file removed (a relay that forgot its IDs starts at 1 again, as
//!   the one before it did): every reading the broker acknowledged to the sensor is output exactly once.
//! - A stand-in for the old deployment's sender (`RH_RF95::send`: header `01 0a 00 00`, a new process per
//!   reading, no retry flag) sends 100 different legacy readings: 100 outputs; the same frame twice in one
//!   process: one output, two ACKs; PKCS#7- and NUL-padded tokens: their plaintext without padding.

mod common;

use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::time::Duration;

use tmc_demo::{OutputSection, SiteOptions};

const WAIT: Duration = Duration::from_secs(240);

#[test]
fn a_relay_killed_after_1_255_256_and_a_random_number_of_frames_loses_no_reading() {
    let h = common::Harness::new(SiteOptions {
        sensors: 1,
        loss: 0.0,
        duty_cycle: 100.0,
        output: OutputSection {
            stdout: false,
            file: Some("readings.jsonl".into()),
        },
        backoff: 0.2,
        // One reading per token, so that a token count is a header-ID count.
        max_batch: Some(1),
        ..SiteOptions::default()
    });
    let random = 2 + std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % 299;
    eprintln!("random restart point: after {random} frames");
    let _broker = h.broker();
    let receiver = h.receiver();
    let id_file = h.dir.path().join("relay-state/relay-header-id-10");
    // (tokens this relay process sends before it is killed, whether its header-ID file survives the kill).
    // The first two relays both start at ID 1: the second one's token has the ID the receiver confirmed last.
    let phases = [
        (1, false),
        (1, true),
        (255, true),
        (256, true),
        (random, true),
    ];
    let mut next_seq = 1;
    let mut previous_last_id = None;
    for (phase, (tokens, keeps_ids)) in phases.into_iter().enumerate() {
        let reserved: u64 =
            std::fs::read_to_string(&id_file).map_or(0, |text| text.trim().parse().unwrap());
        let relay = h.relay();
        assert!(h
            .sensors_from(next_seq, tokens, "10ms")
            .wait()
            .unwrap()
            .success());
        next_seq += tokens;
        let total = (next_seq - 1) as usize;
        assert_eq!(
            h.wait_for_output(total, WAIT).len(),
            total,
            "phase {phase}: readings missing after {tokens} frames (relay status {})",
            h.relay_status()
        );
        // Killed once it has taken every ACK in: it sent exactly `tokens` datagrams.
        let pid = u64::from(relay.pid());
        let status = h.wait_for_relay(WAIT, |s| {
            s["service"]["pid"].as_u64() == Some(pid)
                && s["service"]["link"]["tokens_delivered"].as_u64() == Some(tokens)
        });
        let link = &status["service"]["link"];
        assert_eq!(link["tokens_delivered"].as_u64(), Some(tokens), "{status}");
        let last_id = link["last_header_id"].as_u64().unwrap();
        eprintln!(
            "phase {phase}: {tokens} tokens in {} frames, last header ID {last_id}",
            link["frames_sent"]
        );
        // The relay goes on from its reservation (the file holds the first sequence number not reserved; the
        // ID is its low byte plus one), so its first ID differs from the last one before the kill.
        let id_of = |seq: u64| (seq % 256 + 1) % 256;
        let first_id = id_of(reserved);
        assert_eq!(last_id, id_of(reserved + tokens - 1), "phase {phase}");
        if reserved > 0 {
            assert_ne!(Some(first_id), previous_last_id, "phase {phase}");
        }
        previous_last_id = Some(last_id);
        relay.kill().unwrap();
        if !keeps_ids {
            std::fs::remove_file(&id_file).unwrap();
        }
    }
    // A last relay drains whatever is left and stops cleanly.
    let relay = h.relay();
    assert!(h
        .sensors_from(next_seq, 10, "10ms")
        .wait()
        .unwrap()
        .success());
    let acknowledged = h.acknowledged();
    let output = h.wait_for_output(acknowledged.len(), WAIT);
    let (acked, out, extra) = common::verify(&acknowledged, &output);
    assert_eq!((out, extra), (acked, 0));
    assert!(relay.terminate().unwrap().success());
    let status = h.wait_for_receiver(WAIT, |s| {
        s["snapshot"]["link"]["tokens_stored"].as_u64() == Some(acked as u64)
    });
    common::assert_every_frame_accounted(&status["snapshot"]["link"]);
    eprintln!(
        "{acked} readings acknowledged, each output once; receiver: {}",
        status["snapshot"]["link"]
    );
    assert!(receiver.terminate().unwrap().success());
}

/// Runs the old sender's stand-in once; its stdout, one `ack`/`no-ack` per transmission.
fn old_sender(h: &common::Harness, args: &[&str]) -> String {
    let air = format!("sim:{}", h.dir.path().join("air").display());
    let board = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fast-sim-board.toml");
    let board = board.display().to_string();
    let bin = tmc_demo::bin_dir().unwrap().join("tmc-radiohead-node");
    let mut cmd = tmc_testkit::bin_command(&bin.display().to_string());
    cmd.args(["--air", &air, "--board", &board, "--ack-wait-ms", "3000"])
        .args(args);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn old_radiohead_senders_get_every_reading_through_once() {
    let h = common::Harness::new(SiteOptions {
        sensors: 0,
        loss: 0.0,
        duty_cycle: 100.0,
        output: OutputSection {
            stdout: false,
            file: Some("readings.jsonl".into()),
        },
        legacy: true,
        ..SiteOptions::default()
    });
    let receiver = h.receiver();
    // The receiver is on the air once its first status snapshot exists.
    h.wait_for_receiver(WAIT, |s| s["snapshot"]["running"].as_bool() == Some(true));

    let mut want: Vec<String> = Vec::new();
    for i in 0..100 {
        let reading = format!("t=21.{i:02}");
        assert_eq!(
            old_sender(&h, &["--legacy", &reading]),
            "ack\n",
            "{reading}"
        );
        want.push(reading);
    }
    // One frame sent twice (a retry without the RETRY flag): acknowledged twice, output once.
    assert_eq!(
        old_sender(&h, &["--legacy", "t=22.00", "--repeat", "2"]),
        "ack\nack\n"
    );
    want.push("t=22.00".into());
    // The independent generator's tokens, padded with PKCS#7 and with NULs: the plaintext, without padding.
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/vectors/vectors.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for padding in ["pkcs7", "nul"] {
        let v = vectors["legacy"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| {
                v["padding"] == padding
                    && v["plaintext_hex"] == "54656d70657261747572653a2032312e35302043"
            })
            .unwrap();
        let frame = v["frame_hex"].as_str().unwrap();
        assert_eq!(old_sender(&h, &["--hex", frame]), "ack\n", "{padding}");
        want.push("Temperature: 21.50 C".into());
    }

    let lines = h.wait_for_lines(want.len(), WAIT);
    let got: Vec<String> = lines
        .iter()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["topic"], "/esp8266", "{line}");
            v["data"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(got, want);
    let status = h.wait_for_receiver(WAIT, |s| {
        s["snapshot"]["link"]["tokens_stored"].as_u64() == Some(want.len() as u64)
            && s["snapshot"]["link"]["resent_copies"].as_u64() == Some(1)
    });
    let link = &status["snapshot"]["link"];
    assert_eq!(
        link["legacy_frames"].as_u64(),
        Some(want.len() as u64),
        "{link}"
    );
    assert_eq!(link["resent_copies"].as_u64(), Some(1), "{link}");
    common::assert_every_frame_accounted(link);
    assert!(receiver.terminate().unwrap().success());
}

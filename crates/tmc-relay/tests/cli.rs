//! `tmc-relay` through its command line: tokens it prints open with the library.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use tmc_envelope::{legacy, Encoding, KeyRing, Opener, ReplayGuard};
use tmc_testkit::{failure_reason, success_stdout};

fn relay(args: &[&str], state: &Path, stdin: Option<&[u8]>) -> Output {
    let mut cmd = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-relay"));
    cmd.args(args).env("TMC_STATE_DIR", state);
    tmc_testkit::run_with_stdin(cmd, stdin.unwrap_or_default())
}

fn stdout(o: &Output) -> String {
    success_stdout(o).trim_end().to_owned()
}

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
        };
        stdout(&relay(
            &["keys", "new", "--out", &site.keys()],
            site.state(),
            None,
        ));
        site
    }
    fn keys(&self) -> String {
        self.dir.path().join("keys.toml").display().to_string()
    }
    fn state(&self) -> &Path {
        self.dir.path()
    }
    fn ring(&self) -> KeyRing {
        KeyRing::load(Path::new(&self.keys())).unwrap()
    }
}

#[test]
fn keys_new_writes_a_0600_ring_and_never_overwrites() {
    let site = Site::new();
    let mode = std::fs::metadata(site.keys()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = relay(&["keys", "new", "--out", &site.keys()], site.state(), None);
    assert!(failure_reason(&again).contains("already exists"));
}

#[test]
fn sealed_text_and_packed_tokens_open_with_the_library() {
    let site = Site::new();
    let text = stdout(&relay(
        &[
            "seal",
            "--keys",
            &site.keys(),
            "--data",
            "t=21.5",
            "--time",
            "1763766000",
        ],
        site.state(),
        None,
    ));
    assert!(text.starts_with("eyJ"));
    let packed_hex = stdout(&relay(
        &[
            "seal",
            "--keys",
            &site.keys(),
            "--encoding",
            "packed",
            "--topic",
            "sensors/a/reading",
            "--data",
            "1",
            "--data",
            "2",
        ],
        site.state(),
        None,
    ));
    let mut opener = Opener::new(site.ring(), ReplayGuard::default());
    let a = opener.open(text.as_bytes()).unwrap();
    assert_eq!(
        (
            a.readings[0].data.as_slice(),
            a.readings[0].time,
            a.sender,
            a.counter
        ),
        (&b"t=21.5"[..], 1763766000, 10, 0)
    );
    let b = opener.open(&hex::decode(packed_hex).unwrap()).unwrap();
    assert_eq!(b.encoding, Encoding::Packed);
    assert_eq!(
        b.counter, 1,
        "the counter file carried the counter forward between runs"
    );
    let data: Vec<_> = b
        .readings
        .iter()
        .map(|r| (r.topic.as_str(), r.data.clone()))
        .collect();
    assert_eq!(
        data,
        [
            ("sensors/a/reading", b"1".to_vec()),
            ("sensors/a/reading", b"2".to_vec())
        ]
    );
}

#[test]
fn stdin_is_one_reading_byte_for_byte() {
    let site = Site::new();
    let payload = [0u8, 0xff, b'\n', 0x80];
    let text = stdout(&relay(
        &["seal", "--keys", &site.keys()],
        site.state(),
        Some(&payload),
    ));
    let opened = Opener::new(site.ring(), ReplayGuard::default())
        .open(text.as_bytes())
        .unwrap();
    assert_eq!(opened.readings[0].data, payload);
}

#[test]
fn oversized_batch_and_bad_keys_fail_with_one_line() {
    let site = Site::new();
    let big = "x".repeat(300);
    let err = failure_reason(&relay(
        &["seal", "--keys", &site.keys(), "--data", &big],
        site.state(),
        None,
    ));
    assert!(
        err.starts_with("tmc-relay: token would be") && err.contains("more than the 251"),
        "{err}"
    );
    std::fs::set_permissions(site.keys(), std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = failure_reason(&relay(
        &["seal", "--keys", &site.keys(), "--data", "x"],
        site.state(),
        None,
    ));
    assert!(err.contains("mode 0640"), "{err}");
    let err = failure_reason(&relay(&["seal", "--data", "x"], site.state(), None));
    assert!(err.contains("--keys is required"), "{err}");
}

#[test]
fn legacy_tokens_open_with_the_legacy_keys() {
    let site = Site::new();
    let token = stdout(&relay(
        &["seal", "--profile", "legacy", "--data", "hello"],
        site.state(),
        None,
    ));
    assert_eq!(
        legacy::open(&legacy::LegacyKeys::default(), token.as_bytes()).unwrap(),
        b"hello"
    );
    let err = failure_reason(&relay(
        &[
            "seal",
            "--profile",
            "legacy",
            "--encoding",
            "packed",
            "--data",
            "x",
        ],
        site.state(),
        None,
    ));
    assert!(err.contains("only the text encoding"), "{err}");
}

#[test]
fn rotate_adds_a_sealing_key_that_old_rings_do_not_know() {
    let site = Site::new();
    let before = site.ring();
    stdout(&relay(
        &["keys", "rotate", "--keys", &site.keys()],
        site.state(),
        None,
    ));
    let text = stdout(&relay(
        &["seal", "--keys", &site.keys(), "--data", "x"],
        site.state(),
        None,
    ));
    let err = Opener::new(before, ReplayGuard::default())
        .open(text.as_bytes())
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown key id 2 (the key ring has 1)");
    assert_eq!(
        Opener::new(site.ring(), ReplayGuard::default())
            .open(text.as_bytes())
            .unwrap()
            .kid,
        2
    );
}

#[test]
fn airtime_reports_the_datasheet_values_and_refuses_bad_modems() {
    let dir = tempfile::tempdir().unwrap();
    // 16 data bytes + 4 header = the 20-byte LoRa payload of the SX1276 datasheet example.
    let sf7 = stdout(&relay(&["airtime", "--bytes", "16"], dir.path(), None));
    let row = sf7
        .lines()
        .find(|l| l.trim_start().starts_with("16 "))
        .unwrap();
    assert!(row.contains("56.576 ms") && row.contains(" 636 "), "{row}");
    let sf12 = stdout(&relay(
        &["airtime", "--sf", "12", "--bytes", "16"],
        dir.path(),
        None,
    ));
    assert!(sf12.contains("1318.912 ms"), "{sf12}");
    // A batched token is sized with the envelope and priced with the radio.
    let token = stdout(&relay(
        &["airtime", "--bytes", "1", "--readings", "8"],
        dir.path(),
        None,
    ));
    assert!(token.contains("token: 8×16B packed"), "{token}");
    let err = failure_reason(&relay(&["airtime", "--sf", "13"], dir.path(), None));
    assert!(
        err.contains("--sf 13: spreading factor must be 7–12"),
        "{err}"
    );
    let err = failure_reason(&relay(&["airtime", "--bytes", "252"], dir.path(), None));
    assert!(err.contains("252 data bytes do not fit"), "{err}");
}

#[test]
fn run_refuses_a_sender_id_or_address_the_site_did_not_assign() {
    let site = Site::new();
    let dir = site.state();
    let config = dir.join("relay.toml");
    let write_config = |sender: &str| {
        std::fs::write(
            &config,
            format!(
                "state_dir = \"state\"\n[mqtt]\nhost = \"127.0.0.1\"\n[radio]\nsim = \"sim:air\"\naddress = 10\n\
                 [envelope]\nkeys = \"keys.toml\"\n{sender}"
            ),
        )
        .unwrap();
    };
    // As provisioning puts it beside relay.toml.
    std::fs::write(
        dir.join("assignment.toml"),
        "name = \"c1\"\naddress = 10\nsender = 10\n",
    )
    .unwrap();
    let run = || {
        relay(
            &["run", "--config", &config.display().to_string()],
            dir,
            None,
        )
    };
    write_config("sender = 12\n");
    let reason = failure_reason(&run());
    assert!(
        reason.contains("assignment.toml: this board (\"c1\") was assigned sender id 10, but the relay would run with 12 ([envelope] sender)"),
        "{reason}"
    );
    std::fs::write(
        dir.join("assignment.toml"),
        "name = \"c1\"\naddress = 11\nsender = 11\n",
    )
    .unwrap();
    write_config("");
    let reason = failure_reason(&run());
    assert!(
        reason.contains("was assigned node address 11, but the relay would run with 10"),
        "{reason}"
    );
}

//! `tmc-receiver decode` through its command line, against tokens sealed by the library.

use std::path::{Path, PathBuf};
use std::process::Output;

use tmc_envelope::{legacy, Encoding, KeyRing, MemoryCounter, Overwrite, Reading, Sealer};
use tmc_testkit::{failure_reason, success_stdout};

const IAT: u64 = 1_763_766_000;

fn decode(args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-receiver"));
    cmd.arg("decode").args(args);
    tmc_testkit::run_with_stdin(cmd, stdin)
}

fn lines(o: &Output) -> Vec<serde_json::Value> {
    success_stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

struct Site {
    dir: tempfile::TempDir,
    ring: KeyRing,
}

impl Site {
    fn new(kid: u8) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::generate(kid).unwrap();
        ring.save(&dir.path().join("keys.toml"), Overwrite::Refuse)
            .unwrap();
        Site { dir, ring }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn keys(&self) -> String {
        self.path("keys.toml").display().to_string()
    }
    fn seal(&self, counter: u32, encoding: Encoding, data: &[&[u8]]) -> String {
        let mut s = Sealer::new(&self.ring, 10, MemoryCounter::starting_at(10, counter));
        let readings: Vec<_> = data
            .iter()
            .map(|d| Reading::new("/esp8266", IAT, d.to_vec()))
            .collect();
        let sealed = s.seal(&readings, IAT, encoding).unwrap();
        match encoding {
            Encoding::Text => String::from_utf8(sealed.bytes).unwrap(),
            Encoding::Packed => hex::encode(sealed.bytes),
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn prints_each_reading_as_a_json_line() {
    let site = Site::new(1);
    let token = site.seal(4, Encoding::Packed, &[b"21.5", &[0xff, 0x00]]);
    let out = lines(&decode(&["--keys", &site.keys(), &token], b""));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["data"], "21.5");
    assert_eq!(out[0]["topic"], "/esp8266");
    assert_eq!(
        (out[0]["sender"].as_u64(), out[0]["counter"].as_u64()),
        (Some(10), Some(4))
    );
    assert_eq!(out[0]["encoding"], "packed");
    assert_eq!(out[1]["data_base64"], "/wA=", "non-UTF-8 data is base64");
}

#[test]
fn reads_tokens_from_stdin_one_per_line() {
    let site = Site::new(1);
    let input = format!(
        "{}\n\n{}\n",
        site.seal(0, Encoding::Text, &[b"a"]),
        site.seal(1, Encoding::Packed, &[b"b"])
    );
    let out = lines(&decode(&["--keys", &site.keys()], input.as_bytes()));
    assert_eq!(
        out.iter()
            .map(|l| l["data"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[test]
fn every_bad_token_exits_1_with_a_one_line_reason() {
    let site = Site::new(1);
    let other = Site::new(1);
    let unknown = Site::new(9);
    let text = site.seal(0, Encoding::Text, &[b"x"]);
    let packed = site.seal(1, Encoding::Packed, &[b"x"]);
    let mut forged = text.clone();
    forged.replace_range(
        text.len() - 1..,
        if text.ends_with('A') { "E" } else { "A" },
    );
    let cases = [
        (forged, "bad signature"),
        (
            text[..text.len() - 10].to_string(),
            "malformed token: signature",
        ),
        (
            packed[..60].to_string(),
            "malformed token: packed token is 30 bytes",
        ),
        (other.seal(0, Encoding::Packed, &[b"x"]), "bad signature"),
        (
            unknown.seal(0, Encoding::Text, &[b"x"]),
            "unknown key id 9 (the key ring has 1)",
        ),
        ("not hex".to_string(), "neither a text JWT"),
    ];
    for (token, reason) in cases {
        let err = failure_reason(&decode(&["--keys", &site.keys(), &token], b""));
        assert!(
            err.starts_with("tmc-receiver: ") && err.contains(reason),
            "{token}: {err}"
        );
    }
}

#[test]
fn a_token_is_accepted_once_across_runs_with_a_state_file() {
    let site = Site::new(1);
    let state = site.path("replay.json");
    let token = site.seal(7, Encoding::Packed, &[b"x"]);
    let args = ["--keys", &site.keys(), "--state", path_str(&state), &token];
    assert_eq!(lines(&decode(&args, b"")).len(), 1);
    let err = failure_reason(&decode(&args, b""));
    assert_eq!(
        err,
        "tmc-receiver: replayed token: sender 10 counter 7 was already accepted"
    );
}

#[test]
fn one_bad_token_among_many_is_named_and_the_rest_decode() {
    let site = Site::new(1);
    let good = site.seal(0, Encoding::Text, &[b"ok"]);
    let input = format!("{good}\n{good}\n");
    let o = decode(&["--keys", &site.keys()], input.as_bytes());
    assert_eq!(o.status.code(), Some(1));
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert!(stderr.contains("token 2: replayed token"), "{stderr}");
    assert!(stderr.contains("1 of 2 token(s) refused"), "{stderr}");
}

#[test]
fn legacy_profile_decodes_the_old_deployments_tokens() {
    let frame = legacy::seal(&legacy::LegacyKeys::default(), b"Temperature: 21.50 C").unwrap();
    let token = String::from_utf8(frame[..frame.len() - 1].to_vec()).unwrap();
    let out = lines(&decode(&["--profile", "legacy", &token], b""));
    assert_eq!(out[0]["data"], "Temperature: 21.50 C");
    assert_eq!(out[0]["profile"], "legacy");
    // A secure token is not a legacy one.
    let site = Site::new(1);
    let err = failure_reason(&decode(
        &[
            "--profile",
            "legacy",
            &site.seal(0, Encoding::Text, &[b"x"]),
        ],
        b"",
    ));
    assert!(err.contains("bad signature"), "{err}");
}

#[test]
fn world_readable_key_ring_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new(1);
    std::fs::set_permissions(site.keys(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = failure_reason(&decode(
        &[
            "--keys",
            &site.keys(),
            &site.seal(0, Encoding::Text, &[b"x"]),
        ],
        b"",
    ));
    assert!(
        err.contains("mode 0644") && err.contains("chmod 600"),
        "{err}"
    );
}

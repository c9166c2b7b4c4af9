//! `tmc-receiver status`: what the running (or last) receiver reported in its status snapshot.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::config::Config;
use tmc_service::Stamped;

use crate::shared::{unix_now, Snapshot};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Configuration file (its state_dir holds the snapshot).
    #[arg(long, default_value = "/etc/tmc/receiver.toml")]
    pub config: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub use tmc_service::status::State;

#[derive(Serialize)]
struct JsonStatus<'a> {
    state: State,
    status_file: String,
    /// Since the counters last changed (the snapshot is rewritten only then).
    changed_seconds_ago: Option<u64>,
    snapshot: Option<&'a Stamped<Snapshot>>,
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let path = config.status_path();
    let snapshot: Option<Stamped<Snapshot>> = if path.exists() {
        Some(tmc_service::read_status(&path)?)
    } else {
        None
    };
    let state = snapshot.as_ref().map_or(State::NeverRun, |s| {
        State::of(s.snapshot.running, s.snapshot.pid)
    });
    let age = snapshot
        .as_ref()
        .map(|s| unix_now().saturating_sub(s.changed_unix));
    if args.json {
        let out = JsonStatus {
            state,
            status_file: path.display().to_string(),
            changed_seconds_ago: age,
            snapshot: snapshot.as_ref(),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&out).context("status as JSON")?
        );
        return Ok(());
    }
    match (&snapshot, age) {
        (Some(s), Some(age)) => print!("{}", human(&s.snapshot, state, age)),
        _ => println!(
            "tmc-receiver has never run with this configuration: no status snapshot at {}",
            path.display()
        ),
    }
    Ok(())
}

fn ago(now: u64, then: Option<u64>) -> String {
    match then {
        Some(t) => format!("{} s ago", now.saturating_sub(t)),
        None => "never".into(),
    }
}

/// The snapshot for people; `age`: seconds since its counters last changed.
pub fn human(s: &Snapshot, state: State, age: u64) -> String {
    let now = unix_now();
    let mut out = String::new();
    let _ = writeln!(out, "tmc-receiver: {}", state.describe(s.pid, age));
    let l = &s.link;
    let peers: Vec<String> = s.peers.iter().map(u8::to_string).collect();
    let _ = writeln!(
        out,
        "radio:    {} as node {}, peers {}{}",
        s.radio,
        s.address,
        peers.join(", "),
        if s.legacy_enabled {
            ", legacy profile ON (insecure)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "heard:    {} frame(s); CRC errors {}, malformed {}, for other nodes {}, ACKs {}, link retries {}",
        l.frames_heard,
        l.crc_errors,
        l.malformed_frames,
        l.other_node,
        l.stray_acks,
        l.resent_copies
    );
    let _ = writeln!(
        out,
        "received: {} token(s); stored {} ({} reading(s), {} legacy); duplicates {}, stale {}",
        l.frames_received,
        l.tokens_stored,
        l.readings_stored,
        l.legacy_frames,
        l.duplicates,
        l.stale
    );
    let refused: Vec<String> = l.refused.iter().map(|(r, n)| format!("{r} {n}")).collect();
    let _ = writeln!(
        out,
        "refused:  {}; unknown node {}; commit failures {}; radio errors {}",
        if refused.is_empty() {
            "none".to_owned()
        } else {
            refused.join(", ")
        },
        l.unknown_node,
        l.commit_failures,
        l.radio_errors
    );
    for (sender, n) in &l.sender_conflicts {
        let _ = writeln!(
            out,
            "WARNING:  sender {sender}: {n} token(s) that one relay cannot send (a counter reused with other bytes, or far behind): two relays likely share sender id {sender}"
        );
    }
    let signal = match (l.last_rssi_dbm, l.last_snr_db) {
        (Some(rssi), Some(snr)) => format!(" (RSSI {rssi} dBm, SNR {snr:.2} dB)"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "last:     frame {}{signal}, reading {}",
        ago(now, l.last_frame_unix),
        ago(now, l.last_reading_unix)
    );
    let _ = writeln!(out, "journal:  {} record(s)", s.journal);
    for (name, o) in &s.outputs {
        let mut line = format!(
            "output:   {name}: delivered {}, backlog {}",
            o.delivered, o.backlog
        );
        match o.connected {
            Some(true) => line.push_str(", connected"),
            Some(false) => line.push_str(", DISCONNECTED"),
            None => {}
        }
        if let Some(e) = &o.error {
            line.push_str(&format!(" ({e})"));
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

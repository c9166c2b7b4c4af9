use std::path::PathBuf;

use clap::Args;
use tmc_queue::RelayQueue;
use tmc_service::status::State;
use tmc_service::Stamped;

use crate::config::RelayConfig;
use crate::service::{status_line, unix_now, RelayStatus};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The relay's configuration.
    #[arg(long, default_value = "/etc/tmc/relay.toml")]
    config: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let config = RelayConfig::load(&args.config)?;
    // Read-only: works while the relay runs, and never creates a queue that is not there.
    let queue = if config.queue_path().exists() {
        Some(RelayQueue::status(&config.queue_path())?)
    } else {
        None
    };
    let read: Result<Stamped<RelayStatus>, _> = tmc_service::read_status(&config.status_path());
    let status = match read {
        Ok(s) => Some(s),
        Err(tmc_service::status::StatusError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            None
        }
        Err(e) => return Err(e.into()),
    };
    let state = status.as_ref().map_or(State::NeverRun, |s| {
        State::of(s.snapshot.running, s.snapshot.pid)
    });
    if args.json {
        let queue = queue.as_ref().map(|q| {
            serde_json::json!({
                "len": q.len, "staged": q.staged, "dropped": q.dropped,
                "oldest_age_s": q.oldest_enqueued_ms.map(|ms| unix_now().saturating_sub(ms / 1000)),
            })
        });
        println!(
            "{}",
            serde_json::json!({ "queue": queue, "state": state, "service": status })
        );
        return Ok(());
    }
    match &queue {
        Some(q) => println!(
            "queue: {} entries ({} in a token on air), oldest {}, dropped {}",
            q.len,
            q.staged,
            q.oldest_enqueued_ms.map_or("-".into(), |ms| format!(
                "{} s",
                unix_now().saturating_sub(ms / 1000)
            )),
            q.dropped
        ),
        None => println!(
            "queue: none yet at {} (the relay has not run)",
            config.queue_path().display()
        ),
    }
    let Some(Stamped {
        changed_unix,
        snapshot: s,
    }) = status
    else {
        println!(
            "service: no status snapshot at {} (the relay has not run)",
            config.status_path().display()
        );
        return Ok(());
    };
    let age = unix_now().saturating_sub(changed_unix);
    let state = state.describe(s.pid, age);
    println!(
        "service: {state}; relay {} → gateway {} over {}",
        s.sender_id, s.gateway, s.radio
    );
    println!("summary: {}", status_line(&s, queue.as_ref()));
    let i = &s.ingest;
    println!(
        "mqtt: {}, {} connections, {} received, {} stored in {} transactions, {} redeliveries skipped, {} held (queue full)",
        if i.connected { "connected" } else { "disconnected" },
        i.connections, i.received, i.stored, i.transactions, i.redelivered, i.held_full
    );
    println!(
        "rejected: {} unexpected topic, {} too large, {} not UTF-8",
        i.rejected_topic, i.rejected_size, i.rejected_not_utf8
    );
    let l = &s.link;
    println!(
        "link: {} tokens ({} readings) acknowledged, {} frames sent, {} retries, {} silent rounds, {} resent after restart, {} radio errors",
        l.tokens_delivered, l.readings_delivered, l.frames_sent, l.retries, l.silent_rounds,
        l.tokens_resent_after_restart, l.radio_errors
    );
    println!(
        "airtime: {:.1} s used of {:.1} s in the last hour ({} waits for the duty cycle, {:.1} s)",
        l.airtime_used_s, l.airtime_budget_s, l.duty_cycle_waits, l.duty_cycle_wait_s
    );
    Ok(())
}

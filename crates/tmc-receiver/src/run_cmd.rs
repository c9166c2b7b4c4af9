//! `tmc-receiver run`: the gateway service.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use tmc_envelope::KeyRing;
use tmc_queue::Inbox;
use tmc_service::{Notifier, Shutdown};

use crate::config::Config;
use crate::service::{RadioInfo, Service};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file.
    #[arg(long, default_value = "/etc/tmc/receiver.toml")]
    pub config: PathBuf,
}

/// An error and its causes as one line, each cause once. The typed errors of the workspace already put their cause
/// in their text (`path: cause`) and return it as their source too, so `tmc_cli::one_line` would print it twice;
/// and a TOML error from a file we only point to (a board preset) spans several lines with a source excerpt.
pub(crate) fn flat(e: &(dyn std::error::Error + 'static)) -> anyhow::Error {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    anyhow::anyhow!(one_line(&text))
}

/// Multi-line text on one line: the excerpt lines of a TOML error (`1 | name = "x"`, `| ^^^^`) are dropped.
fn one_line(text: &str) -> String {
    let excerpt = |line: &str| {
        let rest = line
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        rest.starts_with('|') || line.chars().all(|c| c == '^' || c == ' ')
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !excerpt(l))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config).map_err(|e| flat(&e))?;
    // Signals first: a SIGTERM during the start is then a stop after it, not a kill.
    let shutdown = Shutdown::on_signals().context("cannot install the SIGTERM/SIGINT handler")?;
    let ring = KeyRing::load(&config.keys).map_err(|e| flat(&e).context("[envelope] keys"))?;
    if config.legacy {
        tracing::warn!(
            "[envelope] legacy = true: the existing relays' frames are accepted with no sender authentication and no replay protection"
        );
    }
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("state_dir {}", config.state_dir.display()))?;
    let inbox = Inbox::open(&config.inbox_path(), config.window).map_err(|e| flat(&e))?;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let radio = config
        .radio
        .open(&config.path, "receiver", seed)
        .map_err(|e| flat(&e))?;
    let info = RadioInfo {
        description: radio.description.clone(),
        address: radio.address,
    };
    let service = Service::start(&config, radio.link, info.clone(), ring, inbox, shutdown)
        .map_err(|e| flat(&e))?;
    let notifier = Notifier;
    notifier.ready(&format!(
        "receiving on {} as node {}",
        info.description, info.address
    ));
    tracing::info!(
        "receiving on {} as node {} from peers {:?}",
        info.description,
        info.address,
        config.peers
    );
    service.wait_for_stop();
    notifier.stopping();
    let snapshot = service.stop()?;
    tracing::info!(
        "stopped: {} reading(s) stored since the start",
        snapshot.link.readings_stored
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Wrapped {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn causes_appear_once_on_one_line() {
        let e = Wrapped {
            path: "/etc/tmc/keys.toml",
            source: std::io::Error::other("gone"),
        };
        assert_eq!(flat(&e).to_string(), "/etc/tmc/keys.toml: gone");
        let toml = std::io::Error::other(
            "b.toml: TOML parse error at line 1, column 1\n  |\n1 | name=\"x\"\n  | ^^^^\nunknown field `name`\n",
        );
        assert_eq!(
            flat(&toml).to_string(),
            "b.toml: TOML parse error at line 1, column 1 unknown field `name`"
        );
    }
}

//! `tmc-receiver run`: the gateway service.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use tmc_envelope::KeyRing;
use tmc_queue::Inbox;
use tmc_service::radio::OpenRadio;
use tmc_service::{Notifier, Shutdown};

use crate::config::Config;
use crate::service::{RadioInfo, Service};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file.
    #[arg(long, default_value = "/etc/tmc/receiver.toml")]
    pub config: PathBuf,
    #[command(flatten)]
    pub radio: tmc_service::radio::RadioOverride,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut config = Config::load(&args.config)?;
    config.radio.apply(&args.radio).context("--board/--radio")?;
    // Signals first: a SIGTERM during the start is then a stop after it, not a kill.
    let shutdown = Shutdown::on_signals().context("cannot install the SIGTERM/SIGINT handler")?;
    let ring = KeyRing::load(&config.keys).context("[envelope] keys")?;
    if config.legacy {
        tracing::warn!(
            "[envelope] legacy = true: the existing relays' frames are accepted with no sender authentication and no replay protection"
        );
    }
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("state_dir {}", config.state_dir.display()))?;
    let inbox = Inbox::open(&config.inbox_path(), config.window)?;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let radio = config.radio.open(&config.path, "receiver", seed)?;
    let info = RadioInfo {
        description: radio.description.clone(),
        address: radio.address,
    };
    let service = Service::start(&config, radio.link, info.clone(), ring, inbox, shutdown)?;
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

//! The TMC receiver: the gateway end of the LoRa link.
//!
//! Tokens from the relays are opened ([`tmc_envelope`]), committed exactly once to the inbox ([`tmc_queue::Inbox`],
//! readings and replay state in one transaction), acknowledged on the radio only then ([`tmc_link`]), and delivered
//! by independent outputs, each through its own cursor: stdout, a JSON-lines file, an upstream MQTT broker.
//!
//! - [`config`] — the configuration file, `/etc/tmc/receiver.toml`.
//! - [`gateway`] — the radio loop, generic over the radio.
//! - [`outputs`] — stdout, file, upstream.
//! - [`service`] — the threads, the status snapshot, systemd readiness and watchdog.
//! - [`line`] — the JSON line of a reading (`decode`, the outputs and the upstream payload share it).
//!
//! Commands: `decode` (tokens given by hand), `run` (the service), `status` (its snapshot).

/// `receiver.toml` (in tmc-config, which tmc-provision and the demo render it with).
pub use tmc_config::receiver as config;
mod decode_cmd;
pub mod gateway;
pub mod line;
pub mod outputs;
mod run_cmd;
pub mod sender_watch;
pub mod service;
pub mod shared;
mod status_cmd;

use clap::{Parser, Subcommand};

pub use decode_cmd::DecodeArgs;
pub use run_cmd::RunArgs;
pub use status_cmd::StatusArgs;

#[derive(Debug, Parser)]
#[command(
    name = "tmc-receiver",
    version,
    about = "TMC receiver: tokens from the LoRa link → readings"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: tmc_cli::GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify and decrypt tokens (argument, or one per line on stdin; text or hex) and print each
    /// reading as a JSON line. Exits 1 with a one-line reason for each token refused.
    Decode(DecodeArgs),
    /// Run the gateway service: receive tokens over LoRa, store each once, deliver the readings to the
    /// configured outputs (stdout, a JSON-lines file, an upstream MQTT broker). Stops on SIGTERM/SIGINT.
    Run(RunArgs),
    /// Show what the service reported last (its status snapshot); says so when it never ran.
    Status(StatusArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Decode(args) => decode_cmd::run(args),
        Command::Run(args) => run_cmd::run(args),
        Command::Status(args) => status_cmd::run(args),
    }
}

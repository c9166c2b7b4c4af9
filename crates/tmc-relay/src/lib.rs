//! The `tmc-relay` command line. Each subcommand is a thin layer over a library crate.

mod airtime_cmd;
/// `assignment.toml` (in tmc-config, which tmc-provision writes it with).
pub use tmc_config::assignment;
/// `relay.toml` (in tmc-config, which tmc-provision and the demo render it with).
pub use tmc_config::relay as config;
mod keys_cmd;
mod seal_cmd;
pub mod service;
mod status_cmd;

use clap::{Parser, Subcommand};

pub use airtime_cmd::AirtimeArgs;
pub use keys_cmd::KeysCommand;
pub use seal_cmd::SealArgs;
pub use status_cmd::StatusArgs;

/// `tmc-relay run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The relay's configuration (see `tmc_relay::config`).
    #[arg(long, default_value = "/etc/tmc/relay.toml")]
    config: std::path::PathBuf,
    #[command(flatten)]
    options: service::RunOptions,
}

#[derive(Debug, Parser)]
#[command(
    name = "tmc-relay",
    version,
    about = "TMC relay: sensor readings → sealed tokens for the LoRa link"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: tmc_cli::GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Seal readings (stdin or --data) into one token and print it: text as-is, packed as hex.
    Seal(SealArgs),
    /// Create or rotate the site envelope key ring.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Time on air and frames per hour under the duty cycle, for frame or token sizes.
    Airtime(AirtimeArgs),
    /// Run the relay service: MQTT (mTLS) → durable queue → sealed tokens → LoRa, until SIGTERM.
    Run(RunArgs),
    /// Queue depth and age, MQTT and radio counters, airtime used against the budget.
    Status(StatusArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Seal(args) => seal_cmd::run(args),
        Command::Keys(cmd) => keys_cmd::run(cmd),
        Command::Airtime(args) => airtime_cmd::run(args),
        Command::Run(args) => service::run(&args.config, &args.options),
        Command::Status(args) => status_cmd::run(args),
    }
}

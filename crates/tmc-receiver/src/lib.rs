//! The `tmc-receiver` command line. Each subcommand is a thin layer over a library crate.

mod decode_cmd;

use clap::{Parser, Subcommand};

pub use decode_cmd::DecodeArgs;

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
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Decode(args) => decode_cmd::run(args),
    }
}

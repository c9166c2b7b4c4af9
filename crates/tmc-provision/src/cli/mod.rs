//! The `tmc-provision` command line, the same binary on the PC and the Pi: the subcommands, each dispatched
//! to the `cli` module of its job ([`crate::card`], [`crate::firstboot`](mod@crate::firstboot),
//! [`crate::sensor`]; `chip-csr` in `chip`), which holds its options, calls the library and prints one line
//! per action.

mod chip;

use clap::{Parser, Subcommand};

use crate::card::cli::{ListArgs, WriteArgs};
use crate::firstboot::cli::FirstbootArgs;
use crate::sensor::cli::{SensorConfigArgs, SensorConsoleArgs, SensorIdentityArgs};
use chip::ChipCsrArgs;
pub(crate) use chip::{key_text, ChipArgs};

/// The parsed command line.
#[derive(Debug, Parser)]
#[command(
    name = "tmc-provision",
    version,
    about = "TMC provisioning: a board's role, configuration and keys onto its SD card (write), installed at first boot (firstboot)"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: tmc_cli::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

// In `--help` order. A subcommand's help text is the doc comment of its options type, in its job's module
// (a doc comment here would replace it).
#[derive(Debug, Subcommand)]
enum Command {
    // The card writer, on the PC.
    Write(WriteArgs),
    // The installer, on the Pi at first boot.
    Firstboot(FirstbootArgs),
    // The ESP8266 sensor, on the PC.
    SensorConfig(SensorConfigArgs),
    SensorIdentity(SensorIdentityArgs),
    SensorConsole(SensorConsoleArgs),
    // A concentrator Pi's relay key in its own chip, on that Pi.
    ChipCsr(ChipCsrArgs),
    // The card writer: the site's board inventory.
    List(ListArgs),
}

/// Runs the parsed command; its result becomes the exit status (`tmc_cli::exit_status`).
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Write(args) => crate::card::cli::write_cmd(args),
        Command::Firstboot(args) => crate::firstboot::cli::firstboot_cmd(&args),
        Command::SensorConfig(args) => crate::sensor::cli::sensor_config_cmd(args),
        Command::SensorIdentity(args) => crate::sensor::cli::sensor_identity_cmd(args),
        Command::SensorConsole(args) => crate::sensor::cli::sensor_console_cmd(args),
        Command::ChipCsr(args) => chip::chip_csr_cmd(&args),
        Command::List(args) => crate::card::cli::list_cmd(&args),
    }
}

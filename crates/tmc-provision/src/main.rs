//! The `tmc-provision` command: parses the command line, runs it ([`tmc_provision::cli`]), exit status.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tmc_provision::cli::Cli::parse();
    tmc_cli::init_logging(cli.global.verbose);
    tmc_cli::exit_status("tmc-provision", tmc_provision::cli::run(cli))
}

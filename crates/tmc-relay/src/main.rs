use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tmc_relay::Cli::parse();
    tmc_cli::init_logging(cli.global.verbose);
    tmc_cli::exit_status("tmc-relay", tmc_relay::run(cli))
}

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tmc_ap::cli::Cli::parse();
    tmc_cli::init_logging(cli.global.verbose);
    tmc_cli::exit_status("tmc-ap", tmc_ap::cli::run(cli))
}

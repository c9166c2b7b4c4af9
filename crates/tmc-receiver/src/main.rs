use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tmc_receiver::Cli::parse();
    tmc_cli::init_logging(cli.global.verbose);
    tmc_cli::exit_status("tmc-receiver", tmc_receiver::run(cli))
}

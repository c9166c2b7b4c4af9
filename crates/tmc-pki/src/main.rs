use clap::Parser;

mod cli;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    tmc_cli::init_logging(args.global.verbose);
    tmc_cli::exit_status("tmc-pki", cli::run(args))
}

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tmc_sensor_sim::Cli::parse();
    tmc_cli::init_logging(cli.global.verbose);
    tmc_cli::exit_status("tmc-sensor-sim", tmc_sensor_sim::run(cli))
}

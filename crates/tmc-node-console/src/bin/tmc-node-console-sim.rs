//! `tmc-node-console-sim --chip FILE --flash FILE [--slot N]`: a flashed sensor node's provisioning console
//! on a pseudo-terminal, for tests of `tmc-provision sensor-console`. Prints the pty's path on stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use tmc_node_console::sim::{run, SimOptions};

const USAGE: &str = "usage: tmc-node-console-sim --chip FILE --flash FILE [--slot N]";

fn parse(mut args: impl Iterator<Item = String>) -> Result<SimOptions, String> {
    let (mut chip, mut flash, mut slot) = (None, None, 0u8);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--chip" => chip = Some(PathBuf::from(value)),
            "--flash" => flash = Some(PathBuf::from(value)),
            "--slot" => {
                slot = value
                    .parse()
                    .map_err(|_| format!("--slot {value:?}: 0..=15"))?
            }
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    Ok(SimOptions {
        chip: chip.ok_or("--chip is required")?,
        flash: flash.ok_or("--flash is required")?,
        slot,
    })
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("tmc-node-console-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = run(&options, |pty| {
        println!("{}", pty.display());
        let _ = std::io::stdout().flush();
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tmc-node-console-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

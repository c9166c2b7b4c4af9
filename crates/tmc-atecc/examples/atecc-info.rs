//! Prints what an ATECC508A/608A on the Raspberry Pi says about itself: revision, serial number, lock state.
//!
//! ```text
//! cargo run -p tmc-atecc --features linux --example atecc-info [-- /dev/i2c-1 0x60]
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let device = args
        .next()
        .unwrap_or_else(|| tmc_atecc::linux::DEFAULT_BUS.to_owned());
    let address = match args
        .next()
        .map(|a| u8::from_str_radix(a.trim_start_matches("0x"), 16))
    {
        None => tmc_atecc::DEFAULT_ADDRESS,
        Some(Ok(address)) => address,
        Some(Err(e)) => {
            eprintln!("atecc-info: address must be hex, e.g. 0x60: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&device, address) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atecc-info: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(device: &str, address: u8) -> Result<(), Box<dyn std::error::Error>> {
    let mut chip = tmc_atecc::linux::open(device, address)?;
    let revision = chip.info()?;
    let config = chip.read_config_zone()?;
    let serial: String = config
        .serial_number()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("device:   {device} address 0x{address:02x}");
    println!("revision: {revision}");
    println!("serial:   {serial}");
    println!("locks:    {}", config.lock_status());
    chip.sleep()?;
    Ok(())
}

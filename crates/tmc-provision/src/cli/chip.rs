//! The secure-element options `sensor-identity` and `chip-csr` share, and `chip-csr` itself: run by hand
//! where the chip is (a concentrator Pi with an ATECC608 for its relay key), it belongs to none of the three
//! jobs.

use std::path::PathBuf;

use clap::Args;

/// Which secure element, and which of its key slots.
#[derive(Debug, Args)]
pub(crate) struct ChipArgs {
    /// The secure element: sim:PATH (a simulated chip kept in PATH, created 0600) or /dev/i2c-N.
    #[arg(long)]
    chip: String,
    /// The chip's I2C address on /dev/i2c-N (0x60 from the factory).
    #[arg(long, default_value = "0x60", value_parser = parse_address)]
    address: u8,
    /// The key slot [default: 0].
    #[arg(long, default_value_t = tmc_enroll::DEFAULT_DEVICE_SLOT)]
    pub(crate) slot: u8,
}

impl ChipArgs {
    pub(crate) fn spec(&self) -> Result<tmc_enroll::ChipSpec, tmc_enroll::IdentityError> {
        tmc_enroll::ChipSpec::parse(&self.chip, self.address)
    }
}

/// Where the chip is (a concentrator Pi with an ATECC608 on /dev/i2c-N): make the key in the chip if its
/// slot has none (--new-key replaces it) and write a certificate request for it, signed by the chip, for
/// `tmc-pki issue --csr FILE --role relay` on the machine with the site CA.
#[derive(Debug, Args)]
pub(crate) struct ChipCsrArgs {
    #[command(flatten)]
    chip: ChipArgs,
    /// The certificate's name (CN): the board's name, e.g. the relay's.
    #[arg(long)]
    name: String,
    /// Replace the key already in the slot (a certificate issued for the old key stops matching it).
    #[arg(long)]
    new_key: bool,
    /// Where to write the request (PEM; not secret).
    #[arg(long)]
    out: PathBuf,
}

fn parse_address(text: &str) -> Result<u8, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => text.parse(),
    };
    match parsed {
        Ok(address) if address <= 0x7f => Ok(address),
        _ => Err(format!("{text:?} is not a 7-bit I2C address (e.g. 0x60)")),
    }
}

/// `chip-csr`: the chip, its key, and the request written for `tmc-pki issue --csr`.
pub(crate) fn chip_csr_cmd(args: &ChipCsrArgs) -> anyhow::Result<()> {
    use tmc_enroll::chip_csr;

    let chip = args.chip.spec()?;
    let request = chip_csr(&chip, args.chip.slot, &args.name, args.new_key)?;
    tmc_secret_file::write_atomic(
        &args.out,
        request.pem.as_bytes(),
        0o644,
        tmc_secret_file::Overwrite::Replace,
    )?;
    println!(
        "chip     {chip}: serial {}",
        hex::encode(request.chip_serial)
    );
    println!("key      slot {}: {}", request.slot, key_text(request.key));
    println!("public   04{}", hex::encode(request.public_key));
    println!(
        "wrote    {} (CN {:?}): on the machine with the site CA, `tmc-pki issue --name {} --role relay --csr {}`",
        args.out.display(),
        args.name,
        args.name,
        args.out.display()
    );
    Ok(())
}

/// How a slot's key came to be, as both chip commands print it.
pub(crate) fn key_text(key: tmc_enroll::KeyOutcome) -> &'static str {
    use tmc_enroll::KeyOutcome;
    match key {
        KeyOutcome::Created => "new key (GenKey)",
        KeyOutcome::Replaced => "new key (GenKey, replaced the slot's key: --new-key)",
        KeyOutcome::Kept => "existing key kept (--new-key replaces it)",
    }
}

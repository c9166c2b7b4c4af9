use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use tmc_envelope::{KeyRing, Overwrite};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new key ring file (mode 0600) with one random key. Never overwrites.
    New {
        /// Where to write the key ring.
        #[arg(long)]
        out: PathBuf,
        /// Key id of the first key.
        #[arg(long, default_value_t = 1)]
        kid: u8,
    },
    /// Add a new random key and make it the sealing key. Give the new ring to every receiver
    /// before the relays; remove the old key once no relay uses it.
    Rotate {
        #[arg(long)]
        keys: PathBuf,
    },
}

pub fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::New { out, kid } => {
            let ring = KeyRing::generate(kid)?;
            ring.save(&out, Overwrite::Refuse)?;
            println!("created {} (kid {kid}, mode 0600)", out.display());
        }
        KeysCommand::Rotate { keys } => {
            let mut ring = KeyRing::load(&keys)?;
            let kid = ring.rotate().context("rotating")?;
            ring.save(&keys, Overwrite::Replace)?;
            println!(
                "added kid {kid} to {} and made it the sealing key",
                keys.display()
            );
        }
    }
    Ok(())
}

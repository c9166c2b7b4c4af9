//! The installer's subcommand, `firstboot`: its options, and what it prints.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::firstboot::{firstboot, Outcome};
use tmc_ap::{ServiceManager, Systemctl};

/// On the Pi, as root at boot: install the card's bundle, enable the role's units, remove the secrets
/// from the card. Safe to run again.
#[derive(Debug, Args)]
pub(crate) struct FirstbootArgs {
    /// The boot partition.
    #[arg(long, default_value = "/boot")]
    boot: PathBuf,
    /// The system to install into.
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Touch no service (implied when --root is not /).
    #[arg(long)]
    offline: bool,
}

/// `firstboot`: one line per action, then the outcome. Services are touched only on the live system.
pub(crate) fn firstboot_cmd(args: &FirstbootArgs) -> anyhow::Result<()> {
    let live = !args.offline && args.root == Path::new("/");
    let mut systemctl = Systemctl;
    let services: Option<&mut dyn ServiceManager> = if live { Some(&mut systemctl) } else { None };
    let report = firstboot(&args.boot, &args.root, services)?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if report.outcome == Outcome::NothingToProvision {
        println!(
            "nothing to provision: {} has no tmc.toml",
            args.boot.display()
        );
        return Ok(());
    }
    for action in &report.actions {
        println!("{action}");
    }
    let board = report
        .board
        .as_ref()
        .map(|(role, name)| format!("{role} {name:?}"))
        .unwrap_or_default();
    match report.outcome {
        Outcome::AlreadyProvisioned => println!("already provisioned: {board}"),
        _ if live => println!("provisioned: {board}"),
        _ => println!("provisioned: {board} (no service touched: --offline or --root)"),
    }
    Ok(())
}

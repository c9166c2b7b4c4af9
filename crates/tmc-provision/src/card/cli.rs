//! The card writer's subcommands, `write` and `list`: their options, and what they print.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use tmc_config::listen::ListenSection;

use crate::boot_bundle::manifest::Role;
use crate::card::boards::{Boards, BOARDS_FILE};
use crate::card::{write, WriteOptions, DEFAULT_GATEWAY_ADDRESS};

/// On the PC: check everything, then write BOOT/tmc.toml and BOOT/tmc/ on the card's boot partition.
#[derive(Debug, Args)]
pub(crate) struct WriteArgs {
    /// The mounted boot partition of the freshly flashed card.
    #[arg(long)]
    boot: PathBuf,
    /// What the board is.
    #[arg(long, value_enum)]
    role: Role,
    /// The tmc-pki site directory (CA, issued certificates, CRL, envelope key ring).
    #[arg(long)]
    site: PathBuf,
    /// The board's name; a concentrator's relay certificate CN (issued if new).
    #[arg(long)]
    name: String,
    /// The radio board preset (e.g. board-config/dragino-lora-hat.toml).
    #[arg(long)]
    board: PathBuf,
    /// Concentrator: the site file with the access point settings [default: SITE/site.toml].
    #[arg(long)]
    ap: Option<PathBuf>,
    /// Use this relay.toml / receiver.toml instead of rendering one (checked with the service's parser).
    #[arg(long)]
    config: Option<PathBuf>,
    /// This board's node address [default: the board's own if the site has provisioned it before, else the
    /// first free one from 10 for a concentrator, from 1 for a gateway].
    #[arg(long)]
    address: Option<u8>,
    /// Concentrator: the gateway's node address [default: 1].
    #[arg(long)]
    gateway: Option<u8>,
    /// Gateway: the relays' node addresses, comma-separated [default: 10].
    #[arg(long, value_delimiter = ',')]
    peers: Option<Vec<u8>>,
    /// Turn on the service's Prometheus metrics ([metrics] in relay.toml / receiver.toml), at ADDR:PORT
    /// [default: 127.0.0.1 and port 9101 (relay) or 9102 (receiver)].
    #[arg(long, value_name = "ADDR:PORT", num_args = 0..=1)]
    metrics: Option<Option<SocketAddr>>,
    /// Gateway: turn on tmc-web's page ([web] in receiver.toml), at ADDR:PORT [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT", num_args = 0..=1)]
    web: Option<Option<SocketAddr>>,
    /// Replace a card provisioned for another name.
    #[arg(long)]
    force: bool,
}

/// `--metrics` / `--web`: absent, given alone (the default address) or with an address.
fn listen(option: Option<Option<SocketAddr>>) -> Option<ListenSection> {
    option.map(|listen| ListenSection { listen })
}

/// On the PC: the site's boards with their node addresses and sender ids (SITE/boards.toml).
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// The tmc-pki site directory.
    #[arg(long)]
    site: PathBuf,
}

/// `write`: the card, then what was issued, written and assigned.
pub(crate) fn write_cmd(args: WriteArgs) -> anyhow::Result<()> {
    let options = WriteOptions {
        boot: args.boot,
        role: args.role,
        site: args.site,
        name: args.name,
        board: args.board,
        ap: args.ap,
        config: args.config,
        address: args.address,
        gateway: args.gateway,
        peers: args.peers,
        metrics: listen(args.metrics),
        web: listen(args.web),
        force: args.force,
    };
    let report = write(&options)?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(identity) = &report.issued {
        println!(
            "issued   relay certificate for {:?} in {} (new to the site)",
            identity.name,
            options.site.display()
        );
    }
    if let Some(previous) = report.previous.as_ref().filter(|p| **p != options.name) {
        println!("replaced the card's provisioning for {previous:?} (--force)");
    }
    for path in &report.written {
        println!("wrote    {}", path.display());
    }
    let board = &report.board;
    match board.sender {
        Some(sender) => println!(
            "assigned node address {} and sender id {sender} to {:?} (site inventory {})",
            board.address,
            board.name,
            options.site.join(BOARDS_FILE).display()
        ),
        None => println!(
            "assigned node address {} to {:?} (site inventory {})",
            board.address,
            board.name,
            options.site.join(BOARDS_FILE).display()
        ),
    }
    if options.config.is_none() && options.role == Role::Concentrator {
        println!(
            "link     relay node {} sends to gateway node {}",
            board.address,
            options.gateway.unwrap_or(DEFAULT_GATEWAY_ADDRESS)
        );
    }
    println!(
        "{} {:?} is on the card: the secret files leave it at the board's first boot (FAT keeps no file permissions: keep the card to yourself until then)",
        options.role, options.name
    );
    Ok(())
}

/// `list`: the site's inventory as a table.
pub(crate) fn list_cmd(args: &ListArgs) -> anyhow::Result<()> {
    let boards = Boards::load(&args.site)?;
    print!("{}", boards.table());
    Ok(())
}

//! A stand-in for an existing site's RadioHead node on the simulated air, for tests: one process sends one
//! frame the way the old deployment's sender does (`RH_RF95::send`: header TO FROM ID FLAGS as given, ID 0
//! and no flags by default, no retry of its own), optionally several times, and reports the ACK it hears
//! after each transmission. One line per transmission on stdout: `ack` or `no-ack`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tmc_envelope::legacy::{self, LegacyKeys};
use tmc_link::Clock;
use tmc_service::radio::{OpenRadio, RadioSection};

#[derive(Debug, Parser)]
#[command(
    name = "tmc-radiohead-node",
    version,
    about = "Send one RadioHead frame on the simulated air (test stand-in for the old sender)"
)]
struct Cli {
    #[command(flatten)]
    global: tmc_cli::GlobalArgs,
    /// The simulated air: `sim:DIR[,loss=P]`.
    #[arg(long)]
    air: String,
    /// Board preset whose frequency and modem are simulated (default: RadioHead's 868.0 MHz SF7).
    #[arg(long)]
    board: Option<PathBuf>,
    /// This node's address (FROM).
    #[arg(long, default_value_t = 10)]
    from: u8,
    /// Destination (TO).
    #[arg(long, default_value_t = 1)]
    to: u8,
    /// Header ID.
    #[arg(long, default_value_t = 0)]
    id: u8,
    /// Header FLAGS.
    #[arg(long, default_value_t = 0)]
    flags: u8,
    /// Frame data in hex.
    #[arg(long, conflicts_with = "legacy", required_unless_present = "legacy")]
    hex: Option<String>,
    /// Frame data: this plaintext sealed as the old deployment's token (ASCII JWT + NUL).
    #[arg(long)]
    legacy: Option<String>,
    /// Transmissions of the same frame.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// How long to listen for the ACK after each transmission, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    ack_wait_ms: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tmc_cli::init_logging(cli.global.verbose);
    tmc_cli::exit_status("tmc-radiohead-node", run(&cli))
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let data = match (&cli.hex, &cli.legacy) {
        (Some(text), _) => hex::decode(text.trim()).context("--hex")?,
        (None, Some(text)) => legacy::seal(&LegacyKeys::default(), text.as_bytes())?,
        (None, None) => anyhow::bail!("give --hex or --legacy"),
    };
    let section = RadioSection {
        board: cli.board.clone(),
        sim: Some(cli.air.clone()),
        address: Some(cli.from),
        duty_cycle: Some(100.0),
    };
    let cwd = std::env::current_dir()?.join("cli");
    let mut radio = section.open(
        &cwd,
        &format!("radiohead-node-{}", cli.from),
        u64::from(std::process::id()),
    )?;
    let datagram = radio.link.datagram_mut();
    for _ in 0..cli.repeat {
        datagram.send(cli.to, cli.id, cli.flags, &data)?;
        let deadline = datagram.clock().now() + Duration::from_millis(cli.ack_wait_ms);
        let mut acked = false;
        while !acked {
            let now = datagram.clock().now();
            if now >= deadline {
                break;
            }
            let Some(frame) = datagram.receive(deadline - now)? else {
                break;
            };
            let h = frame.header;
            acked = h.is_ack() && h.from == cli.to && h.id == cli.id;
        }
        println!("{}", if acked { "ack" } else { "no-ack" });
    }
    Ok(())
}

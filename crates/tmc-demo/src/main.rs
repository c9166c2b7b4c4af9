//! `make demo`: a whole site on this machine. See the crate docs and the README.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use tmc_demo::{Service, SiteFiles, SiteOptions};
use tmc_relay::service::{status_line, RelayStatus};
use tmc_service::Shutdown;

#[derive(Debug, Parser)]
#[command(
    name = "tmc-demo",
    version,
    about = "A throwaway TMC site: real mosquitto (mTLS) on 127.0.0.1, relay and receiver on the simulated air, simulated sensors"
)]
struct Cli {
    #[command(flatten)]
    global: tmc_cli::GlobalArgs,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration: Option<u64>,
    /// Simulated sensors.
    #[arg(long, default_value_t = 3)]
    sensors: usize,
    /// Time between readings of one sensor (500ms, 2s, 1m).
    #[arg(long, default_value = "5s")]
    interval: String,
    /// Frame loss on the simulated air (0–1).
    #[arg(long, default_value_t = 0.05)]
    loss: f64,
    /// Board preset whose frequency and modem are simulated.
    #[arg(long, default_value = "board-config/dragino-lora-hat.toml")]
    board: PathBuf,
    /// Keep the site here instead of a temporary directory (it must not exist).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also serve the relay's and the receiver's Prometheus metrics and the web page (tmc-web), each on a free
    /// port of 127.0.0.1, and print their addresses.
    #[arg(long)]
    web: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tmc_cli::init_logging(cli.global.verbose);
    tmc_cli::exit_status("tmc-demo", run(cli))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals()?;
    let temp = tempfile::Builder::new().prefix("tmc-demo-").tempdir()?;
    let dir = cli.dir.as_deref().unwrap_or(temp.path());
    let board = std::fs::canonicalize(&cli.board)
        .with_context(|| format!("board preset {}", cli.board.display()))?;
    let metrics_address = || SocketAddr::from((Ipv4Addr::LOCALHOST, tmc_testkit::free_port()));
    let options = SiteOptions {
        relay_metrics: cli.web.then(metrics_address),
        receiver_metrics: cli.web.then(metrics_address),
        sensors: cli.sensors,
        broker_port: tmc_testkit::free_port(),
        loss: cli.loss,
        board: Some(board),
        ..SiteOptions::default()
    };
    let files = SiteFiles::create(dir, &options)?;
    // Absolute from here on: the services run in the site directory.
    let dir = &files.dir;
    eprintln!(
        "demo site in {} (PKI, keys, broker on 127.0.0.1:{}, air {}/air)",
        dir.display(),
        files.broker_port,
        dir.display()
    );
    let broker = tmc_testkit::Mosquitto::try_start(
        &files.broker_dir(),
        &files.broker_state(),
        files.broker_port,
    )
    .map_err(anyhow::Error::msg)?;
    let receiver_config = files.receiver_config().display().to_string();
    let relay_config = files.relay_config().display().to_string();
    let mut receiver = Service::start(
        "tmc-receiver",
        &["run", "--config", &receiver_config],
        dir,
        true,
    )?;
    let mut relay = Service::start("tmc-relay", &["run", "--config", &relay_config], dir, false)?;
    files.wait_for_relay_subscribed(&mut relay, Duration::from_secs(60))?;
    let mut web = if cli.web {
        Some(start_web(&files, &options, &mut relay, &mut receiver)?)
    } else {
        None
    };
    let mut sensor_sim = files.start_sensors(&cli.interval, None, None)?;
    let stdout = receiver.stdout().context("receiver output")?;
    let printer = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            print_reading(&line);
        }
    });
    let started = Instant::now();
    let status_path = dir.join("relay-state/relay.status.json");
    let queue_path = dir.join("relay-state/relay.db");
    let tty = std::io::stderr().is_terminal();
    let mut failed = None;
    loop {
        if shutdown.wait(Duration::from_secs(2)) {
            break;
        }
        for service in [&mut sensor_sim, &mut relay, &mut receiver]
            .into_iter()
            .chain(web.as_mut())
        {
            if let Some(status) = service.try_wait() {
                failed = Some(format!(
                    "{} exited ({status}); see its messages above",
                    service.name
                ));
            }
        }
        if failed.is_some() {
            break;
        }
        if cli
            .duration
            .is_some_and(|d| started.elapsed() >= Duration::from_secs(d))
        {
            break;
        }
        if let Ok(status) = tmc_service::read_status::<RelayStatus>(&status_path) {
            let queue = tmc_queue::RelayQueue::status(&queue_path).ok();
            let line = status_line(&status, queue.as_ref());
            if tty {
                eprint!("\r\x1b[2K[relay] {line}\r");
            } else {
                eprintln!("[relay] {line}");
            }
            let _ = std::io::stderr().flush();
        }
    }
    eprintln!("\nstopping: sensors, relay, receiver, broker");
    if let Some(web) = web {
        // It only reads the receiver's files: nothing to drain.
        web.kill()?;
    }
    sensor_sim.terminate()?;
    relay.terminate()?;
    receiver.terminate()?;
    let _ = printer.join();
    broker.stop();
    let count = std::fs::read_to_string(files.readings_file())
        .map(|t| t.lines().count())
        .unwrap_or(0);
    eprintln!(
        "{count} readings arrived (see {})",
        files.readings_file().display()
    );
    if cli.dir.is_none() {
        eprintln!("the site was throwaway: {} is removed", dir.display());
    }
    match failed {
        Some(why) => anyhow::bail!(why),
        None => Ok(()),
    }
}

/// Starts the web page over the receiver once the relay's and the receiver's metrics listen, and prints the
/// three addresses.
fn start_web(
    files: &SiteFiles,
    options: &SiteOptions,
    relay: &mut Service,
    receiver: &mut Service,
) -> anyhow::Result<Service> {
    let limit = Duration::from_secs(60);
    let mut lines = Vec::new();
    for (service, address) in [
        (relay, options.relay_metrics),
        (receiver, options.receiver_metrics),
    ] {
        let address = address.context("no [metrics] address")?;
        tmc_demo::wait_for_listener(service, address, limit)?;
        lines.push(format!(
            "{} metrics: http://{address}/metrics",
            service.name
        ));
    }
    let (web, address) = files.start_web(false)?;
    eprintln!("web page: http://{address}/");
    for line in lines {
        eprintln!("{line}");
    }
    Ok(web)
}

/// One reading from the receiver, short: `sensors/sensor1/reading {"id":"sensor1","seq":3,"adc":517}`.
fn print_reading(line: &str) {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(v) => println!(
            "{} {}",
            v["topic"].as_str().unwrap_or("?"),
            v["data"].as_str().unwrap_or("(binary)")
        ),
        Err(_) => println!("{line}"),
    }
}

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tmc_web::dashboard::Dashboard;
use tmc_web::readings::ReadingLog;
use tmc_web::server::Server;
use tmc_web::status::StatusWatch;

/// TMC's read-only web page: the receiver's last readings per sensor with charts, its link and the newest
/// reading's age, updated live. Reads the receiver's output file and status snapshot; writes nothing.
#[derive(Debug, Parser)]
#[command(name = "tmc-web", version)]
struct Cli {
    #[command(flatten)]
    global: tmc_cli::GlobalArgs,
    /// The receiver's configuration: its [output] file and state_dir are what the page reads, its [web] table
    /// where the page is served (without [web] the page is off and tmc-web exits at once, successfully).
    #[arg(long, default_value = "/etc/tmc/receiver.toml")]
    receiver_config: PathBuf,
    /// Address to serve on instead of [web] listen (port 0: any free port, printed on stdout).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// How often the two files are looked at (their size and time only, unless they changed).
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tmc_cli::init_logging(cli.global.verbose);
    tmc_cli::exit_status("tmc-web", run(cli))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = tmc_config::receiver::Config::load(&cli.receiver_config)?;
    let Some(listen) = cli.listen.or(config.web) else {
        // Off by default: the image's unit starts on every gateway and ends here unless [web] turned it on.
        eprintln!(
            "tmc-web: the page is off: no [web] in {} (and no --listen)",
            config.path.display()
        );
        return Ok(());
    };
    let output = config.file.clone().with_context(|| {
        format!(
            "{}: no [output] file: the page shows what the receiver writes there",
            config.path.display()
        )
    })?;
    let dashboard = Dashboard::new(
        ReadingLog::new(output),
        StatusWatch::new(config.status_path()),
    );
    let server = Server::bind(listen).with_context(|| format!("listen on {listen}"))?;
    let addr = server.local_addr().context("the listener's address")?;
    // The one line on stdout: tests and scripts that asked for port 0 read the address from it.
    println!("listening on http://{addr}/");
    tracing::info!("serving on http://{addr}/");
    server
        .serve(dashboard, Duration::from_millis(cli.poll_ms.max(50)))
        .context("serve")
}

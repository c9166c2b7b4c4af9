//! The `tmc-ap` command line: each subcommand parses its options, calls the library and prints.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use tmc_config::site::SiteConfig;

use crate::apply::{apply, ServiceManager, Systemctl};
use crate::daemons::Verdict;
use crate::files::{Desired, DNSMASQ_LEASES, HOSTAPD_CTRL_DIR, SECRET_MODE};
use crate::{check, render, status};

#[derive(Debug, Parser)]
#[command(
    name = "tmc-ap",
    version,
    about = "TMC access point: hostapd + dnsmasq + static address (+ NAT) from the site file's [ap] section"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: tmc_cli::GlobalArgs,
    /// The site file.
    #[arg(
        long,
        global = true,
        env = "TMC_SITE",
        default_value = "/etc/tmc/site.toml"
    )]
    pub site: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the generated files into a directory, for review (pure: nothing else is touched).
    Render(RenderArgs),
    /// Validate the site file (every problem, one line each), then let dnsmasq and hostapd parse the result.
    Check,
    /// Install the files (atomically, with backups) and restart the services whose files changed.
    Apply(ApplyArgs),
    /// Associated stations and DHCP leases.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Directory to write into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Write into this image root instead of `/`, and touch no service (image build, first boot).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// dnsmasq's lease file.
    #[arg(long, default_value = DNSMASQ_LEASES)]
    pub leases: PathBuf,
    /// hostapd's control socket directory.
    #[arg(long, default_value = HOSTAPD_CTRL_DIR)]
    pub ctrl_dir: PathBuf,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Render(args) => render_cmd(&cli.site, &args),
        Command::Check => check_cmd(&cli.site),
        Command::Apply(args) => apply_cmd(&cli.site, &args),
        Command::Status(args) => status_cmd(&cli.site, &args),
    }
}

fn load(site: &Path) -> anyhow::Result<SiteConfig> {
    SiteConfig::from_file(site).map_err(|e| {
        for line in e.messages().iter().skip(1) {
            eprintln!("{line}");
        }
        anyhow::anyhow!("{}", e.messages().first().cloned().unwrap_or_default())
    })
}

fn render_cmd(site: &Path, args: &RenderArgs) -> anyhow::Result<()> {
    let config = load(site)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create the directory", args.out.display()))?;
    for file in render(&config.ap) {
        let Desired::File { contents, mode } = &file.desired else {
            continue;
        };
        let path = args.out.join(file.out_name);
        if *mode == SECRET_MODE {
            tmc_secret_file::write_private(
                &path,
                contents.as_bytes(),
                tmc_secret_file::Overwrite::Replace,
            )?;
        } else {
            crate::atomic::write_file(&path, contents.as_bytes(), *mode)
                .with_context(|| path.display().to_string())?;
        }
        println!(
            "{}  (installs as {})",
            path.display(),
            file.install_path.display()
        );
    }
    Ok(())
}

fn check_cmd(site: &Path) -> anyhow::Result<()> {
    // The site error's message already includes its cause: keep it one line.
    let report = check::check(site).map_err(|e| anyhow::anyhow!("{e}"))?;
    for problem in &report.problems {
        eprintln!("{problem}");
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    for daemon in &report.daemons {
        match daemon.verdict {
            Verdict::Failed(_) => eprintln!("{daemon}"),
            _ => println!("{daemon}"),
        }
    }
    if !report.problems.is_empty() {
        let n = report.problems.len();
        bail!(
            "{}: {n} problem{} in the site file",
            site.display(),
            if n == 1 { "" } else { "s" }
        );
    }
    if !report.passed() {
        bail!(
            "{}: the daemons rejected the generated files",
            site.display()
        );
    }
    println!("{}: ok", site.display());
    Ok(())
}

fn apply_cmd(site: &Path, args: &ApplyArgs) -> anyhow::Result<()> {
    let config = load(site)?;
    let files = render(&config.ap);
    let mut systemctl = Systemctl;
    let (root, services): (&Path, Option<&mut dyn ServiceManager>) = match &args.root {
        Some(root) => (root, None),
        None => (Path::new("/"), Some(&mut systemctl)),
    };
    let report = apply(&files, root, services)?;
    if !report.changed() {
        println!("no changes: {} files already up to date", report.unchanged);
        return Ok(());
    }
    for change in &report.changes {
        match &change.backup {
            Some(b) => println!(
                "{:<8} {} (backup: {})",
                change.kind,
                change.path.display(),
                b.display()
            ),
            None => println!("{:<8} {}", change.kind, change.path.display()),
        }
    }
    for command in &report.service_commands {
        println!("ran      systemctl {command}");
    }
    if args.root.is_some() {
        println!("services untouched (--root)");
    }
    Ok(())
}

fn status_cmd(site: &Path, args: &StatusArgs) -> anyhow::Result<()> {
    let config = load(site)?;
    let socket = args.ctrl_dir.join(&config.ap.interface);
    let status = status::collect(&config.ap.interface, &socket, &args.leases);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        print!("{}", status::table(&status, now));
    }
    Ok(())
}

//! The `tmc-provision` command: parses options, calls the library, prints one line per action.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use tmc_provision::{
    firstboot, sensor_config, write, Outcome, Role, SensorConfigOptions, ServiceManager, Systemctl,
    WriteOptions, DEFAULT_GATEWAY_ADDRESS,
};

#[derive(Debug, Parser)]
#[command(
    name = "tmc-provision",
    version,
    about = "TMC provisioning: a board's role, configuration and keys onto its SD card (write), installed at first boot (firstboot)"
)]
struct Cli {
    #[command(flatten)]
    global: tmc_cli::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// On the PC: check everything, then write BOOT/tmc.toml and BOOT/tmc/ on the card's boot partition.
    Write(WriteArgs),
    /// On the Pi, as root at boot: install the card's bundle, enable the role's units, remove the secrets
    /// from the card. Safe to run again.
    Firstboot(FirstbootArgs),
    /// On the PC: write an ESP8266 sensor's compiled-in configuration (firmware TMC_SENSOR_CONFIG) from the
    /// site file: the access point's SSID and passphrase, the broker's name and port, topic, interval.
    SensorConfig(SensorConfigArgs),
    /// On the PC (or a Pi with the chip): make an ESP8266 sensor's key in its secure element, have the chip
    /// sign a certificate request and the site CA certify it. A re-run keeps the key (--new-key replaces it)
    /// and re-issues the certificate.
    SensorIdentity(SensorIdentityArgs),
    /// On the PC: provision a flashed ESP8266 over its UART console: the node makes its key in its secure
    /// element and prints a certificate request, the site CA certifies it (as sensor-identity), the node
    /// stores the certificate and the site CA in its identity sector; `show` checks what it stored.
    SensorConsole(SensorConsoleArgs),
    /// Where the chip is (a concentrator Pi with an ATECC608 on /dev/i2c-N): make the key in the chip if its
    /// slot has none (--new-key replaces it) and write a certificate request for it, signed by the chip, for
    /// `tmc-pki issue --csr FILE --role relay` on the machine with the site CA.
    ChipCsr(ChipCsrArgs),
    /// On the PC: the site's boards with their node addresses and sender ids (SITE/boards.toml).
    List(ListArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    /// The tmc-pki site directory.
    #[arg(long)]
    site: PathBuf,
}

#[derive(Debug, Args)]
struct WriteArgs {
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
    /// Replace a card provisioned for another name.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct FirstbootArgs {
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

#[derive(Debug, Args)]
struct SensorConfigArgs {
    /// The tmc-pki site directory (its site.toml has the access point settings).
    #[arg(long)]
    site: PathBuf,
    /// The sensor's MQTT client id: must equal its certificate name (CN), since the broker knows a client
    /// by its certificate; 1–23 ASCII letters and digits (MQTT 3.1.1).
    #[arg(long)]
    name: String,
    /// The site file with the access point settings [default: SITE/site.toml].
    #[arg(long)]
    ap: Option<PathBuf>,
    /// The file to write (0600: it holds the Wi-Fi passphrase; keep it out of git). Build the firmware with
    /// TMC_SENSOR_CONFIG=FILE. An existing FILE is replaced only if this command wrote it.
    #[arg(long)]
    out: PathBuf,
    /// The topic the sensor publishes to [default: /esp8266]. The sensor's certificate must allow it
    /// (tmc-pki issue --topic).
    #[arg(long)]
    topic: Option<String>,
    /// Milliseconds between readings, 100..=86400000 [default: 5000].
    #[arg(long)]
    interval_ms: Option<u64>,
    /// The broker's TLS port [default: 8883].
    #[arg(long)]
    broker_port: Option<u16>,
}

#[derive(Debug, Args)]
struct SensorIdentityArgs {
    /// The tmc-pki site directory (its CA key signs the certificate).
    #[arg(long)]
    site: PathBuf,
    /// The sensor's certificate name (CN) and MQTT client id: 1–23 ASCII letters and digits.
    #[arg(long)]
    name: String,
    #[command(flatten)]
    chip: ChipArgs,
    /// Extra topics a new sensor certificate allows (repeatable) [default: /esp8266]; a re-issue keeps the
    /// certificate's topics.
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// Replace the key already in the slot (the sensor's old certificate stops matching it).
    #[arg(long)]
    new_key: bool,
    /// The sensor's `sensor-config` file: NAME.identity.toml (certificates, slot) is written beside it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Certificate lifetime in days.
    #[arg(long, default_value_t = tmc_enroll::DEFAULT_CERT_DAYS)]
    days: i64,
}

#[derive(Debug, Args)]
struct SensorConsoleArgs {
    /// The node's console: its USB serial adapter (e.g. /dev/ttyUSB0, 115200 baud) or a pty.
    #[arg(long)]
    port: PathBuf,
    /// The tmc-pki site directory (its CA key signs the certificate).
    #[arg(long)]
    site: PathBuf,
    /// The sensor's certificate name (CN) and MQTT client id: 1–23 ASCII letters and digits.
    #[arg(long)]
    name: String,
    /// Extra topics a new sensor certificate allows (repeatable) [default: /esp8266]; a re-issue keeps the
    /// certificate's topics.
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// Replace the key already in the node's secure element (its old certificate stops matching it).
    #[arg(long)]
    new_key: bool,
    /// Certificate lifetime in days.
    #[arg(long, default_value_t = tmc_enroll::DEFAULT_CERT_DAYS)]
    days: i64,
    /// Seconds each step may take before giving up (entering the mode, csr, ca, cert, show, exit).
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

/// Which secure element, and which of its key slots.
#[derive(Debug, Args)]
struct ChipArgs {
    /// The secure element: sim:PATH (a simulated chip kept in PATH, created 0600) or /dev/i2c-N.
    #[arg(long)]
    chip: String,
    /// The chip's I2C address on /dev/i2c-N (0x60 from the factory).
    #[arg(long, default_value = "0x60", value_parser = parse_address)]
    address: u8,
    /// The key slot [default: 0].
    #[arg(long, default_value_t = tmc_enroll::DEFAULT_DEVICE_SLOT)]
    slot: u8,
}

impl ChipArgs {
    fn spec(&self) -> Result<tmc_enroll::ChipSpec, tmc_enroll::IdentityError> {
        tmc_enroll::ChipSpec::parse(&self.chip, self.address)
    }
}

#[derive(Debug, Args)]
struct ChipCsrArgs {
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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tmc_cli::init_logging(cli.global.verbose);
    let result = match cli.command {
        Command::Write(args) => write_cmd(args),
        Command::Firstboot(args) => firstboot_cmd(&args),
        Command::SensorConfig(args) => sensor_config_cmd(args),
        Command::SensorIdentity(args) => sensor_identity_cmd(args),
        Command::SensorConsole(args) => sensor_console_cmd(args),
        Command::ChipCsr(args) => chip_csr_cmd(&args),
        Command::List(args) => list_cmd(&args),
    };
    tmc_cli::exit_status("tmc-provision", result)
}

fn write_cmd(args: WriteArgs) -> anyhow::Result<()> {
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
            options.site.join(tmc_provision::BOARDS_FILE).display()
        ),
        None => println!(
            "assigned node address {} to {:?} (site inventory {})",
            board.address,
            board.name,
            options.site.join(tmc_provision::BOARDS_FILE).display()
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

fn list_cmd(args: &ListArgs) -> anyhow::Result<()> {
    let boards = tmc_provision::Boards::load(&args.site)?;
    print!("{}", boards.table());
    Ok(())
}

fn sensor_config_cmd(args: SensorConfigArgs) -> anyhow::Result<()> {
    let report = sensor_config(&SensorConfigOptions {
        site: args.site,
        name: args.name,
        ap: args.ap,
        out: args.out,
        topic: args.topic,
        interval_ms: args.interval_ms,
        broker_port: args.broker_port,
    })?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "wrote    {} (0600: it holds the Wi-Fi passphrase)",
        report.out.display()
    );
    println!(
        "sensor   {:?} joins {:?} (from {}), publishes to {:?} on {}:{} every {} ms",
        report.client_id,
        report.ssid,
        report.site_file.display(),
        report.topic,
        report.broker_host,
        report.broker_port,
        report.interval_ms
    );
    // build.rs reads the variable from the firmware directory: give an absolute path.
    let absolute = std::fs::canonicalize(&report.out).unwrap_or(report.out);
    println!(
        "build    the firmware with TMC_SENSOR_CONFIG={}",
        absolute.display()
    );
    Ok(())
}

fn sensor_identity_cmd(args: SensorIdentityArgs) -> anyhow::Result<()> {
    use tmc_enroll::{enroll_chip, EnrollOptions};
    use tmc_provision::identity_file_beside;

    let chip = args.chip.spec()?;
    let report = enroll_chip(
        &chip,
        &EnrollOptions {
            site: args.site,
            name: args.name.clone(),
            topics: args.topics,
            slot: args.chip.slot,
            new_key: args.new_key,
            identity_file: args
                .config
                .as_deref()
                .map(|config| identity_file_beside(config, &args.name))
                .transpose()?,
            days: args.days,
        },
    )?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "chip     {chip}: serial {}",
        hex::encode(report.chip_serial)
    );
    println!("key      slot {}: {}", report.slot, key_text(report.key));
    println!("public   04{}", hex::encode(report.public_key));
    print_sensor_certificate(&report.identity, report.certificate);
    for path in &report.written {
        println!("wrote    {}", path.display());
    }
    println!(
        "site CA  {} (the broker's clients are checked against it)",
        report.ca_path.display()
    );
    Ok(())
}

/// `issued`/`reissued` line of a sensor certificate, as both identity commands print it.
fn print_sensor_certificate(identity: &tmc_pki::Identity, outcome: tmc_enroll::CertOutcome) {
    use tmc_enroll::CertOutcome;
    let expires = time::OffsetDateTime::from_unix_timestamp(identity.not_after)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| identity.not_after.to_string());
    let what = match outcome {
        CertOutcome::Issued => "issued  ",
        CertOutcome::Reissued => "reissued",
    };
    println!(
        "{what} sensor certificate for {:?}: serial {}, expires {expires}, topics {}",
        identity.name,
        identity.serial,
        identity.topics.join(" ")
    );
}

fn sensor_console_cmd(args: SensorConsoleArgs) -> anyhow::Result<()> {
    use tmc_enroll::EnrollOptions;
    use tmc_provision::{sensor_console, NodeKey, SensorConsoleOptions};

    let report = sensor_console(&SensorConsoleOptions {
        port: args.port.clone(),
        enroll: EnrollOptions {
            site: args.site,
            name: args.name,
            topics: args.topics,
            slot: tmc_enroll::DEFAULT_DEVICE_SLOT,
            new_key: args.new_key,
            identity_file: None,
            days: args.days,
        },
        step_timeout: std::time::Duration::from_secs(args.timeout),
    })?;
    let certified = &report.certified;
    for warning in &certified.warnings {
        eprintln!("warning: {warning}");
    }
    let key = match report.key {
        NodeKey::Created => "new key (GenKey in the node's secure element)",
        NodeKey::Kept => "existing key kept (--new-key replaces it)",
        NodeKey::Replaced => "new key (GenKey, replaced the node's key: --new-key)",
    };
    println!("node     {}: {key}", args.port.display());
    print_sensor_certificate(&certified.identity, certified.certificate);
    println!("wrote    {}", certified.cert_path.display());
    println!(
        "stored   on the node: certificate sha256 {}, site CA sha256 {} (read back with show)",
        report.cert_sha256, report.ca_sha256
    );
    Ok(())
}

fn chip_csr_cmd(args: &ChipCsrArgs) -> anyhow::Result<()> {
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

fn key_text(key: tmc_enroll::KeyOutcome) -> &'static str {
    use tmc_enroll::KeyOutcome;
    match key {
        KeyOutcome::Created => "new key (GenKey)",
        KeyOutcome::Replaced => "new key (GenKey, replaced the slot's key: --new-key)",
        KeyOutcome::Kept => "existing key kept (--new-key replaces it)",
    }
}

fn firstboot_cmd(args: &FirstbootArgs) -> anyhow::Result<()> {
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

//! The sensor subcommands, `sensor-config`, `sensor-identity` and `sensor-console`: their options, and what
//! they print.

use std::path::PathBuf;

use clap::Args;

use crate::cli::{key_text, ChipArgs};
use crate::sensor::{
    identity_file_beside, sensor_config, sensor_console, NodeKey, SensorConfigOptions,
    SensorConsoleOptions,
};

/// On the PC: write an ESP8266 sensor's compiled-in configuration (firmware TMC_SENSOR_CONFIG) from the
/// site file: the access point's SSID and passphrase, the broker's name and port, topic, interval.
#[derive(Debug, Args)]
pub(crate) struct SensorConfigArgs {
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

/// On the PC (or a Pi with the chip): make an ESP8266 sensor's key in its secure element, have the chip
/// sign a certificate request and the site CA certify it. A re-run keeps the key (--new-key replaces it)
/// and re-issues the certificate.
#[derive(Debug, Args)]
pub(crate) struct SensorIdentityArgs {
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

/// On the PC: provision a flashed ESP8266 over its UART console: the node makes its key in its secure
/// element and prints a certificate request, the site CA certifies it (as sensor-identity), the node
/// stores the certificate and the site CA in its identity sector; `show` checks what it stored.
#[derive(Debug, Args)]
pub(crate) struct SensorConsoleArgs {
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

/// `sensor-config`: the file, what the sensor joins, and how to build the firmware with it.
pub(crate) fn sensor_config_cmd(args: SensorConfigArgs) -> anyhow::Result<()> {
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

/// `sensor-identity`: the chip, its key, the certificate and the files written.
pub(crate) fn sensor_identity_cmd(args: SensorIdentityArgs) -> anyhow::Result<()> {
    use tmc_enroll::{enroll_chip, EnrollOptions};

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

/// `sensor-console`: the node's key, its certificate, and what the node stored.
pub(crate) fn sensor_console_cmd(args: SensorConsoleArgs) -> anyhow::Result<()> {
    use tmc_enroll::EnrollOptions;

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

//! The `tmc-pki` command line: thin over the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tmc_pki::{broker, Role, Site, SiteInit, Validity, DEFAULT_BROKER_HOST};

#[derive(Debug, Parser)]
#[command(
    name = "tmc-pki",
    version,
    about = "TMC site PKI: CA, certificates, CRL, mosquitto mTLS configuration"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: tmc_cli::GlobalArgs,
    /// The site directory (CA, issued certificates, CRL, envelope key ring).
    #[arg(long, global = true, default_value = "site")]
    site: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the site CA, the broker certificate, an empty CRL and the envelope key ring.
    Init {
        /// Site name, in the CA's subject.
        #[arg(long, default_value = "TMC site")]
        name: String,
        /// The broker's DNS name.
        #[arg(long, default_value = DEFAULT_BROKER_HOST)]
        host: String,
        /// The AP address (also a name of the broker certificate).
        #[arg(long, default_value = "10.33.33.1")]
        ap_address: String,
        /// More DNS names or IP addresses for the broker certificate (repeatable).
        #[arg(long = "extra-name")]
        extra_names: Vec<String>,
        #[arg(long, default_value_t = 3650)]
        ca_days: i64,
        #[arg(long, default_value_t = 825)]
        days: i64,
    },
    /// Issue a client certificate (new key, or sign a CSR so the key never leaves a secure element).
    Issue {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: Role,
        /// Sign this certificate request instead of creating a key.
        #[arg(long)]
        csr: Option<PathBuf>,
        /// Extra topics a sensor may publish to (it always has sensors/<name>/#); the legacy
        /// ESP8266 firmware publishes to /esp8266. Concrete, or with # as the whole last level;
        /// never $ topics or another sensor's sensors/<other>/ space.
        #[arg(long = "topic")]
        topics: Vec<String>,
        #[arg(long, default_value_t = 825)]
        days: i64,
    },
    /// List issued identities.
    List,
    /// Revoke an identity and rewrite the CRL (reload mosquitto afterwards).
    Revoke {
        #[arg(long)]
        name: String,
    },
    /// New certificate for an identity: same key (or --csr), new serial and validity.
    Renew {
        #[arg(long)]
        name: String,
        #[arg(long)]
        csr: Option<PathBuf>,
        #[arg(long, default_value_t = 825)]
        days: i64,
    },
    /// Write the mosquitto drop-in, ACL and TLS files into a directory.
    BrokerConfig {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 8883)]
        port: u16,
        /// Bind the TLS listener to this address only.
        #[arg(long)]
        bind: Option<String>,
        /// Where the files will be on the broker's machine, if not where they are written.
        #[arg(long)]
        install_dir: Option<PathBuf>,
        /// Also listen without TLS on 127.0.0.1:PORT (local clients may only read sensor topics).
        #[arg(long)]
        plain_loopback_port: Option<u16>,
    },
    /// Validate the site's certificates and keys (expiry, CA signature, key match, broker names).
    Check {
        #[arg(long, default_value = DEFAULT_BROKER_HOST)]
        host: String,
    },
}

fn read_csr(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let site_dir = cli.site;
    match cli.command {
        Command::Init {
            name,
            host,
            ap_address,
            mut extra_names,
            ca_days,
            days,
        } => {
            extra_names.insert(0, ap_address);
            let site = Site::init(
                &site_dir,
                &SiteInit {
                    site_name: name,
                    broker_host: host,
                    extra_names,
                    ca_days,
                    cert_days: days,
                },
            )?;
            println!(
                "created site {} (CA, broker certificate, CRL, envelope key ring; keys 0600)",
                site.dir().display()
            );
        }
        Command::Issue {
            name,
            role,
            csr,
            topics,
            days,
        } => {
            let site = Site::open(&site_dir)?;
            let identity = match csr {
                Some(csr) => {
                    site.issue_csr(&name, role, &topics, &read_csr(&csr)?, Validity::days(days))?
                }
                None => site.issue(&name, role, &topics, Validity::days(days))?,
            };
            println!(
                "issued {} ({}) serial {} -> {}",
                identity.name,
                identity.role,
                identity.serial,
                site.cert_path(&name).display()
            );
        }
        Command::List => {
            let site = Site::open(&site_dir)?;
            println!(
                "{:<24} {:<9} {:<12} {:<8} topics",
                "name", "role", "expires", "status"
            );
            for i in site.list()? {
                let expires = time::OffsetDateTime::from_unix_timestamp(i.not_after)
                    .map(|t| t.date().to_string())
                    .unwrap_or_else(|_| i.not_after.to_string());
                let status = if i.revoked { "revoked" } else { "valid" };
                println!(
                    "{:<24} {:<9} {:<12} {:<8} {}",
                    i.name,
                    i.role.to_string(),
                    expires,
                    status,
                    i.topics.join(" ")
                );
            }
        }
        Command::Revoke { name } => {
            let site = Site::open(&site_dir)?;
            site.revoke(&name)?;
            println!(
                "revoked {name}; CRL rewritten: {} (reload mosquitto)",
                site.crl_path().display()
            );
        }
        Command::Renew { name, csr, days } => {
            let site = Site::open(&site_dir)?;
            let csr = csr.as_ref().map(read_csr).transpose()?;
            let identity = site.renew(&name, csr.as_deref(), Validity::days(days))?;
            println!("renewed {} serial {}", identity.name, identity.serial);
        }
        Command::BrokerConfig {
            out,
            port,
            bind,
            install_dir,
            plain_loopback_port,
        } => {
            let site = Site::open(&site_dir)?;
            let written = broker::write(
                &site,
                &broker::BrokerOptions {
                    port,
                    bind,
                    install_dir,
                    plain_loopback_port,
                },
                &out,
            )?;
            for path in written {
                println!("wrote {}", path.display());
            }
        }
        Command::Check { host } => {
            let site = Site::open(&site_dir)?;
            let checked = site.check(&host)?;
            println!(
                "ok: {} certificate(s) valid: {}",
                checked.len(),
                checked.join(", ")
            );
        }
    }
    Ok(())
}

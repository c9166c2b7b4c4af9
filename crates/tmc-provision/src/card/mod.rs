//! The card writer, run on the PC (`make provision`): puts a Pi board's role, configuration and keys on its
//! flashed SD card (`tmc-provision write`), recording the board in the site's inventory ([`boards`],
//! `tmc-provision list`).
//!
//! ```text
//! tmc-provision write --boot /media/$USER/boot --role concentrator --site site --name relay-1 \
//!                     --board board-config/dragino-lora-hat.toml
//! ```
//!
//! reads the site directory of `tmc-pki` (CA, issued certificates, CRL, envelope key ring), checks
//! everything (board preset, site file, configuration, certificates against the CA, key permissions) and
//! builds the whole bundle in memory. Only then does it write the card; a refused run leaves the card as
//! it was. A concentrator name the site has not issued yet gets its relay certificate (and says so); a
//! name issued for another role, revoked, or with an expired certificate is refused. The CA key never
//! leaves the site directory. A card already provisioned for another name is refused without `--force`.
//!
//! The rendered configuration serves nothing over HTTP unless asked: `--metrics [ADDR:PORT]` adds `[metrics]`
//! (the service's Prometheus counters) to `relay.toml` or `receiver.toml`, and `--web [ADDR:PORT]` adds `[web]`
//! to a gateway's `receiver.toml`, which turns on the page of `tmc-web` (its unit runs on every gateway and
//! exits at once without `[web]`). Both default to the loopback interface; another address is written with a
//! warning (neither has authentication).
//!
//! The one change a run may make before the card is written (see `boot.rs`) is in the site directory: a new
//! concentrator name's relay certificate, issued after every other check has passed. What goes on the card,
//! and where first boot installs it, is in [`crate::boot_bundle`].

pub mod boards;
mod boot;
mod bundle;
pub(crate) mod cli;
mod configs;
mod error;
mod pki;
mod sitefile;

use std::path::{Path, PathBuf};

use tmc_config::listen::ListenSection;
use tmc_pki::{Identity, Site};

use crate::boot_bundle::layout::{BOARD_FILE, KEYS_FILE, RECEIVER_CONFIG, RELAY_CONFIG};
use crate::boot_bundle::manifest::{check_name, Manifest, Role, MANIFEST_FILE};
use boards::{Board, Boards};
use bundle::Bundle;
pub use configs::{render_receiver, render_relay, DEFAULT_GATEWAY_ADDRESS, DEFAULT_RELAY_ADDRESS};
use error::io;
pub use error::WriteError;

/// What to write.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// The mounted boot partition.
    pub boot: PathBuf,
    /// The board's role.
    pub role: Role,
    /// The tmc-pki site directory.
    pub site: PathBuf,
    /// The board's name (a concentrator's relay certificate CN).
    pub name: String,
    /// The radio board preset.
    pub board: PathBuf,
    /// The site file with the access point settings (concentrator; default `SITE/site.toml`).
    pub ap: Option<PathBuf>,
    /// A custom relay.toml / receiver.toml instead of the rendered one.
    pub config: Option<PathBuf>,
    /// This board's node address (default 10 for a concentrator, 1 for a gateway).
    pub address: Option<u8>,
    /// The gateway's node address the relay sends to (concentrator; default 1).
    pub gateway: Option<u8>,
    /// The relays' node addresses the receiver accepts (gateway; default 10).
    pub peers: Option<Vec<u8>>,
    /// The service's Prometheus metrics (`[metrics]` in relay.toml / receiver.toml); `None`: off.
    pub metrics: Option<ListenSection>,
    /// tmc-web's page on the gateway (`[web]` in receiver.toml); `None`: off.
    pub web: Option<ListenSection>,
    /// Replace a card provisioned for another board.
    pub force: bool,
}

/// What `write` did.
#[derive(Clone, Debug)]
pub struct WriteReport {
    /// The manifest written.
    pub manifest: Manifest,
    /// The relay identity issued by this run (a concentrator name that was new to the site).
    pub issued: Option<Identity>,
    /// The name the card was provisioned for before, if it had a manifest.
    pub previous: Option<String>,
    /// Every path written, the manifest last.
    pub written: Vec<PathBuf>,
    /// Things the user should know (default Wi-Fi passphrase, a path not on the card, ...).
    pub warnings: Vec<String>,
    /// The board as the site's inventory now records it (address, sender id).
    pub board: Board,
}

/// Builds the bundle, checks it whole, then writes it to the card.
pub fn write(options: &WriteOptions) -> Result<WriteReport, WriteError> {
    check_name(&options.name).map_err(|problem| WriteError::Identity {
        name: options.name.clone(),
        problem,
    })?;
    check_options(options)?;
    let mut warnings = listen_warnings(options);
    let previous = boot::check_boot(&options.boot, &options.name, options.force, &mut warnings)?;
    let site = Site::open(&options.site)?;

    let mut bundle = Bundle::default();
    let board_text = std::fs::read_to_string(&options.board).map_err(io(&options.board))?;
    tmc_board::BoardPreset::from_toml_str(&board_text, &options.board)?;
    bundle.add(BOARD_FILE, board_text.into_bytes(), false);
    // The site's copy must itself be private: a key ring anyone on the PC could read is not secret.
    let keys_path = site.envelope_keys_path();
    let keys = tmc_secret_file::read_private(&keys_path)?;
    tmc_envelope::KeyRing::parse(
        &String::from_utf8_lossy(&keys),
        &keys_path.display().to_string(),
    )?;
    bundle.add(KEYS_FILE, keys, true);

    let mut boards = Boards::load(site.dir())?;
    let (issued, board) = match options.role {
        Role::Concentrator => {
            concentrator(options, &site, &mut boards, &mut bundle, &mut warnings)?
        }
        Role::Gateway => (
            None,
            gateway(options, &mut boards, &mut bundle, &mut warnings)?,
        ),
    };

    let manifest = bundle.manifest(options.role, &options.name);
    // The same checks firstboot will make: a bundle it would refuse is not written.
    manifest.validate(&options.boot.join(MANIFEST_FILE))?;
    let written = boot::write_bundle(&options.boot, &bundle, &manifest)?;
    Ok(WriteReport {
        manifest,
        issued,
        previous,
        written,
        warnings,
        board,
    })
}

/// Options that belong to the other role, or that a custom configuration would ignore.
fn check_options(o: &WriteOptions) -> Result<(), WriteError> {
    let refuse = |option, problem: String| Err(WriteError::Option { option, problem });
    let wrong_role = |other: Role| format!("only for a {other} (this is a {})", o.role);
    match o.role {
        Role::Concentrator if o.peers.is_some() => {
            return refuse("--peers", wrong_role(Role::Gateway))
        }
        Role::Gateway if o.gateway.is_some() => {
            return refuse("--gateway", wrong_role(Role::Concentrator))
        }
        Role::Gateway if o.ap.is_some() => return refuse("--ap", wrong_role(Role::Concentrator)),
        Role::Concentrator if o.web.is_some() => return refuse("--web", wrong_role(Role::Gateway)),
        _ => {}
    }
    if o.config.is_some() {
        for (option, given) in [
            ("--address", o.address.is_some()),
            ("--gateway", o.gateway.is_some()),
            ("--peers", o.peers.is_some()),
            ("--metrics", o.metrics.is_some()),
            ("--web", o.web.is_some()),
        ] {
            if given {
                return refuse(
                    option,
                    "set it in the --config file instead (it is used as it is)".into(),
                );
            }
        }
    }
    let broadcast = tmc_radio::BROADCAST;
    for (option, value) in [("--address", o.address), ("--gateway", o.gateway)] {
        if value == Some(broadcast) {
            return refuse(
                option,
                format!("{broadcast} is the broadcast address, not a node"),
            );
        }
    }
    if let Some(peers) = &o.peers {
        if peers.is_empty() {
            return refuse("--peers", "list at least one relay node address".into());
        }
        if peers.contains(&broadcast) {
            return refuse(
                "--peers",
                format!("{broadcast} is the broadcast address, not a node"),
            );
        }
    }
    Ok(())
}

/// The page and the metrics have no authentication: serving them beyond the board's loopback interface must be
/// a choice the operator sees.
fn listen_warnings(o: &WriteOptions) -> Vec<String> {
    let (metrics_port, web_port) = (
        match o.role {
            Role::Concentrator => tmc_config::listen::RELAY_PORT,
            Role::Gateway => tmc_config::listen::RECEIVER_PORT,
        },
        tmc_config::listen::WEB_PORT,
    );
    [
        ("--metrics", &o.metrics, metrics_port),
        ("--web", &o.web, web_port),
    ]
    .into_iter()
    .filter_map(|(option, section, port)| {
        let address = section.as_ref()?.address(port);
        (!address.ip().is_loopback()).then(|| {
            format!("{option} {address}: served without authentication beyond the board's loopback interface")
        })
    })
    .collect()
}

/// The node address a board's preset gives it (a custom configuration without `[radio] address`).
fn preset_address(o: &WriteOptions) -> Result<u8, WriteError> {
    Ok(tmc_board::BoardPreset::from_file(&o.board)?
        .radio
        .node_address)
}

fn concentrator(
    o: &WriteOptions,
    site: &Site,
    boards: &mut Boards,
    bundle: &mut Bundle,
    warnings: &mut Vec<String>,
) -> Result<(Option<Identity>, Board), WriteError> {
    let gateway = o.gateway.unwrap_or(DEFAULT_GATEWAY_ADDRESS);
    let (address, sender) = match &o.config {
        Some(path) => {
            let config = tmc_config::relay::RelayConfig::load(path)?;
            let address = match config.radio.address {
                Some(address) => address,
                None => preset_address(o)?,
            };
            (
                address,
                config.envelope.sender.unwrap_or(u32::from(address)),
            )
        }
        None => {
            let address = match o.address {
                Some(address) => address,
                None => boards.address_for(
                    &o.name,
                    Role::Concentrator,
                    DEFAULT_RELAY_ADDRESS,
                    &[gateway],
                )?,
            };
            (address, u32::from(address))
        }
    };
    boards.check(&o.name, address, Some(sender))?;
    if o.config.is_none() && address == gateway {
        return Err(WriteError::Option {
            option: "--address",
            problem: format!("{address} is also the gateway's address (--gateway)"),
        });
    }
    let site_file =
        o.ap.clone()
            .unwrap_or_else(|| site.dir().join(crate::boot_bundle::layout::SITE_FILE));
    sitefile::add_site_file(&site_file, bundle, warnings)?;
    pki::check_broker(site)?;
    let exists = pki::relay_identity_exists(site, &o.name)?;

    // The relay's own certificate and key are named before they are read, so that a custom relay.toml
    // can be checked against the full list of files the card will carry.
    let relay_toml = match &o.config {
        Some(path) => {
            let mut names = Bundle::default();
            for name in bundle.files.keys() {
                names.add(name.clone(), Vec::new(), false);
            }
            names.add(crate::boot_bundle::layout::CA_CERT, Vec::new(), false);
            names.add(configs::relay_cert(&o.name), Vec::new(), false);
            names.add(configs::relay_key(&o.name), Vec::new(), false);
            names.add(RELAY_CONFIG, Vec::new(), false);
            configs::custom_relay(path, &mut names, warnings)?
        }
        None => render_relay(&o.name, address, gateway, sender, o.metrics.clone()).into_bytes(),
    };
    let assignment = tmc_config::assignment::Assignment {
        name: o.name.clone(),
        address,
        sender,
    };

    // Every check that needs no new certificate has passed: only now may the site change.
    let issued = if exists {
        None
    } else {
        Some(pki::issue_relay(site, &o.name)?)
    };
    let board = Board {
        name: o.name.clone(),
        role: Role::Concentrator,
        address,
        sender: Some(sender),
    };
    boards.record(board.clone());
    boards.save()?;
    pki::add_relay_files(site, &o.name, bundle)?;
    pki::add_broker_files(site, bundle)?;
    bundle.add(
        tmc_config::assignment::FILE_NAME,
        assignment.to_toml().into_bytes(),
        false,
    );
    bundle.add(RELAY_CONFIG, relay_toml, false);
    Ok((issued, board))
}

fn gateway(
    o: &WriteOptions,
    boards: &mut Boards,
    bundle: &mut Bundle,
    warnings: &mut Vec<String>,
) -> Result<Board, WriteError> {
    let (receiver_toml, address) = match &o.config {
        Some(path) => {
            let config = tmc_config::receiver::Config::load(path)?;
            let address = match (config.radio.address, config.radio.board.is_some()) {
                (Some(address), _) => address,
                (None, true) => preset_address(o)?,
                (None, false) => DEFAULT_GATEWAY_ADDRESS,
            };
            bundle.add(RECEIVER_CONFIG, Vec::new(), false);
            (configs::custom_receiver(path, bundle, warnings)?, address)
        }
        None => {
            let address = match o.address {
                Some(address) => address,
                None => boards.address_for(&o.name, Role::Gateway, DEFAULT_GATEWAY_ADDRESS, &[])?,
            };
            // By default a gateway accepts every relay of the site (the existing sites' node 10 if none yet).
            let peers = o.peers.clone().unwrap_or_else(|| {
                let relays = boards.relay_addresses();
                if relays.is_empty() {
                    vec![DEFAULT_RELAY_ADDRESS]
                } else {
                    relays
                }
            });
            if peers.contains(&address) {
                return Err(WriteError::Option {
                    option: "--peers",
                    problem: format!("{address} is this gateway's own address (--address)"),
                });
            }
            let text = render_receiver(address, &peers, o.metrics.clone(), o.web.clone());
            let at = Path::new(crate::boot_bundle::layout::ETC_TMC).join(RECEIVER_CONFIG);
            tmc_config::receiver::Config::parse(&text, &at)?;
            (text.into_bytes(), address)
        }
    };
    boards.check(&o.name, address, None)?;
    let board = Board {
        name: o.name.clone(),
        role: Role::Gateway,
        address,
        sender: None,
    };
    boards.record(board.clone());
    boards.save()?;
    bundle.add(RECEIVER_CONFIG, receiver_toml, false);
    Ok(board)
}

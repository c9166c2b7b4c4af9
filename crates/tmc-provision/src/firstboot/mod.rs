//! First boot, run on the Pi as root by a oneshot unit (`tmc-provision firstboot`): installs the bundle the
//! card writer ([`crate::card`]) left on the boot partition, configures the role, then removes the secrets
//! from the card. Each step only changes what differs, and the secrets leave the card only once everything
//! is in place.
//!
//! Run as root by a oneshot unit at boot (`ConditionPathExists=/boot/tmc.toml`). Safe to run again at any
//! point, also after a crash half-way:
//!
//! 1. No `BOOT/tmc.toml`: prints "nothing to provision" and succeeds. If `/etc/tmc/provisioned.toml`
//!    records this very manifest (an earlier run finished) and none of its secrets is on the card, it
//!    prints "already provisioned" and changes nothing, so that the unit can run at every boot without
//!    undoing changes made on the Pi since (a rotated key ring); the files still on the card must match,
//!    though. Writing the card again (or removing `provisioned.toml`) makes the next boot install it again.
//! 2. The manifest is parsed strictly (unknown fields, names outside `tmc/`, keys not marked secret are
//!    refused). Every file on the card must match its sha256; a file no longer on the card is accepted only
//!    if its installed copy has that sum (a re-run after the secrets were removed). Otherwise nothing is
//!    installed.
//! 3. Files are installed (atomically, `fsync`ed, only where content, mode or owner differ), with users
//!    and groups from the image's `/etc/passwd` and `/etc/group` (owners are set only when running as root):
//!
//!    | file | installed as | mode | owner |
//!    |---|---|---|---|
//!    | directory | `/etc/tmc/` | 0750 | root:tmc |
//!    | relay.toml, receiver.toml, board.toml, site.toml, certificates | `/etc/tmc/` | 0640 | root:tmc |
//!    | keys.toml, ecc.NAME.key.pem, other secrets | `/etc/tmc/` | 0600 | tmc:tmc |
//!    | wifi-passphrase (site.toml if it holds the passphrase) | `/etc/tmc/` | 0600 | root:root (tmc-ap runs as root) |
//!    | broker/tmc.conf | `/etc/mosquitto/conf.d/tmc.conf` | 0644 | root:root |
//!    | broker/ecc.broker.key.pem | `/etc/mosquitto/tmc/` | 0600 | mosquitto:mosquitto |
//!    | other broker/ files | `/etc/mosquitto/tmc/` | 0644 | root:root |
//!
//!    The role's configuration (`relay.toml` or `receiver.toml`) comes last: its unit starts only where it
//!    exists, and then finds everything it names. The other role's configuration is removed.
//!    `/etc/mosquitto/mosquitto.conf` gets an `include_dir /etc/mosquitto/conf.d` line if it has no active
//!    one (the file is created if the image has none). On a concentrator, `/etc/hosts` gets
//!    `127.0.0.1 mqtt.com` (the relay's broker name) if no active line names it: the access point's DNS
//!    answers that name for the sensors, not for the board itself.
//! 4. Concentrator: the access point files are rendered from the installed site file and applied with
//!    tmc-ap. Gateway: access point files an earlier role left are removed.
//! 5. Units are enabled as `systemctl enable` does (links in `/etc/systemd/system/<target>.wants/`, masks
//!    removed) and the other role's disabled: concentrator `tmc-relay`, `mosquitto`, `hostapd`, `dnsmasq`;
//!    gateway `tmc-receiver`, `tmc-web` (which stays off unless `receiver.toml` has `[web]`). A unit file
//!    missing from the image is an error naming it.
//! 6. The secret files are removed from the card (non-secret ones and `tmc.toml` stay).
//! 7. On a live system (`--root /` without `--offline`): `systemctl daemon-reload`, the other role's units
//!    stopped and the role's restarted, all `--no-block` (waiting for jobs from a boot-time unit can
//!    deadlock the boot).
//! 8. `/etc/tmc/provisioned.toml` (0640 root:tmc) records the manifest and the time. It is written last:
//!    a run interrupted anywhere before leaves no record, and the next run does every step again (each
//!    only changing what differs) and finishes.
//!
//! Each action is one line on stdout (installed, unchanged, removed from boot, enabled, ...); nothing
//! secret is ever printed.

mod accounts;
mod ap;
pub(crate) mod cli;
mod error;
mod install;
mod record;
mod report;
mod units;
mod verify;

use std::collections::BTreeSet;
use std::path::Path;

use tmc_ap::ServiceManager;

use crate::boot_bundle::fsutil::{effective_uid, first_not_plain, sync_dir, under};
use crate::boot_bundle::layout::{self, Account, ETC_TMC, MOSQUITTO_CONF_D, MOSQUITTO_TMC};
use crate::boot_bundle::manifest::{Manifest, Role, BUNDLE_DIR, MANIFEST_FILE};
use accounts::Accounts;
pub use error::FirstbootError;
use install::Installer;
pub use report::{Action, FirstbootReport, Outcome};

/// Installs the bundle on the card at `boot` into the system at `root`. With `services` (a live system),
/// systemd is reloaded and the role's units restarted without waiting; without, no service is touched.
pub fn firstboot(
    boot: &Path,
    root: &Path,
    mut services: Option<&mut dyn ServiceManager>,
) -> Result<FirstbootReport, FirstbootError> {
    if !root.is_dir() {
        return Err(FirstbootError::Root(root.to_owned()));
    }
    let manifest_path = boot.join(MANIFEST_FILE);
    refuse_links(&manifest_path)?;
    if !manifest_path.exists() {
        return Ok(FirstbootReport::new(Outcome::NothingToProvision));
    }

    // Everything that can refuse does so before the first change. First the card itself: the files
    // below are read, and the secrets removed, by path, which a symbolic link would lead off the card
    // (a boot directory that is not FAT can hold one).
    refuse_links(&boot.join(BUNDLE_DIR))?;
    let manifest = Manifest::from_file(&manifest_path)?;
    let record_path = record::install_path();
    // Finished before (the record is written last) and the card not written again since: the board is
    // left as it is now. The unit runs at every boot while tmc.toml stays on the card; changes made on
    // the Pi since (a rotated key ring, an edited relay.toml) must not be undone by it.
    if record::matches(&under(root, &record_path), &manifest)
        && verify::only_public_left(&manifest, boot)?
    {
        let mut report = FirstbootReport::new(Outcome::AlreadyProvisioned);
        report.board = Some((manifest.role, manifest.name.clone()));
        return Ok(report);
    }
    let mut files = verify::verify(&manifest, &manifest_path, boot, root)?;
    // The role's configuration last: its unit starts only where that file exists, so a unit the image
    // starts early never finds it before the keys and certificates it names.
    let role_config = Path::new(ETC_TMC).join(layout::config_file(manifest.role));
    files.sort_by_key(|f| f.placement.install_path == role_config);
    let mut needed = vec![Account::Tmc];
    needed.extend(
        files
            .iter()
            .flat_map(|f| [f.placement.user, f.placement.group]),
    );
    let accounts = Accounts::load(root, &needed)?;
    let (enable, disable) = layout::units(manifest.role);
    let unit_files = enable
        .iter()
        .map(|u| units::find(root, u))
        .collect::<Result<Vec<_>, _>>()?;
    let broker_host = match manifest.role {
        Role::Concentrator => broker_name(&files, &role_config)?,
        Role::Gateway => None,
    };

    let mut report = FirstbootReport::new(Outcome::Provisioned);
    report.board = Some((manifest.role, manifest.name.clone()));
    report.warnings.extend(unlisted_files(boot, &manifest));
    let chown = effective_uid() == Some(0);
    if !chown {
        report.warnings.push(
            "not running as root: owners are left as they are (as root, keys go to users tmc and mosquitto)"
                .into(),
        );
    }
    let installer = Installer {
        root,
        chown,
        accounts: &accounts,
    };
    let actions = &mut report.actions;

    actions.push(installer.dir(Path::new(ETC_TMC), 0o750, Account::Root, Account::Tmc)?);
    if manifest.role == Role::Concentrator {
        actions.push(installer.dir(
            Path::new(MOSQUITTO_TMC),
            0o755,
            Account::Root,
            Account::Root,
        )?);
        installer.foreign_dir(Path::new(MOSQUITTO_CONF_D))?;
    }
    for f in &files {
        let p = &f.placement;
        actions.push(installer.file(&p.install_path, &f.bytes, p.mode, p.user, p.group)?);
    }
    // The other role's configuration goes: its unit starts only where that file exists.
    let other = match manifest.role {
        Role::Concentrator => Role::Gateway,
        Role::Gateway => Role::Concentrator,
    };
    let other_config = Path::new(ETC_TMC).join(layout::config_file(other));
    actions.extend(installer.remove(&other_config)?);

    match manifest.role {
        Role::Concentrator => {
            actions.push(installer.mosquitto_include()?);
            if let Some(host) = &broker_host {
                actions.push(installer.broker_host(host)?);
            }
            actions.extend(ap::configure(root, services.as_deref_mut())?);
        }
        Role::Gateway => actions.extend(ap::remove(root, services.as_deref_mut())?),
    }
    for file in &unit_files {
        actions.extend(units::enable(root, file)?);
    }
    let mut disabled = Vec::new();
    for unit in disable {
        if let Some(action) = units::disable(root, unit)? {
            disabled.push(*unit);
            actions.push(action);
        }
    }

    let on_boot: Vec<&verify::Verified> = files
        .iter()
        .filter(|f| f.secret && f.boot_path.exists())
        .collect();

    // Everything is installed and on disk (each write was fsynced): the card's secrets can go.
    let mut boot_dirs = BTreeSet::new();
    for f in on_boot {
        std::fs::remove_file(&f.boot_path).map_err(|source| FirstbootError::Io {
            path: f.boot_path.clone(),
            source,
        })?;
        if let Some(dir) = f.boot_path.parent() {
            boot_dirs.insert(dir.to_owned());
        }
        actions.push(Action::RemovedFromBoot(f.boot_path.clone()));
    }
    for dir in &boot_dirs {
        sync_dir(dir).map_err(|source| FirstbootError::Io {
            path: dir.clone(),
            source,
        })?;
    }

    if let Some(sm) = services {
        let restarted_by_ap: BTreeSet<String> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Systemctl(c) => c.strip_prefix("restart --no-block ").map(str::to_owned),
                _ => None,
            })
            .collect();
        let restart: Vec<&str> = enable
            .iter()
            .copied()
            .filter(|u| !restarted_by_ap.contains(*u))
            .collect();
        let mut commands = vec![vec!["daemon-reload"]];
        if !disabled.is_empty() {
            commands.push([&["stop", "--no-block"][..], &disabled].concat());
        }
        if !restart.is_empty() {
            // Restart, not start: a unit already running (mosquitto with the image's configuration) must
            // read what was just installed.
            commands.push([&["restart", "--no-block"][..], &restart].concat());
        }
        for args in commands {
            let command = args.join(" ");
            sm.systemctl(&args)
                .map_err(|reason| FirstbootError::Service {
                    command: command.clone(),
                    reason,
                })?;
            actions.push(Action::Systemctl(command));
        }
    }

    // Last: its presence says that every step above finished.
    installer.file(
        &record_path,
        record::render(&manifest).as_bytes(),
        0o640,
        Account::Root,
        Account::Tmc,
    )?;
    actions.push(Action::Recorded(record_path));
    Ok(report)
}

/// The broker host name of the installed relay configuration, unless it is an address (nothing to resolve).
/// It becomes a line of `/etc/hosts`: anything but a DNS name or an address is refused.
fn broker_name(
    files: &[verify::Verified],
    relay_config: &Path,
) -> Result<Option<String>, FirstbootError> {
    let Some(file) = files
        .iter()
        .find(|f| f.placement.install_path == relay_config)
    else {
        return Ok(None);
    };
    // An unreadable file is the relay's to report, when it starts: nothing for /etc/hosts from it.
    let Some(config) = std::str::from_utf8(&file.bytes)
        .ok()
        .and_then(|text| toml::from_str::<toml::Value>(text).ok())
    else {
        return Ok(None);
    };
    let Some(host) = config
        .get("mqtt")
        .and_then(|mqtt| mqtt.get("host"))
        .and_then(toml::Value::as_str)
    else {
        return Ok(None);
    };
    tmc_config::mqtt::check_host(host).map_err(|error| FirstbootError::BrokerHost {
        path: file.boot_path.clone(),
        error,
    })?;
    Ok((host.parse::<std::net::IpAddr>().is_err() && host != "localhost").then(|| host.to_owned()))
}

/// Refuses a symbolic link (or device, FIFO, socket) at or below `path` on the card.
fn refuse_links(path: &Path) -> Result<(), FirstbootError> {
    match first_not_plain(path) {
        Ok(None) => Ok(()),
        Ok(Some((path, what))) => Err(FirstbootError::NotPlain {
            path,
            kind: what.describe(),
        }),
        Err(source) => Err(FirstbootError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Files on the card that the manifest does not list: not installed, worth a warning.
fn unlisted_files(boot: &Path, manifest: &Manifest) -> Vec<String> {
    let dir = boot.join(BUNDLE_DIR);
    let mut warnings = Vec::new();
    let mut walk = vec![(dir.clone(), String::new())];
    while let Some((path, prefix)) = walk.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.path().is_dir() {
                walk.push((entry.path(), format!("{name}/")));
            } else if !manifest.files.contains_key(&name) {
                warnings.push(format!(
                    "{}: not in the manifest, not installed",
                    entry.path().display()
                ));
            }
        }
    }
    warnings
}

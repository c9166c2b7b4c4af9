//! Where each bundle file goes on the Pi, with which mode and owner, and which units each role runs.
//!
//! The placement is decided here from the file's name, never read from the boot partition: a manifest can
//! only choose among these places, and a file that holds a key (by its name, in any case, or by its
//! content) is 0600 whatever the manifest says.

use std::path::PathBuf;

use crate::boot_bundle::manifest::Role;

/// The TMC configuration directory (0750 root:tmc).
pub const ETC_TMC: &str = "/etc/tmc";
/// The broker's TLS files and ACL.
pub const MOSQUITTO_TMC: &str = "/etc/mosquitto/tmc";
/// mosquitto's drop-in directory.
pub const MOSQUITTO_CONF_D: &str = "/etc/mosquitto/conf.d";
/// mosquitto's main configuration, which must include [`MOSQUITTO_CONF_D`].
pub const MOSQUITTO_CONF: &str = "/etc/mosquitto/mosquitto.conf";
/// The board's own name table: the relay on a concentrator finds the broker name there.
pub const HOSTS: &str = "/etc/hosts";
/// The services' state directory (systemd `StateDirectory=tmc`).
pub const STATE_DIR: &str = "/var/lib/tmc";

/// The relay's configuration (concentrator).
pub const RELAY_CONFIG: &str = "relay.toml";
/// The receiver's configuration (gateway).
pub const RECEIVER_CONFIG: &str = "receiver.toml";
/// The radio board preset.
pub const BOARD_FILE: &str = "board.toml";
/// The site file (access point settings).
pub const SITE_FILE: &str = "site.toml";
/// The Wi-Fi passphrase named by the site file's `passphrase_file`.
pub const PASSPHRASE_FILE: &str = "wifi-passphrase";
/// The envelope key ring.
pub const KEYS_FILE: &str = "keys.toml";
/// The site CA certificate.
pub const CA_CERT: &str = "ecc.ca.cert.pem";
/// Bundle directory of the broker files.
pub const BROKER_DIR: &str = "broker";
/// What `firstboot` records in [`ETC_TMC`] once done.
pub const PROVISIONED_FILE: &str = "provisioned.toml";

/// A user or group a file belongs to. Ids come from the image's `/etc/passwd` and `/etc/group`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Account {
    /// uid/gid 0.
    Root,
    /// The services' user `tmc`.
    Tmc,
    /// The broker's user `mosquitto`.
    Mosquitto,
}

impl Account {
    /// The user and group name.
    pub fn name(self) -> &'static str {
        match self {
            Account::Root => "root",
            Account::Tmc => "tmc",
            Account::Mosquitto => "mosquitto",
        }
    }
}

/// Where and how one bundle file is installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Absolute path on the running system.
    pub install_path: PathBuf,
    /// Permission bits.
    pub mode: u32,
    /// Owning user.
    pub user: Account,
    /// Owning group.
    pub group: Account,
}

fn place(dir: &str, name: &str, mode: u32, user: Account, group: Account) -> Placement {
    Placement {
        install_path: PathBuf::from(dir).join(name),
        mode,
        user,
        group,
    }
}

/// Files that hold keys by their name: refused unless the manifest marks them secret. Names compare
/// without case: the boot partition is FAT, where `ecc.broker.key.PEM` is as much a key as
/// `ecc.broker.key.pem`. Content is checked too, once read: [`holds_private_key`].
pub fn must_be_secret(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    file == KEYS_FILE || file == PASSPHRASE_FILE || file.ends_with(".key.pem")
}

/// Whether `bytes` hold a PEM private key: a `-----BEGIN <label>-----` line whose label ends in
/// `PRIVATE KEY` (`PRIVATE KEY`, `EC PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `OPENSSH PRIVATE KEY`, …),
/// in any case. Such a file is secret whatever it is called. Scans in place: no copy of a key is made.
pub fn holds_private_key(bytes: &[u8]) -> bool {
    const BEGIN: &[u8] = b"-----BEGIN";
    const DASHES: &[u8] = b"-----";
    bytes
        .windows(BEGIN.len())
        .enumerate()
        .filter(|(_, w)| w.eq_ignore_ascii_case(BEGIN))
        .any(|(at, _)| {
            let rest = &bytes[at + BEGIN.len()..];
            let Some(end) = rest.windows(DASHES.len()).position(|w| w == DASHES) else {
                return false;
            };
            let label = &rest[..end];
            let mut words = label
                .split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .rev();
            !label.contains(&b'\n')
                && words.next().is_some_and(|w| w.eq_ignore_ascii_case(b"KEY"))
                && words
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"PRIVATE"))
        })
}

/// The placement of bundle file `name` (already checked by [`super::manifest::check_file_name`]).
pub fn placement(name: &str, secret: bool) -> Result<Placement, String> {
    if must_be_secret(name) && !secret {
        return Err("holds a key: it must be marked secret = true".into());
    }
    let placement = match name.split_once('/') {
        None if name == PROVISIONED_FILE => {
            return Err(format!(
                "{PROVISIONED_FILE} is written by firstboot, not installed from the card"
            ))
        }
        // The passphrase (and a site file that holds it inline) is read by tmc-ap, which runs as root:
        // the services' user has no business with the Wi-Fi key.
        None if secret
            && (name.eq_ignore_ascii_case(PASSPHRASE_FILE)
                || name.eq_ignore_ascii_case(SITE_FILE)) =>
        {
            place(ETC_TMC, name, 0o600, Account::Root, Account::Root)
        }
        // Keys the services read: theirs alone.
        None if secret => place(ETC_TMC, name, 0o600, Account::Tmc, Account::Tmc),
        // Configuration and certificates: readable by the services, writable by root only.
        None => place(ETC_TMC, name, 0o640, Account::Root, Account::Tmc),
        Some((BROKER_DIR, tmc_pki::broker::CONF_FILE)) if !secret => place(
            MOSQUITTO_CONF_D,
            tmc_pki::broker::CONF_FILE,
            0o644,
            Account::Root,
            Account::Root,
        ),
        // The broker key: mosquitto reads its certificates after dropping privileges to its user.
        Some((BROKER_DIR, file)) if secret => place(
            MOSQUITTO_TMC,
            file,
            0o600,
            Account::Mosquitto,
            Account::Mosquitto,
        ),
        Some((BROKER_DIR, file)) => place(MOSQUITTO_TMC, file, 0o644, Account::Root, Account::Root),
        Some((dir, _)) => {
            return Err(format!(
                "{dir}/ is not a bundle directory (only {BROKER_DIR}/ is)"
            ))
        }
    };
    Ok(placement)
}

/// The role's service configuration file.
pub fn config_file(role: Role) -> &'static str {
    match role {
        Role::Concentrator => RELAY_CONFIG,
        Role::Gateway => RECEIVER_CONFIG,
    }
}

/// Files a role's bundle must have.
pub fn required_files(role: Role) -> &'static [&'static str] {
    match role {
        Role::Concentrator => &[
            RELAY_CONFIG,
            BOARD_FILE,
            SITE_FILE,
            KEYS_FILE,
            CA_CERT,
            "broker/tmc.conf",
        ],
        Role::Gateway => &[RECEIVER_CONFIG, BOARD_FILE, KEYS_FILE],
    }
}

/// Units only a concentrator runs.
pub const CONCENTRATOR_UNITS: &[&str] = &[
    "tmc-relay.service",
    "mosquitto.service",
    "hostapd.service",
    "dnsmasq.service",
];
/// Units only a gateway runs. tmc-web is enabled on every gateway: it serves the page only where
/// receiver.toml has `[web]`, and otherwise exits at once, successfully.
pub const GATEWAY_UNITS: &[&str] = &["tmc-receiver.service", "tmc-web.service"];

/// Units to enable for `role`, and the other role's units to disable.
pub fn units(role: Role) -> (&'static [&'static str], &'static [&'static str]) {
    match role {
        Role::Concentrator => (CONCENTRATOR_UNITS, GATEWAY_UNITS),
        Role::Gateway => (GATEWAY_UNITS, CONCENTRATOR_UNITS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn places_by_name_and_secrecy() {
        let p = placement("relay.toml", false).unwrap();
        assert_eq!(p.install_path, Path::new("/etc/tmc/relay.toml"));
        assert_eq!(
            (p.mode, p.user, p.group),
            (0o640, Account::Root, Account::Tmc)
        );
        let p = placement("keys.toml", true).unwrap();
        assert_eq!(
            (p.mode, p.user, p.group),
            (0o600, Account::Tmc, Account::Tmc)
        );
        let p = placement("wifi-passphrase", true).unwrap();
        assert_eq!((p.mode, p.user), (0o600, Account::Root));
        // FAT keeps no case: the Wi-Fi key stays root's whatever the card calls it.
        let p = placement("WIFI-PASSPHRASE", true).unwrap();
        assert_eq!((p.mode, p.user), (0o600, Account::Root));
        let p = placement("broker/tmc.conf", false).unwrap();
        assert_eq!(p.install_path, Path::new("/etc/mosquitto/conf.d/tmc.conf"));
        let p = placement("broker/ecc.broker.key.pem", true).unwrap();
        assert_eq!(
            (p.install_path.as_path(), p.mode, p.user),
            (
                Path::new("/etc/mosquitto/tmc/ecc.broker.key.pem"),
                0o600,
                Account::Mosquitto
            )
        );
        let p = placement("broker/tmc.acl", false).unwrap();
        assert_eq!((p.mode, p.user), (0o644, Account::Root));
    }

    #[test]
    fn refuses_keys_not_marked_secret_and_unknown_places() {
        for name in [
            "keys.toml",
            "ecc.r1.key.pem",
            "broker/ecc.broker.key.pem",
            "wifi-passphrase",
        ] {
            let err = placement(name, false).unwrap_err();
            assert!(err.contains("must be marked secret"), "{name}: {err}");
        }
        // FAT does not keep case: these are the same keys.
        for name in [
            "KEYS.TOML",
            "ecc.r1.key.PEM",
            "broker/ecc.broker.key.PEM",
            "broker/ECC.BROKER.KEY.pem",
            "Wifi-Passphrase",
        ] {
            let err = placement(name, false).unwrap_err();
            assert!(err.contains("must be marked secret"), "{name}: {err}");
            assert_eq!(placement(name, true).unwrap().mode, 0o600, "{name}");
        }
        assert!(placement("other/x", false).unwrap_err().contains("other/"));
        assert!(placement("provisioned.toml", false).is_err());
    }

    #[test]
    fn private_keys_are_found_by_content() {
        for key in [
            "-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n",
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIHsMFcG\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB\n",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNz\n",
            "-----begin ec private key-----\n",
            // A certificate first does not hide the key after it.
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN EC PRIVATE KEY-----\nMHc\n",
            "# comment\r\n-----BEGIN  PRIVATE KEY-----\r\n",
        ] {
            assert!(holds_private_key(key.as_bytes()), "{key:?}");
        }
        for public in [
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
            "-----BEGIN X509 CRL-----\nMIIB\n",
            "[mqtt]\nkey = \"/etc/tmc/ecc.r1.key.pem\" # the PRIVATE KEY file\n",
            "-----BEGIN CERTIFICATE\nPRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY",
            "",
        ] {
            assert!(!holds_private_key(public.as_bytes()), "{public:?}");
        }
    }
}

//! What `tmc-ap` manages on a system: each file's install path and the content it should have.

use std::path::{Path, PathBuf};

/// The desired state of one managed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Desired {
    /// A regular file with this content and mode.
    File {
        /// Content.
        contents: String,
        /// Permission bits (0600 for the file holding the passphrase).
        mode: u32,
    },
    /// A symbolic link to this target (how `systemctl enable` records a unit; written by hand into an
    /// image root, where systemctl cannot run).
    Symlink(PathBuf),
    /// Nothing: a file an earlier configuration needed (the NAT rules once the uplink is removed).
    Absent,
}

/// One path `tmc-ap` owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedFile {
    /// Absolute path on the running system, e.g. `/etc/hostapd/hostapd.conf`.
    pub install_path: PathBuf,
    /// Name under `render --out DIR` (flat, so that a reviewer sees every file at once).
    pub out_name: &'static str,
    /// Which service reads it: decides what restarts when it changes.
    pub service: Service,
    /// What should be there.
    pub desired: Desired,
}

impl ManagedFile {
    /// A regular file.
    pub(crate) fn file(
        install_path: &str,
        out_name: &'static str,
        service: Service,
        contents: String,
        mode: u32,
    ) -> Self {
        ManagedFile {
            install_path: PathBuf::from(install_path),
            out_name,
            service,
            desired: Desired::File { contents, mode },
        }
    }

    /// The path under `root` (`/` on a running system, the image root with `apply --root`).
    pub fn path_under(&self, root: &Path) -> PathBuf {
        root.join(
            self.install_path
                .strip_prefix("/")
                .unwrap_or(&self.install_path),
        )
    }

    /// The file's content, if it is a regular file.
    pub fn contents(&self) -> Option<&str> {
        match &self.desired {
            Desired::File { contents, .. } => Some(contents),
            _ => None,
        }
    }
}

/// The service a file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// systemd-networkd: the AP interface's static address. Restarted first, so the address is there when
    /// dnsmasq binds to it.
    Networkd,
    /// hostapd: the access point.
    Hostapd,
    /// dnsmasq: DHCP and DNS.
    Dnsmasq,
    /// systemd-sysctl: IPv4 forwarding.
    Sysctl,
    /// tmc-ap-nat: the nftables NAT rules.
    Nat,
}

impl Service {
    /// The systemd unit.
    pub fn unit(self) -> &'static str {
        match self {
            Service::Networkd => "systemd-networkd.service",
            Service::Hostapd => "hostapd.service",
            Service::Dnsmasq => "dnsmasq.service",
            Service::Sysctl => "systemd-sysctl.service",
            Service::Nat => NAT_UNIT,
        }
    }
}

/// Where hostapd reads its configuration (Debian's default; the service drop-in makes it so elsewhere).
pub const HOSTAPD_CONF: &str = "/etc/hostapd/hostapd.conf";
/// hostapd's control sockets, one per interface: what `tmc-ap status` talks to.
pub const HOSTAPD_CTRL_DIR: &str = "/run/hostapd";
/// dnsmasq's lease file (its compiled-in default on Debian and Yocto).
pub const DNSMASQ_LEASES: &str = "/var/lib/misc/dnsmasq.leases";
/// The unit that loads the NAT rules.
pub const NAT_UNIT: &str = "tmc-ap-nat.service";
/// The NAT rules.
pub const NAT_RULES: &str = "/etc/tmc-ap/nat.nft";
/// Mode of the file that holds the passphrase.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of every other file.
pub const PUBLIC_MODE: u32 = 0o644;

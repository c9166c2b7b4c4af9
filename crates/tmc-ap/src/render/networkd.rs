//! systemd-networkd: the AP interface's static address, no DHCP client on it.

use std::fmt::Write;

use tmc_config::site::ApSettings;

use super::GENERATED;
use crate::files::{ManagedFile, Service, PUBLIC_MODE};

/// `/etc/systemd/network/10-tmc-ap.network`.
pub(super) fn network(ap: &ApSettings) -> ManagedFile {
    let mut c = String::new();
    let _ = writeln!(c, "# {GENERATED}");
    let _ = writeln!(
        c,
        "# Static address of the access point; it is the sensors' router and DNS server."
    );
    let _ = writeln!(c, "[Match]");
    let _ = writeln!(c, "Name={}", ap.interface);
    let _ = writeln!(c);
    let _ = writeln!(c, "[Link]");
    let _ = writeln!(c, "# Booting must not wait for sensors to associate.");
    let _ = writeln!(c, "RequiredForOnline=no");
    let _ = writeln!(c);
    let _ = writeln!(c, "[Network]");
    let _ = writeln!(c, "Address={}/{}", ap.address, ap.prefix_len);
    let _ = writeln!(c, "DHCP=no");
    let _ = writeln!(c, "IPv6AcceptRA=no");
    let _ = writeln!(c, "LinkLocalAddressing=no");
    let _ = writeln!(
        c,
        "# Keep the address while hostapd (re)starts, so dnsmasq can bind to it."
    );
    let _ = writeln!(c, "ConfigureWithoutCarrier=yes");
    let _ = writeln!(c, "IgnoreCarrierLoss=yes");
    ManagedFile::file(
        "/etc/systemd/network/10-tmc-ap.network",
        "10-tmc-ap.network",
        Service::Networkd,
        c,
        PUBLIC_MODE,
    )
}

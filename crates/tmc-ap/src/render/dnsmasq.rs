//! dnsmasq: DHCP for the sensors and a DNS that answers `mqtt.com` (and the other local names) itself.

use std::fmt::Write;

use tmc_config::site::ApSettings;

use super::GENERATED;
use crate::files::{ManagedFile, Service, PUBLIC_MODE};

/// A lease time as dnsmasq writes it: `1h`, `45m`, or seconds.
pub fn lease_time(seconds: u32) -> String {
    if seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        seconds.to_string()
    }
}

/// `/etc/dnsmasq.d/tmc-ap.conf`.
pub(super) fn drop_in(ap: &ApSettings) -> ManagedFile {
    let mut c = String::new();
    let _ = writeln!(c, "# {GENERATED}");
    let _ = writeln!(c, "# DHCP and DNS for the TMC sensors on {}.", ap.interface);
    let _ = writeln!(c, "interface={}", ap.interface);
    let _ = writeln!(c, "bind-interfaces");
    let _ = writeln!(c, "# Never forward plain names or private reverse lookups.");
    let _ = writeln!(c, "domain-needed");
    let _ = writeln!(c, "bogus-priv");
    let _ = writeln!(
        c,
        "# Not /etc/hosts: it is the board's own view (first boot maps the broker name to 127.0.0.1 for the\n\
         # relay), and dnsmasq would give it to the sensors ahead of the local names below."
    );
    let _ = writeln!(c, "no-hosts");
    match (&ap.upstream_interface, ap.upstream_dns.as_slice()) {
        (None, []) => {
            let _ = writeln!(
                c,
                "# Offline: answer the local names below and nothing else."
            );
            let _ = writeln!(c, "no-resolv");
        }
        (_, []) => {
            let _ = writeln!(
                c,
                "# Other names go to the system's resolvers (/etc/resolv.conf)."
            );
        }
        (_, servers) => {
            let _ = writeln!(
                c,
                "# Other names go to these servers only, never to /etc/resolv.conf."
            );
            let _ = writeln!(c, "no-resolv");
            for server in servers {
                let _ = writeln!(c, "server={server}");
            }
        }
    }
    let _ = writeln!(c);
    let _ = writeln!(
        c,
        "dhcp-range={},{},{},{}",
        ap.dhcp_start,
        ap.dhcp_end,
        ap.netmask(),
        lease_time(ap.lease_seconds)
    );
    let _ = writeln!(c, "dhcp-option=option:router,{}", ap.address);
    let _ = writeln!(c, "dhcp-option=option:dns-server,{}", ap.address);
    let _ = writeln!(c, "# The only DHCP server on this network: answer sensors that come back with a stale lease at once.");
    let _ = writeln!(c, "dhcp-authoritative");
    if !ap.local_names.is_empty() {
        let _ = writeln!(c);
        let _ = writeln!(
            c,
            "# Local names (subdomains included), answered without asking upstream."
        );
        for name in &ap.local_names {
            let _ = writeln!(c, "address=/{}/{}", name.name, name.address);
        }
    }
    if !ap.static_leases.is_empty() {
        let _ = writeln!(c);
        let _ = writeln!(c, "# Known sensors: fixed addresses.");
        for lease in &ap.static_leases {
            match &lease.name {
                Some(name) => {
                    let _ = writeln!(c, "dhcp-host={},{},{name}", lease.mac, lease.address);
                }
                None => {
                    let _ = writeln!(c, "dhcp-host={},{}", lease.mac, lease.address);
                }
            }
        }
    }
    ManagedFile::file(
        "/etc/dnsmasq.d/tmc-ap.conf",
        "dnsmasq.d-tmc-ap.conf",
        Service::Dnsmasq,
        c,
        PUBLIC_MODE,
    )
}

/// A unit drop-in: with `bind-interfaces` dnsmasq needs the AP address to exist when it starts, so it starts
/// after the interface and networkd, and retries if it still came too early.
pub(super) fn service_override(ap: &ApSettings) -> ManagedFile {
    let mut c = String::new();
    let _ = writeln!(c, "# {GENERATED}");
    let _ = writeln!(
        c,
        "# dnsmasq binds to {}'s address: start it once the address is there.",
        ap.interface
    );
    let _ = writeln!(c, "[Unit]");
    let _ = writeln!(
        c,
        "After=sys-subsystem-net-devices-{}.device systemd-networkd.service hostapd.service",
        ap.interface
    );
    let _ = writeln!(c);
    let _ = writeln!(c, "[Service]");
    let _ = writeln!(c, "Restart=on-failure");
    let _ = writeln!(c, "RestartSec=2");
    ManagedFile::file(
        "/etc/systemd/system/dnsmasq.service.d/tmc-ap.conf",
        "dnsmasq.service.d-tmc-ap.conf",
        Service::Dnsmasq,
        c,
        PUBLIC_MODE,
    )
}

//! Forwarding and NAT from the sensors' network to the uplink, when `upstream_interface` is set.

use std::fmt::Write;
use std::path::PathBuf;

use tmc_config::site::ApSettings;

use super::GENERATED;
use crate::files::{Desired, ManagedFile, Service, NAT_RULES, PUBLIC_MODE};

const SYSCTL: &str = "/etc/sysctl.d/90-tmc-ap.conf";
const UNIT: &str = "/etc/systemd/system/tmc-ap-nat.service";
const UNIT_WANTS: &str = "/etc/systemd/system/multi-user.target.wants/tmc-ap-nat.service";

/// The sysctl file, the nftables rules, their unit and its enablement link; all absent without an uplink.
pub(super) fn files(ap: &ApSettings) -> Vec<ManagedFile> {
    let Some(uplink) = &ap.upstream_interface else {
        return [
            (SYSCTL, "90-tmc-ap.sysctl.conf", Service::Sysctl),
            (NAT_RULES, "nat.nft", Service::Nat),
            (UNIT, "tmc-ap-nat.service", Service::Nat),
            (UNIT_WANTS, "tmc-ap-nat.service.wants-link", Service::Nat),
        ]
        .into_iter()
        .map(|(path, out_name, service)| ManagedFile {
            install_path: PathBuf::from(path),
            out_name,
            service,
            desired: Desired::Absent,
        })
        .collect();
    };
    vec![
        ManagedFile::file(
            SYSCTL,
            "90-tmc-ap.sysctl.conf",
            Service::Sysctl,
            format!("# {GENERATED}\n# Route the sensors' traffic to the uplink.\nnet.ipv4.ip_forward = 1\n"),
            PUBLIC_MODE,
        ),
        ManagedFile::file(NAT_RULES, "nat.nft", Service::Nat, rules(ap, uplink), PUBLIC_MODE),
        ManagedFile::file(UNIT, "tmc-ap-nat.service", Service::Nat, unit(ap, uplink), PUBLIC_MODE),
        ManagedFile {
            install_path: PathBuf::from(UNIT_WANTS),
            out_name: "tmc-ap-nat.service.wants-link",
            service: Service::Nat,
            desired: Desired::Symlink(PathBuf::from(UNIT)),
        },
    ]
}

fn rules(ap: &ApSettings, uplink: &str) -> String {
    let net = format!("{}/{}", ap.network(), ap.prefix_len);
    let wlan = &ap.interface;
    let mut c = String::new();
    let _ = writeln!(c, "# {GENERATED}");
    let _ = writeln!(
        c,
        "# NAT from the sensors' network {net} on {wlan} to the uplink {uplink}."
    );
    let _ = writeln!(c, "# Its own table, replaced as a whole on every load (the first two lines make reloading idempotent);");
    let _ = writeln!(c, "# other rules on the host are left alone.");
    let _ = writeln!(c, "table ip tmc_ap");
    let _ = writeln!(c, "delete table ip tmc_ap");
    let _ = writeln!(c);
    let _ = writeln!(c, "table ip tmc_ap {{");
    let _ = writeln!(c, "\tchain forward {{");
    let _ = writeln!(
        c,
        "\t\ttype filter hook forward priority filter; policy accept;"
    );
    let _ = writeln!(
        c,
        "\t\tiifname \"{wlan}\" oifname \"{uplink}\" ip saddr {net} accept"
    );
    let _ = writeln!(c, "\t\tiifname \"{wlan}\" oifname \"{uplink}\" drop");
    let _ = writeln!(
        c,
        "\t\tiifname \"{uplink}\" oifname \"{wlan}\" ct state established,related accept"
    );
    let _ = writeln!(c, "\t\tiifname \"{uplink}\" oifname \"{wlan}\" drop");
    let _ = writeln!(c, "\t}}");
    let _ = writeln!(c);
    let _ = writeln!(c, "\tchain postrouting {{");
    let _ = writeln!(
        c,
        "\t\ttype nat hook postrouting priority srcnat; policy accept;"
    );
    let _ = writeln!(c, "\t\toifname \"{uplink}\" ip saddr {net} masquerade");
    let _ = writeln!(c, "\t}}");
    let _ = writeln!(c, "}}");
    c
}

fn unit(ap: &ApSettings, uplink: &str) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "# {GENERATED}");
    let _ = writeln!(c, "[Unit]");
    let _ = writeln!(
        c,
        "Description=TMC access point: NAT from {} to {uplink}",
        ap.interface
    );
    let _ = writeln!(c, "Wants=network-pre.target");
    let _ = writeln!(c, "Before=network-pre.target");
    let _ = writeln!(c);
    let _ = writeln!(c, "[Service]");
    let _ = writeln!(c, "Type=oneshot");
    let _ = writeln!(c, "RemainAfterExit=yes");
    let _ = writeln!(c, "ExecStart=/usr/sbin/nft -f {NAT_RULES}");
    let _ = writeln!(c, "ExecStop=/usr/sbin/nft delete table ip tmc_ap");
    let _ = writeln!(c);
    let _ = writeln!(c, "[Install]");
    let _ = writeln!(c, "WantedBy=multi-user.target");
    c
}

//! Golden tests: the rendered files, byte for byte. `TMC_UPDATE_GOLDEN=1 cargo test -p tmc-ap --test golden`
//! rewrites them after an intended change; review the diff.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use tmc_ap::{render, Desired};
use tmc_config::SiteConfig;

const FULL_SITE: &str = r#"[ap]
interface = "wlan1"
ssid = "TMC Gewächshaus"
passphrase = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
country = "US"
channel = "auto"
ieee80211n = false
hidden_ssid = true
isolate_clients = false
address = "192.168.7.1/25"
dhcp_start = "192.168.7.20"
dhcp_end = "192.168.7.99"
lease_time = "45m"
local_names = ["mqtt.com", { name = "nas.lan", address = "192.168.7.5" }]
upstream_interface = "eth0"
upstream_dns = ["9.9.9.9", "2620:fe::fe"]

[[ap.static_leases]]
mac = "A4:CF:12:00:00:01"
address = "192.168.7.10"
name = "sensor-1"

[[ap.static_leases]]
mac = "a4:cf:12:00:00:02"
address = "192.168.7.30"
"#;

/// Uplink without DNS servers: other names go to the system's resolvers.
const UPLINK_SITE: &str =
    "[ap]\npassphrase = \"a passphrase with spaces & #hash\"\nupstream_interface = \"eth0\"\n";

fn golden(case: &str, site: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case);
    let ap = SiteConfig::from_toml_str(site, "site.toml").unwrap().ap;
    let files = render(&ap);
    assert_eq!(files, render(&ap), "rendering is deterministic");
    let update = std::env::var_os("TMC_UPDATE_GOLDEN").is_some();
    if update {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
    }
    let mut expected_names = BTreeSet::new();
    for file in &files {
        let text = match &file.desired {
            Desired::File { contents, .. } => contents.clone(),
            Desired::Symlink(target) => format!("symlink to {}\n", target.display()),
            Desired::Absent => continue,
        };
        expected_names.insert(file.out_name.to_owned());
        let path = dir.join(file.out_name);
        if update {
            fs::write(&path, &text).unwrap();
        }
        let want = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (TMC_UPDATE_GOLDEN=1 creates it)", path.display()));
        assert_eq!(text, want, "{} differs from the golden file", file.out_name);
    }
    let on_disk: BTreeSet<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(on_disk, expected_names, "no stale golden files");
}

#[test]
fn defaults() {
    golden("default", "");
}

#[test]
fn every_option() {
    golden("full", FULL_SITE);
}

#[test]
fn uplink_with_system_resolvers() {
    golden("uplink", UPLINK_SITE);
}

#[test]
fn secrets_only_in_the_0600_file() {
    let ap = SiteConfig::from_toml_str(UPLINK_SITE, "site.toml")
        .unwrap()
        .ap;
    for file in render(&ap) {
        let Desired::File { contents, mode } = &file.desired else {
            continue;
        };
        let holds_key = contents.contains("a passphrase with spaces");
        assert_eq!(holds_key, *mode == 0o600, "{}", file.out_name);
        assert_eq!(holds_key, file.out_name == "hostapd.conf");
    }
}

#[test]
fn without_uplink_the_nat_files_are_absent() {
    let ap = SiteConfig::from_toml_str("", "site.toml").unwrap().ap;
    let absent: Vec<String> = render(&ap)
        .into_iter()
        .filter(|f| f.desired == Desired::Absent)
        .map(|f| f.install_path.display().to_string())
        .collect();
    assert_eq!(
        absent,
        [
            "/etc/sysctl.d/90-tmc-ap.conf",
            "/etc/tmc-ap/nat.nft",
            "/etc/systemd/system/tmc-ap-nat.service",
            "/etc/systemd/system/multi-user.target.wants/tmc-ap-nat.service"
        ]
    );
}

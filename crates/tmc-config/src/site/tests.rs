//! The site file parser: defaults, the example file, and one test per validation error.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;

use super::*;

fn parse(text: &str) -> Result<SiteConfig, SiteError> {
    SiteConfig::from_toml_str(text, "site.toml")
}

/// The single problem an `[ap]` body produces, as `(field, problem)`.
fn only_problem(ap_body: &str) -> (String, String) {
    let err = parse(&format!("[ap]\n{ap_body}\n")).expect_err("must be refused");
    let problems = err.problems();
    assert_eq!(
        problems.len(),
        1,
        "exactly one problem for {ap_body:?}: {err:?}"
    );
    (problems[0].field.clone(), problems[0].problem.clone())
}

#[test]
fn empty_file_gives_working_defaults() {
    let ap = parse("").unwrap().ap;
    assert_eq!(ap.interface, "wlan0");
    assert_eq!(ap.ssid, DEFAULT_SSID);
    assert_eq!(ap.key, WpaKey::Passphrase(DEFAULT_PASSPHRASE.into()));
    assert!(ap.key_is_default);
    assert_eq!(ap.country, "DE");
    assert_eq!(ap.channel, Channel::Fixed(6));
    assert!(ap.ieee80211n && !ap.hidden_ssid && ap.isolate_clients);
    assert_eq!(
        (ap.address, ap.prefix_len),
        (Ipv4Addr::new(10, 33, 33, 1), 24)
    );
    assert_eq!(ap.netmask(), Ipv4Addr::new(255, 255, 255, 0));
    assert_eq!(ap.network(), Ipv4Addr::new(10, 33, 33, 0));
    assert_eq!(ap.dhcp_start, Ipv4Addr::new(10, 33, 33, 100));
    assert_eq!(ap.dhcp_end, Ipv4Addr::new(10, 33, 33, 150));
    assert_eq!(ap.lease_seconds, 3600);
    assert_eq!(
        ap.local_names,
        [LocalName {
            name: "mqtt.com".into(),
            address: Ipv4Addr::new(10, 33, 33, 1)
        }]
    );
    assert_eq!(ap.upstream_interface, None);
    assert!(ap.upstream_dns.is_empty() && ap.static_leases.is_empty());
    assert_eq!(parse("[ap]\n").unwrap().ap, ap);
}

#[test]
fn example_site_file_is_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../board-config/site.toml");
    let site = SiteConfig::from_file(path).unwrap();
    assert_eq!(site.ap, parse("").unwrap().ap);
}

#[test]
fn default_range_follows_the_address() {
    let ap = parse("[ap]\naddress = \"192.168.50.1/24\"").unwrap().ap;
    assert_eq!(ap.dhcp_start, Ipv4Addr::new(192, 168, 50, 100));
    assert_eq!(ap.dhcp_end, Ipv4Addr::new(192, 168, 50, 150));
    assert_eq!(ap.local_names[0].address, Ipv4Addr::new(192, 168, 50, 1));
}

#[test]
fn every_field_set() {
    let ap = parse(
        r#"[ap]
interface = "wlan1"
ssid = "Gewächshaus"
passphrase = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"
country = "US"
channel = "auto"
ieee80211n = false
hidden_ssid = true
isolate_clients = false
address = "192.168.7.1/25"
dhcp_start = "192.168.7.20"
dhcp_end = "192.168.7.99"
lease_time = 7200
local_names = ["mqtt.com", { name = "nas.lan", address = "192.168.7.5" }]
upstream_interface = "eth0"
upstream_dns = ["9.9.9.9", "2620:fe::fe"]

[[ap.static_leases]]
mac = "A4-CF-12-00-00-01"
address = "192.168.7.10"
name = "sensor-1"

[[ap.static_leases]]
mac = "a4:cf:12:00:00:02"
address = "192.168.7.30"
"#,
    )
    .unwrap()
    .ap;
    assert_eq!(ap.key, WpaKey::Psk("0123456789abcdef".repeat(4)));
    assert!(!ap.key_is_default);
    assert_eq!(ap.channel, Channel::Auto);
    assert_eq!(ap.netmask(), Ipv4Addr::new(255, 255, 255, 128));
    assert_eq!(ap.lease_seconds, 7200);
    assert_eq!(ap.local_names[1].address, Ipv4Addr::new(192, 168, 7, 5));
    assert_eq!(ap.upstream_interface.as_deref(), Some("eth0"));
    assert_eq!(ap.upstream_dns[1], "2620:fe::fe".parse::<IpAddr>().unwrap());
    assert_eq!(ap.static_leases[0].mac.to_string(), "a4:cf:12:00:00:01");
    assert_eq!(ap.static_leases[1].name, None);
    assert!(ap.in_dhcp_range(Ipv4Addr::new(192, 168, 7, 30)));
    assert!(
        format!("{:?}", ap.key).contains("redacted"),
        "Debug hides the key"
    );
}

#[test]
fn lease_time_units() {
    for (text, seconds) in [
        ("\"45m\"", 2700),
        ("\"2d\"", 172_800),
        ("\"120s\"", 120),
        ("600", 600),
    ] {
        let ap = parse(&format!("[ap]\nlease_time = {text}")).unwrap().ap;
        assert_eq!(ap.lease_seconds, seconds, "{text}");
    }
}

#[test]
fn passphrase_from_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("wifi-passphrase");
    std::fs::write(&key, "correct horse battery\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let site = dir.path().join("site.toml");
    std::fs::write(&site, "[ap]\npassphrase_file = \"wifi-passphrase\"\n").unwrap();
    let ap = SiteConfig::from_file(&site).unwrap().ap;
    assert_eq!(ap.key, WpaKey::Passphrase("correct horse battery".into()));

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = SiteConfig::from_file(&site).unwrap_err();
    assert_eq!(err.problems()[0].field, "ap.passphrase_file");
    assert!(err.problems()[0].problem.contains("0644"), "{err}");
}

#[test]
fn every_problem_is_reported_each_on_one_line() {
    let err = parse("[ap]\nssid = \"\"\npassphrase = \"short\"\ncountry = \"XX\"\n").unwrap_err();
    let lines = err.messages();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("site.toml: ap.ssid: 0 bytes"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("site.toml: ap.passphrase: 5 characters"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("site.toml: ap.country: \"XX\""),
        "{lines:?}"
    );
    assert!(err.to_string().ends_with("(and 2 more problems)"), "{err}");
}

#[test]
fn syntax_errors_are_one_line_with_position() {
    let err = parse("[ap]\nchanel = 6\n").unwrap_err();
    let text = err.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(
        text.starts_with("site.toml: line 2, column 1: unknown field `chanel`"),
        "{text}"
    );
    let err = parse("[radio]\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `radio`"), "{err}");
}

/// One test per validation error: `name`, the `[ap]` body, the field and a piece of the message.
macro_rules! refused {
    ($($name:ident: $body:expr => $field:expr, $needle:expr;)*) => {$(
        #[test]
        fn $name() {
            let (field, problem) = only_problem(&$body);
            assert_eq!(field, $field, "{problem}");
            assert!(problem.contains($needle), "{field}: {problem}");
        }
    )*};
}

refused! {
    interface_name_invalid: "interface = \"wlan0:1\"" => "ap.interface", "not an interface name";
    interface_name_too_long: "interface = \"a-very-long-ifname\"" => "ap.interface", "1–15";
    ssid_empty: "ssid = \"\"" => "ap.ssid", "1–32 bytes";
    ssid_too_long: "ssid = \"123456789012345678901234567890123\"" => "ap.ssid", "33 bytes";
    ssid_control_character: "ssid = \"a\\nb\"" => "ap.ssid", "control character";
    passphrase_too_short: "passphrase = \"1234567\"" => "ap.passphrase", "7 characters";
    passphrase_too_long: "passphrase = \"" .to_owned() + &"x".repeat(64) + "\"" => "ap.passphrase", "not hex";
    passphrase_not_ascii: "passphrase = \"pässwört123\"" => "ap.passphrase", "printable ASCII";
    passphrase_control_character: "passphrase = \"abc\\tdefgh\"" => "ap.passphrase", "'\\t'";
    passphrase_both_sources: "passphrase = \"12345678\"\npassphrase_file = \"k\"" => "ap.passphrase_file", "not both";
    passphrase_file_missing: "passphrase_file = \"/nonexistent/tmc/k\"" => "ap.passphrase_file", "/nonexistent/tmc/k";
    country_unknown: "country = \"XX\"" => "ap.country", "ISO 3166-1 alpha-2";
    country_lower_case: "country = \"de\"" => "ap.country", "upper-case";
    country_not_iso: "country = \"UK\"" => "ap.country", "\"UK\"";
    channel_zero: "channel = 0" => "ap.channel", "not a 2.4 GHz channel";
    channel_5ghz: "channel = 36" => "ap.channel", "ESP8266";
    channel_14: "channel = 14" => "ap.channel", "Japan";
    channel_13_in_us: "country = \"US\"\nchannel = 13" => "ap.channel", "not allowed in US";
    channel_word: "channel = \"best\"" => "ap.channel", "\"auto\"";
    address_without_prefix: "address = \"10.33.33.1\"" => "ap.address", "address/prefix";
    address_not_ipv4: "address = \"10.33.33.300/24\"" => "ap.address", "not an IPv4 address";
    address_prefix_too_long: "address = \"10.33.33.1/31\"" => "ap.address", "8–30";
    address_is_network: "address = \"10.33.33.0/24\"\ndhcp_start = \"10.33.33.100\"" => "ap.address", "network address";
    address_is_broadcast: "address = \"10.33.33.255/24\"" => "ap.address", "broadcast address";
    dhcp_start_not_ipv4: "dhcp_start = \"ten\"" => "ap.dhcp_start", "not an IPv4 address";
    dhcp_start_outside_prefix: "dhcp_start = \"10.33.34.100\"" => "ap.dhcp_start", "outside the AP's prefix 10.33.33.0/24";
    dhcp_end_outside_prefix: "dhcp_end = \"10.33.34.10\"" => "ap.dhcp_end", "outside";
    dhcp_end_is_broadcast: "dhcp_end = \"10.33.33.255\"" => "ap.dhcp_end", "broadcast";
    dhcp_range_reversed: "dhcp_start = \"10.33.33.150\"\ndhcp_end = \"10.33.33.100\"" => "ap.dhcp_end", "comes before";
    dhcp_range_contains_ap: "dhcp_start = \"10.33.33.1\"" => "ap.dhcp_start", "contains the AP's own address";
    dhcp_default_range_does_not_fit: "address = \"10.0.0.1/26\"" => "ap.dhcp_start", "default range .100–.150 does not fit 10.0.0.0/26";
    lease_time_too_short: "lease_time = \"1m\"" => "ap.lease_time", "2 minutes";
    lease_time_garbage: "lease_time = \"soon\"" => "ap.lease_time", "not a duration";
    local_name_invalid: "local_names = [\"mqtt_broker.com\"]" => "ap.local_names[0]", "not a DNS name";
    local_name_trailing_dot: "local_names = [\"mqtt.com.\"]" => "ap.local_names[0]", "trailing dot";
    local_name_twice: "local_names = [\"mqtt.com\", \"MQTT.com\"]" => "ap.local_names[1]", "twice";
    local_name_bad_address: "local_names = [{ name = \"nas\", address = \"x\" }]" => "ap.local_names[0].address", "not an IPv4";
    upstream_interface_invalid: "upstream_interface = \"eth 0\"" => "ap.upstream_interface", "not an interface name";
    upstream_interface_is_ap: "upstream_interface = \"wlan0\"" => "ap.upstream_interface", "the access point interface itself";
    upstream_dns_invalid: "upstream_dns = [\"dns.google\"]" => "ap.upstream_dns[0]", "not an IP address";
    upstream_dns_is_ap: "upstream_dns = [\"10.33.33.1\"]" => "ap.upstream_dns[0]", "forward queries to itself";
    static_lease_bad_mac: "[[ap.static_leases]]\nmac = \"a4:cf:12\"\naddress = \"10.33.33.10\"" => "ap.static_leases[0].mac", "not a MAC address";
    static_lease_multicast_mac: "[[ap.static_leases]]\nmac = \"01:00:5e:00:00:01\"\naddress = \"10.33.33.10\"" => "ap.static_leases[0].mac", "multicast";
    static_lease_outside_prefix: "[[ap.static_leases]]\nmac = \"a4:cf:12:00:00:01\"\naddress = \"10.9.9.9\"" => "ap.static_leases[0].address", "outside";
    static_lease_is_ap: "[[ap.static_leases]]\nmac = \"a4:cf:12:00:00:01\"\naddress = \"10.33.33.1\"" => "ap.static_leases[0].address", "AP's own address";
    static_lease_bad_name: "[[ap.static_leases]]\nmac = \"a4:cf:12:00:00:01\"\naddress = \"10.33.33.10\"\nname = \"s.1\"" => "ap.static_leases[0].name", "not a host name";
    static_lease_duplicate_mac: "[[ap.static_leases]]\nmac = \"a4:cf:12:00:00:01\"\naddress = \"10.33.33.10\"\n[[ap.static_leases]]\nmac = \"A4:CF:12:00:00:01\"\naddress = \"10.33.33.11\"" => "ap.static_leases[1].mac", "already has";
    static_lease_duplicate_address: "[[ap.static_leases]]\nmac = \"a4:cf:12:00:00:01\"\naddress = \"10.33.33.10\"\n[[ap.static_leases]]\nmac = \"a4:cf:12:00:00:02\"\naddress = \"10.33.33.10\"" => "ap.static_leases[1].address", "already given";
}

//! `[ap]`: the Wi-Fi access point the concentrator runs for its sensors, validated.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::str::FromStr;

use super::country::{is_country_code, max_channel};
use super::names::{is_dns_name, is_hostname, is_interface_name};
use super::raw::{RawAp, RawChannel, RawDuration, RawLocalName, RawStaticLease};
use super::Problems;

/// SSID used when the site file sets none.
pub const DEFAULT_SSID: &str = "tmc-sensors";
/// Passphrase used when the site file sets none. It is public (it is in this source), so `tmc-ap check` warns
/// about it: it makes a bench setup work out of the box, never a deployment.
pub const DEFAULT_PASSPHRASE: &str = "tmc-sensors-change-me";
const DEFAULT_INTERFACE: &str = "wlan0";
const DEFAULT_COUNTRY: &str = "DE";
const DEFAULT_CHANNEL: u8 = 6;
const DEFAULT_ADDRESS: &str = "10.33.33.1/24";
/// Default DHCP range, as host numbers inside the AP's network (.100–.150 in a /24).
const DEFAULT_DHCP_HOSTS: (u32, u32) = (100, 150);
const DEFAULT_LEASE_SECONDS: u32 = 3600;
const DEFAULT_LOCAL_NAME: &str = "mqtt.com";
/// dnsmasq refuses leases shorter than two minutes.
const MIN_LEASE_SECONDS: u32 = 120;
const MAX_LEASE_SECONDS: u32 = 365 * 24 * 3600;

/// The WPA2 key: a passphrase (8–63 printable ASCII characters) or a raw 256-bit PSK (64 hex digits).
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub enum WpaKey {
    /// hostapd `wpa_passphrase`.
    Passphrase(String),
    /// hostapd `wpa_psk`, as 64 lower-case hex digits.
    Psk(String),
}

impl fmt::Debug for WpaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
            Self::Psk(_) => f.write_str("Psk(<redacted>)"),
        }
    }
}

/// Wi-Fi channel in the 2.4 GHz band.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// hostapd picks one (automatic channel selection, `channel=0`); the driver must support it.
    Auto,
    /// A fixed channel, 1..=13 (1..=11 in North America).
    Fixed(u8),
}

/// A name the AP's DNS answers itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalName {
    /// DNS name (subdomains match too).
    pub name: String,
    /// The IPv4 address it resolves to.
    pub address: Ipv4Addr,
}

/// A MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl FromStr for MacAddr {
    type Err = ();

    /// `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`, either case.
    fn from_str(s: &str) -> Result<Self, ()> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(());
        }
        let mut mac = [0u8; 6];
        for (byte, part) in mac.iter_mut().zip(parts) {
            if part.len() != 2 {
                return Err(());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| ())?;
        }
        Ok(MacAddr(mac))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// A fixed address for a known sensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticLease {
    /// The sensor's Wi-Fi MAC address.
    pub mac: MacAddr,
    /// The address it always gets.
    pub address: Ipv4Addr,
    /// Host name given to it (and resolvable through the AP's DNS).
    pub name: Option<String>,
}

/// The validated `[ap]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApSettings {
    /// Wireless interface hostapd runs on.
    pub interface: String,
    /// Network name, 1–32 bytes.
    pub ssid: String,
    /// WPA2 key.
    pub key: WpaKey,
    /// Whether `key` is [`DEFAULT_PASSPHRASE`] because the site file sets none.
    pub key_is_default: bool,
    /// ISO 3166-1 alpha-2 country (regulatory domain), upper case.
    pub country: String,
    /// Channel.
    pub channel: Channel,
    /// 802.11n (HT) on.
    pub ieee80211n: bool,
    /// Do not broadcast the SSID.
    pub hidden_ssid: bool,
    /// Stop associated stations from talking to each other (hostapd `ap_isolate`).
    pub isolate_clients: bool,
    /// The AP's own address.
    pub address: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// First address handed out by DHCP.
    pub dhcp_start: Ipv4Addr,
    /// Last address handed out by DHCP.
    pub dhcp_end: Ipv4Addr,
    /// DHCP lease time in seconds.
    pub lease_seconds: u32,
    /// Names the AP's DNS answers itself.
    pub local_names: Vec<LocalName>,
    /// Uplink interface to NAT the sensors' traffic to; `None` keeps them offline.
    pub upstream_interface: Option<String>,
    /// DNS servers to forward other names to; empty: none when offline, the system's resolvers with an uplink.
    pub upstream_dns: Vec<IpAddr>,
    /// Fixed addresses for known sensors.
    pub static_leases: Vec<StaticLease>,
}

impl ApSettings {
    /// The network mask, e.g. 255.255.255.0.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix_len))
    }

    /// The network address, e.g. 10.33.33.0.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) & mask(self.prefix_len))
    }

    /// Whether `ip` is inside the AP's prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        in_prefix(u32::from(self.address), self.prefix_len, ip)
    }

    /// Whether `ip` is in the dynamic DHCP range.
    pub fn in_dhcp_range(&self, ip: Ipv4Addr) -> bool {
        (self.dhcp_start..=self.dhcp_end).contains(&ip)
    }

    /// Validates the raw section, adding every problem to `problems`. Returns `None` when a field is too
    /// broken to build the settings at all; the caller still reports `problems`.
    pub(crate) fn validate(raw: RawAp, base: &Path, problems: &mut Problems) -> Option<Self> {
        let interface = interface_name(
            problems,
            "ap.interface",
            raw.interface.as_deref().unwrap_or(DEFAULT_INTERFACE),
        );
        let ssid = raw.ssid.unwrap_or_else(|| DEFAULT_SSID.to_owned());
        check_ssid(problems, &ssid);
        let (key, key_is_default) = key(problems, raw.passphrase, raw.passphrase_file, base);
        let country = raw.country.as_deref().unwrap_or(DEFAULT_COUNTRY);
        let country_ok = is_country_code(country);
        if !country_ok {
            problems.add(
                "ap.country",
                format!("{country:?} is not an ISO 3166-1 alpha-2 country code (two upper-case letters, e.g. \"DE\", \"FR\", \"US\")"),
            );
        }
        let ieee80211n = raw.ieee80211n.unwrap_or(true);
        let channel = channel(problems, raw.channel, country, country_ok);

        let (address, prefix_len) =
            cidr(problems, raw.address.as_deref().unwrap_or(DEFAULT_ADDRESS))?;
        let net = u32::from(address) & mask(prefix_len);
        let default_host = |host: u32| Ipv4Addr::from(net.wrapping_add(host));
        let dhcp_start = match raw.dhcp_start.as_deref() {
            Some(s) => ipv4(problems, "ap.dhcp_start", s)?,
            None => default_host(DEFAULT_DHCP_HOSTS.0),
        };
        let dhcp_end = match raw.dhcp_end.as_deref() {
            Some(s) => ipv4(problems, "ap.dhcp_end", s)?,
            None => default_host(DEFAULT_DHCP_HOSTS.1),
        };
        let defaults = (raw.dhcp_start.is_none(), raw.dhcp_end.is_none());
        check_range(
            problems, address, prefix_len, dhcp_start, dhcp_end, defaults,
        );

        let lease_seconds = match raw.lease_time {
            None => DEFAULT_LEASE_SECONDS,
            Some(d) => lease_time(problems, d),
        };
        let local_names = local_names(problems, raw.local_names, address);
        let upstream_interface = raw.upstream_interface.map(|name| {
            let name = interface_name(problems, "ap.upstream_interface", &name);
            if name == interface {
                problems.add(
                    "ap.upstream_interface",
                    format!("{name:?} is the access point interface itself; the uplink must be another interface (e.g. \"eth0\")"),
                );
            }
            name
        });
        let upstream_dns = upstream_dns(problems, raw.upstream_dns.unwrap_or_default(), address);
        // A static address may lie inside the dynamic range: dnsmasq never hands a reserved address to
        // another client.
        let static_leases = static_leases(problems, raw.static_leases, address, prefix_len);

        Some(ApSettings {
            interface,
            ssid,
            key,
            key_is_default,
            country: country.to_owned(),
            channel,
            ieee80211n,
            hidden_ssid: raw.hidden_ssid.unwrap_or(false),
            isolate_clients: raw.isolate_clients.unwrap_or(true),
            address,
            prefix_len,
            dhcp_start,
            dhcp_end,
            lease_seconds,
            local_names,
            upstream_interface,
            upstream_dns,
            static_leases,
        })
    }
}

fn mask(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0)
}

fn in_prefix(net_member: u32, prefix_len: u8, ip: Ipv4Addr) -> bool {
    let m = mask(prefix_len);
    u32::from(ip) & m == net_member & m
}

fn interface_name(problems: &mut Problems, field: &str, name: &str) -> String {
    if !is_interface_name(name) {
        problems.add(
            field,
            format!("{name:?} is not an interface name: 1–15 letters, digits, '-', '_' or '.'"),
        );
    }
    name.to_owned()
}

fn check_ssid(problems: &mut Problems, ssid: &str) {
    if !(1..=32).contains(&ssid.len()) {
        problems.add(
            "ap.ssid",
            format!("{} bytes is not allowed: an SSID is 1–32 bytes", ssid.len()),
        );
    } else if ssid.chars().any(char::is_control) {
        problems.add(
            "ap.ssid",
            "contains a control character (newline, tab, ...); use printable characters",
        );
    }
}

fn key(
    problems: &mut Problems,
    inline: Option<String>,
    file: Option<String>,
    base: &Path,
) -> (WpaKey, bool) {
    let (text, field) = match (inline, file) {
        (Some(_), Some(_)) => {
            problems.add(
                "ap.passphrase_file",
                "set either passphrase or passphrase_file, not both",
            );
            return (WpaKey::Passphrase(String::new()), false);
        }
        (None, None) => {
            return (WpaKey::Passphrase(DEFAULT_PASSPHRASE.to_owned()), true);
        }
        (Some(text), None) => (text, "ap.passphrase"),
        (None, Some(file)) => {
            let path = base.join(&file);
            match tmc_secret_file::read_private_string(&path) {
                // A file written by `echo` ends with a newline that is not part of the passphrase.
                Ok(text) => (
                    text.strip_suffix('\n').unwrap_or(&text).to_owned(),
                    "ap.passphrase_file",
                ),
                Err(e) => {
                    problems.add("ap.passphrase_file", e.to_string());
                    return (WpaKey::Passphrase(String::new()), false);
                }
            }
        }
    };
    let len = text.len();
    if len == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (WpaKey::Psk(text.to_ascii_lowercase()), false);
    }
    if let Some(bad) = text.chars().find(|c| !(' '..='~').contains(c)) {
        problems.add(
            field,
            format!("contains {bad:?}: a WPA2 passphrase is 8–63 printable ASCII characters (or 64 hex digits)"),
        );
    } else if !(8..=63).contains(&len) {
        let hint = if len == 64 {
            " (64 characters is only allowed as a hex PSK, and this is not hex)"
        } else {
            ""
        };
        problems.add(
            field,
            format!("{len} characters is not allowed: a WPA2 passphrase is 8–63 printable ASCII characters or 64 hex digits{hint}"),
        );
    }
    (WpaKey::Passphrase(text), false)
}

fn channel(
    problems: &mut Problems,
    raw: Option<RawChannel>,
    country: &str,
    country_ok: bool,
) -> Channel {
    let n = match raw {
        None => return Channel::Fixed(DEFAULT_CHANNEL),
        Some(RawChannel::Text(t)) if t == "auto" => return Channel::Auto,
        Some(RawChannel::Text(t)) => {
            problems.add(
                "ap.channel",
                format!("{t:?} is not a channel: a number 1–13 or \"auto\""),
            );
            return Channel::Auto;
        }
        Some(RawChannel::Number(n)) => n,
    };
    let max = if country_ok { max_channel(country) } else { 13 };
    match u8::try_from(n) {
        Ok(c) if (1..=max).contains(&c) => Channel::Fixed(c),
        Ok(14) => {
            problems.add(
                "ap.channel",
                "14 is 802.11b-only and only legal in Japan; ESP8266 sensors use 802.11g/n: 1–13 or \"auto\"",
            );
            Channel::Auto
        }
        Ok(c @ 12..=13) => {
            problems.add(
                "ap.channel",
                format!("{c} is not allowed in {country}: 2.4 GHz channels there are 1–{max} (or \"auto\")"),
            );
            Channel::Auto
        }
        _ => {
            problems.add(
                "ap.channel",
                format!("{n} is not a 2.4 GHz channel (ESP8266 sensors only use 2.4 GHz): 1–{max} or \"auto\""),
            );
            Channel::Auto
        }
    }
}

fn cidr(problems: &mut Problems, text: &str) -> Option<(Ipv4Addr, u8)> {
    let Some((ip, len)) = text.split_once('/') else {
        problems.add(
            "ap.address",
            format!("{text:?} is not address/prefix, e.g. \"10.33.33.1/24\""),
        );
        return None;
    };
    let Ok(ip) = ip.parse::<Ipv4Addr>() else {
        problems.add(
            "ap.address",
            format!("{ip:?} is not an IPv4 address, e.g. \"10.33.33.1/24\""),
        );
        return None;
    };
    let Some(len) = len.parse::<u8>().ok().filter(|l| (8..=30).contains(l)) else {
        problems.add(
            "ap.address",
            format!("/{len} is not allowed: the prefix length is 8–30"),
        );
        return None;
    };
    let host = u32::from(ip) & !mask(len);
    if host == 0 || host == !mask(len) {
        problems.add(
            "ap.address",
            format!(
                "{ip} is the {} address of {}/{len}, not a host inside the prefix",
                if host == 0 { "network" } else { "broadcast" },
                Ipv4Addr::from(u32::from(ip) & mask(len))
            ),
        );
    }
    if ip.is_loopback() || ip.is_multicast() || ip.is_unspecified() || ip.is_broadcast() {
        problems.add(
            "ap.address",
            format!("{ip} is not a unicast address for a LAN"),
        );
    }
    Some((ip, len))
}

fn ipv4(problems: &mut Problems, field: &str, text: &str) -> Option<Ipv4Addr> {
    match text.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            problems.add(field, format!("{text:?} is not an IPv4 address"));
            None
        }
    }
}

fn check_range(
    problems: &mut Problems,
    address: Ipv4Addr,
    prefix_len: u8,
    start: Ipv4Addr,
    end: Ipv4Addr,
    (start_is_default, end_is_default): (bool, bool),
) {
    let prefix = format!(
        "{}/{prefix_len}",
        Ipv4Addr::from(u32::from(address) & mask(prefix_len))
    );
    let net = u32::from(address);
    let host_part = |ip: Ipv4Addr| u32::from(ip) & !mask(prefix_len);
    let usable = |ip: Ipv4Addr| {
        in_prefix(net, prefix_len, ip) && host_part(ip) != 0 && host_part(ip) != !mask(prefix_len)
    };
    if start_is_default && end_is_default && !(usable(start) && usable(end)) {
        problems.add(
            "ap.dhcp_start",
            format!(
                "the default range .100–.150 does not fit {prefix}: set dhcp_start and dhcp_end"
            ),
        );
        return;
    }
    let mut endpoints_ok = true;
    for (field, ip) in [("ap.dhcp_start", start), ("ap.dhcp_end", end)] {
        if !in_prefix(net, prefix_len, ip) {
            problems.add(field, format!("{ip} is outside the AP's prefix {prefix}"));
            endpoints_ok = false;
        } else if !usable(ip) {
            problems.add(
                field,
                format!("{ip} is the network or broadcast address of {prefix}"),
            );
            endpoints_ok = false;
        }
    }
    // Order and overlap only mean something once both ends are inside the prefix.
    if !endpoints_ok {
        return;
    }
    if start > end {
        problems.add(
            "ap.dhcp_end",
            format!("{end} comes before dhcp_start {start}: the range must run from start to end"),
        );
    } else if (start..=end).contains(&address) {
        problems.add(
            "ap.dhcp_start",
            format!("the range {start}–{end} contains the AP's own address {address}"),
        );
    }
}

fn lease_time(problems: &mut Problems, raw: RawDuration) -> u32 {
    let seconds = match &raw {
        RawDuration::Seconds(s) => u64::try_from(*s).ok(),
        RawDuration::Text(t) => {
            let (number, unit) =
                t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
            let factor = match unit {
                "" | "s" => Some(1),
                "m" => Some(60),
                "h" => Some(3600),
                "d" => Some(86_400),
                _ => None,
            };
            number
                .parse::<u64>()
                .ok()
                .zip(factor)
                .map(|(n, f)| n.saturating_mul(f))
        }
    };
    let shown = match &raw {
        RawDuration::Seconds(s) => format!("{s}"),
        RawDuration::Text(t) => format!("{t:?}"),
    };
    match seconds.and_then(|s| u32::try_from(s).ok()) {
        Some(s) if (MIN_LEASE_SECONDS..=MAX_LEASE_SECONDS).contains(&s) => s,
        Some(_) => {
            problems.add(
                "ap.lease_time",
                format!("{shown} is outside 2 minutes..=365 days (dnsmasq's minimum is 2 minutes)"),
            );
            DEFAULT_LEASE_SECONDS
        }
        None => {
            problems.add(
                "ap.lease_time",
                format!("{shown} is not a duration: seconds, or a number with s, m, h or d (e.g. \"1h\")"),
            );
            DEFAULT_LEASE_SECONDS
        }
    }
}

fn local_names(
    problems: &mut Problems,
    raw: Option<Vec<RawLocalName>>,
    address: Ipv4Addr,
) -> Vec<LocalName> {
    let raw = raw.unwrap_or_else(|| vec![RawLocalName::Name(DEFAULT_LOCAL_NAME.to_owned())]);
    let mut names: Vec<LocalName> = Vec::new();
    for (i, entry) in raw.into_iter().enumerate() {
        let (name, ip) = match entry {
            RawLocalName::Name(name) => (name, address),
            RawLocalName::Record { name, address: a } => {
                match ipv4(problems, &format!("ap.local_names[{i}].address"), &a) {
                    Some(ip) => (name, ip),
                    None => continue,
                }
            }
        };
        let field = format!("ap.local_names[{i}]");
        if !is_dns_name(&name) {
            problems.add(
                &field,
                format!("{name:?} is not a DNS name: labels of 1–63 letters, digits or '-', separated by dots, no trailing dot"),
            );
            continue;
        }
        let name = name.to_ascii_lowercase();
        if names.iter().any(|n| n.name == name) {
            problems.add(&field, format!("{name:?} is listed twice"));
            continue;
        }
        names.push(LocalName { name, address: ip });
    }
    names
}

fn upstream_dns(problems: &mut Problems, raw: Vec<String>, address: Ipv4Addr) -> Vec<IpAddr> {
    let mut servers = Vec::new();
    for (i, text) in raw.into_iter().enumerate() {
        let field = format!("ap.upstream_dns[{i}]");
        match text.parse::<IpAddr>() {
            Ok(ip) if ip == IpAddr::V4(address) => problems.add(
                field,
                format!("{ip} is the AP itself: dnsmasq would forward queries to itself"),
            ),
            Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
                problems.add(field, format!("{ip} is not a DNS server address"))
            }
            Ok(ip) => servers.push(ip),
            Err(_) => problems.add(
                field,
                format!("{text:?} is not an IP address (e.g. \"9.9.9.9\")"),
            ),
        }
    }
    servers
}

fn static_leases(
    problems: &mut Problems,
    raw: Vec<RawStaticLease>,
    address: Ipv4Addr,
    prefix_len: u8,
) -> Vec<StaticLease> {
    let mut leases: Vec<StaticLease> = Vec::new();
    for (i, lease) in raw.into_iter().enumerate() {
        let field = |f: &str| format!("ap.static_leases[{i}].{f}");
        let mac = match lease.mac.parse::<MacAddr>() {
            Ok(mac) if mac.0[0] & 1 == 1 => {
                problems.add(
                    field("mac"),
                    format!("{mac} is a multicast address, not a station's"),
                );
                None
            }
            Ok(mac) if leases.iter().any(|l| l.mac == mac) => {
                problems.add(field("mac"), format!("{mac} already has a static lease"));
                None
            }
            Ok(mac) => Some(mac),
            Err(()) => {
                problems.add(
                    field("mac"),
                    format!(
                        "{:?} is not a MAC address like \"a4:cf:12:00:00:01\"",
                        lease.mac
                    ),
                );
                None
            }
        };
        let ip = match ipv4(problems, &field("address"), &lease.address) {
            Some(ip) if !in_prefix(u32::from(address), prefix_len, ip) => {
                problems.add(
                    field("address"),
                    format!(
                        "{ip} is outside the AP's prefix {}/{prefix_len}",
                        Ipv4Addr::from(u32::from(address) & mask(prefix_len))
                    ),
                );
                None
            }
            Some(ip) if ip == address => {
                problems.add(field("address"), format!("{ip} is the AP's own address"));
                None
            }
            Some(ip) if leases.iter().any(|l| l.address == ip) => {
                problems.add(
                    field("address"),
                    format!("{ip} is already given to another sensor"),
                );
                None
            }
            other => other,
        };
        let name = match lease.name {
            Some(name) if !is_hostname(&name) => {
                problems.add(
                    field("name"),
                    format!("{name:?} is not a host name: 1–63 letters, digits or '-', no dots"),
                );
                None
            }
            other => other,
        };
        if let (Some(mac), Some(address)) = (mac, ip) {
            leases.push(StaticLease { mac, address, name });
        }
    }
    leases
}

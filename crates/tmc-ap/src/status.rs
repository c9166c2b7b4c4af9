//! `tmc-ap status`: stations associated with hostapd (its control socket) joined with dnsmasq's DHCP leases.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// How long hostapd may take to answer one request.
const CTRL_TIMEOUT: Duration = Duration::from_secs(2);
/// A station list longer than this means hostapd keeps answering the same station: stop.
const MAX_STATIONS: usize = 2007;

/// A station hostapd reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Station {
    /// MAC address, lower case.
    pub mac: String,
    /// Signal strength in dBm, when the driver reports it.
    pub signal_dbm: Option<i32>,
    /// Seconds since it associated.
    pub connected_seconds: Option<u64>,
    /// hostapd's flags, e.g. `[AUTH][ASSOC][AUTHORIZED]`.
    pub flags: String,
}

/// A DHCP lease from dnsmasq's lease file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// When it expires (Unix seconds; 0 for never).
    pub expires: u64,
    /// MAC address, lower case.
    pub mac: String,
    /// Address handed out.
    pub ip: String,
    /// Host name the client sent, if any.
    pub hostname: Option<String>,
}

/// One client: associated, leased, or both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Client {
    /// MAC address, lower case.
    pub mac: String,
    /// Leased address.
    pub ip: Option<String>,
    /// Host name from the lease.
    pub hostname: Option<String>,
    /// Associated with the access point right now.
    pub associated: bool,
    /// Signal strength in dBm.
    pub signal_dbm: Option<i32>,
    /// Seconds since it associated.
    pub connected_seconds: Option<u64>,
    /// When the lease expires (Unix seconds; 0 for never).
    pub lease_expires: Option<u64>,
}

/// The whole status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The AP interface.
    pub interface: String,
    /// `ok`, or why the stations are unknown.
    pub hostapd: String,
    /// `ok`, or why the leases are unknown.
    pub leases: String,
    /// Clients, by address then MAC.
    pub clients: Vec<Client>,
}

/// hostapd's control socket, as hostapd_cli talks to it: a datagram socket bound to a path of our own.
pub struct HostapdControl {
    socket: UnixDatagram,
    /// A fresh 0700 directory holding our end's socket, removed on drop. A fixed name in the shared
    /// temporary directory could be pre-created or swapped by another local user.
    _local_dir: tempfile::TempDir,
}

impl HostapdControl {
    /// Connects to the socket of one interface, e.g. `/run/hostapd/wlan0`.
    pub fn connect(path: &Path) -> io::Result<Self> {
        let local_dir = tempfile::Builder::new()
            .prefix("tmc-ap-ctrl-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()?;
        let socket = UnixDatagram::bind(local_dir.path().join("socket"))?;
        socket.connect(path)?;
        socket.set_read_timeout(Some(CTRL_TIMEOUT))?;
        Ok(HostapdControl {
            socket,
            _local_dir: local_dir,
        })
    }

    /// Sends a command and returns hostapd's reply.
    pub fn request(&self, command: &str) -> io::Result<String> {
        self.socket.send(command.as_bytes())?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = self.socket.recv(&mut buf)?;
            let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
            // Unsolicited event messages start with '<level>': not the reply.
            if !reply.starts_with('<') {
                return Ok(reply);
            }
        }
    }

    /// Every associated station (`STA-FIRST`, then `STA-NEXT` until the list ends).
    pub fn stations(&self) -> io::Result<Vec<Station>> {
        let mut stations = Vec::new();
        let mut reply = self.request("STA-FIRST")?;
        while let Some(station) = parse_station(&reply) {
            let next = format!("STA-NEXT {}", station.mac);
            stations.push(station);
            if stations.len() >= MAX_STATIONS {
                break;
            }
            reply = self.request(&next)?;
        }
        Ok(stations)
    }
}

/// One `STA` reply: the MAC on the first line, then `key=value` lines. `FAIL` or nothing ends the list.
pub fn parse_station(reply: &str) -> Option<Station> {
    let mut lines = reply.lines();
    let mac = lines.next()?.trim().to_ascii_lowercase();
    if mac.parse::<tmc_config::site::MacAddr>().is_err() {
        return None;
    }
    let mut station = Station {
        mac,
        signal_dbm: None,
        connected_seconds: None,
        flags: String::new(),
    };
    for (key, value) in lines.filter_map(|l| l.split_once('=')) {
        match key {
            "signal" => station.signal_dbm = value.trim().parse().ok(),
            "connected_time" => station.connected_seconds = value.trim().parse().ok(),
            "flags" => station.flags = value.trim().to_owned(),
            _ => {}
        }
    }
    Some(station)
}

/// dnsmasq's lease file: `<expiry> <mac> <ip> <hostname|*> <client-id|*>` per line. Lines that do not fit
/// (DHCPv6 `duid` lines, damage) are skipped.
pub fn parse_leases(text: &str) -> Vec<Lease> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let expires = words.next()?.parse().ok()?;
            let mac = words.next()?.to_ascii_lowercase();
            mac.parse::<tmc_config::site::MacAddr>().ok()?;
            let ip = words.next()?.to_owned();
            let hostname = words.next().filter(|h| *h != "*").map(str::to_owned);
            Some(Lease {
                expires,
                mac,
                ip,
                hostname,
            })
        })
        .collect()
}

/// Joins stations and leases by MAC.
pub fn merge(stations: &[Station], leases: &[Lease]) -> Vec<Client> {
    let mut clients: BTreeMap<String, Client> = BTreeMap::new();
    let blank = |mac: &str| Client {
        mac: mac.to_owned(),
        ip: None,
        hostname: None,
        associated: false,
        signal_dbm: None,
        connected_seconds: None,
        lease_expires: None,
    };
    for lease in leases {
        let c = clients
            .entry(lease.mac.clone())
            .or_insert_with(|| blank(&lease.mac));
        c.ip = Some(lease.ip.clone());
        c.hostname.clone_from(&lease.hostname);
        c.lease_expires = Some(lease.expires);
    }
    for station in stations {
        let c = clients
            .entry(station.mac.clone())
            .or_insert_with(|| blank(&station.mac));
        c.associated = true;
        c.signal_dbm = station.signal_dbm;
        c.connected_seconds = station.connected_seconds;
    }
    let mut list: Vec<Client> = clients.into_values().collect();
    list.sort_by_key(|c| {
        (
            c.ip.as_deref()
                .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok()),
            c.mac.clone(),
        )
    });
    list
}

/// Reads hostapd's stations from `ctrl_socket` and the leases from `lease_file`. Either may be unavailable
/// (hostapd not running, no lease yet): the status says why instead of failing.
pub fn collect(interface: &str, ctrl_socket: &Path, lease_file: &Path) -> Status {
    let (stations, hostapd) = match HostapdControl::connect(ctrl_socket).and_then(|c| c.stations())
    {
        Ok(s) => (s, "ok".to_owned()),
        Err(e) => (Vec::new(), format!("{}: {e}", ctrl_socket.display())),
    };
    let (leases, lease_state) = match std::fs::read_to_string(lease_file) {
        Ok(text) => (parse_leases(&text), "ok".to_owned()),
        Err(e) => (Vec::new(), format!("{}: {e}", lease_file.display())),
    };
    Status {
        interface: interface.to_owned(),
        hostapd,
        leases: lease_state,
        clients: merge(&stations, &leases),
    }
}

/// The status as a table; `now` (Unix seconds) turns lease expiry into time left.
pub fn table(status: &Status, now: u64) -> String {
    let mut out = String::new();
    if status.hostapd != "ok" {
        let _ = writeln!(out, "hostapd: not reachable: {}", status.hostapd);
    }
    if status.leases != "ok" {
        let _ = writeln!(out, "leases: not readable: {}", status.leases);
    }
    if status.clients.is_empty() {
        let _ = writeln!(out, "no clients on {}", status.interface);
        return out;
    }
    let _ = writeln!(
        out,
        "{:<17}  {:<15}  {:<20}  {:<10}  {:>7}  {:>9}  LEASE",
        "MAC", "IP", "NAME", "WIFI", "SIGNAL", "CONNECTED"
    );
    for c in &status.clients {
        let lease = match c.lease_expires {
            None => "-".to_owned(),
            Some(0) => "never expires".to_owned(),
            Some(t) if t <= now => "expired".to_owned(),
            Some(t) => format!("{} left", duration(t - now)),
        };
        let _ = writeln!(
            out,
            "{:<17}  {:<15}  {:<20}  {:<10}  {:>7}  {:>9}  {lease}",
            c.mac,
            c.ip.as_deref().unwrap_or("-"),
            c.hostname.as_deref().unwrap_or("-"),
            if c.associated { "associated" } else { "-" },
            c.signal_dbm.map_or("-".into(), |s| format!("{s} dBm")),
            c.connected_seconds.map_or("-".into(), duration),
        );
    }
    out
}

fn duration(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_reply_is_parsed() {
        let reply = "A4:CF:12:00:00:01\nflags=[AUTH][ASSOC][AUTHORIZED]\naid=1\nsignal=-47\nconnected_time=75\n";
        let s = parse_station(reply).unwrap();
        assert_eq!(s.mac, "a4:cf:12:00:00:01");
        assert_eq!(s.signal_dbm, Some(-47));
        assert_eq!(s.connected_seconds, Some(75));
        assert_eq!(s.flags, "[AUTH][ASSOC][AUTHORIZED]");
        assert_eq!(parse_station("FAIL\n"), None);
        assert_eq!(parse_station(""), None);
    }

    #[test]
    fn leases_are_parsed_and_joined_with_stations() {
        let leases = parse_leases(
            "1700003600 a4:cf:12:00:00:02 10.33.33.120 sensor-2 01:a4:cf:12:00:00:02\n\
             0 a4:cf:12:00:00:01 10.33.33.10 * *\n\
             duid 00:01:00:01\n",
        );
        assert_eq!(leases.len(), 2);
        assert_eq!(leases[1].hostname, None);
        let stations = [Station {
            mac: "a4:cf:12:00:00:02".into(),
            signal_dbm: Some(-60),
            connected_seconds: Some(10),
            flags: String::new(),
        }];
        let clients = merge(&stations, &leases);
        assert_eq!(clients.len(), 2);
        assert_eq!(clients[0].ip.as_deref(), Some("10.33.33.10"));
        assert!(!clients[0].associated);
        assert!(clients[1].associated && clients[1].hostname.as_deref() == Some("sensor-2"));
        let status = Status {
            interface: "wlan0".into(),
            hostapd: "ok".into(),
            leases: "ok".into(),
            clients,
        };
        let t = table(&status, 1_700_000_000);
        assert!(t.contains("never expires"), "{t}");
        assert!(t.contains("1h00m left"), "{t}");
        assert!(t.contains("-60 dBm"), "{t}");
    }
}

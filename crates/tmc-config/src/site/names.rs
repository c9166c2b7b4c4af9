//! Names that end up in daemon configuration files: interface names, DNS names, host names.

/// A Linux network interface name: 1–15 bytes (IFNAMSIZ − 1) of letters, digits, `-`, `_`, `.`; not `.` or
/// `..`. Narrower than the kernel allows (which is anything but `/`, `:` and white space), so that the name
/// is safe in every configuration file it is written into.
pub fn is_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A DNS host label (RFC 1123): 1–63 letters, digits and hyphens, not starting or ending with a hyphen.
pub fn is_hostname(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A DNS name made of valid labels, at most 253 characters, without a trailing dot.
pub fn is_dns_name(name: &str) -> bool {
    (1..=253).contains(&name.len()) && name.split('.').all(is_hostname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for ok in ["wlan0", "eth0", "enx001122334455", "veth-ap.1", "br_lan"] {
            assert!(is_interface_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "wlan0:1",
            "a/b",
            "wlan 0",
            "sixteen-chars-xx",
        ] {
            assert!(!is_interface_name(bad), "{bad}");
        }
    }

    #[test]
    fn dns_names() {
        for ok in ["mqtt.com", "a", "sensor-1", "x1.y2.example"] {
            assert!(is_dns_name(ok), "{ok}");
        }
        for bad in [
            "",
            "mqtt.com.",
            ".com",
            "-a.com",
            "a-.com",
            "a..b",
            "a_b.com",
            "ä.com",
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
        assert!(!is_dns_name(&format!("{}.com", "a".repeat(64))));
        assert!(!is_hostname("a.b"));
    }
}

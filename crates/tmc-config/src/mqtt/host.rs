//! Broker host names: what a `host` setting may hold before it reaches a resolver, a certificate check or a
//! line of `/etc/hosts`.

use std::net::IpAddr;

/// The longest DNS name (RFC 1035, without the trailing dot).
const MAX_NAME: usize = 253;
/// The longest DNS label.
const MAX_LABEL: usize = 63;

/// A host that is neither a DNS name nor an IP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host {host:?} is not a DNS name or an IP address: {problem}")]
pub struct HostError {
    /// The value as given (quoted in the message, so a newline in it stays on one line).
    pub host: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// Accepts an IP address (v4 or v6) or a DNS name: dot-separated labels of 1–63 ASCII letters, digits and
/// hyphens, not starting or ending with a hyphen, 253 characters in all, the last label not all digits
/// (`10.0.0` is neither an address nor a name). Nothing else: no spaces, no newlines, no trailing dot.
pub fn check_host(host: &str) -> Result<(), HostError> {
    match host_problem(host) {
        None => Ok(()),
        Some(problem) => Err(HostError {
            host: host.to_owned(),
            problem,
        }),
    }
}

fn host_problem(host: &str) -> Option<&'static str> {
    if host.is_empty() {
        return Some("it is empty");
    }
    if host.parse::<IpAddr>().is_ok() {
        return None;
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Some("only letters, digits, hyphens and dots are allowed");
    }
    if host.len() > MAX_NAME {
        return Some("longer than 253 characters");
    }
    let mut last = "";
    for label in host.split('.') {
        if label.is_empty() {
            return Some("an empty label (a leading, trailing or double dot)");
        }
        if label.len() > MAX_LABEL {
            return Some("a label longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("a label starts or ends with a hyphen");
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Some("the last label is all digits, but the whole is no IP address");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_and_addresses() {
        for ok in [
            "mqtt.com",
            "localhost",
            "broker-1.example.org",
            "127.0.0.1",
            "10.33.33.1",
            "::1",
            "fe80::1",
            "a",
            "x1",
            &format!("{}.com", "a".repeat(63)),
        ] {
            assert_eq!(check_host(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_anything_else_with_one_line() {
        let long_name = format!("{}.com", vec!["a".repeat(63); 4].join("."));
        let long_label = format!("{}.com", "a".repeat(64));
        for (bad, want) in [
            ("x\n203.0.113.7 some.host", "only letters, digits"),
            ("mqtt.com evil.host", "only letters, digits"),
            ("mqtt.com\t#", "only letters, digits"),
            ("", "empty"),
            ("mqtt.com.", "empty label"),
            (".mqtt.com", "empty label"),
            ("a..b", "empty label"),
            ("-a.com", "hyphen"),
            ("a-.com", "hyphen"),
            ("under_score.com", "only letters, digits"),
            ("10.0.0", "all digits"),
            ("256.1.1.1", "all digits"),
            ("[::1]", "only letters, digits"),
            (long_name.as_str(), "longer than 253"),
            (long_label.as_str(), "longer than 63"),
        ] {
            let err = check_host(bad).unwrap_err();
            let line = err.to_string();
            assert!(line.contains(want), "{bad:?}: {line}");
            assert!(!line.contains('\n'), "{bad:?}: one line: {line}");
        }
    }
}

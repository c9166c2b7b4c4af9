//! The real daemons as validators: `dnsmasq --test`, a hostapd start that stops after parsing (on an
//! interface that does not exist, so no radio is touched), and `nft --check`. Each is skipped, with a reason,
//! when its binary is not installed.

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon may take to parse a file before it is stopped.
const DEADLINE: Duration = Duration::from_secs(15);
/// Where daemons live when `PATH` has no sbin (ordinary users on Debian).
const SBIN_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The outcome of one daemon check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The daemon accepted the file.
    Passed,
    /// The daemon rejected it: its own messages.
    Failed(String),
    /// Not run, and why.
    Skipped(String),
}

/// One daemon check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonCheck {
    /// What ran, e.g. `dnsmasq --test`.
    pub what: &'static str,
    /// Its outcome.
    pub verdict: Verdict,
}

impl fmt::Display for DaemonCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Passed => write!(f, "{}: ok", self.what),
            Verdict::Failed(why) => write!(f, "{}: {why}", self.what),
            Verdict::Skipped(why) => write!(f, "{}: skipped ({why})", self.what),
        }
    }
}

/// Finds a program in `PATH` or the sbin directories.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

struct Finished {
    /// Exit code; `None` when stopped at the deadline or killed by a signal.
    code: Option<i32>,
    output: String,
}

/// Runs `cmd` with stdout and stderr into one file, stopping it (by its pid) at the deadline.
fn run_bounded(mut cmd: Command, scratch: &Path) -> io::Result<Finished> {
    let log_path = scratch.join("output.log");
    let log = File::create(&log_path)?;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + DEADLINE;
    let code = loop {
        if let Some(status) = child.try_wait()? {
            break status.code();
        }
        if Instant::now() >= deadline {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Finished {
        code,
        output: fs::read_to_string(&log_path).unwrap_or_default(),
    })
}

fn scratch_dir() -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("tmc-ap-check").tempdir()
}

/// `dnsmasq --test` on the rendered drop-in alone.
pub fn dnsmasq_test(drop_in: &str) -> DaemonCheck {
    let what = "dnsmasq --test";
    let Some(dnsmasq) = find_program("dnsmasq") else {
        return DaemonCheck {
            what,
            verdict: Verdict::Skipped("dnsmasq is not installed".into()),
        };
    };
    let verdict = (|| -> io::Result<Verdict> {
        let dir = scratch_dir()?;
        let conf = dir.path().join("tmc-ap.conf");
        fs::write(&conf, drop_in)?;
        let mut cmd = Command::new(dnsmasq);
        cmd.arg("--test")
            .arg(format!("--conf-file={}", conf.display()));
        let done = run_bounded(cmd, dir.path())?;
        Ok(match done.code {
            Some(0) => Verdict::Passed,
            _ => Verdict::Failed(one_line(&done.output)),
        })
    })()
    .unwrap_or_else(|e| Verdict::Skipped(format!("cannot run dnsmasq: {e}")));
    DaemonCheck { what, verdict }
}

/// hostapd reads the rendered configuration and reports its errors before it touches a radio. The copy it
/// reads names an interface that does not exist and a scratch control directory, so that on a running Pi the
/// check can neither take over the radio nor disturb the live hostapd.
pub fn hostapd_parse(conf: &str) -> DaemonCheck {
    let what = "hostapd configuration parse";
    let Some(hostapd) = find_program("hostapd") else {
        return DaemonCheck {
            what,
            verdict: Verdict::Skipped("hostapd is not installed".into()),
        };
    };
    let verdict = (|| -> io::Result<Verdict> {
        let dir = scratch_dir()?;
        let ctrl = dir.path().join("ctrl");
        let probe: String = conf
            .lines()
            .map(|line| {
                if line.starts_with("interface=") {
                    format!("interface=tmcapchk{}\n", std::process::id() % 100_000)
                } else if line.starts_with("ctrl_interface=") {
                    format!("ctrl_interface={}\n", ctrl.display())
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        let path = dir.path().join("hostapd.conf");
        tmc_secret_file::write_private(&path, probe.as_bytes(), tmc_secret_file::Overwrite::Refuse)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut cmd = Command::new(hostapd);
        cmd.arg(&path);
        let done = run_bounded(cmd, dir.path())?;
        Ok(parse_verdict(&done.output))
    })()
    .unwrap_or_else(|e| Verdict::Skipped(format!("cannot run hostapd: {e}")));
    DaemonCheck { what, verdict }
}

/// hostapd prints `Line N: <problem>` per bad line and `N errors found in configuration file` after them.
fn parse_verdict(output: &str) -> Verdict {
    let problems: Vec<&str> = output
        .lines()
        .filter(|l| l.starts_with("Line ") || l.contains("errors found in configuration file"))
        .collect();
    if problems.is_empty() {
        Verdict::Passed
    } else {
        Verdict::Failed(problems.join("; "))
    }
}

/// `nft --check` on the NAT rules: needs CAP_NET_ADMIN even for a dry run, so it is skipped for other users.
pub fn nft_check(rules: &str) -> DaemonCheck {
    let what = "nft --check";
    let Some(nft) = find_program("nft") else {
        return DaemonCheck {
            what,
            verdict: Verdict::Skipped("nft is not installed".into()),
        };
    };
    let verdict = (|| -> io::Result<Verdict> {
        let dir = scratch_dir()?;
        let path = dir.path().join("nat.nft");
        fs::write(&path, rules)?;
        let mut cmd = Command::new(nft);
        cmd.arg("--check").arg("--file").arg(&path);
        let done = run_bounded(cmd, dir.path())?;
        Ok(match done.code {
            Some(0) => Verdict::Passed,
            _ if done.output.contains("Operation not permitted") => {
                Verdict::Skipped("needs root (CAP_NET_ADMIN)".into())
            }
            _ => Verdict::Failed(one_line(&done.output)),
        })
    })()
    .unwrap_or_else(|e| Verdict::Skipped(format!("cannot run nft: {e}")));
    DaemonCheck { what, verdict }
}

fn one_line(output: &str) -> String {
    let text = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if text.is_empty() {
        "failed without a message".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostapd_errors_are_recognised() {
        let out = "Line 16: invalid WPA passphrase length 5 (expected 8..63)\n\
                   WPA-PSK enabled, but PSK or passphrase is not configured.\n\
                   2 errors found in configuration file '/tmp/x/hostapd.conf'\n\
                   Failed to set up interface with /tmp/x/hostapd.conf\n";
        assert_eq!(
            parse_verdict(out),
            Verdict::Failed("Line 16: invalid WPA passphrase length 5 (expected 8..63); 2 errors found in configuration file '/tmp/x/hostapd.conf'".into())
        );
        let ok =
            "nl80211: 'nl80211' generic netlink not found\nFailed to initialize driver 'nl80211'\n";
        assert_eq!(parse_verdict(ok), Verdict::Passed);
    }
}

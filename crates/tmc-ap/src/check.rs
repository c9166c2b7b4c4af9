//! `tmc-ap check`: the site file's own rules first (every problem, one line each), then the real daemons on
//! the rendered files.

use std::path::Path;

use tmc_config::site::{SiteConfig, SiteError};

use crate::daemons::{self, DaemonCheck, Verdict};
use crate::files::{HOSTAPD_CONF, NAT_RULES};
use crate::render::render;

/// Everything `check` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// `<file>: <field>: <problem>` per validation error; the daemons do not run when there are any.
    pub problems: Vec<String>,
    /// Settings that work but should not be deployed as they are.
    pub warnings: Vec<String>,
    /// The daemons' verdicts on the rendered files.
    pub daemons: Vec<DaemonCheck>,
}

impl CheckReport {
    /// No validation problem and no daemon rejected a file.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
            && self
                .daemons
                .iter()
                .all(|d| !matches!(d.verdict, Verdict::Failed(_)))
    }
}

/// Checks the site file at `path`. A file that cannot be read or parsed at all is an error; values that are
/// not allowed are the report's problems.
pub fn check(path: &Path) -> Result<CheckReport, SiteError> {
    let site = match SiteConfig::from_file(path) {
        Ok(site) => site,
        Err(e @ SiteError::Invalid { .. }) => {
            return Ok(CheckReport {
                problems: e.messages(),
                ..CheckReport::default()
            })
        }
        Err(e) => return Err(e),
    };
    let mut report = CheckReport::default();
    if site.ap.key_is_default {
        report.warnings.push(format!(
            "{}: ap.passphrase: not set, so the public default passphrase is used; set your own before deploying",
            path.display()
        ));
    }
    let files = render(&site.ap);
    let by_path = |p: &str| {
        files
            .iter()
            .find(|f| f.install_path == Path::new(p))
            .and_then(|f| f.contents())
    };
    if let Some(drop_in) = files
        .iter()
        .find(|f| f.out_name == "dnsmasq.d-tmc-ap.conf")
        .and_then(|f| f.contents())
    {
        report.daemons.push(daemons::dnsmasq_test(drop_in));
    }
    if let Some(conf) = by_path(HOSTAPD_CONF) {
        report.daemons.push(daemons::hostapd_parse(conf));
    }
    if let Some(rules) = by_path(NAT_RULES) {
        report.daemons.push(daemons::nft_check(rules));
    }
    Ok(report)
}

//! The access point: tmc-ap's files rendered from the installed site file and applied with its library
//! (a concentrator), or removed (a gateway, e.g. a former concentrator: its static Wi-Fi address must not
//! stay).

use std::path::Path;

use tmc_ap::{apply, render, ApplyReport, Desired, ServiceManager};
use tmc_config::SiteConfig;

use crate::boot_bundle::fsutil::under;
use crate::boot_bundle::layout::{ETC_TMC, SITE_FILE};
use crate::firstboot::{Action, FirstbootError};

/// Passes systemctl calls on with `--no-block` on those that wait for a job. `firstboot` runs from a
/// unit during boot: waiting there for another unit's start job can deadlock the boot transaction.
/// Records what it ran, as it ran it.
pub struct NoBlock<'a> {
    inner: &'a mut dyn ServiceManager,
    pub ran: Vec<String>,
}

impl<'a> NoBlock<'a> {
    pub fn new(inner: &'a mut dyn ServiceManager) -> Self {
        NoBlock {
            inner,
            ran: Vec::new(),
        }
    }
}

/// Verbs that queue a job and wait for it unless told not to.
const JOB_VERBS: &[&str] = &[
    "start",
    "stop",
    "restart",
    "try-restart",
    "reload",
    "reload-or-restart",
];

impl ServiceManager for NoBlock<'_> {
    fn systemctl(&mut self, args: &[&str]) -> Result<(), String> {
        let waits =
            args.first().is_some_and(|verb| JOB_VERBS.contains(verb)) || args.contains(&"--now");
        let mut actual: Vec<&str> = args.to_vec();
        if waits && !args.contains(&"--no-block") {
            actual.insert(1.min(actual.len()), "--no-block");
        }
        let result = self.inner.systemctl(&actual);
        if result.is_ok() {
            self.ran.push(actual.join(" "));
        }
        result
    }
}

fn actions(report: &ApplyReport, ran: Vec<String>) -> Vec<Action> {
    let mut actions: Vec<Action> = report
        .changes
        .iter()
        .map(|c| Action::Ap {
            path: c.path.clone(),
            kind: c.kind,
        })
        .collect();
    if report.unchanged > 0 {
        actions.push(Action::ApUnchanged(report.unchanged));
    }
    actions.extend(ran.into_iter().map(Action::Systemctl));
    actions
}

/// Renders the access point files from the installed site file and applies them.
pub fn configure(
    root: &Path,
    services: Option<&mut (dyn ServiceManager + '_)>,
) -> Result<Vec<Action>, FirstbootError> {
    let site = under(root, &Path::new(ETC_TMC).join(SITE_FILE));
    let config = SiteConfig::from_file(&site)?;
    run(root, &render(&config.ap), services)
}

/// Removes whatever access point files an earlier configuration left.
pub fn remove(
    root: &Path,
    services: Option<&mut (dyn ServiceManager + '_)>,
) -> Result<Vec<Action>, FirstbootError> {
    // The paths do not depend on the settings, so the defaults name them all.
    let defaults = SiteConfig::from_toml_str("[ap]\n", Path::new(SITE_FILE))?;
    let mut files = render(&defaults.ap);
    for file in &mut files {
        file.desired = Desired::Absent;
    }
    let actions = run(root, &files, services)?;
    // Nothing to remove is not worth a line.
    Ok(actions
        .into_iter()
        .filter(|a| !matches!(a, Action::ApUnchanged(_)))
        .collect())
}

fn run(
    root: &Path,
    files: &[tmc_ap::ManagedFile],
    services: Option<&mut (dyn ServiceManager + '_)>,
) -> Result<Vec<Action>, FirstbootError> {
    match services {
        Some(inner) => {
            let mut no_block = NoBlock::new(inner);
            let report = apply(files, root, Some(&mut no_block))?;
            Ok(actions(&report, no_block.ran))
        }
        None => {
            let report = apply(files, root, None)?;
            Ok(actions(&report, Vec::new()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Vec<String>);

    impl ServiceManager for Recorder {
        fn systemctl(&mut self, args: &[&str]) -> Result<(), String> {
            self.0.push(args.join(" "));
            Ok(())
        }
    }

    #[test]
    fn job_commands_do_not_block() {
        let mut rec = Recorder::default();
        let mut nb = NoBlock::new(&mut rec);
        for args in [
            &["daemon-reload"][..],
            &["restart", "hostapd.service"],
            &["enable", "dnsmasq.service"],
            &["disable", "--now", "tmc-ap-nat.service"],
            &["start", "--no-block", "x.service"],
        ] {
            nb.systemctl(args).unwrap();
        }
        assert_eq!(
            rec.0,
            [
                "daemon-reload",
                "restart --no-block hostapd.service",
                "enable dnsmasq.service",
                "disable --no-block --now tmc-ap-nat.service",
                "start --no-block x.service",
            ]
        );
    }
}

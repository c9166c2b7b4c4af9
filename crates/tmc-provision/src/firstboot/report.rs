//! What `firstboot` did: one [`Action`] per line of output.

use std::fmt;
use std::path::PathBuf;

use tmc_ap::ChangeKind;

use crate::boot_bundle::manifest::Role;

/// One thing `firstboot` did (or found already done): one line of output each. Never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A file or directory (trailing `/`) was written or its mode or owner set.
    Installed(PathBuf),
    /// A file or directory was already as it should be.
    Unchanged(PathBuf),
    /// A file the role no longer has was removed (the other role's configuration).
    Removed(PathBuf),
    /// A secret file was removed from the card.
    RemovedFromBoot(PathBuf),
    /// A unit was enabled.
    Enabled(String),
    /// A unit was disabled.
    Disabled(String),
    /// A masked unit was unmasked.
    Unmasked(String),
    /// An access point file changed (tmc-ap).
    Ap {
        /// Path on the running system.
        path: PathBuf,
        /// Created, updated or removed.
        kind: ChangeKind,
    },
    /// This many access point paths were already as they should be (present, or absent as needed).
    ApUnchanged(usize),
    /// A systemctl command ran.
    Systemctl(String),
    /// `provisioned.toml` was written.
    Recorded(PathBuf),
}

impl Action {
    /// Whether it changed something.
    pub fn is_change(&self) -> bool {
        !matches!(self, Action::Unchanged(_) | Action::ApUnchanged(_))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Installed(p) => write!(f, "installed          {}", p.display()),
            Action::Unchanged(p) => write!(f, "unchanged          {}", p.display()),
            Action::Removed(p) => write!(f, "removed            {}", p.display()),
            Action::RemovedFromBoot(p) => write!(f, "removed from boot  {}", p.display()),
            Action::Enabled(u) => write!(f, "enabled            {u}"),
            Action::Disabled(u) => write!(f, "disabled           {u}"),
            Action::Unmasked(u) => write!(f, "unmasked           {u}"),
            Action::Ap { path, kind } => {
                write!(
                    f,
                    "{:<18} {} (access point)",
                    kind.to_string(),
                    path.display()
                )
            }
            Action::ApUnchanged(n) => write!(f, "unchanged          {n} access point paths"),
            Action::Systemctl(c) => write!(f, "ran                systemctl {c}"),
            Action::Recorded(p) => write!(f, "recorded           {}", p.display()),
        }
    }
}

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The card has no manifest.
    NothingToProvision,
    /// An earlier run finished with this manifest and the card holds none of its secrets: nothing was
    /// installed or changed (changes made on the Pi since are kept).
    AlreadyProvisioned,
    /// Something was installed, enabled, removed or recorded.
    Provisioned,
}

/// What `firstboot` did.
#[derive(Clone, Debug)]
pub struct FirstbootReport {
    /// How it ended.
    pub outcome: Outcome,
    /// The manifest's role and name (none without a manifest).
    pub board: Option<(Role, String)>,
    /// Every action, in order.
    pub actions: Vec<Action>,
    /// Things to know (not running as root, files on the card the manifest does not list).
    pub warnings: Vec<String>,
}

impl FirstbootReport {
    pub(crate) fn new(outcome: Outcome) -> Self {
        FirstbootReport {
            outcome,
            board: None,
            actions: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

//! The site file (`board-config/site.toml`, provisioned per board as `/etc/tmc/site.toml`): per-site settings
//! that are not about the radio board. Today it holds the Wi-Fi access point (`[ap]`); later sections (broker,
//! topics, node ids) join it here so that there is one parser with one style of error.
//!
//! Unlike a board preset, a site file is checked as a whole: every problem is reported, each as one
//! `<file>: <field>: <problem>` line, so that one run of `tmc-ap check` shows everything to fix.

mod ap;
mod country;
mod names;
mod raw;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::file::one_line_toml_error;

pub use ap::{
    ApSettings, Channel, LocalName, MacAddr, StaticLease, WpaKey, DEFAULT_PASSPHRASE, DEFAULT_SSID,
};
pub use country::is_country_code;
pub use names::{is_dns_name, is_hostname, is_interface_name};

/// A validated site file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteConfig {
    /// File it came from.
    pub path: PathBuf,
    /// The Wi-Fi access point the concentrator runs for its sensors.
    pub ap: ApSettings,
}

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    /// Dotted field name, e.g. `ap.passphrase` or `ap.static_leases[1].mac`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub problem: String,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// A site file that cannot be used.
#[derive(Debug, Error)]
pub enum SiteError {
    /// The file (or a file it names, such as `ap.passphrase_file`) cannot be read.
    #[error("{}: cannot read the site file: {source}", path.display())]
    Read {
        /// File.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// Not valid TOML, an unknown field, or a value of the wrong type; the TOML parser's message gives line,
    /// column and field.
    #[error("{}: {message}", path.display())]
    Syntax {
        /// File.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// Well-formed values that are not allowed: all of them, not only the first.
    #[error("{}: {}{}", path.display(), problems.first().map(ToString::to_string).unwrap_or_default(), more(problems.len()))]
    Invalid {
        /// File.
        path: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<FieldProblem>,
    },
}

fn more(count: usize) -> String {
    match count {
        0 | 1 => String::new(),
        2 => " (and 1 more problem)".to_owned(),
        n => format!(" (and {} more problems)", n - 1),
    }
}

impl SiteError {
    /// One `<file>: <field>: <problem>` line per problem (one line for a read or syntax error).
    pub fn messages(&self) -> Vec<String> {
        match self {
            Self::Invalid { path, problems } => problems
                .iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect(),
            other => vec![other.to_string()],
        }
    }

    /// The problems of [`SiteError::Invalid`] (empty otherwise).
    pub fn problems(&self) -> &[FieldProblem] {
        match self {
            Self::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// Collects problems while a file is validated.
#[derive(Default)]
pub(crate) struct Problems(Vec<FieldProblem>);

impl Problems {
    pub(crate) fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.push(FieldProblem {
            field: field.into(),
            problem: problem.into(),
        });
    }
}

impl SiteConfig {
    /// Reads and validates a site file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SiteError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SiteError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Validates site text; `path` names it in errors, and relative paths inside it (`ap.passphrase_file`)
    /// are taken from its directory.
    pub fn from_toml_str(text: &str, path: impl AsRef<Path>) -> Result<Self, SiteError> {
        let path = path.as_ref();
        let raw: raw::RawSite = toml::from_str(text).map_err(|e| SiteError::Syntax {
            path: path.to_owned(),
            message: one_line_toml_error(text, &e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut problems = Problems::default();
        let ap = ApSettings::validate(raw.ap, base, &mut problems);
        match ap {
            Some(ap) if problems.0.is_empty() => Ok(SiteConfig {
                path: path.to_owned(),
                ap,
            }),
            _ => Err(SiteError::Invalid {
                path: path.to_owned(),
                problems: problems.0,
            }),
        }
    }
}

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use tmc_secret_file::SecretFileError;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(transparent)]
    SecretFile(#[from] SecretFileError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error("{0}: a site already exists there (refusing to overwrite its CA)")]
    SiteExists(PathBuf),
    #[error(
        "{0}: not a TMC site directory (no ecc.ca.cert.pem; run `tmc-pki init --site DIR` first)"
    )]
    NotASite(PathBuf),
    #[error("identity name {0:?} is not allowed: use 1–64 of A-Z a-z 0-9 . _ - (not \"ca\" or \"broker\")")]
    BadName(String),
    #[error("{0:?} is already issued; use `renew` for a new certificate or `revoke` first")]
    AlreadyIssued(String),
    #[error("no identity named {0:?} (see `tmc-pki list`)")]
    UnknownIdentity(String),
    #[error("{0:?} is revoked; issue a new identity instead of renewing it")]
    Revoked(String),
    #[error("{name:?} was issued from a CSR: renew it with a new --csr")]
    RenewNeedsCsr { name: String },
    #[error("topic {topic:?} for {name:?}: {problem}")]
    BadTopic {
        name: String,
        topic: String,
        problem: &'static str,
    },
    #[error("name {0:?} is neither a DNS name nor an IP address")]
    BadHostName(String),
    #[error("the system random source failed: {0}")]
    Random(String),
    #[error("CSR: {0}")]
    Csr(String),
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error(transparent)]
    KeyRing(#[from] tmc_envelope::KeyRingError),
    #[error(transparent)]
    Invalid(#[from] crate::validate::CertProblem),
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

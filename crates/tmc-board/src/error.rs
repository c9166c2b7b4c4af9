//! Errors that name the file, the field and the problem.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// A board file that cannot be used.
#[derive(Debug, Error)]
pub enum BoardError {
    /// The file cannot be read.
    #[error("{}: cannot read the board file: {source}", path.display())]
    Read {
        /// File.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// Not valid TOML, an unknown or missing field, or a value of the wrong type. The message from the TOML
    /// parser gives line, column and field.
    #[error("{}: {message}", path.display())]
    Syntax {
        /// File.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A well-formed value that is not allowed.
    #[error("{}: {field}: {problem}", path.display())]
    Invalid {
        /// File.
        path: PathBuf,
        /// Dotted field name, e.g. `radio.frequency_mhz`.
        field: &'static str,
        /// What is wrong and what is allowed.
        problem: String,
    },
}

impl BoardError {
    /// The dotted field name for [`BoardError::Invalid`].
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

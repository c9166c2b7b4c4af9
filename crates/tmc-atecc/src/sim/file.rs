//! A simulated chip kept in a file (feature `sim-file`, std): its non-volatile contents
//! ([`SimAtecc::nonvolatile`]) hold its private keys, so the file is a secret: written atomically with mode
//! 0600 and refused when group or others may read it (`tmc-secret-file`).
//!
//! ```no_run
//! # fn demo() -> Result<(), tmc_atecc::sim::file::SimFileError> {
//! use tmc_atecc::sim::{file, Model};
//! let path = std::path::Path::new("/var/lib/tmc/atecc-sim.bin");
//! let sim = file::load_or_create(path, Model::Atecc608a)?;
//! // … GenKey through the driver …
//! if sim.nonvolatile_changed() {
//!     file::save(path, &sim)?;
//! }
//! # Ok(()) }
//! ```

use std::io;
use std::path::{Path, PathBuf};

use tmc_secret_file::{Overwrite, SecretFileError};

use super::{Model, NonVolatileError, SimAtecc};

/// Loading or saving a simulated chip failed.
#[derive(Debug, thiserror::Error)]
pub enum SimFileError {
    /// Reading or writing the file (including a file group or others may read).
    #[error(transparent)]
    File(#[from] SecretFileError),
    /// The file's contents are not a simulated chip's.
    #[error("{}: {source}", path.display())]
    Contents {
        /// The file.
        path: PathBuf,
        /// What is wrong with its contents.
        #[source]
        source: NonVolatileError,
    },
    /// The file holds another model than the one asked for.
    #[error("{}: holds a simulated {found:?}, not an {wanted:?}", path.display())]
    WrongModel {
        /// The file.
        path: PathBuf,
        /// The model asked for.
        wanted: Model,
        /// The model in the file.
        found: Model,
    },
    /// No randomness for a new chip's serial number.
    #[error("no random serial number for a new simulated chip: {0}")]
    Random(getrandom::Error),
}

/// The chip in `path`, or, when there is no such file, a new shipped-and-locked `model` with a random serial
/// number (`01 23`, six random bytes, `ee`), saved there (0600) before it is returned.
pub fn load_or_create(path: &Path, model: Model) -> Result<SimAtecc, SimFileError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut middle = [0u8; 6];
            getrandom::fill(&mut middle).map_err(SimFileError::Random)?;
            let mut serial = [0x01, 0x23, 0, 0, 0, 0, 0, 0, 0xEE];
            serial[2..8].copy_from_slice(&middle);
            let sim = SimAtecc::with_serial(model, serial);
            // Refuse: another process creating the same chip at the same time must not be overwritten.
            tmc_secret_file::write_private(path, &sim.nonvolatile(), Overwrite::Refuse)?;
            Ok(sim)
        }
        // Any other metadata error is reported by the read, which names the file.
        _ => {
            let bytes = tmc_secret_file::read_private(path)?;
            let sim =
                SimAtecc::from_nonvolatile(&bytes).map_err(|source| SimFileError::Contents {
                    path: path.to_path_buf(),
                    source,
                })?;
            if sim.model() != model {
                return Err(SimFileError::WrongModel {
                    path: path.to_path_buf(),
                    wanted: model,
                    found: sim.model(),
                });
            }
            Ok(sim)
        }
    }
}

/// Saves `sim`'s non-volatile contents to `path` (atomically, 0600), replacing the file.
pub fn save(path: &Path, sim: &SimAtecc) -> Result<(), SimFileError> {
    tmc_secret_file::write_private(path, &sim.nonvolatile(), Overwrite::Replace)?;
    Ok(())
}

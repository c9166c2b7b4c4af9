//! An append-only JSON-lines file holding each reading exactly once, even across crashes.
//!
//! A batch is appended and fsynced, then the cursor is committed with the file's length as its mark. At start
//! (and after a failed cursor commit) the file is truncated back to the mark: whatever was written after the last
//! commit is written again from the journal, once. A torn last line from a power cut goes the same way.
//!
//! Two cases cannot be truncated to the mark and are logged instead:
//! - a new output (no cursor yet) adopts the file as it is (its mark is the current length), so an existing file
//!   is never cut;
//! - a file shorter than the mark was rotated or truncated by someone else: writing goes on at its end.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::line::record_json;
use crate::outputs::{file_output_name, OutputError, SyncOutput, BATCH};
use crate::shared::Shared;

/// The JSON-lines file output.
pub struct FileOutput {
    name: String,
    path: PathBuf,
    file: File,
    /// Length committed with the cursor.
    mark: u64,
    /// Current length (past `mark` only between a write and its cursor commit).
    len: u64,
}

impl FileOutput {
    /// Opens (creating) `path`, registers its cursor in the inbox, and cuts what was written after the last
    /// cursor commit.
    pub fn open(path: &Path, shared: &Shared) -> Result<FileOutput, OutputError> {
        let name = file_output_name(path);
        let io = |source| OutputError::Io {
            path: path.display().to_string(),
            source,
        };
        let existed = path.exists();
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if !existed {
            // The file's directory entry must survive a power cut too, or the first lines are lost with it.
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        let len = file.metadata().map_err(io)?.len();
        let mut inbox = shared.inbox();
        let mark = match inbox.cursor(&name)? {
            None => {
                inbox.add_output(&name)?;
                if len > 0 {
                    tracing::info!(
                        "output {name}: new output, appending to the {len} bytes already there"
                    );
                }
                inbox.delivered(&name, 0, len)?;
                len
            }
            Some(cursor) if len > cursor.mark => {
                tracing::warn!(
                    "output {name}: {} bytes past the last committed line (written before a crash): writing them again from the journal",
                    len - cursor.mark
                );
                file.set_len(cursor.mark).map_err(io)?;
                file.sync_all().map_err(io)?;
                cursor.mark
            }
            Some(cursor) if len < cursor.mark => {
                tracing::warn!(
                    "output {name}: the file is shorter ({len} bytes) than the {} bytes committed: rotated or truncated by someone else? Appending at its end",
                    cursor.mark
                );
                let seq = cursor.seq;
                inbox.delivered(&name, seq, len)?;
                len
            }
            Some(cursor) => cursor.mark,
        };
        drop(inbox);
        Ok(FileOutput {
            name,
            path: path.to_owned(),
            file,
            mark,
            len: mark,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self) -> impl Fn(std::io::Error) -> OutputError + '_ {
        move |source| OutputError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }
}

impl SyncOutput for FileOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, shared: &Shared) -> Result<usize, OutputError> {
        let records = shared.inbox().pending(&self.name, BATCH)?;
        let Some(last) = records.last().map(|r| r.seq) else {
            return Ok(0);
        };
        if self.len != self.mark {
            // The previous batch was written but its cursor commit failed: it is pending again, cut it first.
            self.file.set_len(self.mark).map_err(self.io())?;
            self.len = self.mark;
        }
        let mut text = String::new();
        for r in &records {
            text.push_str(&record_json(r));
            text.push('\n');
        }
        // Until the cursor commit, the file holds more than the mark; should the write fail halfway, `len` differs
        // from `mark` and the next step cuts the file back.
        self.len = self.mark + text.len() as u64;
        self.file.write_all(text.as_bytes()).map_err(self.io())?;
        self.file.sync_data().map_err(self.io())?;
        shared.inbox().delivered(&self.name, last, self.len)?;
        self.mark = self.len;
        Ok(records.len())
    }
}

//! JSON lines on standard output (or any stream): write the batch, flush, then commit the cursor.
//!
//! At-least-once: after a crash between the write and the cursor commit, the batch is written again (a pipe
//! cannot be rewound). Use the file output where exactly-once matters.

use std::io::Write;

use crate::line::record_json;
use crate::outputs::{OutputError, SyncOutput, BATCH, STDOUT};
use crate::shared::Shared;

/// Writes JSON lines to `W` (the process's stdout in the service).
pub struct StreamOutput<W> {
    name: String,
    writer: W,
}

impl StreamOutput<std::io::Stdout> {
    /// The `stdout` output.
    pub fn stdout() -> Self {
        StreamOutput::new(STDOUT, std::io::stdout())
    }
}

impl<W: Write + Send> StreamOutput<W> {
    /// Lines to `writer`, under the cursor `name`.
    pub fn new(name: &str, writer: W) -> Self {
        StreamOutput {
            name: name.to_owned(),
            writer,
        }
    }

    pub fn into_inner(self) -> W {
        self.writer
    }
}

impl<W: Write + Send> SyncOutput for StreamOutput<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, shared: &Shared) -> Result<usize, OutputError> {
        let records = shared.inbox().pending(&self.name, BATCH)?;
        let Some(last) = records.last().map(|r| r.seq) else {
            return Ok(0);
        };
        let mut text = String::new();
        for r in &records {
            text.push_str(&record_json(r));
            text.push('\n');
        }
        let io = |source| OutputError::Io {
            path: self.name.clone(),
            source,
        };
        self.writer.write_all(text.as_bytes()).map_err(io)?;
        self.writer.flush().map_err(io)?;
        shared.inbox().delivered(&self.name, last, 0)?;
        Ok(records.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::Meta;
    use tmc_envelope::Reading;
    use tmc_queue::Inbox;

    #[test]
    fn writes_a_line_per_reading_then_moves_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let mut inbox = Inbox::open(&dir.path().join("inbox.db"), 32).unwrap();
        inbox.add_output("out").unwrap();
        let readings = [
            Reading::new("/esp8266", 5, b"a".to_vec()),
            Reading::new("/esp8266", 6, vec![0xff]),
        ];
        inbox.commit_legacy(10, &readings).unwrap();
        let shared = Shared::new(inbox, Meta::default());
        let mut output = StreamOutput::new("out", Vec::new());
        assert_eq!(output.step(&shared).unwrap(), 2);
        assert_eq!(output.step(&shared).unwrap(), 0);
        assert_eq!(shared.inbox().backlog("out").unwrap(), 0);
        assert_eq!(
            String::from_utf8(output.into_inner()).unwrap(),
            "{\"topic\":\"/esp8266\",\"time\":5,\"profile\":\"legacy\",\"node\":10,\"data\":\"a\"}\n\
             {\"topic\":\"/esp8266\",\"time\":6,\"profile\":\"legacy\",\"node\":10,\"data_base64\":\"/w==\"}\n"
        );
    }
}

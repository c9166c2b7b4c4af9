//! The JSON-lines file output: each reading exactly once, even after a crash between a write and its cursor
//! commit.

use std::io::Write;
use std::path::Path;

use tmc_envelope::{Encoding, KeyRing, MemoryCounter, Opener, Reading, Sealer};
use tmc_queue::Inbox;
use tmc_receiver::line::record_json;
use tmc_receiver::outputs::file::FileOutput;
use tmc_receiver::outputs::{file_output_name, SyncOutput};
use tmc_receiver::shared::{Meta, Shared};

fn ring() -> KeyRing {
    KeyRing::from_secrets(&[(1, [0x42; 32])]).unwrap()
}

/// Opens and commits a token from sender 10 carrying `n` readings `"<tag>.<i>"`.
fn commit(shared: &Shared, sealer: &mut Sealer<MemoryCounter>, tag: u32, n: u32) {
    let readings: Vec<_> = (0..n)
        .map(|i| Reading::new("/esp8266", 1_700_000_000, format!("{tag}.{i}")))
        .collect();
    let token = sealer
        .seal(&readings, 1_700_000_000, Encoding::Text)
        .unwrap();
    let mut inbox = shared.inbox();
    let opened = Opener::new(ring(), inbox.replay_guard().clone())
        .open(&token.bytes)
        .unwrap();
    inbox.commit(&opened).unwrap();
}

fn data(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["data"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn lines_written_after_the_last_cursor_commit_are_cut_and_written_once_again() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Shared::new(
        Inbox::open(&dir.path().join("inbox.db"), 32).unwrap(),
        Meta::default(),
    );
    let mut sealer = Sealer::new(&ring(), 10, MemoryCounter::starting_at(10, 0));
    let path = dir.path().join("readings.jsonl");
    let name = file_output_name(&path);

    commit(&shared, &mut sealer, 0, 2);
    let mut output = FileOutput::open(&path, &shared).unwrap();
    assert_eq!(output.name(), name);
    assert_eq!(output.step(&shared).unwrap(), 2);
    assert_eq!(output.step(&shared).unwrap(), 0, "nothing pending");
    let committed = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        shared.inbox().cursor(&name).unwrap().unwrap().mark,
        committed
    );

    // A crash after the next batch was written (and a last line torn by a power cut), before the cursor commit:
    // what the output would have appended is there, the cursor still points before it.
    commit(&shared, &mut sealer, 1, 3);
    let pending = shared.inbox().pending(&name, 100).unwrap();
    assert_eq!(pending.len(), 3);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    for r in &pending {
        writeln!(file, "{}", record_json(r)).unwrap();
    }
    write!(file, "{{\"topic\":\"/esp82").unwrap();
    drop(file);
    drop(output);

    // Restart: the file is cut back to the committed mark, and the batch is written once.
    let mut output = FileOutput::open(&path, &shared).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), committed);
    assert_eq!(output.step(&shared).unwrap(), 3);
    assert_eq!(data(&path), ["0.0", "0.1", "1.0", "1.1", "1.2"]);
    assert_eq!(shared.inbox().backlog(&name).unwrap(), 0);
    assert_eq!(
        shared.inbox().cursor(&name).unwrap().unwrap().mark,
        std::fs::metadata(&path).unwrap().len()
    );
    // Everything delivered by the only output: the journal is pruned.
    assert!(shared.inbox().is_empty().unwrap());
}

#[test]
fn a_new_file_output_appends_to_an_existing_file_and_never_cuts_it() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Shared::new(
        Inbox::open(&dir.path().join("inbox.db"), 32).unwrap(),
        Meta::default(),
    );
    let mut sealer = Sealer::new(&ring(), 10, MemoryCounter::starting_at(10, 0));
    let path = dir.path().join("old.jsonl");
    std::fs::write(&path, "{\"data\":\"from before\"}\n").unwrap();
    commit(&shared, &mut sealer, 7, 1);
    let mut output = FileOutput::open(&path, &shared).unwrap();
    assert_eq!(output.step(&shared).unwrap(), 1);
    assert_eq!(data(&path), ["from before", "7.0"]);

    // Someone truncates the file behind our back (logrotate copytruncate): writing goes on at its end.
    drop(output);
    std::fs::write(&path, "").unwrap();
    commit(&shared, &mut sealer, 8, 1);
    let mut output = FileOutput::open(&path, &shared).unwrap();
    assert_eq!(output.step(&shared).unwrap(), 1);
    assert_eq!(data(&path), ["8.0"]);
}

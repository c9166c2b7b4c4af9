//! The receiver's inbox with real tokens: exactly once across restarts and SIGKILL, outputs and their cursors.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;

use tmc_envelope::{
    Encoding, KeyRing, MemoryCounter, OpenError, Opened, Opener, Reading, ReplayError, Sealer,
};
use tmc_queue::{Committed, Cursor, Inbox, QueueError};

const SENDER: u32 = 7;

fn ring() -> KeyRing {
    KeyRing::from_secrets(&[(1, [0x42; 32])]).unwrap()
}

fn sealer(next: u32) -> Sealer<MemoryCounter> {
    Sealer::new(&ring(), SENDER, MemoryCounter::starting_at(SENDER, next))
}

/// A token carrying `n` readings tagged with `tag`.
fn token(sealer: &mut Sealer<MemoryCounter>, tag: u32, n: u32) -> Vec<u8> {
    let readings: Vec<_> = (0..n)
        .map(|i| {
            Reading::new(
                "sensors/kitchen/reading",
                1_700_000_000 + u64::from(i),
                format!("{tag}.{i}"),
            )
        })
        .collect();
    sealer
        .seal(&readings, 1_700_000_000, Encoding::Packed)
        .unwrap()
        .bytes
}

fn opener(inbox: &Inbox) -> Opener {
    Opener::new(ring(), inbox.replay_guard().clone())
}

fn data(inbox: &Inbox, output: &str) -> Vec<String> {
    inbox
        .pending(output, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.data).unwrap())
        .collect()
}

#[test]
fn each_token_is_stored_once_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let mut s = sealer(0);
    let t0 = token(&mut s, 0, 3);
    let t1 = token(&mut s, 1, 1);

    let mut inbox = Inbox::open(&path, 32).unwrap();
    inbox.add_output("stdout").unwrap();
    let mut op = opener(&inbox);
    let opened: Opened = op.open(&t0).unwrap();
    assert_eq!(
        inbox.commit(&opened).unwrap(),
        Committed::Stored { first: 1, last: 3 }
    );
    // The same opened token again (the receiver retried a commit it thought failed): not stored twice.
    assert!(matches!(
        inbox.commit(&opened).unwrap(),
        Committed::Duplicate(ReplayError::Replayed {
            sender: SENDER,
            counter: 0
        })
    ));
    let records = inbox.pending("stdout", 10).unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(
        (
            records[2].sender,
            records[2].counter,
            records[2].index,
            records[2].kid
        ),
        (SENDER, 0, 2, 1)
    );
    assert_eq!(records[2].encoding, Encoding::Packed);
    assert_eq!(records[2].topic, "sensors/kitchen/reading");
    assert_eq!(records[2].time, 1_700_000_002);
    drop(op);
    drop(inbox);

    // Restart: the opener rebuilt from the inbox refuses the resent copy; the next token passes.
    let mut inbox = Inbox::open(&path, 32).unwrap();
    let mut op = opener(&inbox);
    assert!(matches!(
        op.open(&t0),
        Err(OpenError::Replay(ReplayError::Replayed { .. }))
    ));
    let opened = op.open(&t1).unwrap();
    assert_eq!(
        inbox.commit(&opened).unwrap(),
        Committed::Stored { first: 4, last: 4 }
    );
    // Even an opener with a fresh (lost) replay state cannot get a duplicate into the journal.
    let mut amnesiac = Opener::new(ring(), tmc_envelope::ReplayGuard::default());
    let again = amnesiac.open(&t0).unwrap();
    assert!(matches!(
        inbox.commit(&again).unwrap(),
        Committed::Duplicate(_)
    ));
    assert_eq!(data(&inbox, "stdout"), ["0.0", "0.1", "0.2", "1.0"]);
    assert_eq!(inbox.len().unwrap(), 4);
}

#[test]
fn outputs_advance_independently_and_records_go_when_all_have_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let mut s = sealer(100);
    let mut inbox = Inbox::open(&path, 32).unwrap();
    let mut op = opener(&inbox);
    for tag in 0..3 {
        let opened = op.open(&token(&mut s, tag, 2)).unwrap();
        inbox.commit(&opened).unwrap();
    }
    // Nothing is pruned while no output is registered.
    assert_eq!(inbox.len().unwrap(), 6);
    inbox.add_output("file").unwrap();
    inbox.add_output("mqtt").unwrap();
    inbox.add_output("mqtt").unwrap(); // idempotent
    assert_eq!(inbox.outputs().unwrap(), ["file", "mqtt"]);
    assert_eq!(inbox.pending("nope", 10).unwrap(), vec![]);
    assert_eq!(inbox.cursor("nope").unwrap(), None);

    inbox.delivered("file", 4, 4096).unwrap();
    assert_eq!(data(&inbox, "file"), ["2.0", "2.1"]);
    assert_eq!(inbox.backlog("file").unwrap(), 2);
    // MQTT (upstream down) still holds everything.
    assert_eq!(inbox.backlog("mqtt").unwrap(), 6);
    assert_eq!(inbox.len().unwrap(), 6);
    inbox.delivered("mqtt", 2, 0).unwrap();
    assert_eq!(inbox.len().unwrap(), 4);
    // A cursor never goes back; the mark is what the output last committed.
    inbox.delivered("file", 1, 100).unwrap();
    assert_eq!(
        inbox.cursor("file").unwrap(),
        Some(Cursor { seq: 4, mark: 100 })
    );
    drop(op);
    drop(inbox);

    let mut inbox = Inbox::open(&path, 32).unwrap();
    assert_eq!(
        inbox.cursor("file").unwrap(),
        Some(Cursor { seq: 4, mark: 100 })
    );
    assert_eq!(data(&inbox, "mqtt"), ["1.0", "1.1", "2.0", "2.1"]);
    // Unconfiguring the slow output releases what it held.
    inbox.remove_output("mqtt").unwrap();
    assert_eq!(inbox.len().unwrap(), 2);
    inbox.delivered("file", 6, 200).unwrap();
    assert!(inbox.is_empty().unwrap());
    // Sequence numbers are never reused.
    let mut op = opener(&inbox);
    let opened = op.open(&token(&mut s, 9, 1)).unwrap();
    assert_eq!(
        inbox.commit(&opened).unwrap(),
        Committed::Stored { first: 7, last: 7 }
    );
}

#[test]
fn window_is_configuration_and_the_store_is_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let mut s = sealer(50);
    let mut inbox = Inbox::open(&path, 32).unwrap();
    let mut op = opener(&inbox);
    let old = token(&mut s, 0, 1);
    let new = token(&mut s, 1, 1);
    inbox.commit(&op.open(&new).unwrap()).unwrap();
    assert!(matches!(
        Inbox::open(&path, 32),
        Err(QueueError::Locked { .. })
    ));
    drop(inbox);
    // With a window of 0, the older token (counter 50 < 51) is now stale.
    let mut inbox = Inbox::open(&path, 0).unwrap();
    assert_eq!(inbox.replay_guard().window(), 0);
    assert_eq!(inbox.replay_guard().highest(SENDER), Some(51));
    let mut amnesiac = Opener::new(ring(), tmc_envelope::ReplayGuard::new(0).unwrap());
    let opened = amnesiac.open(&old).unwrap();
    assert!(matches!(
        inbox.commit(&opened).unwrap(),
        Committed::Duplicate(ReplayError::Stale { .. })
    ));
    assert!(Inbox::open(&dir.path().join("other.db"), 64).is_err());
}

/// The child half of [`journal_and_replay_state_agree_after_sigkill`].
#[test]
fn inbox_crash_child() {
    let Ok(dir) = std::env::var("TMC_INBOX_CRASH_DIR") else {
        return;
    };
    let mut inbox = Inbox::open(&Path::new(&dir).join("inbox.db"), 32).unwrap();
    let mut op = opener(&inbox);
    let mut s = sealer(0);
    let mut out = std::io::stdout().lock();
    for tag in 0u32.. {
        let opened = op.open(&token(&mut s, tag, 4)).unwrap();
        inbox.commit(&opened).unwrap();
        writeln!(out, "\ncounter={}", opened.counter).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn journal_and_replay_state_agree_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = tmc_testkit::bin_command(exe.to_str().unwrap());
    cmd.args([
        "--exact",
        "inbox_crash_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("TMC_INBOX_CRASH_DIR", dir.path())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut committed = 0u32;
    while committed < 60 {
        let line = lines.next().unwrap().unwrap();
        if let Some(c) = line.strip_prefix("counter=") {
            assert_eq!(c.parse::<u32>().unwrap(), committed);
            committed += 1;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let mut inbox = Inbox::open(&dir.path().join("inbox.db"), 32).unwrap();
    inbox.add_output("check").unwrap();
    let records = inbox.pending("check", usize::MAX).unwrap();
    // Whole tokens only, in order, each once, at least every commit that returned.
    assert_eq!(records.len() % 4, 0);
    let tokens = (records.len() / 4) as u32;
    assert!(tokens >= committed);
    for (i, r) in records.iter().enumerate() {
        let (c, idx) = ((i / 4) as u32, (i % 4) as u32);
        assert_eq!((r.counter, r.index), (c, idx));
        assert_eq!(r.data, format!("{c}.{idx}").into_bytes());
    }
    // The replay state moved exactly as far as the journal.
    assert_eq!(inbox.replay_guard().highest(SENDER), Some(tokens - 1));
    // The relay resends the last token it is unsure of: refused as a duplicate, the next one is new.
    let mut s = sealer(tokens - 1);
    let mut amnesiac = Opener::new(ring(), tmc_envelope::ReplayGuard::default());
    let resent = amnesiac.open(&token(&mut s, tokens - 1, 4)).unwrap();
    assert!(matches!(
        inbox.commit(&resent).unwrap(),
        Committed::Duplicate(_)
    ));
    let next = amnesiac.open(&token(&mut s, tokens, 4)).unwrap();
    assert!(matches!(
        inbox.commit(&next).unwrap(),
        Committed::Stored { .. }
    ));
}

#[test]
fn legacy_frames_have_their_own_senders_and_counters_that_survive_pruning() {
    use tmc_queue::{legacy_sender, LEGACY_SENDER_BASE};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let mut inbox = Inbox::open(&path, 32).unwrap();
    inbox.add_output("out").unwrap();
    // A secure token from sender 7 and legacy frames from radio node 7 do not collide.
    let mut s = sealer(0);
    let mut op = opener(&inbox);
    inbox
        .commit(&op.open(&token(&mut s, 0, 1)).unwrap())
        .unwrap();
    let reading = |text: &str| Reading::new("/esp8266", 1_700_000_100, text.as_bytes().to_vec());
    assert_eq!(
        inbox.commit_legacy(7, &[reading("a")]).unwrap(),
        Committed::Stored { first: 2, last: 2 }
    );
    // The same reading again is stored again: a legacy frame has no counter to tell a copy.
    assert_eq!(
        inbox
            .commit_legacy(7, &[reading("a"), reading("b")])
            .unwrap(),
        Committed::Stored { first: 3, last: 4 }
    );
    let records = inbox.pending("out", 10).unwrap();
    assert_eq!(records.len(), 4);
    assert!(!records[0].legacy);
    assert_eq!(records[0].sender, SENDER);
    let legacy: Vec<_> = records[1..]
        .iter()
        .map(|r| (r.sender, r.counter, r.index, r.kid, r.legacy, r.encoding))
        .collect();
    let sender = LEGACY_SENDER_BASE | 7;
    assert_eq!(legacy_sender(7), sender);
    assert_eq!(
        legacy,
        [
            (sender, 0, 0, 0, true, Encoding::Text),
            (sender, 1, 0, 0, true, Encoding::Text),
            (sender, 1, 1, 0, true, Encoding::Text),
        ]
    );
    assert_eq!(records[3].data, b"b");
    assert_eq!(records[3].topic, "/esp8266");
    // Legacy frames leave the replay state alone.
    assert_eq!(inbox.replay_guard().highest(SENDER), Some(0));
    assert_eq!(inbox.replay_guard().highest(sender), None);

    // Delivered everywhere, pruned, reopened: the counter goes on where it was.
    inbox.delivered("out", 4, 0).unwrap();
    assert!(inbox.is_empty().unwrap());
    drop(op);
    drop(inbox);
    let mut inbox = Inbox::open(&path, 32).unwrap();
    inbox.commit_legacy(7, &[reading("c")]).unwrap();
    inbox.commit_legacy(8, &[reading("d")]).unwrap();
    let records = inbox.pending("out", 10).unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| (r.sender, r.counter))
            .collect::<Vec<_>>(),
        [(sender, 2), (legacy_sender(8), 0)]
    );
}

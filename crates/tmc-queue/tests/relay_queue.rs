//! The relay queue on real SQLite files: durability across a crash, order, acks, staging, the full policies,
//! and two threads at once.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use tmc_queue::{FullPolicy, NewEntry, QueueError, RelayQueue, Staged};

fn open(path: &Path, capacity: u64, policy: FullPolicy) -> RelayQueue {
    RelayQueue::open(path, capacity, policy).unwrap()
}

fn payloads(q: &RelayQueue) -> Vec<Vec<u8>> {
    q.peek_batch(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect()
}

/// The child half of [`entries_survive_sigkill_in_order`]: pushes until killed, printing each id once `push`
/// has returned.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("TMC_QUEUE_CRASH_DIR") else {
        return; // Only meaningful when spawned by the parent test.
    };
    let q = open(
        &Path::new(&dir).join("queue.db"),
        u64::MAX,
        FullPolicy::Refuse,
    );
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let id = q.push("/esp8266", i, &i.to_le_bytes()).unwrap();
        writeln!(out, "\nid={id}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn entries_survive_sigkill_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = tmc_testkit::bin_command(exe.to_str().unwrap());
    cmd.args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("TMC_QUEUE_CRASH_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 100 {
        let line = lines.next().unwrap().unwrap();
        // The test harness prints its own lines too.
        if let Some(id) = line.strip_prefix("id=") {
            acknowledged.push(id.parse::<i64>().unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL, in the middle of pushing
    child.wait().unwrap();

    let q = open(&dir.path().join("queue.db"), u64::MAX, FullPolicy::Refuse);
    let entries = q.peek_batch(usize::MAX).unwrap();
    // Every push that returned is there, in order, with its content; at most the pushes in progress follow.
    assert!(entries.len() >= acknowledged.len());
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.time, i as u64);
        assert_eq!(e.payload, (i as u64).to_le_bytes());
        assert_eq!(e.topic, "/esp8266");
    }
    assert_eq!(
        entries[..acknowledged.len()]
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        acknowledged
    );
    assert_eq!(q.len(), entries.len() as u64);
    // New ids continue after the old ones.
    assert!(q.push("/esp8266", 1, b"d").unwrap() > entries[entries.len() - 1].id);
}

#[test]
fn reopen_after_drop_keeps_everything_and_the_lock_is_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let q = open(&path, 100, FullPolicy::Refuse);
    for i in 0..20u8 {
        q.push("/esp8266", u64::from(i), &[i]).unwrap();
    }
    match RelayQueue::open(&path, 100, FullPolicy::Refuse) {
        Err(QueueError::Locked { .. }) => {}
        other => panic!("second writer was not refused: {:?}", other.map(|_| ())),
    }
    drop(q);
    let q = open(&path, 100, FullPolicy::Refuse);
    assert_eq!(payloads(&q), (0..20u8).map(|i| vec![i]).collect::<Vec<_>>());
}

#[test]
fn peek_is_oldest_first_and_ack_removes_only_those_ids() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir.path().join("q.db"), 100, FullPolicy::Refuse);
    let ids: Vec<_> = (0..10u8)
        .map(|i| q.push("t", u64::from(i), &[i]).unwrap())
        .collect();
    let batch = q.peek_batch(4).unwrap();
    assert_eq!(batch.iter().map(|e| e.id).collect::<Vec<_>>(), ids[..4]);
    // Peeking changes nothing.
    assert_eq!(q.peek_batch(4).unwrap(), batch);
    assert_eq!(q.ack(&[ids[1], ids[3], ids[7]]).unwrap(), 3);
    assert_eq!(q.len(), 7);
    assert_eq!(
        payloads(&q),
        [0u8, 2, 4, 5, 6, 8, 9].map(|i| vec![i]).to_vec()
    );
    // Acking again, or ids that never existed, deletes nothing else.
    assert_eq!(q.ack(&[ids[1], 12_345, -1]).unwrap(), 0);
    assert_eq!(q.len(), 7);
}

#[test]
fn staged_tokens_are_resent_after_a_restart_and_cleared_by_the_ack() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = open(&path, 100, FullPolicy::Refuse);
    let ids: Vec<_> = (0..5u8)
        .map(|i| q.push("t", u64::from(i), &[i]).unwrap())
        .collect();
    q.stage(&ids[..2], b"token-1").unwrap();
    q.stage(&ids[2..3], b"token-2").unwrap();
    // Staged entries are not offered again; unknown or already staged ids are refused atomically.
    assert_eq!(
        q.peek_batch(10)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        ids[3..]
    );
    assert!(
        matches!(q.stage(&[ids[3], ids[0]], b"x"), Err(QueueError::NotStageable(id)) if id == ids[0])
    );
    assert!(matches!(
        q.stage(&[999], b"x"),
        Err(QueueError::NotStageable(999))
    ));
    assert_eq!(q.peek_batch(10).unwrap().len(), 2);
    assert_eq!(q.snapshot().unwrap().staged, 3);
    drop(q);

    let q = open(&path, 100, FullPolicy::Refuse);
    assert_eq!(
        q.staged().unwrap(),
        vec![
            Staged {
                token: b"token-1".to_vec(),
                ids: ids[..2].to_vec()
            },
            Staged {
                token: b"token-2".to_vec(),
                ids: ids[2..3].to_vec()
            },
        ]
    );
    q.ack(&ids[..2]).unwrap();
    assert_eq!(q.staged().unwrap().len(), 1);
    q.ack(&ids[2..3]).unwrap();
    assert!(q.staged().unwrap().is_empty());
    assert_eq!(q.len(), 2);
}

#[test]
fn refuse_policy_pushes_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir.path().join("q.db"), 3, FullPolicy::Refuse);
    for i in 0..3u8 {
        q.push("t", 0, &[i]).unwrap();
    }
    assert!(matches!(
        q.push("t", 0, b"x"),
        Err(QueueError::Full { capacity: 3 })
    ));
    let first = q.peek_batch(1).unwrap()[0].id;
    q.ack(&[first]).unwrap();
    // A batch is stored up to the bound; the caller acknowledges only that prefix to the broker.
    let stored = q
        .push_batch(&[
            NewEntry {
                topic: "t",
                time: 0,
                payload: b"y",
            },
            NewEntry {
                topic: "t",
                time: 0,
                payload: b"z",
            },
        ])
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(q.refused(), 2);
    assert_eq!(q.dropped().unwrap(), 0);
    assert_eq!(payloads(&q), vec![vec![1], vec![2], b"y".to_vec()]);
}

#[test]
fn drop_oldest_policy_drops_unstaged_entries_and_counts_them_persistently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = open(&path, 3, FullPolicy::DropOldest);
    let ids: Vec<_> = (0..3u8).map(|i| q.push("t", 0, &[i]).unwrap()).collect();
    q.stage(&ids[..1], b"in flight").unwrap();
    q.push("t", 0, &[3]).unwrap();
    q.push("t", 0, &[4]).unwrap();
    // The staged entry 0 stays; 1 and 2 were dropped.
    assert_eq!(q.len(), 3);
    assert_eq!(q.dropped().unwrap(), 2);
    assert_eq!(payloads(&q), vec![vec![3], vec![4]]);
    drop(q);
    let q = open(&path, 3, FullPolicy::DropOldest);
    assert_eq!(q.dropped().unwrap(), 2);
    let status = RelayQueue::status(&path).unwrap();
    assert_eq!((status.len, status.staged, status.dropped), (3, 1, 2));
    // When everything is staged there is nothing to drop: refused.
    let all: Vec<_> = q.peek_batch(10).unwrap().iter().map(|e| e.id).collect();
    q.stage(&all, b"t2").unwrap();
    assert!(matches!(q.push("t", 0, b"x"), Err(QueueError::Full { .. })));
}

#[test]
fn status_and_oldest_age() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = open(&path, 10, FullPolicy::Refuse);
    assert_eq!(q.oldest_age().unwrap(), None);
    assert!(q.is_empty());
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    q.push("t", 0, b"a").unwrap();
    q.push("t", 0, b"b").unwrap();
    let oldest = q.oldest_enqueued_ms().unwrap().unwrap();
    assert!(oldest >= before);
    assert!(q.oldest_age().unwrap().is_some());
    // Another process reads the status while the queue is open, without a lock.
    let status = RelayQueue::status(&path).unwrap();
    assert_eq!(status.len, 2);
    assert_eq!(status.oldest_enqueued_ms, Some(oldest));
    assert_eq!(status, q.snapshot().unwrap());
}

#[test]
fn concurrent_push_and_peek_ack_from_two_threads() {
    const N: u32 = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let q = Arc::new(open(
        &dir.path().join("q.db"),
        u64::from(N),
        FullPolicy::Refuse,
    ));
    let producer = {
        let q = Arc::clone(&q);
        std::thread::spawn(move || {
            for i in 0..N {
                q.push("t", u64::from(i), &i.to_be_bytes()).unwrap();
            }
        })
    };
    // The consumer takes what is there, checks order, acks it, until it has seen all N.
    let mut seen = Vec::with_capacity(N as usize);
    while seen.len() < N as usize {
        let batch = q.peek_batch(64).unwrap();
        if batch.is_empty() {
            std::thread::yield_now();
            continue;
        }
        let ids: Vec<_> = batch.iter().map(|e| e.id).collect();
        seen.extend(
            batch
                .iter()
                .map(|e| u32::from_be_bytes(e.payload[..].try_into().unwrap())),
        );
        assert_eq!(q.ack(&ids).unwrap(), ids.len() as u64);
    }
    producer.join().unwrap();
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
    assert!(q.is_empty());
}

#[test]
fn delivery_marks_survive_a_restart_and_tell_redeliveries() {
    use tmc_queue::delivery_mark;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let a = delivery_mark("sensors/s1/reading", b"{\"seq\":1}");
    let b = delivery_mark("sensors/s1/reading", b"{\"seq\":2}");
    let a2 = delivery_mark("sensors/s2/reading", b"{\"seq\":1}");
    assert_ne!(a, a2);
    assert_ne!(a, b);
    {
        let q = open(&path, 10, FullPolicy::Refuse);
        let entries = [
            NewEntry {
                topic: "sensors/s1/reading",
                time: 1,
                payload: b"{\"seq\":1}",
            },
            NewEntry {
                topic: "sensors/s1/reading",
                time: 2,
                payload: b"{\"seq\":2}",
            },
        ];
        // Only the first entry gets a mark.
        assert_eq!(q.push_batch_marked(&entries, &[a]).unwrap().len(), 2);
        assert!(q.remembers(a).unwrap());
        assert!(!q.remembers(b).unwrap());
    }
    // After a crash and restart the mark is still known, even once the entry itself is gone.
    let q = open(&path, 10, FullPolicy::Refuse);
    let ids: Vec<_> = q.peek_batch(10).unwrap().iter().map(|e| e.id).collect();
    q.ack(&ids).unwrap();
    assert!(q.remembers(a).unwrap());
    assert!(!q.remembers(a2).unwrap());
}

#[test]
fn a_full_queue_remembers_only_the_marks_of_what_it_stored() {
    use tmc_queue::delivery_mark;
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir.path().join("queue.db"), 1, FullPolicy::Refuse);
    let entry = NewEntry {
        topic: "t",
        time: 1,
        payload: b"x",
    };
    let (m1, m2) = (delivery_mark("t", b"x"), delivery_mark("t", b"y"));
    assert_eq!(
        q.push_batch_marked(&[entry, entry], &[m1, m2])
            .unwrap()
            .len(),
        1
    );
    assert!(q.remembers(m1).unwrap());
    assert!(!q.remembers(m2).unwrap());
}

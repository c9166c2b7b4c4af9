//! An idle site writes nothing to disk (SD-card wear on a Pi): once the readings are delivered, the real
//! `tmc-relay run` and `tmc-receiver run` leave every file of their state directories alone for a minute, and the
//! kernel counts no byte written by either process. The next reading is in both status snapshots again.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tmc_demo::{OutputSection, SiteOptions};

const WAIT: Duration = Duration::from_secs(240);

/// How long the site is watched while idle: thirty rounds of the status snapshot.
const IDLE_WINDOW: Duration = Duration::from_secs(60);

/// `write_bytes` of `/proc/<pid>/io`: bytes the process caused to be written to storage (dirtied page cache
/// included, so an unsynced write counts too). A tmpfs has no storage and counts nothing; hence also the files.
fn write_bytes(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes: "))
        .unwrap()
        .parse()
        .unwrap()
}

/// Every file under `dirs` with what any write changes: a replaced file gets a new inode, a file written in
/// place (SQLite's database and WAL) a new modification time or length.
fn files(dirs: &[PathBuf]) -> BTreeMap<PathBuf, (u64, SystemTime, u64)> {
    use std::os::unix::fs::MetadataExt;
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (u64, SystemTime, u64)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                walk(&path, out);
            } else {
                out.insert(path, (meta.ino(), meta.modified().unwrap(), meta.len()));
            }
        }
    }
    let mut out = BTreeMap::new();
    for dir in dirs {
        walk(dir, &mut out);
    }
    out
}

#[test]
fn an_idle_relay_and_receiver_write_nothing_and_the_next_reading_is_reported() {
    let h = common::Harness::on_disk(SiteOptions {
        sensors: 2,
        loss: 0.0,
        duty_cycle: 100.0,
        output: OutputSection {
            stdout: false,
            file: Some("readings.jsonl".into()),
        },
        backoff: 0.2,
        ..SiteOptions::default()
    });
    let _broker = h.broker();
    let receiver = h.receiver();
    let relay = h.relay();
    let pids = [("relay", relay.pid()), ("receiver", receiver.pid())];
    let written_at_start: Vec<u64> = pids.iter().map(|(_, pid)| write_bytes(*pid)).collect();

    // Some traffic first, so that every store and counter has been written at least once.
    assert!(h.sensors(5, "20ms").wait().unwrap().success());
    let delivered = |n: usize| {
        let relay = h.wait_for_relay(WAIT, |s| {
            s["service"]["link"]["readings_delivered"].as_u64() == Some(n as u64)
                && s["queue"]["len"].as_u64() == Some(0)
        });
        assert_eq!(relay["state"], "running", "{relay}");
        let receiver = h.wait_for_receiver(WAIT, |s| {
            s["snapshot"]["link"]["readings_stored"].as_u64() == Some(n as u64)
                && s["snapshot"]["outputs"].as_object().is_some_and(|outputs| {
                    outputs.values().all(|o| {
                        o["delivered"].as_u64() == Some(n as u64)
                            && o["backlog"].as_u64() == Some(0)
                    })
                })
        });
        assert_eq!(receiver["state"], "running", "{receiver}");
        (relay, receiver)
    };
    let (relay_before, receiver_before) = delivered(10);
    assert_eq!(h.output().len(), 10);

    let state_dirs = [
        h.dir.path().join("relay-state"),
        h.dir.path().join("receiver-state"),
        h.dir.path().join("air"),
    ];
    let before = files(&state_dirs);
    let written_before: Vec<u64> = pids.iter().map(|(_, pid)| write_bytes(*pid)).collect();
    // A measurement, not a synchronisation: nothing happens in this window, and that is what is checked.
    std::thread::sleep(IDLE_WINDOW);
    let written_after: Vec<u64> = pids.iter().map(|(_, pid)| write_bytes(*pid)).collect();
    let after = files(&state_dirs);

    for (i, (name, _)) in pids.iter().enumerate() {
        eprintln!(
            "{name}: {} bytes written while busy, {} in {IDLE_WINDOW:?} idle",
            written_before[i] - written_at_start[i],
            written_after[i] - written_before[i]
        );
        assert_eq!(
            written_after[i], written_before[i],
            "the idle {name} wrote to disk"
        );
    }
    let changed: Vec<&PathBuf> = after
        .iter()
        .filter(|(path, id)| before.get(*path) != Some(*id))
        .map(|(path, _)| path)
        .chain(before.keys().filter(|path| !after.contains_key(*path)))
        .collect();
    assert!(changed.is_empty(), "written while idle: {changed:?}");
    // Both still report (from the snapshots written before the window) the same counters.
    assert_eq!(h.relay_status()["service"], relay_before["service"]);
    assert_eq!(h.receiver_status()["snapshot"], receiver_before["snapshot"]);

    // The next readings change the counters, and both snapshots are rewritten with them.
    assert!(h.sensors_from(6, 1, "20ms").wait().unwrap().success());
    let (relay_after, receiver_after) = delivered(12);
    assert!(
        relay_after["service"]["changed_unix"].as_u64()
            >= relay_before["service"]["changed_unix"].as_u64()
    );
    assert!(
        receiver_after["snapshot"]["changed_unix"].as_u64()
            >= receiver_before["snapshot"]["changed_unix"].as_u64()
    );
    assert!(relay.terminate().unwrap().success());
    assert!(receiver.terminate().unwrap().success());
}

//! The services as systemd runs them (`Type=notify`, `WatchdogSec=`): READY=1 once they are up, watchdog pings
//! while their loops make progress, STOPPING=1 and exit status 0 on SIGTERM. The test plays systemd's part
//! with its own notify socket.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use tmc_demo::{Service, SiteOptions};

/// Datagrams received on `socket` until one contains `want` (bounded); returns all of them.
fn until(socket: &UnixDatagram, want: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(deadline - Instant::now()))
            .unwrap();
        let Ok(n) = socket.recv(&mut buf) else { break };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = text.lines().any(|l| l == want);
        seen.push(text);
        if done {
            return seen;
        }
    }
    panic!("no {want} within the bounded wait; got {seen:?}");
}

fn notify_socket(dir: &std::path::Path, name: &str) -> (UnixDatagram, String) {
    let path = dir.join(name);
    (
        UnixDatagram::bind(&path).unwrap(),
        path.display().to_string(),
    )
}

#[test]
fn relay_and_receiver_tell_systemd_they_are_ready_alive_and_stopping() {
    let h = common::Harness::new(SiteOptions {
        sensors: 1,
        output: "stdout = false\nfile = \"readings.jsonl\"\n".into(),
        ..SiteOptions::default()
    });
    let _broker = h.broker();
    for (program, config) in [
        ("tmc-receiver", h.files.receiver_config()),
        ("tmc-relay", h.files.relay_config()),
    ] {
        let (socket, path) = notify_socket(h.dir.path(), &format!("{program}.notify"));
        let config = config.display().to_string();
        let service = Service::start_with_env(
            program,
            &["run", "--config", &config],
            h.dir.path(),
            &[
                ("NOTIFY_SOCKET", path.as_str()),
                ("WATCHDOG_USEC", "2000000"),
            ],
        )
        .unwrap();
        let ready = until(&socket, "READY=1");
        assert!(ready.concat().contains("STATUS="), "{program}: {ready:?}");
        // WatchdogSec=2: pings come every second while the loops beat.
        until(&socket, "WATCHDOG=1");
        until(&socket, "WATCHDOG=1");
        let status = service.terminate().unwrap();
        until(&socket, "STOPPING=1");
        assert!(status.success(), "{program} exited with {status}");
    }
}

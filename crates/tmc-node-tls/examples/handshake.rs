//! Measures the node's TLS handshake against the real mosquitto on 127.0.0.1 (a throw-away site built
//! with tmc-pki): the time of `Transport::connect` (TCP + TLS 1.3 handshake with mutual auth) and the
//! stack the handshake needs.
//!
//! ```text
//! cargo run -p tmc-node-tls --features std --example handshake
//! cargo run -p tmc-node-tls --features std --example handshake --release
//! ```
//!
//! Stack: without `unsafe` the stack cannot be painted, so each probe is a child process that runs the
//! handshake on a 1 MiB thread *below* `depth` ballast frames; the deepest ballast that still works,
//! compared with the deepest ballast under which a trivial call works, gives the handshake's own stack
//! to within one ballast frame. The record buffers and the client state live on the heap here, so the
//! figure is the handshake's stack alone (TlsBuffers' 1.7 KB come on top wherever the firmware puts it).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tmc_node_tls::{OsRng, SoftwareKey, StdTcpSocket, TlsClient};
use tmc_sensor_core::node::Transport;

const THREAD_STACK: usize = 1 << 20;
const FRAME_PAD: usize = 512;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        std::process::exit(child(&args[2..]));
    }
    let s = common::Setup::new();
    let (key, cert) = s.issue_node("node1");
    let broker = s.start_broker();
    // What the child processes need, as files.
    let dir = s.dir.path().to_path_buf();
    std::fs::write(dir.join("node.key"), key.signing_key().to_bytes()).unwrap();
    std::fs::write(dir.join("node.der"), &cert).unwrap();
    std::fs::write(dir.join("ca.der"), s.ca_der()).unwrap();

    let mut client = common::client(s.port, &s.ca_der(), cert.clone(), key);
    let mut times = Vec::new();
    for _ in 0..20 {
        let mut transport = client.transport();
        let started = Instant::now();
        transport.connect().unwrap();
        times.push(started.elapsed());
        transport.close();
    }
    times.sort();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "handshake ({profile}, {} runs): min {:.1} ms, median {:.1} ms, max {:.1} ms",
        times.len(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    println!(
        "buffers: rx {} B, tx {} B (client certificate {} B, at most {})",
        tmc_node_tls::RX_BUFFER_LEN,
        tmc_node_tls::TX_BUFFER_LEN,
        cert.len(),
        tmc_node_tls::tls::MAX_CLIENT_CERT_LEN
    );

    let frame = frame_size();
    let trivial = deepest(&dir, s.port, "trivial");
    let handshake = deepest(&dir, s.port, "handshake");
    let stack = (trivial - handshake) * frame;
    println!(
        "handshake stack ({profile}): ~{:.1} KiB (ballast frame {frame} B: deepest ballast {trivial} frames \
         for a no-op, {handshake} for the handshake)",
        stack as f64 / 1024.0
    );
    drop(broker);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Binary search of the deepest ballast under which `what` still completes in a child process.
fn deepest(dir: &Path, port: u16, what: &str) -> usize {
    let (mut ok, mut bad) = (0usize, THREAD_STACK / FRAME_PAD);
    while bad - ok > 1 {
        let mid = (ok + bad) / 2;
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--child",
                &dir.display().to_string(),
                &port.to_string(),
                what,
                &mid.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if status.success() {
            ok = mid;
        } else {
            bad = mid;
        }
    }
    ok
}

#[inline(never)]
fn ballast(depth: usize, f: &mut dyn FnMut() -> bool, trace: &mut Vec<usize>) -> bool {
    let pad = std::hint::black_box([0u8; FRAME_PAD]);
    trace.push(std::ptr::addr_of!(pad) as usize);
    let result = if depth == 0 {
        f()
    } else {
        ballast(depth - 1, f, trace)
    };
    std::hint::black_box(&pad);
    result
}

/// Bytes of stack one ballast level takes (from the pads' addresses).
fn frame_size() -> usize {
    let mut trace = Vec::new();
    ballast(2, &mut || true, &mut trace);
    trace[0].abs_diff(trace[1])
}

fn child(args: &[String]) -> i32 {
    let dir = PathBuf::from(&args[0]);
    let port: u16 = args[1].parse().unwrap();
    let what = args[2].clone();
    let depth: usize = args[3].parse().unwrap();
    let secret: [u8; 32] = std::fs::read(dir.join("node.key"))
        .unwrap()
        .try_into()
        .unwrap();
    let key = SoftwareKey::from_bytes(&secret).unwrap();
    let cert = std::fs::read(dir.join("node.der")).unwrap();
    let ca = std::fs::read(dir.join("ca.der")).unwrap();
    let mut client: Box<TlsClient<'static, StdTcpSocket, SoftwareKey, OsRng>> =
        Box::new(common::client(port, &ca, cert, key));
    let thread = std::thread::Builder::new()
        .stack_size(THREAD_STACK)
        .spawn(move || {
            let mut trace = Vec::with_capacity(depth + 1);
            ballast(
                depth,
                &mut || {
                    if what == "trivial" {
                        return std::hint::black_box(true);
                    }
                    let mut transport = client.transport();
                    let ok = transport.connect().is_ok();
                    transport.close();
                    ok
                },
                &mut trace,
            )
        })
        .unwrap();
    match thread.join() {
        Ok(true) => 0,
        _ => 1,
    }
}

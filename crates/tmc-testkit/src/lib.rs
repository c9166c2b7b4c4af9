//! Helpers for TMC's integration tests.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// A command that runs one of the workspace's binaries.
///
/// When the tests themselves run under an emulator (`make test` runs the aarch64 build under
/// `qemu-aarch64-static`), a spawned aarch64 binary needs the emulator too, and the kernel may have
/// no binfmt handler for it. `TMC_TEST_RUNNER` (for example
/// `qemu-aarch64-static -L /usr/aarch64-linux-gnu`) is then put in front of the binary.
pub fn bin_command(path: &str) -> Command {
    match std::env::var("TMC_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap_or_default());
            cmd.args(words).arg(path);
            cmd
        }
        _ => Command::new(path),
    }
}

/// Runs `cmd` with `stdin` as its standard input and collects its output.
pub fn run_with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn the command under test");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .expect("write the command's stdin");
    child.wait_with_output().expect("wait for the command")
}

/// Asserts the command succeeded and returns its stdout.
pub fn success_stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

/// Asserts the command failed with status 1 and gave exactly one reason line on stderr (log lines,
/// such as warnings, may come before it), and returns that line.
pub fn failure_reason(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected failure; stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let text = String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8");
    let reasons: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("WARN"))
        .collect();
    assert_eq!(reasons.len(), 1, "one reason line expected: {text:?}");
    reasons[0].to_owned()
}

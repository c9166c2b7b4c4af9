//! Helpers for TMC's integration tests.

use std::process::Command;

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

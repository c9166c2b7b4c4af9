//! What every TMC binary does the same way.
//!
//! - Logs go to stderr as plain lines (journald adds its own timestamps), filtered by `RUST_LOG`
//!   (default `warn`, or `info` with `-v`).
//! - A failure is one line on stderr, `<program>: <reason>: <cause>...`, and exit status 1.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

/// Options every TMC binary takes (`#[command(flatten)]` into its top-level parser).
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Log at info level (default: warnings only; RUST_LOG overrides).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// Installs the stderr logger. `verbose` raises the default level from `warn` to `info`.
pub fn init_logging(verbose: bool) {
    let default = if verbose { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .try_init();
}

/// Runs a command's body and turns its error into one line on stderr and exit status 1.
pub fn exit_status(program: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{program}: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once. The workspace's typed errors put their cause in their
/// own text (`path: cause`) and return it as their source too; a TOML error spans several lines with a source
/// excerpt (`1 | name = "x"`, `| ^^^^`), which is dropped.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    let excerpt = |line: &str| {
        let rest = line
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        rest.starts_with('|') || line.chars().all(|c| c == '^' || c == ' ')
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !excerpt(l))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads all of stdin.
pub fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Wrapped {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn causes_appear_once_on_one_line() {
        let e = anyhow::Error::new(Wrapped {
            path: "/etc/tmc/keys.toml",
            source: std::io::Error::other("gone"),
        })
        .context("[envelope] keys");
        assert_eq!(one_line(&e), "[envelope] keys: /etc/tmc/keys.toml: gone");
        let toml = anyhow::Error::new(std::io::Error::other(
            "b.toml: TOML parse error at line 1, column 1\n  |\n1 | name=\"x\"\n  | ^^^^\nunknown field `name`\n",
        ));
        assert_eq!(
            one_line(&toml),
            "b.toml: TOML parse error at line 1, column 1 unknown field `name`"
        );
    }

    #[test]
    fn error_chain_is_one_line() {
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&err), "outer: inner");
    }
}

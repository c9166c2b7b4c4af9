use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use tmc_envelope::legacy::{self, LegacyKeys, LEGACY_TOPIC};
use tmc_envelope::replay::DEFAULT_WINDOW;
use tmc_envelope::{KeyRing, Opened, Opener, ReplayGuard};

use crate::line::{Origin, ReadingLine};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    Secure,
    /// The existing deployment's tokens: insecure (fixed key and IV, no replay protection).
    Legacy,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Key ring file (mode 0600). Not needed with --profile legacy.
    #[arg(long)]
    keys: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Profile::Secure)]
    profile: Profile,
    /// Replay state file: read before and written after decoding, so a token is accepted once
    /// across runs. Without it, replays are caught only within this run.
    #[arg(long)]
    state: Option<PathBuf>,
    /// How far behind the newest counter of a sender a token may still arrive (0–63).
    #[arg(long, default_value_t = DEFAULT_WINDOW)]
    window: u32,
    /// The token, as text (eyJ...) or hex. Without it, stdin holds one token per line.
    token: Option<String>,
}

fn print_opened(opened: &Opened) {
    for (index, r) in opened.readings.iter().enumerate() {
        let line = ReadingLine {
            topic: &r.topic,
            time: Some(r.time),
            data: &r.data,
            origin: Origin::Secure {
                sender: opened.sender,
                counter: opened.counter,
                index: u32::try_from(index).unwrap_or(u32::MAX),
                kid: opened.kid,
                encoding: opened.encoding,
            },
        };
        println!("{}", line.to_json());
    }
}

fn print_legacy(plaintext: &[u8]) {
    let line = ReadingLine {
        topic: LEGACY_TOPIC,
        time: None,
        data: plaintext,
        origin: Origin::Legacy { node: None },
    };
    println!("{}", line.to_json());
}

fn inputs(token: Option<String>) -> anyhow::Result<Vec<String>> {
    match token {
        Some(t) => Ok(vec![t]),
        None => {
            let stdin = tmc_cli::read_stdin().context("reading stdin")?;
            let text = String::from_utf8(stdin)
                .context("stdin is not text: give tokens as text or hex")?;
            Ok(text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect())
        }
    }
}

pub fn run(args: DecodeArgs) -> anyhow::Result<()> {
    let tokens = inputs(args.token)?;
    if tokens.is_empty() {
        bail!("no token given (argument or stdin)");
    }
    let mut opener = match args.profile {
        Profile::Legacy => None,
        Profile::Secure => {
            let keys = args
                .keys
                .as_deref()
                .context("--keys is required for the secure profile")?;
            let ring = KeyRing::load(keys)?;
            let guard = match &args.state {
                Some(path) => ReplayGuard::load_or_new(path, args.window)?,
                None => ReplayGuard::new(args.window)?,
            };
            Some(Opener::new(ring, guard))
        }
    };
    let many = tokens.len() > 1;
    let mut refused = 0usize;
    for (index, token) in tokens.iter().enumerate() {
        let result = tmc_envelope::parse_printed(token)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| match opener.as_mut() {
                Some(opener) => opener
                    .open(&bytes)
                    .map(|o| print_opened(&o))
                    .map_err(Into::into),
                None => legacy::open(&LegacyKeys::default(), &bytes)
                    .map(|p| print_legacy(&p))
                    .map_err(Into::into),
            });
        if let Err(err) = result {
            if !many {
                return Err(err);
            }
            refused += 1;
            let which = if many {
                format!("token {}: ", index + 1)
            } else {
                String::new()
            };
            eprintln!("tmc-receiver: {which}{}", tmc_cli::one_line(&err));
        }
    }
    if let (Some(opener), Some(path)) = (&opener, &args.state) {
        opener.replay_state().save(path)?;
    }
    if refused > 0 {
        bail!("{refused} of {} token(s) refused", tokens.len());
    }
    Ok(())
}

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use tmc_envelope::legacy::{self, LegacyKeys};
use tmc_envelope::{CounterFile, Encoding, KeyRing, Reading, Sealer};

/// Which token format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// AES-128-CTR + HS256 with key ids, sender, counter and replay protection.
    Secure,
    /// The existing deployment's tokens (fixed key and IV): insecure, for migration only.
    Legacy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    Text,
    Packed,
}

impl From<EncodingArg> for Encoding {
    fn from(e: EncodingArg) -> Self {
        match e {
            EncodingArg::Text => Encoding::Text,
            EncodingArg::Packed => Encoding::Packed,
        }
    }
}

#[derive(Debug, Args)]
pub struct SealArgs {
    /// Key ring file (mode 0600). Not needed with --profile legacy.
    #[arg(long)]
    keys: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = EncodingArg::Text)]
    encoding: EncodingArg,
    #[arg(long, value_enum, default_value_t = Profile::Secure)]
    profile: Profile,
    /// Reading payload; repeat to seal a batch. Without it, stdin is one reading.
    #[arg(long = "data")]
    data: Vec<String>,
    /// Source topic or sensor id of the readings.
    #[arg(long, default_value = "/esp8266")]
    topic: String,
    /// Time of the readings and of the token, Unix seconds (default: now).
    #[arg(long)]
    time: Option<u64>,
    /// This relay's sender id (unique per relay sharing a key ring: it is part of the AES IV).
    #[arg(long, default_value_t = 10)]
    sender: u32,
    /// Directory for the message counter file, which must survive restarts
    /// (default: $TMC_STATE_DIR or /var/lib/tmc).
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

fn now() -> anyhow::Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock is before 1970")?
        .as_secs())
}

fn payloads(args: &SealArgs) -> anyhow::Result<Vec<Vec<u8>>> {
    if args.data.is_empty() {
        let input = tmc_cli::read_stdin().context("reading stdin")?;
        Ok(vec![input])
    } else {
        Ok(args.data.iter().map(|d| d.as_bytes().to_vec()).collect())
    }
}

pub(crate) fn state_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| std::env::var_os("TMC_STATE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/lib/tmc"))
}

pub fn run(args: SealArgs) -> anyhow::Result<()> {
    let payloads = payloads(&args)?;
    match args.profile {
        Profile::Legacy => {
            if args.encoding == EncodingArg::Packed {
                bail!("the legacy profile has only the text encoding");
            }
            let [payload] = payloads.as_slice() else {
                bail!("the legacy profile carries one reading per token");
            };
            let frame = legacy::seal(&LegacyKeys::default(), payload)?;
            // The NUL that ends the frame on air is not printed.
            let text =
                String::from_utf8_lossy(frame.strip_suffix(&[0]).unwrap_or(&frame)).into_owned();
            println!("{text}");
        }
        Profile::Secure => {
            let keys = args
                .keys
                .as_deref()
                .context("--keys is required (create one with `tmc-relay keys new`)")?;
            let ring = KeyRing::load(keys)?;
            let time = match args.time {
                Some(t) => t,
                None => now()?,
            };
            let readings: Vec<Reading> = payloads
                .into_iter()
                .map(|p| Reading::new(args.topic.clone(), time, p))
                .collect();
            let dir = state_dir(args.state_dir);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating state directory {}", dir.display()))?;
            let counter_path = dir.join(format!("relay-counter-{}", args.sender));
            // Block 1: a one-shot command persists every counter it uses.
            let counter = CounterFile::open(&counter_path, args.sender, 1)?;
            let mut sealer = Sealer::new(&ring, args.sender, counter);
            let sealed = sealer.seal(&readings, time, args.encoding.into())?;
            tracing::info!(
                bytes = sealed.bytes.len(),
                encoding = %sealed.encoding,
                kid = sealed.kid,
                sender = sealed.sender,
                counter = sealed.counter,
                "sealed"
            );
            println!("{}", tmc_envelope::printed(&sealed.bytes));
        }
    }
    Ok(())
}

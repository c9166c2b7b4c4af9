use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use tmc_board::BoardPreset;
use tmc_envelope::{Encoding, KeyRing, MemoryCounter, Reading, Sealer};
use tmc_link::{airtime_report, Bandwidth, CodingRate, DutyCycle, ModemConfig, SpreadingFactor};

#[derive(Debug, Args)]
pub struct AirtimeArgs {
    /// Data bytes after the 4-byte RadioHead header (repeatable; default 20, 64 and 251).
    #[arg(long = "bytes")]
    bytes: Vec<usize>,
    /// Also size a sealed token of N readings of --reading-bytes each, batched in one token.
    #[arg(long)]
    readings: Option<usize>,
    /// Bytes per reading for --readings.
    #[arg(long, default_value_t = 16)]
    reading_bytes: usize,
    /// Token encoding for --readings.
    #[arg(long, value_enum, default_value_t = crate::seal_cmd::EncodingArg::Packed)]
    encoding: crate::seal_cmd::EncodingArg,
    /// Take modem settings and duty cycle from a board preset (board-config/*.toml).
    #[arg(long, conflicts_with_all = ["sf", "bw", "cr", "duty_cycle"])]
    board: Option<PathBuf>,
    /// Spreading factor, 7–12.
    #[arg(long, default_value_t = 7)]
    sf: u8,
    /// Bandwidth in kHz (7.8 … 500).
    #[arg(long, default_value_t = 125.0)]
    bw: f64,
    /// Coding rate denominator: 5 for 4/5 … 8 for 4/8.
    #[arg(long, default_value_t = 5)]
    cr: u8,
    /// Duty cycle in percent (EU868 868.0–868.6 MHz: 1).
    #[arg(long, default_value_t = 1.0)]
    duty_cycle: f64,
}

fn modem_and_duty_cycle(args: &AirtimeArgs) -> anyhow::Result<(ModemConfig, DutyCycle)> {
    if let Some(path) = &args.board {
        let preset = BoardPreset::from_file(path)?;
        return Ok((preset.radio_config().modem, preset.radio.duty_cycle()));
    }
    let modem = ModemConfig {
        spreading_factor: SpreadingFactor::from_value(args.sf)
            .with_context(|| format!("--sf {}: spreading factor must be 7–12", args.sf))?,
        bandwidth: Bandwidth::from_khz(args.bw)
            .with_context(|| format!("--bw {}: not an SX1276 bandwidth in kHz", args.bw))?,
        coding_rate: CodingRate::from_denominator(args.cr)
            .with_context(|| format!("--cr {}: coding rate denominator must be 5–8", args.cr))?,
        ..ModemConfig::RADIOHEAD_DEFAULT
    };
    let duty = DutyCycle::from_percent(args.duty_cycle).with_context(|| {
        format!(
            "--duty-cycle {}: must be above 0 and at most 100",
            args.duty_cycle
        )
    })?;
    Ok((modem, duty))
}

/// On-air size of a token carrying `n` readings (with a throwaway key: the size does not depend on it).
fn token_size(n: usize, reading_bytes: usize, encoding: Encoding) -> anyhow::Result<usize> {
    if n == 0 {
        bail!("--readings must be at least 1");
    }
    let ring = KeyRing::from_secrets(&[(1, [0; 32])]).context("key ring")?;
    let sealer = Sealer::new(&ring, 10, MemoryCounter::starting_at(10, 1000));
    let now = 1_763_766_000;
    let readings: Vec<Reading> = (0..n)
        .map(|i| {
            Reading::new(
                "/esp8266",
                now - 60 * (n - 1 - i) as u64,
                vec![0; reading_bytes],
            )
        })
        .collect();
    Ok(sealer.on_air_size(&readings, now, encoding))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

pub fn run(args: AirtimeArgs) -> anyhow::Result<()> {
    let (modem, duty) = modem_and_duty_cycle(&args)?;
    let mut sizes: Vec<(String, usize)> = if args.bytes.is_empty() {
        [20, 64, 251].iter().map(|&b| (String::new(), b)).collect()
    } else {
        args.bytes.iter().map(|&b| (String::new(), b)).collect()
    };
    if let Some(n) = args.readings {
        let encoding: Encoding = args.encoding.into();
        let size = token_size(n, args.reading_bytes, encoding)?;
        sizes.push((
            format!("token: {n}×{}B {encoding}", args.reading_bytes),
            size,
        ));
    }
    println!(
        "modem {modem}, symbol {}, duty cycle {duty}: {:.1} s on air per hour",
        ms(modem.symbol_time()),
        duty.budget(Duration::from_secs(3600)).as_secs_f64()
    );
    println!(
        "{:>10}  {:>12}  {:>13}  {:>11}  {:>12}  what",
        "data bytes", "LoRa payload", "time on air", "frames/hour", "ACK on air"
    );
    for (label, bytes) in sizes {
        let r = airtime_report(bytes, &modem, duty)?;
        println!(
            "{:>10}  {:>12}  {:>13}  {:>11}  {:>12}  {label}",
            r.data_len,
            r.phy_payload_len,
            ms(r.time_on_air),
            r.frames_per_hour,
            ms(r.ack_time_on_air)
        );
    }
    Ok(())
}

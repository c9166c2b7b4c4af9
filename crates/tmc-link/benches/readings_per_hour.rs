//! Readings per hour that one relay delivers to the gateway under the EU868 1 % duty cycle, measured on the
//! simulator.
//!
//! ```text
//! cargo bench -p tmc-link --bench readings_per_hour
//! ```
//!
//! # What it measures
//! The real link runs on the in-process, virtual-time LoRa simulator (`tmc_radio_sim::SimChannel`): the
//! relay (node 10) is a [`LinkSender`] whose datagram layer carries the 1 % limiter over the regulatory
//! one-hour window (36 s of air), the gateway (node 1) a [`LinkReceiver`] that opens every token and then
//! `confirm`s it (the ACK). Both use the RadioHead defaults at 868.0 MHz: SF7, BW 125 kHz, CR 4/5, 8-symbol
//! preamble, CRC on. The relay has an unlimited backlog of 35-byte sensor readings,
//! `{"id":"sensor1","seq":17,"adc":512}`, from sensor1..sensor5 in turn on `sensors/<id>/reading` (each
//! sensor's seq counts up from 17, adc has three digits), and sends for one simulated hour. A reading
//! counts once the gateway acknowledged the token carrying it by 3600 s of virtual time. A run takes well
//! under a second of real time.
//!
//! Modes:
//! - **packed, batched** (TMC): the relay's rule. The oldest readings in order, up to 8, keeping the longest
//!   prefix whose packed token fits one frame ([`MAX_TOKEN_LEN`]), sealed by [`Sealer`].
//! - **packed, 1/token**: the same token format, one reading per token.
//! - **text, batched**: TMC's ASCII JWT encoding, batched like the first. With these topics one reading
//!   alone already makes a token larger than a frame: the row says so (the relay drops such readings).
//! - **legacy ASCII**: the existing deployment, one `tmc_envelope::legacy` token (ASCII JWT + NUL) per
//!   reading and frame.
//!
//! Every mode runs on a clean channel and again with 10 % loss (per packet and receiver: data frames and
//! ACKs alike), where retries spend the same budget.
//!
//! # What the numbers mean
//! - `B/frame`: token bytes per data frame (the RadioHead payload; 4 header bytes more go on air).
//! - `rdg/frame`: readings per delivered token. Consecutive readings come from different sensors, so a
//!   batched token names each of their topics once.
//! - `frames/h`: tokens the gateway acknowledged in the hour; `tx` counts every data frame sent, retries
//!   included.
//! - `readings/h`: readings acknowledged in the hour: the relay's sustainable throughput, since the
//!   limiter's window slides (whatever the relay sent in the last hour bounds what it may send now).
//! - `ms/frame`: time on air of one data frame (datasheet formula).
//! - `air s/36`: the relay's time on air in the hour, of the 36 s budget. The gateway's ACKs count against the
//!   gateway's own budget (it has the same limiter), not the relay's.
//! - `formula`: `tmc_radio::airtime_report` for the mode's frame size: frames per hour = 36 s / time on air
//!   of one frame (first attempts only), and that times readings per frame. On the clean channel the
//!   simulation agrees with it; with loss it falls short by the retries.
//!
//! The run ends with the throughput of TMC's packed, batched tokens relative to the legacy ASCII tokens.
//! Without `--bench` among its arguments (as when `cargo test --all-targets` runs it), it does nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tmc_envelope::legacy::{self, LegacyKeys};
use tmc_envelope::{
    Encoding, KeyRing, MemoryCounter, OpenError, Opener, Reading, ReplayError, ReplayGuard, Sealer,
    MAX_TOKEN_LEN,
};
use tmc_link::{LinkReceiver, LinkSender, ReceiverStats, SendError, SendPolicy};
use tmc_radio::{
    airtime_report, time_on_air, DutyCycle, DutyCycleLimiter, ModemConfig, RadioConfig,
    ReliableDatagram,
};
use tmc_radio_sim::{sim_link, ChannelConfig, SimChannel, SimChip, SimClock};

const GATEWAY: u8 = 1;
const RELAY: u8 = 10;
const FREQUENCY_HZ: u32 = 868_000_000;
const HOUR: Duration = Duration::from_secs(3600);
/// Unix time at virtual time zero.
const START_UNIX: u64 = 1_763_766_000;
const SENSORS: u64 = 5;
/// The relay's `max_batch`.
const MAX_BATCH: usize = 8;
/// A relay that has run for a while: the counter stays a two-byte varint (and four decimal digits) all hour.
const FIRST_COUNTER: u32 = 1000;
/// RadioHead's TO, FROM, ID, FLAGS in front of every token.
const RADIO_HEADER: usize = 4;
const LOSSES: [f64; 2] = [0.0, 0.1];

type Radio = tmc_radio_sim::SimSx1276;

fn one_percent() -> DutyCycleLimiter {
    DutyCycleLimiter::new(DutyCycle::from_percent(1.0).unwrap())
}

fn reliable(chip: SimChip, address: u8, seed: u64) -> ReliableDatagram<Radio, SimClock> {
    sim_link(
        chip,
        RadioConfig::radiohead_default(FREQUENCY_HZ),
        address,
        seed,
        Some(one_percent()),
    )
    .unwrap()
}

/// Reading `i` of the unlimited backlog (topic, payload): sensor1..sensor5 in turn, each with its own
/// increasing seq.
fn backlog(i: u64) -> (String, Vec<u8>) {
    let id = format!("sensor{}", i % SENSORS + 1);
    let seq = 17 + i / SENSORS;
    let adc = 100 + (412 + i * 37) % 900;
    let payload = format!(r#"{{"id":"{id}","seq":{seq},"adc":{adc}}}"#);
    (format!("sensors/{id}/reading"), payload.into_bytes())
}

#[derive(Clone, Copy)]
struct Mode {
    name: &'static str,
    /// `None`: the legacy token, one reading each.
    encoding: Option<Encoding>,
    max_batch: usize,
}

const MODES: [Mode; 4] = [
    Mode {
        name: "packed, batched (TMC)",
        encoding: Some(Encoding::Packed),
        max_batch: MAX_BATCH,
    },
    Mode {
        name: "packed, 1/token",
        encoding: Some(Encoding::Packed),
        max_batch: 1,
    },
    Mode {
        name: "text, batched",
        encoding: Some(Encoding::Text),
        max_batch: MAX_BATCH,
    },
    Mode {
        name: "legacy ASCII, 1/frame",
        encoding: None,
        max_batch: 1,
    },
];

/// Turns the backlog into tokens as the mode does.
enum Tokens {
    Envelope {
        sealer: Sealer<MemoryCounter>,
        encoding: Encoding,
        max_batch: usize,
    },
    Legacy(LegacyKeys),
}

impl Tokens {
    /// The next token for the backlog from reading `head` on, and the readings it carries; or the size of the
    /// token that one reading alone would make, when even that does not fit a frame.
    fn next(&mut self, head: u64, iat: u64) -> Result<(Vec<u8>, u64), usize> {
        match self {
            Tokens::Legacy(keys) => Ok((legacy::seal(keys, &backlog(head).1).unwrap(), 1)),
            Tokens::Envelope {
                sealer,
                encoding,
                max_batch,
            } => {
                // The relay's rule: the oldest readings in order, the longest prefix that fits one frame.
                let mut readings: Vec<Reading> = (head..head + *max_batch as u64)
                    .map(|i| {
                        let (topic, data) = backlog(i);
                        Reading::new(topic, iat, data)
                    })
                    .collect();
                while readings.len() > 1
                    && sealer.on_air_size(&readings, iat, *encoding) > MAX_TOKEN_LEN
                {
                    readings.pop();
                }
                let size = sealer.on_air_size(&readings, iat, *encoding);
                if size > MAX_TOKEN_LEN {
                    return Err(size);
                }
                let sealed = sealer.seal(&readings, iat, *encoding).unwrap();
                Ok((sealed.bytes, readings.len() as u64))
            }
        }
    }
}

/// How the gateway checks what it receives.
enum Check {
    Envelope(Opener),
    /// Legacy tokens carry no counter: a copy resent under a new ID is told by its payload (each is unique here).
    Legacy(LegacyKeys, std::collections::HashSet<Vec<u8>>),
}

impl Check {
    /// Readings in a new token; 0 for a token the replay guard has seen (it is confirmed all the same).
    fn readings(&mut self, token: &[u8]) -> u64 {
        match self {
            Check::Envelope(opener) => match opener.open(token) {
                Ok(opened) => opened.readings.len() as u64,
                Err(OpenError::Replay(ReplayError::Replayed { .. })) => 0,
                Err(e) => panic!("gateway refused a token: {e}"),
            },
            Check::Legacy(keys, seen) => {
                let payload = legacy::open(keys, token).unwrap();
                assert!(payload.starts_with(br#"{"id":"sensor"#));
                u64::from(seen.insert(payload))
            }
        }
    }
}

struct Outcome {
    mode: Mode,
    loss: f64,
    tokens: u64,
    readings: u64,
    token_bytes: u64,
    /// Token size → tokens of that size.
    sizes: BTreeMap<usize, u64>,
    /// Data frames sent, retries included.
    frames_sent: u64,
    airtime: Duration,
    budget: Duration,
    gateway_readings: u64,
    gateway: ReceiverStats,
    real: Duration,
    /// Size of the token one reading alone would make, when it does not fit a frame (nothing was sent).
    unfit: Option<usize>,
}

impl Outcome {
    fn bytes_per_frame(&self) -> f64 {
        self.token_bytes as f64 / self.tokens as f64
    }

    fn readings_per_frame(&self) -> f64 {
        self.readings as f64 / self.tokens as f64
    }

    /// The most common token size.
    fn typical_size(&self) -> usize {
        self.sizes
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(size, _)| *size)
            .unwrap()
    }
}

fn run(mode: Mode, loss: f64) -> Outcome {
    let started = Instant::now();
    let channel = SimChannel::new(ChannelConfig {
        seed: 868,
        loss,
        ..ChannelConfig::default()
    });
    // Every participant exists before any thread waits.
    let gateway_chip = channel.add_chip();
    let me = channel.participant();
    let relay_chip = channel.add_chip_for(&me);

    let ring = KeyRing::generate(1).unwrap();
    let (mut tokens, mut check) = match mode.encoding {
        Some(encoding) => (
            Tokens::Envelope {
                sealer: Sealer::new(
                    &ring,
                    u32::from(RELAY),
                    MemoryCounter::starting_at(u32::from(RELAY), FIRST_COUNTER),
                ),
                encoding,
                max_batch: mode.max_batch,
            },
            Check::Envelope(Opener::new(ring, ReplayGuard::default())),
        ),
        None => (
            Tokens::Legacy(LegacyKeys::default()),
            Check::Legacy(LegacyKeys::default(), Default::default()),
        ),
    };

    let stop = Arc::new(AtomicBool::new(false));
    let gateway = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut rx = LinkReceiver::new(reliable(gateway_chip, GATEWAY, 1)).with_peers(&[RELAY]);
            let mut readings = 0;
            while !stop.load(Ordering::SeqCst) {
                if let Some(r) = rx.receive(Duration::from_secs(10)).unwrap() {
                    readings += check.readings(&r.token);
                    rx.confirm(&r).unwrap();
                }
            }
            (readings, rx.stats())
        })
    };

    let link = reliable(relay_chip, RELAY, 2);
    let sleeper = me.clone();
    let time = channel.clone();
    let mut tx = LinkSender::new(
        link,
        GATEWAY,
        SendPolicy::default(),
        move |d| sleeper.sleep(d),
        3,
    )
    .with_stop(move || time.now() >= HOUR);

    let (mut head, mut delivered, mut token_bytes) = (0u64, 0u64, 0u64);
    let mut sizes = BTreeMap::new();
    let mut unfit = None;
    'hour: while channel.now() < HOUR {
        let iat = START_UNIX + channel.now().as_secs();
        let (token, n) = match tokens.next(head, iat) {
            Ok(next) => next,
            Err(size) => {
                // The relay drops a reading that cannot fit any frame: this mode carries none.
                unfit = Some(size);
                break;
            }
        };
        loop {
            match tx.send(&token) {
                Ok(_) => {
                    if channel.now() <= HOUR {
                        head += n;
                        delivered += 1;
                        token_bytes += token.len() as u64;
                        *sizes.entry(token.len()).or_insert(0) += 1;
                    }
                    break;
                }
                // The relay keeps the token staged and sends it again, byte for byte.
                Err(SendError::Silent { .. }) => continue,
                // The hour ended during a duty-cycle wait or a back-off.
                Err(SendError::Stopped) => break 'hour,
                Err(e) => panic!("{}: {e}", mode.name),
            }
        }
    }
    let limiter = tx.link().datagram().limiter().unwrap();
    let (airtime, budget) = (limiter.used(HOUR), limiter.budget());
    let frames_sent = tx.link().datagram().stats().sent;
    assert!(airtime <= budget);

    drop(tx);
    drop(me);
    stop.store(true, Ordering::SeqCst);
    let (gateway_readings, gateway_stats) = gateway.join().unwrap();
    // Everything acknowledged in the hour reached the gateway intact (it may have stored one more token,
    // whose ACK came after the hour).
    assert!(gateway_readings >= head, "{}", mode.name);
    assert!(gateway_readings <= head + MAX_BATCH as u64, "{}", mode.name);
    Outcome {
        mode,
        loss,
        tokens: delivered,
        readings: head,
        token_bytes,
        sizes,
        frames_sent,
        airtime,
        budget,
        gateway_readings,
        gateway: gateway_stats,
        real: started.elapsed(),
        unfit,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let modem = ModemConfig::RADIOHEAD_DEFAULT;
    println!(
        "readings per hour, one relay, EU868 868.0 MHz, 1 % duty cycle (36 s of air per hour), SF{} BW125 CR4/5, \
         RadioHead defaults; sensor reading {} bytes: {}",
        modem.spreading_factor.value(),
        backlog(0).1.len(),
        String::from_utf8(backlog(0).1).unwrap(),
    );
    println!();
    println!(
        "{:<22} {:>5} {:>8} {:>9} {:>8} {:>10} {:>5} {:>9} {:>8} | {:>8} {:>10}",
        "mode",
        "loss",
        "B/frame",
        "rdg/frame",
        "frames/h",
        "readings/h",
        "tx",
        "air s/36",
        "ms/frame",
        "formula",
        "readings/h",
    );
    let mut outcomes = Vec::new();
    for loss in LOSSES {
        for mode in MODES {
            let o = run(mode, loss);
            if let Some(size) = o.unfit {
                println!(
                    "{:<22} {:>4.0}%  one reading alone makes a {size}-byte token > {MAX_TOKEN_LEN}: no frame carries it \
                     (the relay drops such readings), 0 readings/h",
                    o.mode.name,
                    o.loss * 100.0,
                );
                outcomes.push(o);
                continue;
            }
            let size = o.typical_size();
            let report = airtime_report(size, &modem, DutyCycle::ONE_PERCENT).unwrap();
            let toa = time_on_air(&modem, size + RADIO_HEADER);
            assert_eq!(report.time_on_air, toa);
            println!(
                "{:<22} {:>4.0}% {:>8.1} {:>9.2} {:>8} {:>10} {:>5} {:>9.2} {:>8.1} | {:>8} {:>10.0}",
                o.mode.name,
                o.loss * 100.0,
                o.bytes_per_frame(),
                o.readings_per_frame(),
                o.tokens,
                o.readings,
                o.frames_sent,
                o.airtime.as_secs_f64(),
                toa.as_secs_f64() * 1000.0,
                report.frames_per_hour,
                report.frames_per_hour as f64 * o.readings_per_frame(),
            );
            outcomes.push(o);
        }
        println!();
    }

    for loss in LOSSES {
        let find = |name: &str| {
            outcomes
                .iter()
                .find(|o| o.loss == loss && o.mode.name == name)
                .unwrap()
        };
        let tmc = find(MODES[0].name);
        let old = find(MODES[3].name);
        println!(
            "{:>3.0}% loss: TMC packed+batched / legacy ASCII = {} / {} readings/h = {:.2}x",
            loss * 100.0,
            tmc.readings,
            old.readings,
            tmc.readings as f64 / old.readings as f64,
        );
    }
    println!();
    println!(
        "B/frame: token bytes (+{RADIO_HEADER} RadioHead header on air); tx: data frames sent incl. retries; \
         air s/36: relay time on air in the hour of the {} s budget; formula: tmc_radio::airtime_report frames/h \
         for the most common frame size (first attempts only), times rdg/frame.",
        outcomes[0].budget.as_secs()
    );
    let opened: Vec<String> = outcomes
        .iter()
        .filter(|o| o.unfit.is_none())
        .map(|o| {
            format!(
                "{} ({} link retries)",
                o.gateway_readings, o.gateway.retries
            )
        })
        .collect();
    println!(
        "gateway opened and confirmed, in table order (includes a token in flight at 3600 s): {}",
        opened.join(", ")
    );
    let real: Duration = outcomes.iter().map(|o| o.real).sum();
    println!(
        "{} simulated hours in {:.2} s of real time",
        outcomes.len(),
        real.as_secs_f64()
    );
}

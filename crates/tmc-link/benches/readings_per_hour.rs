//! Readings per hour that one relay delivers to the gateway under the EU868 1 % duty cycle, and how old a
//! reading is when the gateway outputs it, measured on the simulator.
//!
//! ```text
//! cargo bench -p tmc-link --bench readings_per_hour
//! ```
//!
//! # What it measures
//! The real link runs on the in-process, virtual-time LoRa simulator (`tmc_radio_sim::SimChannel`): the
//! relay (node 10) is a [`LinkSender`] whose datagram layer carries the 1 % limiter over the regulatory
//! one-hour window (36 s of air), the gateway (node 1) a [`LinkReceiver`] that opens every token and then
//! `confirm`s it (the ACK). Both use the RadioHead defaults at 868.0 MHz (SF7, BW 125 kHz, CR 4/5, 8-symbol
//! preamble, CRC on), and SF9 and SF12 in the second table. Five sensors publish the firmware's 35-byte
//! reading, `{"id":"sensor1","seq":17,"adc":512}`, in turn on `sensors/<id>/reading` (each sensor's seq
//! counts up from 17, adc has three digits). A reading counts once the gateway acknowledged the token
//! carrying it within the hour. A run takes well under a second of real time.
//!
//! The relay works as `tmc-relay` does: it waits until the budget allows a whole frame, then chooses the
//! token's readings from the oldest 256 queued ([`Sealer::choose`]), seals and sends them, and sends the
//! same token again after a silent round.
//!
//! Modes:
//! - **TMC, by topic**: the relay's rule, up to 64 readings per token, packed; the batch layout is
//!   version 2 (keys once per topic, values as deltas) whenever that is shorter.
//! - **oldest 8 in order**: the rule before: the oldest readings, up to 8, the longest prefix that fits.
//! - **packed, 1/token**: one reading per token.
//! - **text, by topic**: TMC's ASCII JWT encoding, chosen like the first.
//! - **legacy ASCII**: the existing deployment, one `tmc_envelope::legacy` token (ASCII JWT + NUL) per
//!   reading and frame.
//!
//! Every mode runs on a clean channel and again with 10 % loss (per packet and receiver: data frames and
//! ACKs alike), where retries spend the same budget.
//!
//! # What the numbers mean
//! - `B/frame`: token bytes per data frame (the RadioHead payload; 4 header bytes more go on air).
//! - `rdg/frame`: readings per delivered token.
//! - `frames/h`: tokens the gateway acknowledged in the hour; `tx` counts every data frame sent, retries
//!   included.
//! - `readings/h`: readings acknowledged in the hour with an unlimited backlog: the relay's sustainable
//!   throughput, since the limiter's window slides (whatever the relay sent in the last hour bounds what it
//!   may send now).
//! - `air s/36`: the relay's time on air in the hour, of the 36 s budget.
//! - `x legacy`: readings/h over the legacy row's at the same loss and spreading factor.
//!
//! The latency table feeds the relay at the goal load, 10 times the legacy deployment's readings per hour
//! at SF7 (the five sensors publish in turn at a fixed interval), for three simulated hours, and reports the
//! age of the readings output in the third hour (output time − publish time): median, 99th percentile and
//! maximum.
//!
//! Without `--bench` among its arguments (as when `cargo test --all-targets` runs it), it does nothing.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tmc_envelope::legacy::{self, LegacyKeys};
use tmc_envelope::{
    Encoding, KeyRing, MemoryCounter, OpenError, Opener, Reading, ReplayError, ReplayGuard, Sealer,
    MAX_TOKEN_LEN,
};
use tmc_link::{LinkReceiver, LinkSender, SendError, SendPolicy, SpreadingFactor};
use tmc_radio::{DutyCycle, DutyCycleLimiter, ModemConfig, RadioConfig, ReliableDatagram};
use tmc_radio_sim::{sim_link, ChannelConfig, SimChannel, SimChip, SimClock};

const GATEWAY: u8 = 1;
const RELAY: u8 = 10;
const FREQUENCY_HZ: u32 = 868_000_000;
const HOUR: Duration = Duration::from_secs(3600);
/// Unix time at virtual time zero.
const START_UNIX: u64 = 1_763_766_000;
const SENSORS: u64 = 5;
/// The relay's candidates for one token (`tmc-relay`'s `CANDIDATES`).
const CANDIDATES: usize = 256;
/// A relay that has run for a while: the counter stays a two-byte varint (and four decimal digits) all hour.
const FIRST_COUNTER: u32 = 1000;
const LOSSES: [f64; 2] = [0.0, 0.1];
/// The goal: this many times the legacy deployment's readings per hour.
const GOAL: u64 = 10;

type Radio = tmc_radio_sim::SimSx1276;

fn radio_config(sf: u8) -> RadioConfig {
    RadioConfig {
        modem: ModemConfig {
            spreading_factor: SpreadingFactor::from_value(sf).unwrap(),
            ..ModemConfig::RADIOHEAD_DEFAULT
        },
        ..RadioConfig::radiohead_default(FREQUENCY_HZ)
    }
}

fn reliable(chip: SimChip, address: u8, seed: u64, sf: u8) -> ReliableDatagram<Radio, SimClock> {
    let limiter = DutyCycleLimiter::new(DutyCycle::from_percent(1.0).unwrap());
    sim_link(chip, radio_config(sf), address, seed, Some(limiter)).unwrap()
}

/// Reading `i` in publishing order (topic, payload): sensor1..sensor5 in turn, each with its own
/// increasing seq.
fn published(i: u64) -> (String, Vec<u8>) {
    let id = format!("sensor{}", i % SENSORS + 1);
    let seq = 17 + i / SENSORS;
    let adc = 100 + (412 + i * 37) % 900;
    let payload = format!(r#"{{"id":"{id}","seq":{seq},"adc":{adc}}}"#);
    (format!("sensors/{id}/reading"), payload.into_bytes())
}

/// The publishing index of a reading the gateway opened (the inverse of [`published`]).
fn index_of(payload: &[u8]) -> u64 {
    let text = std::str::from_utf8(payload).unwrap();
    let number = |key: &str| -> u64 {
        let rest = &text[text.find(key).unwrap() + key.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().unwrap()
    };
    (number(r#""seq":"#) - 17) * SENSORS + number(r#""id":"sensor"#) - 1
}

#[derive(Clone, Copy, PartialEq)]
enum Rule {
    /// [`Sealer::choose`] over the oldest [`CANDIDATES`], at most this many.
    ByTopic(usize),
    /// The oldest in order, at most this many, the longest prefix that fits.
    OldestPrefix(usize),
    /// One legacy token per reading.
    Legacy,
}

#[derive(Clone, Copy)]
struct Mode {
    name: &'static str,
    encoding: Encoding,
    rule: Rule,
}

const TMC: Mode = Mode {
    name: "TMC, by topic",
    encoding: Encoding::Packed,
    rule: Rule::ByTopic(64),
};
const LEGACY: Mode = Mode {
    name: "legacy ASCII, 1/frame",
    encoding: Encoding::Text,
    rule: Rule::Legacy,
};
const MODES: [Mode; 5] = [
    TMC,
    Mode {
        name: "oldest 8 in order",
        encoding: Encoding::Packed,
        rule: Rule::OldestPrefix(8),
    },
    Mode {
        name: "packed, 1/token",
        encoding: Encoding::Packed,
        rule: Rule::OldestPrefix(1),
    },
    Mode {
        name: "text, by topic",
        encoding: Encoding::Text,
        rule: Rule::ByTopic(64),
    },
    LEGACY,
];

/// The next token for the oldest pending readings, and which of them it carries.
fn next_token(
    mode: Mode,
    sealer: &mut Sealer<MemoryCounter>,
    pending: &[(u64, Reading)],
    iat: u64,
) -> Result<(Vec<u8>, Vec<usize>), usize> {
    let candidates: Vec<Reading> = pending
        .iter()
        .take(CANDIDATES)
        .map(|(_, r)| r.clone())
        .collect();
    let chosen: Vec<usize> = match mode.rule {
        Rule::Legacy => {
            let token = legacy::seal(&LegacyKeys::default(), &candidates[0].data).unwrap();
            return Ok((token, vec![0]));
        }
        Rule::ByTopic(max) => sealer.choose(&candidates, iat, mode.encoding, max),
        Rule::OldestPrefix(max) => {
            let mut n = max.min(candidates.len());
            while n > 1 && sealer.on_air_size(&candidates[..n], iat, mode.encoding) > MAX_TOKEN_LEN
            {
                n -= 1;
            }
            (0..n).collect()
        }
    };
    let readings: Vec<Reading> = chosen.iter().map(|&i| candidates[i].clone()).collect();
    let size = sealer.on_air_size(&readings, iat, mode.encoding);
    if size > MAX_TOKEN_LEN {
        return Err(size);
    }
    let sealed = sealer.seal(&readings, iat, mode.encoding).unwrap();
    Ok((sealed.bytes, chosen))
}

/// How the gateway checks what it receives: the readings of a new token, none for a copy.
enum Check {
    Envelope(Opener),
    /// Legacy tokens carry no counter: a copy resent under a new ID is told by its payload (each is unique here).
    Legacy(LegacyKeys, HashSet<Vec<u8>>),
}

impl Check {
    fn payloads(&mut self, token: &[u8]) -> Vec<Vec<u8>> {
        match self {
            Check::Envelope(opener) => match opener.open(token) {
                Ok(opened) => opened.readings.into_iter().map(|r| r.data).collect(),
                Err(OpenError::Replay(ReplayError::Replayed { .. })) => Vec::new(),
                Err(e) => panic!("gateway refused a token: {e}"),
            },
            Check::Legacy(keys, seen) => {
                let payload = legacy::open(keys, token).unwrap();
                if seen.insert(payload.clone()) {
                    vec![payload]
                } else {
                    Vec::new()
                }
            }
        }
    }
}

/// What is published when.
#[derive(Clone, Copy)]
enum Load {
    /// Always more than the relay can send.
    Unlimited,
    /// One reading every this long, for this many hours.
    Every(Duration, u32),
}

impl Load {
    fn hours(self) -> u32 {
        match self {
            Load::Unlimited => 1,
            Load::Every(_, hours) => hours,
        }
    }

    /// Publishing time of reading `i`.
    fn at(self, i: u64, now: Duration) -> Duration {
        match self {
            Load::Unlimited => now,
            Load::Every(interval, _) => interval * i as u32,
        }
    }
}

struct Outcome {
    tokens: u64,
    readings: u64,
    token_bytes: u64,
    frames_sent: u64,
    airtime: Duration,
    /// (publishing index, age at the gateway) of every reading the gateway output.
    ages: Vec<(u64, Duration)>,
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
}

fn run(mode: Mode, loss: f64, sf: u8, load: Load) -> Outcome {
    let started = Instant::now();
    let end = HOUR * load.hours();
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
    let mut sealer = Sealer::new(
        &ring,
        u32::from(RELAY),
        MemoryCounter::starting_at(u32::from(RELAY), FIRST_COUNTER),
    );
    let mut check = match mode.rule {
        Rule::Legacy => Check::Legacy(LegacyKeys::default(), HashSet::new()),
        _ => Check::Envelope(Opener::new(ring, ReplayGuard::default())),
    };

    let stop = Arc::new(AtomicBool::new(false));
    let gateway = {
        let (stop, clock) = (stop.clone(), channel.clone());
        std::thread::spawn(move || {
            let mut rx =
                LinkReceiver::new(reliable(gateway_chip, GATEWAY, 1, sf)).with_peers(&[RELAY]);
            let mut output = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if let Some(r) = rx.receive(Duration::from_secs(10)).unwrap() {
                    for payload in check.payloads(&r.token) {
                        output.push((index_of(&payload), clock.now()));
                    }
                    rx.confirm(&r).unwrap();
                }
            }
            output
        })
    };

    let sleeper = me.clone();
    let time = channel.clone();
    let mut tx = LinkSender::new(
        reliable(relay_chip, RELAY, 2, sf),
        GATEWAY,
        SendPolicy::default(),
        move |d| sleeper.sleep(d),
        3,
    )
    .with_stop(move || time.now() >= end);

    // Published and not yet acknowledged, oldest first: (publishing index, reading).
    let mut pending: Vec<(u64, Reading)> = Vec::new();
    let mut next = 0u64;
    let publish = |pending: &mut Vec<(u64, Reading)>, next: &mut u64, now: Duration| {
        while load.at(*next, now) <= now && pending.len() < CANDIDATES {
            let (topic, data) = published(*next);
            let time = START_UNIX + load.at(*next, now).as_secs();
            pending.push((*next, Reading::new(topic, time, data)));
            *next += 1;
        }
    };
    let (mut delivered, mut readings, mut token_bytes) = (0u64, 0u64, 0u64);
    let mut unfit = None;
    'run: while channel.now() < end {
        publish(&mut pending, &mut next, channel.now());
        if pending.is_empty() {
            me.sleep(load.at(next, channel.now()) - channel.now());
            continue;
        }
        match tx.wait_for_budget(MAX_TOKEN_LEN) {
            Ok(()) => {}
            Err(SendError::Stopped) => break,
            Err(e) => panic!("{}: {e}", mode.name),
        }
        publish(&mut pending, &mut next, channel.now());
        let iat = START_UNIX + channel.now().as_secs();
        let (token, chosen) = match next_token(mode, &mut sealer, &pending, iat) {
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
                    if channel.now() <= end {
                        delivered += 1;
                        readings += chosen.len() as u64;
                        token_bytes += token.len() as u64;
                    }
                    for &i in chosen.iter().rev() {
                        pending.remove(i);
                    }
                    break;
                }
                // The relay keeps the token staged and sends it again, byte for byte.
                Err(SendError::Silent { .. }) => continue,
                // The run ended during a duty-cycle wait or a back-off.
                Err(SendError::Stopped) => break 'run,
                Err(e) => panic!("{}: {e}", mode.name),
            }
        }
    }
    let limiter = tx.link().datagram().limiter().unwrap();
    let airtime = limiter.used(end);
    assert!(airtime <= limiter.budget());
    let frames_sent = tx.link().datagram().stats().sent;

    drop(tx);
    drop(me);
    stop.store(true, Ordering::SeqCst);
    let output = gateway.join().unwrap();
    // Everything acknowledged reached the gateway intact, once (it may have output one token more, whose ACK
    // came after the end).
    let unique: HashSet<u64> = output.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        unique.len(),
        output.len(),
        "{}: a reading output twice",
        mode.name
    );
    assert!(output.len() as u64 >= readings, "{}", mode.name);
    let ages = output
        .into_iter()
        .map(|(i, at)| (i, at - load.at(i, Duration::ZERO)))
        .collect();
    Outcome {
        tokens: delivered,
        readings,
        token_bytes,
        frames_sent,
        airtime,
        ages,
        real: started.elapsed(),
        unfit,
    }
}

fn print_header() {
    println!(
        "{:<22} {:>4} {:>5} {:>8} {:>9} {:>8} {:>10} {:>5} {:>9} {:>9}",
        "mode",
        "SF",
        "loss",
        "B/frame",
        "rdg/frame",
        "frames/h",
        "readings/h",
        "tx",
        "air s/36",
        "x legacy"
    );
}

fn print_row(mode: Mode, sf: u8, loss: f64, o: &Outcome, legacy: u64) {
    if let Some(size) = o.unfit {
        println!(
            "{:<22} {:>4} {:>4.0}%  one reading alone makes a {size}-byte token > {MAX_TOKEN_LEN}: no frame \
             carries it (the relay drops such readings), 0 readings/h",
            mode.name,
            sf,
            loss * 100.0,
        );
        return;
    }
    println!(
        "{:<22} {:>4} {:>4.0}% {:>8.1} {:>9.2} {:>8} {:>10} {:>5} {:>9.2} {:>8.2}x",
        mode.name,
        sf,
        loss * 100.0,
        o.bytes_per_frame(),
        o.readings_per_frame(),
        o.tokens,
        o.readings,
        o.frames_sent,
        o.airtime.as_secs_f64(),
        o.readings as f64 / legacy as f64,
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut real = Duration::ZERO;
    let mut hours = 0;
    let mut measure = |mode: Mode, loss: f64, sf: u8, load: Load| {
        let o = run(mode, loss, sf, load);
        real += o.real;
        hours += load.hours();
        o
    };
    println!(
        "readings per hour, one relay, EU868 868.0 MHz, 1 % duty cycle (36 s of air per hour), BW125 CR4/5, \
         RadioHead defaults; five sensors' readings of {} bytes: {}",
        published(0).1.len(),
        String::from_utf8(published(0).1).unwrap(),
    );
    println!();
    print_header();
    let mut legacy_sf7 = [0u64; 2];
    for (l, loss) in LOSSES.into_iter().enumerate() {
        let legacy = measure(LEGACY, loss, 7, Load::Unlimited);
        legacy_sf7[l] = legacy.readings;
        for mode in MODES {
            let o = match mode.rule {
                Rule::Legacy => &legacy,
                _ => &measure(mode, loss, 7, Load::Unlimited),
            };
            print_row(mode, 7, loss, o, legacy.readings);
        }
        println!();
    }
    for sf in [9, 12] {
        for loss in LOSSES {
            let legacy = measure(LEGACY, loss, sf, Load::Unlimited);
            print_row(
                TMC,
                sf,
                loss,
                &measure(TMC, loss, sf, Load::Unlimited),
                legacy.readings,
            );
            print_row(LEGACY, sf, loss, &legacy, legacy.readings);
        }
    }
    println!();
    println!(
        "B/frame: token bytes (+4 RadioHead header on air); tx: data frames sent incl. retries; air s/36: relay \
         time on air in the hour of the 36 s budget; x legacy: readings/h over the legacy row's (same SF and loss)"
    );

    let goal = GOAL * legacy_sf7[0];
    let interval = HOUR / goal as u32;
    println!();
    println!(
        "latency at the goal load: {goal} readings/h ({GOAL} x legacy at SF7), one every {:.2} s from the five \
         sensors in turn, SF7; age = output at the gateway - publishing, of the readings output in hour 3 of 3",
        interval.as_secs_f64()
    );
    println!(
        "{:<22} {:>5} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "mode", "loss", "readings", "rdg/frame", "median s", "p99 s", "max s"
    );
    for loss in LOSSES {
        let o = measure(TMC, loss, 7, Load::Every(interval, 3));
        let mut ages: Vec<Duration> = o
            .ages
            .iter()
            .filter(|(i, age)| interval * *i as u32 + *age >= HOUR * 2)
            .map(|(_, age)| *age)
            .collect();
        ages.sort();
        assert!(!ages.is_empty());
        println!(
            "{:<22} {:>4.0}% {:>10} {:>9.2} {:>9.1} {:>9.1} {:>9.1}",
            TMC.name,
            loss * 100.0,
            ages.len(),
            o.readings_per_frame(),
            percentile(&ages, 0.5).as_secs_f64(),
            percentile(&ages, 0.99).as_secs_f64(),
            ages.last().unwrap().as_secs_f64(),
        );
    }
    println!();
    println!(
        "{hours} simulated hours in {:.2} s of real time",
        real.as_secs_f64()
    );
}

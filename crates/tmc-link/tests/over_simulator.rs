//! Tokens over the simulated LoRa channel: the real driver, RadioHead framing and the duty-cycle limiter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tmc_link::{LinkReceiver, LinkSender, SendError, SendPolicy};
use tmc_radio::{DutyCycle, DutyCycleLimiter, RadioConfig, ReliableDatagram};
use tmc_radio_sim::{sim_link, ChannelConfig, SimChannel, SimChip, SimClock};

const GATEWAY: u8 = 1;
const RELAY: u8 = 10;
const STRANGER: u8 = 66;

type Radio = tmc_radio_sim::SimSx1276;

fn reliable(chip: SimChip, address: u8, seed: u64) -> ReliableDatagram<Radio, SimClock> {
    sim_link(
        chip,
        RadioConfig::radiohead_default(868_000_000),
        address,
        seed,
        None,
    )
    .unwrap()
}

fn limited(
    chip: SimChip,
    address: u8,
    seed: u64,
    limiter: Option<DutyCycleLimiter>,
) -> ReliableDatagram<Radio, SimClock> {
    sim_link(
        chip,
        RadioConfig::radiohead_default(868_000_000),
        address,
        seed,
        limiter,
    )
    .unwrap()
}

/// A 100-byte token, unique per `i` (as tokens are: each has its own counter).
fn token(i: usize) -> Vec<u8> {
    let mut t = format!("token {i:05} ").into_bytes();
    t.resize(100, b'.');
    t
}

#[test]
fn tokens_over_20_percent_loss_arrive_exactly_once_in_order_within_the_duty_cycle() {
    const N: usize = 40;
    let channel = SimChannel::new(ChannelConfig {
        seed: 2024,
        loss: 0.2,
        ..ChannelConfig::default()
    });
    // Every participant exists before any thread waits.
    let gateway_chip = channel.add_chip();
    let me = channel.participant();
    let relay_chip = channel.add_chip_for(&me);
    let stranger_chip = channel.add_chip_for(&me);
    let stop = Arc::new(AtomicBool::new(false));
    let gateway = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut rx = LinkReceiver::new(reliable(gateway_chip, GATEWAY, 1)).with_peers(&[RELAY]);
            // The store's part, as the inbox does it by sender and counter: a token it has is a copy.
            let (mut got, mut copies) = (Vec::new(), 0u64);
            while !stop.load(Ordering::SeqCst) {
                if let Some(r) = rx.receive(Duration::from_secs(1)).unwrap() {
                    assert_eq!(r.from, RELAY);
                    rx.confirm(&r).unwrap();
                    if got.contains(&r.token) {
                        copies += 1;
                    } else {
                        got.push(r.token);
                    }
                }
            }
            (got, copies, rx.stats())
        })
    };

    // 1 % of a one-minute window (0.6 s of air a minute) so that the budget runs out many times.
    let limiter = DutyCycleLimiter::with_window(
        DutyCycle::from_percent(1.0).unwrap(),
        Duration::from_secs(60),
    );
    let link = limited(relay_chip, RELAY, 2, Some(limiter));
    let policy = SendPolicy {
        rounds: 100,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(8),
    };
    let sleeper = me.clone();
    let mut tx = LinkSender::new(link, GATEWAY, policy, move |d| sleeper.sleep(d), 3);
    let mut rounds = 0;
    for i in 0..N {
        rounds += tx.send(&token(i)).unwrap().rounds;
    }
    let stats = tx.stats();
    let limiter = tx.link().datagram().limiter().unwrap();
    assert!(limiter.used(channel.now()) <= limiter.budget());
    assert!(stats.duty_cycle_waits > 0, "{stats:?}");
    assert_eq!(stats.delivered, N as u64);

    // A node that is not a peer is neither acknowledged nor handed over.
    let mut stranger = reliable(stranger_chip, STRANGER, 4);
    assert!(matches!(
        stranger.send_to_wait(GATEWAY, b"not a relay"),
        Err(tmc_radio::LinkError::NoAck { .. })
    ));

    drop(tx);
    drop(stranger);
    drop(me);
    stop.store(true, Ordering::SeqCst);
    let (got, copies, rx_stats) = gateway.join().unwrap();
    assert_eq!(got, (0..N).map(token).collect::<Vec<_>>());
    assert!(channel.stats().lost > 0);
    assert!(rounds >= N as u32);
    // Rounds cut short resend the token under a new ID: the link hands those copies up to the store.
    assert!(copies > 0, "{rx_stats:?}");
    assert_eq!(rx_stats.received, N as u64 + copies);
    assert_eq!(rx_stats.confirmed, rx_stats.received);
    assert!(rx_stats.unknown_node >= 1, "{rx_stats:?}");
    // Every packet heard has exactly one fate.
    assert_eq!(
        rx_stats.heard,
        rx_stats.crc_errors
            + rx_stats.malformed
            + rx_stats.other_node
            + rx_stats.stray_acks
            + rx_stats.retries
            + rx_stats.unknown_node
            + rx_stats.received,
        "{rx_stats:?}"
    );
    // Rounds beyond the first resent the token under a new ID; the copies that reached the gateway were dropped.
    assert_eq!(stats.silent_rounds as u32, rounds - N as u32);
}

#[test]
fn a_silent_gateway_is_reported_after_the_configured_rounds_with_back_off() {
    let channel = SimChannel::new(ChannelConfig::default());
    let me = channel.participant();
    let chip = channel.add_chip_for(&me);
    let link = reliable(chip, RELAY, 5);
    let policy = SendPolicy {
        rounds: 3,
        initial_backoff: Duration::from_secs(2),
        max_backoff: Duration::from_secs(60),
    };
    let sleeper = me.clone();
    let mut tx = LinkSender::new(link, GATEWAY, policy, move |d| sleeper.sleep(d), 9);
    let start = channel.now();
    match tx.send(b"anyone?") {
        Err(SendError::Silent {
            to: GATEWAY,
            rounds: 3,
        }) => {}
        other => panic!("{other:?}"),
    }
    // Two back-offs (1..2 s, then 2..4 s) in virtual time, on top of the rounds themselves.
    assert!(channel.now() - start >= Duration::from_secs(3));
    assert_eq!(tx.stats().silent_rounds, 3);
    assert_eq!(tx.stats().given_up, 1);
    assert_eq!(tx.link().stats().undelivered, 3);
}

#[test]
fn a_token_is_acknowledged_only_when_confirmed_so_an_unstored_token_comes_again() {
    let channel = SimChannel::new(ChannelConfig {
        seed: 7,
        ..ChannelConfig::default()
    });
    let gateway_chip = channel.add_chip();
    let me = channel.participant();
    let relay_chip = channel.add_chip_for(&me);
    let gateway = {
        std::thread::spawn(move || {
            let mut rx = LinkReceiver::new(reliable(gateway_chip, GATEWAY, 1)).with_peers(&[RELAY]);
            // First copy: "crash" before storing it — no confirm, so no ACK goes out.
            let first = rx.receive(Duration::from_secs(60)).unwrap().unwrap();
            // The relay's retry brings it again; this time it is stored and confirmed.
            let second = rx.receive(Duration::from_secs(60)).unwrap().unwrap();
            rx.confirm(&second).unwrap();
            (first.token, second.token, rx.stats())
        })
    };
    let link = reliable(relay_chip, RELAY, 2);
    let sleeper = me.clone();
    let mut tx = LinkSender::new(
        link,
        GATEWAY,
        SendPolicy::default(),
        move |d| sleeper.sleep(d),
        3,
    );
    let delivered = tx.send(&token(1)).unwrap();
    drop(tx);
    drop(me);
    let (first, second, stats) = gateway.join().unwrap();
    assert_eq!(first, token(1));
    assert_eq!(second, token(1));
    assert_eq!((stats.received, stats.confirmed), (2, 1));
    assert!(
        delivered.attempts >= 2 || delivered.rounds >= 2,
        "{delivered:?}"
    );
}

#[test]
fn a_stop_request_ends_a_send_that_waits_for_a_silent_gateway() {
    let channel = SimChannel::new(ChannelConfig::default());
    let me = channel.participant();
    let chip = channel.add_chip_for(&me);
    let link = reliable(chip, RELAY, 5);
    let policy = SendPolicy {
        rounds: 1000,
        ..SendPolicy::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (sleeper, flag) = (me.clone(), stop.clone());
    // The stop is requested during the first back-off: the send ends there instead of after 1000 rounds.
    let mut tx = LinkSender::new(
        link,
        GATEWAY,
        policy,
        move |d| {
            sleeper.sleep(d);
            flag.store(true, Ordering::SeqCst);
        },
        3,
    )
    .with_stop(move || stop.load(Ordering::SeqCst));
    assert!(matches!(tx.send(&token(1)), Err(SendError::Stopped)));
    assert_eq!(tx.stats().silent_rounds, 1);
}

//! What a sender's observer sees while a send to a silent gateway is still going on, and a sender whose
//! duty-cycle budget was spent before a restart, on the scripted radio (virtual time, no simulator).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tmc_link::{
    Clock as _, DutyCycle, DutyCycleLimiter, LinkSender, OnAir, PastTransmission, ReliableDatagram,
    SendError, SendPolicy, TransmitObserver,
};
use tmc_radio::reliable::ReliableConfig;
use tmc_radio::{Datagram, ScriptedClock, ScriptedRadio};

const GATEWAY: u8 = 1;
const RELAY: u8 = 10;
const FRAME: Duration = Duration::from_millis(60);

/// Frames and airtime as a status would show them.
#[derive(Debug, Default, Clone, PartialEq)]
struct Seen {
    before: u32,
    sent: u32,
    retries: u32,
    used: Duration,
}

struct Counting(Arc<Mutex<Seen>>);

impl TransmitObserver for Counting {
    fn before_transmit(&mut self, _frame: &OnAir<'_>) -> std::io::Result<()> {
        self.0.lock().unwrap().before += 1;
        Ok(())
    }

    fn transmitted(&mut self, frame: &OnAir<'_>) {
        let mut seen = self.0.lock().unwrap();
        seen.sent += 1;
        seen.retries += u32::from(frame.header.is_retry());
        seen.used = frame.limiter.unwrap().used(frame.start + frame.airtime);
    }
}

fn link(
    clock: &ScriptedClock,
    limiter: DutyCycleLimiter,
) -> ReliableDatagram<ScriptedRadio, ScriptedClock> {
    let radio = ScriptedRadio::new(clock.clone()).with_time_on_air(|_| FRAME);
    let datagram = Datagram::new(radio, clock.clone(), RELAY).with_duty_cycle(limiter);
    ReliableDatagram::new(datagram, ReliableConfig::default(), 7)
}

/// A sender of one round per send, whose waits advance `clock`.
fn one_round_sender(
    clock: &ScriptedClock,
    limiter: DutyCycleLimiter,
) -> LinkSender<ScriptedRadio, ScriptedClock, impl tmc_link::Wait> {
    let wait = {
        let clock = clock.clone();
        move |d: Duration| clock.advance(d)
    };
    let policy = SendPolicy {
        rounds: 1,
        ..SendPolicy::default()
    };
    LinkSender::new(link(clock, limiter), GATEWAY, policy, wait, 1)
}

/// 1 % of a 100 s window (1 s), restored from a ledger that holds 1 s used 10 s ago.
fn spent_limiter(clock: &ScriptedClock) -> DutyCycleLimiter {
    let ledger = [PastTransmission {
        age: Duration::from_secs(10),
        airtime: Duration::from_secs(1),
    }];
    let mut limiter =
        DutyCycleLimiter::with_window(DutyCycle::ONE_PERCENT, Duration::from_secs(100));
    limiter.restore(clock.now(), &ledger);
    limiter
}

#[test]
fn every_transmission_to_a_silent_gateway_is_seen_before_the_send_returns() {
    let clock = ScriptedClock::new();
    let mut link = link(&clock, DutyCycleLimiter::new(DutyCycle::ONE_PERCENT));
    let seen = Arc::new(Mutex::new(Seen::default()));
    link.datagram_mut()
        .set_observer(Box::new(Counting(seen.clone())));
    // The back-off between the two silent rounds runs inside `send`: what the observer saw by then is what a
    // status written at that moment shows.
    let during_backoff = Arc::new(Mutex::new(Vec::new()));
    let wait = {
        let (clock, seen, during_backoff) = (clock.clone(), seen.clone(), during_backoff.clone());
        move |d: Duration| {
            during_backoff
                .lock()
                .unwrap()
                .push(seen.lock().unwrap().clone());
            clock.advance(d);
        }
    };
    let policy = SendPolicy {
        rounds: 2,
        ..SendPolicy::default()
    };
    let mut sender = LinkSender::new(link, GATEWAY, policy, wait, 1);
    let result = sender.send(b"token");
    assert!(
        matches!(result, Err(SendError::Silent { rounds: 2, .. })),
        "{result:?}"
    );
    // One round: the first transmission and three retries, each on air for 60 ms.
    assert_eq!(
        *during_backoff.lock().unwrap(),
        vec![Seen {
            before: 4,
            sent: 4,
            retries: 3,
            used: FRAME * 4
        }]
    );
    assert_eq!(seen.lock().unwrap().sent, 8);
    assert_eq!(sender.link().datagram().stats().sent, 8);
}

#[test]
fn a_sender_restored_from_a_spent_ledger_waits_for_the_budget() {
    let clock = ScriptedClock::new();
    let mut sender = one_round_sender(&clock, spent_limiter(&clock));
    let _ = sender.send(b"token");
    let stats = sender.stats();
    // The spent second ran from −10 s to −9 s: a 60 ms frame starting at t fits once no more than 940 ms of it
    // lie in the window (t + 60 ms − 100 s, t + 60 ms], at t = 90 s. The retries after it fit at once.
    assert_eq!(stats.duty_cycle_waits, 1, "{stats:?}");
    assert_eq!(stats.duty_cycle_wait, Duration::from_secs(90), "{stats:?}");
    assert_eq!(sender.link().datagram().radio().transmissions().len(), 4);
}

#[test]
fn waiting_for_the_budget_before_choosing_a_token_sends_nothing_and_then_the_frame_goes_at_once() {
    // As above: a 60 ms frame may start at 90 s.
    let clock = ScriptedClock::new();
    let mut sender = one_round_sender(&clock, spent_limiter(&clock));
    sender.wait_for_budget(200).unwrap();
    assert_eq!(clock.now(), Duration::from_secs(90));
    assert!(sender.link().datagram().radio().transmissions().is_empty());
    assert_eq!(sender.stats().duty_cycle_wait, Duration::from_secs(90));
    // The token chosen now goes without another wait.
    let _ = sender.send(b"token");
    assert_eq!(sender.stats().duty_cycle_waits, 1);
    assert_eq!(
        sender.link().datagram().radio().transmissions()[0].at,
        Duration::from_secs(90)
    );

    // A frame longer than the whole budget: no wait (the send reports it); a stop request: Stopped.
    let clock = ScriptedClock::new();
    let tiny =
        DutyCycleLimiter::with_window(DutyCycle::from_ppm(100).unwrap(), Duration::from_secs(100)); // 10 ms of 100 s
    let mut sender = LinkSender::new(
        link(&clock, tiny),
        GATEWAY,
        SendPolicy::default(),
        |_| {},
        1,
    )
    .with_stop(|| true);
    assert!(matches!(
        sender.wait_for_budget(200),
        Err(SendError::Stopped)
    ));
    assert_eq!(clock.now(), Duration::ZERO);
}

#[test]
fn once_half_the_budget_is_used_the_next_token_waits_out_99_times_the_last_sends_airtime() {
    // 1 % of 40 s: 400 ms. A silent gateway: the frame and three retries, 240 ms on air, over half of it.
    let clock = ScriptedClock::new();
    let limiter = DutyCycleLimiter::with_window(DutyCycle::ONE_PERCENT, Duration::from_secs(40));
    assert_eq!(limiter.off_time(FRAME), FRAME * 99);
    let mut sender = one_round_sender(&clock, limiter);
    // Nothing sent yet: no wait.
    sender.wait_for_budget(20).unwrap();
    assert_eq!(clock.now(), Duration::ZERO);
    let _ = sender.send(b"token");
    let sent_at = clock.now();
    sender.wait_for_budget(20).unwrap();
    assert_eq!(clock.now() - sent_at, FRAME * 4 * 99);
    // Paid off: the next wait is zero.
    sender.wait_for_budget(20).unwrap();
    assert_eq!(clock.now() - sent_at, FRAME * 4 * 99);

    // The same send against a 1 s budget (100 s window) leaves over half of it: the next token goes at once.
    let clock = ScriptedClock::new();
    let limiter = DutyCycleLimiter::with_window(DutyCycle::ONE_PERCENT, Duration::from_secs(100));
    let mut sender = one_round_sender(&clock, limiter);
    let _ = sender.send(b"token");
    let sent_at = clock.now();
    sender.wait_for_budget(20).unwrap();
    assert_eq!(clock.now(), sent_at);
}

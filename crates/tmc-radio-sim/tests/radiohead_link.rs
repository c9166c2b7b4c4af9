//! RadioHead framing, reliable datagrams and the duty cycle, driver to driver over the simulated channel.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{datagram, driver, radiohead_default, SimRadio};
use tmc_radio::datagram::LinkError;
use tmc_radio::modem::{ModemConfig, SpreadingFactor};
use tmc_radio::{
    Datagram, DutyCycle, DutyCycleLimiter, RadioConfig, Reception, ReliableConfig, ReliableDatagram,
};
use tmc_radio_sim::{ChannelConfig, ChannelStats, SimChannel, SimClock};

const SECOND: Duration = Duration::from_secs(1);
const GATEWAY: u8 = 1;
const NODE: u8 = 10;

#[test]
fn radiohead_hello_is_byte_exact_on_air_and_acknowledged_byte_exactly() {
    let channel = SimChannel::new(ChannelConfig::default());
    let me = channel.participant();
    let mut node = driver(channel.add_chip_for(&me), radiohead_default());
    let mut sniffer = driver(channel.add_chip_for(&me), radiohead_default());
    let gateway_radio = driver(channel.add_chip_for(&me), radiohead_default());
    let mut gateway = ReliableDatagram::new(
        Datagram::new(gateway_radio, channel.clock(), GATEWAY),
        ReliableConfig::default(),
        1,
    );
    gateway.datagram_mut().radio_mut().start_receive().unwrap();
    sniffer.start_receive().unwrap();

    // What an Arduino node running RHDatagram sends: sendto("Hi Raspi!", 10, 1) with ID 0, no flags.
    node.transmit(b"\x01\x0A\x00\x00Hi Raspi!\0").unwrap();
    let Reception::Packet(heard) = sniffer.receive(SECOND).unwrap() else {
        panic!("sniffer heard nothing")
    };
    assert_eq!(heard.payload(), b"\x01\x0A\x00\x00Hi Raspi!\0");

    let frame = gateway.receive(SECOND).unwrap().unwrap();
    assert_eq!(
        (
            frame.header.from,
            frame.header.to,
            frame.header.id,
            frame.header.flags
        ),
        (NODE, GATEWAY, 0, 0)
    );
    assert_eq!(frame.data, b"Hi Raspi!\0");

    // The gateway acknowledged: TO = node, FROM = gateway, same ID, FLAGS = ACK, payload "!".
    let Reception::Packet(ack) = sniffer.receive(SECOND).unwrap() else {
        panic!("no ACK on air")
    };
    assert_eq!(ack.payload(), &[0x0A, 0x01, 0x00, 0x80, b'!']);
    assert_eq!(gateway.stats().acks_sent, 1);
}

#[test]
fn address_filter_and_promiscuous_mode() {
    let channel = SimChannel::new(ChannelConfig::default());
    let me = channel.participant();
    let mut sender = datagram(&channel, &me, NODE);
    let mut gateway = datagram(&channel, &me, GATEWAY);
    let mut monitor = datagram(&channel, &me, 200);
    monitor.set_promiscuous(true);
    for d in [&mut gateway, &mut monitor] {
        d.radio_mut().start_receive().unwrap();
    }
    sender.send(7, 1, 0, b"for node 7").unwrap();
    assert_eq!(gateway.receive(SECOND).unwrap(), None);
    assert_eq!(gateway.stats().filtered, 1);
    assert_eq!(
        monitor.receive(SECOND).unwrap().unwrap().data,
        b"for node 7"
    );

    sender
        .send(tmc_radio::BROADCAST, 2, 0, b"everyone")
        .unwrap();
    assert_eq!(gateway.receive(SECOND).unwrap().unwrap().data, b"everyone");
    assert_eq!(monitor.receive(SECOND).unwrap().unwrap().header.to, 0xFF);
}

/// What `gateway.receive` makes of each frame a RadioHead node sends: delivered or not, and always acknowledged.
fn deliveries(
    frames: &[(&[u8], Option<Duration>)],
) -> (Vec<bool>, tmc_radio::reliable::ReliableStats) {
    let channel = SimChannel::new(ChannelConfig::default());
    let me = channel.participant();
    let mut node = driver(channel.add_chip_for(&me), radiohead_default());
    let mut sniffer = driver(channel.add_chip_for(&me), radiohead_default());
    let mut gateway = ReliableDatagram::new(
        datagram(&channel, &me, GATEWAY),
        ReliableConfig::default(),
        1,
    );
    sniffer.start_receive().unwrap();
    let mut delivered = Vec::new();
    for (bytes, pause) in frames {
        if let Some(pause) = pause {
            // Nothing on air meanwhile: the receive only lets virtual time pass.
            assert_eq!(gateway.receive(*pause).unwrap(), None);
        }
        gateway.datagram_mut().radio_mut().start_receive().unwrap();
        node.transmit(bytes).unwrap();
        let Reception::Packet(data) = sniffer.receive(SECOND).unwrap() else {
            panic!("no data frame")
        };
        assert_eq!(data.payload(), *bytes);
        delivered.push(
            gateway
                .receive(Duration::from_millis(300))
                .unwrap()
                .is_some(),
        );
        let Reception::Packet(ack) = sniffer.receive(SECOND).unwrap() else {
            panic!("no ACK for {bytes:?}")
        };
        assert_eq!(ack.payload(), &[0x0A, 0x01, bytes[2], 0x80, b'!']);
    }
    (delivered, gateway.stats())
}

#[test]
fn a_radiohead_retry_of_a_delivered_datagram_is_acked_but_not_delivered_again() {
    // First send, then RadioHead's retry of the same ID with the RETRY flag, then the next ID.
    let (delivered, stats) = deliveries(&[
        (b"\x01\x0A\x07\x00reading", None),
        (b"\x01\x0A\x07\x40reading", None),
        (b"\x01\x0A\x08\x00next", None),
    ]);
    assert_eq!(delivered, [true, false, true]);
    assert_eq!((stats.duplicates, stats.acks_sent), (1, 3));
}

#[test]
fn a_sender_that_restarted_its_ids_is_not_taken_for_a_retry() {
    // A relay delivered ID 1, restarted, and numbers from 1 again: new bytes under the same ID are new data.
    let (delivered, stats) = deliveries(&[
        (b"\x01\x0A\x01\x00first token", None),
        (b"\x01\x0A\x01\x00second token", None),
        (b"\x01\x0A\x01\x40second token", None),
    ]);
    assert_eq!(delivered, [true, true, false]);
    assert_eq!((stats.duplicates, stats.acks_sent), (1, 3));
}

#[test]
fn old_senders_without_ids_are_told_apart_by_content_and_time() {
    // RH_RF95::send as the old deployment uses it: ID 0, no flags, on every frame.
    let window = ReliableConfig::default().duplicate_window;
    let (delivered, stats) = deliveries(&[
        (b"\x01\x0A\x00\x00t=21.5", None),
        (b"\x01\x0A\x00\x00t=21.6", None),
        // The same frame again at once: a retry without the RETRY flag, acknowledged, not delivered.
        (b"\x01\x0A\x00\x00t=21.6", None),
        // The same reading again once no sender could still be retrying: new data.
        (b"\x01\x0A\x00\x00t=21.6", Some(window + SECOND)),
    ]);
    assert_eq!(delivered, [true, true, false, true]);
    assert_eq!((stats.duplicates, stats.acks_sent), (1, 4));
}

type Gateway = ReliableDatagram<SimRadio, SimClock>;

#[test]
fn acknowledge_after_commit_sends_no_ack_until_the_datagram_is_confirmed() {
    let channel = SimChannel::new(ChannelConfig::default());
    let me = channel.participant();
    let mut node = driver(channel.add_chip_for(&me), radiohead_default());
    let mut sniffer = driver(channel.add_chip_for(&me), radiohead_default());
    let mut gateway = ReliableDatagram::new(
        datagram(&channel, &me, GATEWAY),
        ReliableConfig::default(),
        1,
    );
    sniffer.start_receive().unwrap();
    fn send(gateway: &mut Gateway, node: &mut SimRadio, sniffer: &mut SimRadio, bytes: &[u8]) {
        gateway.datagram_mut().radio_mut().start_receive().unwrap();
        node.transmit(bytes).unwrap();
        let Reception::Packet(data) = sniffer.receive(SECOND).unwrap() else {
            panic!("no data frame")
        };
        assert_eq!(data.payload(), bytes);
    }
    fn no_ack(sniffer: &mut SimRadio) {
        assert!(
            matches!(sniffer.receive(SECOND).unwrap(), Reception::Timeout),
            "an ACK went out"
        );
    }
    fn ack_for(sniffer: &mut SimRadio, id: u8) {
        let Reception::Packet(ack) = sniffer.receive(SECOND).unwrap() else {
            panic!("no ACK")
        };
        assert_eq!(ack.payload(), &[0x0A, 0x01, id, 0x80, b'!']);
    }

    // Received but not yet stored: no ACK, and a retry is delivered again (the store tells duplicates).
    send(
        &mut gateway,
        &mut node,
        &mut sniffer,
        b"\x01\x0A\x07\x00reading",
    );
    let frame = gateway.receive_unacknowledged(SECOND).unwrap().unwrap();
    no_ack(&mut sniffer);
    send(
        &mut gateway,
        &mut node,
        &mut sniffer,
        b"\x01\x0A\x07\x40reading",
    );
    assert_eq!(
        gateway
            .receive_unacknowledged(SECOND)
            .unwrap()
            .unwrap()
            .data,
        frame.data
    );
    no_ack(&mut sniffer);
    // Stored: confirm sends the ACK, and later copies are acknowledged but not delivered.
    gateway.confirm(&frame).unwrap();
    ack_for(&mut sniffer, 7);
    send(
        &mut gateway,
        &mut node,
        &mut sniffer,
        b"\x01\x0A\x07\x40reading",
    );
    assert_eq!(
        gateway
            .receive_unacknowledged(Duration::from_millis(300))
            .unwrap(),
        None
    );
    ack_for(&mut sniffer, 7);
    assert_eq!(gateway.stats().duplicates, 1);
}

#[test]
fn our_sender_numbers_frames_and_flags_retries_like_radiohead() {
    // Nobody acknowledges: the sender must send ID 1 once plainly, then `retries` times with RETRY.
    let channel = SimChannel::new(ChannelConfig::default());
    let me = channel.participant();
    let mut sniffer = driver(channel.add_chip_for(&me), radiohead_default());
    sniffer.start_receive().unwrap();
    // Every participant exists before any thread waits: otherwise the sniffer, alone, would let its 5 s run out.
    let node_chip = channel.add_chip();
    let sniffer_thread = std::thread::spawn(move || {
        let mut frames = Vec::new();
        while let Reception::Packet(p) = sniffer.receive(Duration::from_secs(5)).unwrap() {
            frames.push(p.payload().to_vec());
        }
        frames
    });
    drop(me);
    let mut node = ReliableDatagram::new(
        Datagram::new(
            driver(node_chip, radiohead_default()),
            channel.clock(),
            NODE,
        ),
        ReliableConfig::default(),
        7,
    );
    let err = node.send_to_wait(GATEWAY, b"anyone?").unwrap_err();
    assert!(
        matches!(
            err,
            LinkError::NoAck {
                to: GATEWAY,
                id: 1,
                attempts: 4
            }
        ),
        "{err}"
    );
    drop(node);
    let frames = sniffer_thread.join().unwrap();
    assert_eq!(
        frames,
        vec![
            b"\x01\x0A\x01\x00anyone?".to_vec(),
            b"\x01\x0A\x01\x40anyone?".to_vec(),
            b"\x01\x0A\x01\x40anyone?".to_vec(),
            b"\x01\x0A\x01\x40anyone?".to_vec(),
        ]
    );
}

/// Runs `count` reliable datagrams from a node to the gateway over a lossy channel; returns what the gateway
/// delivered, the channel counters and the virtual time it took.
fn lossy_exchange(
    seed: u64,
    loss: f64,
    count: usize,
) -> (Vec<Vec<u8>>, ChannelStats, Duration, u64, u64) {
    let channel = SimChannel::new(ChannelConfig {
        seed,
        loss,
        ..ChannelConfig::default()
    });
    let config = ReliableConfig {
        retries: 20,
        ..ReliableConfig::default()
    };
    let gateway_chip = channel.add_chip();
    let node_chip = channel.add_chip();
    let stop = Arc::new(AtomicBool::new(false));
    let gateway_thread = {
        let stop = stop.clone();
        let clock = channel.clock();
        std::thread::spawn(move || {
            let mut gateway = ReliableDatagram::new(
                Datagram::new(driver(gateway_chip, radiohead_default()), clock, GATEWAY),
                config,
                1,
            );
            let mut delivered = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if let Some(frame) = gateway.receive(SECOND).unwrap() {
                    assert_eq!(frame.header.from, NODE);
                    delivered.push(frame.data);
                }
            }
            (delivered, gateway.stats().duplicates)
        })
    };
    let mut node = ReliableDatagram::new(
        Datagram::new(
            driver(node_chip, radiohead_default()),
            channel.clock(),
            NODE,
        ),
        config,
        2,
    );
    for i in 0..count {
        let payload = format!("reading {i:04}");
        node.send_to_wait(GATEWAY, payload.as_bytes()).unwrap();
    }
    let retransmissions = node.stats().retransmissions;
    let elapsed = channel.now();
    // Leave the simulation so the gateway's waits can run out, then stop it.
    drop(node);
    stop.store(true, Ordering::SeqCst);
    let (delivered, duplicates) = gateway_thread.join().unwrap();
    (
        delivered,
        channel.stats(),
        elapsed,
        retransmissions,
        duplicates,
    )
}

#[test]
fn reliable_datagrams_over_30_percent_loss_arrive_exactly_once_in_order() {
    let count = 300; // IDs wrap past 255
    let (delivered, stats, _, retransmissions, duplicates) = lossy_exchange(42, 0.3, count);
    let expected: Vec<Vec<u8>> = (0..count)
        .map(|i| format!("reading {i:04}").into_bytes())
        .collect();
    assert_eq!(delivered, expected);
    assert!(stats.lost > 0 && retransmissions > 0, "{stats:?}");
    assert!(
        duplicates > 0,
        "lost ACKs must have caused duplicates that were swallowed"
    );
}

#[test]
fn a_seed_makes_a_run_repeatable() {
    let a = lossy_exchange(7, 0.3, 50);
    let b = lossy_exchange(7, 0.3, 50);
    assert_eq!((a.1, a.2, a.3), (b.1, b.2, b.3));
    let c = lossy_exchange(8, 0.3, 50);
    assert_ne!((a.1, a.2), (c.1, c.2));
}

#[test]
fn raw_datagrams_over_30_percent_loss_arrive_at_most_once_and_intact() {
    let channel = SimChannel::new(ChannelConfig {
        seed: 3,
        loss: 0.3,
        ..ChannelConfig::default()
    });
    let me = channel.participant();
    let mut node = datagram(&channel, &me, NODE);
    let mut gateway = datagram(&channel, &me, GATEWAY);
    gateway.radio_mut().start_receive().unwrap();
    let mut received = Vec::new();
    for id in 0..200u8 {
        node.send(GATEWAY, id, 0, &[id; 8]).unwrap();
        if let Some(frame) = gateway.receive(Duration::from_millis(10)).unwrap() {
            assert_eq!(frame.data, [frame.header.id; 8]);
            received.push(frame.header.id);
        }
    }
    assert!(
        received.windows(2).all(|w| w[0] < w[1]),
        "no duplicates, in order"
    );
    let lost = 200 - received.len();
    assert_eq!(u64::try_from(lost).unwrap(), channel.stats().lost);
    assert!((30..90).contains(&lost), "{lost} lost of 200 at 30 %");
}

#[test]
fn duty_cycle_limits_transmissions_and_releases_them_later() {
    let channel = SimChannel::new(ChannelConfig::default());
    let me = channel.participant();
    let sf12 = RadioConfig {
        modem: ModemConfig::RADIOHEAD_DEFAULT.with_spreading_factor(SpreadingFactor::Sf12),
        ..radiohead_default()
    };
    let mut node = Datagram::new(
        driver(channel.add_chip_for(&me), sf12),
        channel.clock(),
        NODE,
    )
    .with_duty_cycle(DutyCycleLimiter::new(DutyCycle::ONE_PERCENT));
    // 16 data bytes = 20 bytes on air = 1318.912 ms at SF12: 27 frames fit in 36 s, the 28th does not.
    let mut sent = 0;
    let wait = loop {
        match node.send(GATEWAY, sent, 0, &[0; 16]) {
            Ok(()) => sent += 1,
            Err(LinkError::DutyCycle { wait, airtime }) => {
                assert_eq!(airtime, Duration::from_micros(1_318_912));
                break wait;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(sent, 27);
    assert_eq!(node.duty_cycle_wait(16).unwrap(), wait);
    me.sleep(wait);
    node.send(GATEWAY, 27, 0, &[0; 16]).unwrap();
    assert!(
        channel.now() > Duration::from_secs(3600),
        "the 28th frame waited for the first to leave the hour"
    );
}

#[test]
fn acks_count_against_the_duty_cycle_and_are_withheld_when_it_is_spent() {
    let channel = SimChannel::new(ChannelConfig::default());
    let me = channel.participant();
    let mut node = driver(channel.add_chip_for(&me), radiohead_default());
    // A budget of 0.001 % (36 ms per hour) holds one 30.976 ms ACK, not two.
    let mut gateway = ReliableDatagram::new(
        datagram(&channel, &me, GATEWAY)
            .with_duty_cycle(DutyCycleLimiter::new(DutyCycle::from_ppm(10).unwrap())),
        ReliableConfig::default(),
        1,
    );
    for id in 1..=2u8 {
        // Single-threaded: put the gateway back in RX (it is in standby after its ACK) before the node sends.
        gateway.datagram_mut().radio_mut().start_receive().unwrap();
        node.transmit(&[GATEWAY, NODE, id, 0, b'x']).unwrap();
        assert!(gateway.receive(SECOND).unwrap().is_some());
    }
    let stats = gateway.stats();
    assert_eq!((stats.acks_sent, stats.acks_withheld), (1, 1));
    let used = gateway.datagram().limiter().unwrap().used(channel.now());
    assert_eq!(used, Duration::from_micros(30_976));
}

#[allow(dead_code)]
fn _types_are_send(_: SimRadio, _: SimClock) -> impl Send {}

//! The air between processes and real-time channels, with the real driver on both ends. Each `join` below has
//! its own real-time channel, exactly as it would in its own process; only the socket directory joins them.

mod common;
use common::{eventually, message};

use std::os::unix::net::UnixDatagram;
use std::thread;
use std::time::{Duration, Instant};

use embedded_hal::delay::DelayNs;
use tmc_radio::hal::{Clock, Dio0};
use tmc_radio::RejectReason;
use tmc_radio::{
    LinkError, ModemConfig, RadioConfig, Reception, ReliableConfig, ReliableDatagram,
    SpreadingFactor, Sx1276,
};
use tmc_radio_sim::air::{join, AirError, AirLink, AirSpec, AirSpecError};
use tmc_radio_sim::{ChannelConfig, SimChannel, SimClock, SimDelay, SimDio0, SimResetPin, SimSpi};

type Radio = Sx1276<SimSpi, SimResetPin, SimDio0, SimDelay>;

const EU868: u32 = 868_000_000;
const GATEWAY: u8 = 1;
const RELAY: u8 = 10;

fn node(spec: &AirSpec, name: &str, config: RadioConfig) -> (Radio, SimClock, AirLink) {
    common::air_node(spec, name, config)
}

fn default_node(spec: &AirSpec, name: &str) -> (Radio, SimClock, AirLink) {
    node(spec, name, RadioConfig::radiohead_default(EU868))
}

#[test]
fn frames_go_both_ways_byte_exact_and_reliable_sends_are_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let spec = AirSpec::new(dir.path());
    let (gateway_radio, gateway_clock, gateway_link) = default_node(&spec, "gateway-1");
    let (relay_radio, relay_clock, relay_link) = default_node(&spec, "relay-10");
    common::reliable_exchange(
        (gateway_radio, gateway_clock, GATEWAY),
        (relay_radio, relay_clock, RELAY),
    );

    let (relay_stats, gateway_stats) = (relay_link.stats(), gateway_link.stats());
    // At least one datagram per frame and ACK, each heard on the other side, nothing malformed.
    assert!(
        relay_stats.sent >= 3 && gateway_stats.sent >= 4,
        "{relay_stats:?} {gateway_stats:?}"
    );
    assert!(gateway_stats.received >= 3 && relay_stats.received >= 4);
    assert_eq!(relay_stats.malformed + gateway_stats.malformed, 0);
    assert!(gateway_stats.channel.delivered >= 3, "{gateway_stats:?}");
    assert_eq!(relay_stats.channel.transmissions, relay_stats.sent);
}

#[test]
fn a_receiver_with_total_loss_hears_nothing_and_the_sender_gets_no_ack() {
    let dir = tempfile::tempdir().unwrap();
    let lossy: AirSpec = format!("sim:{},loss=1.0", dir.path().display())
        .parse()
        .unwrap();
    assert_eq!(lossy.loss, 1.0);
    let (mut gateway, _, gateway_link) = default_node(&lossy, "gateway");
    gateway.start_receive().unwrap();
    let (relay_radio, relay_clock, _relay_link) = default_node(&AirSpec::new(dir.path()), "relay");
    let config = ReliableConfig {
        retries: 1,
        ack_timeout: Duration::from_millis(50),
        ..ReliableConfig::default()
    };
    let mut relay = ReliableDatagram::new(
        tmc_radio::Datagram::new(relay_radio, relay_clock, RELAY),
        config,
        3,
    );
    match relay.send_to_wait(GATEWAY, b"hello?") {
        Err(LinkError::NoAck {
            to: GATEWAY,
            attempts: 2,
            ..
        }) => {}
        other => panic!("expected NoAck after 2 attempts, got {other:?}"),
    }
    eventually("the gateway to lose both copies", || {
        gateway_link.stats().channel.lost >= 2
    });
    assert!(matches!(
        gateway.receive(Duration::from_millis(1)).unwrap(),
        Reception::Timeout
    ));
    let stats = gateway_link.stats();
    assert_eq!(
        (stats.channel.delivered, stats.received),
        (0, 2),
        "{stats:?}"
    );
}

#[test]
fn nodes_that_left_or_were_killed_do_not_break_the_sender_and_their_names_can_rejoin() {
    let dir = tempfile::tempdir().unwrap();
    let spec = AirSpec::new(dir.path());
    let (mut relay, _, relay_link) = default_node(&spec, "relay");

    // A node that left cleanly takes its socket with it.
    let gateway = join(&spec, "gateway").unwrap();
    let gateway_socket = gateway.link.socket_path().to_path_buf();
    assert!(gateway_socket.exists());
    drop(gateway);
    assert!(!gateway_socket.exists());

    // A killed node leaves its socket file behind, and nobody reads it.
    let ghost_socket = dir.path().join("ghost.sock");
    drop(UnixDatagram::bind(&ghost_socket).unwrap());
    assert!(ghost_socket.exists());
    // Files that are not node sockets are not written to at all.
    std::fs::write(dir.path().join("notes.txt"), b"not a socket").unwrap();

    relay.transmit(b"anyone there?").unwrap();
    let stats = relay_link.stats();
    assert_eq!((stats.sent, stats.send_failures), (0, 1), "{stats:?}");

    // A live name is refused; the killed node's name is free again.
    let err = join(&spec, "relay").err().unwrap();
    assert!(matches!(err, AirError::NameInUse { .. }), "{err}");
    assert!(err.to_string().contains("\"relay\""), "{err}");
    let ghost = join(&spec, "ghost").unwrap();
    relay.transmit(b"anyone there?").unwrap();
    eventually("the restarted node to get the packet", || {
        ghost.stats().received == 1
    });
    assert_eq!(relay_link.stats().sent, 1);

    // The relay itself restarts under its own name.
    drop(relay);
    drop(relay_link);
    let (_relay, _, relay_link) = default_node(&spec, "relay");
    assert_eq!(relay_link.name(), "relay");
}

#[test]
fn a_different_spreading_factor_is_not_heard() {
    let dir = tempfile::tempdir().unwrap();
    let spec = AirSpec::new(dir.path());
    let (mut gateway, _, gateway_link) = default_node(&spec, "gateway");
    gateway.start_receive().unwrap();
    let sf8 = RadioConfig {
        modem: ModemConfig::RADIOHEAD_DEFAULT.with_spreading_factor(SpreadingFactor::Sf8),
        ..RadioConfig::radiohead_default(EU868)
    };
    let (mut relay, _, _relay_link) = node(&spec, "relay", sf8);
    relay.transmit(&message(0, 20)).unwrap();
    eventually("the datagram to arrive", || {
        gateway_link.stats().received == 1
    });
    // The packet has ended by now (the relay saw TxDone); wait a little longer for nothing.
    assert!(matches!(
        gateway.receive(Duration::from_millis(100)).unwrap(),
        Reception::Timeout
    ));
    let stats = gateway_link.stats().channel;
    assert_eq!((stats.delivered, stats.lost, stats.corrupted), (0, 0, 0));
}

#[test]
fn malformed_datagrams_are_counted_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let spec = AirSpec::new(dir.path());
    let (mut gateway, _, gateway_link) = default_node(&spec, "gateway");
    gateway.start_receive().unwrap();
    let (mut relay, _, _relay_link) = default_node(&spec, "relay");

    let intruder = UnixDatagram::unbound().unwrap();
    for garbage in [
        &b"garbage"[..],
        &[0u8; 0],
        &b"TMCA\x01\x33\x00\x00\x00\x72\x64\x04\x00\x08\x12\x00x"[..],
    ] {
        intruder
            .send_to(garbage, gateway_link.socket_path())
            .unwrap();
    }
    let frame = message(5, 30);
    relay.transmit(&frame).unwrap();
    // The socket queue is in order: once the good packet is through, the garbage has been looked at.
    match gateway.receive(Duration::from_secs(5)).unwrap() {
        Reception::Packet(packet) => assert_eq!(packet.payload(), &frame[..]),
        other => panic!("expected the relay's packet, got {other:?}"),
    }
    let stats = gateway_link.stats();
    assert_eq!((stats.malformed, stats.received), (3, 1), "{stats:?}");
}

#[test]
fn overlapping_packets_from_two_processes_collide() {
    let dir = tempfile::tempdir().unwrap();
    let spec = AirSpec::new(dir.path());
    let (mut gateway, _, gateway_link) = default_node(&spec, "gateway");
    gateway.start_receive().unwrap();
    let (mut long, _, _long_link) = default_node(&spec, "long");
    let (mut short, _, _short_link) = default_node(&spec, "short");

    // About 330 ms on air at SF7: the short packet below starts well within it.
    let sender = thread::spawn(move || long.transmit(&message(1, 200)).unwrap());
    eventually("the long packet to be on the gateway's air", || {
        gateway_link.stats().received == 1
    });
    short.transmit(&message(2, 10)).unwrap();
    sender.join().unwrap();
    assert!(matches!(
        gateway.receive(Duration::from_secs(5)).unwrap(),
        Reception::Rejected(RejectReason::CrcError)
    ));
    let stats = gateway_link.stats();
    assert!(stats.channel.collisions >= 1, "{stats:?}");
    assert_eq!(stats.channel.delivered, 0, "{stats:?}");
}

#[test]
fn realtime_time_follows_the_wall_clock_and_nobody_holds_it_back() {
    let channel = SimChannel::realtime(ChannelConfig::default());
    assert!(channel.is_realtime());
    assert!(!SimChannel::new(ChannelConfig::default()).is_realtime());
    let mut chip = channel.add_chip();
    // A participant that never waits would freeze virtual time; real time does not wait for it.
    let _bystander = channel.participant();

    let (wall, sim) = (Instant::now(), chip.clock.now());
    let timeout = Duration::from_millis(60);
    assert!(!chip.dio0.wait_high(timeout).unwrap());
    assert!(wall.elapsed() >= timeout);
    assert!(chip.clock.now() - sim >= timeout);

    let (wall, sim) = (Instant::now(), channel.now());
    chip.participant.sleep(Duration::from_millis(20));
    chip.delay.delay_ms(20);
    assert!(wall.elapsed() >= Duration::from_millis(40));
    assert!(channel.now() - sim >= Duration::from_millis(40));
}

#[test]
fn realtime_packets_take_their_time_on_air_between_two_chips_on_one_channel() {
    let channel = SimChannel::realtime(ChannelConfig::default());
    let config = RadioConfig::radiohead_default(EU868);
    let rx_chip = channel.add_chip();
    let tx_chip = channel.add_chip();
    let mut rx = Sx1276::new(
        rx_chip.spi,
        rx_chip.reset,
        rx_chip.dio0,
        rx_chip.delay,
        config,
    )
    .unwrap();
    let mut tx = Sx1276::new(
        tx_chip.spi,
        tx_chip.reset,
        tx_chip.dio0,
        tx_chip.delay,
        config,
    )
    .unwrap();
    rx.start_receive().unwrap();
    let payload = message(3, 50);
    let airtime = tx.time_on_air(payload.len());
    // The receiver already listens (start_receive above); the thread only collects the packet, whenever it
    // gets scheduled, and notes when it had it.
    let receiver = thread::spawn(move || {
        let reception = rx.receive(Duration::from_secs(5)).unwrap();
        (reception, Instant::now())
    });
    let start = Instant::now();
    tx.transmit(&payload).unwrap();
    assert!(start.elapsed() >= airtime);
    let (reception, received_at) = receiver.join().unwrap();
    match reception {
        Reception::Packet(packet) => assert_eq!(packet.payload(), &payload[..]),
        other => panic!("expected the packet, got {other:?}"),
    }
    // Nobody can have the packet before it has been on air for its whole airtime.
    assert!(received_at.duration_since(start) >= airtime);
    assert_eq!(channel.stats().delivered, 1);
}

#[test]
fn air_specs_parse_and_bad_ones_say_what_is_wrong() {
    let spec: AirSpec = "sim:/tmp/air".parse().unwrap();
    assert_eq!(spec, AirSpec::new("/tmp/air"));
    let spec: AirSpec = "sim:/tmp/air,loss=0.2,corrupt=0.01,seed=7".parse().unwrap();
    assert_eq!(
        (spec.dir.to_str(), spec.loss, spec.corruption, spec.seed),
        (Some("/tmp/air"), 0.2, 0.01, 7)
    );
    assert_eq!(spec.to_string().parse::<AirSpec>().unwrap(), spec);
    let spec: AirSpec = "relative/air, loss = 1 ,seed=0".parse().unwrap();
    assert_eq!((spec.dir.to_str(), spec.loss), (Some("relative/air"), 1.0));
    assert_eq!(spec.channel_config().loss, 1.0);

    let error = |s: &str| s.parse::<AirSpec>().unwrap_err();
    for s in ["sim:", "", "sim:,loss=0.1"] {
        let e = error(s);
        assert!(matches!(e, AirSpecError::EmptyDir { .. }), "{s}: {e}");
        assert!(e.to_string().contains("names no directory"), "{e}");
    }
    for (s, key, value) in [
        ("sim:/x,loss=1.5", "loss", "1.5"),
        ("sim:/x,corrupt=-0.1", "corrupt", "-0.1"),
        ("sim:/x,loss=NaN", "loss", "NaN"),
        ("sim:/x,loss=lots", "loss", "lots"),
    ] {
        let e = error(s);
        assert!(matches!(e, AirSpecError::BadProbability { .. }), "{s}: {e}");
        let text = e.to_string();
        assert!(
            text.contains(&format!("{key}=\"{value}\"")) && text.contains("between 0 and 1"),
            "{text}"
        );
    }
    let e = error("sim:/x,speed=3");
    assert!(
        matches!(&e, AirSpecError::UnknownKey { key, .. } if key == "speed"),
        "{e}"
    );
    assert!(e.to_string().contains("unknown option \"speed\""), "{e}");
    let e = error("sim:/x,seed=-1");
    assert!(matches!(e, AirSpecError::BadSeed { .. }), "{e}");
    assert!(e.to_string().contains("seed=\"-1\""), "{e}");
    let e = error("sim:/x,loss");
    assert!(matches!(e, AirSpecError::NotKeyValue { .. }), "{e}");
    assert!(e.to_string().contains("\"loss\" is not key=value"), "{e}");
    let e = error("sim:/x,loss=0.1,loss=0.2");
    assert!(matches!(e, AirSpecError::DuplicateKey { .. }), "{e}");
}

#[test]
fn unusable_node_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = AirSpec::new(dir.path().join("created/on/demand"));
    for name in ["", "a/b", ".."] {
        let err = join(&spec, name).err().unwrap();
        assert!(matches!(err, AirError::BadName { .. }), "{name:?}: {err}");
    }
    let node = join(&spec, "ok").unwrap();
    assert!(node.link.socket_path().starts_with(&spec.dir));
    assert!(node.channel().is_realtime());
}

//! Two air directories, as on two machines, joined by a bridge in each and one byte stream between the
//! bridges (a Unix stream pair standing in for the serial port between two VMs), with the real driver on the
//! nodes at both ends.

mod common;
use common::{eventually, message};

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tmc_radio::{RadioConfig, Reception, Sx1276};
use tmc_radio_sim::air::{AirError, AirLink, AirSpec};
use tmc_radio_sim::air_bridge::{AirBridge, StreamEnd};
use tmc_radio_sim::{SimClock, SimDelay, SimDio0, SimResetPin, SimSpi};

type Radio = Sx1276<SimSpi, SimResetPin, SimDio0, SimDelay>;

const EU868: u32 = 868_000_000;
const GATEWAY: u8 = 1;
const RELAY: u8 = 10;

/// A node in `dir`: the real driver on the joined chip, its clock, and the link (kept alive by the caller).
fn node(dir: &Path, name: &str) -> (Radio, SimClock, AirLink) {
    common::air_node(
        &AirSpec::new(dir),
        name,
        RadioConfig::radiohead_default(EU868),
    )
}

fn bridge(dir: &Path) -> Arc<AirBridge> {
    Arc::new(AirBridge::join(dir, "bridge").unwrap())
}

/// Runs `bridge.carry` on `stream` in a thread, as the binary does on its port, and returns once the bridge
/// writes its nodes' datagrams to the stream.
fn carry(bridge: &Arc<AirBridge>, stream: &UnixStream) -> JoinHandle<StreamEnd> {
    let streams = bridge.stats().streams;
    let carrier = {
        let (bridge, reader, writer) = (
            bridge.clone(),
            stream.try_clone().unwrap(),
            stream.try_clone().unwrap(),
        );
        thread::spawn(move || bridge.carry(reader, writer))
    };
    eventually("the bridge to carry the stream", || {
        bridge.stats().streams == streams + 1
    });
    carrier
}

fn expect_packet(radio: &mut Radio, payload: &[u8]) {
    match radio.receive(Duration::from_secs(5)).unwrap() {
        Reception::Packet(packet) => assert_eq!(packet.payload(), payload),
        other => panic!("expected the packet, got {other:?}"),
    }
}

#[test]
fn frames_cross_the_bridge_both_ways_and_reliable_sends_are_acknowledged() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (bridge_a, bridge_b) = (bridge(dir_a.path()), bridge(dir_b.path()));
    let (stream_a, stream_b) = UnixStream::pair().unwrap();
    let (carrier_a, carrier_b) = (carry(&bridge_a, &stream_a), carry(&bridge_b, &stream_b));
    let (relay_radio, relay_clock, relay_link) = node(dir_a.path(), "relay-10");
    let (gateway_radio, gateway_clock, gateway_link) = node(dir_b.path(), "gateway-1");
    common::reliable_exchange(
        (gateway_radio, gateway_clock, GATEWAY),
        (relay_radio, relay_clock, RELAY),
    );

    // Every transmission of one side crossed once: frames A to B, ACKs and the reply B to A. The bridges'
    // threads may still be on the last ACK.
    let counts = || {
        let (a, b) = (bridge_a.stats(), bridge_b.stats());
        [
            (a.to_stream, relay_link.stats().channel.transmissions),
            (b.to_stream, gateway_link.stats().channel.transmissions),
            (b.from_stream, a.to_stream),
            (a.from_stream, b.to_stream),
            (a.sent, relay_link.stats().received),
            (b.sent, gateway_link.stats().received),
        ]
    };
    eventually("every transmission to cross the bridge", || {
        counts().iter().all(|(x, y)| x == y)
    });
    let (a, b) = (bridge_a.stats(), bridge_b.stats());
    assert!(a.to_stream >= 4 && b.to_stream >= 4, "{a:?} {b:?}");
    for stats in [a, b] {
        assert_eq!(
            (
                stats.malformed_lines,
                stats.malformed_datagrams,
                stats.unwritable
            ),
            (0, 0, 0),
            "{stats:?}"
        );
        assert_eq!((stats.streams, stats.send_failures), (1, 0), "{stats:?}");
    }

    // Closing the stream ends both sides' carry, at end of file.
    stream_a.shutdown(Shutdown::Both).unwrap();
    for carrier in [carrier_a, carrier_b] {
        let end = carrier.join().unwrap();
        assert!(end.error.is_none() && end.bytes_read > 0, "{end}");
    }
}

#[test]
fn garbage_truncated_and_overlong_lines_are_dropped_and_the_next_datagram_arrives() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (bridge_a, bridge_b) = (bridge(dir_a.path()), bridge(dir_b.path()));
    let (stream_a, stream_b) = UnixStream::pair().unwrap();
    let (mut relay, _, _relay_link) = node(dir_a.path(), "relay");
    let (mut gateway, _, gateway_link) = node(dir_b.path(), "gateway");
    gateway.start_receive().unwrap();

    // Written where bridge A writes, before it does: the stream keeps the order.
    let mut injector = stream_a.try_clone().unwrap();
    injector.write_all(b"this is not hex\n").unwrap();
    // A datagram cut short: the magic and version only.
    injector.write_all(b"544d434102\n").unwrap();
    injector.write_all(&[b'a'; 5000]).unwrap();
    injector.write_all(b"\n").unwrap();
    // A line a killed peer left unfinished: bridge A's first (empty) line ends it.
    injector.write_all(b"544d4341020033bf").unwrap();

    let (carrier_a, carrier_b) = (carry(&bridge_a, &stream_a), carry(&bridge_b, &stream_b));
    let frame = message(5, 30);
    relay.transmit(&frame).unwrap();
    expect_packet(&mut gateway, &frame);

    let b = bridge_b.stats();
    assert_eq!(
        (b.malformed_lines, b.from_stream, b.sent),
        (4, 1, 1),
        "{b:?}"
    );
    assert_eq!(gateway_link.stats().received, 1);
    // Nothing comes back: bridge B never hears what it injects, the gateway did not transmit.
    assert_eq!(b.to_stream, 0, "{b:?}");
    let a = bridge_a.stats();
    assert_eq!(
        (a.to_stream, a.from_stream, a.malformed_lines),
        (1, 0, 0),
        "{a:?}"
    );

    stream_b.shutdown(Shutdown::Both).unwrap();
    carrier_a.join().unwrap();
    carrier_b.join().unwrap();
}

#[test]
fn a_stream_that_ends_is_reported_packets_meanwhile_are_dropped_and_a_new_stream_carries_on() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (bridge_a, bridge_b) = (bridge(dir_a.path()), bridge(dir_b.path()));
    let (mut relay, _, _relay_link) = node(dir_a.path(), "relay");
    let (mut gateway, _, _gateway_link) = node(dir_b.path(), "gateway");
    gateway.start_receive().unwrap();

    let (stream_a, stream_b) = UnixStream::pair().unwrap();
    let (carrier_a, carrier_b) = (carry(&bridge_a, &stream_a), carry(&bridge_b, &stream_b));
    relay.transmit(&message(1, 10)).unwrap();
    expect_packet(&mut gateway, &message(1, 10));

    // Side A dies in the middle of a line: B counts the unfinished line and reports the end of its stream.
    stream_a.try_clone().unwrap().write_all(b"544d43").unwrap();
    stream_a.shutdown(Shutdown::Both).unwrap();
    let end_b = carrier_b.join().unwrap();
    assert!(end_b.error.is_none(), "{end_b}");
    assert!(end_b.to_string().contains("end of stream"), "{end_b}");
    assert_eq!(bridge_b.stats().malformed_lines, 1);
    carrier_a.join().unwrap();

    // Without a stream a packet is heard by nobody beyond the bridge, and counted.
    relay.transmit(&message(2, 10)).unwrap();
    eventually("bridge A to drop the packet", || {
        bridge_a.stats().unwritable == 1
    });
    assert_eq!(bridge_a.stats().to_stream, 1);

    // The peer is back on a new stream.
    let (stream_a, stream_b) = UnixStream::pair().unwrap();
    let (carrier_a, carrier_b) = (carry(&bridge_a, &stream_a), carry(&bridge_b, &stream_b));
    relay.transmit(&message(3, 10)).unwrap();
    expect_packet(&mut gateway, &message(3, 10));
    assert_eq!(bridge_b.stats().from_stream, 2);

    stream_b.shutdown(Shutdown::Both).unwrap();
    carrier_a.join().unwrap();
    carrier_b.join().unwrap();
}

#[test]
fn a_read_error_ends_the_stream_and_is_reported() {
    struct Unplugged;
    impl Read for Unplugged {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("port unplugged"))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bridge = AirBridge::join(dir.path(), "bridge").unwrap();
    let end = bridge.carry(Unplugged, io::sink());
    assert_eq!(end.bytes_read, 0);
    assert!(end.error.is_some());
    let text = end.to_string();
    assert!(
        text.contains("read error") && text.contains("port unplugged"),
        "{text}"
    );
}

#[test]
fn a_bridge_name_in_use_or_unusable_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = AirBridge::join(dir.path(), "bridge").unwrap();
    assert_eq!(first.name(), "bridge");
    assert_eq!(first.socket_path(), dir.path().join("bridge.sock"));
    let err = AirBridge::join(dir.path(), "bridge").unwrap_err();
    assert!(matches!(err, AirError::NameInUse { .. }), "{err}");
    let err = AirBridge::join(dir.path(), "a/b").unwrap_err();
    assert!(matches!(err, AirError::BadName { .. }), "{err}");
    // Leaving takes the socket with it; the name is free again.
    drop(first);
    assert!(!dir.path().join("bridge.sock").exists());
    AirBridge::join(dir.path(), "bridge").unwrap();
}

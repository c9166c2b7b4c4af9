//! On-target checks of the sensor node's logic on the lx106: the MQTT codec and client state, the
//! publish schedule and back-off, the reading payload, the node's whole cycle against the simulated
//! broker, and the firmware's own bench transport, byte ring and CCOUNT clock.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::hint::black_box;

use tmc_hil_test::{ensure, expect_eq};

fn mqtt_connect_bytes() -> Result<(), String> {
    use tmc_sensor_core::mqtt::Connect;
    const WANT: [u8; 21] = [
        0x10, 0x13, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3C, 0x00, 0x07, 0x65,
        0x73, 0x70, 0x38, 0x32, 0x36, 0x36,
    ];
    let c = Connect::new(black_box("esp8266"), black_box(60), true);
    expect_eq!(c.encoded_len(), Ok(WANT.len()))?;
    let mut out = [0u8; 64];
    let n = c.encode(&mut out).map_err(|x| alloc::format!("{x:?}"))?;
    expect_eq!(&out[..n], &WANT[..])?;
    let mut small = [0u8; 20];
    ensure(c.encode(&mut small).is_err(), || {
        String::from("20-byte buffer accepted")
    })
}

fn mqtt_publish_round_trip() -> Result<(), String> {
    use core::num::NonZeroU16;
    use tmc_sensor_core::mqtt::{decode, Packet, Publish, QoS};
    let id = NonZeroU16::new(black_box(7)).ok_or_else(|| String::from("id 0"))?;
    let mut payload = [0u8; 64];
    let plen = tmc_sensor_core::write_reading("sensor1", 17, 647, &mut payload)
        .map_err(|x| alloc::format!("{x:?}"))?;
    let p = Publish {
        topic: black_box("tmc/sensor1"),
        payload: &payload[..plen],
        qos: QoS::AtLeastOnce {
            packet_id: id,
            dup: false,
        },
        retain: false,
    };
    let mut out = [0u8; 128];
    let n = p.encode(&mut out).map_err(|x| alloc::format!("{x:?}"))?;
    expect_eq!(p.encoded_len(), Ok(n))?;
    // 0x32: PUBLISH, QoS 1; 2 + 11 topic + 2 id + payload.
    expect_eq!(
        &out[..4],
        &[0x32u8, (2 + 11 + 2 + plen) as u8, 0x00, 0x0B][..]
    )?;
    expect_eq!(&out[15..17], &[0x00u8, 0x07][..])?;
    let (pkt, used) = decode(&out[..n]).map_err(|x| alloc::format!("{x:?}"))?;
    expect_eq!(used, n)?;
    expect_eq!(pkt, Packet::Publish(p))?;
    // Truncated input asks for more.
    match decode(&out[..n - 1]) {
        Err(err) if err.is_need_more() => Ok(()),
        other => Err(alloc::format!("truncated decode: {other:?}")),
    }
}

fn mqtt_connack_decode() -> Result<(), String> {
    use tmc_sensor_core::mqtt::{decode, ConnAck, ConnectRefused, DecodeError, Packet};
    let (pkt, used) =
        decode(black_box(&[0x20, 0x02, 0x01, 0x00])).map_err(|x| alloc::format!("{x:?}"))?;
    expect_eq!(used, 4)?;
    expect_eq!(
        pkt,
        Packet::ConnAck(ConnAck {
            session_present: true,
            refused: None
        })
    )?;
    let (pkt, _) =
        decode(black_box(&[0x20, 0x02, 0x00, 0x05])).map_err(|x| alloc::format!("{x:?}"))?;
    match pkt {
        Packet::ConnAck(ack) => expect_eq!(ack.result(), Err(ConnectRefused::NotAuthorized))?,
        other => return Err(alloc::format!("{other:?}")),
    }
    expect_eq!(
        decode(black_box(&[0x20, 0x02, 0x00, 0x06])).map(|(p, _)| p),
        Err(DecodeError::UnknownConnectReturnCode(6))
    )?;
    let (pkt, _) =
        decode(black_box(&[0x40, 0x02, 0x00, 0x07])).map_err(|x| alloc::format!("{x:?}"))?;
    expect_eq!(pkt, Packet::PubAck(core::num::NonZeroU16::new(7).unwrap()))?;
    expect_eq!(
        decode(black_box(&[0xD0, 0x00])).map(|(p, _)| p),
        Ok(Packet::PingResp)
    )
}

fn mqtt_remaining_length() -> Result<(), String> {
    use tmc_sensor_core::mqtt::{
        decode_remaining_length, encode_remaining_length, remaining_length_len, DecodeError,
        EncodeError, MAX_REMAINING_LENGTH,
    };
    for (len, want) in tmc_sensor_core::sim::REMAINING_LENGTH_VECTORS {
        let len = black_box(len);
        let mut out = [0u8; 4];
        let n =
            encode_remaining_length(len, &mut out).map_err(|x| alloc::format!("{len}: {x:?}"))?;
        expect_eq!(&out[..n], want)?;
        expect_eq!(remaining_length_len(len), want.len())?;
        expect_eq!(decode_remaining_length(want), Ok((len, want.len())))?;
    }
    expect_eq!(MAX_REMAINING_LENGTH, 268_435_455)?;
    expect_eq!(
        encode_remaining_length(black_box(268_435_456), &mut [0u8; 4]),
        Err(EncodeError::TooLarge)
    )?;
    ensure(
        encode_remaining_length(black_box(128), &mut [0u8; 1]).is_err(),
        || String::from("128 into 1 byte accepted"),
    )?;
    expect_eq!(
        decode_remaining_length(black_box(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01])),
        Err(DecodeError::MalformedRemainingLength)
    )?;
    expect_eq!(
        decode_remaining_length(black_box(&[0x80, 0x80])),
        Err(DecodeError::NeedMore)
    )?;
    expect_eq!(
        decode_remaining_length(black_box(&[0x80, 0x00])),
        Ok((0, 2))
    )
}

fn mqtt_client_state() -> Result<(), String> {
    use tmc_sensor_core::mqtt::client::{InFlight, KeepAlive, KeepAliveAction, PacketIds};
    use tmc_sensor_core::mqtt::QoS;
    // Packet ids: 1, 2, ..., 65535, 1 (never 0).
    let mut ids = PacketIds::new();
    expect_eq!(ids.next_id().get(), 1)?;
    expect_eq!(ids.next_id().get(), 2)?;
    for _ in 3..=65_535u32 {
        ids.next_id();
    }
    expect_eq!(ids.next_id().get(), 1)?;

    // InFlight: resend with DUP after retry_ms.
    let id = core::num::NonZeroU16::new(42).unwrap();
    let mut f = InFlight::sent(id, black_box(1_000), 5_000);
    expect_eq!(
        f.first_qos(),
        QoS::AtLeastOnce {
            packet_id: id,
            dup: false
        }
    )?;
    expect_eq!(f.wait_ms(3_000), 3_000)?;
    expect_eq!(f.poll(5_999), None)?;
    expect_eq!(
        f.poll(6_000),
        Some(QoS::AtLeastOnce {
            packet_id: id,
            dup: true
        })
    )?;
    expect_eq!(f.sends(), 2)?;
    expect_eq!(f.wait_ms(6_000), 5_000)?;
    expect_eq!(f.wait_ms(500), 5_000)?; // clock went backwards: no time passed
    expect_eq!(f.is_acked_by(id), true)?;
    expect_eq!(
        f.is_acked_by(core::num::NonZeroU16::new(43).unwrap()),
        false
    )?;

    // KeepAlive 60 s: ping after 60 s idle, lost 30 s later without an answer.
    let mut k = KeepAlive::new(black_box(60), 0);
    expect_eq!(k.response_timeout_ms(), 30_000)?;
    expect_eq!(k.poll(59_999), KeepAliveAction::Wait)?;
    expect_eq!(k.wait_ms(0), 60_000)?;
    expect_eq!(k.poll(60_000), KeepAliveAction::SendPingReq)?;
    expect_eq!(k.ping_outstanding(), true)?;
    expect_eq!(k.poll(89_999), KeepAliveAction::Wait)?;
    expect_eq!(k.poll(90_000), KeepAliveAction::ConnectionLost)?;
    let mut k = KeepAlive::new(60, 0);
    expect_eq!(k.poll(60_000), KeepAliveAction::SendPingReq)?;
    k.packet_received(60_100);
    expect_eq!(k.ping_outstanding(), false)?;
    expect_eq!(k.poll(90_000), KeepAliveAction::Wait)?;
    // Keep-alive 0: off.
    let mut k = KeepAlive::new(0, 0);
    expect_eq!(k.poll(u64::MAX), KeepAliveAction::Wait)?;
    expect_eq!(k.wait_ms(0), u64::MAX)
}

fn schedule_grid_and_backoff() -> Result<(), String> {
    use tmc_sensor_core::{Backoff, PublishSchedule, Tick};
    let mut s = PublishSchedule::new(black_box(10_000), 1_000);
    expect_eq!(s.poll(999), None)?;
    expect_eq!(s.wait_ms(0), 1_000)?;
    expect_eq!(
        s.poll(1_000),
        Some(Tick {
            slot_ms: 1_000,
            missed: 0
        })
    )?;
    expect_eq!(s.next_ms(), Some(11_000))?;
    expect_eq!(
        s.poll(11_500),
        Some(Tick {
            slot_ms: 11_000,
            missed: 0
        })
    )?;
    // 3 whole slots (21 000, 31 000, 41 000) skipped, 51 000 published.
    expect_eq!(
        s.poll(55_000),
        Some(Tick {
            slot_ms: 51_000,
            missed: 3
        })
    )?;
    expect_eq!(s.missed_total(), 3)?;
    expect_eq!(s.next_ms(), Some(61_000))?;
    expect_eq!(s.is_due(60_999), false)?;
    // End of time: saturates, no panic.
    let mut s = PublishSchedule::new(1_000, u64::MAX - 10);
    ensure(s.poll(u64::MAX).is_some(), || {
        String::from("slot at u64::MAX-10 not due")
    })?;
    expect_eq!(s.next_ms(), None)?;
    expect_eq!(s.wait_ms(0), u64::MAX)?;

    // Back-off 500 ms .. 60 s, equal jitter: delay in [c/2, c], c = min(max, min * 2^n).
    let mut b = Backoff::new(black_box(500), 60_000);
    let mut want_ceiling = 500u64;
    for (n, r) in [
        0u32,
        u32::MAX,
        0x8000_0000,
        12_345,
        1,
        u32::MAX,
        7,
        0,
        u32::MAX,
        99,
    ]
    .into_iter()
    .enumerate()
    {
        let c = b.ceiling_ms();
        expect_eq!(c, want_ceiling)?;
        let d = b.next_delay_ms(black_box(r));
        ensure(d >= c / 2 && d <= c, || {
            alloc::format!("attempt {n}: delay {d} outside [{}, {c}]", c / 2)
        })?;
        want_ceiling = (want_ceiling * 2).min(60_000);
    }
    // Host values (tmc-sensor-core on x86_64).
    let mut b = Backoff::new(500, 60_000);
    expect_eq!(
        [0u32, u32::MAX, 0x8000_0000, 12_345].map(|r| b.next_delay_ms(black_box(r))),
        [250u64, 1_000, 1_500, 2_000]
    )?;
    for _ in 0..100 {
        b.next_delay_ms(u32::MAX);
    }
    expect_eq!(b.ceiling_ms(), 60_000)?;
    b.reset();
    expect_eq!((b.attempt(), b.ceiling_ms()), (0, 500))
}

fn sensor_reading() -> Result<(), String> {
    use tmc_sensor_core::{adc, reading_len, write_reading, BufferTooSmall};
    let id = black_box("sensor1");
    let seq = black_box(17u64);
    let a = adc(id, seq);
    // Expected values computed on the host (x86_64) from the same crate.
    expect_eq!(a, 647)?;
    expect_eq!(
        [0u64, 1, 60, 119, 12_345_678_901].map(|s| adc("sensor1", black_box(s))),
        [362u16, 348, 686, 347, 651]
    )?;
    let mut out = [0u8; 64];
    let n = write_reading(id, seq, a, &mut out).map_err(|x| alloc::format!("{x:?}"))?;
    expect_eq!(
        core::str::from_utf8(&out[..n]).map_err(|_| String::from("not UTF-8"))?,
        r#"{"id":"sensor1","seq":17,"adc":647}"#
    )?;
    expect_eq!(reading_len(id, seq, a), n)?;
    expect_eq!(
        write_reading(id, seq, a, &mut out[..n - 1]),
        Err(BufferTooSmall {
            needed: n,
            available: n - 1
        })
    )?;
    let mut big = [0u8; 96];
    let n = write_reading("s\"1", u64::MAX, 1023, &mut big).map_err(|x| alloc::format!("{x:?}"))?;
    expect_eq!(
        core::str::from_utf8(&big[..n]).map_err(|_| String::from("not UTF-8"))?,
        r#"{"id":"s\"1","seq":18446744073709551615,"adc":1023}"#
    )
}

/// The node's scripted cycle (as in the host tests): publish/PUBACK, a lost PUBACK resent with DUP,
/// a connection dropped with a reading in flight, reconnect and resend; every reading acknowledged
/// exactly once, in order.
fn node_cycle() -> Result<(), String> {
    use tmc_sensor_core::node::{Node, NodeConfig, Wait};
    use tmc_sensor_core::sim::{SimBroker, SimSensor};
    let config = NodeConfig {
        puback_retry_ms: 2000,
        ..NodeConfig::new("esp8266-1", "broker.local", "sensor1")
    };
    let mut node = Node::new(config);
    let mut broker = SimBroker::default();
    let mut adc = SimSensor::new("sensor1");
    let mut log = String::with_capacity(4096);
    let (mut now, mut rng) = (0u64, 0x1234_5678u32);
    let mut run = |until: u64, node: &mut Node<'_>, broker: &mut SimBroker, log: &mut String| {
        while now < until {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let Wait(w) = node.poll(now, rng, broker, &mut adc, log);
            now += w.clamp(1, 60_000).min(until - now).max(1);
        }
    };
    run(2_500, &mut node, &mut broker, &mut log);
    let adc1 = tmc_sensor_core::adc("sensor1", 1);
    let head = alloc::format!(
        "mqtt: connecting to broker.local:8883\nmqtt: connected (session present=0)\npublish seq=1 adc={adc1} -> /esp8266\npuback seq=1\n"
    );
    ensure(log.starts_with(&head), || alloc::format!("log: {log}"))?;
    broker.drop_pubacks = 1;
    run(6_500, &mut node, &mut broker, &mut log);
    ensure(log.contains("(dup)\n"), || alloc::format!("no DUP: {log}"))?;
    broker.drop_conn_on_publish = 1;
    run(14_500, &mut node, &mut broker, &mut log);
    ensure(
        log.contains("mqtt: connection lost: connection reset\nretry in "),
        || alloc::format!("no loss: {log}"),
    )?;
    expect_eq!(broker.connects, 2)?;
    expect_eq!(broker.publishes.iter().filter(|p| p.dup).count(), 1)?;
    expect_eq!(broker.violations.len(), 0)?;
    let reads = adc.reads;
    expect_eq!(reads, 15)?;
    expect_eq!(broker.acked, (1..=reads).collect::<Vec<u64>>())?;
    expect_eq!(node.stats().acked, reads)?;
    expect_eq!(node.queued().len(), 0)
}

/// `transport::ring::ByteRing`, the SDK transport's receive ring and send
/// queue: FIFO order across the wrap, all-or-nothing push, partial pop.
fn byte_ring() -> Result<(), String> {
    use tmc_firmware::transport::ring::ByteRing;
    let mut ring: ByteRing<8> = ByteRing::new();
    let mut out = [0u8; 8];
    expect_eq!(ring.pop(&mut out), 0)?;
    expect_eq!(ring.push(&[1, 2, 3, 4, 5]), true)?;
    expect_eq!(ring.pop(&mut out[..3]), 3)?;
    expect_eq!(&out[..3], &[1, 2, 3])?;
    // 2 queued, 6 free: 6 more wrap around the end of the buffer.
    expect_eq!(ring.push(&[6, 7, 8, 9, 10, 11]), true)?;
    expect_eq!((ring.len(), ring.free()), (8, 0))?;
    // Full: nothing of a packet that does not fit goes in.
    expect_eq!(ring.push(&[12]), false)?;
    expect_eq!(ring.pop(&mut out), 8)?;
    expect_eq!(out, [4, 5, 6, 7, 8, 9, 10, 11])?;
    expect_eq!(ring.is_empty(), true)?;
    expect_eq!(ring.push(&[0; 9]), false)?;
    expect_eq!(ring.push(&[42, 43]), true)?;
    ring.clear();
    expect_eq!(ring.pop(&mut out), 0)
}

/// The sensor binary's bench transport (`transport::bench`) and TOUT stand-in
/// (`hw::adc::ToutAdc`) driving a `Node`: CONNECT/CONNACK, QoS 1 PUBLISH and
/// PUBACK, PINGREQ/PINGRESP, as hex lines on the trace writer.
fn bench_transport_cycle() -> Result<(), String> {
    use tmc_firmware::hw::adc::ToutAdc;
    use tmc_firmware::transport::bench::BenchTransport;
    use tmc_sensor_core::node::{Node, NodeConfig, Transport, Wait};
    // Keep-alive 10 s < interval 30 s, so the idle connection pings.
    let config = NodeConfig {
        interval_ms: 30_000,
        keep_alive_s: 10,
        ..NodeConfig::new("esp8266", "mqtt.com", "esp8266")
    };
    let mut node = Node::new(config);
    let mut trace = String::with_capacity(8192);
    let mut log = String::with_capacity(4096);
    {
        let mut transport = BenchTransport::new(&mut trace);
        let mut adc = ToutAdc::new("esp8266");
        let mut now = 0u64;
        while now < 61_000 {
            let Wait(w) = node.poll(now, 0x2545_F491, &mut transport, &mut adc, &mut log);
            now += w.clamp(1, 1000);
        }
        // After close the bench broker refuses to send.
        transport.close();
        ensure(transport.send(&[0x30, 0x00]).is_err(), || {
            "send after close accepted".into()
        })?;
    }
    ensure(
        trace.contains(
            "tx: 10 13 00 04 4d 51 54 54 04 02 00 0a 00 07 65 73 70 38 32 36 36\nrx: 20 02 00 00\n",
        ),
        || alloc::format!("no CONNECT/CONNACK: {trace}"),
    )?;
    ensure(trace.contains("\nrx: 40 02 00 01\n"), || {
        alloc::format!("no PUBACK 1: {trace}")
    })?;
    ensure(trace.contains("tx: c0 00\nrx: d0 00\n"), || {
        alloc::format!("no PINGRESP: {trace}")
    })?;
    let adc1 = tmc_sensor_core::adc("esp8266", 1);
    ensure(
        log.contains(&alloc::format!(
            "publish seq=1 adc={adc1} -> /esp8266\npuback seq=1\n"
        )),
        || alloc::format!("log: {log}"),
    )?;
    // Readings at 0, 30 s, 60 s, each acknowledged.
    expect_eq!(node.stats().acked, 3)?;
    expect_eq!(node.stats().failures, 0)
}

/// `hw::clock::Clock`: 32-bit counter wrap extended to u64, ms at 80 MHz.
fn ccount_clock_wrap() -> Result<(), String> {
    use tmc_firmware::hw::clock::{Clock, CYCLES_PER_MS};
    let steps = [
        0xFFFF_0000u32,
        0xFFFF_FFFF,
        0x0000_0010,
        0x8000_0000,
        0x0000_0005,
    ];
    let mut i = 0usize;
    let mut clock = Clock::with_source(move || {
        let v = steps[i.min(steps.len() - 1)];
        i += 1;
        v
    });
    expect_eq!(clock.cycles(), 0xFFFF_FFFFu64)?;
    expect_eq!(clock.cycles(), 0x1_0000_0010u64)?;
    expect_eq!(clock.cycles(), 0x1_8000_0000u64)?;
    expect_eq!(clock.now_ms(), 0x2_0000_0005u64 / CYCLES_PER_MS as u64)?;
    expect_eq!(CYCLES_PER_MS, 80_000)
}

#[no_mangle]
pub extern "C" fn tmc_main() -> i32 {
    tmc_hil_test::run(
        "node",
        &[
            ("mqtt_connect_bytes", mqtt_connect_bytes),
            ("mqtt_publish_round_trip", mqtt_publish_round_trip),
            ("mqtt_connack_decode", mqtt_connack_decode),
            ("mqtt_remaining_length", mqtt_remaining_length),
            ("mqtt_client_state", mqtt_client_state),
            ("schedule_grid_and_backoff", schedule_grid_and_backoff),
            ("sensor_reading", sensor_reading),
            ("node_cycle", node_cycle),
            ("bench_transport_cycle", bench_transport_cycle),
            ("byte_ring", byte_ring),
            ("ccount_clock_wrap", ccount_clock_wrap),
        ],
    )
}

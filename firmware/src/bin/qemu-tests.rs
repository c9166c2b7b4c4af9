//! On-target checks for the ESP8266 build, run under
//! `qemu-system-xtensa -M sim -cpu lx106 -semihosting`.
//! Prints one line per check and `N passed, M failed`; exit status is 1 if
//! anything failed (0 otherwise), 101 on panic, 134 on trap/abort.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::hint::black_box;
use core::sync::atomic::{AtomicU32, Ordering};

use tmc_firmware::{println, BumpAlloc, FmtBuf};

#[global_allocator]
static HEAP: BumpAlloc = BumpAlloc::new();

#[path = "qemu-tests/console.rs"]
mod console;
#[path = "qemu-tests/mtls.rs"]
mod mtls;

type Check = fn() -> Result<(), String>;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

macro_rules! expect_eq {
    ($got:expr, $want:expr) => {{
        let (g, w) = ($got, $want);
        ensure(g == w, || {
            alloc::format!("{} = {:?}, want {:?}", stringify!($got), g, w)
        })
    }};
}

fn u64_mul() -> Result<(), String> {
    let a: u64 = black_box(0x1234_5678_9abc_def0);
    let b: u64 = black_box(0x0fed_cba9);
    expect_eq!(a.wrapping_mul(b), 0xa3d7_0a3c_5fa7_7c70u64)?;
    let x: u32 = black_box(0xffff_ffff);
    expect_eq!(u64::from(x) * u64::from(x), 0xffff_fffe_0000_0001u64)?;
    expect_eq!(
        black_box(123_456_789u32).wrapping_mul(black_box(987_654_321)),
        4_227_814_277u32
    )
}

fn u64_div() -> Result<(), String> {
    let n: u64 = black_box(10_000_000_000_000_000_019);
    let d: u64 = black_box(1_000_000_007);
    expect_eq!(n / d, 9_999_999_930)?;
    expect_eq!(n % d, 509)?;
    let s: i64 = black_box(-9_000_000_000_123);
    expect_eq!(s / black_box(1000), -9_000_000_000)?;
    expect_eq!(s % black_box(1000), -123)?;
    expect_eq!(black_box(1_000_000u32) / black_box(7), 142_857)
}

/// CRC-16 as used by ATECC508/608: poly 0x8005, data bits LSB-first, init 0,
/// result little-endian.
fn crc16_atecc(data: &[u8]) -> [u8; 2] {
    let mut crc: u16 = 0;
    for &byte in data {
        for bit in 0..8 {
            let data_bit = (byte >> bit) & 1;
            let crc_bit = (crc >> 15) as u8;
            crc <<= 1;
            if data_bit != crc_bit {
                crc ^= 0x8005;
            }
        }
    }
    crc.to_le_bytes()
}

fn crc16() -> Result<(), String> {
    expect_eq!(crc16_atecc(black_box(&[0x04, 0x11])), [0x33, 0x43])?;
    expect_eq!(
        crc16_atecc(black_box(&[0x07, 0x02, 0x00, 0x00, 0x00])),
        [0x1e, 0x2d]
    )
}

fn fmt_json() -> Result<(), String> {
    let mut buf = FmtBuf::<64>::new();
    let (id, seq, adc) = black_box(("sensor1", 17u32, 512u16));
    write!(buf, "{{\"id\":\"{}\",\"seq\":{},\"adc\":{}}}", id, seq, adc)
        .map_err(|_| String::from("write! failed"))?;
    expect_eq!(buf.as_str(), r#"{"id":"sensor1","seq":17,"adc":512}"#)
}

fn fmt_numbers() -> Result<(), String> {
    let mut buf = FmtBuf::<96>::new();
    write!(
        buf,
        "{:08x}|{:>5}|{:<4}|{}|{}|{:.2}",
        black_box(0xdead_beefu32),
        black_box(-42i32),
        black_box(7u8),
        black_box(u64::MAX),
        black_box(i64::MIN),
        black_box(3.14159f32)
    )
    .map_err(|_| String::from("write! failed"))?;
    expect_eq!(
        buf.as_str(),
        "deadbeef|  -42|7   |18446744073709551615|-9223372036854775808|3.14"
    )
}

fn alloc_vec() -> Result<(), String> {
    let mut v: Vec<u32> = Vec::new();
    for i in 0..1000u32 {
        v.push(black_box(i * 3));
    }
    expect_eq!(v.len(), 1000)?;
    let sum: u64 = v.iter().map(|&x| u64::from(x)).sum();
    expect_eq!(sum, 1_498_500)?;
    let mut popped = 0;
    while let Some(x) = v.pop() {
        if x % 2 == 1 {
            popped += 1;
        }
    }
    expect_eq!(popped, 500)?;
    expect_eq!(v.is_empty(), true)
}

fn alloc_collections() -> Result<(), String> {
    let b = Box::new([0xa5u8; 256]);
    expect_eq!(b.iter().map(|&x| u32::from(x)).sum::<u32>(), 0xa5 * 256)?;
    let mut s = String::new();
    for i in 0..5 {
        write!(s, "{i},").map_err(|_| String::from("write failed"))?;
    }
    expect_eq!(s.as_str(), "0,1,2,3,4,")?;
    let mut m = BTreeMap::new();
    for k in [5u16, 1, 9, 3] {
        m.insert(k, k * 10);
    }
    expect_eq!(
        m.keys().copied().collect::<Vec<_>>(),
        alloc::vec![1, 3, 5, 9]
    )?;
    ensure(HEAP.used() > 0 && HEAP.used() < HEAP.capacity(), || {
        alloc::format!("heap used {} of {}", HEAP.used(), HEAP.capacity())
    })
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn atomics_and_bits() -> Result<(), String> {
    COUNTER.store(black_box(41), Ordering::SeqCst);
    let v = COUNTER.load(Ordering::SeqCst) + 1;
    COUNTER.store(v, Ordering::Release);
    expect_eq!(COUNTER.load(Ordering::Acquire), 42)?;
    expect_eq!(black_box(0x0000_f000u32).leading_zeros(), 16)?;
    expect_eq!(black_box(0x0100u32).trailing_zeros(), 8)?;
    expect_eq!(black_box(0x1234_5678u32).swap_bytes(), 0x7856_3412)?;
    expect_eq!(black_box(0xf0f0_f0f0u32).count_ones(), 16)
}

fn soft_float() -> Result<(), String> {
    let x: f32 = black_box(1.5);
    let y: f64 = black_box(2.25);
    expect_eq!(x * 4.0, 6.0f32)?;
    expect_eq!(y / 0.5, 4.5f64)?;
    expect_eq!((black_box(1000.7f32)) as u32, 1000)
}

fn cycle_counter() -> Result<(), String> {
    let a = tmc_firmware::cycles();
    let mut acc = 0u32;
    for i in 0..black_box(1000u32) {
        acc = acc.wrapping_add(black_box(i));
    }
    black_box(acc);
    let b = tmc_firmware::cycles();
    ensure(b != a, || alloc::format!("CCOUNT did not advance ({a})"))
}

// ---- workspace crates on the real ISA --------------------------------------

/// `tmc_atecc::crc16` (the crate's CRC, not the local reference above).
fn atecc_crc16() -> Result<(), String> {
    expect_eq!(tmc_atecc::crc16(black_box(&[0x04, 0x11])), [0x33, 0x43])?;
    expect_eq!(tmc_atecc::WAKE_RESPONSE, [0x04, 0x11, 0x33, 0x43])?;
    let data: [u8; 5] = black_box([0x07, 0x02, 0x00, 0x00, 0x00]);
    expect_eq!(tmc_atecc::crc16(&data), crc16_atecc(&data))
}

const INFO_FRAME: [u8; 8] = [0x03, 0x07, 0x30, 0x00, 0x00, 0x00, 0x03, 0x5D];
const RANDOM_FRAME: [u8; 8] = [0x03, 0x07, 0x1B, 0x00, 0x00, 0x00, 0x24, 0xCD];

fn atecc_command_frames() -> Result<(), String> {
    use tmc_atecc::protocol::MAX_FRAME;
    use tmc_atecc::Command;
    let mut frame = [0u8; MAX_FRAME];
    let len = black_box(Command::info_revision())
        .encode(&mut frame)
        .ok_or_else(|| String::from("info encode: None"))?;
    expect_eq!(&frame[..len], &INFO_FRAME[..])?;
    let len = black_box(Command::random())
        .encode(&mut frame)
        .ok_or_else(|| String::from("random encode: None"))?;
    expect_eq!(&frame[..len], &RANDOM_FRAME[..])?;
    let too_long = [0u8; 200];
    let cmd = Command {
        data: black_box(&too_long[..]),
        ..Command::random()
    };
    expect_eq!(cmd.encode(&mut frame), None)
}

/// The driver against the simulated chip: wake, Info, Random, Sign (Nonce + Sign).
fn atecc_driver_on_sim() -> Result<(), String> {
    use tmc_atecc::sim::{Model, Power, SimAtecc};
    use tmc_atecc::{Atecc, Device};
    let e = |what: &str, err: &dyn core::fmt::Debug| alloc::format!("{what}: {err:?}");

    for (model, want) in [
        (Model::Atecc508a, Device::Atecc508a),
        (Model::Atecc608a, Device::Atecc608 { silicon: 0x02 }),
    ] {
        let sim = SimAtecc::new(model);
        let mut chip = Atecc::new(sim.i2c(), sim.delay());
        expect_eq!(sim.power(), Power::Sleep)?;
        chip.wake().map_err(|x| e("wake", &x))?;
        expect_eq!(sim.power(), Power::Awake)?;
        let rev = chip.info().map_err(|x| e("info", &x))?;
        expect_eq!(rev.0, model.revision())?;
        expect_eq!(rev.device(), want)?;
        let frames = sim.command_frames();
        expect_eq!(frames.len(), 1)?;
        expect_eq!(frames[0].as_slice(), &INFO_FRAME[..])?;
    }

    let sim = SimAtecc::new(Model::Atecc608a);
    let mut chip = Atecc::new(sim.i2c(), sim.delay());
    let r1 = chip.random().map_err(|x| e("random", &x))?;
    let frames = sim.command_frames();
    expect_eq!(frames[0].as_slice(), &RANDOM_FRAME[..])?;
    // Unlocked config: the fixed test pattern FF FF 00 00 ...; locked: xorshift output.
    let pattern: [u8; 32] = core::array::from_fn(|i| if i % 4 < 2 { 0xFF } else { 0x00 });
    sim.set_locks(true, true);
    let r2 = chip.random().map_err(|x| e("random (locked)", &x))?;
    let r3 = chip.random().map_err(|x| e("random (locked)", &x))?;
    ensure(r1 == pattern || r1 != [0; 32], || {
        alloc::format!("random {r1:02x?}")
    })?;
    ensure(r2 != pattern && r2 != r3 && r2 != [0; 32], || {
        alloc::format!("locked random r2 {r2:02x?} r3 {r3:02x?}")
    })?;

    let sim = SimAtecc::new(Model::Atecc508a);
    let mut chip = Atecc::new(sim.i2c(), sim.delay());
    let digest: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(13) ^ 0xA5);
    // Real P-256 on the lx106: GenKey create, Sign, and the chip's own Verify of the signature.
    let pk = chip.generate_key(3).map_err(|x| e("generate_key", &x))?;
    sim.clear_log();
    let sig = chip
        .sign_digest(3, black_box(&digest))
        .map_err(|x| e("sign_digest", &x))?;
    expect_eq!(sim.executed(), alloc::vec![0x40u8, 0x16, 0x41])?;
    let frames = sim.command_frames();
    expect_eq!(&frames[1][..6], &[0x03u8, 0x07, 0x41, 0x80, 0x03, 0x00][..])?;
    expect_eq!(sim.tempkey(), None)?;
    expect_eq!(chip.verify_external(&pk, &digest, &sig), Ok(true))?;
    let mut bad = sig;
    bad[black_box(17)] ^= 0x01;
    expect_eq!(chip.verify_external(&pk, &digest, &bad), Ok(false))?;
    expect_eq!(chip.public_key(3).map_err(|x| e("public_key", &x))?, pk)?;
    expect_eq!(sim.public_key(3), Some(pk))?;
    // The private-key slot is never readable: execution error 0x0F.
    expect_eq!(
        chip.read_slot_block(3, 0),
        Err(tmc_atecc::AteccError::ExecutionError)
    )?;
    ensure(chip.public_key(16).is_err(), || {
        String::from("public_key(16) accepted")
    })?;
    ensure(sim.now_ns() > 0, || {
        String::from("virtual time did not advance")
    })
}

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

/// Self-test of the harness: `--features inject-failure` must exit 1.
#[cfg(feature = "inject-failure")]
fn injected_failure() -> Result<(), String> {
    expect_eq!(black_box(2 + 2), 5)
}

/// Self-test of the harness: `--features inject-panic` must exit 101.
#[cfg(feature = "inject-panic")]
fn injected_panic() -> Result<(), String> {
    let v: Vec<u8> = Vec::new();
    let i = black_box(3usize);
    expect_eq!(v[i], 0)
}

// ---- bit-banged I2C master against a fake wire -------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    Start,
    Stop,
    /// Byte the target received (address bytes included) and whether it ACKed.
    Rx(u8, bool),
    /// Byte the target sent and whether the master ACKed it.
    Tx(u8, bool),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Idle,
    Addr,
    Write,
    Read,
}

/// An I2C target on a modelled open-drain bus: samples SDA on SCL rising
/// edges, changes SDA only while SCL is low, detects START/STOP.
struct FakeTarget {
    address: u8,
    mode: Mode,
    bit: u8,
    shift: u8,
    sda_low: bool,
    tx: Vec<u8>,
    tx_pos: usize,
    tx_byte: u8,
    master_acked: bool,
    log: Vec<Wire>,
    /// Data bytes written to the target.
    rx: Vec<u8>,
    /// Optional backend: tmc_atecc::sim's chip behind the wire (address ACK,
    /// read bytes and write packets come from / go to it).
    sim: Option<tmc_atecc::sim::SimI2c>,
    /// Bytes of the current write, handed to `sim` at STOP / repeated START.
    pending: Vec<u8>,
    pending_addr: u8,
}

struct FakeBus {
    m_scl_low: bool,
    m_sda_low: bool,
    /// A target holding SCL low for good (stretch timeout check).
    scl_stuck: bool,
    scl: bool,
    sda: bool,
    target: FakeTarget,
}

impl FakeBus {
    fn new(address: u8, tx: &[u8]) -> Self {
        FakeBus {
            m_scl_low: false,
            m_sda_low: false,
            scl_stuck: false,
            scl: true,
            sda: true,
            target: FakeTarget {
                address,
                mode: Mode::Idle,
                bit: 0,
                shift: 0,
                sda_low: false,
                tx: tx.to_vec(),
                tx_pos: 0,
                tx_byte: 0,
                master_acked: false,
                log: Vec::new(),
                rx: Vec::new(),
                sim: None,
                pending: Vec::new(),
                pending_addr: 0,
            },
        }
    }

    fn line_scl(&self) -> bool {
        !(self.m_scl_low || self.scl_stuck)
    }

    fn line_sda(&self) -> bool {
        !(self.m_sda_low || self.target.sda_low)
    }

    /// Called after every master pin change: the target sees the edges.
    fn settle(&mut self) {
        let (scl, sda) = (self.line_scl(), self.line_sda());
        let t = &mut self.target;
        if scl && self.scl && sda != self.sda {
            t.flush();
            if !sda {
                t.log.push(Wire::Start);
                t.mode = Mode::Addr;
                t.bit = 0;
                t.shift = 0;
            } else {
                t.log.push(Wire::Stop);
                t.mode = Mode::Idle;
            }
            t.sda_low = false;
        } else if scl && !self.scl {
            // rising SCL: sample
            match t.mode {
                Mode::Addr | Mode::Write if t.bit < 8 => {
                    t.shift = (t.shift << 1) | u8::from(sda);
                    t.bit += 1;
                }
                Mode::Read if t.bit == 8 => t.master_acked = !sda,
                _ => {}
            }
        } else if !scl && self.scl {
            // falling SCL: drive the next bit
            match t.mode {
                Mode::Addr | Mode::Write if t.bit == 8 => {
                    let ack = if t.mode == Mode::Write {
                        true
                    } else {
                        t.address_ack(t.shift >> 1)
                    };
                    t.log.push(Wire::Rx(t.shift, ack));
                    if t.mode == Mode::Write {
                        t.rx.push(t.shift);
                        t.pending.push(t.shift);
                    } else {
                        t.pending_addr = t.shift >> 1;
                    }
                    t.sda_low = ack;
                    t.bit = 9;
                    if !ack {
                        t.mode = Mode::Idle;
                    }
                }
                Mode::Addr | Mode::Write if t.bit == 9 => {
                    t.sda_low = false;
                    t.bit = 0;
                    if t.mode == Mode::Addr && t.shift & 1 == 1 {
                        t.mode = Mode::Read;
                        t.load();
                    } else {
                        t.mode = Mode::Write;
                        t.shift = 0;
                    }
                }
                Mode::Read if t.bit < 7 => {
                    t.bit += 1;
                    t.sda_low = t.tx_byte & (0x80 >> t.bit) == 0;
                }
                Mode::Read if t.bit == 7 => {
                    t.bit = 8;
                    t.sda_low = false;
                }
                Mode::Read => {
                    t.log.push(Wire::Tx(t.tx_byte, t.master_acked));
                    if t.master_acked {
                        t.bit = 0;
                        t.load();
                    } else {
                        t.mode = Mode::Idle;
                        t.sda_low = false;
                    }
                }
                Mode::Idle => t.sda_low = false,
                _ => {}
            }
        }
        self.scl = scl;
        self.sda = self.line_sda();
    }
}

impl FakeTarget {
    fn address_ack(&mut self, addr: u8) -> bool {
        use embedded_hal::i2c::I2c;
        match &mut self.sim {
            None => addr == self.address,
            // 0x00: the wake pulse (the simulator checks its length from its bus speed).
            Some(sim) if addr == 0 => sim.write(0, &[]).is_ok(),
            Some(sim) => sim.read(addr, &mut []).is_ok(),
        }
    }

    fn flush(&mut self) {
        use embedded_hal::i2c::I2c;
        if let Some(sim) = &mut self.sim {
            if !self.pending.is_empty() {
                let _ = sim.write(self.pending_addr, &self.pending);
            }
        }
        self.pending.clear();
    }

    fn load(&mut self) {
        use embedded_hal::i2c::I2c;
        self.tx_byte = self.tx.get(self.tx_pos).copied().unwrap_or(0xFF);
        if let Some(sim) = &mut self.sim {
            let mut b = [0xFFu8];
            let _ = sim.read(self.pending_addr, &mut b);
            self.tx_byte = b[0];
        }
        self.tx_pos += 1;
        self.sda_low = self.tx_byte & 0x80 == 0;
    }
}

impl tmc_firmware::i2c_bitbang::Pins for FakeBus {
    fn set_scl_low(&mut self) {
        self.m_scl_low = true;
        self.settle();
    }
    fn release_scl(&mut self) {
        self.m_scl_low = false;
        self.settle();
    }
    fn set_sda_low(&mut self) {
        self.m_sda_low = true;
        self.settle();
    }
    fn release_sda(&mut self) {
        self.m_sda_low = false;
        self.settle();
    }
    fn read_sda(&mut self) -> bool {
        self.line_sda()
    }
    fn read_scl(&mut self) -> bool {
        self.line_scl()
    }
}

struct NoDelay;

impl embedded_hal::delay::DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

fn i2c_bitbang_protocol() -> Result<(), String> {
    use embedded_hal::i2c::{ErrorKind, I2c, NoAcknowledgeSource};
    use tmc_firmware::i2c_bitbang::{BitBangI2c, Error};
    use Wire::*;

    // write 03 07 30 00 00 00 03 5D to 0x60
    let mut i2c = BitBangI2c::new(FakeBus::new(0x60, &[]), NoDelay, 100_000);
    i2c.write(0x60, black_box(&INFO_FRAME))
        .map_err(|e| alloc::format!("write: {e:?}"))?;
    let (bus, _) = i2c.release();
    let mut want = alloc::vec![Start, Rx(0xC0, true)];
    want.extend(INFO_FRAME.iter().map(|&b| Rx(b, true)));
    want.push(Stop);
    expect_eq!(&bus.target.log, &want)?;
    expect_eq!(&bus.target.rx[..], &INFO_FRAME[..])?;
    ensure(bus.line_scl() && bus.line_sda(), || {
        String::from("bus not released after write")
    })?;

    // read 4 bytes: ACK, ACK, ACK, NACK
    let resp = [0x04, 0x11, 0x33, 0x43];
    let mut i2c = BitBangI2c::new(FakeBus::new(0x60, &resp), NoDelay, 100_000);
    let mut buf = [0u8; 4];
    i2c.read(0x60, &mut buf)
        .map_err(|e| alloc::format!("read: {e:?}"))?;
    expect_eq!(buf, resp)?;
    let (bus, _) = i2c.release();
    expect_eq!(
        &bus.target.log[..],
        &[
            Start,
            Rx(0xC1, true),
            Tx(0x04, true),
            Tx(0x11, true),
            Tx(0x33, true),
            Tx(0x43, false),
            Stop
        ][..]
    )?;

    // write_read: repeated START between the write and the read
    let mut i2c = BitBangI2c::new(FakeBus::new(0x60, &[0xA5, 0x5A]), NoDelay, 100_000);
    let mut buf = [0u8; 2];
    i2c.write_read(0x60, &[0x03], &mut buf)
        .map_err(|e| alloc::format!("write_read: {e:?}"))?;
    expect_eq!(buf, [0xA5, 0x5A])?;
    let (bus, _) = i2c.release();
    expect_eq!(
        &bus.target.log[..],
        &[
            Start,
            Rx(0xC0, true),
            Rx(0x03, true),
            Start,
            Rx(0xC1, true),
            Tx(0xA5, true),
            Tx(0x5A, false),
            Stop
        ][..]
    )?;

    // wrong address: NACK, STOP, ErrorKind::NoAcknowledge(Address)
    let mut i2c = BitBangI2c::new(FakeBus::new(0x60, &[]), NoDelay, 100_000);
    let err = i2c.write(0x61, &[0x01]).err();
    expect_eq!(
        err,
        Some(Error::NoAcknowledge(NoAcknowledgeSource::Address))
    )?;
    expect_eq!(
        embedded_hal::i2c::Error::kind(&err.unwrap()),
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
    )?;
    let (bus, _) = i2c.release();
    expect_eq!(&bus.target.log[..], &[Start, Rx(0xC2, false), Stop][..])?;

    // SCL held low: stretch timeout -> ErrorKind::Bus, no hang
    let mut bus = FakeBus::new(0x60, &[]);
    bus.scl_stuck = true;
    let mut i2c = BitBangI2c::new(bus, NoDelay, 100_000);
    i2c.set_stretch_timeout_us(50);
    let err = i2c.write(0x60, &[0x01]).err();
    expect_eq!(err, Some(Error::ClockStretchTimeout))?;
    expect_eq!(
        embedded_hal::i2c::Error::kind(&err.unwrap()),
        ErrorKind::Bus
    )
}

/// The tmc-atecc driver over the bit-banger, against a fake wire target that
/// wraps tmc_atecc::sim's chip: wake, Info, serial number, sleep.
fn i2c_bitbang_atecc() -> Result<(), String> {
    use tmc_atecc::sim::{Model, Power, SimAtecc};
    use tmc_atecc::{Atecc, Device};
    use tmc_firmware::i2c_bitbang::BitBangI2c;
    let e = |what: &str, err: &dyn core::fmt::Debug| alloc::format!("{what}: {err:?}");

    let sim = SimAtecc::new(Model::Atecc608a);
    let mut bus = FakeBus::new(0x60, &[]);
    bus.target.sim = Some(sim.i2c());
    let mut chip = Atecc::new(BitBangI2c::new(bus, NoDelay, 100_000), sim.delay());
    chip.wake().map_err(|x| e("wake", &x))?;
    expect_eq!(sim.power(), Power::Awake)?;
    let rev = chip.info().map_err(|x| e("info", &x))?;
    expect_eq!(rev.device(), Device::Atecc608 { silicon: 0x02 })?;
    let frames = sim.command_frames();
    expect_eq!(frames.len(), 1)?;
    expect_eq!(frames[0].as_slice(), &INFO_FRAME[..])?;
    let sn = chip.serial_number().map_err(|x| e("serial", &x))?;
    let config = sim.config();
    expect_eq!(&sn[..4], &config[..4])?;
    expect_eq!(&sn[4..], &config[8..13])?;
    chip.sleep().map_err(|x| e("sleep", &x))?;
    expect_eq!(sim.power(), Power::Sleep)?;

    // Absent chip: the driver reports NoWakeResponse, no panic.
    let sim = SimAtecc::new(Model::Atecc608a);
    sim.set_responsive(false);
    let mut bus = FakeBus::new(0x60, &[]);
    bus.target.sim = Some(sim.i2c());
    let mut chip = Atecc::new(BitBangI2c::new(bus, NoDelay, 100_000), sim.delay());
    let err = chip.wake().err();
    ensure(
        matches!(err, Some(tmc_atecc::AteccError::NoWakeResponse)),
        || alloc::format!("absent chip: wake = {err:?}"),
    )
}

/// The sensor's certificate request on the lx106: key made in the chip (GenKey), request signed by the
/// chip and checked by its Verify, PEM for the console.
fn csr_signed_by_chip() -> Result<(), String> {
    use tmc_node_tls::atecc::AteccElement;
    use tmc_node_tls::csr::{csr_pem, write_csr, MAX_CSR_DER_LEN, MAX_CSR_PEM_LEN};
    let sim = tmc_atecc::sim::SimAtecc::new(tmc_atecc::sim::Model::Atecc608a);
    let mut chip = tmc_atecc::Atecc::new(sim.i2c(), sim.delay());
    let public_key = chip
        .generate_key(0)
        .map_err(|e| alloc::format!("generate_key: {e:?}"))?;
    let mut element = AteccElement {
        chip: &mut chip,
        slot: 0,
    };
    let mut der = [0u8; MAX_CSR_DER_LEN];
    let n = write_csr(&mut element, black_box("esp1"), &mut der)
        .map_err(|e| alloc::format!("write_csr: {e}"))?;
    // The request carries the chip's public key as 04 X Y.
    ensure(
        der[..n]
            .windows(65)
            .any(|w| w[0] == 4 && w[1..] == public_key),
        || "the request does not carry the chip's key".into(),
    )?;
    let mut pem = [0u8; MAX_CSR_PEM_LEN];
    let m = csr_pem(&der[..n], &mut pem).map_err(|e| alloc::format!("csr_pem: {e}"))?;
    ensure(
        pem[..m].starts_with(b"-----BEGIN CERTIFICATE REQUEST-----\n"),
        || "PEM header".into(),
    )?;
    // The private-key slot stays unreadable.
    ensure(element.chip.read_slot_block(0, 0).is_err(), || {
        "slot 0 read".into()
    })
}

#[path = "qemu-tests/coroutine_checks.rs"]
mod coroutine_checks;
use coroutine_checks::{coroutine_stack_switch, tls_handshake_on_coroutine};

const CHECKS: &[(&str, Check)] = &[
    #[cfg(feature = "inject-failure")]
    ("injected_failure", injected_failure),
    #[cfg(feature = "inject-panic")]
    ("injected_panic", injected_panic),
    ("u64_mul", u64_mul),
    ("u64_div", u64_div),
    ("crc16_atecc", crc16),
    ("fmt_json", fmt_json),
    ("fmt_numbers", fmt_numbers),
    ("alloc_vec", alloc_vec),
    ("alloc_collections", alloc_collections),
    ("atomics_and_bits", atomics_and_bits),
    ("soft_float", soft_float),
    ("cycle_counter", cycle_counter),
    ("atecc_crc16", atecc_crc16),
    ("atecc_command_frames", atecc_command_frames),
    ("atecc_driver_on_sim", atecc_driver_on_sim),
    ("csr_signed_by_chip", csr_signed_by_chip),
    ("mtls_handshake_mosquitto", mtls::mtls_handshake_mosquitto),
    (
        "mtls_refuses_foreign_broker",
        mtls::mtls_refuses_foreign_broker,
    ),
    ("console_provisioning", console::console_provisioning),
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
    ("i2c_bitbang_protocol", i2c_bitbang_protocol),
    ("i2c_bitbang_atecc", i2c_bitbang_atecc),
    ("coroutine_stack_switch", coroutine_stack_switch),
    ("tls_handshake_on_coroutine", tls_handshake_on_coroutine),
];

#[no_mangle]
pub extern "C" fn tmc_main() -> i32 {
    println!("tmc-firmware qemu-tests (xtensa lx106)");
    let (mut passed, mut failed) = (0u32, 0u32);
    for (name, check) in CHECKS {
        match check() {
            Ok(()) => {
                passed += 1;
                println!("ok   {name}");
            }
            Err(msg) => {
                failed += 1;
                println!("FAIL {name}: {msg}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    i32::from(failed > 0)
}

//! The driver against the simulated chip: bytes on the bus, wake handshake, every command's round trip, and
//! what happens when the chip or the bus misbehaves.

use embedded_hal::i2c::I2c;
use tmc_atecc::protocol::{status, word_address};
use tmc_atecc::sim::{BusEvent, Fault, Model, Power, SimAtecc, SimDelay, SimI2c};
use tmc_atecc::{crc16, Atecc, AteccError, Command, Device, LockStatus, WAKE_RESPONSE};

fn setup(model: Model) -> (SimAtecc, Atecc<SimI2c, SimDelay>) {
    let sim = SimAtecc::new(model);
    let chip = Atecc::new(sim.i2c(), sim.delay());
    (sim, chip)
}

const INFO_FRAME: [u8; 8] = [0x03, 0x07, 0x30, 0x00, 0x00, 0x00, 0x03, 0x5D];
const RANDOM_FRAME: [u8; 8] = [0x03, 0x07, 0x1B, 0x00, 0x00, 0x00, 0x24, 0xCD];

#[test]
fn crc_of_wake_status_is_3343() {
    assert_eq!(crc16(&[0x04, 0x11]), [0x33, 0x43]);
    assert_eq!(WAKE_RESPONSE, [0x04, 0x11, 0x33, 0x43]);
}

#[test]
fn info_frame_bytes() {
    let mut frame = [0u8; tmc_atecc::protocol::MAX_FRAME];
    let len = Command::info_revision().encode(&mut frame).unwrap();
    assert_eq!(&frame[..len], &INFO_FRAME);

    let (sim, mut chip) = setup(Model::Atecc508a);
    chip.info().unwrap();
    assert_eq!(sim.command_frames(), vec![INFO_FRAME.to_vec()]);
}

#[test]
fn random_frame_bytes() {
    let mut frame = [0u8; tmc_atecc::protocol::MAX_FRAME];
    let len = Command::random().encode(&mut frame).unwrap();
    assert_eq!(&frame[..len], &RANDOM_FRAME);

    let (sim, mut chip) = setup(Model::Atecc608a);
    chip.random().unwrap();
    assert_eq!(sim.command_frames(), vec![RANDOM_FRAME.to_vec()]);
}

#[test]
fn wake_handshake_on_the_bus() {
    let (sim, mut chip) = setup(Model::Atecc508a);
    assert_eq!(sim.power(), Power::Sleep);
    chip.wake().unwrap();
    assert_eq!(sim.power(), Power::Awake);
    let log = sim.bus_log();
    // The wake pulse: one 0x00 byte to the general call address, then the 4-byte read of 04 11 33 43.
    assert_eq!(log[0], BusEvent::Write(0x00, vec![0x00]));
    assert_eq!(log[1], BusEvent::Read(0x60, 4));
    assert_eq!(
        log.len(),
        2,
        "the chip answered the first read: the driver waited t_WHI"
    );
    assert!(sim.now_ns() >= 1_500_000, "t_WHI is 1.5 ms");
}

#[test]
fn every_operation_ends_in_idle_and_keeps_tempkey() {
    let (sim, mut chip) = setup(Model::Atecc608a);
    chip.info().unwrap();
    assert_eq!(sim.power(), Power::Idle);
    assert_eq!(
        sim.bus_log().last(),
        Some(&BusEvent::Write(0x60, vec![word_address::IDLE]))
    );
    let digest = [0x42; 32];
    chip.nonce_passthrough(&digest).unwrap();
    assert_eq!(sim.power(), Power::Idle);
    assert_eq!(sim.tempkey(), Some(digest));
    // Slot 4 holds the factory key; the signature is real P-256 (checked in tests/p256_sim.rs).
    assert_eq!(chip.sign_tempkey(4).unwrap().len(), 64);
    assert_eq!(sim.tempkey(), None, "Sign consumed TempKey");
}

#[test]
fn sleep_word_puts_the_chip_to_sleep_and_forgets_tempkey() {
    let (sim, mut chip) = setup(Model::Atecc508a);
    chip.nonce_passthrough(&[7; 32]).unwrap();
    chip.sleep().unwrap();
    assert_eq!(sim.power(), Power::Sleep);
    assert_eq!(
        sim.bus_log().last(),
        Some(&BusEvent::Write(0x60, vec![word_address::SLEEP]))
    );
    assert_eq!(sim.tempkey(), None);
    assert_eq!(chip.sign_tempkey(0), Err(AteccError::ExecutionError));
}

#[test]
fn info_tells_508a_from_608a() {
    let (_, mut chip) = setup(Model::Atecc508a);
    let revision = chip.info().unwrap();
    assert_eq!(revision.0, [0x00, 0x00, 0x50, 0x00]);
    assert_eq!(revision.device(), Device::Atecc508a);

    let (_, mut chip) = setup(Model::Atecc608a);
    let revision = chip.info().unwrap();
    assert_eq!(revision.0, [0x00, 0x00, 0x60, 0x02]);
    assert_eq!(revision.device(), Device::Atecc608 { silicon: 0x02 });
    assert_eq!(
        tmc_atecc::Revision([0, 0, 0x60, 0x03]).device(),
        Device::Atecc608 { silicon: 0x03 }
    );
    assert_eq!(
        tmc_atecc::Revision([0, 0, 0x10, 0x05]).device(),
        Device::Unknown
    );
}

#[test]
fn random_round_trip() {
    let (sim, mut chip) = setup(Model::Atecc608a);
    let a = chip.random().unwrap();
    let b = chip.random().unwrap();
    assert_ne!(a, b);
    assert_ne!(a, [0; 32]);
    // Config unlocked: the fixed FF FF 00 00 test pattern.
    sim.set_locks(false, false);
    let pattern = chip.random().unwrap();
    assert!(pattern.chunks(4).all(|c| c == [0xFF, 0xFF, 0x00, 0x00]));
}

#[test]
fn nonce_passthrough_frame_and_tempkey() {
    let (sim, mut chip) = setup(Model::Atecc508a);
    let num_in: [u8; 32] = core::array::from_fn(|i| i as u8);
    chip.nonce_passthrough(&num_in).unwrap();
    let frames = sim.command_frames();
    let frame = &frames[0];
    assert_eq!(frame.len(), 1 + 7 + 32);
    assert_eq!(&frame[..6], &[0x03, 39, 0x16, 0x03, 0x00, 0x00]);
    assert_eq!(&frame[6..38], &num_in);
    assert_eq!(&frame[38..], &crc16(&frame[1..38]));
    assert_eq!(sim.tempkey(), Some(num_in));
}

#[test]
fn genkey_public_key_round_trip() {
    let (sim, mut chip) = setup(Model::Atecc608a);
    for slot in [0, 2, 3] {
        let created = chip.generate_key(slot).unwrap();
        assert_eq!(chip.public_key(slot).unwrap(), created);
        assert_eq!(sim.public_key(slot), Some(created));
    }
    let frames = sim.command_frames();
    // GenKey create (mode 0x04) then public (mode 0x00), param2 = slot.
    assert_eq!(&frames[0][..6], &[0x03, 0x07, 0x40, 0x04, 0x00, 0x00]);
    assert_eq!(&frames[3][..6], &[0x03, 0x07, 0x40, 0x00, 0x02, 0x00]);
    // Slot 8 is a data slot: no private key.
    assert_eq!(chip.public_key(8), Err(AteccError::ExecutionError));
    assert!(matches!(
        chip.public_key(16),
        Err(AteccError::InvalidArgument(_))
    ));
}

#[test]
fn sign_digest_round_trip() {
    let (sim, mut chip) = setup(Model::Atecc508a);
    let digest: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(13) ^ 0xA5);
    chip.generate_key(3).unwrap();
    sim.clear_log();
    let executed_before = sim.executed().len();
    let signature = chip.sign_digest(3, &digest).unwrap();
    assert_ne!(signature, [0; 64]);
    assert_eq!(
        sim.executed()[executed_before..],
        [0x16, 0x41],
        "Nonce then Sign"
    );
    let frames = sim.command_frames();
    assert_eq!(&frames[1][..6], &[0x03, 0x07, 0x41, 0x80, 0x03, 0x00]);
    // One wake for both commands.
    let wakes = sim
        .bus_log()
        .iter()
        .filter(|e| matches!(e, BusEvent::Write(0x00, _)))
        .count();
    assert_eq!(wakes, 1);
    // Sign consumed TempKey.
    assert_eq!(sim.tempkey(), None);
}

#[test]
fn sign_without_nonce_is_an_execution_error() {
    let (_, mut chip) = setup(Model::Atecc608a);
    assert_eq!(chip.sign_tempkey(0), Err(AteccError::ExecutionError));
}

#[test]
fn read_config_zone_serial_and_param2_encoding() {
    let (sim, mut chip) = setup(Model::Atecc508a);
    let zone = chip.read_config_zone().unwrap();
    assert_eq!(zone.0, sim.config());
    assert_eq!(
        zone.serial_number(),
        [0x01, 0x23, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0xEE]
    );
    assert_eq!(zone.revision(), [0x00, 0x00, 0x50, 0x00]);
    assert_eq!(zone.i2c_address_byte(), 0xC0);
    let frames = sim.command_frames();
    assert_eq!(frames.len(), 4);
    for (block, frame) in frames.iter().enumerate() {
        // Read, 32 bytes of the config zone, param2 = block << 3.
        assert_eq!(
            &frame[..6],
            &[0x03, 0x07, 0x02, 0x80, (block as u8) << 3, 0x00]
        );
    }
    assert_eq!(chip.serial_number().unwrap(), zone.serial_number());
    assert_eq!(chip.read_config_block(3).unwrap(), zone.0[96..128]);
    assert_eq!(chip.read_config_word(2, 5).unwrap(), zone.0[84..88]);
    assert!(matches!(
        chip.read_config_block(4),
        Err(AteccError::InvalidArgument(_))
    ));
}

#[test]
fn lock_status_from_bytes_86_and_87() {
    let (sim, mut chip) = setup(Model::Atecc608a);
    assert_eq!(
        chip.lock_status().unwrap(),
        LockStatus {
            config_locked: true,
            data_locked: true
        }
    );
    // Word 5 of block 2: param2 = 0x15, 4-byte read.
    assert_eq!(
        &sim.command_frames()[0][..6],
        &[0x03, 0x07, 0x02, 0x00, 0x15, 0x00]
    );
    sim.set_locks(false, false);
    assert_eq!(
        chip.lock_status().unwrap(),
        LockStatus {
            config_locked: false,
            data_locked: false
        }
    );
    sim.set_locks(true, false);
    assert_eq!(
        chip.lock_status().unwrap(),
        LockStatus {
            config_locked: true,
            data_locked: false
        }
    );
}

#[test]
fn corrupted_response_crc_is_an_error() {
    let (sim, mut chip) = setup(Model::Atecc508a);
    sim.inject(Fault::CorruptCrc);
    assert!(matches!(chip.random(), Err(AteccError::BadCrc { .. })));
    // The next command works again.
    assert!(chip.random().is_ok());
}

#[test]
fn status_0f_is_execution_error() {
    let (sim, mut chip) = setup(Model::Atecc608a);
    sim.inject(Fault::Status(status::EXECUTION_ERROR));
    assert_eq!(chip.info(), Err(AteccError::ExecutionError));
}

#[test]
fn every_status_code_maps_to_its_error() {
    let cases: [(u8, AteccError<tmc_atecc::sim::SimI2cError>); 10] = [
        (0x01, AteccError::Miscompare),
        (0x03, AteccError::ParseError),
        (0x05, AteccError::EccFault),
        (0x07, AteccError::SelfTestError),
        (0x08, AteccError::HealthTestError),
        (0x0F, AteccError::ExecutionError),
        (0x11, AteccError::AfterWake),
        (0xEE, AteccError::WatchdogAboutToExpire),
        (0xFF, AteccError::CommunicationError),
        (0x42, AteccError::UnknownStatus(0x42)),
    ];
    let (sim, mut chip) = setup(Model::Atecc508a);
    for (code, expected) in cases {
        sim.inject(Fault::Status(code));
        let error = chip.random().unwrap_err();
        assert_eq!(error, expected);
        assert_eq!(error.status_code(), Some(code));
        assert!(!error.to_string().is_empty());
    }
    // A status-only command (Nonce) succeeds on status 0x00.
    assert!(chip.nonce_passthrough(&[1; 32]).is_ok());
}

#[test]
fn short_and_oversized_counts_are_errors() {
    let (sim, mut chip) = setup(Model::Atecc508a);
    for count in [0, 1, 2, 3, 5, 34, 36, 68, 200, 255] {
        sim.inject(Fault::Count(count));
        assert_eq!(
            chip.random(),
            Err(AteccError::InvalidCount {
                count,
                expected: 35
            }),
            "count {count}"
        );
    }
    // A success status where 32 bytes were due.
    sim.inject(Fault::Status(status::SUCCESS));
    assert_eq!(
        chip.random(),
        Err(AteccError::InvalidCount {
            count: 4,
            expected: 35
        })
    );
    assert!(chip.random().is_ok());
}

#[test]
fn chip_that_never_answers_times_out_within_the_max_execution_time() {
    let (sim, mut chip) = setup(Model::Atecc608a);
    sim.inject(Fault::Hang);
    let before = sim.now_ns();
    assert_eq!(
        chip.sign_digest(0, &[0; 32]),
        Err(AteccError::Timeout { opcode: 0x16 })
    );
    let waited_ms = (sim.now_ns() - before) / 1_000_000;
    assert!(
        waited_ms >= 29,
        "waited {waited_ms} ms: at least Nonce's maximum"
    );
    assert!(waited_ms <= 40, "waited {waited_ms} ms: bounded");
}

#[test]
fn slow_clock_factor_extends_the_timeout() {
    let (sim, mut chip) = setup(Model::Atecc608a);
    chip.set_execution_time_factor(3);
    sim.inject(Fault::Hang);
    let before = sim.now_ns();
    assert_eq!(chip.info(), Err(AteccError::Timeout { opcode: 0x30 }));
    let waited_ms = (sim.now_ns() - before) / 1_000_000;
    assert!((15..=25).contains(&waited_ms), "waited {waited_ms} ms");
}

#[test]
fn asleep_chip_that_does_not_wake_is_a_wake_error() {
    let (sim, mut chip) = setup(Model::Atecc508a);
    sim.set_responsive(false);
    assert_eq!(chip.wake(), Err(AteccError::NoWakeResponse));
    assert_eq!(chip.info(), Err(AteccError::NoWakeResponse));
    assert!(
        sim.command_frames().is_empty(),
        "no command is sent to a chip that did not wake"
    );
}

#[test]
fn wake_pulse_too_short_on_a_400_khz_bus() {
    let (sim, mut chip) = setup(Model::Atecc608a);
    sim.set_bus_hz(400_000);
    assert_eq!(chip.wake(), Err(AteccError::NoWakeResponse));
    sim.set_bus_hz(100_000);
    assert_eq!(chip.wake(), Ok(()));
}

#[test]
fn wrong_address_is_a_wake_error() {
    let sim = SimAtecc::new(Model::Atecc508a);
    let mut chip = Atecc::with_address(sim.i2c(), sim.delay(), 0x35);
    assert_eq!(chip.address(), 0x35);
    assert_eq!(chip.info(), Err(AteccError::NoWakeResponse));
    sim.set_address(0x35);
    assert!(chip.info().is_ok());
}

#[test]
fn command_to_a_sleeping_chip_is_nacked() {
    let (sim, mut chip) = setup(Model::Atecc508a);
    let mut revision = [0u8; 4];
    let error = chip
        .execute(&Command::info_revision(), &mut revision)
        .unwrap_err();
    assert!(matches!(error, AteccError::Bus(_)), "{error:?}");
    assert!(sim.executed().is_empty());
}

#[test]
fn raw_execute_after_manual_wake() {
    let (_, mut chip) = setup(Model::Atecc608a);
    chip.wake().unwrap();
    let mut revision = [0u8; 4];
    chip.execute(&Command::info_revision(), &mut revision)
        .unwrap();
    assert_eq!(revision, [0, 0, 0x60, 0x02]);
    let mut too_long = [0u8; 65];
    assert!(matches!(
        chip.execute(&Command::random(), &mut too_long),
        Err(AteccError::InvalidArgument(_))
    ));
    chip.idle().unwrap();
}

#[test]
fn watchdog_puts_the_chip_to_sleep() {
    let (sim, mut chip) = setup(Model::Atecc508a);
    chip.wake().unwrap();
    sim.advance_ns(1_400_000_000);
    assert_eq!(sim.power(), Power::Sleep);
}

/// The simulator itself, driven byte by byte: the chip checks count and CRC and answers 0xFF.
#[test]
fn sim_answers_status_ff_to_a_bad_crc_or_count() {
    let sim = SimAtecc::new(Model::Atecc508a);
    let mut bus = sim.i2c();
    let _ = bus.write(0x00, &[0x00]);
    sim.advance_ns(1_500_000);
    let mut wake = [0u8; 4];
    bus.read(0x60, &mut wake).unwrap();
    assert_eq!(wake, WAKE_RESPONSE);

    let bad_packet_status = {
        let mut body = vec![0x04, 0xFF];
        body.extend_from_slice(&crc16(&[0x04, 0xFF]));
        body
    };
    for frame in [
        vec![0x03, 0x07, 0x30, 0x00, 0x00, 0x00, 0x03, 0x5E], // bad CRC
        vec![0x03, 0x08, 0x30, 0x00, 0x00, 0x00, 0x03, 0x5D], // count says 8, 7 bytes sent
        vec![0x03, 0x03, 0x30, 0x00],                         // shorter than any packet
    ] {
        bus.write(0x60, &frame).unwrap();
        sim.advance_ns(1_000_000);
        let mut response = [0u8; 4];
        bus.read(0x60, &mut response).unwrap();
        assert_eq!(response.to_vec(), bad_packet_status, "frame {frame:02x?}");
    }
    assert!(sim.executed().is_empty());

    // The good frame, read in two parts (count, then the rest) as the driver does.
    bus.write(0x60, &INFO_FRAME).unwrap();
    let mut count = [0u8; 1];
    assert!(
        bus.read(0x60, &mut count).is_err(),
        "busy while executing: NACK"
    );
    sim.advance_ns(1_000_000);
    bus.read(0x60, &mut count).unwrap();
    assert_eq!(count, [7]);
    let mut rest = [0u8; 6];
    bus.read(0x60, &mut rest).unwrap();
    assert_eq!(&rest[..4], &[0x00, 0x00, 0x50, 0x00]);
    assert_eq!(&rest[4..], &crc16(&[7, 0x00, 0x00, 0x50, 0x00]));

    // Sleep: everything NACKed until the next wake.
    bus.write(0x60, &[word_address::SLEEP]).unwrap();
    assert!(bus.read(0x60, &mut count).is_err());
    assert_eq!(sim.power(), Power::Sleep);
}

#[test]
fn errors_display_and_are_core_errors() {
    fn assert_error<T: core::error::Error>(_: &T) {}
    let error: AteccError<tmc_atecc::sim::SimI2cError> = AteccError::NoWakeResponse;
    assert_error(&error);
    assert!(error.to_string().contains("wake"));
    let error: AteccError<tmc_atecc::sim::SimI2cError> = AteccError::InvalidCount {
        count: 2,
        expected: 35,
    };
    assert!(error.to_string().contains("count byte 2"));
}

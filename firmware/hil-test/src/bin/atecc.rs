//! On-target checks of the secure element's code on the lx106: the tmc-atecc CRC and command frames,
//! the driver against the simulated chip (`tmc_atecc::sim`, real P-256), the chip-signed certificate
//! request, and the bit-banged I²C master (`tmc_soft_i2c`) on the modelled open-drain wire, alone and
//! with the simulated chip behind it.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use core::hint::black_box;

use tmc_hil_test::{crc16_atecc, ensure, expect_eq};

/// `tmc_atecc::crc16` (the crate's CRC, not the local reference `tmc_hil_test::crc16_atecc`).
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

/// The tmc-atecc driver over the bit-banger, against the modelled wire with
/// tmc_atecc::sim's chip behind it: wake, Info, serial number, sleep.
fn i2c_bitbang_atecc() -> Result<(), String> {
    use tmc_atecc::sim::{Model, Power, SimAtecc};
    use tmc_atecc::{Atecc, Device};
    use tmc_soft_i2c::model::{I2cDevice, NoDelay, WireBus};
    use tmc_soft_i2c::BitBangI2c;
    let e = |what: &str, err: &dyn core::fmt::Debug| alloc::format!("{what}: {err:?}");

    let sim = SimAtecc::new(Model::Atecc608a);
    let bus = WireBus::new(I2cDevice(sim.i2c()));
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
    let bus = WireBus::new(I2cDevice(sim.i2c()));
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

#[no_mangle]
pub extern "C" fn tmc_main() -> i32 {
    tmc_hil_test::run(
        "atecc",
        &[
            ("atecc_crc16", atecc_crc16),
            ("atecc_command_frames", atecc_command_frames),
            ("atecc_driver_on_sim", atecc_driver_on_sim),
            ("csr_signed_by_chip", csr_signed_by_chip),
            ("i2c_bitbang_protocol", tmc_soft_i2c::model::protocol_check),
            ("i2c_bitbang_atecc", i2c_bitbang_atecc),
        ],
    )
}

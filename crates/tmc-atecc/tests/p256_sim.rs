//! The simulated chip as a real P-256 secure element, through the public driver: GenKey, Sign, Verify, data
//! zone reads, per-serial identities, non-volatile contents.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use tmc_atecc::protocol::status;
use tmc_atecc::sim::{
    Model, NonVolatileError, SimAtecc, SimDelay, SimI2c, SlotWriteError, DEFAULT_SERIAL,
    NONVOLATILE_MAGIC,
};
use tmc_atecc::{Atecc, AteccError};

fn driver(sim: &SimAtecc) -> Atecc<SimI2c, SimDelay> {
    Atecc::new(sim.i2c(), sim.delay())
}

fn verifying_key(public_key: &[u8; 64]) -> VerifyingKey {
    let mut sec1 = [0u8; 65];
    sec1[0] = 0x04;
    sec1[1..].copy_from_slice(public_key);
    VerifyingKey::from_sec1_bytes(&sec1).expect("the chip's public key is a P-256 point")
}

fn p256_verifies(public_key: &[u8; 64], digest: &[u8; 32], signature: &[u8; 64]) -> bool {
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    verifying_key(public_key)
        .verify_prehash(digest, &signature)
        .is_ok()
}

const DIGEST: [u8; 32] = [
    0x9f, 0x86, 0xd0, 0x81, 0x88, 0x4c, 0x7d, 0x65, 0x9a, 0x2f, 0xea, 0xa0, 0xc5, 0x5a, 0xd0, 0x15,
    0xa3, 0xbf, 0x4f, 0x1b, 0x2b, 0x0b, 0x82, 0x2c, 0xd1, 0x5d, 0x6c, 0x15, 0xb0, 0xf0, 0x0a, 0x08,
];

#[test]
fn genkey_then_sign_verifies_with_p256() {
    for model in [Model::Atecc508a, Model::Atecc608a] {
        let sim = SimAtecc::new(model);
        let mut chip = driver(&sim);
        for slot in [0, 1, 2, 3] {
            let public_key = chip.generate_key(slot).unwrap();
            let signature = chip.sign_digest(slot, &DIGEST).unwrap();
            assert!(
                p256_verifies(&public_key, &DIGEST, &signature),
                "slot {slot}"
            );
            let mut other = DIGEST;
            other[0] ^= 1;
            assert!(!p256_verifies(&public_key, &other, &signature));
        }
    }
}

#[test]
fn genkey_replaces_the_key() {
    let sim = SimAtecc::new(Model::Atecc608a);
    let mut chip = driver(&sim);
    let first = chip.generate_key(0).unwrap();
    let second = chip.generate_key(0).unwrap();
    assert_ne!(first, second);
    assert_eq!(chip.public_key(0).unwrap(), second);
    let signature = chip.sign_digest(0, &DIGEST).unwrap();
    assert!(p256_verifies(&second, &DIGEST, &signature));
    assert!(!p256_verifies(&first, &DIGEST, &signature));
}

#[test]
fn genkey_refused_where_the_config_says_no() {
    let sim = SimAtecc::new(Model::Atecc508a);
    let mut chip = driver(&sim);
    // Data slots: KeyConfig.Private = 0.
    for slot in [5, 8, 10, 11, 15] {
        assert_eq!(
            chip.generate_key(slot),
            Err(AteccError::ExecutionError),
            "slot {slot}"
        );
    }
    // Slot 4: a private-key slot whose SlotConfig forbids GenKey after the data lock; its factory key stays.
    let factory = chip.public_key(4).unwrap();
    let error = chip.generate_key(4).unwrap_err();
    assert_eq!(error, AteccError::ExecutionError);
    assert_eq!(error.status_code(), Some(status::EXECUTION_ERROR));
    assert_eq!(chip.public_key(4).unwrap(), factory);
    // Before the data lock any private-key slot may be generated.
    sim.set_locks(true, false);
    let replaced = chip.generate_key(4).unwrap();
    assert_ne!(replaced, factory);
    // Before the config lock GenKey is refused.
    sim.set_locks(false, false);
    assert_eq!(chip.generate_key(0), Err(AteccError::ExecutionError));
}

#[test]
fn key_never_generated_is_an_ecc_fault() {
    let sim = SimAtecc::new(Model::Atecc608a);
    let mut chip = driver(&sim);
    assert_eq!(sim.public_key(0), None);
    assert_eq!(chip.public_key(0), Err(AteccError::EccFault));
    assert_eq!(chip.sign_digest(1, &DIGEST), Err(AteccError::EccFault));
    // Sign on a data slot.
    assert_eq!(
        chip.sign_digest(8, &DIGEST),
        Err(AteccError::ExecutionError)
    );
}

#[test]
fn verify_external_good_bad_and_wrong_key() {
    let sim = SimAtecc::new(Model::Atecc608a);
    let mut chip = driver(&sim);
    let public_key = chip.generate_key(0).unwrap();
    let other_key = chip.generate_key(2).unwrap();
    let signature = chip.sign_digest(0, &DIGEST).unwrap();
    assert_eq!(
        chip.verify_external(&public_key, &DIGEST, &signature),
        Ok(true)
    );
    // Nonce then Verify external, KeyID 0x0004, 128 data bytes, in one wake.
    let frames = sim.command_frames();
    let verify = frames.last().unwrap();
    assert_eq!(&verify[..6], &[0x03, 7 + 128, 0x45, 0x02, 0x04, 0x00]);
    assert_eq!(&verify[6..70], &signature);
    assert_eq!(&verify[70..134], &public_key);

    for bit in [0, 8 * 31 + 7, 8 * 40 + 3, 8 * 63] {
        let mut bad = signature;
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            chip.verify_external(&public_key, &DIGEST, &bad),
            Ok(false),
            "bit {bit}"
        );
    }
    let mut other_digest = DIGEST;
    other_digest[31] ^= 0x80;
    assert_eq!(
        chip.verify_external(&public_key, &other_digest, &signature),
        Ok(false)
    );
    assert_eq!(
        chip.verify_external(&other_key, &DIGEST, &signature),
        Ok(false)
    );
    // R = 0 is never a valid signature.
    let mut zero_r = signature;
    zero_r[..32].fill(0);
    assert_eq!(
        chip.verify_external(&public_key, &DIGEST, &zero_r),
        Ok(false)
    );
    // A public key that is not a curve point is an error, not a "no".
    let mut not_a_point = public_key;
    not_a_point[63] ^= 1;
    assert_eq!(
        chip.verify_external(&not_a_point, &DIGEST, &signature),
        Err(AteccError::ExecutionError)
    );
}

#[test]
fn verify_external_accepts_signatures_made_outside() {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let signing_key = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let point = signing_key.verifying_key().to_encoded_point(false);
    let mut public_key = [0u8; 64];
    public_key.copy_from_slice(&point.as_bytes()[1..]);
    let signature: Signature = signing_key.sign_prehash(&DIGEST).unwrap();
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&signature.to_bytes());

    let sim = SimAtecc::new(Model::Atecc508a);
    let mut chip = driver(&sim);
    assert_eq!(chip.verify_external(&public_key, &DIGEST, &sig), Ok(true));
    sig[5] ^= 0x10;
    assert_eq!(chip.verify_external(&public_key, &DIGEST, &sig), Ok(false));
}

#[test]
fn private_key_slots_are_never_readable() {
    let sim = SimAtecc::new(Model::Atecc608a);
    let mut chip = driver(&sim);
    chip.generate_key(0).unwrap();
    for slot in [0, 1, 2, 3, 4] {
        let error = chip.read_slot_block(slot, 0).unwrap_err();
        assert_eq!(error, AteccError::ExecutionError, "slot {slot}");
        assert_eq!(error.status_code(), Some(0x0F));
    }
    // Read, data zone (0x02) | 32 bytes (0x80), param2 = slot << 3 | block << 8.
    let frames = sim.command_frames();
    assert_eq!(
        &frames.last().unwrap()[..6],
        &[0x03, 0x07, 0x02, 0x82, 4 << 3, 0x00]
    );
}

#[test]
fn data_slots_read_back_what_they_hold() {
    let sim = SimAtecc::new(Model::Atecc508a);
    let mut chip = driver(&sim);
    // Shipped data slots are zero.
    assert_eq!(chip.read_slot_block(8, 0).unwrap(), [0; 32]);

    let certificate: Vec<u8> = (0..72u8).map(|i| i.wrapping_mul(7) ^ 0x30).collect();
    sim.write_slot(10, 0, &certificate).unwrap();
    assert_eq!(chip.read_slot_block(10, 0).unwrap(), certificate[..32]);
    assert_eq!(chip.read_slot_block(10, 1).unwrap(), certificate[32..64]);
    assert_eq!(
        &sim.command_frames().last().unwrap()[..6],
        &[0x03, 0x07, 0x02, 0x82, 10 << 3, 0x01]
    );
    // Slot 10 is 72 bytes: a 32-byte read of block 2 runs past its end.
    assert_eq!(chip.read_slot_block(10, 2), Err(AteccError::ParseError));

    let general: Vec<u8> = (0..416u16).map(|i| (i % 251) as u8).collect();
    sim.write_slot(8, 0, &general).unwrap();
    assert_eq!(chip.read_slot_block(8, 12).unwrap(), general[384..416]);
    assert!(matches!(
        chip.read_slot_block(8, 13),
        Err(AteccError::InvalidArgument(_))
    ));
    // 36-byte slots: one 32-byte block.
    sim.write_slot(5, 0, &[0xAB; 36]).unwrap();
    assert_eq!(chip.read_slot_block(5, 0).unwrap(), [0xAB; 32]);
    assert_eq!(chip.read_slot_block(5, 1), Err(AteccError::ParseError));

    // Before the data zone lock, data zone reads are refused.
    sim.set_locks(true, false);
    assert_eq!(chip.read_slot_block(8, 0), Err(AteccError::ExecutionError));
}

#[test]
fn write_slot_follows_the_slot_plan() {
    let sim = SimAtecc::new(Model::Atecc608a);
    assert_eq!(
        sim.write_slot(0, 0, &[1; 32]),
        Err(SlotWriteError::PrivateKeySlot)
    );
    assert_eq!(
        sim.write_slot(10, 60, &[1; 13]),
        Err(SlotWriteError::OutOfRange)
    );
    assert_eq!(sim.write_slot(16, 0, &[1]), Err(SlotWriteError::OutOfRange));
    assert_eq!(sim.write_slot(10, 60, &[1; 12]), Ok(()));
}

#[test]
fn different_serials_different_keys_same_serial_same_keys() {
    let serial_a = [0x01, 0x23, 1, 2, 3, 4, 5, 6, 0xEE];
    let serial_b = [0x01, 0x23, 1, 2, 3, 4, 5, 7, 0xEE];
    let a = SimAtecc::with_serial(Model::Atecc608a, serial_a);
    let a_again = SimAtecc::with_serial(Model::Atecc608a, serial_a);
    let b = SimAtecc::with_serial(Model::Atecc608a, serial_b);
    let key_a = driver(&a).generate_key(0).unwrap();
    let key_a_again = driver(&a_again).generate_key(0).unwrap();
    let key_b = driver(&b).generate_key(0).unwrap();
    assert_eq!(key_a, key_a_again);
    assert_ne!(key_a, key_b);
    assert_eq!(driver(&a).serial_number().unwrap(), serial_a);
    assert_eq!(driver(&b).serial_number().unwrap(), serial_b);
    assert_eq!(
        SimAtecc::new(Model::Atecc508a).serial_number(),
        DEFAULT_SERIAL
    );
    // The Random streams differ too, and never equal a key.
    let random_a = driver(&a).random().unwrap();
    assert_ne!(random_a, driver(&b).random().unwrap());
    assert_eq!(random_a, driver(&a_again).random().unwrap());
}

#[test]
fn nonvolatile_round_trip_keeps_the_key() {
    let sim = SimAtecc::with_serial(Model::Atecc508a, [0x01, 0x23, 9, 9, 9, 9, 9, 9, 0xEE]);
    assert!(sim.nonvolatile_changed(), "never saved");
    let public_key = driver(&sim).generate_key(0).unwrap();
    sim.write_slot(12, 0, b"signer certificate").unwrap();
    let blob = sim.nonvolatile();
    assert!(!sim.nonvolatile_changed());
    assert!(blob.starts_with(&NONVOLATILE_MAGIC));

    let reloaded = SimAtecc::from_nonvolatile(&blob).unwrap();
    assert!(!reloaded.nonvolatile_changed());
    assert_eq!(reloaded.model(), Model::Atecc508a);
    assert_eq!(reloaded.config(), sim.config());
    let mut chip = driver(&reloaded);
    assert_eq!(chip.public_key(0).unwrap(), public_key);
    let signature = chip.sign_digest(0, &DIGEST).unwrap();
    assert!(p256_verifies(&public_key, &DIGEST, &signature));
    assert_eq!(
        &chip.read_slot_block(12, 0).unwrap()[..18],
        b"signer certificate"
    );
    // Signing, reading and Random change nothing that needs saving; GenKey does.
    chip.random().unwrap();
    assert!(!reloaded.nonvolatile_changed());
    let generation = reloaded.nonvolatile_generation();
    let next = chip.generate_key(1).unwrap();
    assert!(reloaded.nonvolatile_changed());
    assert!(reloaded.nonvolatile_generation() > generation);
    // The key counter was saved: a reloaded chip does not make the same "new" key twice.
    assert_ne!(next, public_key);
    let again = SimAtecc::from_nonvolatile(&reloaded.nonvolatile()).unwrap();
    assert_ne!(driver(&again).generate_key(2).unwrap(), next);
    // Locks are non-volatile too.
    again.set_locks(true, false);
    assert!(again.nonvolatile_changed());
    let unlocked = SimAtecc::from_nonvolatile(&again.nonvolatile()).unwrap();
    assert!(!driver(&unlocked).lock_status().unwrap().data_locked);
}

#[test]
fn corrupt_short_and_unknown_blobs_are_refused() {
    let sim = SimAtecc::new(Model::Atecc608a);
    driver(&sim).generate_key(0).unwrap();
    let blob = sim.nonvolatile();

    assert_eq!(
        SimAtecc::from_nonvolatile(&[]).unwrap_err(),
        NonVolatileError::TooShort { len: 0 }
    );
    assert_eq!(
        SimAtecc::from_nonvolatile(&blob[..8]).unwrap_err(),
        NonVolatileError::TooShort { len: 8 }
    );
    let mut bad_magic = blob.clone();
    bad_magic[0] ^= 0xFF;
    assert_eq!(
        SimAtecc::from_nonvolatile(&bad_magic).unwrap_err(),
        NonVolatileError::BadMagic
    );
    let mut future = blob.clone();
    future[8] = 2;
    assert_eq!(
        SimAtecc::from_nonvolatile(&future).unwrap_err(),
        NonVolatileError::UnknownVersion(2)
    );
    assert!(matches!(
        SimAtecc::from_nonvolatile(&blob[..blob.len() - 1]).unwrap_err(),
        NonVolatileError::WrongLength { .. }
    ));
    let mut longer = blob.clone();
    longer.push(0);
    assert!(matches!(
        SimAtecc::from_nonvolatile(&longer).unwrap_err(),
        NonVolatileError::WrongLength { .. }
    ));
    // A flipped bit anywhere in the body (here: inside slot 0's private key).
    for at in [9, 30, 26 + 128 + 4 + 10, blob.len() - 40, blob.len() - 1] {
        let mut corrupt = blob.clone();
        corrupt[at] ^= 0x04;
        assert_eq!(
            SimAtecc::from_nonvolatile(&corrupt).unwrap_err(),
            NonVolatileError::ChecksumMismatch,
            "byte {at}"
        );
    }
    assert!(!NonVolatileError::ChecksumMismatch.to_string().is_empty());
}

#[test]
fn nonvolatile_model_byte_is_checked() {
    use sha2::{Digest, Sha256};
    let blob = SimAtecc::new(Model::Atecc608a).nonvolatile();
    let reseal = |mut body: Vec<u8>| {
        body.truncate(body.len() - 32);
        let checksum = Sha256::digest(&body);
        body.extend_from_slice(&checksum);
        body
    };
    let mut unknown = blob.clone();
    unknown[9] = 7;
    assert_eq!(
        SimAtecc::from_nonvolatile(&reseal(unknown)).unwrap_err(),
        NonVolatileError::UnknownModel(7)
    );
    let mut other_model = blob;
    other_model[9] = 0; // 508A, but the config zone says 608A
    assert_eq!(
        SimAtecc::from_nonvolatile(&reseal(other_model)).unwrap_err(),
        NonVolatileError::RevisionMismatch
    );
}

#[cfg(feature = "sim-file")]
mod file {
    use std::os::unix::fs::PermissionsExt;

    use tmc_atecc::sim::file::{load_or_create, save, SimFileError};

    use super::*;

    #[test]
    fn creates_0600_and_reloads_the_same_chip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atecc.bin");
        let sim = load_or_create(&path, Model::Atecc608a).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let serial = sim.serial_number();
        assert_eq!([serial[0], serial[1], serial[8]], [0x01, 0x23, 0xEE]);
        assert_ne!(serial, DEFAULT_SERIAL);
        assert!(!sim.nonvolatile_changed(), "saved when created");

        let public_key = driver(&sim).generate_key(0).unwrap();
        assert!(sim.nonvolatile_changed());
        save(&path, &sim).unwrap();
        assert!(!sim.nonvolatile_changed());

        let reloaded = load_or_create(&path, Model::Atecc608a).unwrap();
        assert_eq!(reloaded.serial_number(), serial);
        let signature = driver(&reloaded).sign_digest(0, &DIGEST).unwrap();
        assert!(p256_verifies(&public_key, &DIGEST, &signature));

        // Another new chip gets another serial number.
        let other = load_or_create(&dir.path().join("other.bin"), Model::Atecc608a).unwrap();
        assert_ne!(other.serial_number(), serial);
        // The wrong model is refused.
        assert!(matches!(
            load_or_create(&path, Model::Atecc508a),
            Err(SimFileError::WrongModel { .. })
        ));
    }

    #[test]
    fn refuses_a_world_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atecc.bin");
        let sim = SimAtecc::new(Model::Atecc508a);
        std::fs::write(&path, sim.nonvolatile()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = load_or_create(&path, Model::Atecc508a).unwrap_err();
        assert!(
            matches!(
                error,
                SimFileError::File(tmc_secret_file::SecretFileError::TooOpen { mode: 0o644, .. })
            ),
            "{error}"
        );
        // Untouched.
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn refuses_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atecc.bin");
        tmc_secret_file::write_private(&path, b"not a chip", tmc_secret_file::Overwrite::Refuse)
            .unwrap();
        let error = load_or_create(&path, Model::Atecc508a).unwrap_err();
        assert!(
            matches!(
                error,
                SimFileError::Contents {
                    source: NonVolatileError::BadMagic,
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("atecc.bin"));
    }
}

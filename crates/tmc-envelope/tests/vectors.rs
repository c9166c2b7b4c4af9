//! The test vectors of docs/wire-format.md, produced by an independent implementation
//! (docs/vectors/make_vectors.py: openssl CLI + Python hmac), checked byte for byte.

use serde_json::Value;
use tmc_envelope::legacy::{self, LegacyKeys};
use tmc_envelope::{
    pack, unpack, Encoding, KeyRing, MemoryCounter, Opener, Reading, ReplayGuard, SealError, Sealer,
};

const VECTORS: &str = include_str!("../../../docs/vectors/vectors.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap()).unwrap()
}

fn readings(v: &Value) -> Vec<Reading> {
    v["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            Reading::new(
                r["topic"].as_str().unwrap(),
                r["time"].as_u64().unwrap(),
                hex_field(r, "data_hex"),
            )
        })
        .collect()
}

#[test]
fn secure_vectors_seal_and_open_byte_for_byte() {
    let all = vectors();
    let secure = all["secure"].as_array().unwrap();
    assert!(secure.len() >= 4);
    let mut versions = Vec::new();
    for v in secure {
        let name = v["name"].as_str().unwrap();
        let secret: [u8; 32] = hex_field(v, "secret_hex").try_into().unwrap();
        let kid = v["kid"].as_u64().unwrap() as u8;
        let sender = v["sender"].as_u64().unwrap() as u32;
        let counter = v["counter"].as_u64().unwrap() as u32;
        let iat = v["iat"].as_u64().unwrap();
        let ring = KeyRing::from_secrets(&[(kid, secret)]).unwrap();
        let expected_text = v["text"].as_str();
        let expected_packed = hex_field(v, "packed_hex");
        let batch = readings(v);
        let version = v["batch_version"].as_u64().unwrap();
        versions.push(version);
        assert_eq!(
            hex_field(v, "plaintext_hex")[0] == 0,
            version == 2,
            "{name}: layout version 2 starts with 0"
        );

        let mut encodings = vec![(Encoding::Packed, expected_packed.clone())];
        match expected_text {
            Some(text) => encodings.push((Encoding::Text, text.as_bytes().to_vec())),
            None => {
                // Too long for a frame as text: the sealer says so, with the independent implementation's size.
                let mut sealer =
                    Sealer::new(&ring, sender, MemoryCounter::starting_at(sender, counter));
                let size = v["text_len"].as_u64().unwrap() as usize;
                assert_eq!(sealer.on_air_size(&batch, iat, Encoding::Text), size);
                assert!(matches!(
                    sealer.seal(&batch, iat, Encoding::Text),
                    Err(SealError::TooLarge { size: s, .. }) if s == size
                ));
            }
        }
        for (encoding, expected) in encodings {
            let mut sealer =
                Sealer::new(&ring, sender, MemoryCounter::starting_at(sender, counter));
            assert_eq!(
                sealer.on_air_size(&batch, iat, encoding),
                expected.len(),
                "{name} {encoding}"
            );
            let sealed = sealer.seal(&batch, iat, encoding).unwrap();
            assert_eq!(
                hex::encode(&sealed.bytes),
                hex::encode(&expected),
                "{name} {encoding}"
            );

            let mut opener = Opener::new(ring.clone(), ReplayGuard::default());
            let opened = opener.open(&expected).unwrap();
            assert_eq!(opened.readings, batch, "{name} {encoding}");
            assert_eq!(
                (opened.kid, opened.sender, opened.counter, opened.issued_at),
                (kid, sender, counter, iat)
            );
            assert_eq!(opened.encoding, encoding);
        }
        let unpacked = unpack(&expected_packed).unwrap();
        assert_eq!(pack(&unpacked).unwrap(), expected_packed, "{name}");
        if let Some(text) = expected_text {
            assert_eq!(unpacked, text, "{name}");
        }
    }
    // Both layouts are covered by vectors.
    assert!(
        versions.contains(&1) && versions.contains(&2),
        "{versions:?}"
    );
}

#[test]
fn legacy_vectors_seal_and_open_byte_for_byte() {
    let all = vectors();
    let legacy_vectors = all["legacy"].as_array().unwrap();
    assert!(!legacy_vectors.is_empty());
    let keys = LegacyKeys::default();
    let mut paddings = Vec::new();
    for v in legacy_vectors {
        let plaintext = hex_field(v, "plaintext_hex");
        let frame = hex_field(v, "frame_hex");
        let padding = v["padding"].as_str().unwrap();
        paddings.push(padding);
        // TMC seals as the old deployment's sensors did (NUL padding); PKCS#7 senders are only read.
        match padding {
            "nul" => assert_eq!(legacy::seal(&keys, &plaintext).unwrap(), frame),
            "pkcs7" => assert_ne!(legacy::seal(&keys, &plaintext).unwrap(), frame),
            other => panic!("unknown padding {other}"),
        }
        assert_eq!(legacy::open(&keys, &frame).unwrap(), plaintext, "{padding}");
        // Without the trailing NUL too (a sender that strips it).
        assert_eq!(
            legacy::open(&keys, &frame[..frame.len() - 1]).unwrap(),
            plaintext
        );
    }
    assert!(paddings.contains(&"nul") && paddings.contains(&"pkcs7"));
}

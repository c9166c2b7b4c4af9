//! Every way a token is refused, on both encodings, each with its own error.

mod common;

use common::*;
use tmc_envelope::replay::ReplayError;
use tmc_envelope::{pack, unpack, Encoding, KeyRing, OpenError, Opener, ReplayGuard};

fn flip_last_byte(bytes: &[u8], encoding: Encoding) -> Vec<u8> {
    let mut forged = bytes.to_vec();
    let last = forged.len() - 1;
    match encoding {
        // Change the signature's last base64url character to another valid one.
        Encoding::Text => forged[last] = if forged[last] == b'A' { b'E' } else { b'A' },
        Encoding::Packed => forged[last] ^= 0x01,
    }
    forged
}

#[test]
fn forged_signature_is_refused() {
    let ring = ring(1, 0x11);
    for encoding in ENCODINGS {
        let token = seal_one(&ring, 0, encoding);
        let err = opener(&ring)
            .open(&flip_last_byte(&token.bytes, encoding))
            .unwrap_err();
        assert_eq!(err, OpenError::BadSignature, "{encoding}");
    }
}

#[test]
fn tampered_claims_are_refused() {
    let ring = ring(1, 0x11);
    // Packed: change the counter byte (a valid varint) — the rebuilt JWT no longer matches its MAC.
    let mut packed = seal_one(&ring, 5, Encoding::Packed).bytes;
    assert_eq!(packed[3], 5);
    packed[3] = 6;
    assert_eq!(
        opener(&ring).open(&packed).unwrap_err(),
        OpenError::BadSignature
    );
    // Packed: flip a ciphertext bit.
    let mut packed = seal_one(&ring, 5, Encoding::Packed).bytes;
    let i = packed.len() - 33;
    packed[i] ^= 0x80;
    assert_eq!(
        opener(&ring).open(&packed).unwrap_err(),
        OpenError::BadSignature
    );
    // Text: swap in other claims under the old signature.
    let a = String::from_utf8(seal_one(&ring, 1, Encoding::Text).bytes).unwrap();
    let b = String::from_utf8(seal_one(&ring, 2, Encoding::Text).bytes).unwrap();
    let (a_parts, b_parts): (Vec<_>, Vec<_>) = (a.split('.').collect(), b.split('.').collect());
    let spliced = format!("{}.{}.{}", a_parts[0], b_parts[1], a_parts[2]);
    assert_eq!(
        opener(&ring).open(spliced.as_bytes()).unwrap_err(),
        OpenError::BadSignature
    );
}

#[test]
fn truncated_tokens_are_refused_at_every_length() {
    let ring = ring(1, 0x11);
    for encoding in ENCODINGS {
        let token = seal_one(&ring, 0, encoding).bytes;
        for len in 0..token.len() {
            let err = opener(&ring).open(&token[..len]).unwrap_err();
            match (len, &err) {
                (0, OpenError::Empty)
                | (_, OpenError::Malformed { .. })
                | (_, OpenError::BadSignature) => {}
                _ => panic!("{encoding} truncated to {len}: unexpected {err:?}"),
            }
        }
    }
}

#[test]
fn wrong_key_is_refused() {
    let sealing = ring(1, 0x11);
    let other = ring(1, 0x22);
    for encoding in ENCODINGS {
        let token = seal_one(&sealing, 0, encoding);
        assert_eq!(
            opener(&other).open(&token.bytes).unwrap_err(),
            OpenError::BadSignature
        );
    }
}

#[test]
fn unknown_kid_is_refused_and_named() {
    let sealing = ring(9, 0x11);
    let receiving = KeyRing::from_secrets(&[(1, secret(0x11)), (2, secret(0x12))]).unwrap();
    for encoding in ENCODINGS {
        let token = seal_one(&sealing, 0, encoding);
        let err = opener(&receiving).open(&token.bytes).unwrap_err();
        assert_eq!(
            err,
            OpenError::UnknownKid {
                kid: 9,
                known: "1, 2".into()
            }
        );
        assert_eq!(err.to_string(), "unknown key id 9 (the key ring has 1, 2)");
    }
}

#[test]
fn replayed_token_is_refused_in_either_encoding() {
    let ring = ring(1, 0x11);
    let text = seal_one(&ring, 7, Encoding::Text);
    let packed = pack(std::str::from_utf8(&text.bytes).unwrap()).unwrap();
    let mut opener = opener(&ring);
    opener.open(&text.bytes).unwrap();
    let replay = ReplayError::Replayed {
        sender: SENDER,
        counter: 7,
    };
    assert_eq!(
        opener.open(&text.bytes).unwrap_err(),
        OpenError::Replay(replay.clone())
    );
    // The same token re-encoded is the same token.
    assert_eq!(opener.open(&packed).unwrap_err(), OpenError::Replay(replay));
}

#[test]
fn stale_counter_outside_the_window_is_refused() {
    let ring = ring(1, 0x11);
    let mut opener = Opener::new(ring.clone(), ReplayGuard::new(4).unwrap());
    let old = seal_one(&ring, 10, Encoding::Packed);
    let within = seal_one(&ring, 96, Encoding::Packed);
    opener
        .open(&seal_one(&ring, 100, Encoding::Packed).bytes)
        .unwrap();
    opener.open(&within.bytes).unwrap();
    let err = opener.open(&old.bytes).unwrap_err();
    assert!(matches!(
        err,
        OpenError::Replay(ReplayError::Stale {
            counter: 10,
            highest: 100,
            window: 4,
            ..
        })
    ));
}

#[test]
fn failed_token_does_not_move_the_replay_state() {
    let ring = ring(1, 0x11);
    let mut opener = opener(&ring);
    let good = seal_one(&ring, 50, Encoding::Packed);
    let forged = flip_last_byte(
        &seal_one(&ring, 60, Encoding::Packed).bytes,
        Encoding::Packed,
    );
    assert_eq!(opener.open(&forged).unwrap_err(), OpenError::BadSignature);
    assert_eq!(opener.replay_state().highest(SENDER), None);
    opener.open(&good.bytes).unwrap();
    assert_eq!(opener.replay_state().highest(SENDER), Some(50));
}

#[test]
fn replay_state_persists_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.json");
    let ring = ring(1, 0x11);
    let token = seal_one(&ring, 3, Encoding::Text);
    let mut first = Opener::new(ring.clone(), ReplayGuard::load_or_new(&path, 32).unwrap());
    first.open(&token.bytes).unwrap();
    first.replay_state().save(&path).unwrap();
    let mut restarted = Opener::new(ring, ReplayGuard::load_or_new(&path, 32).unwrap());
    assert!(matches!(
        restarted.open(&token.bytes),
        Err(OpenError::Replay(ReplayError::Replayed { .. }))
    ));
}

/// The HMAC key a ring built from `secret(fill)` signs with (HKDF as in docs/wire-format.md).
fn mac_key(fill: u8) -> [u8; 32] {
    use hkdf::Hkdf;
    let mut k = [0u8; 32];
    Hkdf::<sha2::Sha256>::new(Some(b"tmc-envelope/v1"), &secret(fill))
        .expand(b"hmac-sha256", &mut k)
        .unwrap();
    k
}

fn compact(header: &str, claims: &str, key: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn alg_none_and_other_algorithms_are_refused() {
    let ring = ring(1, 0x11);
    for alg in ["none", "HS512", "RS256", "hs256"] {
        let token = compact(
            &format!(r#"{{"alg":"{alg}","kid":"1"}}"#),
            r#"{"sid":1,"ctr":1,"iat":1,"dat":""}"#,
            b"k",
        );
        assert_eq!(
            opener(&ring).open(token.as_bytes()).unwrap_err(),
            OpenError::UnsupportedAlg(alg.into())
        );
    }
}

#[test]
fn malformed_tokens_name_the_part() {
    let ring = ring(1, 0x11);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"eyJ.only-two".to_vec(), "has 2 dot-separated parts"),
        (b"eyJ!.e30.AAAA".to_vec(), "signature is 3 bytes"),
        (
            compact(r#"{"alg":"HS256"}"#, "{}", b"k").into_bytes(),
            "has no kid",
        ),
        (
            compact(r#"{"alg":"HS256","kid":"x"}"#, "{}", b"k").into_bytes(),
            "kid \"x\" is not a number",
        ),
        (
            compact(
                r#"{"alg":"HS256","kid":"1"}"#,
                r#"{"sid":1}"#,
                &mac_key(0x11),
            )
            .into_bytes(),
            "claims missing field",
        ),
        (
            compact(r#"{"alg":5}"#, "{}", b"k").into_bytes(),
            "not a JWS header",
        ),
        (b"W10.e30.AAAA".to_vec(), "starts with byte 0x57"),
        (vec![0x7b, 0x22], "starts with byte 0x7b"),
        (vec![0x01; 20], "shorter than the 37"),
        (
            [&[0x01, 0x01, 0x80, 0x00, 0x00, 0x00][..], &[0u8; 40]].concat(),
            "sid: varint not in its shortest form",
        ),
    ];
    for (bytes, expected) in cases {
        let err = opener(&ring).open(&bytes).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{bytes:?}: got {err:?}, want {expected:?}"
        );
    }
}

#[test]
fn signed_garbage_payload_is_reported_as_such() {
    // A correctly signed token whose plaintext is not a batch: the sender is broken, not an attacker.
    use tmc_envelope::MemoryCounter;
    let ring = ring(1, 0x11);
    let packed = {
        let mut s = tmc_envelope::Sealer::new(&ring, SENDER, MemoryCounter::starting_at(SENDER, 0));
        s.seal(&[reading(b"x")], IAT, Encoding::Packed)
            .unwrap()
            .bytes
    };
    // Rebuild it with a ciphertext of the same length that decrypts to junk, re-signed properly.
    let text = unpack(&packed).unwrap();
    let parts: Vec<&str> = text.split('.').collect();
    let claims = format!(r#"{{"sid":{SENDER},"ctr":0,"iat":{IAT},"dat":"AAAA"}}"#);
    let header = r#"{"alg":"HS256","kid":"1"}"#;
    let mac_key = mac_key(0x11);
    let token = compact(header, &claims, &mac_key);
    assert_eq!(token.split('.').next(), Some(parts[0]));
    let err = opener(&ring).open(token.as_bytes()).unwrap_err();
    assert!(matches!(err, OpenError::Payload(_)), "{err:?}");
}

#[test]
fn rotation_keeps_old_tokens_openable() {
    let mut ring = ring(1, 0x11);
    let old_token = seal_one(&ring, 0, Encoding::Packed);
    ring.rotate().unwrap();
    let new_token = seal_one(&ring, 1, Encoding::Packed);
    assert_eq!(new_token.kid, 2);
    let mut opener = opener(&ring);
    assert_eq!(opener.open(&old_token.bytes).unwrap().kid, 1);
    assert_eq!(opener.open(&new_token.bytes).unwrap().kid, 2);
    ring.remove(1);
    assert!(matches!(
        Opener::new(ring, ReplayGuard::default()).open(&old_token.bytes),
        Err(OpenError::UnknownKid { kid: 1, .. })
    ));
}

#[test]
fn claims_are_not_parsed_before_the_signature_is_verified() {
    // Garbage claims under a wrong signature: refused as forged, never reaching the claims parser.
    let ring = ring(1, 0x11);
    let token = compact(
        r#"{"alg":"HS256","kid":"1"}"#,
        "not json at all",
        b"wrong key",
    );
    assert_eq!(
        opener(&ring).open(token.as_bytes()).unwrap_err(),
        OpenError::BadSignature
    );
}

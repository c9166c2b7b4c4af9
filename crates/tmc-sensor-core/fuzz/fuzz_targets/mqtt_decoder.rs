//! Any bytes a broker (or a broken link) can hand the sensor: the MQTT decoder must never panic, must
//! consume no more than it was given, and whatever it decodes must re-encode to a packet that decodes
//! to the same thing — to the same bytes when the input's length field was minimal. Then the rest of
//! the input is decoded as the next packet, as the firmware's receive loop does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tmc_sensor_core::mqtt::{
    decode, decode_remaining_length, packet_len, remaining_length_len, DecodeError,
};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut buf = vec![0u8; data.len() + 8];
    while !rest.is_empty() {
        match decode(rest) {
            Ok((packet, used)) => {
                assert!(used >= 2 && used <= rest.len());
                assert_eq!(packet_len(rest), Ok(used));
                let n = packet
                    .encode(&mut buf)
                    .expect("a decoded packet re-encodes");
                let (again, again_used) = decode(&buf[..n]).expect("a re-encoded packet decodes");
                assert_eq!(again, packet);
                assert_eq!(again_used, n);
                let (len, len_bytes) = decode_remaining_length(&rest[1..]).expect("length decoded");
                if remaining_length_len(len) == len_bytes {
                    assert_eq!(&buf[..n], &rest[..used]);
                } else {
                    assert!(n < used, "non-minimal length re-encodes shorter");
                }
                rest = &rest[used..];
            }
            Err(DecodeError::NeedMore) => {
                // Either the header is incomplete too, or it announces more than we have.
                match packet_len(rest) {
                    Ok(total) => assert!(total > rest.len()),
                    Err(e) => assert_eq!(e, DecodeError::NeedMore),
                }
                break;
            }
            Err(e) => {
                // The header check alone refuses the same way, or the body is at fault.
                let _ = e.to_string();
                break;
            }
        }
    }
});

//! Any bytes a radio can hand us: the frame parser must never panic, must accept exactly 4..=255 bytes, and
//! what it accepts must re-encode to the same bytes. The modem register decoder gets the first bytes too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tmc_radio::frame::{Frame, FrameError, MAX_FRAME_LEN};
use tmc_radio::modem::ModemConfig;

fuzz_target!(|data: &[u8]| {
    match Frame::parse(data) {
        Ok(frame) => {
            assert!((4..=MAX_FRAME_LEN).contains(&data.len()));
            let mut buf = [0u8; MAX_FRAME_LEN];
            assert_eq!(frame.encode(&mut buf), data);
            assert_eq!(Frame::new(frame.header, frame.data), Ok(frame));
        }
        Err(FrameError::TooShort { len }) => assert!(len < 4 && len == data.len()),
        Err(FrameError::TooLong { len }) => assert!(len > MAX_FRAME_LEN && len == data.len()),
        Err(FrameError::DataTooLong { .. }) => unreachable!("parse never reports DataTooLong"),
    }
    if let [c1, c2, c3, p0, p1, ..] = *data {
        if let Ok(modem) = ModemConfig::from_registers(c1, c2, c3, u16::from_be_bytes([p0, p1])) {
            // Airtime must be computable for every decodable configuration and payload length.
            let _ = tmc_radio::airtime::time_on_air(&modem, data.len() % 256);
        }
    }
});

//! The CRC-16 that guards every packet in both directions.
//!
//! Polynomial 0x8005, initial value 0, each byte's bits fed least significant first into a register shifted
//! to the left, no final XOR; the result goes on the bus little-endian (cryptoauthlib `atCRC` / `calib_crc`).
//! It covers the count byte and everything after it up to the CRC itself, never the I²C word address.

/// CRC of `data`, in bus order (low byte first).
///
/// ```
/// // The wake response is `04 11 33 43`: the CRC of `04 11` is `33 43`.
/// assert_eq!(tmc_atecc::crc16(&[0x04, 0x11]), [0x33, 0x43]);
/// ```
pub const fn crc16(data: &[u8]) -> [u8; 2] {
    const POLYNOMIAL: u16 = 0x8005;
    let mut register: u16 = 0;
    let mut i = 0;
    while i < data.len() {
        let byte = data[i];
        let mut bit = 0;
        while bit < 8 {
            let data_bit = (byte >> bit) & 1;
            let register_bit = (register >> 15) as u8;
            register <<= 1;
            if data_bit != register_bit {
                register ^= POLYNOMIAL;
            }
            bit += 1;
        }
        i += 1;
    }
    register.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::crc16;

    #[test]
    fn wake_response_crc() {
        assert_eq!(crc16(&[0x04, 0x11]), [0x33, 0x43]);
    }

    #[test]
    fn info_and_random_frames() {
        assert_eq!(crc16(&[0x07, 0x30, 0x00, 0x00, 0x00]), [0x03, 0x5D]);
        assert_eq!(crc16(&[0x07, 0x1B, 0x00, 0x00, 0x00]), [0x24, 0xCD]);
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(crc16(&[]), [0, 0]);
    }
}

//! Which format a frame carries, told from its bytes alone (nothing verified yet), and how tokens are printed
//! and read back by the tools. The one place that knows what each encoding looks like.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;

use crate::token::PACKED_V1;
use crate::{Encoding, OpenError};

/// What a received frame claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// A secure token, in either encoding.
    Secure(Encoding),
    /// The existing deployment's ASCII JWT ([`crate::legacy`]): its header names no key, where every secure text
    /// token names its `kid`.
    Legacy,
}

/// Tells the format of a received token. A text token whose header cannot be read counts as secure text, so that
/// opening it reports what is wrong with it.
pub fn detect(bytes: &[u8]) -> Result<TokenFormat, OpenError> {
    match bytes.first() {
        None => Err(OpenError::Empty),
        Some(&PACKED_V1) => Ok(TokenFormat::Secure(Encoding::Packed)),
        Some(b'e') if header_names_no_key(bytes) => Ok(TokenFormat::Legacy),
        Some(b'e') => Ok(TokenFormat::Secure(Encoding::Text)),
        Some(b) => Err(OpenError::malformed(
            "token",
            format!("starts with byte 0x{b:02x}: neither a packed (0x{PACKED_V1:02x}) nor a text (\"eyJ\") token"),
        )),
    }
}

/// Whether `bytes` is a JWT (one trailing NUL allowed, as legacy senders add) whose header is a JSON object
/// naming an algorithm but no `kid`. Legacy senders used padded and standard base64 too.
fn header_names_no_key(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if !bytes.starts_with(b"eyJ") {
        return false;
    }
    let header = bytes.split(|&b| b == b'.').next().unwrap_or_default();
    let header = header.strip_suffix(b"==").unwrap_or(header);
    let header = header.strip_suffix(b"=").unwrap_or(header);
    let Ok(json) = URL_SAFE_NO_PAD
        .decode(header)
        .or_else(|_| STANDARD_NO_PAD.decode(header))
    else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Value>(&json) {
        Ok(serde_json::Value::Object(map)) => {
            map.get("alg").is_some_and(serde_json::Value::is_string) && !map.contains_key("kid")
        }
        _ => false,
    }
}

/// A token as the tools print it: text tokens (secure or legacy) as they are, packed tokens in hexadecimal.
pub fn printed(bytes: &[u8]) -> String {
    match detect(bytes) {
        Ok(TokenFormat::Secure(Encoding::Text) | TokenFormat::Legacy) => {
            String::from_utf8_lossy(bytes.strip_suffix(&[0]).unwrap_or(bytes)).into_owned()
        }
        _ => hex::encode(bytes),
    }
}

/// Why a printed token could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token is neither a text JWT (eyJ...) nor hexadecimal: {0}")]
pub struct PrintedTokenError(String);

/// Reads a token given on a command line or stdin, as [`printed`] writes it (spaces and line breaks allowed in
/// hexadecimal).
pub fn parse_printed(input: &str) -> Result<Vec<u8>, PrintedTokenError> {
    let trimmed = input.trim();
    if trimmed.starts_with("eyJ") {
        return Ok(trimmed.as_bytes().to_vec());
    }
    let compact: String = trimmed.split_whitespace().collect();
    hex::decode(&compact).map_err(|e| PrintedTokenError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::{self, LegacyKeys};
    use crate::{KeyRing, MemoryCounter, Reading, Sealer};

    #[test]
    fn legacy_frames_are_told_from_secure_tokens() {
        let frame = legacy::seal(&LegacyKeys::default(), b"21.5").expect("seal");
        assert_eq!(detect(&frame), Ok(TokenFormat::Legacy));
        assert_eq!(detect(&frame[..frame.len() - 1]), Ok(TokenFormat::Legacy));
        let ring = KeyRing::generate(1).expect("ring");
        let mut sealer = Sealer::new(&ring, 1, MemoryCounter::starting_at(1, 0));
        for encoding in [Encoding::Text, Encoding::Packed] {
            let reading = Reading::new("/t", 1, b"x".to_vec());
            let token = sealer.seal(&[reading], 1, encoding).expect("seal");
            assert_eq!(detect(&token.bytes), Ok(TokenFormat::Secure(encoding)));
        }
        assert_eq!(detect(b""), Err(OpenError::Empty));
        assert_eq!(detect(b"eyJ!!!"), Ok(TokenFormat::Secure(Encoding::Text)));
        assert!(matches!(detect(b"\x7f"), Err(OpenError::Malformed { .. })));
    }

    #[test]
    fn printed_tokens_read_back() {
        let legacy_frame = legacy::seal(&LegacyKeys::default(), b"21.5").expect("seal");
        let text = printed(&legacy_frame);
        assert!(text.starts_with("eyJ") && !text.ends_with('\0'), "{text}");
        assert_eq!(
            parse_printed(&text).as_deref(),
            Ok(&legacy_frame[..legacy_frame.len() - 1])
        );
        let packed = [PACKED_V1, 0x0a, 0xff];
        assert_eq!(printed(&packed), "010aff");
        assert_eq!(parse_printed(" 01 0a\nff\n").as_deref(), Ok(&packed[..]));
        assert_eq!(
            parse_printed(" eyJa.b.c\n").as_deref(),
            Ok(&b"eyJa.b.c"[..])
        );
        let err = parse_printed("zz").expect_err("not hex").to_string();
        assert!(err.contains("neither a text JWT"), "{err}");
    }
}

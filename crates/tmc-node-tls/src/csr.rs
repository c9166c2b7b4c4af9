//! A PKCS#10 certificate request (RFC 2986) for the secure element's key, signed by the element.
//!
//! The request has one fixed shape, so its DER is written by hand with exact lengths, into a caller's
//! buffer (no allocation, no panics):
//!
//! ```text
//! CertificationRequest ::= SEQUENCE {
//!   certificationRequestInfo SEQUENCE {
//!     version        INTEGER 0
//!     subject        SEQUENCE { SET { SEQUENCE { OID 2.5.4.3 (CN), UTF8String name } } }
//!     subjectPKInfo  SEQUENCE { SEQUENCE { OID id-ecPublicKey, OID prime256v1 }, BIT STRING 04‖X‖Y }
//!     attributes     [0] {}                                  -- empty
//!   }
//!   signatureAlgorithm SEQUENCE { OID ecdsa-with-SHA256 }    -- no parameters (RFC 5758 §3.2)
//!   signature          BIT STRING { SEQUENCE { INTEGER r, INTEGER s } }
//! }
//! ```
//!
//! The signature is the element's over SHA-256 of the `certificationRequestInfo` DER, and is checked with
//! the element's own Verify before the request is returned: a slot whose key does not match its public key
//! would otherwise only show up as a refusal at the CA. [`csr_pem`] wraps the DER for a console or a file.

use core::fmt;

use p256::ecdsa::Signature;
use pem_rfc7468::LineEnding;
use sha2::{Digest, Sha256};

use crate::SecureElement;

/// The longest common name accepted, in bytes (X.520 `ub-common-name`).
pub const MAX_COMMON_NAME_LEN: usize = 64;

/// The longest request [`write_csr`] writes (a 64-byte name, both signature integers 33 bytes).
pub const MAX_CSR_DER_LEN: usize = der_len(MAX_COMMON_NAME_LEN, MAX_SIGNATURE_DER_LEN);

/// The longest PEM [`csr_pem`] writes for a request from [`write_csr`].
pub const MAX_CSR_PEM_LEN: usize = pem_len(MAX_CSR_DER_LEN);

/// The PEM label of a PKCS#10 request (RFC 7468 §7).
const PEM_LABEL: &str = "CERTIFICATE REQUEST";
const PEM_BEGIN: &[u8] = b"-----BEGIN CERTIFICATE REQUEST-----\n";
const PEM_END: &[u8] = b"-----END CERTIFICATE REQUEST-----\n";
/// RFC 7468 §2: lines of exactly 64 base64 characters, the last one shorter.
const PEM_LINE: usize = 64;

// DER tags.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const BIT_STRING: u8 = 0x03;
const UTF8_STRING: u8 = 0x0c;
const CONTEXT_0: u8 = 0xa0;

/// 2.5.4.3 id-at-commonName.
const OID_COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
/// AlgorithmIdentifier { 1.2.840.10045.2.1 id-ecPublicKey, 1.2.840.10045.3.1.7 prime256v1 }, whole TLV.
const EC_P256_ALGORITHM: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];
/// AlgorithmIdentifier { 1.2.840.10045.4.3.2 ecdsa-with-SHA256 }, whole TLV, parameters absent.
const ECDSA_SHA256_ALGORITHM: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
/// version INTEGER 0 (v1).
const VERSION_0: &[u8] = &[0x02, 0x01, 0x00];
/// attributes [0] IMPLICIT SET OF Attribute, empty.
const NO_ATTRIBUTES: &[u8] = &[CONTEXT_0, 0x00];

/// Why no request was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsrError<E> {
    /// The common name is empty.
    EmptyName,
    /// The common name is longer than [`MAX_COMMON_NAME_LEN`] bytes.
    NameTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The common name holds a control character (it would be invisible in every tool that shows it).
    ControlCharacter,
    /// `out` is shorter than the request.
    BufferTooSmall {
        /// Bytes the request needs (for a failure before signing, an upper bound).
        needed: usize,
    },
    /// The secure element failed (public key, signature or verification).
    Element(E),
    /// The element's signature does not verify with the element's own public key (wrong slot, or a key
    /// that was replaced between the two reads).
    SignatureMismatch,
}

impl<E: fmt::Display> fmt::Display for CsrError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyName => f.write_str("certificate request: the common name is empty"),
            Self::NameTooLong { len } => write!(
                f,
                "certificate request: the common name is {len} bytes, more than {MAX_COMMON_NAME_LEN}"
            ),
            Self::ControlCharacter => {
                f.write_str("certificate request: the common name holds a control character")
            }
            Self::BufferTooSmall { needed } => write!(
                f,
                "certificate request: the output buffer is too small ({needed} bytes needed)"
            ),
            Self::Element(e) => write!(f, "certificate request: secure element: {e}"),
            Self::SignatureMismatch => f.write_str(
                "certificate request: the secure element's signature does not verify with its own public key",
            ),
        }
    }
}

impl<E: fmt::Display + fmt::Debug> core::error::Error for CsrError<E> {}

/// [`csr_pem`]'s output buffer is too small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PemBufferTooSmall {
    /// Bytes the PEM needs.
    pub needed: usize,
}

impl fmt::Display for PemBufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PEM: the output buffer is too small ({} bytes needed)",
            self.needed
        )
    }
}

impl core::error::Error for PemBufferTooSmall {}

/// Bytes of a DER length field for `len` content bytes.
const fn len_of_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else if len <= 0xff {
        2
    } else if len <= 0xffff {
        3
    } else {
        // Nothing here comes near: every length is bounded by the 64-byte name.
        4
    }
}

/// Bytes of a whole TLV with `len` content bytes.
const fn tlv_len(len: usize) -> usize {
    1 + len_of_len(len) + len
}

/// Content length of the subject Name for a `name_len`-byte CN.
const fn name_content_len(name_len: usize) -> usize {
    let attribute = OID_COMMON_NAME.len() + tlv_len(name_len);
    tlv_len(tlv_len(attribute))
}

/// Content length of the certificationRequestInfo.
const fn info_content_len(name_len: usize) -> usize {
    VERSION_0.len() + tlv_len(name_content_len(name_len)) + SPKI_LEN + NO_ATTRIBUTES.len()
}

/// SubjectPublicKeyInfo, whole TLV: the algorithm and a 66-byte BIT STRING (unused-bits byte, 04‖X‖Y).
const SPKI_LEN: usize = tlv_len(EC_P256_ALGORITHM.len() + tlv_len(66));

/// The longest DER Ecdsa-Sig-Value of P-256 (two 33-byte INTEGERs), and the shortest (two 1-byte ones).
const MAX_SIGNATURE_DER_LEN: usize = 2 + 2 * (2 + 33);
const MIN_SIGNATURE_DER_LEN: usize = 2 + 2 * (2 + 1);

/// Content length of the signature BIT STRING holding a `signature_len`-byte DER signature.
const fn signature_content_len(signature_len: usize) -> usize {
    1 + signature_len
}

/// Content length of the CertificationRequest.
const fn request_content_len(name_len: usize, signature_len: usize) -> usize {
    tlv_len(info_content_len(name_len))
        + ECDSA_SHA256_ALGORITHM.len()
        + tlv_len(signature_content_len(signature_len))
}

/// The whole request's DER length.
const fn der_len(name_len: usize, signature_len: usize) -> usize {
    tlv_len(request_content_len(name_len, signature_len))
}

/// Writes DER into a borrowed buffer; every write checks the room left.
struct Der<'a> {
    out: &'a mut [u8],
    pos: usize,
}

/// The buffer ran out (the caller turns it into an error with the size needed).
struct Full;

impl Der<'_> {
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), Full> {
        let end = self.pos.checked_add(bytes.len()).ok_or(Full)?;
        self.out
            .get_mut(self.pos..end)
            .ok_or(Full)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    fn header(&mut self, tag: u8, len: usize) -> Result<(), Full> {
        self.bytes(&[tag])?;
        // Lengths here are < 64 KiB (see len_of_len): at most the two-byte long form.
        match len_of_len(len) {
            1 => self.bytes(&[len as u8]),
            2 => self.bytes(&[0x81, len as u8]),
            _ => self.bytes(&[0x82, (len >> 8) as u8, len as u8]),
        }
    }
}

fn check_name<E>(common_name: &str) -> Result<(), CsrError<E>> {
    if common_name.is_empty() {
        return Err(CsrError::EmptyName);
    }
    if common_name.len() > MAX_COMMON_NAME_LEN {
        return Err(CsrError::NameTooLong {
            len: common_name.len(),
        });
    }
    if common_name.chars().any(char::is_control) {
        return Err(CsrError::ControlCharacter);
    }
    Ok(())
}

/// Writes the DER of a PKCS#10 request for `element`'s key with subject `CN=common_name`, signed by the
/// element, to the start of `out`; returns its length. [`MAX_CSR_DER_LEN`] bytes are always enough.
///
/// The element is asked for its public key, one signature and one verification. On an error nothing
/// useful is in `out` (it may hold part of the request).
pub fn write_csr<E: SecureElement>(
    element: &mut E,
    common_name: &str,
    out: &mut [u8],
) -> Result<usize, CsrError<E::Error>> {
    check_name(common_name)?;
    let name = common_name.as_bytes();
    // Before the element is touched: the largest request this name can give (33-byte integers).
    let most = der_len(name.len(), MAX_SIGNATURE_DER_LEN);
    if out.len() < der_len(name.len(), MIN_SIGNATURE_DER_LEN) {
        return Err(CsrError::BufferTooSmall { needed: most });
    }
    let too_small = |_| CsrError::BufferTooSmall { needed: most };

    let public_key = element.public_key().map_err(CsrError::Element)?;

    // The info goes where it ends up when the outer header is longest (4 bytes: 30 82 hi lo), and moves
    // left once the signature, and so the outer length, is known.
    const HEADER_ROOM: usize = 4;
    let info_len = tlv_len(info_content_len(name.len()));
    let info_range = HEADER_ROOM..HEADER_ROOM + info_len;
    {
        let mut der = Der {
            out: out
                .get_mut(info_range.clone())
                .ok_or(CsrError::BufferTooSmall { needed: most })?,
            pos: 0,
        };
        write_info(&mut der, name, &public_key).map_err(too_small)?;
    }
    let digest: [u8; 32] = Sha256::digest(&out[info_range.clone()]).into();
    let signature = element.sign_digest(&digest).map_err(CsrError::Element)?;
    if !element
        .verify_digest(&public_key, &digest, &signature)
        .map_err(CsrError::Element)?
    {
        return Err(CsrError::SignatureMismatch);
    }

    // A chip's R‖S that is no valid signature (r or s zero or not below the order) did not verify above.
    let signature = Signature::from_slice(&signature)
        .map_err(|_| CsrError::SignatureMismatch)?
        .to_der();
    let signature = signature.as_bytes();
    let total = der_len(name.len(), signature.len());
    if out.len() < total {
        return Err(CsrError::BufferTooSmall { needed: total });
    }
    let content_len = request_content_len(name.len(), signature.len());
    let header_len = total - content_len;
    out.copy_within(info_range, header_len);

    let mut der = Der { out, pos: 0 };
    let result = (|| {
        der.header(SEQUENCE, content_len)?;
        der.pos += info_len;
        der.bytes(ECDSA_SHA256_ALGORITHM)?;
        der.header(BIT_STRING, signature_content_len(signature.len()))?;
        der.bytes(&[0])?; // no unused bits
        der.bytes(signature)
    })();
    result.map_err(|_| CsrError::BufferTooSmall { needed: total })?;
    debug_assert_eq!(der.pos, total);
    Ok(total)
}

/// The certificationRequestInfo.
fn write_info(der: &mut Der<'_>, name: &[u8], public_key: &[u8; 64]) -> Result<(), Full> {
    der.header(SEQUENCE, info_content_len(name.len()))?;
    der.bytes(VERSION_0)?;
    // Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF AttributeTypeAndValue).
    let attribute = OID_COMMON_NAME.len() + tlv_len(name.len());
    der.header(SEQUENCE, tlv_len(tlv_len(attribute)))?;
    der.header(SET, tlv_len(attribute))?;
    der.header(SEQUENCE, attribute)?;
    der.bytes(OID_COMMON_NAME)?;
    der.header(UTF8_STRING, name.len())?;
    der.bytes(name)?;
    // SubjectPublicKeyInfo: the uncompressed point (SEC 1 §2.3.3).
    der.header(SEQUENCE, EC_P256_ALGORITHM.len() + tlv_len(66))?;
    der.bytes(EC_P256_ALGORITHM)?;
    der.header(BIT_STRING, 66)?;
    der.bytes(&[0x00, 0x04])?;
    der.bytes(public_key)?;
    der.bytes(NO_ATTRIBUTES)
}

/// Length of the PEM [`csr_pem`] writes for `der_len` bytes of DER.
pub const fn pem_len(der_len: usize) -> usize {
    let base64 = der_len.div_ceil(3) * 4;
    PEM_BEGIN.len() + base64 + base64.div_ceil(PEM_LINE) + PEM_END.len()
}

/// Writes `der` as a PEM `CERTIFICATE REQUEST` (RFC 7468: base64 lines of 64 characters, `\n` line ends,
/// a final newline) to the start of `out`; returns its length, [`pem_len`]`(der.len())`.
pub fn csr_pem(der: &[u8], out: &mut [u8]) -> Result<usize, PemBufferTooSmall> {
    let needed = pem_len(der.len());
    let Some(out) = out.get_mut(..needed) else {
        return Err(PemBufferTooSmall { needed });
    };
    pem_rfc7468::encode(PEM_LABEL, LineEnding::LF, der, out)
        .map(str::len)
        .map_err(|_| PemBufferTooSmall { needed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_len_is_what_pem_rfc7468_writes() {
        for len in [1, 2, 3, 47, 48, 49, 300, MAX_CSR_DER_LEN] {
            let encoded = pem_rfc7468::encoded_len(PEM_LABEL, LineEnding::LF, &[0u8; 400][..len]);
            assert_eq!(encoded, Ok(pem_len(len)), "{len}");
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(tlv_len(0x7f), 0x81);
        assert_eq!(tlv_len(0x80), 0x83);
        assert_eq!(tlv_len(0x100), 0x104);
        assert_eq!(SPKI_LEN, 91); // the fixed 91-byte P-256 SubjectPublicKeyInfo
        assert_eq!(pem_len(0), PEM_BEGIN.len() + PEM_END.len());
        assert_eq!(pem_len(48), PEM_BEGIN.len() + 65 + PEM_END.len());
        assert_eq!(
            pem_len(49),
            PEM_BEGIN.len() + 64 + 1 + 4 + 1 + PEM_END.len()
        );
    }

    #[test]
    fn base64_padding() {
        let mut out = [0u8; 128];
        for (der, body) in [
            (&b"f"[..], "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"\xfb\xff", "+/8="),
        ] {
            let n = csr_pem(der, &mut out).unwrap_or(0);
            assert_eq!(n, pem_len(der.len()));
            assert_eq!(
                &out[PEM_BEGIN.len()..n - PEM_END.len()],
                &alloc_free_line(body)[..body.len() + 1]
            );
        }
    }

    fn alloc_free_line(body: &str) -> [u8; 8] {
        let mut line = [0u8; 8];
        line[..body.len()].copy_from_slice(body.as_bytes());
        line[body.len()] = b'\n';
        line
    }
}

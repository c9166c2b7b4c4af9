//! The node's stored identity: its certificate and the site CA, kept in a flash sector of their own (not
//! compiled into the image), so that one firmware image serves every sensor of every site. The private
//! key is not here: it never leaves the secure element.
//!
//! # Record layout (version 1, little-endian, one 4096-byte flash sector)
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `TMCI` |
//! | 4 | 1 | version = 1 |
//! | 5 | 3 | zero |
//! | 8 | 2 | certificate length C (DER) |
//! | 10 | 2 | CA certificate length A (DER) |
//! | 12 | C | this node's certificate (DER) |
//! | 12 + C | A | the site CA's certificate (DER) |
//! | 12 + C + A | 32 | SHA-256 of bytes 0 .. 12 + C + A |
//!
//! An erased sector (0xFF) reads as [`RecordError::Empty`]: a node that was never provisioned. A record
//! that was half-written (power lost during the write) fails its checksum and is refused as a whole.

use core::fmt;

use sha2::{Digest, Sha256};

use crate::tls::MAX_CLIENT_CERT_LEN;

/// One flash sector of the ESP8266's SPI flash.
pub const SECTOR_LEN: usize = 4096;
/// The record's first bytes.
pub const MAGIC: [u8; 4] = *b"TMCI";
/// The record format this code writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the certificate.
pub const HEADER_LEN: usize = 12;
const DIGEST_LEN: usize = 32;
/// Longest site CA certificate a record holds (the site's are ~500 B).
pub const MAX_CA_CERT_LEN: usize = 2048;

/// The identity a node connects with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityRecord<'a> {
    /// This node's certificate (DER), issued by the site CA for the secure element's key.
    pub cert_der: &'a [u8],
    /// The site CA's certificate (DER): the node pins its key.
    pub ca_cert_der: &'a [u8],
}

/// Why a record could not be written or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// The sector is erased: this node was never provisioned.
    Empty,
    /// The sector holds something else.
    BadMagic,
    /// A record of a format this firmware does not know.
    UnsupportedVersion(u8),
    /// The lengths in the header do not fit the sector, or a field is empty.
    BadLength,
    /// The checksum does not match (a write that did not complete, or a damaged sector).
    BadChecksum,
    /// The certificate is longer than the TLS client can send.
    CertTooLarge(usize),
    /// The CA certificate is longer than [`MAX_CA_CERT_LEN`].
    CaTooLarge(usize),
    /// The output buffer is shorter than the record.
    BufferTooSmall,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Empty => {
                f.write_str("no identity stored (the sector is erased): provision this node")
            }
            RecordError::BadMagic => {
                f.write_str("the identity sector holds no TMC identity record")
            }
            RecordError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "identity record version {v} is not supported (this firmware reads {VERSION})"
                )
            }
            RecordError::BadLength => f.write_str("identity record lengths are out of range"),
            RecordError::BadChecksum => f.write_str(
                "identity record checksum mismatch (interrupted write or damaged flash)",
            ),
            RecordError::CertTooLarge(n) => {
                write!(
                    f,
                    "certificate of {n} bytes is too large (at most {MAX_CLIENT_CERT_LEN})"
                )
            }
            RecordError::CaTooLarge(n) => {
                write!(
                    f,
                    "CA certificate of {n} bytes is too large (at most {MAX_CA_CERT_LEN})"
                )
            }
            RecordError::BufferTooSmall => f.write_str("buffer too small for the identity record"),
        }
    }
}

impl<'a> IdentityRecord<'a> {
    /// Bytes the record takes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.cert_der.len() + self.ca_cert_der.len() + DIGEST_LEN
    }

    /// Writes the record at the start of `out`; returns its length. The rest of `out` is left as it was
    /// (erased flash stays 0xFF).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, RecordError> {
        let (cert, ca) = (self.cert_der.len(), self.ca_cert_der.len());
        if cert == 0 || ca == 0 {
            return Err(RecordError::BadLength);
        }
        if cert > MAX_CLIENT_CERT_LEN {
            return Err(RecordError::CertTooLarge(cert));
        }
        if ca > MAX_CA_CERT_LEN {
            return Err(RecordError::CaTooLarge(ca));
        }
        let len = self.encoded_len();
        if out.len() < len || len > SECTOR_LEN {
            return Err(RecordError::BufferTooSmall);
        }
        out[..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5..8].fill(0);
        // Both lengths were bounded above, so they fit u16.
        out[8..10].copy_from_slice(&(cert as u16).to_le_bytes());
        out[10..12].copy_from_slice(&(ca as u16).to_le_bytes());
        out[HEADER_LEN..HEADER_LEN + cert].copy_from_slice(self.cert_der);
        out[HEADER_LEN + cert..HEADER_LEN + cert + ca].copy_from_slice(self.ca_cert_der);
        let body = HEADER_LEN + cert + ca;
        let digest: [u8; 32] = Sha256::digest(&out[..body]).into();
        out[body..len].copy_from_slice(&digest);
        Ok(len)
    }

    /// The whole record's length, from its first [`HEADER_LEN`] bytes: how much a reader of a stream must
    /// read. Checks everything the header says.
    pub fn len_from_header(header: &[u8]) -> Result<usize, RecordError> {
        if header.len() < HEADER_LEN {
            return Err(RecordError::BadLength);
        }
        if header[..4] == [0xFF; 4] {
            return Err(RecordError::Empty);
        }
        if header[..4] != MAGIC {
            return Err(RecordError::BadMagic);
        }
        if header[4] != VERSION {
            return Err(RecordError::UnsupportedVersion(header[4]));
        }
        let cert = usize::from(u16::from_le_bytes([header[8], header[9]]));
        let ca = usize::from(u16::from_le_bytes([header[10], header[11]]));
        if cert == 0 || ca == 0 || header[5..8] != [0; 3] {
            return Err(RecordError::BadLength);
        }
        if cert > MAX_CLIENT_CERT_LEN {
            return Err(RecordError::CertTooLarge(cert));
        }
        if ca > MAX_CA_CERT_LEN {
            return Err(RecordError::CaTooLarge(ca));
        }
        Ok(HEADER_LEN + cert + ca + DIGEST_LEN)
    }

    /// Reads the record at the start of `sector` (a whole flash sector, or at least the record).
    pub fn decode(sector: &'a [u8]) -> Result<Self, RecordError> {
        let len = Self::len_from_header(sector)?;
        if len > sector.len() {
            return Err(RecordError::BadLength);
        }
        let cert = usize::from(u16::from_le_bytes([sector[8], sector[9]]));
        let body = len - DIGEST_LEN;
        let digest: [u8; 32] = Sha256::digest(&sector[..body]).into();
        if sector[body..body + DIGEST_LEN] != digest {
            return Err(RecordError::BadChecksum);
        }
        Ok(IdentityRecord {
            cert_der: &sector[HEADER_LEN..HEADER_LEN + cert],
            ca_cert_der: &sector[HEADER_LEN + cert..body],
        })
    }

    /// The TLS client's configuration for this identity: the CA's key pinned, `server_name` checked.
    pub fn tls_config<'s>(
        &self,
        server_name: &'s str,
    ) -> Result<crate::TlsClientConfig<'s>, crate::CertError>
    where
        'a: 's,
    {
        crate::TlsClientConfig::from_ca_cert(self.ca_cert_der, server_name, self.cert_der)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ([u8; 300], [u8; 400]) {
        let mut cert = [0u8; 300];
        let mut ca = [0u8; 400];
        for (i, b) in cert.iter_mut().enumerate() {
            *b = i as u8;
        }
        for (i, b) in ca.iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        (cert, ca)
    }

    #[test]
    fn round_trip_in_an_erased_sector() {
        let (cert, ca) = sample();
        let record = IdentityRecord {
            cert_der: &cert,
            ca_cert_der: &ca,
        };
        let mut sector = [0xFFu8; SECTOR_LEN];
        let len = record.encode(&mut sector).unwrap();
        assert_eq!(len, 12 + 300 + 400 + 32);
        assert!(sector[len..].iter().all(|&b| b == 0xFF));
        assert_eq!(IdentityRecord::decode(&sector).unwrap(), record);
    }

    #[test]
    fn erased_foreign_and_damaged_sectors_are_refused_by_name() {
        let (cert, ca) = sample();
        let record = IdentityRecord {
            cert_der: &cert,
            ca_cert_der: &ca,
        };
        let mut sector = [0xFFu8; SECTOR_LEN];
        assert_eq!(IdentityRecord::decode(&sector), Err(RecordError::Empty));
        let len = record.encode(&mut sector).unwrap();

        let mut foreign = sector;
        foreign[0] = b'X';
        assert_eq!(IdentityRecord::decode(&foreign), Err(RecordError::BadMagic));
        let mut newer = sector;
        newer[4] = 2;
        assert_eq!(
            IdentityRecord::decode(&newer),
            Err(RecordError::UnsupportedVersion(2))
        );
        let mut long = sector;
        long[10..12].copy_from_slice(&4000u16.to_le_bytes());
        assert_eq!(
            IdentityRecord::decode(&long),
            Err(RecordError::CaTooLarge(4000))
        );
        assert_eq!(
            IdentityRecord::decode(&sector[..len - 1]),
            Err(RecordError::BadLength)
        );
        assert_eq!(IdentityRecord::len_from_header(&sector[..12]), Ok(len));
        // A write cut short: the tail is still erased.
        let mut torn = sector;
        torn[len - 40..].fill(0xFF);
        assert_eq!(IdentityRecord::decode(&torn), Err(RecordError::BadChecksum));
        let mut flipped = sector;
        flipped[100] ^= 1;
        assert_eq!(
            IdentityRecord::decode(&flipped),
            Err(RecordError::BadChecksum)
        );
    }

    #[test]
    fn oversized_and_empty_fields_are_refused_when_writing() {
        let big = [0u8; MAX_CLIENT_CERT_LEN + 1];
        let ca = [1u8; 10];
        let mut sector = [0xFFu8; SECTOR_LEN];
        assert_eq!(
            IdentityRecord {
                cert_der: &big,
                ca_cert_der: &ca
            }
            .encode(&mut sector),
            Err(RecordError::CertTooLarge(MAX_CLIENT_CERT_LEN + 1))
        );
        assert_eq!(
            IdentityRecord {
                cert_der: &[],
                ca_cert_der: &ca
            }
            .encode(&mut sector),
            Err(RecordError::BadLength)
        );
        let mut short = [0u8; 20];
        assert_eq!(
            IdentityRecord {
                cert_der: &ca,
                ca_cert_der: &ca
            }
            .encode(&mut short),
            Err(RecordError::BufferTooSmall)
        );
        assert!(sector.iter().all(|&b| b == 0xFF));
    }
}

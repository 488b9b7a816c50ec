//! SHA-256 helpers and the validation of user-supplied hashes.

use cosmwasm_std::HexBinary;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// A 32-byte SHA-256 digest.
pub type Hash32 = [u8; 32];

/// Why a hash supplied by a user was refused.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum HashError {
    #[error("hash must be 64 lowercase or uppercase hex characters, got {len} characters")]
    BadLength { len: usize },
    #[error("hash contains a non-hex character at position {position}")]
    NotHex { position: usize },
    #[error("hash must be 32 bytes, got {len} bytes")]
    BadByteLength { len: usize },
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash32 {
    Sha256::digest(data).into()
}

/// Parses a hex SHA-256 digest (64 hex characters, either case) into bytes.
pub fn parse_content_hash(hex: &str) -> Result<Hash32, HashError> {
    if hex.len() != 64 {
        return Err(HashError::BadLength { len: hex.len() });
    }
    let mut out = [0u8; 32];
    let bytes = hex.as_bytes();
    for (i, byte) in out.iter_mut().enumerate() {
        let hi = hex_value(bytes[2 * i]).ok_or(HashError::NotHex { position: 2 * i })?;
        let lo = hex_value(bytes[2 * i + 1]).ok_or(HashError::NotHex {
            position: 2 * i + 1,
        })?;
        *byte = (hi << 4) | lo;
    }
    Ok(out)
}

/// Lowercase hex of a digest, the canonical form stored on chain.
pub fn to_hex(hash: &Hash32) -> String {
    HexBinary::from(hash.as_slice()).to_hex()
}

/// Converts a `HexBinary` that must hold exactly 32 bytes.
pub fn hash32(value: &HexBinary) -> Result<Hash32, HashError> {
    value
        .as_slice()
        .try_into()
        .map_err(|_| HashError::BadByteLength { len: value.len() })
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_published_test_vector() {
        // FIPS 180-2 example: SHA-256("abc").
        assert_eq!(
            to_hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn content_hash_round_trips_and_accepts_uppercase() {
        let h = sha256(b"tributary");
        let hex = to_hex(&h);
        assert_eq!(parse_content_hash(&hex).unwrap(), h);
        assert_eq!(parse_content_hash(&hex.to_uppercase()).unwrap(), h);
    }

    #[test]
    fn malformed_hashes_are_refused_with_the_reason() {
        assert_eq!(
            parse_content_hash("abcd"),
            Err(HashError::BadLength { len: 4 })
        );
        let mut bad = "0".repeat(64);
        bad.replace_range(10..11, "g");
        assert_eq!(
            parse_content_hash(&bad),
            Err(HashError::NotHex { position: 10 })
        );
        assert_eq!(
            hash32(&HexBinary::from(vec![1u8; 31])),
            Err(HashError::BadByteLength { len: 31 })
        );
    }
}

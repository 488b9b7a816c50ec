//! The address of a blob: the SHA-256 of its bytes.

use std::fmt;
use std::str::FromStr;

use tributary_types::hash::{parse_content_hash, sha256, to_hex, Hash32, HashError};

/// The SHA-256 of a blob's bytes, written as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(Hash32);

impl ContentHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(sha256(bytes))
    }

    /// The digest's 32 bytes.
    pub fn as_bytes(&self) -> &Hash32 {
        &self.0
    }

    /// Lowercase hex, the form the chain stores and the store names blobs by.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl From<Hash32> for ContentHash {
    fn from(digest: Hash32) -> Self {
        Self(digest)
    }
}

impl FromStr for ContentHash {
    type Err = HashError;

    /// Accepts either case, as the datanet contract does, so a hash copied from anywhere
    /// names the same blob.
    fn from_str(hex: &str) -> Result<Self, Self::Err> {
        parse_content_hash(hex).map(Self)
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_lowercase_hex_and_parses_back_from_either_case() {
        let hash = ContentHash::of(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash.to_string(), hex);
        assert_eq!(hex.parse::<ContentHash>().unwrap(), hash);
        assert_eq!(hex.to_uppercase().parse::<ContentHash>().unwrap(), hash);
        assert!("abc".parse::<ContentHash>().is_err());
    }
}

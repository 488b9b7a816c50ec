//! The interface every content store offers.

use async_trait::async_trait;

use crate::error::Result;
use crate::hash::ContentHash;

/// What a put did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// The blob was not there and now is.
    Created,
    /// The blob was already there and was left as it was.
    AlreadyPresent,
}

/// Blobs addressed by the SHA-256 of their bytes.
///
/// Implementors write three methods; `put` and `contains` follow from them. The trait is
/// object safe so a server or a service can hold whichever backend its configuration names.
#[async_trait]
pub trait ContentStore: Send + Sync {
    /// Stores `bytes` under `hash`, refusing them with [`crate::Error::HashMismatch`] if they
    /// hash to anything else. Storing a blob that is already there changes nothing.
    async fn put_expected(&self, hash: &ContentHash, bytes: Vec<u8>) -> Result<Stored>;

    /// The blob's bytes, or `None` if the store does not hold it.
    async fn get(&self, hash: &ContentHash) -> Result<Option<Vec<u8>>>;

    /// The blob's length in bytes, or `None` if the store does not hold it.
    async fn size(&self, hash: &ContentHash) -> Result<Option<u64>>;

    /// Stores `bytes` and returns their hash.
    async fn put(&self, bytes: Vec<u8>) -> Result<ContentHash> {
        let hash = ContentHash::of(&bytes);
        self.put_expected(&hash, bytes).await?;
        Ok(hash)
    }

    /// Whether the store holds the blob.
    async fn contains(&self, hash: &ContentHash) -> Result<bool> {
        Ok(self.size(hash).await?.is_some())
    }
}

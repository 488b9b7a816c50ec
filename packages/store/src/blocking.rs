//! Calls into any content store from code that is not async, such as the training loop.

use std::sync::Arc;

use tokio::runtime::{Builder, Runtime};

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::store::{ContentStore, Stored};

/// A content store whose methods block, each running the store's own on a private runtime.
///
/// Its methods panic when called from inside an async runtime, as any `block_on` does; async
/// code holds the [`ContentStore`] itself.
pub struct BlockingStore {
    store: Arc<dyn ContentStore>,
    runtime: Runtime,
}

impl BlockingStore {
    /// Wraps `store` with a runtime of its own.
    pub fn new(store: Arc<dyn ContentStore>) -> Result<Self> {
        let runtime = Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        Ok(Self { store, runtime })
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn ContentStore> {
        &self.store
    }

    /// Stores `bytes` and returns their hash.
    pub fn put(&self, bytes: Vec<u8>) -> Result<ContentHash> {
        self.runtime.block_on(self.store.put(bytes))
    }

    /// Stores `bytes` under `hash`, refusing them if they hash to anything else.
    pub fn put_expected(&self, hash: &ContentHash, bytes: Vec<u8>) -> Result<Stored> {
        self.runtime.block_on(self.store.put_expected(hash, bytes))
    }

    /// The blob's bytes, or `None` if the store does not hold it.
    pub fn get(&self, hash: &ContentHash) -> Result<Option<Vec<u8>>> {
        self.runtime.block_on(self.store.get(hash))
    }

    /// The blob's length in bytes, or `None` if the store does not hold it.
    pub fn size(&self, hash: &ContentHash) -> Result<Option<u64>> {
        self.runtime.block_on(self.store.size(hash))
    }

    /// Whether the store holds the blob.
    pub fn contains(&self, hash: &ContentHash) -> Result<bool> {
        self.runtime.block_on(self.store.contains(hash))
    }
}

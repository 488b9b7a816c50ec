//! A content store in a folder on local disk.
//!
//! Layout under the store's root:
//!
//! ```text
//! <root>/ab/ab12…ef   the blob whose SHA-256 is ab12…ef, under a folder named by its first byte
//! <root>/tmp/         writes in progress
//! ```
//!
//! The fan-out keeps folders small enough for any filesystem at millions of blobs. A write
//! goes to a fresh file in `tmp/`, is flushed to disk, and only then renamed to its final
//! name, so a final name never holds partial bytes: a crash leaves at most a file in `tmp/`,
//! which reads never look at and [`LocalStore::open`] removes once it is stale.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::store::{ContentStore, Stored};
use crate::DEFAULT_MAX_BLOB_BYTES;

/// The folder, under the root, of writes in progress.
pub const TEMP_DIR: &str = "tmp";

/// How long a file may sit in `tmp/` untouched before `open` takes it for a crash's leftover.
/// A live write touches its file continuously, so this only has to outlast a stalled disk.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);

/// Makes temporary names unique between clones of a store in one process; the process id
/// makes them unique between processes sharing the folder.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Blobs in a folder, named by their SHA-256.
///
/// Its own methods block; through [`ContentStore`] the same operations run on tokio's
/// blocking pool, so one store serves both synchronous callers and the async server.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
    max_blob_bytes: u64,
}

impl LocalStore {
    /// Opens the store at `root`, creating the folder if needed and removing stale
    /// leftovers of interrupted writes.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let store = Self {
            root: root.into(),
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
        };
        let temp_dir = store.temp_dir();
        fs::create_dir_all(&temp_dir).map_err(Error::io("create", &temp_dir))?;
        store.remove_stale_temp_files()?;
        Ok(store)
    }

    /// The same store, refusing blobs longer than `max` bytes.
    pub fn with_max_blob_bytes(mut self, max: u64) -> Self {
        self.max_blob_bytes = max;
        self
    }

    /// The folder the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The longest blob the store accepts, in bytes.
    pub fn max_blob_bytes(&self) -> u64 {
        self.max_blob_bytes
    }

    /// Where the blob named `hash` lives once stored.
    pub fn blob_path(&self, hash: &ContentHash) -> PathBuf {
        self.fan_out_dir(hash).join(hash.to_hex())
    }

    /// Stores `bytes` and returns their hash.
    pub fn put(&self, bytes: &[u8]) -> Result<ContentHash> {
        self.check_size(bytes)?;
        let hash = ContentHash::of(bytes);
        self.write_verified(&hash, bytes)?;
        Ok(hash)
    }

    /// Stores `bytes` under `hash`, writing nothing if they hash to anything else.
    pub fn put_expected(&self, hash: &ContentHash, bytes: &[u8]) -> Result<Stored> {
        self.check_size(bytes)?;
        let actual = ContentHash::of(bytes);
        if actual != *hash {
            return Err(Error::HashMismatch {
                expected: *hash,
                actual,
            });
        }
        self.write_verified(hash, bytes)
    }

    /// The blob's bytes, or `None` if the store does not hold it.
    ///
    /// The bytes are checked against their name, so a blob damaged on disk is reported as
    /// [`Error::Corrupt`] rather than served.
    pub fn get(&self, hash: &ContentHash) -> Result<Option<Vec<u8>>> {
        let path = self.blob_path(hash);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path)(e)),
        };
        let actual = ContentHash::of(&bytes);
        if actual != *hash {
            return Err(Error::Corrupt {
                hash: *hash,
                actual,
            });
        }
        Ok(Some(bytes))
    }

    /// The blob's length in bytes, or `None` if the store does not hold it.
    pub fn size(&self, hash: &ContentHash) -> Result<Option<u64>> {
        let path = self.blob_path(hash);
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("inspect", path)(e)),
        }
    }

    /// Whether the store holds the blob.
    pub fn contains(&self, hash: &ContentHash) -> Result<bool> {
        Ok(self.size(hash)?.is_some())
    }

    /// Runs a blocking operation on tokio's blocking pool.
    async fn off_thread<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&LocalStore) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || op(&store)).await?
    }

    /// The folder of every blob whose hash starts with the same byte as `hash`.
    fn fan_out_dir(&self, hash: &ContentHash) -> PathBuf {
        self.root.join(&hash.to_hex()[..2])
    }

    fn temp_dir(&self) -> PathBuf {
        self.root.join(TEMP_DIR)
    }

    fn check_size(&self, bytes: &[u8]) -> Result<()> {
        let size = bytes.len() as u64;
        if size > self.max_blob_bytes {
            return Err(Error::TooLarge {
                size,
                max: self.max_blob_bytes,
            });
        }
        Ok(())
    }

    /// Writes bytes already known to hash to `hash`.
    fn write_verified(&self, hash: &ContentHash, bytes: &[u8]) -> Result<Stored> {
        // Only a complete, verified write ever gets a blob's name, so a file of the right
        // length there is the blob and is left alone. A wrong length can only be damage,
        // which the fresh copy below replaces.
        if self.size(hash)? == Some(bytes.len() as u64) {
            return Ok(Stored::AlreadyPresent);
        }
        let path = self.blob_path(hash);
        let fan_out = self.fan_out_dir(hash);
        let new_fan_out = !fan_out.is_dir();
        fs::create_dir_all(&fan_out).map_err(Error::io("create", &fan_out))?;

        let temp = self.write_temp_file(hash, bytes)?;
        if let Err(e) = fs::rename(&temp, &path) {
            // Best effort: the leftover is harmless and swept on the next open anyway.
            let _ = fs::remove_file(&temp);
            return Err(Error::io("rename into", path)(e));
        }
        sync_dir(&fan_out)?;
        if new_fan_out {
            sync_dir(&self.root)?;
        }
        Ok(Stored::Created)
    }

    /// Writes `bytes` to a new file in `tmp/` and flushes it to disk.
    fn write_temp_file(&self, hash: &ContentHash, bytes: &[u8]) -> Result<PathBuf> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self
            .temp_dir()
            .join(format!("{hash}.{}.{n}.tmp", std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(bytes)?;
                file.sync_all()
            });
        if let Err(e) = written {
            let _ = fs::remove_file(&path);
            return Err(Error::io("write", path)(e));
        }
        Ok(path)
    }

    fn remove_stale_temp_files(&self) -> Result<()> {
        let temp_dir = self.temp_dir();
        let entries = fs::read_dir(&temp_dir).map_err(Error::io("list", &temp_dir))?;
        let now = SystemTime::now();
        for entry in entries {
            let entry = entry.map_err(Error::io("list", &temp_dir))?;
            let path = entry.path();
            let Ok(meta) = entry.metadata() else {
                // Gone already: another process sharing the folder swept it.
                continue;
            };
            let stale = meta
                .modified()
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age >= STALE_TEMP_AGE);
            if meta.is_file() && stale {
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(Error::io("remove", path)(e))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Flushes a folder's entries, which on Unix is what makes a rename into it durable.
#[cfg(unix)]
fn sync_dir(path: &Path) -> Result<()> {
    fs::File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(Error::io("flush", path))
}

/// Elsewhere a folder cannot be opened to flush it; the rename is as durable as it gets.
#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> Result<()> {
    Ok(())
}

#[async_trait]
impl ContentStore for LocalStore {
    async fn put_expected(&self, hash: &ContentHash, bytes: Vec<u8>) -> Result<Stored> {
        let hash = *hash;
        self.off_thread(move |store| LocalStore::put_expected(store, &hash, &bytes))
            .await
    }

    async fn get(&self, hash: &ContentHash) -> Result<Option<Vec<u8>>> {
        let hash = *hash;
        self.off_thread(move |store| LocalStore::get(store, &hash))
            .await
    }

    async fn size(&self, hash: &ContentHash) -> Result<Option<u64>> {
        let hash = *hash;
        self.off_thread(move |store| LocalStore::size(store, &hash))
            .await
    }

    async fn put(&self, bytes: Vec<u8>) -> Result<ContentHash> {
        self.off_thread(move |store| LocalStore::put(store, &bytes))
            .await
    }

    async fn contains(&self, hash: &ContentHash) -> Result<bool> {
        let hash = *hash;
        self.off_thread(move |store| LocalStore::contains(store, &hash))
            .await
    }
}

//! A content store in a folder on local disk.
//!
//! Layout under the store's root:
//!
//! ```text
//! <root>/ab/ab12…ef     the blob whose SHA-256 is ab12…ef, under a folder named by its first byte
//! <root>/tmp/           writes in progress
//! <root>/quarantine/    blobs found damaged, moved aside for the operator
//! ```
//!
//! The fan-out keeps folders small enough for any filesystem at millions of blobs. A write
//! goes to a fresh file in `tmp/`, is hashed as it is written, flushed to disk, and only then
//! renamed to its final name, so a final name never holds partial or unverified bytes: a crash
//! leaves at most a file in `tmp/`, which reads never look at and [`LocalStore::open`] removes
//! once it is stale.
//!
//! Every read checks the bytes against their name. A blob that fails is moved to
//! `quarantine/`, so it is never served again and a fresh upload can take its place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::store::{ContentStore, Stored};
use crate::DEFAULT_MAX_BLOB_BYTES;

/// The folder, under the root, of writes in progress.
pub const TEMP_DIR: &str = "tmp";

/// The folder, under the root, of blobs found damaged.
pub const QUARANTINE_DIR: &str = "quarantine";

/// How long a file may sit in `tmp/` untouched before `open` takes it for a crash's leftover.
/// A live write touches its file continuously, so this only has to outlast a stalled disk.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);

/// How much of a blob is read, hashed and sent at a time.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Makes temporary names unique between clones of a store in one process; the process id
/// makes them unique between processes sharing the folder.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Blobs in a folder, named by their SHA-256.
///
/// Its own methods block; through [`ContentStore`] the same operations run on tokio's
/// blocking pool, so one store serves both synchronous callers and the async server, which
/// also streams with [`LocalStore::put_stream`] and [`LocalStore::open_blob`].
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
    max_blob_bytes: u64,
    budget: Option<Arc<DiskBudget>>,
}

/// The bytes a store may hold in all, and how many it holds or has promised to writes in flight.
#[derive(Debug)]
struct DiskBudget {
    max: u64,
    used: Mutex<u64>,
}

impl DiskBudget {
    fn used(&self) -> std::sync::MutexGuard<'_, u64> {
        // A plain number, consistent after every statement.
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Room set aside for one write; what the write does not keep goes back to the budget when
/// this is dropped.
#[derive(Debug)]
pub struct DiskReservation {
    budget: Option<Arc<DiskBudget>>,
    held: u64,
}

impl DiskReservation {
    /// Counts `bytes` of the reservation as stored for good.
    fn keep(&mut self, bytes: u64) {
        self.held = self.held.saturating_sub(bytes);
    }
}

impl Drop for DiskReservation {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            let mut used = budget.used();
            *used = used.saturating_sub(self.held);
        }
    }
}

/// A file in `tmp/`, removed when dropped unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    placed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.placed {
            // Best effort: a leftover is harmless and swept on the next open anyway.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// What a streamed write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// Whether the blob is new.
    pub stored: Stored,
    /// Its length in bytes.
    pub size: u64,
}

impl LocalStore {
    /// Opens the store at `root`, creating the folder if needed and removing stale
    /// leftovers of interrupted writes.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let store = Self {
            root: root.into(),
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
            budget: None,
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

    /// The same store, refusing any write that would take what it holds (blobs and
    /// quarantined blobs) past `max` bytes. Reads the folder once to learn what it holds.
    pub fn with_max_total_bytes(mut self, max: u64) -> Result<Self> {
        let used = self.bytes_on_disk()?;
        self.budget = Some(Arc::new(DiskBudget {
            max,
            used: Mutex::new(used),
        }));
        Ok(self)
    }

    /// The folder the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The longest blob the store accepts, in bytes.
    pub fn max_blob_bytes(&self) -> u64 {
        self.max_blob_bytes
    }

    /// The bytes held or promised to writes in flight, when the store has a disk budget.
    pub fn used_bytes(&self) -> Option<u64> {
        self.budget.as_ref().map(|budget| *budget.used())
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
    /// The bytes are checked against their name before they are returned, so a blob damaged
    /// on disk is reported as [`Error::Corrupt`], and quarantined, rather than returned.
    pub fn get(&self, hash: &ContentHash) -> Result<Option<Vec<u8>>> {
        let path = self.blob_path(hash);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path)(e)),
        };
        let read = file.metadata().and_then(|meta| {
            let mut bytes = Vec::with_capacity(meta.len().min(self.max_blob_bytes) as usize);
            file.read_to_end(&mut bytes)?;
            Ok((meta, bytes))
        });
        let (meta, bytes) = read.map_err(Error::io("read", &path))?;
        let actual = ContentHash::of(&bytes);
        if actual != *hash {
            self.quarantine_or_log(hash, &path, &meta);
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

    /// Sets aside `bytes` of the disk budget for a write, or refuses with
    /// [`Error::StoreFull`] when they are not there.
    pub fn reserve(&self, bytes: u64) -> Result<DiskReservation> {
        let Some(budget) = &self.budget else {
            return Ok(DiskReservation {
                budget: None,
                held: 0,
            });
        };
        let mut used = budget.used();
        let available = budget.max.saturating_sub(*used);
        if bytes > available {
            return Err(Error::StoreFull {
                needed: bytes,
                available,
                max: budget.max,
            });
        }
        *used += bytes;
        Ok(DiskReservation {
            budget: Some(Arc::clone(budget)),
            held: bytes,
        })
    }

    /// Stores the bytes of `body` under `hash` as they arrive, hashing them on the way to a
    /// file in `tmp/`; only bytes that hash to `hash` are renamed into place. At most
    /// `max_bytes` (and the store's own cap) are taken, and that much room is reserved in the
    /// disk budget before the first byte is read.
    pub async fn put_stream<S>(
        &self,
        hash: &ContentHash,
        max_bytes: u64,
        body: S,
    ) -> Result<Written>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        let max = max_bytes.min(self.max_blob_bytes);
        let mut reservation = self.reserve(max)?;
        let (temp, file) = self.create_temp_file(hash)?;
        let mut file = tokio::fs::File::from_std(file);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            size = size.saturating_add(chunk.len() as u64);
            if size > max {
                return Err(Error::TooLarge { size, max });
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(Error::io("write", &temp.path))?;
        }
        file.flush().await.map_err(Error::io("write", &temp.path))?;
        file.sync_all()
            .await
            .map_err(Error::io("flush", &temp.path))?;
        drop(file);
        let actual = ContentHash::from(<[u8; 32]>::from(hasher.finalize()));
        if actual != *hash {
            return Err(Error::HashMismatch {
                expected: *hash,
                actual,
            });
        }
        let hash = *hash;
        let stored = self
            .off_thread(move |store| store.place(&hash, temp, size))
            .await?;
        if stored == Stored::Created {
            reservation.keep(size);
        }
        Ok(Written { stored, size })
    }

    /// Opens the blob for a streamed, verified read, or `None` if the store does not hold it.
    pub async fn open_blob(&self, hash: &ContentHash) -> Result<Option<BlobReader>> {
        let path = self.blob_path(hash);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path)(e)),
        };
        let meta = file.metadata().await.map_err(Error::io("inspect", &path))?;
        Ok(Some(BlobReader {
            store: self.clone(),
            hash: *hash,
            path,
            len: meta.len(),
            meta,
            file,
            hasher: Sha256::new(),
            read: 0,
            held: None,
            finished: false,
        }))
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
        let size = bytes.len() as u64;
        // Checked first to skip the write; `place` checks again in case of a racing writer.
        if self.holds_intact(hash, size)? {
            return Ok(Stored::AlreadyPresent);
        }
        let mut reservation = self.reserve(size)?;
        let (temp, mut file) = self.create_temp_file(hash)?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(Error::io("write", &temp.path))?;
        drop(file);
        let stored = self.place(hash, temp, size)?;
        if stored == Stored::Created {
            reservation.keep(size);
        }
        Ok(stored)
    }

    /// Whether the blob is stored whole: of `size` bytes that hash to its name. Anything
    /// else under its name is damage, quarantined so a fresh copy can take its place.
    fn holds_intact(&self, hash: &ContentHash, size: u64) -> Result<bool> {
        let path = self.blob_path(hash);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("read", path)(e)),
        };
        let meta = file.metadata().map_err(Error::io("inspect", &path))?;
        if meta.len() == size && hash_of_file(&mut file).map_err(Error::io("read", &path))? == *hash
        {
            return Ok(true);
        }
        self.quarantine(hash, &path, &meta)?;
        Ok(false)
    }

    /// Renames a verified temporary file to the blob's name, unless the blob is already
    /// stored whole.
    fn place(&self, hash: &ContentHash, mut temp: TempFile, size: u64) -> Result<Stored> {
        if self.holds_intact(hash, size)? {
            return Ok(Stored::AlreadyPresent);
        }
        let path = self.blob_path(hash);
        let fan_out = self.fan_out_dir(hash);
        let new_fan_out = !fan_out.is_dir();
        fs::create_dir_all(&fan_out).map_err(Error::io("create", &fan_out))?;
        fs::rename(&temp.path, &path).map_err(Error::io("rename into", &path))?;
        temp.placed = true;
        sync_dir(&fan_out)?;
        if new_fan_out {
            sync_dir(&self.root)?;
        }
        Ok(Stored::Created)
    }

    /// Moves a damaged blob out of its name into `quarantine/`, if the file at `path` is still
    /// the one read (`read`), and not a good copy a writer renamed there since.
    fn quarantine(&self, hash: &ContentHash, path: &Path, read: &fs::Metadata) -> Result<()> {
        match fs::symlink_metadata(path) {
            Ok(now) if same_file(&now, read) => {}
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("inspect", path)(e)),
        }
        let dir = self.root.join(QUARANTINE_DIR);
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dest = dir.join(format!("{hash}.{since_epoch}.{}.{n}", std::process::id()));
        match fs::rename(path, &dest) {
            Ok(()) => {
                tracing::error!(
                    %hash,
                    quarantined = %dest.display(),
                    "a stored blob no longer matches its hash"
                );
                Ok(())
            }
            // Another reader got there first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("quarantine", path)(e)),
        }
    }

    /// Quarantines a blob a read found damaged. A store the reader may not change (opened
    /// read-only, say) still reports the damage as [`Error::Corrupt`]; the failure to move it
    /// aside goes to the log.
    fn quarantine_or_log(&self, hash: &ContentHash, path: &Path, read: &fs::Metadata) {
        if let Err(error) = self.quarantine(hash, path, read) {
            tracing::error!(%error, %hash, "cannot quarantine a damaged blob");
        }
    }

    /// A new, exclusively created file in `tmp/` for a write of `hash`.
    fn create_temp_file(&self, hash: &ContentHash) -> Result<(TempFile, File)> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self
            .temp_dir()
            .join(format!("{hash}.{}.{n}.tmp", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(Error::io("create", &path))?;
        Ok((
            TempFile {
                path,
                placed: false,
            },
            file,
        ))
    }

    /// The bytes under the root outside `tmp/`: the blobs and the quarantine.
    fn bytes_on_disk(&self) -> Result<u64> {
        let mut total = 0u64;
        let entries = fs::read_dir(&self.root).map_err(Error::io("list", &self.root))?;
        for entry in entries {
            let entry = entry.map_err(Error::io("list", &self.root))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_fan_out = name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
            if !(is_fan_out || name == QUARANTINE_DIR) {
                continue;
            }
            let dir = entry.path();
            for file in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
                let file = file.map_err(Error::io("list", &dir))?;
                if let Ok(meta) = file.metadata() {
                    if meta.is_file() {
                        total = total.saturating_add(meta.len());
                    }
                }
            }
        }
        Ok(total)
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

/// A stored blob read a chunk at a time, checked against its name as it goes.
///
/// The last chunk is held back until the whole blob has hashed to its name, so a reader that
/// gets every byte got the blob; one damaged on disk ends in [`Error::Corrupt`] before its
/// last byte, and is quarantined.
pub struct BlobReader {
    store: LocalStore,
    hash: ContentHash,
    path: PathBuf,
    len: u64,
    meta: fs::Metadata,
    file: tokio::fs::File,
    hasher: Sha256,
    read: u64,
    held: Option<Bytes>,
    finished: bool,
}

impl BlobReader {
    /// The blob's length on disk when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the blob is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next chunk, or `None` once the whole blob has been returned and verified.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        while !self.finished {
            let mut buf = BytesMut::with_capacity(CHUNK_BYTES);
            let n = self
                .file
                .read_buf(&mut buf)
                .await
                .map_err(Error::io("read", &self.path))?;
            self.read = self.read.saturating_add(n as u64);
            if n == 0 || self.read > self.len {
                self.finished = true;
                self.verify().await?;
                return Ok(self.held.take());
            }
            self.hasher.update(&buf);
            if let Some(ready) = self.held.replace(buf.freeze()) {
                return Ok(Some(ready));
            }
        }
        Ok(self.held.take())
    }

    /// The rest of the blob as a stream of chunks.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
        futures_util::stream::try_unfold(self, |mut reader| async move {
            Ok(reader.next_chunk().await?.map(|chunk| (chunk, reader)))
        })
    }

    async fn verify(&mut self) -> Result<()> {
        let actual = ContentHash::from(<[u8; 32]>::from(
            std::mem::take(&mut self.hasher).finalize(),
        ));
        if actual == self.hash && self.read == self.len {
            return Ok(());
        }
        self.held = None;
        let (hash, path, meta) = (self.hash, self.path.clone(), self.meta.clone());
        let quarantined = self
            .store
            .off_thread(move |store| {
                store.quarantine_or_log(&hash, &path, &meta);
                Ok(())
            })
            .await;
        if let Err(error) = quarantined {
            tracing::error!(%error, hash = %self.hash, "cannot quarantine a damaged blob");
        }
        Err(Error::Corrupt {
            hash: self.hash,
            actual,
        })
    }
}

fn hash_of_file(file: &mut File) -> io::Result<ContentHash> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        match file.read(&mut buf)? {
            0 => break,
            n => hasher.update(&buf[..n]),
        }
    }
    Ok(ContentHash::from(<[u8; 32]>::from(hasher.finalize())))
}

/// Whether two looks at a path saw the same file.
#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Elsewhere there is no inode to compare; the length and time of change stand in.
#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
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

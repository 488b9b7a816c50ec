//! Opening an index: every file verified against the manifest before a score is computed, the
//! data memory-mapped so an index larger than memory works.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use rayon::prelude::*;
use tributary_store::ContentHash;

use super::contributions::{self, Contributions};
use super::error::io_err;
use super::format::{
    check_consistency, check_size, layer_blocks, sums_file, unit_sums_file, IndexManifest, FORMAT,
    MANIFEST_FILE,
};
use super::kernel::{Kernel, ScanConfig};
use super::IndexError;

/// Bytes of contribution sums recomputed at a time by [`GradientIndex::verify_sums`].
const VERIFY_BATCH_BYTES: usize = 64 << 20;

/// A verified, memory-mapped gradient index, ready to score queries.
pub struct GradientIndex {
    pub(super) dir: PathBuf,
    pub(super) manifest: IndexManifest,
    pub(super) ids: Vec<u64>,
    pub(super) contributions: Contributions,
    /// Per checkpoint, the rows (`n × dim` f16).
    pub(super) gradients: Vec<Mmap>,
    /// Per checkpoint, the per-layer inverse damped Fishers (f32).
    pub(super) preconditioners: Vec<Mmap>,
    /// Per checkpoint, the per-contribution row sums (`contributions × dim` f32).
    pub(super) sums: Vec<Mmap>,
    /// Per checkpoint, the per-contribution sums of unit rows (`contributions × dim` f32).
    pub(super) unit_sums: Vec<Mmap>,
    pub(super) blocks: Vec<(usize, usize)>,
    pub(super) dim: usize,
    pub(super) n: usize,
    pub(super) scan: ScanConfig,
    pub(super) kernel: Kernel,
    /// The index's own thread pool, when [`ScanConfig::threads`] asks for one.
    pub(super) pool: Option<Arc<rayon::ThreadPool>>,
}

impl std::fmt::Debug for GradientIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GradientIndex")
            .field("dir", &self.dir)
            .field("index_hash", &self.manifest.index_hash)
            .field("n_examples", &self.n)
            .field("n_contributions", &self.contributions.len())
            .field("dim", &self.dim)
            .field("checkpoints", &self.manifest.checkpoints.len())
            .field("kernel", &self.kernel)
            .field("threads", &self.scan.threads)
            .finish()
    }
}

impl GradientIndex {
    /// Opens and verifies the index in `dir` (see [`GradientIndex::open_with`]), scanning as
    /// [`ScanConfig::from_env`] says.
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        Self::open_with(dir, ScanConfig::from_env()?)
    }

    /// Opens and verifies the index in `dir`: format, manifest hash, every file's presence,
    /// size and sha256, consistency of the dimensions and of the contribution count;
    /// memory-maps the data files.
    pub fn open_with(dir: &Path, scan: ScanConfig) -> Result<Self, IndexError> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = match fs::read_to_string(&manifest_path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(IndexError::NotFound {
                    dir: dir.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(IndexError::Io {
                    path: manifest_path,
                    source,
                })
            }
        };
        let json_err = |source| IndexError::Json {
            path: manifest_path.clone(),
            source,
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(json_err)?;
        let format = value.get("format").and_then(|f| f.as_str());
        if format != Some(FORMAT) {
            return Err(IndexError::UnsupportedFormat {
                found: format.unwrap_or("<none>").to_string(),
            });
        }
        let manifest: IndexManifest = serde_json::from_value(value).map_err(json_err)?;
        let found = manifest.compute_hash()?;
        if found != manifest.index_hash {
            return Err(IndexError::ManifestHash {
                expected: manifest.index_hash.clone(),
                found,
            });
        }
        check_consistency(&manifest)?;

        // Presence and size of every file first: cheap, and the clearest message.
        let mut handles = Vec::with_capacity(manifest.files.len());
        for file in &manifest.files {
            let path = dir.join(&file.name);
            let handle = match File::open(&path) {
                Ok(handle) => handle,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(IndexError::MissingFile {
                        file: file.name.clone(),
                    })
                }
                Err(source) => return Err(IndexError::Io { path, source }),
            };
            let len = handle.metadata().map_err(io_err(&path))?.len();
            check_size(file, len)?;
            handles.push((path, handle));
        }

        // Read the ids, map the rest, then hash exactly the bytes that will be used.
        let n = manifest.n_examples as usize;
        let dim = manifest.dim as usize;
        let c = manifest.checkpoints.len();
        let mut handles = handles.into_iter();
        let (ids_path, mut ids_file) = handles.next().expect("examples.bin is listed");
        let mut ids_bytes = Vec::with_capacity(n * 8);
        ids_file
            .read_to_end(&mut ids_bytes)
            .map_err(io_err(&ids_path))?;
        let mut maps = Vec::with_capacity(4 * c);
        for (path, handle) in handles {
            // SAFETY: the index's files are written once and never modified in place; the
            // mapping is read-only, and its contents are verified against the manifest's
            // sha256 below before any score is computed from them.
            let map = unsafe { Mmap::map(&handle) }.map_err(io_err(&path))?;
            maps.push(map);
        }
        let contents: Vec<&[u8]> = std::iter::once(ids_bytes.as_slice())
            .chain(maps.iter().map(|m| &m[..]))
            .collect();
        for (file, bytes) in manifest.files.iter().zip(&contents) {
            check_size(file, bytes.len() as u64)?;
        }
        let digests: Vec<String> = contents
            .par_iter()
            .map(|b| ContentHash::of(b).to_hex())
            .collect();
        for (file, digest) in manifest.files.iter().zip(&digests) {
            if *digest != file.sha256 {
                return Err(IndexError::Tampered {
                    file: file.name.clone(),
                });
            }
        }
        drop(contents);

        let ids: Vec<u64> = ids_bytes
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        let contributions = Contributions::group(&ids);
        if contributions.len() as u64 != manifest.n_contributions {
            return Err(IndexError::Inconsistent {
                reason: format!(
                    "n_contributions is {} but examples.bin holds {} distinct contribution ids",
                    manifest.n_contributions,
                    contributions.len()
                ),
            });
        }
        let unit_sums = maps.split_off(3 * c);
        let sums = maps.split_off(2 * c);
        let preconditioners = maps.split_off(c);
        GradientIndex {
            dir: dir.to_path_buf(),
            blocks: layer_blocks(&manifest.layers),
            manifest,
            ids,
            contributions,
            gradients: maps,
            preconditioners,
            sums,
            unit_sums,
            dim,
            n,
            scan: ScanConfig::default(),
            kernel: Kernel::Scalar,
            pool: None,
        }
        .with_scan(scan)
    }

    /// Sets the kernel and thread count of every later scan (scores do not change).
    pub fn with_scan(mut self, scan: ScanConfig) -> Result<Self, IndexError> {
        self.kernel = scan.kernel.resolve()?;
        self.pool = match scan.threads {
            None => None,
            Some(0) => {
                return Err(IndexError::ScanConfig {
                    reason: "a scan needs at least one thread".into(),
                })
            }
            Some(threads) => Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("index-scan-{i}"))
                    .build()
                    .map_err(|e| IndexError::ScanConfig {
                        reason: format!("cannot start {threads} scan threads: {e}"),
                    })?,
            )),
        };
        self.scan = scan;
        Ok(self)
    }

    /// Runs `f` on the index's thread pool (rayon's global one when it has none).
    pub(super) fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    /// The scan configuration in force.
    pub fn scan(&self) -> ScanConfig {
        self.scan
    }

    /// The kernel scans run on.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The directory the index was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The verified manifest.
    pub fn manifest(&self) -> &IndexManifest {
        &self.manifest
    }

    /// The index's hash (covers the manifest and every data file).
    pub fn index_hash(&self) -> &str {
        &self.manifest.index_hash
    }

    /// Number of examples.
    pub fn n_examples(&self) -> usize {
        self.n
    }

    /// Width of one row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of checkpoints.
    pub fn n_checkpoints(&self) -> usize {
        self.gradients.len()
    }

    /// Contribution id of every example, in example order.
    pub fn contribution_ids(&self) -> &[u64] {
        &self.ids
    }

    /// The index's contributions (distinct ids ascending, with their examples).
    pub fn contributions(&self) -> &Contributions {
        &self.contributions
    }

    /// The raw little-endian f16 bytes of `example`'s row at `checkpoint`.
    pub(super) fn row_bytes(&self, checkpoint: usize, example: usize) -> &[u8] {
        let width = self.dim * 2;
        &self.gradients[checkpoint][example * width..(example + 1) * width]
    }

    /// The stored (f16-rounded) row of `example` at `checkpoint`, or `None` out of range.
    pub fn row(&self, checkpoint: usize, example: usize) -> Option<Vec<f32>> {
        if checkpoint >= self.n_checkpoints() || example >= self.n {
            return None;
        }
        let raw = self.row_bytes(checkpoint, example);
        Some(
            (0..self.dim)
                .map(|j| super::kernel::f16_at(raw, j) as f32)
                .collect(),
        )
    }

    /// The stored sum of `position`'s rows at `checkpoint` (`unit`: of its unit rows), f32.
    pub fn contribution_sum(
        &self,
        checkpoint: usize,
        position: usize,
        unit: bool,
    ) -> Option<Vec<f32>> {
        if checkpoint >= self.n_checkpoints() || position >= self.contributions.len() {
            return None;
        }
        let map = if unit { &self.unit_sums } else { &self.sums };
        let width = self.dim * 4;
        let raw = &map[checkpoint][position * width..(position + 1) * width];
        Some(
            (0..self.dim)
                .map(|j| super::kernel::f32_at(raw, j) as f32)
                .collect(),
        )
    }

    /// Recomputes every contribution sum from the rows and compares it with the stored one:
    /// a full pass over the rows, for auditors (opening checks only the hashes).
    pub fn verify_sums(&self) -> Result<(), IndexError> {
        let m = self.contributions.len();
        let width = self.dim * 4;
        let batch = (VERIFY_BATCH_BYTES / (self.dim * 8)).max(1);
        for c in 0..self.n_checkpoints() {
            for start in (0..m).step_by(batch) {
                let end = m.min(start + batch);
                let (sums, units) = self.install(|| {
                    contributions::sums(
                        &self.contributions,
                        start..end,
                        &self.gradients[c],
                        self.dim,
                        self.kernel,
                    )
                });
                for (stored, computed, name) in [
                    (&self.sums[c], sums, sums_file(c)),
                    (&self.unit_sums[c], units, unit_sums_file(c)),
                ] {
                    if stored[start * width..end * width] != computed[..] {
                        return Err(IndexError::Inconsistent {
                            reason: format!("{name} does not hold the sums of the stored rows"),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

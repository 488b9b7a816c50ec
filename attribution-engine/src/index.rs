//! The on-disk gradient index of a trained model's training examples.
//!
//! For every training example (a token window that remembers its contribution id) and every
//! checkpoint of the model, the index stores the example's projected per-example gradient: a
//! row of `dim` values, the concatenation in layer order of one `k_out * k_in` block per layer
//! (see [`LayerSpec`]). Next to the rows it stores, per checkpoint and layer, the inverse of
//! the damped empirical Fisher (the covariance of that layer's block over the training rows),
//! so a query gradient can be preconditioned TRAK-style without touching the rows twice.
//!
//! Layout of an index directory:
//!
//! - `examples.bin`: `n_examples` little-endian `u64` contribution ids, in example order;
//! - `gradients-<c>.bin`: per checkpoint `c`, `n_examples × dim` little-endian IEEE `f16`
//!   values, row-major (rows are quantized when pushed; everything computed afterwards, the
//!   preconditioner and the scores, reads the quantized values);
//! - `preconditioner-<c>.bin`: per checkpoint `c`, for each layer in order, the `k × k`
//!   matrix `(F + λI)⁻¹` as little-endian `f32`, row-major (`k` = the layer's width);
//! - `manifest.json`: the [`IndexManifest`], written last and atomically. Its `index_hash` is
//!   the sha256 of the manifest's canonical JSON with `index_hash` set to `""`; since the
//!   manifest records each file's size and sha256, the hash covers the data as well.
//!
//! [`GradientIndex::open`] verifies all of it before a single score is computed, and scores
//! are computed block by block over memory-mapped rows, so an index larger than memory works.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use half::f16;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use memmap2::Mmap;
use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tributary_store::ContentHash;
use tributary_types::DatanetRoot;

use crate::projection::LayerSpec;

/// The format tag every manifest carries; [`GradientIndex::open`] reads only this one.
pub const FORMAT: &str = "tributary-gradient-index-1";

/// Default damping: the ratio of each layer's mean eigenvalue (`trace(F)/k`) added to `F`.
pub const DEFAULT_DAMPING: f32 = 0.1;

/// Default maximum number of rows per checkpoint used to estimate the Fisher.
pub const DEFAULT_FISHER_ROWS: usize = 16_384;

/// Default number of rows read per block when scoring.
pub const DEFAULT_BLOCK_ROWS: usize = 4096;

/// The storage type of gradient rows, as named in the manifest.
pub const DTYPE: &str = "f16";

/// Name of the manifest file inside an index directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Name of the contribution-id file inside an index directory.
pub const EXAMPLES_FILE: &str = "examples.bin";

/// Rows gathered before they are folded into the Fisher with one matrix product.
const FISHER_BATCH: usize = 256;

/// Buffer size of the streaming writers and hashers.
const IO_BUFFER: usize = 1 << 20;

/// Name of checkpoint `c`'s gradient file.
pub fn gradients_file(c: usize) -> String {
    format!("gradients-{c}.bin")
}

/// Name of checkpoint `c`'s preconditioner file.
pub fn preconditioner_file(c: usize) -> String {
    format!("preconditioner-{c}.bin")
}

/// How scores are computed from projected gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// TRAK-style: the query preconditioned by the inverse damped Fisher, dotted with each row.
    Preconditioned,
    /// Plain dot product of query and row.
    GradDot,
    /// Cosine similarity of query and row (LESS-style).
    Cosine,
}

impl Method {
    /// Every method, in a stable order.
    pub const ALL: [Method; 3] = [Method::Preconditioned, Method::GradDot, Method::Cosine];

    /// The versioned identifier recorded with attributions.
    pub fn id(&self) -> &'static str {
        match self {
            Method::Preconditioned => "trak-logra-v1",
            Method::GradDot => "graddot-logra-v1",
            Method::Cosine => "cosine-logra-v1",
        }
    }

    /// The snake-case name (`preconditioned`, `grad_dot`, `cosine`).
    pub fn name(&self) -> &'static str {
        match self {
            Method::Preconditioned => "preconditioned",
            Method::GradDot => "grad_dot",
            Method::Cosine => "cosine",
        }
    }

    /// Parses either [`Method::id`] or [`Method::name`].
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.id() == s || m.name() == s)
    }
}

/// One model checkpoint whose gradients the index holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// Human-readable name, e.g. `step-200` or `final`.
    pub name: String,
    /// Training step of the checkpoint.
    pub step: u64,
    /// Hex sha256 of the checkpoint's weights.
    pub weights_hash: String,
}

/// Everything known before rows are written.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexHeader {
    /// Hex sha256 of the final model's weights.
    pub weights_hash: String,
    /// The datanet versions the model was trained on.
    pub datanet_roots: Vec<DatanetRoot>,
    /// The projected layers, in row order.
    pub layers: Vec<LayerSpec>,
    /// Seed of the gradient projection.
    pub projection_seed: u64,
    /// The checkpoints, in the order their rows are pushed.
    pub checkpoints: Vec<CheckpointRef>,
    /// One contribution id per example, in example order.
    pub contribution_ids: Vec<u64>,
    /// Damping as a ratio of each layer's mean eigenvalue (see [`DEFAULT_DAMPING`]).
    pub damping: f32,
    /// Maximum rows per checkpoint used to estimate the Fisher (see [`DEFAULT_FISHER_ROWS`]).
    pub fisher_rows_max: usize,
}

impl IndexHeader {
    /// Width of one row: the sum of the layers' projected widths.
    pub fn dim(&self) -> usize {
        self.layers.iter().map(LayerSpec::dim).sum()
    }
}

/// The manifest of a finished index (`manifest.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexManifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Hex sha256 of the final model's weights.
    pub weights_hash: String,
    /// The datanet versions the model was trained on.
    pub datanet_roots: Vec<DatanetRoot>,
    /// The projected layers, in row order.
    pub layers: Vec<LayerSpec>,
    /// Seed of the gradient projection.
    pub projection_seed: u64,
    /// The checkpoints, in file order.
    pub checkpoints: Vec<CheckpointRef>,
    /// Number of examples (rows per checkpoint).
    pub n_examples: u64,
    /// Width of one row (per checkpoint).
    pub dim: u64,
    /// Storage type of the rows: [`DTYPE`].
    pub dtype: String,
    /// Damping ratio used for the preconditioners.
    pub damping: f32,
    /// Number of rows per checkpoint the Fisher was estimated from.
    pub fisher_rows: u64,
    /// Every data file, with its size and sha256.
    pub files: Vec<FileRef>,
    /// Hex sha256 of this manifest's canonical JSON with `index_hash` set to `""`.
    pub index_hash: String,
}

impl IndexManifest {
    /// Computes the hash this manifest should carry as `index_hash`.
    pub fn compute_hash(&self) -> Result<String, IndexError> {
        let mut canonical = self.clone();
        canonical.index_hash = String::new();
        let bytes = serde_json::to_vec(&canonical).map_err(|source| IndexError::Json {
            path: PathBuf::from(MANIFEST_FILE),
            source,
        })?;
        Ok(ContentHash::of(&bytes).to_hex())
    }
}

/// One data file of an index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// File name inside the index directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Hex sha256 of the contents.
    pub sha256: String,
}

/// Everything that can go wrong writing, opening or querying an index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// An operating-system I/O error on a path.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The target directory already holds an index.
    #[error("an index already exists in {} (it has a {MANIFEST_FILE}); refusing to overwrite it", dir.display())]
    Exists {
        /// The directory.
        dir: PathBuf,
    },
    /// No index in the directory.
    #[error("no gradient index in {}: {MANIFEST_FILE} is missing", dir.display())]
    NotFound {
        /// The directory.
        dir: PathBuf,
    },
    /// The manifest names a format this build does not read.
    #[error("unsupported index format {found:?} (this build reads {FORMAT:?})")]
    UnsupportedFormat {
        /// The format found in the manifest.
        found: String,
    },
    /// A file listed in the manifest is missing.
    #[error("index file {file} is missing")]
    MissingFile {
        /// The file name.
        file: String,
    },
    /// A file's size differs from the manifest's (shorter or longer).
    #[error(
        "index file {file} is {}: expected {expected} bytes, found {found}",
        if found < expected { "truncated" } else { "longer than recorded" }
    )]
    Truncated {
        /// The file name.
        file: String,
        /// Size recorded in the manifest.
        expected: u64,
        /// Size on disk.
        found: u64,
    },
    /// A file's contents do not match the manifest's sha256.
    #[error("index file {file} does not match the sha256 recorded in the manifest (corrupted or tampered with)")]
    Tampered {
        /// The file name.
        file: String,
    },
    /// The manifest does not hash to its own `index_hash`.
    #[error("{MANIFEST_FILE} was modified: it claims index_hash {expected} but its contents hash to {found}")]
    ManifestHash {
        /// The `index_hash` written in the manifest.
        expected: String,
        /// The hash of the manifest as found.
        found: String,
    },
    /// The manifest contradicts itself (sizes, layers, file list).
    #[error("inconsistent index manifest: {reason}")]
    Inconsistent {
        /// What is inconsistent.
        reason: String,
    },
    /// The header given to [`IndexWriter::create`] is unusable.
    #[error("invalid index header: {reason}")]
    Header {
        /// What is wrong.
        reason: String,
    },
    /// Rows pushed with the wrong shape or count.
    #[error("bad gradient rows: {reason}")]
    Shape {
        /// What is wrong.
        reason: String,
    },
    /// Rows pushed for the wrong checkpoint.
    #[error("gradient rows out of order: {reason}")]
    Order {
        /// What is wrong.
        reason: String,
    },
    /// A gradient value that f16 cannot hold (non-finite or beyond ±65504).
    #[error("gradient value {value} (checkpoint {checkpoint}, example {example}, column {column}) cannot be stored as f16: it is not finite or beyond ±65504")]
    Value {
        /// Checkpoint index.
        checkpoint: usize,
        /// Example index.
        example: usize,
        /// Column in the row.
        column: usize,
        /// The value.
        value: f32,
    },
    /// [`IndexWriter::finish`] called before all rows were pushed.
    #[error("index is incomplete: checkpoint {checkpoint} has {found} of {expected} rows")]
    Incomplete {
        /// The first incomplete checkpoint.
        checkpoint: usize,
        /// Rows expected.
        expected: u64,
        /// Rows pushed.
        found: u64,
    },
    /// A damped covariance that is not positive definite (only possible with broken input).
    #[error("the damped covariance of layer {layer} at checkpoint {checkpoint} is not positive definite")]
    Singular {
        /// Checkpoint index.
        checkpoint: usize,
        /// Layer name.
        layer: String,
    },
    /// A query of the wrong shape or with non-finite values.
    #[error("bad query: {reason}")]
    BadQuery {
        /// What is wrong.
        reason: String,
    },
    /// A JSON error reading or writing the manifest.
    #[error("invalid JSON in {}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file being written, hashed as it goes.
struct Sink {
    name: String,
    path: PathBuf,
    out: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
}

impl Sink {
    fn create(dir: &Path, name: String) -> Result<Sink, IndexError> {
        let path = dir.join(&name);
        let file = File::create(&path).map_err(io_err(&path))?;
        Ok(Sink {
            name,
            out: BufWriter::with_capacity(IO_BUFFER, file),
            path,
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), IndexError> {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out.write_all(bytes).map_err(io_err(&self.path))
    }

    /// Flushes and fsyncs the file.
    fn finish(self) -> Result<FileRef, IndexError> {
        let file = self.out.into_inner().map_err(|e| IndexError::Io {
            path: self.path.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err(&self.path))?;
        Ok(FileRef {
            name: self.name,
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

/// Offsets and widths of the layers' blocks in a row.
fn layer_blocks(layers: &[LayerSpec]) -> Vec<(usize, usize)> {
    let mut offset = 0;
    layers
        .iter()
        .map(|l| {
            let block = (offset, l.dim());
            offset += l.dim();
            block
        })
        .collect()
}

/// The running Fisher estimate of one checkpoint.
struct Fisher {
    blocks: Vec<(usize, usize)>,
    dim: usize,
    /// Per layer, `Σ g gᵀ` over the sampled rows folded in so far.
    sums: Vec<DMatrix<f64>>,
    /// Sampled rows not yet folded in, row-major.
    pending: Vec<f32>,
    sampled: u64,
}

impl Fisher {
    fn new(blocks: &[(usize, usize)], dim: usize) -> Fisher {
        Fisher {
            blocks: blocks.to_vec(),
            dim,
            sums: blocks.iter().map(|&(_, k)| DMatrix::zeros(k, k)).collect(),
            pending: Vec::with_capacity(FISHER_BATCH * dim),
            sampled: 0,
        }
    }

    fn add_row(&mut self, row: &[f32]) {
        self.pending.extend_from_slice(row);
        self.sampled += 1;
        if self.pending.len() >= FISHER_BATCH * self.dim {
            self.fold();
        }
    }

    /// Folds the pending rows into the sums with one matrix product per layer.
    fn fold(&mut self) {
        let rows = self.pending.len() / self.dim;
        if rows == 0 {
            return;
        }
        let (pending, dim) = (&self.pending, self.dim);
        self.sums
            .par_iter_mut()
            .zip(self.blocks.par_iter())
            .for_each(|(sum, &(offset, k))| {
                // `x` is k × rows (one column per row), `xt` its transpose.
                let x = DMatrix::<f64>::from_fn(k, rows, |j, r| {
                    f64::from(pending[r * dim + offset + j])
                });
                let xt = x.transpose();
                sum.gemm(1.0, &x, &xt, 1.0);
            });
        self.pending.clear();
    }

    /// `(F + λI)⁻¹` per layer, as row-major little-endian f32 bytes, layers concatenated.
    fn inverse_bytes(
        mut self,
        checkpoint: usize,
        layers: &[LayerSpec],
        damping: f32,
    ) -> Result<Vec<u8>, IndexError> {
        self.fold();
        let n = self.sampled.max(1) as f64;
        let damping = f64::from(damping);
        let inverses: Vec<Result<Vec<u8>, IndexError>> = self
            .sums
            .into_par_iter()
            .zip(layers.par_iter())
            .map(|(sum, layer)| {
                let k = sum.nrows();
                let mut f = sum / n;
                let trace = f.trace();
                let lambda = if trace > 0.0 {
                    damping * trace / k as f64
                } else {
                    damping
                };
                for i in 0..k {
                    f[(i, i)] += lambda;
                }
                let inverse = f
                    .cholesky()
                    .ok_or_else(|| IndexError::Singular {
                        checkpoint,
                        layer: layer.layer.name(),
                    })?
                    .inverse();
                let mut bytes = Vec::with_capacity(k * k * 4);
                for r in 0..k {
                    for c in 0..k {
                        let v = 0.5 * (inverse[(r, c)] + inverse[(c, r)]);
                        bytes.extend_from_slice(&(v as f32).to_le_bytes());
                    }
                }
                Ok(bytes)
            })
            .collect();
        let mut out = Vec::new();
        for bytes in inverses {
            out.extend_from_slice(&bytes?);
        }
        Ok(out)
    }
}

/// The checkpoint whose rows are being pushed.
struct Pass {
    checkpoint: usize,
    rows: usize,
    sink: Sink,
    fisher: Fisher,
}

/// Writes an index: rows are pushed checkpoint by checkpoint, then [`IndexWriter::finish`].
pub struct IndexWriter {
    dir: PathBuf,
    header: IndexHeader,
    blocks: Vec<(usize, usize)>,
    dim: usize,
    n: usize,
    /// Every `stride`-th row of a checkpoint goes into the Fisher.
    stride: usize,
    examples: FileRef,
    gradients: Vec<FileRef>,
    preconditioners: Vec<FileRef>,
    fisher_rows: u64,
    pass: Option<Pass>,
    /// The checkpoint the next pass must be for.
    next_checkpoint: usize,
}

impl IndexWriter {
    /// Creates `dir` (if needed) and starts an index there; refuses a directory that already
    /// has a manifest.
    pub fn create(dir: &Path, header: IndexHeader) -> Result<Self, IndexError> {
        validate_header(&header)?;
        if dir.join(MANIFEST_FILE).exists() {
            return Err(IndexError::Exists {
                dir: dir.to_path_buf(),
            });
        }
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut sink = Sink::create(dir, EXAMPLES_FILE.to_string())?;
        let mut bytes = Vec::with_capacity(header.contribution_ids.len() * 8);
        for id in &header.contribution_ids {
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        sink.write(&bytes)?;
        let examples = sink.finish()?;
        let n = header.contribution_ids.len();
        let stride = n.div_ceil(header.fisher_rows_max);
        Ok(IndexWriter {
            dir: dir.to_path_buf(),
            blocks: layer_blocks(&header.layers),
            dim: header.dim(),
            n,
            stride,
            fisher_rows: n.div_ceil(stride) as u64,
            examples,
            gradients: Vec::new(),
            preconditioners: Vec::new(),
            pass: None,
            next_checkpoint: 0,
            header,
        })
    }

    /// Width of one row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of examples (rows per checkpoint).
    pub fn n_examples(&self) -> usize {
        self.n
    }

    /// Appends rows (a multiple of `dim` values, in example order) to `checkpoint`.
    /// Checkpoints are written in order 0, 1, …, each complete before the next begins; rows
    /// are quantized to f16 here. On error nothing of `rows` is written.
    pub fn push_rows(&mut self, checkpoint: usize, rows: &[f32]) -> Result<(), IndexError> {
        let n_checkpoints = self.header.checkpoints.len();
        if checkpoint >= n_checkpoints {
            return Err(IndexError::Order {
                reason: format!(
                    "checkpoint {checkpoint} does not exist (the index has {n_checkpoints})"
                ),
            });
        }
        match &self.pass {
            Some(pass) if pass.checkpoint != checkpoint => {
                return Err(IndexError::Order {
                    reason: format!(
                        "rows for checkpoint {checkpoint} arrived while checkpoint {} has {} of {} rows",
                        pass.checkpoint, pass.rows, self.n
                    ),
                });
            }
            None if checkpoint != self.next_checkpoint => {
                return Err(IndexError::Order {
                    reason: if checkpoint < self.next_checkpoint {
                        format!("checkpoint {checkpoint} is already complete")
                    } else {
                        format!(
                            "rows for checkpoint {checkpoint} arrived before checkpoint {} was written",
                            self.next_checkpoint
                        )
                    },
                });
            }
            _ => {}
        }
        let count = rows.len() / self.dim;
        if count * self.dim != rows.len() {
            return Err(IndexError::Shape {
                reason: format!(
                    "{} values is not a whole number of rows of width {}",
                    rows.len(),
                    self.dim
                ),
            });
        }
        let done = self.pass.as_ref().map_or(0, |p| p.rows);
        if done + count > self.n {
            return Err(IndexError::Shape {
                reason: format!(
                    "{count} rows pushed to checkpoint {checkpoint}, which already has {done} of {} rows",
                    self.n
                ),
            });
        }

        // Quantize and check everything before writing anything.
        let mut halves = vec![f16::ZERO; rows.len()];
        halves.convert_from_f32_slice(rows);
        if let Some(at) = halves.iter().position(|h| !h.is_finite()) {
            return Err(IndexError::Value {
                checkpoint,
                example: done + at / self.dim,
                column: at % self.dim,
                value: rows[at],
            });
        }
        let mut bytes = Vec::with_capacity(rows.len() * 2);
        for h in &halves {
            bytes.extend_from_slice(&h.to_bits().to_le_bytes());
        }

        if self.pass.is_none() {
            let sink = Sink::create(&self.dir, gradients_file(checkpoint))?;
            self.pass = Some(Pass {
                checkpoint,
                rows: 0,
                sink,
                fisher: Fisher::new(&self.blocks, self.dim),
            });
        }
        let pass = self.pass.as_mut().expect("pass started above");
        pass.sink.write(&bytes)?;
        let mut rounded = vec![0f32; self.dim];
        for (r, row) in halves.chunks_exact(self.dim).enumerate() {
            let example = done + r;
            if example / self.stride * self.stride == example {
                row.convert_to_f32_slice(&mut rounded);
                pass.fisher.add_row(&rounded);
            }
        }
        pass.rows += count;
        if pass.rows == self.n {
            let pass = self.pass.take().expect("pass is present");
            self.complete(pass)?;
        }
        Ok(())
    }

    /// Closes a complete checkpoint: fsyncs its rows, fits and writes its preconditioner.
    fn complete(&mut self, pass: Pass) -> Result<(), IndexError> {
        self.gradients.push(pass.sink.finish()?);
        let bytes =
            pass.fisher
                .inverse_bytes(pass.checkpoint, &self.header.layers, self.header.damping)?;
        let mut sink = Sink::create(&self.dir, preconditioner_file(pass.checkpoint))?;
        sink.write(&bytes)?;
        self.preconditioners.push(sink.finish()?);
        self.next_checkpoint = pass.checkpoint + 1;
        Ok(())
    }

    /// Checks that every row of every checkpoint is present and writes `manifest.json`
    /// (atomically, last); returns the manifest.
    pub fn finish(self) -> Result<IndexManifest, IndexError> {
        if let Some(pass) = &self.pass {
            return Err(IndexError::Incomplete {
                checkpoint: pass.checkpoint,
                expected: self.n as u64,
                found: pass.rows as u64,
            });
        }
        if self.next_checkpoint < self.header.checkpoints.len() {
            return Err(IndexError::Incomplete {
                checkpoint: self.next_checkpoint,
                expected: self.n as u64,
                found: 0,
            });
        }
        let mut files = vec![self.examples];
        files.extend(self.gradients);
        files.extend(self.preconditioners);
        let header = self.header;
        let mut manifest = IndexManifest {
            format: FORMAT.to_string(),
            weights_hash: header.weights_hash,
            datanet_roots: header.datanet_roots,
            layers: header.layers,
            projection_seed: header.projection_seed,
            checkpoints: header.checkpoints,
            n_examples: self.n as u64,
            dim: self.dim as u64,
            dtype: DTYPE.to_string(),
            damping: header.damping,
            fisher_rows: self.fisher_rows,
            files,
            index_hash: String::new(),
        };
        manifest.index_hash = manifest.compute_hash()?;

        let path = self.dir.join(MANIFEST_FILE);
        let tmp = self.dir.join(format!("{MANIFEST_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(&manifest).map_err(|source| IndexError::Json {
            path: path.clone(),
            source,
        })?;
        {
            let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
            file.write_all(&json).map_err(io_err(&tmp))?;
            file.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(&self.dir)?;
        Ok(manifest)
    }
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), IndexError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Directories cannot be fsynced here; the rename is as durable as the platform makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), IndexError> {
    Ok(())
}

fn validate_header(header: &IndexHeader) -> Result<(), IndexError> {
    let bad = |reason: String| Err(IndexError::Header { reason });
    if header.layers.is_empty() {
        return bad("no layers".into());
    }
    if let Some(l) = header.layers.iter().find(|l| l.dim() == 0) {
        return bad(format!(
            "layer {} has a zero-width projection",
            l.layer.name()
        ));
    }
    if header.checkpoints.is_empty() {
        return bad("no checkpoints".into());
    }
    if header.contribution_ids.is_empty() {
        return bad("no examples".into());
    }
    if !(header.damping.is_finite() && header.damping > 0.0) {
        return bad(format!(
            "damping must be positive and finite, got {}",
            header.damping
        ));
    }
    if header.fisher_rows_max == 0 {
        return bad("fisher_rows_max must be at least 1".into());
    }
    if header
        .contribution_ids
        .len()
        .checked_mul(header.dim())
        .and_then(|v| v.checked_mul(2))
        .is_none()
    {
        return bad("the gradient file size overflows".into());
    }
    Ok(())
}

/// A verified, memory-mapped gradient index, ready to score queries.
pub struct GradientIndex {
    dir: PathBuf,
    manifest: IndexManifest,
    ids: Vec<u64>,
    /// Per checkpoint, the rows (`n × dim` f16).
    gradients: Vec<Mmap>,
    /// Per checkpoint, the per-layer inverse damped Fishers (f32).
    preconditioners: Vec<Mmap>,
    blocks: Vec<(usize, usize)>,
    dim: usize,
    n: usize,
    block_rows: usize,
}

impl std::fmt::Debug for GradientIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GradientIndex")
            .field("dir", &self.dir)
            .field("index_hash", &self.manifest.index_hash)
            .field("n_examples", &self.n)
            .field("dim", &self.dim)
            .field("checkpoints", &self.manifest.checkpoints.len())
            .finish()
    }
}

/// The files a manifest with these dimensions must list, with their sizes.
fn expected_files(
    n: u64,
    dim: u64,
    layers: &[LayerSpec],
    checkpoints: usize,
) -> Option<Vec<(String, u64)>> {
    let rows = n.checked_mul(dim)?.checked_mul(2)?;
    let precond = layers.iter().try_fold(0u64, |acc, l| {
        acc.checked_add(
            (l.dim() as u64)
                .checked_mul(l.dim() as u64)?
                .checked_mul(4)?,
        )
    })?;
    let mut files = vec![(EXAMPLES_FILE.to_string(), n.checked_mul(8)?)];
    files.extend((0..checkpoints).map(|c| (gradients_file(c), rows)));
    files.extend((0..checkpoints).map(|c| (preconditioner_file(c), precond)));
    Some(files)
}

fn check_consistency(m: &IndexManifest) -> Result<(), IndexError> {
    let bad = |reason: String| Err(IndexError::Inconsistent { reason });
    if m.dtype != DTYPE {
        return bad(format!("dtype {:?}, expected {DTYPE:?}", m.dtype));
    }
    if m.layers.is_empty() || m.layers.iter().any(|l| l.dim() == 0) {
        return bad("layers are empty or have zero width".into());
    }
    let dim: u64 = m.layers.iter().map(|l| l.dim() as u64).sum();
    if dim != m.dim {
        return bad(format!("dim {} but the layers add up to {dim}", m.dim));
    }
    if m.checkpoints.is_empty() {
        return bad("no checkpoints".into());
    }
    if m.n_examples == 0 {
        return bad("no examples".into());
    }
    if m.fisher_rows == 0 || m.fisher_rows > m.n_examples {
        return bad(format!(
            "fisher_rows {} is not between 1 and n_examples {}",
            m.fisher_rows, m.n_examples
        ));
    }
    let Some(expected) = expected_files(m.n_examples, m.dim, &m.layers, m.checkpoints.len()) else {
        return bad("file sizes overflow".into());
    };
    if usize::try_from(expected.iter().map(|(_, b)| *b).max().unwrap_or(0)).is_err() {
        return bad("files too large for this platform".into());
    }
    let listed: Vec<(String, u64)> = m.files.iter().map(|f| (f.name.clone(), f.bytes)).collect();
    if listed != expected {
        return bad(format!(
            "files {listed:?} do not match {} examples × dim {} × {} checkpoints (expected {expected:?})",
            m.n_examples,
            m.dim,
            m.checkpoints.len()
        ));
    }
    Ok(())
}

fn check_size(file: &FileRef, found: u64) -> Result<(), IndexError> {
    if found != file.bytes {
        return Err(IndexError::Truncated {
            file: file.name.clone(),
            expected: file.bytes,
            found,
        });
    }
    Ok(())
}

impl GradientIndex {
    /// Opens and verifies the index in `dir`: format, manifest hash, every file's presence,
    /// size and sha256, and consistency of the dimensions; memory-maps the data files.
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
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
        let mut maps = Vec::with_capacity(2 * c);
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

        let ids = ids_bytes
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        let preconditioners = maps.split_off(c);
        Ok(GradientIndex {
            dir: dir.to_path_buf(),
            blocks: layer_blocks(&manifest.layers),
            manifest,
            ids,
            gradients: maps,
            preconditioners,
            dim,
            n,
            block_rows: DEFAULT_BLOCK_ROWS,
        })
    }

    /// Sets how many rows are read per block when scoring (at least 1; scores do not change).
    pub fn with_block_rows(mut self, rows: usize) -> Self {
        self.block_rows = rows.max(1);
        self
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

    /// The stored (f16-rounded) row of `example` at `checkpoint`, or `None` out of range.
    pub fn row(&self, checkpoint: usize, example: usize) -> Option<Vec<f32>> {
        if checkpoint >= self.n_checkpoints() || example >= self.n {
            return None;
        }
        let mut out = vec![0f32; self.dim];
        let mut bits = vec![0u16; self.dim];
        let start = example * self.dim * 2;
        decode_row(
            &self.gradients[checkpoint][start..start + self.dim * 2],
            &mut bits,
            &mut out,
        );
        Some(out)
    }

    /// Per-example scores of one query. `query[c]` is the query's projected gradient (len dim)
    /// at checkpoint c. Scores are summed over checkpoints.
    pub fn score(&self, query: &[Vec<f32>], method: Method) -> Result<Vec<f32>, IndexError> {
        let mut scores = self.score_slices(&[query], method)?;
        Ok(scores.pop().expect("one query gives one score vector"))
    }

    /// Several queries in one pass over the index (scores[q][example]).
    pub fn score_many(
        &self,
        queries: &[Vec<Vec<f32>>],
        method: Method,
    ) -> Result<Vec<Vec<f32>>, IndexError> {
        let slices: Vec<&[Vec<f32>]> = queries.iter().map(Vec::as_slice).collect();
        self.score_slices(&slices, method)
    }

    fn score_slices(
        &self,
        queries: &[&[Vec<f32>]],
        method: Method,
    ) -> Result<Vec<Vec<f32>>, IndexError> {
        let c_count = self.n_checkpoints();
        for (qi, query) in queries.iter().enumerate() {
            if query.len() != c_count {
                return Err(IndexError::BadQuery {
                    reason: format!(
                        "query {qi} has gradients for {} checkpoints, the index has {c_count}",
                        query.len()
                    ),
                });
            }
            for (c, g) in query.iter().enumerate() {
                if g.len() != self.dim {
                    return Err(IndexError::BadQuery {
                        reason: format!(
                            "query {qi} checkpoint {c} has {} values, the index rows have {}",
                            g.len(),
                            self.dim
                        ),
                    });
                }
                if let Some(v) = g.iter().find(|v| !v.is_finite()) {
                    return Err(IndexError::BadQuery {
                        reason: format!("query {qi} checkpoint {c} contains {v}"),
                    });
                }
            }
        }
        let q_count = queries.len();
        if q_count == 0 {
            return Ok(Vec::new());
        }

        // Per checkpoint, the transformed queries, `q_count × dim` row-major.
        let prepared: Vec<Vec<f32>> = (0..c_count)
            .map(|c| {
                let mut out = Vec::with_capacity(q_count * self.dim);
                for query in queries {
                    out.extend(self.prepare(c, &query[c], method));
                }
                out
            })
            .collect();

        let dim = self.dim;
        let block_rows = self.block_rows;
        let n_blocks = self.n.div_ceil(block_rows);
        let cosine = method == Method::Cosine;
        let blocks: Vec<Vec<f64>> = (0..n_blocks)
            .into_par_iter()
            .map(|b| {
                let start = b * block_rows;
                let end = (start + block_rows).min(self.n);
                let rows = end - start;
                // acc[r * q_count + q], each summed over checkpoints in order.
                let mut acc = vec![0f64; rows * q_count];
                let mut bits = vec![0u16; dim];
                let mut row = vec![0f32; dim];
                for (c, map) in self.gradients.iter().enumerate() {
                    let bytes = &map[start * dim * 2..end * dim * 2];
                    for (r, raw) in bytes.chunks_exact(dim * 2).enumerate() {
                        decode_row(raw, &mut bits, &mut row);
                        let norm = if cosine { dot(&row, &row).sqrt() } else { 1.0 };
                        let out = &mut acc[r * q_count..(r + 1) * q_count];
                        for (a, q) in out.iter_mut().zip(prepared[c].chunks_exact(dim)) {
                            let d = dot(&row, q);
                            *a += if !cosine {
                                d
                            } else if norm > 0.0 {
                                d / norm
                            } else {
                                0.0
                            };
                        }
                    }
                }
                acc
            })
            .collect();

        let mut scores = vec![Vec::with_capacity(self.n); q_count];
        for acc in &blocks {
            for row in acc.chunks_exact(q_count) {
                for (s, &v) in scores.iter_mut().zip(row) {
                    s.push(v as f32);
                }
            }
        }
        Ok(scores)
    }

    /// The query vector each row is dotted with: `F⁻¹ q`, `q`, or `q / |q|` (zero if `q` is).
    fn prepare(&self, checkpoint: usize, q: &[f32], method: Method) -> Vec<f32> {
        match method {
            Method::GradDot => q.to_vec(),
            Method::Cosine => {
                let norm = dot(q, q).sqrt();
                if norm > 0.0 {
                    q.iter().map(|&v| (f64::from(v) / norm) as f32).collect()
                } else {
                    vec![0.0; q.len()]
                }
            }
            Method::Preconditioned => {
                let p = &self.preconditioners[checkpoint];
                let mut out = vec![0f32; q.len()];
                let mut base = 0;
                for &(offset, k) in &self.blocks {
                    let qb = &q[offset..offset + k];
                    for (r, o) in out[offset..offset + k].iter_mut().enumerate() {
                        let row = &p[base + r * k * 4..base + (r + 1) * k * 4];
                        let s: f64 = row
                            .chunks_exact(4)
                            .zip(qb)
                            .map(|(b, &x)| {
                                f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes")))
                                    * f64::from(x)
                            })
                            .sum();
                        *o = s as f32;
                    }
                    base += k * k * 4;
                }
                out
            }
        }
    }
}

/// Decodes one row of little-endian f16 bytes into f32 (`bits` is scratch of the same length).
fn decode_row(raw: &[u8], bits: &mut [u16], out: &mut [f32]) {
    for (b, pair) in bits.iter_mut().zip(raw.chunks_exact(2)) {
        *b = u16::from_le_bytes([pair[0], pair[1]]);
    }
    let halves: &[f16] = bits.reinterpret_cast();
    halves.convert_to_f32_slice(out);
}

/// Dot product with a fixed summation order (16 f32 lanes, then f64), so it is reproducible.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    const LANES: usize = 16;
    let mut lanes = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..LANES {
            lanes[j] += x[j] * y[j];
        }
    }
    let mut sum: f64 = lanes.iter().map(|&v| f64::from(v)).sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += f64::from(*x) * f64::from(*y);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LayerId, LinearKind};
    use cosmwasm_std::HexBinary;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use tempfile::TempDir;

    /// Three layers of widths 4, 3 and 6: dim 13.
    fn layers() -> Vec<LayerSpec> {
        let block = |kind| LayerId::Block { block: 0, kind };
        vec![
            LayerSpec {
                layer: block(LinearKind::Fc1),
                d_in: 8,
                d_out: 16,
                k_in: 2,
                k_out: 2,
            },
            LayerSpec {
                layer: block(LinearKind::Fc2),
                d_in: 16,
                d_out: 8,
                k_in: 3,
                k_out: 1,
            },
            LayerSpec {
                layer: LayerId::Head,
                d_in: 8,
                d_out: 32,
                k_in: 2,
                k_out: 3,
            },
        ]
    }

    const DIM: usize = 13;

    fn header(n: usize, checkpoints: usize, fisher_rows_max: usize) -> IndexHeader {
        IndexHeader {
            weights_hash: "ab".repeat(32),
            datanet_roots: vec![DatanetRoot {
                datanet_id: 7,
                version: 2,
                root: HexBinary::from(vec![0x11; 32]),
            }],
            layers: layers(),
            projection_seed: 42,
            checkpoints: (0..checkpoints)
                .map(|c| CheckpointRef {
                    name: format!("step-{}", 200 * (c + 1)),
                    step: 200 * (c as u64 + 1),
                    weights_hash: format!("{c:02}").repeat(32),
                })
                .collect(),
            contribution_ids: (0..n as u64).map(|i| 1000 + i % 7).collect(),
            damping: DEFAULT_DAMPING,
            fisher_rows_max,
        }
    }

    /// `n × DIM` rows with a different scale per column, so the Fisher is far from isotropic.
    fn random_rows(seed: u64, n: usize) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * DIM)
            .map(|i| {
                let scale = 0.01 * (1 + i % DIM) as f32;
                rng.random_range(-1.0f32..1.0) * scale
            })
            .collect()
    }

    fn round16(rows: &[f32]) -> Vec<f32> {
        rows.iter().map(|&v| f16::from_f32(v).to_f32()).collect()
    }

    fn random_query(seed: u64, checkpoints: usize) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..checkpoints)
            .map(|_| (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect())
            .collect()
    }

    /// Writes an index of the given rows (one `n × DIM` vector per checkpoint), pushing them
    /// in uneven chunks.
    fn write(dir: &Path, rows: &[Vec<f32>], fisher_rows_max: usize) -> IndexManifest {
        let n = rows[0].len() / DIM;
        let mut writer = IndexWriter::create(dir, header(n, rows.len(), fisher_rows_max)).unwrap();
        for (c, rows) in rows.iter().enumerate() {
            for chunk in rows.chunks(7 * DIM) {
                writer.push_rows(c, chunk).unwrap();
            }
        }
        writer.finish().unwrap()
    }

    /// A two-checkpoint index of `n` random examples; returns the f16-rounded rows.
    fn build(n: usize, fisher_rows_max: usize) -> (TempDir, Vec<Vec<f32>>, IndexManifest) {
        let tmp = TempDir::new().unwrap();
        let rows = vec![random_rows(1, n), random_rows(2, n)];
        let manifest = write(tmp.path(), &rows, fisher_rows_max);
        (tmp, rows.iter().map(|r| round16(r)).collect(), manifest)
    }

    fn dot64(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum()
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (f64::from(g) - w).abs() <= tol * scale,
                "example {i}: got {g}, want {w} (scale {scale})"
            );
        }
    }

    #[test]
    fn round_trip_preserves_ids_rows_and_manifest() {
        let (tmp, rows, written) = build(20, DEFAULT_FISHER_ROWS);
        let index = GradientIndex::open(tmp.path()).unwrap();
        assert_eq!(index.manifest(), &written);
        assert_eq!(index.index_hash(), written.index_hash);
        assert_eq!(index.n_examples(), 20);
        assert_eq!(index.dim(), DIM);
        assert_eq!(index.n_checkpoints(), 2);
        let ids: Vec<u64> = (0..20).map(|i| 1000 + i % 7).collect();
        assert_eq!(index.contribution_ids(), ids.as_slice());
        assert_eq!(written.format, FORMAT);
        assert_eq!(written.dtype, "f16");
        assert_eq!(
            (written.n_examples, written.dim, written.fisher_rows),
            (20, 13, 20)
        );
        assert_eq!(written.layers, layers());
        assert_eq!(written.checkpoints, header(20, 2, 1).checkpoints);
        let names: Vec<&str> = written.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "examples.bin",
                "gradients-0.bin",
                "gradients-1.bin",
                "preconditioner-0.bin",
                "preconditioner-1.bin"
            ]
        );
        assert_eq!(written.files[1].bytes, 20 * 13 * 2);
        assert_eq!(written.files[3].bytes, (16 + 9 + 36) * 4);
        for (c, rows) in rows.iter().enumerate() {
            for i in [0, 7, 19] {
                assert_eq!(index.row(c, i).unwrap(), rows[i * DIM..(i + 1) * DIM]);
            }
        }
        assert!(index.row(2, 0).is_none() && index.row(0, 20).is_none());
        // The manifest on disk is pretty JSON and its hash is recomputable.
        let text = fs::read_to_string(tmp.path().join(MANIFEST_FILE)).unwrap();
        assert!(text.contains("\n  \"format\": \"tributary-gradient-index-1\""));
        assert_eq!(written.compute_hash().unwrap(), written.index_hash);
        assert!(!tmp.path().join("manifest.json.tmp").exists());
    }

    #[test]
    fn graddot_and_cosine_match_brute_force() {
        let n = 37;
        let (tmp, rows, _) = build(n, DEFAULT_FISHER_ROWS);
        let index = GradientIndex::open(tmp.path()).unwrap();
        let query = random_query(9, 2);
        let mut dots = vec![0f64; n];
        let mut cosines = vec![0f64; n];
        for (c, q) in query.iter().enumerate() {
            for i in 0..n {
                let g = &rows[c][i * DIM..(i + 1) * DIM];
                let d = dot64(q, g);
                dots[i] += d;
                cosines[i] += d / (dot64(q, q).sqrt() * dot64(g, g).sqrt());
            }
        }
        assert_close(&index.score(&query, Method::GradDot).unwrap(), &dots, 1e-5);
        assert_close(
            &index.score(&query, Method::Cosine).unwrap(),
            &cosines,
            1e-5,
        );
    }

    #[test]
    fn preconditioned_matches_a_dense_solve() {
        // 50 rows, at most 16 in the Fisher: every 4th row, 13 rows.
        let n = 50;
        let (tmp, rows, manifest) = build(n, 16);
        assert_eq!(manifest.fisher_rows, 13);
        let index = GradientIndex::open(tmp.path()).unwrap();
        let query = random_query(5, 2);
        let sampled: Vec<usize> = (0..n).step_by(4).collect();
        let mut want = vec![0f64; n];
        for (c, q) in query.iter().enumerate() {
            let mut offset = 0;
            for layer in layers() {
                let k = layer.dim();
                let block = |i: usize| &rows[c][i * DIM + offset..i * DIM + offset + k];
                let mut f = DMatrix::<f64>::zeros(k, k);
                for &i in &sampled {
                    let g = block(i);
                    for a in 0..k {
                        for b in 0..k {
                            f[(a, b)] += f64::from(g[a]) * f64::from(g[b]) / sampled.len() as f64;
                        }
                    }
                }
                let lambda = f64::from(DEFAULT_DAMPING) * f.trace() / k as f64;
                let m = f + DMatrix::identity(k, k) * lambda;
                let rhs = nalgebra::DVector::from_iterator(
                    k,
                    q[offset..offset + k].iter().map(|&v| f64::from(v)),
                );
                let x = m.lu().solve(&rhs).unwrap();
                for (i, w) in want.iter_mut().enumerate() {
                    *w += block(i)
                        .iter()
                        .zip(x.iter())
                        .map(|(&g, &x)| f64::from(g) * x)
                        .sum::<f64>();
                }
                offset += k;
            }
        }
        assert_close(
            &index.score(&query, Method::Preconditioned).unwrap(),
            &want,
            1e-5,
        );
    }

    #[test]
    fn zero_covariance_uses_plain_damping() {
        let tmp = TempDir::new().unwrap();
        let mut rows = random_rows(3, 10);
        for row in rows.chunks_mut(DIM) {
            row[..4].fill(0.0);
        }
        write(tmp.path(), &[rows], DEFAULT_FISHER_ROWS);
        let index = GradientIndex::open(tmp.path()).unwrap();
        let q = random_query(4, 1).remove(0);
        let prepared = index.prepare(0, &q, Method::Preconditioned);
        for j in 0..4 {
            assert!((prepared[j] - q[j] / DEFAULT_DAMPING).abs() < 1e-5 * q[j].abs().max(1.0));
        }
    }

    #[test]
    fn block_size_and_batching_do_not_change_scores() {
        let n = 29;
        let (tmp, _, _) = build(n, DEFAULT_FISHER_ROWS);
        let queries: Vec<Vec<Vec<f32>>> = (0..3).map(|s| random_query(s, 2)).collect();
        for method in Method::ALL {
            let reference = GradientIndex::open(tmp.path())
                .unwrap()
                .score_many(&queries, method)
                .unwrap();
            assert_eq!(reference.len(), 3);
            for block_rows in [1, 3, 7, 28, 29, 1000] {
                let index = GradientIndex::open(tmp.path())
                    .unwrap()
                    .with_block_rows(block_rows);
                let many = index.score_many(&queries, method).unwrap();
                for (q, query) in queries.iter().enumerate() {
                    let single = index.score(query, method).unwrap();
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&single),
                        bits(&reference[q]),
                        "{method:?} {block_rows}"
                    );
                    assert_eq!(
                        bits(&many[q]),
                        bits(&reference[q]),
                        "{method:?} {block_rows}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_queries_are_typed_errors() {
        let (tmp, _, _) = build(5, DEFAULT_FISHER_ROWS);
        let index = GradientIndex::open(tmp.path()).unwrap();
        let one_checkpoint = random_query(1, 1);
        let mut short = random_query(1, 2);
        short[1].pop();
        let mut nan = random_query(1, 2);
        nan[0][3] = f32::NAN;
        for query in [one_checkpoint, short, nan] {
            for method in Method::ALL {
                let err = index.score(&query, method).unwrap_err();
                assert!(matches!(err, IndexError::BadQuery { .. }), "{err}");
            }
        }
        assert!(index.score_many(&[], Method::GradDot).unwrap().is_empty());
        // A zero query scores zero everywhere, cosine included.
        let zero = vec![vec![0.0; DIM]; 2];
        for method in Method::ALL {
            assert!(index
                .score(&zero, method)
                .unwrap()
                .iter()
                .all(|&s| s == 0.0));
        }
    }

    #[test]
    fn truncated_or_extended_gradients_file_is_refused() {
        let (tmp, _, _) = build(20, DEFAULT_FISHER_ROWS);
        let path = tmp.path().join("gradients-1.bin");
        let original = fs::read(&path).unwrap();
        fs::write(&path, &original[..100]).unwrap();
        let err = GradientIndex::open(tmp.path()).unwrap_err();
        assert!(
            matches!(&err, IndexError::Truncated { file, expected: 520, found: 100 } if file == "gradients-1.bin"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "index file gradients-1.bin is truncated: expected 520 bytes, found 100"
        );
        let mut longer = original.clone();
        longer.push(0);
        fs::write(&path, &longer).unwrap();
        let err = GradientIndex::open(tmp.path()).unwrap_err();
        assert!(
            matches!(
                err,
                IndexError::Truncated {
                    expected: 520,
                    found: 521,
                    ..
                }
            ),
            "{err:?}"
        );
        fs::write(&path, &original).unwrap();
        GradientIndex::open(tmp.path()).unwrap();
        fs::remove_file(tmp.path().join("preconditioner-0.bin")).unwrap();
        let err = GradientIndex::open(tmp.path()).unwrap_err();
        assert!(
            matches!(&err, IndexError::MissingFile { file } if file == "preconditioner-0.bin"),
            "{err:?}"
        );
    }

    #[test]
    fn one_flipped_byte_is_refused_as_tampered() {
        let (tmp, _, _) = build(20, DEFAULT_FISHER_ROWS);
        for name in ["examples.bin", "gradients-0.bin", "preconditioner-1.bin"] {
            let path = tmp.path().join(name);
            let original = fs::read(&path).unwrap();
            let mut flipped = original.clone();
            flipped[original.len() / 2] ^= 0x01;
            fs::write(&path, &flipped).unwrap();
            let err = GradientIndex::open(tmp.path()).unwrap_err();
            assert!(
                matches!(&err, IndexError::Tampered { file } if file == name),
                "{err:?}"
            );
            fs::write(&path, &original).unwrap();
        }
        GradientIndex::open(tmp.path()).unwrap();
    }

    #[test]
    fn edited_manifest_is_refused() {
        let (tmp, _, _) = build(10, DEFAULT_FISHER_ROWS);
        let path = tmp.path().join(MANIFEST_FILE);
        let original = fs::read_to_string(&path).unwrap();
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut value: serde_json::Value = serde_json::from_str(&original).unwrap();
            f(&mut value);
            fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
            GradientIndex::open(tmp.path()).unwrap_err()
        };
        let err = edit(&|v| v["damping"] = serde_json::json!(0.2));
        assert!(matches!(err, IndexError::ManifestHash { .. }), "{err:?}");
        let err = edit(&|v| v["format"] = serde_json::json!("tributary-gradient-index-2"));
        assert!(
            matches!(&err, IndexError::UnsupportedFormat { found } if found == "tributary-gradient-index-2"),
            "{err:?}"
        );
        // A consistent-looking lie (hash recomputed) about the sizes is still caught.
        let err = edit(&|v| {
            v["n_examples"] = serde_json::json!(11);
            let mut m: IndexManifest = serde_json::from_value(v.clone()).unwrap();
            m.index_hash = m.compute_hash().unwrap();
            *v = serde_json::to_value(m).unwrap();
        });
        assert!(matches!(err, IndexError::Inconsistent { .. }), "{err:?}");
        fs::write(&path, &original).unwrap();
        GradientIndex::open(tmp.path()).unwrap();
        fs::remove_file(&path).unwrap();
        let err = GradientIndex::open(tmp.path()).unwrap_err();
        assert!(matches!(err, IndexError::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn writer_refuses_wrong_rows_and_order() {
        let tmp = TempDir::new().unwrap();
        let rows = random_rows(1, 10);
        let mut w = IndexWriter::create(tmp.path(), header(10, 2, 100)).unwrap();
        let is_order = |e: IndexError| matches!(e, IndexError::Order { .. });
        let is_shape = |e: IndexError| matches!(e, IndexError::Shape { .. });
        assert!(is_shape(w.push_rows(0, &rows[..DIM + 1]).unwrap_err()));
        assert!(is_order(w.push_rows(1, &rows[..DIM]).unwrap_err()));
        assert!(is_order(w.push_rows(2, &rows[..DIM]).unwrap_err()));
        w.push_rows(0, &rows[..3 * DIM]).unwrap();
        assert!(is_order(w.push_rows(1, &rows[..DIM]).unwrap_err()));
        assert!(is_shape(w.push_rows(0, &rows).unwrap_err()));
        let mut bad = rows[3 * DIM..].to_vec();
        bad[DIM + 2] = f32::NAN;
        let err = w.push_rows(0, &bad).unwrap_err();
        assert!(
            matches!(
                err,
                IndexError::Value {
                    checkpoint: 0,
                    example: 4,
                    column: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        bad[DIM + 2] = 1.0e6;
        assert!(matches!(
            w.push_rows(0, &bad).unwrap_err(),
            IndexError::Value { .. }
        ));
        // Refused pushes wrote nothing: the correct rows still fit exactly.
        w.push_rows(0, &rows[3 * DIM..]).unwrap();
        assert!(is_order(w.push_rows(0, &rows[..DIM]).unwrap_err()));
        w.push_rows(1, &rows[..5 * DIM]).unwrap();
        let err = w.finish().unwrap_err();
        assert!(
            matches!(
                err,
                IndexError::Incomplete {
                    checkpoint: 1,
                    expected: 10,
                    found: 5
                }
            ),
            "{err:?}"
        );
        assert!(!tmp.path().join(MANIFEST_FILE).exists());

        // A complete index, then a second writer on the same directory.
        let manifest = write(tmp.path(), &[rows.clone(), rows.clone()], 100);
        let index = GradientIndex::open(tmp.path()).unwrap();
        assert_eq!(index.index_hash(), manifest.index_hash);
        let err = IndexWriter::create(tmp.path(), header(10, 2, 100))
            .err()
            .unwrap();
        assert!(matches!(err, IndexError::Exists { .. }), "{err:?}");

        let other = TempDir::new().unwrap();
        let w = IndexWriter::create(other.path(), header(3, 1, 100)).unwrap();
        assert!(matches!(
            w.finish().unwrap_err(),
            IndexError::Incomplete {
                checkpoint: 0,
                found: 0,
                ..
            }
        ));
        for broken in [
            IndexHeader {
                damping: 0.0,
                ..header(3, 1, 100)
            },
            IndexHeader {
                checkpoints: vec![],
                ..header(3, 1, 100)
            },
            IndexHeader {
                contribution_ids: vec![],
                ..header(3, 1, 100)
            },
            IndexHeader {
                fisher_rows_max: 0,
                ..header(3, 1, 100)
            },
        ] {
            let err = IndexWriter::create(&other.path().join("x"), broken)
                .err()
                .unwrap();
            assert!(matches!(err, IndexError::Header { .. }), "{err:?}");
        }
    }

    #[test]
    fn index_hash_is_deterministic_and_covers_every_row() {
        let rows = vec![random_rows(1, 12), random_rows(2, 12)];
        let (a, b, c) = (
            TempDir::new().unwrap(),
            TempDir::new().unwrap(),
            TempDir::new().unwrap(),
        );
        let first = write(a.path(), &rows, 5);
        let again = write(b.path(), &rows, 5);
        assert_eq!(first, again);
        let mut changed = rows.clone();
        changed[1][3 * DIM + 5] += 0.25;
        let other = write(c.path(), &changed, 5);
        assert_ne!(first.index_hash, other.index_hash);
        assert_ne!(first.files[2].sha256, other.files[2].sha256);
        assert_eq!(first.files[1], other.files[1]);
    }

    #[test]
    fn methods_parse_from_id_or_name() {
        for method in Method::ALL {
            assert_eq!(Method::parse(method.id()), Some(method));
            assert_eq!(Method::parse(method.name()), Some(method));
            let json = serde_json::to_string(&method).unwrap();
            assert_eq!(json, format!("\"{}\"", method.name()));
        }
        assert_eq!(Method::parse("trak-logra-v1"), Some(Method::Preconditioned));
        assert_eq!(Method::parse("grad_dot"), Some(Method::GradDot));
        assert_eq!(Method::parse("dot"), None);
    }

    #[test]
    fn gradient_index_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<GradientIndex>();
    }
}

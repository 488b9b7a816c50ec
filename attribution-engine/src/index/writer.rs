//! Writing an index: rows are pushed checkpoint by checkpoint; each complete checkpoint gets
//! its preconditioner and its contribution sums; the manifest is written last, atomically.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use half::f16;
use half::slice::HalfFloatSliceExt;
use memmap2::Mmap;
use sha2::{Digest, Sha256};

use super::contributions::{self, Contributions};
use super::error::io_err;
use super::format::{
    gradients_file, layer_blocks, preconditioner_file, sums_file, unit_sums_file, FileRef,
    IndexHeader, IndexManifest, DTYPE, EXAMPLES_FILE, FORMAT, MANIFEST_FILE,
};
use super::kernel::{Kernel, KernelChoice};
use super::precondition::Fisher;
use super::IndexError;

/// Buffer size of the streaming writers.
const IO_BUFFER: usize = 1 << 20;

/// Bytes of contribution sums computed before they are written out.
const SUMS_BATCH_BYTES: usize = 64 << 20;

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
    contributions: Contributions,
    /// The kernel of the unit-row norms (any kernel gives the same bits).
    kernel: Kernel,
    examples: FileRef,
    gradients: Vec<FileRef>,
    preconditioners: Vec<FileRef>,
    sums: Vec<FileRef>,
    unit_sums: Vec<FileRef>,
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
            contributions: Contributions::group(&header.contribution_ids),
            kernel: KernelChoice::Auto.resolve()?,
            examples,
            gradients: Vec::new(),
            preconditioners: Vec::new(),
            sums: Vec::new(),
            unit_sums: Vec::new(),
            pass: None,
            next_checkpoint: 0,
            header,
        })
    }

    /// Sets the kernel of the unit-row norms (the files do not change: every kernel gives the
    /// same bits).
    pub fn with_kernel(mut self, kernel: KernelChoice) -> Result<Self, IndexError> {
        self.kernel = kernel.resolve()?;
        Ok(self)
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

    /// Closes a complete checkpoint: fsyncs its rows, fits and writes its preconditioner, and
    /// writes its contribution sums (computed from the rows as stored).
    fn complete(&mut self, pass: Pass) -> Result<(), IndexError> {
        let gradients = pass.sink.finish()?;
        let bytes =
            pass.fisher
                .inverse_bytes(pass.checkpoint, &self.header.layers, self.header.damping)?;
        let mut sink = Sink::create(&self.dir, preconditioner_file(pass.checkpoint))?;
        sink.write(&bytes)?;
        self.preconditioners.push(sink.finish()?);

        let path = self.dir.join(&gradients.name);
        let file = File::open(&path).map_err(io_err(&path))?;
        // SAFETY: the file was written and fsynced by this writer above and nothing else
        // writes to it; the mapping is read-only.
        let rows = unsafe { Mmap::map(&file) }.map_err(io_err(&path))?;
        let mut sums = Sink::create(&self.dir, sums_file(pass.checkpoint))?;
        let mut units = Sink::create(&self.dir, unit_sums_file(pass.checkpoint))?;
        let batch = (SUMS_BATCH_BYTES / (self.dim * 8)).max(1);
        let m = self.contributions.len();
        for start in (0..m).step_by(batch) {
            let (s, u) = contributions::sums(
                &self.contributions,
                start..m.min(start + batch),
                &rows,
                self.dim,
                self.kernel,
            );
            sums.write(&s)?;
            units.write(&u)?;
        }
        self.sums.push(sums.finish()?);
        self.unit_sums.push(units.finish()?);
        self.gradients.push(gradients);
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
        files.extend(self.sums);
        files.extend(self.unit_sums);
        let header = self.header;
        let mut manifest = IndexManifest {
            format: FORMAT.to_string(),
            weights_hash: header.weights_hash,
            datanet_roots: header.datanet_roots,
            layers: header.layers,
            projection_seed: header.projection_seed,
            checkpoints: header.checkpoints,
            n_examples: self.n as u64,
            n_contributions: self.contributions.len() as u64,
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

//! What an index directory holds: file names, the manifest, and the checks that the manifest
//! describes a whole, consistent index.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tributary_store::ContentHash;
use tributary_types::DatanetRoot;

use super::IndexError;
use crate::projection::LayerSpec;

/// The format tag every manifest carries; [`super::GradientIndex::open`] reads only this one.
/// Format 1 had no contribution sums; its indexes are refused and must be rebuilt.
pub const FORMAT: &str = "tributary-gradient-index-2";

/// Default damping: the ratio of each layer's mean eigenvalue (`trace(F)/k`) added to `F`.
pub const DEFAULT_DAMPING: f32 = 0.1;

/// Default maximum number of rows per checkpoint used to estimate the Fisher.
pub const DEFAULT_FISHER_ROWS: usize = 16_384;

/// The storage type of gradient rows, as named in the manifest.
pub const DTYPE: &str = "f16";

/// Name of the manifest file inside an index directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Name of the contribution-id file inside an index directory.
pub const EXAMPLES_FILE: &str = "examples.bin";

/// Name of checkpoint `c`'s gradient file.
pub fn gradients_file(c: usize) -> String {
    format!("gradients-{c}.bin")
}

/// Name of checkpoint `c`'s preconditioner file.
pub fn preconditioner_file(c: usize) -> String {
    format!("preconditioner-{c}.bin")
}

/// Name of checkpoint `c`'s file of per-contribution row sums.
pub fn sums_file(c: usize) -> String {
    format!("contribution-sums-{c}.bin")
}

/// Name of checkpoint `c`'s file of per-contribution sums of unit-normalized rows.
pub fn unit_sums_file(c: usize) -> String {
    format!("contribution-unit-sums-{c}.bin")
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
    /// Number of distinct contribution ids among the examples (rows of each sums file).
    pub n_contributions: u64,
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

/// Offsets and widths of the layers' blocks in a row.
pub(super) fn layer_blocks(layers: &[LayerSpec]) -> Vec<(usize, usize)> {
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

/// The files a manifest with these dimensions must list, in order, with their sizes.
fn expected_files(
    n: u64,
    contributions: u64,
    dim: u64,
    layers: &[LayerSpec],
    checkpoints: usize,
) -> Option<Vec<(String, u64)>> {
    let rows = n.checked_mul(dim)?.checked_mul(2)?;
    let sums = contributions.checked_mul(dim)?.checked_mul(4)?;
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
    files.extend((0..checkpoints).map(|c| (sums_file(c), sums)));
    files.extend((0..checkpoints).map(|c| (unit_sums_file(c), sums)));
    Some(files)
}

/// Checks that the manifest describes a whole index: dimensions, counts and the file list.
pub(super) fn check_consistency(m: &IndexManifest) -> Result<(), IndexError> {
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
    if m.n_contributions == 0 || m.n_contributions > m.n_examples {
        return bad(format!(
            "n_contributions {} is not between 1 and n_examples {}",
            m.n_contributions, m.n_examples
        ));
    }
    if m.fisher_rows == 0 || m.fisher_rows > m.n_examples {
        return bad(format!(
            "fisher_rows {} is not between 1 and n_examples {}",
            m.fisher_rows, m.n_examples
        ));
    }
    let Some(expected) = expected_files(
        m.n_examples,
        m.n_contributions,
        m.dim,
        &m.layers,
        m.checkpoints.len(),
    ) else {
        return bad("file sizes overflow".into());
    };
    if usize::try_from(expected.iter().map(|(_, b)| *b).max().unwrap_or(0)).is_err() {
        return bad("files too large for this platform".into());
    }
    let listed: Vec<(String, u64)> = m.files.iter().map(|f| (f.name.clone(), f.bytes)).collect();
    if listed != expected {
        return bad(format!(
            "files {listed:?} do not match {} examples of {} contributions × dim {} × {} checkpoints (expected {expected:?})",
            m.n_examples,
            m.n_contributions,
            m.dim,
            m.checkpoints.len()
        ));
    }
    Ok(())
}

/// Refuses a file whose size differs from the manifest's.
pub(super) fn check_size(file: &FileRef, found: u64) -> Result<(), IndexError> {
    if found != file.bytes {
        return Err(IndexError::Truncated {
            file: file.name.clone(),
            expected: file.bytes,
            found,
        });
    }
    Ok(())
}

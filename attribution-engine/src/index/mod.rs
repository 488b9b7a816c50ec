//! The on-disk gradient index of a trained model's training examples.
//!
//! For every training example (a token window that remembers its contribution id) and every
//! checkpoint of the model, the index stores the example's projected per-example gradient: a
//! row of `dim` values, the concatenation in layer order of one `k_out * k_in` block per layer
//! (see [`LayerSpec`](crate::projection::LayerSpec)). Next to the rows it stores, per
//! checkpoint and layer, the inverse of the damped empirical Fisher (the covariance of that
//! layer's block over the training rows), so a query gradient can be preconditioned
//! TRAK-style, and per checkpoint and contribution the sums of the contribution's rows, so a
//! query costs `contributions × dim`, not `examples × dim` (see [`contributions`]).
//!
//! Layout of an index directory (format [`FORMAT`]):
//!
//! - `examples.bin`: `n_examples` little-endian `u64` contribution ids, in example order;
//! - `gradients-<c>.bin`: per checkpoint `c`, `n_examples × dim` little-endian IEEE `f16`
//!   values, row-major (rows are quantized when pushed; everything computed afterwards, the
//!   preconditioner, the sums and the scores, reads the quantized values);
//! - `preconditioner-<c>.bin`: per checkpoint `c`, for each layer in order, the `k × k`
//!   matrix `(F + λI)⁻¹` as little-endian `f32`, row-major (`k` = the layer's width);
//! - `contribution-sums-<c>.bin` and `contribution-unit-sums-<c>.bin`: per checkpoint `c`,
//!   `n_contributions × dim` little-endian `f32`, one row per distinct contribution id in
//!   ascending id order: the sum of its rows, and the sum of its rows divided by their norms;
//! - `manifest.json`: the [`IndexManifest`], written last and atomically. Its `index_hash` is
//!   the sha256 of the manifest's canonical JSON with `index_hash` set to `""`; since the
//!   manifest records each file's size and sha256, the hash covers the data as well.
//!
//! [`GradientIndex::open`] verifies all of it before a single score is computed; indexes of
//! format 1 (no sums) are refused with [`IndexError::UnsupportedFormat`] and must be rebuilt.
//! Scores are bit-identical whichever kernel and however many threads compute them (see
//! [`kernel`] and [`score`]).

pub mod contributions;
mod error;
mod format;
pub mod kernel;
mod precondition;
mod reader;
pub mod score;
mod writer;

#[cfg(test)]
mod tests;

pub use contributions::Contributions;
pub use error::IndexError;
pub use format::{
    gradients_file, preconditioner_file, sums_file, unit_sums_file, CheckpointRef, FileRef,
    IndexHeader, IndexManifest, DEFAULT_DAMPING, DEFAULT_FISHER_ROWS, DTYPE, EXAMPLES_FILE, FORMAT,
    MANIFEST_FILE,
};
pub use kernel::{Kernel, KernelChoice, ScanConfig, KERNEL_ENV, THREADS_ENV};
pub use reader::GradientIndex;
pub use score::{Method, PreparedQuery};
pub use writer::IndexWriter;

//! The index's errors.

use std::io;
use std::path::{Path, PathBuf};

use super::format::{FORMAT, MANIFEST_FILE};

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
    #[error("unsupported index format {found:?}: this build reads {FORMAT:?} only; rebuild the index with `tributary-attrib index`")]
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
    /// A scan configuration this build or CPU cannot run.
    #[error("invalid scan configuration: {reason}")]
    ScanConfig {
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

/// Maps an I/O error on `path` to [`IndexError::Io`].
pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

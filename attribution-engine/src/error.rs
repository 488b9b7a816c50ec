//! The engine's errors.

use std::path::PathBuf;

/// Everything that can go wrong in the engine, with what a user needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid JSON: {0}")]
    Json(serde_json::Error),
    #[error("corpus: {0}")]
    Corpus(String),
    #[error("content store: {0}")]
    Store(#[from] tributary_store::Error),
    #[error("model artifact {path}: {reason}")]
    Artifact { path: PathBuf, reason: String },
    #[error("model: {0}")]
    Model(String),
    #[error("gradient index: {0}")]
    Index(#[from] crate::index::IndexError),
    #[error("the index was built for model {index} but the model is {model}")]
    IndexModelMismatch { index: String, model: String },
    #[error("invalid input: {0}")]
    Input(String),
}

//! The one error type of the content store.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;
use tributary_types::HashError;

use crate::api::ErrorCode;
use crate::hash::ContentHash;

/// The result of a content store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a content store operation failed.
#[derive(Error, Debug)]
pub enum Error {
    #[error("the bytes hash to {actual}, not to the expected {expected}")]
    HashMismatch {
        expected: ContentHash,
        actual: ContentHash,
    },
    #[error("a blob of {size} bytes is over the store's limit of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("the store has {available} of its {max} bytes free, and the write needs {needed}")]
    StoreFull {
        needed: u64,
        available: u64,
        max: u64,
    },
    #[error("cannot read the request body: {message}")]
    UnreadableBody { message: String },
    #[error("the request body stalled for over {idle:?}")]
    BodyTimeout { idle: Duration },
    #[error("asking the chain at {url} failed: {message}")]
    Chain { url: String, message: String },
    #[error("invalid datanet contract address {address:?}: expected a bech32 address")]
    InvalidContract { address: String },
    #[error("{}: {message}", path.display())]
    Accounts { path: PathBuf, message: String },
    #[error("invalid content hash: {0}")]
    InvalidHash(#[from] HashError),
    #[error("stored blob {hash} is corrupt: its bytes hash to {actual}")]
    Corrupt {
        hash: ContentHash,
        actual: ContentHash,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("invalid content store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid CORS origin {origin:?}: expected scheme://host[:port]")]
    InvalidOrigin { origin: String },
    #[error("request to the content store at {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("the content store answered {status} ({code}): {message}")]
    Remote {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    #[error("the content store server failed: {0}")]
    Serve(io::Error),
    #[error("cannot start a runtime for blocking calls: {0}")]
    Runtime(io::Error),
    #[error("a blocking store task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    /// Wraps an I/O failure with what was being done and where.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

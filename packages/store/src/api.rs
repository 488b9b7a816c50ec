//! The JSON bodies of the content store's HTTP API, shared by the server and the client.
//!
//! | request | success | failure |
//! | --- | --- | --- |
//! | `PUT /blobs/{sha256}`, body = bytes, `Authorization: Bearer …` where the store has accounts | 201 new, 200 already present, [`PutReceipt`] | 400 `invalid_hash`/`unreadable_body`, 401 `unauthorized`, 403 `not_on_chain`/`quota_exceeded`, 408 `timeout`, 413 `too_large`, 422 `hash_mismatch`, 503 `chain_unavailable`, 507 `store_full` |
//! | `GET /blobs/{sha256}` | 200 bytes, `ETag: "{sha256}"`, 304 on a matching `If-None-Match` | 400 `invalid_hash`, 404 `not_found`, 500 `corrupt` |
//! | `HEAD /blobs/{sha256}` | 200 with `Content-Length` | 400, 404 (no body) |
//! | `GET /healthz` | 200 `{"status":"ok"}` | |
//! | `GET /openapi.json` | 200, the API's OpenAPI document | |
//!
//! Any blob request may also get 503 `busy` (with `Retry-After`) when the server is at its
//! concurrency limit. Every failure with a body is an [`ErrorBody`]. A download streams, and
//! its bytes are checked against the hash as they are read: a blob found damaged part way
//! through ends the response short of its `Content-Length`, so no client takes it as whole.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A failure's body: a message for people and a code for programs.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
    /// What went wrong, for matching on.
    pub code: ErrorCode,
}

/// The kinds of failure the API reports.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The path does not name a blob by 64 hex characters.
    InvalidHash,
    /// The body does not hash to the hash in the path.
    HashMismatch,
    /// The body is over the server's size cap.
    TooLarge,
    /// No blob, or no route, by that name.
    NotFound,
    /// The request body could not be read to its end.
    UnreadableBody,
    /// A stored blob no longer matches its hash.
    Corrupt,
    /// The store failed for a reason of its own.
    Internal,
    /// The write needs a bearer token of one of the store's accounts.
    Unauthorized,
    /// No live contribution on chain names this hash.
    NotOnChain,
    /// The account has no room left for the write.
    QuotaExceeded,
    /// The store's disk budget has no room left for the write.
    StoreFull,
    /// The server is at its limit of requests in flight; retry shortly.
    Busy,
    /// The chain could not be asked whether it knows the hash.
    ChainUnavailable,
    /// The request body stopped arriving.
    Timeout,
    /// A code this client does not know, or a failure without a body.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidHash => "invalid_hash",
            Self::HashMismatch => "hash_mismatch",
            Self::TooLarge => "too_large",
            Self::NotFound => "not_found",
            Self::UnreadableBody => "unreadable_body",
            Self::Corrupt => "corrupt",
            Self::Internal => "internal",
            Self::Unauthorized => "unauthorized",
            Self::NotOnChain => "not_on_chain",
            Self::QuotaExceeded => "quota_exceeded",
            Self::StoreFull => "store_full",
            Self::Busy => "busy",
            Self::ChainUnavailable => "chain_unavailable",
            Self::Timeout => "timeout",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of a successful `PUT`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct PutReceipt {
    /// The blob's hash, lowercase hex.
    pub hash: String,
    /// The blob's length in bytes.
    pub size: u64,
    /// Whether this request stored it (false: it was already there).
    pub created: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names_and_unknown_ones_parse() {
        for code in [
            ErrorCode::InvalidHash,
            ErrorCode::HashMismatch,
            ErrorCode::TooLarge,
            ErrorCode::NotFound,
            ErrorCode::UnreadableBody,
            ErrorCode::Corrupt,
            ErrorCode::Internal,
            ErrorCode::Unauthorized,
            ErrorCode::NotOnChain,
            ErrorCode::QuotaExceeded,
            ErrorCode::StoreFull,
            ErrorCode::Busy,
            ErrorCode::ChainUnavailable,
            ErrorCode::Timeout,
        ] {
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{code}\""));
        }
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":"x","code":"from_the_future"}"#).unwrap();
        assert_eq!(body.code, ErrorCode::Unknown);
    }
}

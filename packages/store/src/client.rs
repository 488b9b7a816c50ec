//! A content store reached over the HTTP API that [`crate::server`] serves.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Response, StatusCode, Url};

use crate::api::{ErrorBody, ErrorCode};
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::store::{ContentStore, Stored};

/// How long to wait for a connection before giving up on an unreachable store. Transfers
/// themselves have no deadline, as a large blob over a slow link may rightly take long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A content store behind the HTTP API at a base URL.
///
/// Blobs read back are checked against their hash, so a faulty or hostile server can
/// withhold a blob but never pass off other bytes as it.
#[derive(Clone)]
pub struct HttpStore {
    base: Url,
    client: reqwest::Client,
    bearer: Option<String>,
}

impl HttpStore {
    /// A client for the API at `base_url`, such as `http://127.0.0.1:8700`.
    pub fn new(base_url: &str) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|source| Error::Http {
                url: base_url.to_string(),
                source,
            })?;
        Self::with_client(base_url, client)
    }

    /// A client for the API at `base_url` that sends its requests through `client`.
    pub fn with_client(base_url: &str, client: reqwest::Client) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: base_url.to_string(),
            reason,
        };
        let mut base = Url::parse(base_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https".to_string()));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid(
                "a query or fragment has no place in a base URL".to_string(),
            ));
        }
        // The API may be mounted under a path; without a trailing slash its last segment
        // would be dropped when blob paths are appended.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self {
            base,
            client,
            bearer: None,
        })
    }

    /// The same client, writing as the account whose bearer token is `token`, for a store
    /// that takes writes by account.
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// The URL the API lives under, ending in `/`.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The URL of the blob named `hash`.
    pub fn blob_url(&self, hash: &ContentHash) -> String {
        format!("{}blobs/{hash}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: &str) -> Result<Response> {
        request.send().await.map_err(|source| Error::Http {
            url: url.to_string(),
            source,
        })
    }
}

impl std::fmt::Debug for HttpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never in a log.
        f.debug_struct("HttpStore")
            .field("base", &self.base.as_str())
            .field("bearer", &self.bearer.as_ref().map(|_| "…"))
            .finish()
    }
}

/// The error a failed answer stands for, from its JSON body where it has one.
async fn remote_error(response: Response) -> Error {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => (body.code, body.error),
        Err(_) if text.is_empty() => (ErrorCode::Unknown, status.to_string()),
        Err(_) => (ErrorCode::Unknown, text),
    };
    Error::Remote {
        status: status.as_u16(),
        code,
        message,
    }
}

#[async_trait]
impl ContentStore for HttpStore {
    async fn put_expected(&self, hash: &ContentHash, bytes: Vec<u8>) -> Result<Stored> {
        // Checked here too: a mismatch is the caller's mistake, not worth an upload.
        let actual = ContentHash::of(&bytes);
        if actual != *hash {
            return Err(Error::HashMismatch {
                expected: *hash,
                actual,
            });
        }
        let url = self.blob_url(hash);
        let mut request = self
            .client
            .put(&url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        let response = self.send(request, &url).await?;
        match response.status() {
            StatusCode::CREATED => Ok(Stored::Created),
            StatusCode::OK => Ok(Stored::AlreadyPresent),
            _ => Err(remote_error(response).await),
        }
    }

    async fn get(&self, hash: &ContentHash) -> Result<Option<Vec<u8>>> {
        let url = self.blob_url(hash);
        let response = self.send(self.client.get(&url), &url).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(remote_error(response).await),
        }
        let bytes = response.bytes().await.map_err(|source| Error::Http {
            url: url.clone(),
            source,
        })?;
        let actual = ContentHash::of(&bytes);
        if actual != *hash {
            return Err(Error::Corrupt {
                hash: *hash,
                actual,
            });
        }
        Ok(Some(bytes.to_vec()))
    }

    async fn size(&self, hash: &ContentHash) -> Result<Option<u64>> {
        let url = self.blob_url(hash);
        let response = self.send(self.client.head(&url), &url).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(remote_error(response).await),
        }
        // Read from the header itself: for a HEAD answer the body, and so reqwest's own
        // length, is empty.
        let size = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        match size {
            Some(size) => Ok(Some(size)),
            None => Err(Error::Remote {
                status: response.status().as_u16(),
                code: ErrorCode::Unknown,
                message: "the answer to HEAD has no valid Content-Length".to_string(),
            }),
        }
    }
}

//! The content store's HTTP API over a [`LocalStore`]; [`crate::api`] lists the routes.
//!
//! Writes are taken only as a [`WritePolicy`] allows, and only within the server's limits:
//! requests in flight, the length of a body, how long a body may stall and (on the store) the
//! disk budget. Bodies stream to disk and blobs stream back, each checked against its hash on
//! the way, so no request holds a whole blob in memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use http_body::{Frame, SizeHint};
use schemars::JsonSchema;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tributary_openapi::{ApiRouter, Operation};

use crate::api::{ErrorBody, ErrorCode, PutReceipt};
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::local::LocalStore;
use crate::policy::{Decision, Denial, WriteOutcome, WritePolicy, WriteRequest};
use crate::store::{ContentStore, Stored};
use crate::DEFAULT_MAX_BLOB_BYTES;

/// How long a browser may reuse a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// A blob never changes under its name, so any cache may keep it for good.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Blob requests served at once unless configured otherwise.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 64;

/// How long an upload may go without a byte arriving unless configured otherwise.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The longest body a `PUT` may carry, in bytes; longer ones get 413 before they are read.
    pub max_blob_bytes: u64,
    /// The blob requests served at once, downloads until their last byte; more get 503.
    pub max_concurrent_requests: usize,
    /// How long an upload may go without a byte arriving before it gets 408. A stalled client
    /// would otherwise hold one of the request slots for good.
    pub body_idle_timeout: Duration,
    /// The browser origins allowed to call the API.
    pub allowed_origins: AllowedOrigins,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            allowed_origins: AllowedOrigins::Any,
        }
    }
}

/// The browser origins the CORS layer admits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Every origin: the devnet default, where the web app runs from anywhere.
    #[default]
    Any,
    /// Only these, each written as a browser sends it: `scheme://host[:port]`.
    List(Vec<String>),
}

#[derive(Clone)]
struct AppState {
    store: LocalStore,
    policy: Arc<dyn WritePolicy>,
    max_blob_bytes: u64,
    body_idle_timeout: Duration,
}

/// The API's routes over `store`, taking writes as `policy` allows, to serve or to mount in a
/// larger app.
pub fn router(
    store: LocalStore,
    policy: Arc<dyn WritePolicy>,
    config: &ServerConfig,
) -> Result<Router> {
    let cors = cors_layer(&config.allowed_origins)?;
    let state = AppState {
        store,
        policy,
        max_blob_bytes: config.max_blob_bytes,
        body_idle_timeout: config.body_idle_timeout,
    };
    let slots = Arc::new(Semaphore::new(config.max_concurrent_requests));
    let (routes, _) = api(Some(slots)).finish();
    Ok(routes
        .fallback(unknown_route)
        .with_state(state)
        // Outermost, so refusals (a 413 above all) reach the browser as themselves rather
        // than as an opaque CORS failure.
        .layer(cors))
}

/// What the documentation says about the API as a whole.
const API_DESCRIPTION: &str = "Tributary's content store: blobs addressed by their SHA-256. \
Reads are open to anyone; writes are taken as the store's policy allows (by default, only blobs \
that a live contribution on chain names, from the store's accounts). Every byte is checked \
against the hash, on the way in and on the way out. Any blob request may get 503 `busy`, with \
`Retry-After`, when the server is at its limit of requests in flight. Every failure with a body \
is an `ErrorBody`.";

/// The routes, each with its documentation; with `slots`, the blob routes are limited to that
/// many requests in flight (health checks and this document still answer under load).
fn api(slots: Option<Arc<Semaphore>>) -> ApiRouter<AppState> {
    let hash = |op: Operation| {
        op.path_param::<String>(
            "hash",
            "The blob's SHA-256, 64 hex characters",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        )
    };
    let api = ApiRouter::new(
        "Tributary content store",
        env!("CARGO_PKG_VERSION"),
        API_DESCRIPTION,
    )
    .get(
        "/blobs/{hash}",
        hash(Operation::new("A blob's bytes"))
            .description(
                "Streams the blob; its bytes are checked against the hash as they are read, and \
                 a blob found damaged part way through ends the response short of its \
                 `Content-Length`, so no client takes it as whole.",
            )
            .header::<String>(
                "If-None-Match",
                "The blob's ETag, `\"<sha256>\"`, to learn that a cached copy is current",
                false,
            )
            .binary(200, "application/octet-stream", "The blob")
            .response_header("ETag", "`\"<sha256>\"`")
            .empty(304, "The cached copy named by If-None-Match is current")
            .errors::<ErrorBody>(&[
                (
                    400,
                    "`invalid_hash`: the path does not name a blob by 64 hex characters",
                ),
                (404, "`not_found`: no such blob"),
                (500, "`corrupt`: the stored blob no longer matches its hash"),
                (
                    503,
                    "`busy`: at the limit of requests in flight; retry after `Retry-After`",
                ),
            ]),
        get_blob,
    )
    .head(
        "/blobs/{hash}",
        hash(Operation::new("Whether a blob is held, and its length"))
            .empty(200, "Held; `Content-Length` is its length")
            .empty(400, "The path does not name a blob by 64 hex characters")
            .empty(404, "No such blob"),
        head_blob,
    )
    .put(
        "/blobs/{hash}",
        hash(Operation::new("Store a blob"))
            .bearer(false)
            .binary_body(
                "application/octet-stream",
                "The blob's bytes, which must hash to the path's hash",
            )
            .json::<PutReceipt>(201, "Stored")
            .json::<PutReceipt>(200, "Already held")
            .errors::<ErrorBody>(&[
                (400, "`invalid_hash` or `unreadable_body`"),
                (
                    401,
                    "`unauthorized`: the store takes writes only from its accounts' bearer tokens",
                ),
                (
                    403,
                    "`not_on_chain` (no live contribution names the hash) or `quota_exceeded`",
                ),
                (408, "`timeout`: the body stopped arriving"),
                (413, "`too_large`: over the store's size cap"),
                (
                    422,
                    "`hash_mismatch`: the body does not hash to the path's hash",
                ),
                (503, "`chain_unavailable`, or `busy`"),
                (507, "`store_full`: the store's disk budget has no room"),
            ]),
        put_blob,
    );
    let api = match slots {
        // Only the blob routes count against the limit: health checks answer under load.
        Some(slots) => api.map_router(|router| {
            router.route_layer(middleware::from_fn_with_state(slots, limit_concurrency))
        }),
        None => api,
    };
    api.get(
        "/healthz",
        Operation::new("Liveness").json::<Health>(200, "Up"),
        healthz,
    )
}

/// The content store's OpenAPI document, as `GET /openapi.json` serves it.
pub fn openapi() -> serde_json::Value {
    api(None).document()
}

/// `GET /healthz`.
#[derive(Serialize, JsonSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// Serves the API over `store` on `listener` until the process ends.
///
/// Bind the listener to port 0 and read its `local_addr` to serve on a free port.
pub async fn serve(
    listener: TcpListener,
    store: LocalStore,
    policy: Arc<dyn WritePolicy>,
    config: ServerConfig,
) -> Result<()> {
    serve_with_shutdown(listener, store, policy, config, std::future::pending()).await
}

/// Serves the API until `shutdown` completes, then finishes the requests in flight.
pub async fn serve_with_shutdown<F>(
    listener: TcpListener,
    store: LocalStore,
    policy: Arc<dyn WritePolicy>,
    config: ServerConfig,
    shutdown: F,
) -> Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let app = router(store, policy, &config)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve)
}

/// Refuses a request when every slot is taken; a taken slot is held until the response's
/// last byte is sent, so a download in flight counts as much as an upload.
async fn limit_concurrency(
    State(slots): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(slot) = slots.try_acquire_owned() else {
        let mut refusal = Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy,
            "the content store is at its limit of requests in flight; retry shortly".to_string(),
        )
        .into_response();
        refusal
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        return refusal;
    };
    next.run(request)
        .await
        .map(|body| Body::new(SlotBody { body, _slot: slot }))
}

/// A response body that holds its request's slot until it is sent or dropped.
struct SlotBody {
    body: Body,
    _slot: OwnedSemaphorePermit,
}

impl http_body::Body for SlotBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn cors_layer(origins: &AllowedOrigins) -> Result<CorsLayer> {
    let allow_origin = match origins {
        AllowedOrigins::Any => AllowOrigin::any(),
        AllowedOrigins::List(origins) => AllowOrigin::list(
            origins
                .iter()
                .map(|origin| parse_origin(origin))
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::HEAD, Method::PUT])
        // Mirrored rather than `*`, which by the CORS rules never covers `Authorization`.
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([ETAG, CONTENT_LENGTH])
        .max_age(PREFLIGHT_MAX_AGE))
}

fn parse_origin(origin: &str) -> Result<HeaderValue> {
    let invalid = || Error::InvalidOrigin {
        origin: origin.to_string(),
    };
    let url = reqwest::Url::parse(origin).map_err(|_| invalid())?;
    // Browsers send an origin in exactly its serialized form; a trailing slash, a path or
    // an uppercase host would never match and silently lock the web app out.
    if url.origin().ascii_serialization() != origin {
        return Err(invalid());
    }
    HeaderValue::from_str(origin).map_err(|_| invalid())
}

async fn put_blob(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let hash = parse_hash(path)?;
    let cap = state.max_blob_bytes;
    let declared = declared_length(&headers);
    // Refused before a byte is read when the client says how long the body is; otherwise
    // the write below stops at the cap, so an oversized body is never taken whole.
    if let Some(size) = declared.filter(|&size| size > cap) {
        return Err(Error::TooLarge { size, max: cap }.into());
    }
    let already_stored = match declared {
        Some(size) => ContentStore::size(&state.store, &hash).await? == Some(size),
        None => false,
    };
    let request = WriteRequest {
        hash: &hash,
        declared_size: declared,
        bearer: bearer_token(&headers)?,
        already_stored,
    };
    let allowance = match state.policy.allows(&request).await? {
        Decision::Allow(allowance) => allowance,
        Decision::Deny(denial) => return Err(denial.into()),
    };
    let limit = allowance.max_bytes().map_or(cap, |max| max.min(cap));
    if let Some(size) = declared.filter(|&size| size > limit) {
        return Err(Error::TooLarge { size, max: limit }.into());
    }
    // The body cannot outgrow its declared length, so only that much disk is set aside.
    let limit = declared.map_or(limit, |size| size.min(limit));
    let body = idle_limited(body, state.body_idle_timeout);
    let written = state.store.put_stream(&hash, limit, body).await;
    allowance.settle(match &written {
        Ok(w) if w.stored == Stored::Created => WriteOutcome::Created { size: w.size },
        Ok(_) => WriteOutcome::AlreadyPresent,
        Err(_) => WriteOutcome::Failed,
    });
    let written = written?;
    let created = written.stored == Stored::Created;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let receipt = PutReceipt {
        hash: hash.to_hex(),
        size: written.size,
        created,
    };
    Ok((status, Json(receipt)).into_response())
}

async fn get_blob(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let hash = parse_hash(path)?;
    let etag = etag(&hash);
    if matches_etag(&headers, &etag) {
        return if ContentStore::contains(&state.store, &hash).await? {
            Ok((StatusCode::NOT_MODIFIED, [(ETAG, etag)]).into_response())
        } else {
            Err(Refusal::no_blob(&hash))
        };
    }
    let Some(mut reader) = state.store.open_blob(&hash).await? else {
        return Err(Refusal::no_blob(&hash));
    };
    let len = reader.len();
    // Read ahead before answering: a blob of one chunk is verified whole here, so damage to
    // it is a plain 500 rather than a response cut short.
    let first = reader.next_chunk().await?;
    let chunks = futures_util::stream::iter(first.map(Ok)).chain(reader.into_stream());
    let mut response = (
        StatusCode::OK,
        blob_headers(etag),
        Body::from_stream(chunks),
    )
        .into_response();
    // A stream has no length of its own; the header is what makes a damaged blob, cut short,
    // visibly incomplete to the client.
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    Ok(response)
}

async fn head_blob(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Refusal> {
    let hash = parse_hash(path)?;
    let size = ContentStore::size(&state.store, &hash)
        .await?
        .ok_or_else(|| Refusal::no_blob(&hash))?;
    let mut response = (StatusCode::OK, blob_headers(etag(&hash))).into_response();
    // Set by hand: the body of a HEAD answer is empty, so nothing else would say the length.
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(size));
    Ok(response)
}

async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

async fn unknown_route(method: Method, uri: Uri) -> Refusal {
    Refusal::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

fn parse_hash(path: Result<Path<String>, PathRejection>) -> Result<ContentHash, Refusal> {
    let refuse = |message| Refusal::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidHash, message);
    let Path(raw) = path.map_err(|rejection| refuse(rejection.body_text()))?;
    raw.parse()
        .map_err(|e| refuse(format!("{raw:?} is not a SHA-256: {e}")))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The token of an `Authorization: Bearer` header; any other authorization is refused rather
/// than ignored, so a client never believes it wrote as an account it did not.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, Refusal> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(Some)
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "the Authorization header is not `Bearer <token>`".to_string(),
            )
        })
}

/// The body's bytes, failing once no byte has arrived for `idle`.
fn idle_limited(body: Body, idle: Duration) -> impl Stream<Item = Result<Bytes>> + Send {
    futures_util::stream::unfold(Some(body.into_data_stream()), move |stream| async move {
        let mut stream = stream?;
        match tokio::time::timeout(idle, stream.next()).await {
            Err(_) => Some((Err(Error::BodyTimeout { idle }), None)),
            Ok(None) => None,
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(stream))),
            Ok(Some(Err(e))) => Some((
                Err(Error::UnreadableBody {
                    message: e.to_string(),
                }),
                None,
            )),
        }
    })
}

fn etag(hash: &ContentHash) -> String {
    format!("\"{hash}\"")
}

/// Whether `If-None-Match` names this blob; weak tags count, as the bytes behind a name
/// cannot change.
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

fn blob_headers(etag: String) -> [(HeaderName, String); 3] {
    [
        (CONTENT_TYPE, "application/octet-stream".to_string()),
        (ETAG, etag),
        (CACHE_CONTROL, IMMUTABLE.to_string()),
    ]
}

/// A request the API turns down, answered with an [`ErrorBody`].
struct Refusal {
    status: StatusCode,
    body: ErrorBody,
}

impl Refusal {
    fn new(status: StatusCode, code: ErrorCode, error: String) -> Self {
        Self {
            status,
            body: ErrorBody { error, code },
        }
    }

    fn no_blob(hash: &ContentHash) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no blob {hash}"),
        )
    }
}

impl From<Denial> for Refusal {
    fn from(denial: Denial) -> Self {
        let (status, code) = match &denial {
            Denial::MissingCredential | Denial::UnknownCredential => {
                (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized)
            }
            Denial::NotOnChain { .. } => (StatusCode::FORBIDDEN, ErrorCode::NotOnChain),
            Denial::QuotaExceeded { .. } => (StatusCode::FORBIDDEN, ErrorCode::QuotaExceeded),
        };
        Self::new(status, code, denial.to_string())
    }
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        let (status, code) = match &error {
            Error::HashMismatch { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::HashMismatch)
            }
            Error::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge),
            Error::InvalidHash(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidHash),
            Error::StoreFull { .. } => (StatusCode::INSUFFICIENT_STORAGE, ErrorCode::StoreFull),
            Error::UnreadableBody { .. } => (StatusCode::BAD_REQUEST, ErrorCode::UnreadableBody),
            Error::BodyTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, ErrorCode::Timeout),
            Error::Chain { .. } => {
                tracing::error!(%error, "a write could not be checked against the chain");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::ChainUnavailable,
                    "the content store cannot reach the chain to check the write; retry later"
                        .to_string(),
                );
            }
            Error::Corrupt { .. } => {
                tracing::error!(%error, "a request hit a corrupt blob");
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Corrupt)
            }
            _ => {
                tracing::error!(%error, "the content store failed a request");
                // The details (paths, upstream addresses) are for the operator's log only.
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "the content store failed; the server's log says why".to_string(),
                );
            }
        };
        Self::new(status, code, error.to_string())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let challenge = self.status == StatusCode::UNAUTHORIZED;
        let mut response = (self.status, Json(self.body)).into_response();
        if challenge {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

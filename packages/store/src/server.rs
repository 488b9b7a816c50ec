//! The content store's HTTP API over any [`ContentStore`]; [`crate::api`] lists the routes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::api::{ErrorBody, ErrorCode, PutReceipt};
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::store::{ContentStore, Stored};
use crate::DEFAULT_MAX_BLOB_BYTES;

/// How long a browser may reuse a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// A blob never changes under its name, so any cache may keep it for good.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The longest body a `PUT` may carry, in bytes; longer ones get 413 before they are read.
    pub max_blob_bytes: u64,
    /// The browser origins allowed to call the API.
    pub allowed_origins: AllowedOrigins,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
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
    store: Arc<dyn ContentStore>,
    max_blob_bytes: u64,
}

/// The API's routes over `store`, to serve or to mount in a larger app.
pub fn router(store: Arc<dyn ContentStore>, config: &ServerConfig) -> Result<Router> {
    let cors = cors_layer(&config.allowed_origins)?;
    let state = AppState {
        store,
        max_blob_bytes: config.max_blob_bytes,
    };
    Ok(Router::new()
        .route("/blobs/{hash}", get(get_blob).head(head_blob).put(put_blob))
        .route("/healthz", get(healthz))
        .fallback(unknown_route)
        .with_state(state)
        // Outermost, so refusals (a 413 above all) reach the browser as themselves rather
        // than as an opaque CORS failure.
        .layer(cors))
}

/// Serves the API over `store` on `listener` until the process ends.
///
/// Bind the listener to port 0 and read its `local_addr` to serve on a free port.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn ContentStore>,
    config: ServerConfig,
) -> Result<()> {
    serve_with_shutdown(listener, store, config, std::future::pending()).await
}

/// Serves the API until `shutdown` completes, then finishes the requests in flight.
pub async fn serve_with_shutdown<F>(
    listener: TcpListener,
    store: Arc<dyn ContentStore>,
    config: ServerConfig,
    shutdown: F,
) -> Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let app = router(store, &config)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve)
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
        .allow_headers(AllowHeaders::any())
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
    let max = state.max_blob_bytes;
    let declared = declared_length(&headers);
    // Refused before a byte is read when the client says how long the body is; otherwise
    // the read below stops at the cap, so an oversized body is never buffered whole.
    if let Some(size) = declared.filter(|&size| size > max) {
        return Err(Error::TooLarge { size, max }.into());
    }
    let bytes = read_body(body, declared, max).await?;
    let size = bytes.len() as u64;
    let created = state.store.put_expected(&hash, bytes).await? == Stored::Created;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let receipt = PutReceipt {
        hash: hash.to_hex(),
        size,
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
        return if state.store.contains(&hash).await? {
            Ok((StatusCode::NOT_MODIFIED, [(ETAG, etag)]).into_response())
        } else {
            Err(Refusal::no_blob(&hash))
        };
    }
    match state.store.get(&hash).await? {
        Some(bytes) => Ok((StatusCode::OK, blob_headers(etag), bytes).into_response()),
        None => Err(Refusal::no_blob(&hash)),
    }
}

async fn head_blob(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Refusal> {
    let hash = parse_hash(path)?;
    let size = state
        .store
        .size(&hash)
        .await?
        .ok_or_else(|| Refusal::no_blob(&hash))?;
    let mut response = (StatusCode::OK, blob_headers(etag(&hash))).into_response();
    // Set by hand: the body of a HEAD answer is empty, so nothing else would say the length.
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(size));
    Ok(response)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
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

/// Reads the body to its end, refusing it as soon as it passes `max` bytes.
async fn read_body(mut body: Body, declared: Option<u64>, max: u64) -> Result<Vec<u8>, Refusal> {
    // The declared length is at most `max` here; it only sizes the buffer, never trusted.
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::UnreadableBody,
                format!("cannot read the request body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            let size = (bytes.len() + data.len()) as u64;
            if size > max {
                return Err(Error::TooLarge { size, max }.into());
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
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

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        let (status, code) = match &error {
            Error::HashMismatch { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::HashMismatch)
            }
            Error::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge),
            Error::InvalidHash(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidHash),
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
        (self.status, Json(self.body)).into_response()
    }
}

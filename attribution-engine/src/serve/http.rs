//! The gateway's HTTP routes over a [`CompletionService`]: decoding, status codes and, when the
//! gateway has an [`AccessToken`], the bearer check of its callers.

use std::fmt;
use std::future::Future;
use std::path::Path as FilePath;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;
use tokio::net::TcpListener;
use tributary_attrib_api::{CompletionRequest, CompletionResponse, ErrorBody, ModelList};

use super::service::{CompletionService, PaymentRefused, ServeError};

/// The HTTP status of a refusal: whose fault it is.
pub fn status_of(error: &ServeError) -> StatusCode {
    match error {
        ServeError::UnknownModel { .. } => StatusCode::NOT_FOUND,
        ServeError::PromptTooLong { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        ServeError::EmptyPrompt
        | ServeError::MaxTokens { .. }
        | ServeError::Temperature(_)
        | ServeError::UnknownMethod { .. }
        | ServeError::IncompletePacket
        | ServeError::EmptyCompletion
        | ServeError::Input(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ServeError::Conflict { .. } => StatusCode::CONFLICT,
        ServeError::Payment(PaymentRefused::NotPaid(_)) => StatusCode::PAYMENT_REQUIRED,
        ServeError::Payment(PaymentRefused::Forbidden(_)) => StatusCode::FORBIDDEN,
        ServeError::Payment(PaymentRefused::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
        ServeError::Engine(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Shortest secret an [`AccessToken`] takes: 16 bytes, as hex.
pub const MIN_TOKEN_CHARS: usize = 32;

/// Why a secret cannot be an [`AccessToken`].
#[derive(Debug, Error)]
pub enum TokenError {
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the token is {chars} characters; it must have at least {MIN_TOKEN_CHARS} (e.g. 32 random bytes as hex)")]
    TooShort { chars: usize },
}

/// The secret callers of a gateway present as `Authorization: Bearer <token>`: the relayer
/// that checked each request's payment before asking. Only its SHA-256 is kept, and
/// presented tokens are compared with it in constant time.
#[derive(Clone)]
pub struct AccessToken {
    sha256: [u8; 32],
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(..)")
    }
}

impl AccessToken {
    /// The token `secret`, surrounding whitespace left out.
    pub fn new(secret: &str) -> Result<Self, TokenError> {
        let secret = secret.trim();
        let chars = secret.chars().count();
        if chars < MIN_TOKEN_CHARS {
            return Err(TokenError::TooShort { chars });
        }
        Ok(AccessToken {
            sha256: Sha256::digest(secret.as_bytes()).into(),
        })
    }

    /// The token in the file at `path`.
    pub fn from_file(path: &FilePath) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(&text)
    }

    /// Whether `presented` is this token.
    pub fn admits(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        presented.ct_eq(&self.sha256).into()
    }
}

/// What a gateway's state holds: the service and who may call it.
struct Gateway {
    service: Arc<CompletionService>,
    access: Option<AccessToken>,
}

impl Gateway {
    /// Refuses a caller without the gateway's token, when it has one.
    fn admit(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(token) = &self.access else {
            return Ok(());
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            Some(p) if token.admits(p) => Ok(()),
            _ => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this gateway answers only callers presenting its token as Authorization: Bearer <token>",
            )),
        }
    }
}

/// The gateway's routes over `service`. With `access`, completions and stored responses are
/// served only to callers presenting it; `/healthz` and `/v1/models` stay public. Without it,
/// no stored response is served: nothing else proves a caller is the request's payer.
pub fn router(service: Arc<CompletionService>, access: Option<AccessToken>) -> Router {
    // JSON escapes a byte in up to 6 characters (\u00XX); leave room for the other fields.
    let body_limit = service
        .config()
        .max_prompt_bytes
        .saturating_mul(6)
        .saturating_add(64 * 1024);
    let gateway = Arc::new(Gateway { service, access });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/models", get(list_models))
        .route("/v1/completions", post(complete))
        .route("/v1/requests/{request_id}", get(stored_request))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(gateway)
}

/// Serves `router` on `listener` until ctrl-c (or SIGTERM), then finishes the requests in flight.
pub async fn serve(listener: TcpListener, router: Router) -> std::io::Result<()> {
    serve_with_shutdown(listener, router, shutdown_signal()).await
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests in flight.
pub async fn serve_with_shutdown<F>(
    listener: TcpListener,
    router: Router,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on ctrl-c or, on Unix, SIGTERM; never if no signal handler can be installed.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

/// An error response, `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // 400 for malformed JSON, 422 for JSON of the wrong shape, 415 without a JSON content
        // type, 413 for a body over the limit.
        ApiError::new(rejection.status(), rejection.body_text())
    }
}

impl From<ServeError> for ApiError {
    fn from(error: ServeError) -> Self {
        ApiError::new(status_of(&error), error.to_string())
    }
}

/// A stored response, served without copying it.
struct Shared(Arc<CompletionResponse>);

impl IntoResponse for Shared {
    fn into_response(self) -> Response {
        Json(&*self.0).into_response()
    }
}

async fn healthz(State(gateway): State<Arc<Gateway>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "models": gateway.service.model_count() }))
}

async fn list_models(State(gateway): State<Arc<Gateway>>) -> Json<ModelList> {
    Json(gateway.service.models())
}

async fn stored_request(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    request_id: Result<Path<u64>, PathRejection>,
) -> Result<Shared, ApiError> {
    if gateway.access.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this gateway serves no stored response: without --auth-token-file nothing proves a caller is the request's payer",
        ));
    }
    gateway.admit(&headers)?;
    let Path(request_id) = request_id.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "the request id must be an unsigned integer, as in /v1/requests/42",
        )
    })?;
    gateway
        .service
        .stored(request_id)
        .map(Shared)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no completion for request {request_id}"),
            )
        })
}

async fn no_route(method: HttpMethod, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route {method} {}: the gateway serves GET /healthz, GET /v1/models, POST /v1/completions and GET /v1/requests/{{request_id}}",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: HttpMethod, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not accept {method}", uri.path()),
    )
}

async fn complete(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Json<CompletionRequest>, JsonRejection>,
) -> Result<Shared, ApiError> {
    gateway.admit(&headers)?;
    let Json(request) =
        body.inspect_err(|e| tracing::debug!(error = %e, "unreadable completion request"))?;
    Ok(Shared(gateway.service.complete(&request).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_admits_itself_only_and_is_never_shown() {
        let token = AccessToken::new("  0123456789abcdef0123456789abcdef\n").unwrap();
        assert!(token.admits("0123456789abcdef0123456789abcdef"));
        assert!(!token.admits("0123456789abcdef0123456789abcdeF"));
        assert!(!token.admits(""));
        assert_eq!(format!("{token:?}"), "AccessToken(..)");
        assert!(matches!(
            AccessToken::new("short"),
            Err(TokenError::TooShort { chars: 5 })
        ));
    }
}

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
use axum::{Json, Router};
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;
use tokio::net::TcpListener;
use tributary_attrib_api::{CompletionRequest, CompletionResponse, ErrorBody, ModelList};
use tributary_openapi::{ApiRouter, Operation};

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

/// What the gateway's documentation says about it as a whole.
const API_DESCRIPTION: &str = "The attribution engine's gateway: completions of a trained byte \
model, each with the attribution of its training contributions and, for a paid request, the \
attribution packet the relayer commits on chain. Started with `--auth-token-file`, it serves \
completions and stored responses only to callers presenting that token (the relayer that checked \
the payment); `/healthz`, `/v1/models` and this document stay public. Refusals are \
`{\"error\": \"...\"}` with a status that says whose fault it is.";

/// `GET /healthz`.
#[derive(Serialize, JsonSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
    /// How many models are served.
    models: usize,
}

/// The gateway's routes, each with its documentation, before the state is given.
fn api() -> ApiRouter<Arc<Gateway>> {
    ApiRouter::new(
        "Tributary attribution engine",
        env!("CARGO_PKG_VERSION"),
        API_DESCRIPTION,
    )
    .get(
        "/healthz",
        Operation::new("Liveness, and how many models are served").json::<Health>(200, "Up"),
        healthz,
    )
    .get(
        "/v1/models",
        Operation::new("The served models")
            .description(
                "Each model's weights, index and lineage hashes, its context, the methods its \
                 index scores with and each method's `params_hash`: what a model version \
                 registers on chain, and what a relayer checks before it serves the version.",
            )
            .json::<ModelList>(200, "The served models"),
        list_models,
    )
    .post(
        "/v1/completions",
        Operation::new("A completion and its attribution")
            .description(
                "Samples a completion of the prompt and attributes it to the model's training \
                 contributions. With `request_id`, `model_id` and `model_version` the answer \
                 carries the attribution packet, and is kept for `GET /v1/requests/{request_id}`.",
            )
            .bearer(false)
            .json_body::<CompletionRequest>("The prompt, the model and the sampling")
            .json::<CompletionResponse>(200, "The completion and its attribution")
            .errors::<ErrorBody>(&[
                (400, "The body is not JSON"),
                (401, "The gateway's token is missing or wrong"),
                (402, "The request is not paid on chain"),
                (403, "The payment does not cover this request"),
                (404, "No served model by that name"),
                (
                    409,
                    "Another completion was already given for the request id",
                ),
                (413, "The prompt is over the engine's limit"),
                (415, "The body is not sent as application/json"),
                (422, "A field is out of range, or the method is unknown"),
                (500, "The engine failed"),
                (503, "The chain could not be asked about the payment"),
            ]),
        complete,
    )
    .get(
        "/v1/requests/{request_id}",
        Operation::new("A paid request's stored completion")
            .bearer(true)
            .path_param::<u64>("request_id", "The paid request's id on chain", "42")
            .json::<CompletionResponse>(200, "The completion given for the request")
            .errors::<ErrorBody>(&[
                (400, "The id is not an unsigned integer"),
                (401, "The gateway's token is missing or wrong"),
                (
                    403,
                    "The gateway runs without a token and serves no stored response",
                ),
                (404, "No completion for the request"),
            ]),
        stored_request,
    )
}

/// The gateway's OpenAPI document, as `GET /openapi.json` serves it.
pub fn openapi() -> serde_json::Value {
    api().document()
}

/// The gateway's routes over `service`. With `access`, completions and stored responses are
/// served only to callers presenting it; `/healthz`, `/v1/models` and `/openapi.json` stay
/// public. Without it, no stored response is served: nothing else proves a caller is the
/// request's payer.
pub fn router(service: Arc<CompletionService>, access: Option<AccessToken>) -> Router {
    // JSON escapes a byte in up to 6 characters (\u00XX); leave room for the other fields.
    let body_limit = service
        .config()
        .max_prompt_bytes
        .saturating_mul(6)
        .saturating_add(64 * 1024);
    let gateway = Arc::new(Gateway { service, access });
    let (routes, _) = api().finish();
    routes
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

async fn healthz(State(gateway): State<Arc<Gateway>>) -> Json<Health> {
    Json(Health {
        status: "ok",
        models: gateway.service.model_count(),
    })
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
            "no route {method} {}: the gateway serves GET /healthz, GET /v1/models, POST /v1/completions, GET /v1/requests/{{request_id}} and GET /openapi.json",
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

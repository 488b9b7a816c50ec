//! The gateway's HTTP routes over a [`CompletionService`]: decoding, status codes, nothing
//! else.

use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
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

/// The gateway's routes over `service`.
pub fn router(service: Arc<CompletionService>) -> Router {
    // JSON escapes a byte in up to 6 characters (\u00XX); leave room for the other fields.
    let body_limit = service
        .config()
        .max_prompt_bytes
        .saturating_mul(6)
        .saturating_add(64 * 1024);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/models", get(list_models))
        .route("/v1/completions", post(complete))
        .route("/v1/requests/{request_id}", get(stored_request))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(service)
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
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
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

async fn healthz(State(service): State<Arc<CompletionService>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "models": service.model_count() }))
}

async fn list_models(State(service): State<Arc<CompletionService>>) -> Json<ModelList> {
    Json(service.models())
}

async fn stored_request(
    State(service): State<Arc<CompletionService>>,
    request_id: Result<Path<u64>, PathRejection>,
) -> Result<Shared, ApiError> {
    let Path(request_id) = request_id.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "the request id must be an unsigned integer, as in /v1/requests/42",
        )
    })?;
    service.stored(request_id).map(Shared).ok_or_else(|| {
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
    State(service): State<Arc<CompletionService>>,
    body: Result<Json<CompletionRequest>, JsonRejection>,
) -> Result<Shared, ApiError> {
    let Json(request) =
        body.inspect_err(|e| tracing::debug!(error = %e, "unreadable completion request"))?;
    Ok(Shared(service.complete(&request).await?))
}

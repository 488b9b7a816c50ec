//! The payer-facing gateway's HTTP routes over [`Submissions`]:
//!
//! ```text
//! POST /v1/completions            {"request_id": N, "prompt": "...", optional sampling fields}
//! GET  /v1/requests/{request_id}  the same response again
//! GET  /healthz
//! ```
//!
//! Refusals are `{"error": ...}` with a status that says why: 402 unknown or unpaid, 403
//! another model, a closed request or another prompt, 409 other parameters than a first
//! submission, 503 chain or engine unavailable.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tributary_attrib_api::ErrorBody;

use crate::engine::EngineCallError;
use crate::submission::{PaidCompletion, Submissions, SubmitError};

/// A refusal with its status and a message for the payer.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<SubmitError> for Refusal {
    fn from(e: SubmitError) -> Self {
        let status = match &e {
            SubmitError::UnknownFields(_)
            | SubmitError::MethodFixed { .. }
            | SubmitError::SamplingFixed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            SubmitError::NotPaid(_) => StatusCode::PAYMENT_REQUIRED,
            SubmitError::NotServed { .. }
            | SubmitError::Closed { .. }
            | SubmitError::NotAnAttestor { .. }
            | SubmitError::TooLate { .. }
            | SubmitError::GivenUp { .. }
            | SubmitError::PromptMismatch(_) => StatusCode::FORBIDDEN,
            SubmitError::Conflict(_) => StatusCode::CONFLICT,
            SubmitError::NoPrompt(_) | SubmitError::NotKept(_) => StatusCode::NOT_FOUND,
            SubmitError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            SubmitError::ChainUnavailable(_)
            | SubmitError::StillQueued(_)
            | SubmitError::Engine(EngineCallError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            SubmitError::Engine(EngineCallError::Rejected { status, .. }) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
            }
            SubmitError::Outbox(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match e {
            // The engine's own words are what the payer needs.
            SubmitError::Engine(EngineCallError::Rejected { message, .. }) => message,
            e => e.to_string(),
        };
        Refusal(status, message)
    }
}

/// The gateway's routes. Any origin may call them: a payer's web app runs wherever it is
/// served, and the on-chain payment, not the origin, decides what is served.
pub fn gateway_router(submissions: Arc<Submissions>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE]);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/completions", post(complete))
        .route("/v1/requests/{request_id}", get(stored))
        .layer(cors)
        .with_state(submissions)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn complete(
    State(submissions): State<Arc<Submissions>>,
    body: Result<Json<PaidCompletion>, JsonRejection>,
) -> Result<Response, Refusal> {
    let Json(paid) = body.map_err(|e| Refusal(StatusCode::BAD_REQUEST, e.body_text()))?;
    let response = submissions.submit(paid).await?;
    Ok(Json(response).into_response())
}

async fn stored(
    State(submissions): State<Arc<Submissions>>,
    id: Result<Path<u64>, PathRejection>,
) -> Result<Response, Refusal> {
    let Path(id) = id.map_err(|e| Refusal(StatusCode::BAD_REQUEST, e.body_text()))?;
    let response = submissions.read(id).await?;
    Ok(Json(response).into_response())
}

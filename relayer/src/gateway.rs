//! The payer-facing gateway. A payer who paid for an inference on chain sends its prompt here
//! and reads the completion with its attribution:
//!
//! ```text
//! POST /v1/completions            {"request_id": N, "prompt": "...", optional sampling fields}
//! GET  /v1/requests/{request_id}  the same response again
//! GET  /healthz
//! ```
//!
//! The request must be paid on chain for a model this relayer serves, with the SHA-256 of the
//! prompt as its `prompt_hash`; anything else is refused (402 unknown or unpaid, 403 another
//! model, a closed request or another prompt). The prompt is stored in the outbox before the
//! engine runs, so a restart recomputes the same packet from it.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tributary_attrib::serve::CompletionRequest;
use tributary_client::Error as ChainError;
use tributary_types::payout::RequestStatus;

use crate::engine::EngineCallError;
use crate::service::Relayer;

/// `POST /v1/completions`: the paid request and the prompt whose hash it paid for; sampling
/// fields as the engine's gateway takes them (the seed defaults to the request id, so every
/// attestor regenerates the same completion).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaidCompletion {
    pub request_id: u64,
    pub prompt: String,
    /// Ignored: the chain says which model the request paid for.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub max_tokens: Option<usize>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_k: Option<usize>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub method: Option<String>,
}

/// A refusal with its status and a message for the payer.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<EngineCallError> for Refusal {
    fn from(e: EngineCallError) -> Self {
        match e {
            EngineCallError::Rejected { status, message } => Refusal(
                StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
                message,
            ),
            e @ EngineCallError::Unavailable(_) => {
                Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
        }
    }
}

/// The gateway's routes. Any origin may call them: a payer's web app runs wherever it is
/// served, and the on-chain payment, not the origin, decides what is served.
pub fn gateway_router(relayer: Arc<Relayer>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE]);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/completions", post(complete))
        .route("/v1/requests/{request_id}", get(stored))
        .layer(cors)
        .with_state(relayer)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn complete(
    State(relayer): State<Arc<Relayer>>,
    body: Result<Json<PaidCompletion>, JsonRejection>,
) -> Result<Response, Refusal> {
    let Json(paid) = body.map_err(|e| Refusal(StatusCode::BAD_REQUEST, e.body_text()))?;
    let id = paid.request_id;
    let (model_id, version) = check_paid(&relayer, id, &paid.prompt).await?;
    // The chain decides which model serves the request.
    let request = CompletionRequest {
        model: relayer.engine.model_name().to_string(),
        prompt: paid.prompt,
        max_tokens: paid.max_tokens,
        temperature: paid.temperature,
        top_k: paid.top_k,
        seed: paid.seed,
        request_id: Some(id),
        model_id: Some(model_id),
        model_version: Some(version),
        method: paid.method,
    };
    if let Some(stored) = stored_request(&relayer, id)? {
        if stored != request {
            return Err(Refusal(
                StatusCode::CONFLICT,
                format!("request {id} was already submitted with other parameters"),
            ));
        }
    } else {
        let bytes = serde_json::to_vec(&request)
            .map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        relayer.outbox.record_prompt(id, &bytes).map_err(internal)?;
        relayer.prompt_arrived();
    }
    let response = relayer.engine.complete(&request).await?;
    Ok(Json(response).into_response())
}

async fn stored(
    State(relayer): State<Arc<Relayer>>,
    id: Result<Path<u64>, PathRejection>,
) -> Result<Response, Refusal> {
    let Path(id) = id.map_err(|e| Refusal(StatusCode::BAD_REQUEST, e.body_text()))?;
    let request = stored_request(&relayer, id)?.ok_or_else(|| {
        Refusal(
            StatusCode::NOT_FOUND,
            format!("no prompt was submitted for request {id}"),
        )
    })?;
    let response = relayer.engine.complete(&request).await?;
    Ok(Json(response).into_response())
}

fn stored_request(relayer: &Relayer, id: u64) -> Result<Option<CompletionRequest>, Refusal> {
    let Some(bytes) = relayer.outbox.prompt(id).map_err(internal)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| internal(format!("stored request {id} is unreadable: {e}")))
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Checks on chain that request `id` is paid, open, for a served model and for this prompt;
/// returns its model id and version.
async fn check_paid(relayer: &Relayer, id: u64, prompt: &str) -> Result<(u64, u32), Refusal> {
    let request = match relayer
        .client
        .payout(&relayer.config.contracts.payout)
        .request(id)
        .await
    {
        Ok(r) => r,
        Err(ChainError::Contract { .. }) => {
            return Err(Refusal(
                StatusCode::PAYMENT_REQUIRED,
                format!("request {id} is not paid on chain"),
            ))
        }
        Err(e) => {
            return Err(Refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the chain cannot be read: {e}"),
            ))
        }
    };
    if !relayer.serves(request.model_id, request.model_version) {
        return Err(Refusal(
            StatusCode::FORBIDDEN,
            format!(
                "request {id} paid for model {} version {}, which this relayer does not serve",
                request.model_id, request.model_version
            ),
        ));
    }
    if matches!(
        request.status,
        RequestStatus::Finalized | RequestStatus::Refunded
    ) {
        return Err(Refusal(
            StatusCode::FORBIDDEN,
            format!("request {id} is {}", request.status.as_str()),
        ));
    }
    let hash = tributary_types::sha256(prompt.as_bytes());
    if request.prompt_hash.as_slice() != hash.as_slice() {
        return Err(Refusal(
            StatusCode::FORBIDDEN,
            format!("the prompt does not match the prompt_hash paid for in request {id}"),
        ));
    }
    Ok((request.model_id, request.model_version))
}

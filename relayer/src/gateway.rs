//! The payer-facing gateway's HTTP routes over [`Submissions`]:
//!
//! ```text
//! POST /v1/completions            {"request_id": N, "prompt": "..."}: the completion, and on the
//!                                 first submission a "token"
//! GET  /v1/requests/{request_id}  the same completion, with Authorization: Bearer <token>
//! GET  /v1/requests/{request_id}/inputs
//!                                 the prompt and completion, for a bonded verifier that signs
//!                                 for them (see [`crate::inputs`])
//! POST /v1/vouchers/completions  {"voucher": <signed voucher>, "prompt": "..."}: an inference
//!                                 paid by a voucher, with [vouchers] on (see [`crate::vouchers`])
//! GET  /healthz
//! ```
//!
//! Refusals are `{"error": ...}` with a status that says why: 401 no or a wrong token, 402
//! unknown or unpaid, 403 another model, a closed request, another prompt or a request this
//! relayer cannot commit (not its attestor, about to expire, given up), 409 other parameters
//! than a first submission, 422 fields asking for another method or sampling, 429 the payer's
//! (or everyone's) queue is full, 503 chain or engine unavailable, or still queued (with the
//! `token` when the submission was the first).

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tributary_attrib_api::ErrorBody;

use crate::engine::EngineCallError;
use crate::inputs::VerifierProof;
use crate::submission::{PaidCompletion, Submissions, SubmitError};
use crate::vouchers::{VoucherCompletion, VoucherDesk, VoucherError};

/// A refusal with its status, a message for the payer and, for a first submission left
/// queued, the token that reads the completion later.
struct Refusal(StatusCode, String, Option<String>);

/// A refusal's body: [`ErrorBody`] and, when there is one, the token.
#[derive(Serialize)]
struct RefusalBody {
    #[serde(flatten)]
    body: ErrorBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = RefusalBody {
            body: ErrorBody { error: self.1 },
            token: self.2,
        };
        let mut response = (self.0, Json(body)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn bad_request(message: String) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, message, None)
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
            SubmitError::Unauthorized(_) | SubmitError::BadProof(_) => StatusCode::UNAUTHORIZED,
            SubmitError::NotAVerifier(_) => StatusCode::FORBIDDEN,
            SubmitError::ChainUnavailable(_)
            | SubmitError::StillQueued(_)
            | SubmitError::Queued { .. }
            | SubmitError::Engine(EngineCallError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            SubmitError::Engine(EngineCallError::Rejected { status, .. }) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
            }
            SubmitError::Outbox(_) | SubmitError::NoRandomness(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let token = match &e {
            SubmitError::Queued { token, .. } => token.clone(),
            _ => None,
        };
        let message = match e {
            // The engine's own words are what the payer needs.
            SubmitError::Engine(EngineCallError::Rejected { message, .. }) => message,
            e => e.to_string(),
        };
        Refusal(status, message, token)
    }
}

/// The gateway's routes. Any origin may call them: a payer's web app runs wherever it is
/// served, and the on-chain payment, not the origin, decides what is served.
pub fn gateway_router(submissions: Arc<Submissions>, vouchers: Option<VoucherDesk>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]);
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/completions", post(complete))
        .route("/v1/requests/{request_id}", get(stored))
        .route("/v1/requests/{request_id}/inputs", get(inputs))
        .with_state(submissions);
    if let Some(desk) = vouchers {
        router = router.merge(
            Router::new()
                .route("/v1/vouchers/completions", post(voucher_complete))
                .with_state(desk),
        );
    }
    router.layer(cors)
}

impl From<VoucherError> for Refusal {
    fn from(e: VoucherError) -> Self {
        let status = match &e {
            VoucherError::NotForThisRelayer(_) | VoucherError::NotServed { .. } => {
                StatusCode::FORBIDDEN
            }
            VoucherError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            VoucherError::OutOfOrder { .. } | VoucherError::ChainMismatch => StatusCode::CONFLICT,
            VoucherError::CapTooLow { .. } | VoucherError::InsufficientCredit { .. } => {
                StatusCode::PAYMENT_REQUIRED
            }
            VoucherError::Engine(EngineCallError::Rejected { .. }) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            VoucherError::NoPacket | VoucherError::Outbox(_) => StatusCode::INTERNAL_SERVER_ERROR,
            VoucherError::Engine(_) | VoucherError::Chain(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Refusal(status, e.to_string(), None)
    }
}

/// `POST /v1/vouchers/completions`: one inference paid by the next voucher of its series.
async fn voucher_complete(
    State(desk): State<VoucherDesk>,
    body: Result<Json<VoucherCompletion>, JsonRejection>,
) -> Result<Response, Refusal> {
    let Json(request) = body.map_err(|e| bad_request(e.body_text()))?;
    let served = desk.submit(request).await?;
    Ok(Json(served).into_response())
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn complete(
    State(submissions): State<Arc<Submissions>>,
    body: Result<Json<PaidCompletion>, JsonRejection>,
) -> Result<Response, Refusal> {
    let Json(paid) = body.map_err(|e| bad_request(e.body_text()))?;
    let submitted = submissions.submit(paid).await?;
    Ok(Json(submitted).into_response())
}

async fn stored(
    State(submissions): State<Arc<Submissions>>,
    id: Result<Path<u64>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let Path(id) = id.map_err(|e| bad_request(e.body_text()))?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let response = submissions.read(id, token).await?;
    Ok(Json(response).into_response())
}

async fn inputs(
    State(submissions): State<Arc<Submissions>>,
    id: Result<Path<u64>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let Path(id) = id.map_err(|e| bad_request(e.body_text()))?;
    let proof = VerifierProof::from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .map_err(|e| Refusal::from(SubmitError::BadProof(e)))?;
    let inputs = submissions.inputs(id, &proof).await?;
    Ok(Json(inputs).into_response())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use serde_json::Value;

    use super::*;
    use crate::testing::desk;

    async fn call(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    fn read(id: u64, authorization: Option<&str>) -> Request<Body> {
        let mut request = Request::get(format!("/v1/requests/{id}"));
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        request.body(Body::empty()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_completion_is_read_back_with_the_submissions_bearer_token() {
        let d = desk();
        d.ledger.pay(41, "hi", (1, 1));
        let app = gateway_router(d.submissions.clone(), None);
        let (status, _, submitted) = call(
            &app,
            Request::post("/v1/completions")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"request_id": 41, "prompt": "hi"}"#))
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{submitted}");
        let token = submitted["token"].as_str().unwrap().to_string();
        assert_eq!(submitted["packet"]["request_id"], 41);

        for authorization in [None, Some("Bearer nope"), Some(token.as_str())] {
            let (status, headers, body) = call(&app, read(41, authorization)).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{authorization:?}: {body}"
            );
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
            assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
        }
        let (status, _, read_back) = call(&app, read(41, Some(&format!("Bearer {token}")))).await;
        assert_eq!(status, StatusCode::OK, "{read_back}");
        let mut expected = submitted.clone();
        expected.as_object_mut().unwrap().remove("token");
        assert_eq!(read_back, expected);
    }

    fn inputs_request(id: u64, proof: &VerifierProof) -> Request<Body> {
        let mut request = Request::get(format!("/v1/requests/{id}/inputs"));
        for (name, value) in proof.headers() {
            request = request.header(name, value);
        }
        request.body(Body::empty()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_a_bonded_verifier_proving_its_key_reads_a_requests_inputs() {
        use crate::testing::ATTESTOR;
        use tributary_client::Signer;
        let d = desk();
        d.ledger.pay(42, "the prompt", (1, 1));
        let app = gateway_router(d.submissions.clone(), None);
        let (status, _, submitted) = call(
            &app,
            Request::post("/v1/completions")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"request_id": 42, "prompt": "the prompt"}"#))
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{submitted}");
        let verifier = Signer::random("trib").unwrap();
        let now = 1_000;
        let proof = VerifierProof::sign(&verifier, ATTESTOR, 42, now).unwrap();

        // Not bonded yet.
        let (status, _, body) = call(&app, inputs_request(42, &proof)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        d.ledger.bond_verifier(verifier.address().as_ref());
        let (status, _, body) = call(&app, inputs_request(42, &proof)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["prompt"], "the prompt");
        assert_eq!(body["completion_hex"], submitted["completion_hex"]);

        // A proof for another request, another attestor, from long ago, or without headers.
        let other_request = VerifierProof::sign(&verifier, ATTESTOR, 41, now).unwrap();
        let other_attestor = VerifierProof::sign(&verifier, "trib1other", 42, now).unwrap();
        let stale = VerifierProof::sign(&verifier, ATTESTOR, 42, now - 1_000).unwrap();
        for proof in [other_request, other_attestor, stale] {
            let (status, _, body) = call(&app, inputs_request(42, &proof)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        }
        let bare = Request::get("/v1/requests/42/inputs")
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = call(&app, bare).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        // A request this relayer never served.
        let proof = VerifierProof::sign(&verifier, ATTESTOR, 43, now).unwrap();
        let (status, _, body) = call(&app, inputs_request(43, &proof)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
}

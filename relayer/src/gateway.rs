//! The payer-facing gateway's HTTP routes over [`Submissions`]:
//!
//! ```text
//! POST /v1/completions            {"request_id": N, "prompt": "..."}: the completion, and on the
//!                                 first submission a "token"; also in the OpenAI completions
//!                                 shape (see below)
//! GET  /v1/requests/{request_id}  the same completion, with Authorization: Bearer <token>
//! GET  /v1/requests/{request_id}/inputs
//!                                 the prompt and completion, for a bonded verifier that signs
//!                                 for them (see [`crate::inputs`])
//! POST /v1/vouchers/completions  {"voucher": <signed voucher>, "prompt": "..."}: an inference
//!                                 paid by a voucher, with [vouchers] on (see [`crate::vouchers`])
//! GET  /v1/models                 the served model versions, as OpenAI's model list
//! GET  /healthz
//! GET  /openapi.json              this API's OpenAPI document
//! ```
//!
//! `POST /v1/completions` speaks OpenAI's completions API too, so existing OpenAI clients buy
//! paid inferences: the request id comes as the `request_id` field (`extra_body` in OpenAI's
//! SDKs) or the `X-Tributary-Request-Id` header; `model` is ignored (the payment on chain names
//! the model); `n` must be 1; `user` is ignored; `stream: true` answers with server-sent
//! events, text chunks then a last chunk with the `finish_reason`, the `usage` and every
//! Tributary field, then `data: [DONE]`. The answer carries `id`, `object`, `created`,
//! `choices` and `usage` beside Tributary's own fields, and the `X-Tributary-Request-Id`
//! header. Tokens are bytes, so `usage` counts bytes (the prompt's with its leading BOS
//! token). The stream starts once the completion is attributed: the engine samples the whole
//! completion before the packet that pays for it is computed.
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
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tributary_attrib_api::ErrorBody;
use tributary_openapi::{ApiRouter, Operation};

use crate::engine::EngineCallError;
use crate::inputs::{RequestInputs, VerifierProof, KEY_HEADER, SIGNATURE_HEADER, TIME_HEADER};
use crate::submission::{PaidCompletion, Submissions, SubmitError, Submitted};
use crate::vouchers::{VoucherCompletion, VoucherDesk, VoucherError, VoucherServed};

/// A refusal with its status, a message for the payer and, for a first submission left
/// queued, the token that reads the completion later.
struct Refusal(StatusCode, String, Option<String>);

/// A refusal's body: [`ErrorBody`] and, when there is one, the token.
#[derive(Serialize, schemars::JsonSchema)]
struct RefusalBody {
    #[serde(flatten)]
    body: ErrorBody,
    /// On a first submission left queued: the token that reads the completion later.
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

/// What the documentation says about the gateway as a whole.
const API_DESCRIPTION: &str = "A Tributary relayer's gateway, where a payer sends the prompt of \
an inference paid on chain (`request_inference` on the payout contract) and gets the completion \
with its attribution: the packet this relayer commits on chain, which pays the contributors. \
`POST /v1/completions` speaks OpenAI's completions API too, so existing OpenAI clients buy paid \
inferences: the request id comes as the `request_id` field (`extra_body` in OpenAI's SDKs) or the \
`X-Tributary-Request-Id` header. Tokens are bytes, so `usage` counts bytes. Refusals are \
`{\"error\": \"...\"}` with a status that says why.";

/// The body of `POST /v1/completions`: a paid completion, in OpenAI's shape too. It documents
/// the wire; the handler reads OpenAI's fields, then the rest as a [`PaidCompletion`].
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct CompletionBody {
    #[serde(flatten)]
    paid: PaidCompletion,
    /// `true`: answer with server-sent events, text chunks then a last chunk with the finish
    /// reason, the usage and Tributary's fields, then `data: [DONE]`.
    stream: Option<bool>,
    /// Completions wanted; a paid request buys exactly one.
    n: Option<u32>,
    /// OpenAI's end-user tag; ignored.
    user: Option<String>,
}

/// `GET /healthz`.
#[derive(Serialize, schemars::JsonSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// A served model version as an OpenAI model object.
#[derive(Serialize, schemars::JsonSchema)]
struct ModelObject {
    /// `tributary-{model_id}-v{version}`: the `model` a completion request may name.
    id: String,
    /// Always `model`.
    object: &'static str,
    created: u64,
    owned_by: &'static str,
    model_id: u64,
    version: u32,
}

/// `GET /v1/models`, as OpenAI's model list.
#[derive(Serialize, schemars::JsonSchema)]
struct ModelObjectList {
    /// Always `list`.
    object: &'static str,
    data: Vec<ModelObject>,
}

const REFUSALS: &[(u16, &str)] = &[
    (400, "The body or a field cannot be read"),
    (401, "No token, or a wrong one"),
    (402, "The request is unknown or unpaid on chain"),
    (
        403,
        "Another model, a closed request, another prompt, or a request this relayer cannot commit",
    ),
    (404, "Nothing kept for the request"),
    (409, "Other parameters than the first submission's"),
    (422, "A field asks for another method or sampling, or an unknown field"),
    (429, "The payer's (or everyone's) queue is full"),
    (
        503,
        "The chain or the engine is unavailable, or the request is still queued (with the `token` on a first submission)",
    ),
];

/// The gateway's routes over the paid-request desk, each with its documentation.
fn api() -> ApiRouter<Arc<Submissions>> {
    ApiRouter::new(
        "Tributary relayer gateway",
        env!("CARGO_PKG_VERSION"),
        API_DESCRIPTION,
    )
    .get(
        "/healthz",
        Operation::new("Liveness").json::<Health>(200, "Up"),
        healthz,
    )
    .post(
        "/v1/completions",
        Operation::new("The completion of a paid request, with its attribution")
            .description(
                "The first submission of a request's prompt gets a `token`: `GET \
                 /v1/requests/{request_id}` reads the completion back with it. `model` is \
                 ignored (the payment on chain names the model).",
            )
            .header::<u64>(
                REQUEST_ID_HEADER,
                "The paid request's id, when the body has no `request_id`",
                false,
            )
            .json_body::<CompletionBody>("The paid request's id and its prompt")
            .json::<OpenAiCompletion<'static>>(200, "The completion, its attribution and its packet")
            .events::<OpenAiCompletion<'static>>(200, "With `stream: true`")
            .response_header(REQUEST_ID_HEADER, "The paid request's id")
            .errors::<RefusalBody>(REFUSALS),
        complete,
    )
    .get(
        "/v1/models",
        Operation::new("The served model versions, as OpenAI's model list")
            .json::<ModelObjectList>(200, "The served versions"),
        models,
    )
    .get(
        "/v1/requests/{request_id}",
        Operation::new("A paid request's completion, read back")
            .bearer(true)
            .path_param::<u64>("request_id", "The paid request's id on chain", "42")
            .json::<Submitted>(200, "The completion given for the request")
            .errors::<RefusalBody>(REFUSALS),
        stored,
    )
    .get(
        "/v1/requests/{request_id}/inputs",
        Operation::new("A request's prompt and completion, for a bonded verifier")
            .description(
                "The verifier signs `tributary-verifier-inputs\\n{attestor}\\n{request_id}\\n{time}` \
                 with its chain key; the signature is valid for two minutes.",
            )
            .path_param::<u64>("request_id", "The paid request's id on chain", "42")
            .header::<String>(KEY_HEADER, "The verifier's compressed secp256k1 public key, hex", true)
            .header::<u64>(TIME_HEADER, "When it signed, in unix seconds", true)
            .header::<String>(SIGNATURE_HEADER, "Its signature, hex `r || s`", true)
            .json::<RequestInputs>(200, "The prompt and the completion")
            .errors::<RefusalBody>(REFUSALS),
        inputs,
    )
}

/// The voucher route, over the voucher desk.
fn voucher_api() -> ApiRouter<VoucherDesk> {
    ApiRouter::new("", "", "").post(
        "/v1/vouchers/completions",
        Operation::new("An inference paid by the next voucher of its series")
            .description("Served only by a relayer configured with `[vouchers]`.")
            .json_body::<VoucherCompletion>("The signed voucher and the prompt")
            .json::<VoucherServed>(200, "The voucher count paid, and the completion")
            .errors::<RefusalBody>(&[
                (400, "The body cannot be read"),
                (401, "The voucher's signature is not the payer's"),
                (402, "The voucher's cap or the payer's credit does not cover the inference"),
                (403, "The voucher is for another relayer, or another model"),
                (409, "The voucher is out of order, or its prompt chain does not extend the served one"),
                (422, "The engine refused the prompt"),
                (503, "The chain or the engine is unavailable"),
            ]),
        voucher_complete,
    )
}

/// The gateway's OpenAPI document, the voucher route included when `vouchers`.
pub fn openapi(vouchers: bool) -> serde_json::Value {
    let (_, mut document) = api().split();
    if vouchers {
        document.merge(voucher_api().split().1);
    }
    document.into_value()
}

/// The gateway's routes. Any origin may call them: a payer's web app runs wherever it is
/// served, and the on-chain payment, not the origin, decides what is served.
pub fn gateway_router(submissions: Arc<Submissions>, vouchers: Option<VoucherDesk>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]);
    let (routes, mut document) = api().split();
    let mut router = routes.with_state(submissions);
    if let Some(desk) = vouchers {
        let (voucher_routes, voucher_document) = voucher_api().split();
        document.merge(voucher_document);
        router = router.merge(voucher_routes.with_state(desk));
    }
    let (router, _) = document.serve(router);
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

/// `GET /v1/models`: each served model version as an OpenAI model object, its id
/// `tributary-{model_id}-v{version}` (the `model` a completion request may name; the chain's
/// payment decides what is served either way).
async fn models(State(submissions): State<Arc<Submissions>>) -> Json<ModelObjectList> {
    let data = submissions
        .served_versions()
        .into_iter()
        .map(|(model_id, version)| ModelObject {
            id: format!("tributary-{model_id}-v{version}"),
            object: "model",
            created: 0,
            owned_by: "tributary",
            model_id,
            version,
        })
        .collect();
    Json(ModelObjectList {
        object: "list",
        data,
    })
}

async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The header an OpenAI client may carry the paid request's id in.
pub const REQUEST_ID_HEADER: &str = "x-tributary-request-id";

/// Characters per streamed text chunk.
const STREAM_CHUNK_CHARS: usize = 16;

async fn complete(
    State(submissions): State<Arc<Submissions>>,
    headers: HeaderMap,
    body: Result<Json<serde_json::Map<String, serde_json::Value>>, JsonRejection>,
) -> Result<Response, Refusal> {
    let Json(mut fields) = body.map_err(|e| bad_request(e.body_text()))?;
    let stream = match fields.remove("stream") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(other) => {
            return Err(bad_request(format!(
                "stream must be a boolean, got {other}"
            )))
        }
    };
    match fields.remove("n") {
        None | Some(serde_json::Value::Null) => {}
        Some(n) if n == serde_json::json!(1) => {}
        Some(n) => {
            return Err(Refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("n {n}: a paid request buys exactly one completion"),
                None,
            ))
        }
    }
    // OpenAI's end-user tag: nothing here depends on it.
    fields.remove("user");
    if !fields.contains_key("request_id") {
        if let Some(value) = headers.get(REQUEST_ID_HEADER) {
            let id: u64 = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    bad_request(format!(
                        "{REQUEST_ID_HEADER} must be a request id (a number)"
                    ))
                })?;
            fields.insert("request_id".into(), id.into());
        }
    }
    let paid: PaidCompletion = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| bad_request(format!("Failed to deserialize the JSON body: {e}")))?;
    let prompt_bytes = paid.prompt.len();
    let submitted = submissions.submit(paid).await?;
    let completion = OpenAiCompletion::new(&submitted, prompt_bytes);
    let mut response = if stream {
        Sse::new(futures::stream::iter(completion.events())).into_response()
    } else {
        Json(&completion).into_response()
    };
    if let Some(id) = submitted.response.request_id {
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER, HeaderValue::from(id));
    }
    Ok(response)
}

/// A paid completion in OpenAI's `text_completion` shape, Tributary's fields beside.
#[derive(Serialize, schemars::JsonSchema)]
struct OpenAiCompletion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    choices: [Choice; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(flatten)]
    submitted: Option<&'a Submitted>,
}

#[derive(Clone, Serialize, schemars::JsonSchema)]
struct Choice {
    text: String,
    index: u32,
    /// Always null.
    logprobs: Option<serde_json::Value>,
    finish_reason: Option<&'static str>,
}

#[derive(Clone, Copy, Serialize, schemars::JsonSchema)]
struct Usage {
    prompt_tokens: usize,
    completion_tokens: usize,
    total_tokens: usize,
}

impl<'a> OpenAiCompletion<'a> {
    fn new(submitted: &'a Submitted, prompt_bytes: usize) -> Self {
        let response = &submitted.response;
        let completion_tokens = response.completion_hex.len() / 2;
        // One token per byte, and the BOS token the prompt starts with.
        let prompt_tokens = prompt_bytes + 1;
        let finish_reason = if completion_tokens >= response.sampling.max_tokens {
            "length"
        } else {
            "stop"
        };
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        OpenAiCompletion {
            id: format!("cmpl-tributary-{}", response.request_id.unwrap_or_default()),
            object: "text_completion",
            created,
            choices: [Choice {
                text: response.completion.clone(),
                index: 0,
                logprobs: None,
                finish_reason: Some(finish_reason),
            }],
            usage: Some(Usage {
                prompt_tokens,
                completion_tokens,
                total_tokens: prompt_tokens + completion_tokens,
            }),
            submitted: Some(submitted),
        }
    }

    /// The server-sent events of a streamed answer: text chunks without Tributary's fields,
    /// the last chunk with the finish reason, the usage and all of them, and `[DONE]`.
    fn events(&self) -> Vec<Result<Event, std::convert::Infallible>> {
        let chars: Vec<char> = self.choices[0].text.chars().collect();
        let mut events: Vec<Event> = chars
            .chunks(STREAM_CHUNK_CHARS)
            .map(|chunk| {
                let piece = OpenAiCompletion {
                    id: self.id.clone(),
                    object: self.object,
                    created: self.created,
                    choices: [Choice {
                        text: chunk.iter().collect(),
                        finish_reason: None,
                        ..self.choices[0].clone()
                    }],
                    usage: None,
                    submitted: None,
                };
                Event::default().data(serde_json::to_string(&piece).unwrap_or_default())
            })
            .collect();
        let last = OpenAiCompletion {
            choices: [Choice {
                text: String::new(),
                ..self.choices[0].clone()
            }],
            id: self.id.clone(),
            ..*self
        };
        events.push(Event::default().data(serde_json::to_string(&last).unwrap_or_default()));
        events.push(Event::default().data("[DONE]"));
        events.into_iter().map(Ok).collect()
    }
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_openapi_document_matches_the_routes_and_is_served() {
        let d = desk();
        let app = gateway_router(d.submissions.clone(), None);
        let document = openapi(false);
        let unrouted =
            tributary_openapi::testing::unrouted_operations(app.clone(), &document).await;
        assert!(
            unrouted.is_empty(),
            "documented but not served: {unrouted:?}"
        );
        let (status, _, served) = call(
            &app,
            Request::get("/openapi.json").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(served, document);

        // Without [vouchers] the voucher route is neither served nor documented; the full
        // document has it.
        assert!(document["paths"]["/v1/vouchers/completions"].is_null());
        let full = openapi(true);
        assert!(full["paths"]["/v1/vouchers/completions"]["post"].is_object());
        assert!(full["components"]["schemas"]["SignedVoucher"].is_object());
        let completions = &full["paths"]["/v1/completions"]["post"]["responses"]["200"]["content"];
        assert!(completions["application/json"].is_object(), "{completions}");
        assert!(
            completions["text/event-stream"].is_object(),
            "{completions}"
        );
        // The request body takes OpenAI's fields beside the paid completion's.
        let body = &full["components"]["schemas"]["CompletionBody"]["properties"];
        for field in ["request_id", "prompt", "stream", "n", "max_tokens"] {
            assert!(body[field].is_object(), "{field}: {body}");
        }
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
        // The same completion, without the token and the OpenAI envelope of a submission.
        let mut expected = submitted.clone();
        for field in ["token", "id", "object", "created", "choices", "usage"] {
            expected.as_object_mut().unwrap().remove(field);
        }
        assert_eq!(read_back, expected);
    }

    fn openai_request(body: &str, request_id_header: Option<u64>) -> Request<Body> {
        let mut request =
            Request::post("/v1/completions").header(header::CONTENT_TYPE, "application/json");
        if let Some(id) = request_id_header {
            request = request.header(REQUEST_ID_HEADER, id.to_string());
        }
        request.body(Body::from(body.to_string())).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_openai_client_buys_a_paid_completion_with_the_request_id_in_a_header() {
        let d = desk();
        d.ledger.pay(44, "fn main", (1, 1));
        let app = gateway_router(d.submissions.clone(), None);
        // What OpenAI's SDK sends for `completions.create(model=..., prompt=..., n=1, user=...)`.
        let body = r#"{"model": "any-name", "prompt": "fn main", "n": 1, "user": "u-1"}"#;
        let (status, headers, answer) = call(&app, openai_request(body, Some(44))).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(headers[REQUEST_ID_HEADER], "44");
        assert_eq!(answer["object"], "text_completion");
        assert_eq!(answer["id"], "cmpl-tributary-44");
        assert!(answer["created"].as_u64().unwrap() > 1_600_000_000);
        let choices = answer["choices"].as_array().unwrap();
        assert_eq!(choices.len(), 1);
        assert_eq!(choices[0]["text"], answer["completion"]);
        assert_eq!(choices[0]["index"], 0);
        let completion_bytes = answer["completion_hex"].as_str().unwrap().len() / 2;
        let finish = if completion_bytes >= 64 {
            "length"
        } else {
            "stop"
        };
        assert_eq!(choices[0]["finish_reason"], finish);
        // Bytes are tokens; the prompt also has its BOS token.
        assert_eq!(answer["usage"]["prompt_tokens"], "fn main".len() + 1);
        assert_eq!(answer["usage"]["completion_tokens"], completion_bytes);
        assert_eq!(
            answer["usage"]["total_tokens"],
            "fn main".len() + 1 + completion_bytes
        );
        // Tributary's own fields ride along.
        assert_eq!(answer["packet"]["request_id"], 44);
        assert!(answer["token"].is_string());

        // A body's request_id wins over the header; a bad header or several choices are refused.
        let (status, _, answer) = call(
            &app,
            openai_request(r#"{"prompt": "fn main", "request_id": 44}"#, Some(45)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let (status, _, answer) = call(
            &app,
            openai_request(r#"{"prompt": "fn main", "n": 2}"#, Some(44)),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        let bad = Request::post("/v1/completions")
            .header(header::CONTENT_TYPE, "application/json")
            .header(REQUEST_ID_HEADER, "forty-four")
            .body(Body::from(r#"{"prompt": "fn main"}"#))
            .unwrap();
        let (status, _, answer) = call(&app, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["error"]
            .as_str()
            .unwrap()
            .contains(REQUEST_ID_HEADER));
        let (status, _, answer) =
            call(&app, openai_request(r#"{"prompt": "fn main"}"#, None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("request_id"),
            "{answer}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_served_model_versions_are_listed_as_openai_models() {
        let d = desk();
        let app = gateway_router(d.submissions.clone(), None);
        let (status, _, list) = call(
            &app,
            Request::get("/v1/models").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["object"], "list");
        let ids: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        // The desk serves model 1 version 1 and model 3 version 1.
        assert_eq!(ids, ["tributary-1-v1", "tributary-3-v1"]);
        assert!(list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["object"] == "model" && m["owned_by"] == "tributary"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_streamed_completion_arrives_as_server_sent_events_ending_in_done() {
        let d = desk();
        d.ledger.pay(46, "the prompt", (1, 1));
        let app = gateway_router(d.submissions.clone(), None);
        let response = app
            .clone()
            .oneshot(openai_request(
                r#"{"prompt": "the prompt", "stream": true, "request_id": 46}"#,
                None,
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "46");
        assert!(response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let data: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect();
        assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let (last, pieces) = chunks.split_last().unwrap();
        assert!(pieces
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null()
                && c["packet"].is_null()
                && c["id"] == "cmpl-tributary-46"));
        let streamed: String = pieces
            .iter()
            .map(|c| c["choices"][0]["text"].as_str().unwrap())
            .collect();
        assert_eq!(streamed, last["completion"].as_str().unwrap());
        assert!(!streamed.is_empty());
        assert!(last["choices"][0]["finish_reason"].is_string());
        assert_eq!(last["choices"][0]["text"], "");
        assert_eq!(last["packet"]["request_id"], 46);
        assert!(last["usage"]["total_tokens"].as_u64().unwrap() > 0);
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

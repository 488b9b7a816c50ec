//! The inference gateway: completions with Proof of Attribution over HTTP.
//!
//! ```text
//! GET  /healthz                   {"status":"ok","models":N}
//! GET  /v1/models                 every served model: hashes, lineage, index size, methods
//! POST /v1/completions            generate, attribute, and (for a paid request) build the packet
//! GET  /v1/requests/{request_id}  the stored response of a served request
//! ```
//!
//! A request that names a `request_id` is generated with that id as its seed (unless it gives
//! one), so every attestor that serves the same paid request regenerates the same completion
//! and commits the same packet. Responses are kept in memory by request id: asking again
//! returns the stored response instead of recomputing it.
//!
//! Errors are JSON, `{"error": "..."}`, with a status that says whose fault they are.
//! The relayer embeds [`router`] with its own [`PaymentCheck`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tributary_types::{AttributionPacket, DatanetRoot};

use crate::engine::{Attribution, Engine};
use crate::error::EngineError;
use crate::index::Method;
use crate::inference::Sampling;
use crate::packet::{fixed_point, top_k_weights, PacketRequest};

/// Contributions listed in a response's attribution, at least.
pub const TOP_CONTRIBUTIONS: usize = 10;
/// Contributors listed in a response's attribution.
pub const TOP_CONTRIBUTORS: usize = 10;

/// A model the gateway serves, under the name clients ask for.
pub struct ServedModel {
    pub name: String,
    pub engine: Engine,
}

/// Why a request may not be served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRefused {
    /// 402 (not paid) or 403 (not allowed); any other error status is passed on as given.
    pub status: StatusCode,
    pub message: String,
}

impl PaymentRefused {
    /// 402: the request is not paid (yet).
    pub fn payment_required(message: impl Into<String>) -> Self {
        PaymentRefused {
            status: StatusCode::PAYMENT_REQUIRED,
            message: message.into(),
        }
    }

    /// 403: the request may not be served by this gateway.
    pub fn forbidden(message: impl Into<String>) -> Self {
        PaymentRefused {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }
}

/// Decides whether a completion request may be served, e.g. by checking on chain that its
/// `request_id` is paid. Called after the request is validated and before any engine work.
#[async_trait]
pub trait PaymentCheck: Send + Sync {
    async fn check(&self, request: &CompletionRequest) -> Result<(), PaymentRefused>;
}

/// Serves every request: for local use and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unchecked;

#[async_trait]
impl PaymentCheck for Unchecked {
    async fn check(&self, _request: &CompletionRequest) -> Result<(), PaymentRefused> {
        Ok(())
    }
}

/// The gateway's limits and defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayConfig {
    /// Longest prompt accepted, in bytes.
    pub max_prompt_bytes: usize,
    /// Largest `max_tokens` a request may ask for.
    pub max_tokens_limit: usize,
    /// Attribution method of requests that name none.
    pub default_method: Method,
    /// Entries of each attribution packet (and shares of each response) at most.
    pub packet_top_k: usize,
    /// Responses kept for `GET /v1/requests/{id}` and repeated requests; the oldest go first.
    pub stored_responses: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_prompt_bytes: 4096,
            max_tokens_limit: 512,
            default_method: Method::Preconditioned,
            packet_top_k: 8,
            stored_responses: 10_000,
        }
    }
}

/// `POST /v1/completions`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// Name of a served model.
    pub model: String,
    pub prompt: String,
    /// Bytes to generate at most (default 64).
    #[serde(default)]
    pub max_tokens: Option<usize>,
    /// Sampling temperature, 0 for greedy (default 0.8).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Sample among the most likely `top_k` bytes, 0 for all (default 16).
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Sampling seed; defaults to `request_id`, else 0.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The paid request on chain. With `model_id` and `model_version` the response carries
    /// the attribution packet.
    #[serde(default)]
    pub request_id: Option<u64>,
    #[serde(default)]
    pub model_id: Option<u64>,
    #[serde(default)]
    pub model_version: Option<u32>,
    /// `trak-logra-v1`, `graddot-logra-v1`, `cosine-logra-v1` (or `preconditioned`,
    /// `grad_dot`, `cosine`, `trak`, `graddot`).
    #[serde(default)]
    pub method: Option<String>,
}

/// A contribution among the highest-scoring ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopContribution {
    pub contribution_id: u64,
    pub contributor: String,
    pub score: f64,
    /// Its share of the fee in basis points, as the packet's top-k rule gives it; absent when
    /// it gets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_bps: Option<u16>,
}

/// A contributor's summed score and share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContributorShare {
    pub contributor: String,
    pub score: f64,
    /// Sum of the shares of the contributor's contributions, in basis points.
    pub share_bps: u32,
}

/// The readable part of an attribution: the top contributions and contributors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributionSummary {
    /// Method id, e.g. `trak-logra-v1`.
    pub method: String,
    /// Contributions by descending score.
    pub top: Vec<TopContribution>,
    /// Contributors by descending summed score.
    pub contributors: Vec<ContributorShare>,
}

impl AttributionSummary {
    /// The `top` best contributions and the [`TOP_CONTRIBUTORS`] best contributors, with the
    /// shares the packet's rule gives the best `packet_top_k` contributions.
    pub fn new(attribution: &Attribution, top: usize, packet_top_k: usize) -> Self {
        let scores: Vec<(u64, f64)> = attribution
            .contributions
            .iter()
            .map(|c| (c.contribution_id, c.score))
            .collect();
        let shares: BTreeMap<u64, u16> = top_k_weights(&fixed_point(&scores), packet_top_k)
            .into_iter()
            .map(|e| (e.contribution_id, e.weight_bps))
            .collect();
        let mut by_contributor: BTreeMap<&str, u32> = BTreeMap::new();
        for c in &attribution.contributions {
            if let Some(&bps) = shares.get(&c.contribution_id) {
                *by_contributor.entry(&c.contributor).or_default() += u32::from(bps);
            }
        }
        AttributionSummary {
            method: attribution.method.id().to_string(),
            top: attribution
                .ranked()
                .into_iter()
                .take(top)
                .map(|c| TopContribution {
                    contribution_id: c.contribution_id,
                    contributor: c.contributor.clone(),
                    score: c.score,
                    share_bps: shares.get(&c.contribution_id).copied(),
                })
                .collect(),
            contributors: attribution
                .contributors
                .iter()
                .take(TOP_CONTRIBUTORS)
                .map(|c| ContributorShare {
                    contributor: c.contributor.clone(),
                    score: c.score,
                    share_bps: by_contributor
                        .get(c.contributor.as_str())
                        .copied()
                        .unwrap_or(0),
                })
                .collect(),
        }
    }
}

/// The response to `POST /v1/completions` (and `GET /v1/requests/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompletionResponse {
    pub model: String,
    pub request_id: Option<u64>,
    /// The completion as text (invalid UTF-8 replaced).
    pub completion: String,
    /// The completion's exact bytes, hex; the packet's `output_hash` is their SHA-256.
    pub completion_hex: String,
    /// The sampling that produced the completion: with it anyone regenerates it.
    pub sampling: Sampling,
    pub weights_hash: String,
    pub attribution: AttributionSummary,
    /// Present when the request gave `request_id`, `model_id` and `model_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet: Option<AttributionPacket>,
}

/// A served model as `GET /v1/models` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub weights_hash: String,
    pub index_hash: String,
    pub datanet_roots: Vec<DatanetRoot>,
    /// Context window, in tokens (bytes).
    pub context: usize,
    /// Training examples in the index.
    pub examples: usize,
    /// Contributions of the model's lineage.
    pub contributions: usize,
    /// Method ids the index can score with.
    pub methods: Vec<String>,
    pub default_method: String,
}

/// `GET /v1/models`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    pub models: Vec<ModelInfo>,
}

/// Parses a method: its id (`trak-logra-v1`), its snake name (`preconditioned`) or the short
/// names `trak` and `graddot`.
pub fn parse_method(s: &str) -> Option<Method> {
    match s.trim() {
        "trak" => Some(Method::Preconditioned),
        "graddot" => Some(Method::GradDot),
        other => Method::parse(other),
    }
}

/// The parameters a completion is computed from, once defaults are applied: two requests
/// with the same id must agree on them.
#[derive(Clone, Debug, PartialEq)]
struct Resolved {
    model: String,
    prompt: String,
    sampling: Sampling,
    method: Method,
    packet: Option<PacketRequest>,
}

struct Served {
    name: String,
    engine: Arc<Engine>,
}

struct StoredResponse {
    resolved: Resolved,
    response: Arc<CompletionResponse>,
}

/// Responses by request id, the oldest evicted first.
#[derive(Default)]
struct ResponseStore {
    order: VecDeque<u64>,
    by_id: HashMap<u64, StoredResponse>,
}

impl ResponseStore {
    /// Stores a response unless one is already stored for its id, and returns the stored one;
    /// `Err` with the stored one's parameters when they differ from this one's.
    fn insert(
        &mut self,
        id: u64,
        stored: StoredResponse,
        capacity: usize,
    ) -> Result<Arc<CompletionResponse>, ()> {
        if let Some(existing) = self.by_id.get(&id) {
            return if existing.resolved == stored.resolved {
                Ok(existing.response.clone())
            } else {
                Err(())
            };
        }
        let response = stored.response.clone();
        if capacity == 0 {
            return Ok(response);
        }
        while self.order.len() >= capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
        self.order.push_back(id);
        self.by_id.insert(id, stored);
        Ok(response)
    }
}

struct Gateway {
    models: Vec<Served>,
    payments: Arc<dyn PaymentCheck>,
    config: GatewayConfig,
    responses: Mutex<ResponseStore>,
}

impl Gateway {
    fn model(&self, name: &str) -> Option<&Served> {
        self.models.iter().find(|m| m.name == name)
    }

    fn stored(&self, id: u64) -> Option<(Resolved, Arc<CompletionResponse>)> {
        let store = self
            .responses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        store
            .by_id
            .get(&id)
            .map(|s| (s.resolved.clone(), s.response.clone()))
    }
}

/// The gateway's routes over `models`, checking every completion request with `payments`.
///
/// # Panics
/// If two models share a name.
pub fn router(
    models: Vec<ServedModel>,
    payments: Arc<dyn PaymentCheck>,
    config: GatewayConfig,
) -> Router {
    let mut served: Vec<Served> = Vec::with_capacity(models.len());
    for m in models {
        assert!(
            served.iter().all(|s| s.name != m.name),
            "two served models are named `{}`",
            m.name
        );
        served.push(Served {
            name: m.name,
            engine: Arc::new(m.engine),
        });
    }
    // JSON escapes a byte in up to 6 characters (\u00XX); leave room for the other fields.
    let body_limit = config
        .max_prompt_bytes
        .saturating_mul(6)
        .saturating_add(64 * 1024);
    let gateway = Arc::new(Gateway {
        models: served,
        payments,
        config,
        responses: Mutex::new(ResponseStore::default()),
    });
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

    fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
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

/// A stored response, served without copying it.
struct Shared(Arc<CompletionResponse>);

impl IntoResponse for Shared {
    fn into_response(self) -> Response {
        Json(&*self.0).into_response()
    }
}

async fn healthz(State(gateway): State<Arc<Gateway>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "models": gateway.models.len() }))
}

async fn list_models(State(gateway): State<Arc<Gateway>>) -> Json<ModelList> {
    let models = gateway
        .models
        .iter()
        .map(|m| {
            let engine = &m.engine;
            let mut datanet_roots = engine.artifact.manifest.lineage.datanets.clone();
            datanet_roots.sort();
            ModelInfo {
                name: m.name.clone(),
                weights_hash: engine.artifact.weights_hash().to_string(),
                index_hash: engine.index.index_hash().to_string(),
                datanet_roots,
                context: engine.config().context,
                examples: engine.index.n_examples(),
                contributions: engine.artifact.manifest.lineage.contributions.len(),
                methods: Method::ALL.iter().map(|m| m.id().to_string()).collect(),
                default_method: gateway.config.default_method.id().to_string(),
            }
        })
        .collect();
    Json(ModelList { models })
}

async fn stored_request(
    State(gateway): State<Arc<Gateway>>,
    request_id: Result<Path<u64>, PathRejection>,
) -> Result<Shared, ApiError> {
    let Path(request_id) = request_id.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "the request id must be an unsigned integer, as in /v1/requests/42",
        )
    })?;
    gateway
        .stored(request_id)
        .map(|(_, response)| Shared(response))
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

/// Checks a request and applies the defaults.
fn resolve(gateway: &Gateway, request: &CompletionRequest) -> Result<Resolved, ApiError> {
    let config = &gateway.config;
    if gateway.model(&request.model).is_none() {
        let known: Vec<&str> = gateway.models.iter().map(|m| m.name.as_str()).collect();
        let known = if known.is_empty() {
            "it serves none".to_string()
        } else {
            format!("it serves {}", known.join(", "))
        };
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("the gateway serves no model `{}`: {known}", request.model),
        ));
    }
    if request.prompt.is_empty() {
        return Err(ApiError::unprocessable(
            "the prompt is empty: give the text the model should continue",
        ));
    }
    if request.prompt.len() > config.max_prompt_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the prompt is {} bytes; the gateway accepts {} at most",
                request.prompt.len(),
                config.max_prompt_bytes
            ),
        ));
    }
    let defaults = Sampling::default();
    let max_tokens = request
        .max_tokens
        .unwrap_or(defaults.max_tokens.min(config.max_tokens_limit));
    if max_tokens == 0 || max_tokens > config.max_tokens_limit {
        return Err(ApiError::unprocessable(format!(
            "max_tokens must be between 1 and {}, got {max_tokens}",
            config.max_tokens_limit
        )));
    }
    let temperature = request.temperature.unwrap_or(defaults.temperature);
    if !temperature.is_finite() || temperature < 0.0 {
        return Err(ApiError::unprocessable(format!(
            "temperature must be a finite number at least 0, got {temperature}"
        )));
    }
    let method = match &request.method {
        None => config.default_method,
        Some(name) => parse_method(name).ok_or_else(|| {
            let ids: Vec<&str> = Method::ALL.iter().map(|m| m.id()).collect();
            ApiError::unprocessable(format!(
                "unknown attribution method `{name}`: use one of {}",
                ids.join(", ")
            ))
        })?,
    };
    let packet = match (request.request_id, request.model_id, request.model_version) {
        (Some(request_id), Some(model_id), Some(model_version)) => Some(PacketRequest {
            request_id,
            model_id,
            model_version,
            top_k: config.packet_top_k,
        }),
        (_, None, None) => None,
        _ => {
            return Err(ApiError::unprocessable(
                "an attribution packet needs request_id, model_id and model_version together",
            ))
        }
    };
    Ok(Resolved {
        model: request.model.clone(),
        prompt: request.prompt.clone(),
        sampling: Sampling {
            max_tokens,
            temperature,
            top_k: request.top_k.unwrap_or(defaults.top_k),
            seed: request.seed.or(request.request_id).unwrap_or(0),
        },
        method,
        packet,
    })
}

/// Generates, attributes and packs one completion: CPU-bound, run off the async threads.
fn compute(
    engine: &Engine,
    resolved: &Resolved,
    request_id: Option<u64>,
    packet_top_k: usize,
) -> Result<CompletionResponse, ApiError> {
    let prompt = resolved.prompt.as_bytes();
    let completion = engine.generate(prompt, &resolved.sampling);
    if completion.is_empty() {
        return Err(ApiError::unprocessable(
            "the model ended the document at once: the completion is empty and there is nothing to attribute; try another prompt, seed or temperature",
        ));
    }
    let attribution = engine
        .attribute(prompt, &completion, resolved.method)
        .map_err(engine_error)?;
    let packet = match &resolved.packet {
        Some(request) => Some(
            engine
                .packet(request, &completion, &attribution)
                .map_err(engine_error)?,
        ),
        None => None,
    };
    Ok(CompletionResponse {
        model: resolved.model.clone(),
        request_id,
        completion: String::from_utf8_lossy(&completion).into_owned(),
        completion_hex: hex::encode(&completion),
        sampling: resolved.sampling.clone(),
        weights_hash: engine.artifact.weights_hash().to_string(),
        attribution: AttributionSummary::new(
            &attribution,
            TOP_CONTRIBUTIONS.max(packet_top_k),
            packet_top_k,
        ),
        packet,
    })
}

fn conflict(id: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        format!(
            "request {id} was already served with other parameters (model, prompt, sampling, method or packet fields); GET /v1/requests/{id} returns it"
        ),
    )
}

fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::Input(message) => ApiError::unprocessable(message),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the engine failed: {other}"),
        ),
    }
}

async fn complete(
    State(gateway): State<Arc<Gateway>>,
    body: Result<Json<CompletionRequest>, JsonRejection>,
) -> Result<Shared, ApiError> {
    let started = Instant::now();
    let Json(request) =
        body.inspect_err(|e| tracing::debug!(error = %e, "unreadable completion request"))?;
    let result = complete_checked(&gateway, &request, started).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match &result {
        Ok(_) => {}
        Err(e) if e.status.is_server_error() => tracing::error!(
            model = %request.model,
            request_id = request.request_id,
            latency_ms,
            status = e.status.as_u16(),
            error = %e.message,
            "completion failed"
        ),
        Err(e) => tracing::info!(
            model = %request.model,
            request_id = request.request_id,
            latency_ms,
            status = e.status.as_u16(),
            error = %e.message,
            "completion refused"
        ),
    }
    result.map(Shared)
}

async fn complete_checked(
    gateway: &Arc<Gateway>,
    request: &CompletionRequest,
    started: Instant,
) -> Result<Arc<CompletionResponse>, ApiError> {
    let resolved = resolve(gateway, request)?;
    if let Some(id) = request.request_id {
        if let Some((previous, response)) = gateway.stored(id) {
            if previous != resolved {
                return Err(conflict(id));
            }
            tracing::info!(
                model = %request.model,
                request_id = id,
                latency_ms = started.elapsed().as_millis() as u64,
                "completion served from the stored response"
            );
            return Ok(response);
        }
    }
    gateway.payments.check(request).await.map_err(|refused| {
        let status = if refused.status.is_client_error() || refused.status.is_server_error() {
            refused.status
        } else {
            StatusCode::PAYMENT_REQUIRED
        };
        ApiError::new(status, refused.message)
    })?;
    let engine = gateway
        .model(&resolved.model)
        .map(|m| m.engine.clone())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("the gateway serves no model `{}`", resolved.model),
            )
        })?;
    let packet_top_k = gateway.config.packet_top_k;
    let request_id = request.request_id;
    let job = resolved.clone();
    let response =
        tokio::task::spawn_blocking(move || compute(&engine, &job, request_id, packet_top_k))
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the engine failed: {e}"),
                )
            })??;
    let response = Arc::new(response);
    let response = match request_id {
        Some(id) => gateway
            .responses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id,
                StoredResponse { resolved, response },
                gateway.config.stored_responses,
            )
            .map_err(|()| conflict(id))?,
        None => response,
    };
    tracing::info!(
        model = %request.model,
        request_id = request_id,
        latency_ms = started.elapsed().as_millis() as u64,
        completion_bytes = response.completion_hex.len() / 2,
        packet = response.packet.is_some(),
        "completion served"
    );
    Ok(response)
}

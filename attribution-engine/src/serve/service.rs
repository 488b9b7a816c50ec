//! The completion service: resolves a request against the served models, checks its payment,
//! computes the completion, its attribution and packet, and keeps the responses of paid
//! requests. No HTTP here: the gateway's routes ([`super::http`]) and the relayer, which runs
//! the engine in its own process, both call [`CompletionService::complete`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tributary_attrib_api::{
    AttributionSummary, CompletionRequest, CompletionResponse, ContributorShare, ModelInfo,
    ModelList, TopContribution,
};

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
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PaymentRefused {
    /// The request is not paid (yet): HTTP 402.
    #[error("{0}")]
    NotPaid(String),
    /// The request may not be served by this gateway: HTTP 403.
    #[error("{0}")]
    Forbidden(String),
    /// Payment could not be checked now (the chain does not answer): HTTP 503.
    #[error("{0}")]
    Unavailable(String),
}

impl PaymentRefused {
    /// The request is not paid (yet).
    pub fn payment_required(message: impl Into<String>) -> Self {
        PaymentRefused::NotPaid(message.into())
    }

    /// The request may not be served by this gateway.
    pub fn forbidden(message: impl Into<String>) -> Self {
        PaymentRefused::Forbidden(message.into())
    }

    /// Payment cannot be checked now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        PaymentRefused::Unavailable(message.into())
    }
}

/// Decides whether a completion request may be served, e.g. by checking on chain that its
/// `request_id` is paid. [`CompletionService::complete`] calls it after the request is
/// validated and before anything is served: before any engine work, and before a stored
/// response is returned.
#[async_trait]
pub trait PaymentCheck: Send + Sync {
    async fn check(&self, request: &CompletionRequest) -> Result<(), PaymentRefused>;
}

/// Serves every request: the caller vouches for payment. The relayer runs its engine with it,
/// having checked each request on chain before the engine sees it; a standalone gateway only
/// behind an [`super::AccessToken`] its callers present.
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

/// Why a completion was not served.
#[derive(Debug, Error)]
pub enum ServeError {
    /// No served model has this name.
    #[error("the gateway serves no model `{model}`: {served}")]
    UnknownModel { model: String, served: String },
    #[error("the prompt is empty: give the text the model should continue")]
    EmptyPrompt,
    #[error("the prompt is {bytes} bytes; the gateway accepts {limit} at most")]
    PromptTooLong { bytes: usize, limit: usize },
    #[error("max_tokens must be between 1 and {limit}, got {max_tokens}")]
    MaxTokens { max_tokens: usize, limit: usize },
    #[error("temperature must be a finite number at least 0, got {0}")]
    Temperature(f32),
    #[error("unknown attribution method `{name}`: use one of {known}")]
    UnknownMethod { name: String, known: String },
    #[error("an attribution packet needs request_id, model_id and model_version together")]
    IncompletePacket,
    #[error("the model ended the document at once: the completion is empty and there is nothing to attribute; try another prompt, seed or temperature")]
    EmptyCompletion,
    /// The request id was served before with other parameters.
    #[error("request {request_id} was already served with other parameters (model, prompt, sampling, method or packet fields); GET /v1/requests/{request_id} returns it")]
    Conflict { request_id: u64 },
    #[error(transparent)]
    Payment(#[from] PaymentRefused),
    /// The engine refused its input.
    #[error("{0}")]
    Input(String),
    /// The engine failed on its side.
    #[error("the engine failed: {0}")]
    Engine(String),
}

impl From<EngineError> for ServeError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Input(message) => ServeError::Input(message),
            other => ServeError::Engine(other.to_string()),
        }
    }
}

/// Parses a method: its id (`trak-logra-v2`), its snake name (`preconditioned`) or the short
/// names `trak` and `graddot`.
pub fn parse_method(s: &str) -> Option<Method> {
    match s.trim() {
        "trak" => Some(Method::Preconditioned),
        "graddot" => Some(Method::GradDot),
        other => Method::parse(other),
    }
}

/// The readable part of `attribution`: the `top` best contributions and the
/// [`TOP_CONTRIBUTORS`] best contributors, with the shares the packet's rule gives the best
/// `packet_top_k` contributions.
pub fn summarize(attribution: &Attribution, top: usize, packet_top_k: usize) -> AttributionSummary {
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
                passage: c.passage,
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

/// What a stored response answers: a request id, for one model and one prompt. A request id
/// asked for with another model or prompt finds nothing (and is refused), so nobody can put
/// an answer in place for someone else's request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ResponseKey {
    request_id: u64,
    model: String,
    prompt_sha256: [u8; 32],
}

impl ResponseKey {
    fn of(request_id: u64, resolved: &Resolved) -> Self {
        ResponseKey {
            request_id,
            model: resolved.model.clone(),
            prompt_sha256: Sha256::digest(resolved.prompt.as_bytes()).into(),
        }
    }
}

struct StoredResponse {
    key: ResponseKey,
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
    /// The response stored for `key`; `Err` when its request id was served for another model
    /// or prompt, or with other parameters.
    fn find(
        &self,
        key: &ResponseKey,
        resolved: &Resolved,
    ) -> Result<Option<Arc<CompletionResponse>>, ServeError> {
        match self.by_id.get(&key.request_id) {
            None => Ok(None),
            Some(s) if s.key == *key && s.resolved == *resolved => Ok(Some(s.response.clone())),
            Some(_) => Err(ServeError::Conflict {
                request_id: key.request_id,
            }),
        }
    }

    /// Stores a response unless one is already stored for its request id, and returns the
    /// stored one; `Err` when the stored one answers another model, prompt or parameters.
    fn insert(
        &mut self,
        stored: StoredResponse,
        capacity: usize,
    ) -> Result<Arc<CompletionResponse>, ServeError> {
        if let Some(existing) = self.find(&stored.key, &stored.resolved)? {
            return Ok(existing);
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
        let id = stored.key.request_id;
        self.order.push_back(id);
        self.by_id.insert(id, stored);
        Ok(response)
    }
}

/// Completions with attribution over a set of served models.
pub struct CompletionService {
    models: Vec<Served>,
    payments: Arc<dyn PaymentCheck>,
    config: GatewayConfig,
    responses: Mutex<ResponseStore>,
}

impl CompletionService {
    /// Serves `models`, checking every completion request with `payments`.
    ///
    /// # Panics
    /// If two models share a name.
    pub fn new(
        models: Vec<ServedModel>,
        payments: Arc<dyn PaymentCheck>,
        config: GatewayConfig,
    ) -> Self {
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
        CompletionService {
            models: served,
            payments,
            config,
            responses: Mutex::new(ResponseStore::default()),
        }
    }

    /// The limits and defaults.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// How many models are served.
    pub fn model_count(&self) -> usize {
        self.models.len()
    }

    /// Every served model: hashes, lineage, index size, methods.
    pub fn models(&self) -> ModelList {
        let models = self
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
                    default_method: self.config.default_method.id().to_string(),
                    params_hashes: Method::ALL
                        .iter()
                        .map(|&method| {
                            let params = engine.params(method, self.config.packet_top_k);
                            let hash = crate::packet::params_hash(&params);
                            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
                            (method.id().to_string(), hex)
                        })
                        .collect(),
                }
            })
            .collect();
        ModelList { models }
    }

    /// The stored response of paid request `request_id`.
    pub fn stored(&self, request_id: u64) -> Option<Arc<CompletionResponse>> {
        self.store()
            .by_id
            .get(&request_id)
            .map(|s| s.response.clone())
    }

    fn store(&self) -> std::sync::MutexGuard<'_, ResponseStore> {
        self.responses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn engine(&self, name: &str) -> Option<Arc<Engine>> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.engine.clone())
    }

    /// Generates, attributes and (for a paid request) packs one completion; a paid request
    /// asked again gets its stored response.
    pub async fn complete(
        &self,
        request: &CompletionRequest,
    ) -> Result<Arc<CompletionResponse>, ServeError> {
        let started = Instant::now();
        let result = self.complete_checked(request, started).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(_) => {}
            Err(e @ ServeError::Engine(_)) => tracing::error!(
                model = %request.model,
                request_id = request.request_id,
                latency_ms,
                error = %e,
                "completion failed"
            ),
            Err(e) => tracing::info!(
                model = %request.model,
                request_id = request.request_id,
                latency_ms,
                error = %e,
                "completion refused"
            ),
        }
        result
    }

    async fn complete_checked(
        &self,
        request: &CompletionRequest,
        started: Instant,
    ) -> Result<Arc<CompletionResponse>, ServeError> {
        let resolved = self.resolve(request)?;
        // Before anything is served, a stored response included: paying once is no licence to
        // be served again once the request is closed.
        self.payments.check(request).await?;
        if let Some(id) = request.request_id {
            let key = ResponseKey::of(id, &resolved);
            if let Some(response) = self.store().find(&key, &resolved)? {
                tracing::info!(
                    model = %request.model,
                    request_id = id,
                    latency_ms = started.elapsed().as_millis() as u64,
                    "completion served from the stored response"
                );
                return Ok(response);
            }
        }
        let engine = self
            .engine(&resolved.model)
            .ok_or_else(|| self.unknown_model(&resolved.model))?;
        let packet_top_k = self.config.packet_top_k;
        let request_id = request.request_id;
        let job = resolved.clone();
        let response =
            tokio::task::spawn_blocking(move || compute(&engine, &job, request_id, packet_top_k))
                .await
                .map_err(|e| ServeError::Engine(e.to_string()))??;
        let response = Arc::new(response);
        let response = match request_id {
            Some(id) => self.store().insert(
                StoredResponse {
                    key: ResponseKey::of(id, &resolved),
                    resolved,
                    response,
                },
                self.config.stored_responses,
            )?,
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

    fn unknown_model(&self, model: &str) -> ServeError {
        let known: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
        let served = if known.is_empty() {
            "it serves none".to_string()
        } else {
            format!("it serves {}", known.join(", "))
        };
        ServeError::UnknownModel {
            model: model.to_string(),
            served,
        }
    }

    /// Checks a request and applies the defaults.
    fn resolve(&self, request: &CompletionRequest) -> Result<Resolved, ServeError> {
        let config = &self.config;
        if self.engine(&request.model).is_none() {
            return Err(self.unknown_model(&request.model));
        }
        if request.prompt.is_empty() {
            return Err(ServeError::EmptyPrompt);
        }
        if request.prompt.len() > config.max_prompt_bytes {
            return Err(ServeError::PromptTooLong {
                bytes: request.prompt.len(),
                limit: config.max_prompt_bytes,
            });
        }
        let defaults = Sampling::default();
        let asked = &request.sampling;
        let max_tokens = asked
            .max_tokens
            .unwrap_or(defaults.max_tokens.min(config.max_tokens_limit));
        if max_tokens == 0 || max_tokens > config.max_tokens_limit {
            return Err(ServeError::MaxTokens {
                max_tokens,
                limit: config.max_tokens_limit,
            });
        }
        let temperature = asked.temperature.unwrap_or(defaults.temperature);
        if !temperature.is_finite() || temperature < 0.0 {
            return Err(ServeError::Temperature(temperature));
        }
        let method = match &request.method {
            None => config.default_method,
            Some(name) => parse_method(name).ok_or_else(|| {
                let ids: Vec<&str> = Method::ALL.iter().map(|m| m.id()).collect();
                ServeError::UnknownMethod {
                    name: name.clone(),
                    known: ids.join(", "),
                }
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
            _ => return Err(ServeError::IncompletePacket),
        };
        Ok(Resolved {
            model: request.model.clone(),
            prompt: request.prompt.clone(),
            sampling: Sampling {
                max_tokens,
                temperature,
                top_k: asked.top_k.unwrap_or(defaults.top_k),
                seed: asked.seed.or(request.request_id).unwrap_or(0),
            },
            method,
            packet,
        })
    }
}

/// Generates, attributes and packs one completion: CPU-bound, run off the async threads.
fn compute(
    engine: &Engine,
    resolved: &Resolved,
    request_id: Option<u64>,
    packet_top_k: usize,
) -> Result<CompletionResponse, ServeError> {
    let prompt = resolved.prompt.as_bytes();
    let completion = engine.generate(prompt, &resolved.sampling);
    if completion.is_empty() {
        return Err(ServeError::EmptyCompletion);
    }
    let attribution = engine.attribute(prompt, &completion, resolved.method)?;
    let packet = match &resolved.packet {
        Some(request) => Some(engine.packet(request, &completion, &attribution)?),
        None => None,
    };
    Ok(CompletionResponse {
        model: resolved.model.clone(),
        request_id,
        completion: String::from_utf8_lossy(&completion).into_owned(),
        completion_hex: hex::encode(&completion),
        sampling: resolved.sampling.clone(),
        weights_hash: engine.artifact.weights_hash().to_string(),
        attribution: summarize(
            &attribution,
            TOP_CONTRIBUTIONS.max(packet_top_k),
            packet_top_k,
        ),
        packet,
    })
}

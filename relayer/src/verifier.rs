//! `tributary-relayer verify`: an independent verifier that recomputes other attestors'
//! packets and challenges the wrong ones.
//!
//! Every `poll_ms` it:
//!
//! 1. keeps its bond at the payout contract's `min_verifier_bond` (with `auto_bond`);
//! 2. reads the attested requests of the model versions it serves and, for a `sample_rate`
//!    share of them chosen by a hash of its address and the request id (so the attestors
//!    cannot tell which), fetches the prompt and completion from an attestor's gateway (signed
//!    as a bonded verifier, see [`crate::inputs`]), recomputes the packet with its own engine
//!    and compares its hash with the agreed one. A mismatch, while the challenge window is
//!    open, is challenged with the verifier's own packet and the challenge bond, and the
//!    inputs are revealed to the dispute at once;
//! 3. answers committee draws: for every open challenge whose committee names it, recomputes
//!    the packet from the revealed inputs and votes for the packet that matches its own;
//! 4. resolves every open challenge that is ready, whoever opened it.
//!
//! The engine must be the model version's own (its weights hash is checked against the
//! request's terms for every packet): a verifier with other weights cannot agree with anyone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cosmwasm_std::{HexBinary, Uint128};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::Mutex;
use tributary_attrib_api::{CompletionRequest, Sampling, SamplingRequest};
use tributary_client::{coin, Client, Coin, Error as ChainError, Signer};
use tributary_types::payout::{
    BalancesResponse, ExecuteMsg, InferenceRequest, QueryMsg, RequestStatus, RequestTerms,
    RequestsResponse,
};
use tributary_types::verification::{
    BondInfo, ChallengeInfo, ChallengePhase, ChallengesResponse, VerificationParams,
};
use tributary_types::{sha256, AssetInfo, AttributionPacket};

use crate::config::{InputSource, VerifierConfig};
use crate::engine::EngineBackend;
use crate::inputs::{RequestInputs, VerifierProof};

/// How long one call to an attestor's gateway may take.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(20);

/// Every metric a verifier exports.
pub struct VerifierMetrics {
    registry: Registry,
    /// Attested requests recomputed.
    pub checked: Counter,
    /// Recomputed packets that differed from the agreed one.
    pub mismatches: Counter,
    /// Challenges this verifier opened.
    pub challenges: Counter,
    /// Committee votes cast.
    pub votes: Counter,
    /// Challenges resolved by this verifier's `Resolve`.
    pub resolved: Counter,
    /// Requests whose inputs no source gave.
    pub inputs_unavailable: Counter,
    /// What this verifier can claim in the bond denom: rewards, returned bonds, operators'
    /// shares of the requests it won.
    pub earned: Gauge,
    /// This verifier's active bond.
    pub bonded: Gauge,
    /// Seconds to recompute one packet.
    pub recompute_seconds: Histogram,
}

impl Default for VerifierMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl VerifierMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tributary_verifier");
        let m = VerifierMetrics {
            registry: Registry::default(),
            checked: Counter::default(),
            mismatches: Counter::default(),
            challenges: Counter::default(),
            votes: Counter::default(),
            resolved: Counter::default(),
            inputs_unavailable: Counter::default(),
            earned: Gauge::default(),
            bonded: Gauge::default(),
            recompute_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
        };
        registry.register("checked", "Attested requests recomputed", m.checked.clone());
        registry.register(
            "mismatches",
            "Recomputed packets that differed from the agreed packet",
            m.mismatches.clone(),
        );
        registry.register("challenges", "Challenges opened", m.challenges.clone());
        registry.register("votes", "Committee votes cast", m.votes.clone());
        registry.register(
            "resolved",
            "Challenges resolved by this verifier",
            m.resolved.clone(),
        );
        registry.register(
            "inputs_unavailable",
            "Sampled requests whose prompt and completion no source gave",
            m.inputs_unavailable.clone(),
        );
        registry.register(
            "earned",
            "Claimable balance in the bond denom",
            m.earned.clone(),
        );
        registry.register("bonded", "Active bond", m.bonded.clone());
        registry.register(
            "recompute_seconds",
            "Time to recompute one packet",
            m.recompute_seconds.clone(),
        );
        VerifierMetrics { registry, ..m }
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// What `/status` of a verifier reports.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct VerifierStatus {
    pub address: String,
    pub checked: u64,
    pub mismatches: u64,
    pub challenges: u64,
    pub votes: u64,
    pub resolved: u64,
    pub earned: i64,
    pub bonded: i64,
    /// Gas used by this verifier's last transaction of each kind (`challenge`, `reveal`,
    /// `vote`, `resolve`, `bond`).
    pub gas_used: BTreeMap<String, u64>,
    /// Median seconds to recompute one packet, over the last recomputations.
    pub recompute_seconds_p50: Option<f64>,
}

/// Why a round of the verifier stopped early.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    #[error("engine: {0}")]
    Engine(String),
}

/// A running verifier.
pub struct Verifier {
    client: Arc<Client>,
    payout: String,
    signer: Signer,
    engine: Arc<dyn EngineBackend>,
    served: BTreeSet<(u64, u32)>,
    config: VerifierConfig,
    pub metrics: Arc<VerifierMetrics>,
    http: reqwest::Client,
    /// Requests already recomputed, or not sampled, with the packet hash they were checked at.
    checked: Mutex<BTreeMap<u64, HexBinary>>,
    /// Inputs of the requests this verifier challenged, for the reveal.
    kept_inputs: Mutex<BTreeMap<u64, RequestInputs>>,
    /// Gas of the last transaction of each kind.
    gas_used: std::sync::Mutex<BTreeMap<String, u64>>,
    /// The last recomputation times, in seconds.
    recompute_times: std::sync::Mutex<std::collections::VecDeque<f64>>,
}

/// How many recomputation times `/status` takes its median over.
const RECOMPUTE_WINDOW: usize = 1_000;

impl Verifier {
    pub fn new(
        client: Arc<Client>,
        payout: &str,
        signer: Signer,
        engine: Arc<dyn EngineBackend>,
        served: BTreeSet<(u64, u32)>,
        config: VerifierConfig,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(SOURCE_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Verifier {
            client,
            payout: payout.to_string(),
            signer,
            engine,
            served,
            config,
            metrics: Arc::new(VerifierMetrics::new()),
            http,
            checked: Mutex::new(BTreeMap::new()),
            kept_inputs: Mutex::new(BTreeMap::new()),
            gas_used: std::sync::Mutex::new(BTreeMap::new()),
            recompute_times: std::sync::Mutex::new(std::collections::VecDeque::new()),
        })
    }

    pub fn address(&self) -> String {
        self.signer.address().to_string()
    }

    pub fn status(&self) -> VerifierStatus {
        let m = &self.metrics;
        VerifierStatus {
            address: self.address(),
            checked: m.checked.get(),
            mismatches: m.mismatches.get(),
            challenges: m.challenges.get(),
            votes: m.votes.get(),
            resolved: m.resolved.get(),
            earned: m.earned.get(),
            bonded: m.bonded.get(),
            gas_used: self
                .gas_used
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            recompute_seconds_p50: {
                let times = self
                    .recompute_times
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let mut sorted: Vec<f64> = times.iter().copied().collect();
                sorted.sort_by(f64::total_cmp);
                sorted.get(sorted.len() / 2).copied()
            },
        }
    }

    /// Rounds until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        let pause = Duration::from_millis(self.config.poll_ms);
        loop {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "verifier round stopped early; retrying");
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// One pass over bonds, attested requests, committees and resolutions.
    pub async fn round(&self) -> Result<(), VerifyError> {
        let params: VerificationParams = self.query(&QueryMsg::Verification {}).await?;
        self.keep_bonded(&params).await?;
        self.check_attested(&params).await?;
        self.answer_challenges().await?;
        self.observe_earnings(&params).await?;
        Ok(())
    }

    async fn query<R: serde::de::DeserializeOwned>(&self, msg: &QueryMsg) -> Result<R, ChainError> {
        self.client.payout(&self.payout).query(msg).await
    }

    async fn execute(&self, msg: &ExecuteMsg, funds: Vec<Coin>) -> Result<(), ChainError> {
        let outcome = self
            .client
            .payout(&self.payout)
            .execute(&self.signer, msg, funds)
            .await?;
        let kind = match msg {
            ExecuteMsg::Challenge { .. } => "challenge",
            ExecuteMsg::RevealInputs { .. } => "reveal",
            ExecuteMsg::Vote { .. } => "vote",
            ExecuteMsg::Resolve { .. } => "resolve",
            ExecuteMsg::Bond {} => "bond",
            _ => "other",
        };
        tracing::info!(kind, gas_used = outcome.gas_used, tx = %outcome.hash, "transaction included");
        self.gas_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind.to_string(), outcome.gas_used);
        Ok(())
    }

    async fn keep_bonded(&self, params: &VerificationParams) -> Result<(), VerifyError> {
        let bond: BondInfo = self
            .query(&QueryMsg::BondOf {
                address: self.address(),
            })
            .await?;
        let mut active = bond.active;
        if self.config.auto_bond && active < params.min_verifier_bond {
            let missing = params.min_verifier_bond - active;
            self.execute(
                &ExecuteMsg::Bond {},
                vec![coin(missing.u128(), &params.bond_denom)?],
            )
            .await?;
            tracing::info!(amount = %missing, denom = %params.bond_denom, "bonded as a verifier");
            active = params.min_verifier_bond;
        }
        self.metrics.bonded.set(gauge(active));
        Ok(())
    }

    /// Recomputes the sampled attested requests not checked yet and challenges mismatches.
    async fn check_attested(&self, params: &VerificationParams) -> Result<(), VerifyError> {
        let now = self.chain_seconds().await?;
        let mut start_after = None;
        loop {
            let page: RequestsResponse = self
                .query(&QueryMsg::Requests {
                    status: Some(RequestStatus::Attested),
                    payer: None,
                    start_after,
                    limit: Some(50),
                })
                .await?;
            let Some(last) = page.requests.last() else {
                return Ok(());
            };
            start_after = Some(last.id);
            for request in page.requests {
                self.check_request(params, &request, now).await?;
            }
        }
    }

    async fn check_request(
        &self,
        params: &VerificationParams,
        request: &InferenceRequest,
        now: u64,
    ) -> Result<(), VerifyError> {
        let (Some(agreed), Some(closes)) = (&request.agreed_packet, request.finalizable_at) else {
            return Ok(());
        };
        if self.checked.lock().await.get(&request.id) == Some(agreed) {
            return Ok(());
        }
        let served = self
            .served
            .contains(&(request.model_id, request.model_version));
        if !served || !sampled(&self.address(), request.id, self.config.sample_rate) {
            self.checked.lock().await.insert(request.id, agreed.clone());
            return Ok(());
        }
        if closes.seconds() <= now {
            // Too late to challenge; nothing to gain from recomputing.
            self.checked.lock().await.insert(request.id, agreed.clone());
            return Ok(());
        }
        let terms: RequestTerms = self
            .query(&QueryMsg::Terms {
                request_id: request.id,
            })
            .await?;
        let me = self.address();
        if terms.developer.as_str() == me || terms.attestors.iter().any(|a| a.as_str() == me) {
            self.checked.lock().await.insert(request.id, agreed.clone());
            return Ok(());
        }
        let Some(inputs) = self.fetch_inputs(request, &terms, now).await else {
            // Retried next round while the window is open.
            self.metrics.inputs_unavailable.inc();
            return Ok(());
        };
        let packet = self.recompute(request, &terms, &inputs).await?;
        self.metrics.checked.inc();
        self.checked.lock().await.insert(request.id, agreed.clone());
        let Some(packet) = packet else {
            return Ok(());
        };
        let hash = packet_hash(&packet);
        if hash == *agreed {
            tracing::info!(request_id = request.id, "recomputed packet agrees");
            return Ok(());
        }
        self.metrics.mismatches.inc();
        tracing::warn!(
            request_id = request.id,
            agreed = %agreed.to_hex(),
            recomputed = %hash.to_hex(),
            "the agreed packet differs from the recomputed one: challenging"
        );
        self.execute(
            &ExecuteMsg::Challenge {
                request_id: request.id,
                packet,
            },
            vec![coin(params.challenge_bond.u128(), &params.bond_denom)?],
        )
        .await?;
        self.metrics.challenges.inc();
        self.kept_inputs
            .lock()
            .await
            .insert(request.id, inputs.clone());
        self.reveal(&inputs).await
    }

    async fn reveal(&self, inputs: &RequestInputs) -> Result<(), VerifyError> {
        self.execute(
            &ExecuteMsg::RevealInputs {
                request_id: inputs.request_id,
                prompt: inputs.prompt.clone(),
                completion: HexBinary::from_hex(&inputs.completion_hex)
                    .map_err(|e| VerifyError::Engine(format!("completion_hex: {e}")))?,
            },
            vec![],
        )
        .await?;
        tracing::info!(
            request_id = inputs.request_id,
            "revealed the disputed inputs"
        );
        Ok(())
    }

    /// The inputs of `request` from the first source that gives them and matches the prompt
    /// hash the payer committed to.
    async fn fetch_inputs(
        &self,
        request: &InferenceRequest,
        terms: &RequestTerms,
        now: u64,
    ) -> Option<RequestInputs> {
        for source in self.sources(terms) {
            match self.fetch_from(&source, request.id, now).await {
                Ok(inputs)
                    if sha256(inputs.prompt.as_bytes()).as_slice()
                        == request.prompt_hash.as_slice() =>
                {
                    return Some(inputs)
                }
                Ok(_) => {
                    tracing::warn!(source = %source.url, request_id = request.id, "the source's prompt does not match the paid prompt hash");
                }
                Err(e) => {
                    tracing::debug!(source = %source.url, request_id = request.id, error = %e, "no inputs from this source");
                }
            }
        }
        None
    }

    /// The configured sources run by one of the request's attestors.
    fn sources(&self, terms: &RequestTerms) -> Vec<InputSource> {
        self.config
            .sources
            .iter()
            .filter(|s| terms.attestors.iter().any(|a| a.as_str() == s.attestor))
            .cloned()
            .collect()
    }

    async fn fetch_from(
        &self,
        source: &InputSource,
        request_id: u64,
        now: u64,
    ) -> Result<RequestInputs, String> {
        let proof = VerifierProof::sign(&self.signer, &source.attestor, request_id, now)
            .map_err(|e| e.to_string())?;
        let mut call = self.http.get(format!(
            "{}/v1/requests/{request_id}/inputs",
            source.url.trim_end_matches('/')
        ));
        for (name, value) in proof.headers() {
            call = call.header(name, value);
        }
        let response = call.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }

    /// The packet this verifier's engine computes for `request` from `inputs`; `None` when its
    /// engine cannot stand for the model version (other weights) or generates another
    /// completion (a challenge must be about the same completion).
    async fn recompute(
        &self,
        request: &InferenceRequest,
        terms: &RequestTerms,
        inputs: &RequestInputs,
    ) -> Result<Option<AttributionPacket>, VerifyError> {
        let completion_request = CompletionRequest {
            model: self.engine.model_name().to_string(),
            prompt: inputs.prompt.clone(),
            sampling: SamplingRequest::exactly(&Sampling::for_paid_request(request.id)),
            request_id: Some(request.id),
            model_id: Some(request.model_id),
            model_version: Some(request.model_version),
            method: Some(terms.method_id.clone()),
        };
        let started = Instant::now();
        let response = self
            .engine
            .complete(&completion_request)
            .await
            .map_err(|e| VerifyError::Engine(e.to_string()))?;
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.recompute_seconds.observe(seconds);
        {
            let mut times = self
                .recompute_times
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if times.len() == RECOMPUTE_WINDOW {
                times.pop_front();
            }
            times.push_back(seconds);
        }
        let Some(packet) = response.packet else {
            return Err(VerifyError::Engine("the engine gave no packet".into()));
        };
        if packet.weights_hash != terms.weights_hash {
            tracing::error!(
                request_id = request.id,
                "this verifier's engine has other weights than the model version: it cannot check it"
            );
            return Ok(None);
        }
        if !response
            .completion_hex
            .eq_ignore_ascii_case(&inputs.completion_hex)
        {
            tracing::warn!(
                request_id = request.id,
                "the served completion is not the one the model generates for this request"
            );
            return Ok(None);
        }
        Ok(Some(packet))
    }

    /// Votes where drawn, reveals where this verifier challenged, resolves what is ready.
    async fn answer_challenges(&self) -> Result<(), VerifyError> {
        let now = self.chain_seconds().await?;
        let me = self.address();
        let mut start_after = None;
        loop {
            let page: ChallengesResponse = self
                .query(&QueryMsg::OpenChallenges {
                    start_after,
                    limit: Some(50),
                })
                .await?;
            let Some(last) = page.challenges.last() else {
                return Ok(());
            };
            start_after = Some(last.request_id);
            for challenge in page.challenges {
                let id = challenge.request_id;
                match challenge.phase {
                    ChallengePhase::AwaitingInputs if challenge.challenger.as_str() == me => {
                        let kept = self.kept_inputs.lock().await.get(&id).cloned();
                        if let Some(inputs) = kept {
                            self.reveal(&inputs).await?;
                        }
                    }
                    ChallengePhase::Voting
                        if challenge.committee.iter().any(|m| m.as_str() == me)
                            && !challenge.votes.iter().any(|v| v.member.as_str() == me) =>
                    {
                        self.vote(&challenge).await?;
                    }
                    _ => {}
                }
                if ready(&challenge, now) {
                    let resolved = self
                        .execute(&ExecuteMsg::Resolve { request_id: id }, vec![])
                        .await;
                    match resolved {
                        Ok(()) => {
                            self.metrics.resolved.inc();
                            tracing::info!(request_id = id, "resolved the challenge");
                        }
                        // Someone else resolved it first, or a vote is still due.
                        Err(e) => tracing::debug!(request_id = id, error = %e, "not resolved"),
                    }
                }
            }
        }
    }

    async fn vote(&self, challenge: &ChallengeInfo) -> Result<(), VerifyError> {
        let id = challenge.request_id;
        let Some(revealed) = &challenge.inputs else {
            return Ok(());
        };
        let request: InferenceRequest = self.query(&QueryMsg::Request { request_id: id }).await?;
        if !self
            .served
            .contains(&(request.model_id, request.model_version))
        {
            tracing::warn!(
                request_id = id,
                "drawn for a model version this verifier does not serve"
            );
            return Ok(());
        }
        let terms: RequestTerms = self.query(&QueryMsg::Terms { request_id: id }).await?;
        let inputs = RequestInputs {
            request_id: id,
            prompt: revealed.prompt.clone(),
            completion_hex: revealed.completion.to_hex(),
        };
        let Some(packet) = self.recompute(&request, &terms, &inputs).await? else {
            return Ok(());
        };
        let hash = packet_hash(&packet);
        if hash != challenge.agreed_packet && hash != challenge.challenger_packet {
            tracing::warn!(request_id = id, recomputed = %hash.to_hex(), "neither packet of the challenge is the recomputed one: not voting");
            return Ok(());
        }
        self.execute(
            &ExecuteMsg::Vote {
                request_id: id,
                packet_hash: hash.clone(),
            },
            vec![],
        )
        .await?;
        self.metrics.votes.inc();
        tracing::info!(
            request_id = id,
            with_challenger = hash == challenge.challenger_packet,
            "voted"
        );
        Ok(())
    }

    async fn observe_earnings(&self, params: &VerificationParams) -> Result<(), VerifyError> {
        let balances: BalancesResponse = self
            .query(&QueryMsg::Balances {
                address: self.address(),
                start_after: None,
                limit: None,
            })
            .await?;
        let asset = AssetInfo::native(&params.bond_denom);
        let earned = balances
            .balances
            .iter()
            .filter(|b| b.asset == asset)
            .map(|b| b.amount)
            .fold(Uint128::zero(), |a, b| a.saturating_add(b));
        self.metrics.earned.set(gauge(earned));
        Ok(())
    }

    async fn chain_seconds(&self) -> Result<u64, ChainError> {
        Ok(self.client.latest_block().await?.time_nanos / 1_000_000_000)
    }
}

/// An attestor's duty when one of its packets is challenged: reveal the prompt and completion
/// it served, so that the committee can recompute them. Without a reveal the request is
/// refunded and the attestor goes unpaid. One pass over the open challenges.
pub async fn reveal_round(
    client: &Client,
    payout: &str,
    signer: &Signer,
    outbox: &crate::outbox::Outbox,
) -> Result<(), String> {
    let contract = client.payout(payout);
    let mut start_after = None;
    loop {
        let page: ChallengesResponse = contract
            .query(&QueryMsg::OpenChallenges {
                start_after,
                limit: Some(50),
            })
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.challenges.last() else {
            return Ok(());
        };
        start_after = Some(last.request_id);
        for challenge in page.challenges {
            if challenge.phase != ChallengePhase::AwaitingInputs {
                continue;
            }
            let id = challenge.request_id;
            let prompt = outbox.prompt(id).map_err(|e| e.to_string())?;
            let response = outbox.response(id).map_err(|e| e.to_string())?;
            let (Some(prompt), Some(response)) = (prompt, response) else {
                continue;
            };
            let Ok(completion) = HexBinary::from_hex(&response.completion_hex) else {
                continue;
            };
            let reveal = ExecuteMsg::RevealInputs {
                request_id: id,
                prompt: prompt.prompt,
                completion,
            };
            match contract.execute(signer, &reveal, vec![]).await {
                Ok(_) => tracing::info!(
                    request_id = id,
                    "revealed the inputs of a challenged request"
                ),
                // The challenger may have revealed them in the meantime.
                Err(e) => tracing::debug!(request_id = id, error = %e, "inputs not revealed"),
            }
        }
    }
}

/// `/healthz`, `/metrics` and `/status` of a verifier.
pub fn verifier_router(verifier: Arc<Verifier>) -> axum::Router {
    use axum::extract::State;
    use axum::routing::get;
    async fn metrics(State(v): State<Arc<Verifier>>) -> impl axum::response::IntoResponse {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            v.metrics.encode(),
        )
    }
    async fn status(State(v): State<Arc<Verifier>>) -> axum::Json<VerifierStatus> {
        axum::Json(v.status())
    }
    axum::Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(verifier)
}

/// Whether a challenge can be resolved at chain time `now`.
fn ready(challenge: &ChallengeInfo, now: u64) -> bool {
    match challenge.phase {
        ChallengePhase::AwaitingInputs => now >= challenge.reveal_by.seconds(),
        ChallengePhase::Voting => {
            challenge.votes.len() == challenge.committee.len()
                || challenge.vote_by.is_some_and(|at| now >= at.seconds())
        }
        ChallengePhase::Resolved => false,
    }
}

/// Whether `address` recomputes `request_id` at `rate`: a hash neither the attestors nor the
/// payer can steer, and that differs between verifiers.
pub fn sampled(address: &str, request_id: u64, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let mut data = address.as_bytes().to_vec();
    data.extend_from_slice(&request_id.to_be_bytes());
    let digest = sha256(&data);
    let mut word = [0u8; 8];
    word.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(word) as f64) < rate * u64::MAX as f64
}

fn packet_hash(packet: &AttributionPacket) -> HexBinary {
    // A packet the engine produced always hashes: its fields are fixed-size where it matters.
    HexBinary::from(packet.packet_hash().map(|h| h.to_vec()).unwrap_or_default())
}

fn gauge(amount: Uint128) -> i64 {
    i64::try_from(amount.u128()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_takes_about_the_rate_and_differs_between_verifiers() {
        let taken = |address: &str| {
            (0..10_000)
                .filter(|id| sampled(address, *id, 0.25))
                .collect::<BTreeSet<u64>>()
        };
        let (a, b) = (taken("trib1a"), taken("trib1b"));
        for set in [&a, &b] {
            assert!((2_200..2_800).contains(&set.len()), "{}", set.len());
        }
        assert_ne!(a, b);
        assert!((0..100).all(|id| sampled("trib1a", id, 1.0)));
        assert!((0..100).all(|id| !sampled("trib1a", id, 0.0)));
    }
}

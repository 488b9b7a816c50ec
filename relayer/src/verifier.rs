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
//! Settlement batches are checked the same way, inference by inference: the verifier reads a
//! batch's inferences from the transaction that settled it (checked against the batch's root,
//! see [`tributary_client::BatchContents`]), samples them by their request ids, fetches each
//! sampled one's inputs from the batch's attestor, recomputes it under its voucher's sampling
//! id ([`tributary_types::voucher::sampling_id`]) and challenges a wrong result with its
//! inclusion proof (`ChallengeBatchItem`). A challenged inference is a request from then on,
//! and committees vote on it as on any other.
//!
//! The engine must be the model version's own (its weights hash is checked against the
//! request's terms for every packet): a verifier with other weights cannot agree with anyone.

use std::collections::BTreeMap;
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
use tributary_client::{coin, BatchContents, Client, Coin, Error as ChainError, Signer};
use tributary_types::batch::{BatchInfo, BatchResult, BatchStatus, BatchesResponse};
use tributary_types::payout::{
    BalancesResponse, ConfigResponse, ExecuteMsg, InferenceRequest, QueryMsg, RequestStatus,
    RequestTerms, RequestsResponse,
};
use tributary_types::registry::ModelVersion;
use tributary_types::verification::{
    BondInfo, ChallengeInfo, ChallengePhase, ChallengesResponse, VerificationParams,
};
use tributary_types::{sha256, AssetInfo, AttributionPacket};

use crate::config::{InputSource, VerifierConfig};
use crate::engine::EngineBackend;
use crate::inputs::{RequestInputs, VerifierProof};
use crate::submission::SubmitError;

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
    served: BTreeMap<(u64, u32), String>,
    config: VerifierConfig,
    pub metrics: Arc<VerifierMetrics>,
    http: reqwest::Client,
    /// Requests already recomputed, or not sampled, with the packet hash they were checked at
    /// (for a batch's inference, its leaf hash).
    checked: Mutex<BTreeMap<u64, HexBinary>>,
    /// Every batch below this id is finalized, past its window or checked.
    batches_done_below: Mutex<u64>,
    /// Batches being checked, with their inferences as read from their transactions.
    batch_contents: Mutex<BTreeMap<u64, Arc<BatchContents>>>,
    /// Model versions as the registry holds them.
    versions: Mutex<BTreeMap<(u64, u32), ModelVersion>>,
    /// Inputs of the requests this verifier challenged, for the reveal.
    kept_inputs: Mutex<BTreeMap<u64, RequestInputs>>,
    /// Gas of the last transaction of each kind.
    gas_used: std::sync::Mutex<BTreeMap<String, u64>>,
    /// The last recomputation times, in seconds.
    recompute_times: std::sync::Mutex<std::collections::VecDeque<f64>>,
    /// Gateways attestors publish in the registry, with when they were read.
    published: Mutex<BTreeMap<String, (std::time::Instant, Option<String>)>>,
}

/// How long a gateway read from the registry is used before it is read again.
const PUBLISHED_GATEWAY_TTL: Duration = Duration::from_secs(300);

/// How many recomputation times `/status` takes its median over.
const RECOMPUTE_WINDOW: usize = 1_000;

impl Verifier {
    pub fn new(
        client: Arc<Client>,
        payout: &str,
        signer: Signer,
        engine: Arc<dyn EngineBackend>,
        served: BTreeMap<(u64, u32), String>,
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
            batches_done_below: Mutex::new(1),
            batch_contents: Mutex::new(BTreeMap::new()),
            versions: Mutex::new(BTreeMap::new()),
            kept_inputs: Mutex::new(BTreeMap::new()),
            gas_used: std::sync::Mutex::new(BTreeMap::new()),
            recompute_times: std::sync::Mutex::new(std::collections::VecDeque::new()),
            published: Mutex::new(BTreeMap::new()),
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
        self.check_batches(&params).await?;
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
            ExecuteMsg::Challenge { .. } | ExecuteMsg::ChallengeBatchItem { .. } => "challenge",
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
            .contains_key(&(request.model_id, request.model_version));
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
        let Some(inputs) = self
            .fetch_inputs(request.id, &request.prompt_hash, &terms.attestors, now)
            .await
        else {
            // Retried next round while the window is open.
            self.metrics.inputs_unavailable.inc();
            return Ok(());
        };
        let packet = self
            .recompute(&Subject::request(request, &terms), &inputs)
            .await?;
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

    /// The inputs of request `request_id` from the first source run by one of `attestors` that
    /// gives them and matches the prompt hash the payer committed to.
    async fn fetch_inputs(
        &self,
        request_id: u64,
        prompt_hash: &HexBinary,
        attestors: &[cosmwasm_std::Addr],
        now: u64,
    ) -> Option<RequestInputs> {
        for source in self.sources(attestors).await {
            match self.fetch_from(&source, request_id, now).await {
                Ok(inputs)
                    if sha256(inputs.prompt.as_bytes()).as_slice() == prompt_hash.as_slice() =>
                {
                    return Some(inputs)
                }
                Ok(_) => {
                    tracing::warn!(source = %source.url, request_id, "the source's prompt does not match the paid prompt hash");
                }
                Err(e) => {
                    tracing::debug!(source = %source.url, request_id, error = %e, "no inputs from this source");
                }
            }
        }
        None
    }

    /// The sources run by one of `attestors`: those configured, then, for an attestor with
    /// none configured, the gateway it publishes in the model registry.
    async fn sources(&self, attestors: &[cosmwasm_std::Addr]) -> Vec<InputSource> {
        let mut sources: Vec<InputSource> = self
            .config
            .sources
            .iter()
            .filter(|s| attestors.iter().any(|a| a.as_str() == s.attestor))
            .cloned()
            .collect();
        for attestor in attestors {
            if sources.iter().any(|s| s.attestor == attestor.as_str()) {
                continue;
            }
            if let Some(url) = self.published_gateway(attestor.as_str()).await {
                sources.push(InputSource {
                    url,
                    attestor: attestor.to_string(),
                });
            }
        }
        sources
    }

    /// The gateway `attestor` publishes in the registry, read at most every
    /// [`PUBLISHED_GATEWAY_TTL`]; `None` when it publishes none or the registry cannot be read.
    async fn published_gateway(&self, attestor: &str) -> Option<String> {
        if let Some((read_at, url)) = self.published.lock().await.get(attestor) {
            if read_at.elapsed() < PUBLISHED_GATEWAY_TTL {
                return url.clone();
            }
        }
        let config: ConfigResponse = self.query(&QueryMsg::Config {}).await.ok()?;
        let url = match self
            .client
            .registry(config.registry_contract.as_str())
            .gateway(attestor)
            .await
        {
            Ok(published) => published.map(|g| g.url),
            Err(e) => {
                tracing::debug!(attestor, error = %e, "reading the attestor's gateway");
                return None;
            }
        };
        self.published.lock().await.insert(
            attestor.to_string(),
            (std::time::Instant::now(), url.clone()),
        );
        url
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

    /// The packet this verifier's engine computes for `subject` from `inputs`, under the
    /// subject's request id; `None` when its engine cannot stand for the model version (other
    /// weights) or generates another completion (a challenge must be about the same
    /// completion).
    async fn recompute(
        &self,
        subject: &Subject<'_>,
        inputs: &RequestInputs,
    ) -> Result<Option<AttributionPacket>, VerifyError> {
        let completion_request = CompletionRequest {
            model: self
                .served
                .get(&(subject.model_id, subject.version))
                .cloned()
                .unwrap_or_else(|| self.engine.model_name().to_string()),
            prompt: inputs.prompt.clone(),
            sampling: SamplingRequest::exactly(&Sampling::for_paid_request(subject.sampling_id)),
            request_id: Some(subject.sampling_id),
            model_id: Some(subject.model_id),
            model_version: Some(subject.version),
            method: Some(subject.method_id.to_string()),
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
        let Some(mut packet) = response.packet else {
            return Err(VerifyError::Engine("the engine gave no packet".into()));
        };
        let request_id = subject.request_id;
        if packet.weights_hash != *subject.weights_hash {
            tracing::error!(
                request_id,
                "this verifier's engine has other weights than the model version: it cannot check it"
            );
            return Ok(None);
        }
        if !response
            .completion_hex
            .eq_ignore_ascii_case(&inputs.completion_hex)
        {
            tracing::warn!(
                request_id,
                "the served completion is not the one the model generates for this request"
            );
            return Ok(None);
        }
        // A batch's inference was computed under its sampling id; on chain it is this request.
        packet.request_id = request_id;
        Ok(Some(packet))
    }

    /// Recomputes the sampled inferences of the settlement batches still open and challenges
    /// the wrong ones.
    async fn check_batches(&self, params: &VerificationParams) -> Result<(), VerifyError> {
        let now = self.chain_seconds().await?;
        let first = *self.batches_done_below.lock().await;
        let mut start_after = first.checked_sub(1).filter(|id| *id > 0);
        let mut done_below = Some(first);
        loop {
            let page: BatchesResponse = self
                .query(&QueryMsg::Batches {
                    start_after,
                    limit: Some(50),
                })
                .await?;
            let Some(last) = page.batches.last() else {
                break;
            };
            start_after = Some(last.id);
            for batch in page.batches {
                let done = self.check_batch(params, &batch, now).await?;
                if done {
                    self.batch_contents.lock().await.remove(&batch.id);
                }
                done_below = match done_below {
                    Some(below) if done && batch.id == below => Some(below + 1),
                    _ => None,
                };
                if let Some(below) = done_below {
                    *self.batches_done_below.lock().await = below;
                }
            }
        }
        Ok(())
    }

    /// Checks the sampled inferences of `batch` not checked yet; whether nothing is left to
    /// check in it.
    async fn check_batch(
        &self,
        params: &VerificationParams,
        batch: &BatchInfo,
        now: u64,
    ) -> Result<bool, VerifyError> {
        let me = self.address();
        if batch.status == BatchStatus::Finalized
            || batch.finalizable_at.seconds() <= now
            || batch.attestor.as_str() == me
            || !self.served.contains_key(&(batch.model_id, batch.version))
        {
            return Ok(true);
        }
        let model = self.model_version(batch.model_id, batch.version).await?;
        if model.developer.as_str() == me {
            return Ok(true);
        }
        let waiting: Vec<u64> = {
            let checked = self.checked.lock().await;
            (0..u64::from(batch.count))
                .map(|index| batch.first_request_id + index)
                .filter(|id| {
                    sampled(&me, *id, self.config.sample_rate)
                        && !checked.contains_key(id)
                        && !batch.challenged.contains(id)
                })
                .collect()
        };
        if waiting.is_empty() {
            return Ok(true);
        }
        let Some(contents) = self.contents_of(batch).await? else {
            self.metrics.inputs_unavailable.inc();
            return Ok(false);
        };
        let mut all_checked = true;
        for request_id in waiting {
            let Some(item) = contents.item_of_request(request_id) else {
                continue;
            };
            let Some(leaf_hash) = contents.leaf_hash(item.index) else {
                continue;
            };
            let attestor = std::slice::from_ref(&batch.attestor);
            let Some(inputs) = self
                .fetch_inputs(request_id, &item.leaf.prompt_hash, attestor, now)
                .await
            else {
                self.metrics.inputs_unavailable.inc();
                all_checked = false;
                continue;
            };
            let subject = Subject {
                request_id,
                sampling_id: item.sampling_id(batch),
                model_id: batch.model_id,
                version: batch.version,
                method_id: &model.method.id,
                weights_hash: &model.weights_hash,
            };
            let packet = self.recompute(&subject, &inputs).await?;
            self.metrics.checked.inc();
            self.checked.lock().await.insert(request_id, leaf_hash);
            let Some(packet) = packet else {
                continue;
            };
            let mine = BatchResult {
                output_hash: packet.output_hash,
                scores_root: packet.scores_root,
                entries: packet.entries,
            };
            if mine == item.leaf.result {
                tracing::info!(
                    batch_id = batch.id,
                    request_id,
                    "recomputed batch result agrees"
                );
                continue;
            }
            self.metrics.mismatches.inc();
            tracing::warn!(
                batch_id = batch.id,
                request_id,
                "a batch's result differs from the recomputed one: challenging"
            );
            let Some(proof) = contents.proof(item.index) else {
                continue;
            };
            let challenge = ExecuteMsg::ChallengeBatchItem {
                batch_id: batch.id,
                index: item.index,
                leaf: item.leaf.clone(),
                proof,
                result: mine,
            };
            let bond = vec![coin(params.challenge_bond.u128(), &params.bond_denom)?];
            match self.execute(&challenge, bond).await {
                Ok(()) => {}
                // Another verifier challenged it first, or the window closed meanwhile.
                Err(ChainError::Contract { message }) => {
                    tracing::warn!(batch_id = batch.id, request_id, error = %message, "challenge refused");
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            self.metrics.challenges.inc();
            self.kept_inputs
                .lock()
                .await
                .insert(request_id, inputs.clone());
            self.reveal(&inputs).await?;
        }
        Ok(all_checked)
    }

    /// `batch`'s inferences, read once from its transaction; `None` while no node gives them.
    async fn contents_of(
        &self,
        batch: &BatchInfo,
    ) -> Result<Option<Arc<BatchContents>>, VerifyError> {
        if let Some(known) = self.batch_contents.lock().await.get(&batch.id) {
            return Ok(Some(known.clone()));
        }
        match self.client.payout(&self.payout).batch_contents(batch).await {
            Ok(contents) => {
                let contents = Arc::new(contents);
                self.batch_contents
                    .lock()
                    .await
                    .insert(batch.id, contents.clone());
                Ok(Some(contents))
            }
            Err(e @ ChainError::BatchUnavailable { .. }) => {
                tracing::warn!(batch_id = batch.id, error = %e, "cannot check the batch yet");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The settlement batch whose inferences include request `request_id`, if any: batch ids
    /// and first request ids grow together, so a binary search over the ids finds it.
    async fn batch_of_request(&self, request_id: u64) -> Result<Option<BatchInfo>, VerifyError> {
        let batch = |id: u64| async move {
            match self
                .query::<BatchInfo>(&QueryMsg::Batch { batch_id: id })
                .await
            {
                Ok(batch) => Ok(Some(batch)),
                Err(ChainError::Contract { .. }) => Ok(None),
                Err(e) => Err(VerifyError::from(e)),
            }
        };
        // The last batch id: doubling until absent, then halving.
        let mut high = 1u64;
        while batch(high).await?.is_some() {
            high = high.saturating_mul(2);
        }
        let (mut low, mut found) = (1u64, None);
        while low < high {
            let middle = low + (high - low) / 2;
            match batch(middle).await? {
                Some(b) if b.first_request_id <= request_id => {
                    low = middle + 1;
                    found = Some(b);
                }
                _ => high = middle,
            }
        }
        Ok(found.filter(|b| request_id < b.first_request_id + u64::from(b.count)))
    }

    /// The id request `request_id` was sampled under: its own, or its voucher's when it was a
    /// batch's inference; `None` when the batch's transaction cannot be read.
    async fn sampling_id_of(&self, request_id: u64) -> Result<Option<u64>, VerifyError> {
        let cached = self.batch_contents.lock().await.values().find_map(|c| {
            c.item_of_request(request_id)
                .map(|item| item.sampling_id(&c.batch))
        });
        if let Some(id) = cached {
            return Ok(Some(id));
        }
        let Some(batch) = self.batch_of_request(request_id).await? else {
            return Ok(Some(request_id));
        };
        let Some(contents) = self.contents_of(&batch).await? else {
            return Ok(None);
        };
        Ok(contents
            .item_of_request(request_id)
            .map(|item| item.sampling_id(&batch)))
    }

    async fn model_version(
        &self,
        model_id: u64,
        version: u32,
    ) -> Result<ModelVersion, VerifyError> {
        if let Some(known) = self.versions.lock().await.get(&(model_id, version)) {
            return Ok(known.clone());
        }
        let config: ConfigResponse = self.query(&QueryMsg::Config {}).await?;
        let fetched = self
            .client
            .registry(config.registry_contract.as_str())
            .model_version(model_id, version)
            .await?;
        self.versions
            .lock()
            .await
            .insert((model_id, version), fetched.clone());
        Ok(fetched)
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
            .contains_key(&(request.model_id, request.model_version))
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
        let Some(sampling_id) = self.sampling_id_of(id).await? else {
            tracing::warn!(
                request_id = id,
                "the batch of this request cannot be read yet: not voting"
            );
            return Ok(());
        };
        let subject = Subject {
            sampling_id,
            ..Subject::request(&request, &terms)
        };
        let Some(packet) = self.recompute(&subject, &inputs).await? else {
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
            let (prompt, completion_hex) = match crate::submission::served_inputs(outbox, id) {
                Ok(inputs) => inputs,
                // Not served here, or not answered yet.
                Err(SubmitError::NoPrompt(_) | SubmitError::StillQueued(_)) => continue,
                Err(e) => return Err(e.to_string()),
            };
            let Ok(completion) = HexBinary::from_hex(&completion_hex) else {
                continue;
            };
            let reveal = ExecuteMsg::RevealInputs {
                request_id: id,
                prompt,
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

/// What a recomputation is of: the request on chain, and the id its engine sampled it under
/// (the request's own, or its voucher's for a batch's inference).
struct Subject<'a> {
    request_id: u64,
    sampling_id: u64,
    model_id: u64,
    version: u32,
    method_id: &'a str,
    weights_hash: &'a HexBinary,
}

impl<'a> Subject<'a> {
    fn request(request: &InferenceRequest, terms: &'a RequestTerms) -> Self {
        Subject {
            request_id: request.id,
            sampling_id: request.id,
            model_id: request.model_id,
            version: request.model_version,
            method_id: &terms.method_id,
            weights_hash: &terms.weights_hash,
        }
    }
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
                .collect::<std::collections::BTreeSet<u64>>()
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

//! The running relayer: a block scanner, the attribution worker ([`crate::attributor`]), one
//! signing loop (commits and finalization) and the payer-facing gateway, all working from the
//! durable outbox.
//!
//! Every task is restartable at any await point: each state change is one outbox transaction,
//! so stopping the process (gracefully or with `kill -9`) loses nothing, and the next start
//! carries on from the outbox.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use thiserror::Error;
use tokio::sync::Notify;
use tributary_client::{
    ChainConfig as ClientConfig, Client, ContractCall, Error as ChainError, Signer, TxLookup,
    TxOptions,
};
use tributary_types::payout::{ExecuteMsg, RequestStatus};
use tributary_types::AttributionPacket;

use crate::attributor::{Attributor, Progress};
use crate::config::Config;
use crate::engine::{EngineBackend, EngineCallError};
use crate::ledger::ChainLedger;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, OutboxError, QueueLimits, RequestRecord};
use crate::submission::{SubmissionRules, Submissions};

/// Blocks a commit transaction stays valid for. Past its timeout height a transaction that is
/// not in a block can never be, so its packets are safe to send again.
pub const TX_TIMEOUT_BLOCKS: u64 = 20;
/// How often the scanner looks for new blocks when no WebSocket event wakes it.
const POLL_INTERVAL: Duration = Duration::from_millis(1000);
/// How often the key's balance is read for `operator_balance`.
const BALANCE_POLL: Duration = Duration::from_secs(30);

/// How often a broadcast transaction is looked up until it is settled.
const CONFIRM_POLL: Duration = Duration::from_millis(250);
/// Longest pause between retries of a failing operation.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often expired requests are pruned from the queues (one block-time query each time).
const EXPIRY_CHECK: Duration = Duration::from_secs(15);
/// Requests of old outboxes whose expiry is looked up on chain per pruning round, at most.
const EXPIRY_LOOKUPS: usize = 32;
/// Most requests one `Finalize` settles (the payout contract's limit).
const MAX_FINALIZE: usize = 50;

/// Why the relayer cannot start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("no RPC endpoint answers: {0}")]
    Unreachable(String),
    #[error(transparent)]
    WrongChain(ChainError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// A chain client configuration from the relayer's `[chain]` section and one RPC URL.
pub fn client_config(config: &Config, rpc_url: &str) -> Result<ClientConfig, StartError> {
    let price = config
        .chain
        .parsed_gas_price()
        .map_err(|e| StartError::Config(format!("chain.gas_price: {e}")))?;
    let mut client = ClientConfig::new(
        &config.chain.id,
        rpc_url,
        &config.chain.bech32_prefix,
        price.amount,
        price.denom,
    );
    client.gas_adjustment = config.chain.gas_adjustment;
    Ok(client)
}

/// Connects to the first configured RPC endpoint that answers and is on the configured chain.
pub async fn connect(config: &Config) -> Result<Client, StartError> {
    let mut reasons = Vec::new();
    for url in &config.chain.rpc {
        match Client::connect(client_config(config, url)?).await {
            Ok(client) => return Ok(client),
            Err(e @ ChainError::WrongChainId { .. }) => return Err(StartError::WrongChain(e)),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    Err(StartError::Unreachable(reasons.join("; ")))
}

/// The relayer's shared state.
pub struct Relayer {
    pub config: Config,
    pub client: Arc<Client>,
    pub signer: Signer,
    pub outbox: Arc<Outbox>,
    pub engine: Arc<dyn EngineBackend>,
    pub metrics: Arc<Metrics>,
    /// The served model versions, each with the engine model serving it.
    engine_models: BTreeMap<(u64, u32), String>,
    attributor: Attributor,
    progress: Arc<Progress>,
    wake_attributor: Arc<Notify>,
    wake_committer: Arc<Notify>,
    /// When this process first saw each request: the start of its commit latency.
    seen_at: Mutex<HashMap<u64, Instant>>,
    /// When each packet became ready: a partial batch waits `max_delay_ms` from the oldest.
    attributed_at: Arc<Mutex<HashMap<u64, Instant>>>,
}

/// A backoff that doubles up to [`MAX_BACKOFF`] and resets on success.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(250))
    }
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
    }
    fn reset(&mut self) {
        self.0 = Duration::from_millis(250);
    }
}

impl Relayer {
    pub fn new(
        config: Config,
        client: Client,
        signer: Signer,
        outbox: Arc<Outbox>,
        engine: Arc<dyn EngineBackend>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let engine_models = config.engine_models(engine.model_name());
        let progress = Arc::new(Progress::default());
        let wake_committer = Arc::new(Notify::new());
        let attributed_at = Arc::new(Mutex::new(HashMap::new()));
        let attributor = Attributor::new(
            outbox.clone(),
            engine.clone(),
            metrics.clone(),
            progress.clone(),
            wake_committer.clone(),
            attributed_at.clone(),
        );
        Relayer {
            config,
            client: Arc::new(client),
            signer,
            outbox,
            engine,
            metrics,
            engine_models,
            attributor,
            progress,
            wake_attributor: Arc::new(Notify::new()),
            wake_committer,
            seen_at: Mutex::new(HashMap::new()),
            attributed_at,
        }
    }

    /// The caps of each queue (requests waiting for their prompt, and for attribution).
    pub fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            per_payer: self.config.gateway.max_waiting_per_payer,
            total: self.config.gateway.max_waiting,
        }
    }

    /// Whether this relayer serves `model_id` version `version`.
    pub fn serves(&self, model_id: u64, version: u32) -> bool {
        self.engine_models.contains_key(&(model_id, version))
    }

    /// The payer-facing side: payment checks on this relayer's chain, kept prompts in its
    /// outbox, completions from its engine.
    pub fn submissions(&self) -> Submissions {
        Submissions::new(
            Arc::new(ChainLedger::new(
                self.client.clone(),
                &self.config.contracts.payout,
            )),
            self.outbox.clone(),
            self.engine_models.clone(),
            SubmissionRules {
                attestor: self.signer.address().to_string(),
                commit_margin_seconds: self.config.gateway.commit_margin_seconds,
                queue: self.queue_limits(),
                response_timeout: Duration::from_millis(self.config.gateway.response_timeout_ms),
            },
            self.wake_attributor.clone(),
            self.progress.clone(),
        )
    }

    fn payout(&self) -> tributary_client::PayoutContract<'_> {
        self.client.payout(&self.config.contracts.payout)
    }

    fn chain_failure(&self, what: &str, e: &dyn std::fmt::Display) {
        self.metrics.retries.inc();
        let message = format!("{what}: {e}");
        tracing::warn!(error = %e, "{what}; retrying");
        self.metrics.set_error(Some(message));
    }

    /// The engine's name of the model serving `model_id` version `version`.
    pub fn engine_model(&self, model_id: u64, version: u32) -> String {
        self.engine_models
            .get(&(model_id, version))
            .cloned()
            .unwrap_or_else(|| self.engine.model_name().to_string())
    }

    /// Checks the key's account and its authorization for every served model, logging what an
    /// operator must fix; none of it stops the relayer (a later funding or registration
    /// fixes it while running).
    pub async fn preflight(&self) {
        let address = self.signer.address().to_string();
        match self.client.account(&address).await {
            Ok(_) => {}
            Err(ChainError::UnknownAccount { .. }) => tracing::error!(
                %address,
                "the relayer's key has no account on chain: fund it before commits can be paid"
            ),
            Err(e) => tracing::warn!(error = %e, "could not read the relayer's account"),
        }
        let registry = self.client.registry(&self.config.contracts.model_registry);
        for &(model_id, version) in self.engine_models.keys() {
            match registry.model_version(model_id, version).await {
                Ok(v) if v.attestors.iter().any(|a| a.as_str() == address) => {}
                Ok(_) => tracing::error!(
                    model_id,
                    version,
                    %address,
                    "this key is not an authorized attestor of the model version: its commits \
                     will be refused"
                ),
                Err(e) => tracing::error!(model_id, version, error = %e, "served model not found"),
            }
        }
    }

    /// Compares what the engine serves with what the registry holds for every served model
    /// version: weights, index and the registered method's parameter hashes. Packets from
    /// other weights or parameters would be refused at commit, after the payer was served, so
    /// a mismatch stops the start with every difference named. An engine that cannot be
    /// reached yet, or a registry that cannot be read, is logged and not checked.
    pub async fn check_engine(&self) -> Result<(), Vec<String>> {
        let registry = self.client.registry(&self.config.contracts.model_registry);
        let mut differences = Vec::new();
        let mut infos = BTreeMap::new();
        for (&(model_id, version), engine_model) in &self.engine_models {
            if !infos.contains_key(engine_model) {
                let info = self.engine.model_info(engine_model).await;
                infos.insert(engine_model.clone(), info);
            }
            let info = match &infos[engine_model] {
                Ok(info) => info,
                // The engine answered, and serves no such model: no packet could be computed.
                Err(EngineCallError::Rejected { message, .. }) => {
                    differences.push(format!("model {model_id} version {version}: {message}"));
                    continue;
                }
                Err(e) => {
                    tracing::warn!(model_id, version, error = %e, "the engine's hashes are not checked against the registry");
                    continue;
                }
            };
            let v = match registry.model_version(model_id, version).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(model_id, version, error = %e, "served model version not read; its hashes are not checked");
                    continue;
                }
            };
            let mut differ = |what: &str, registered: String, served: Option<&str>| {
                if served != Some(registered.as_str()) {
                    differences.push(format!(
                        "model {model_id} version {version}: the registry holds {what} {registered}, the engine's model {:?} has {}",
                        info.name,
                        served.unwrap_or("none")
                    ));
                }
            };
            differ(
                "weights hash",
                v.weights_hash.to_hex(),
                Some(&info.weights_hash),
            );
            differ("index hash", v.index_hash.to_hex(), Some(&info.index_hash));
            if info.params_hashes.is_empty() {
                // An engine from before it listed them: weights and index are still checked.
                tracing::warn!(
                    model_id,
                    version,
                    "the engine lists no parameter hashes; the method's parameters are not checked"
                );
            } else {
                differ(
                    &format!("{} params hash", v.method.id),
                    v.method.params_hash.to_hex(),
                    info.params_hashes.get(&v.method.id).map(String::as_str),
                );
            }
        }
        if differences.is_empty() {
            tracing::info!("the engine serves the registered weights, index and parameters");
            Ok(())
        } else {
            Err(differences)
        }
    }

    /// Publishes `gateway.public_url` in the model registry when the registry holds another
    /// URL (or none) for this key, so that buyers and verifiers find this gateway on chain.
    /// Called before the committer starts, so its transaction takes no sequence number a
    /// commit was signed with. A failure is logged and the relayer runs on: buyers who were
    /// given the URL another way are still served.
    pub async fn publish_gateway(&self) {
        let Some(url) = self.config.gateway.public_url.as_deref() else {
            return;
        };
        let registry = self.client.registry(&self.config.contracts.model_registry);
        let address = self.signer.address().to_string();
        match registry.gateway(&address).await {
            Ok(Some(published)) if published.url == url => {
                tracing::info!(url, "gateway already published in the model registry");
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "could not read the published gateway; not publishing");
                return;
            }
        }
        match registry.set_gateway(&self.signer, Some(url)).await {
            Ok(outcome) => {
                tracing::info!(url, tx = %outcome.hash, "gateway published in the model registry")
            }
            Err(e) => tracing::error!(url, error = %e, "publishing the gateway failed"),
        }
    }

    /// The height scanning resumes after, set on a first start.
    async fn initial_cursor(&self) -> Result<u64, RunError> {
        if let Some(cursor) = self.outbox.cursor()? {
            return Ok(cursor);
        }
        let cursor = match self.config.chain.start_height {
            Some(start) => start.saturating_sub(1),
            None => self.client.latest_height().await?,
        };
        self.outbox.record_seen(&[], cursor, self.queue_limits())?;
        Ok(cursor)
    }

    /// Scans every block in order for requests of served models; never skips one.
    pub async fn run_scanner(self: Arc<Self>) {
        let new_block = Arc::new(Notify::new());
        let _subscription = tokio::spawn(subscribe(self.clone(), new_block.clone()));
        let mut backoff = Backoff::new();
        let mut cursor = loop {
            match self.initial_cursor().await {
                Ok(c) => break c,
                Err(e) => {
                    self.chain_failure("reading the start height", &e);
                    backoff.wait().await;
                }
            }
        };
        tracing::info!(after_height = cursor, "scanning for paid requests");
        loop {
            match self.scan_to_tip(&mut cursor).await {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    self.chain_failure("scanning blocks", &e);
                    backoff.wait().await;
                    continue;
                }
            }
            tokio::select! {
                _ = new_block.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }

    async fn scan_to_tip(&self, cursor: &mut u64) -> Result<(), RunError> {
        let latest = self.client.latest_height().await?;
        self.metrics.chain_ok();
        while *cursor < latest {
            let height = *cursor + 1;
            let requests = self.payout().requests_in_block(height).await?;
            let records: Vec<RequestRecord> = requests
                .into_iter()
                .filter(|r| self.serves(r.model_id, r.version))
                .map(|r| RequestRecord {
                    request_id: r.request_id,
                    model_id: r.model_id,
                    version: r.version,
                    payer: r.payer,
                    prompt_hash: r.prompt_hash,
                    amount: r.amount.to_string(),
                    asset: r.asset.to_string(),
                    seen_height: height,
                    expires_at: r.expires_at,
                })
                .collect();
            let dropped = self
                .outbox
                .record_seen(&records, height, self.queue_limits())?;
            if !dropped.is_empty() {
                self.metrics.requests_dropped.inc_by(dropped.len() as u64);
                tracing::warn!(
                    ?dropped,
                    height,
                    "requests not kept: their payers (or everyone) have too many waiting for a prompt; each is still served if its prompt arrives"
                );
            }
            *cursor = height;
            self.metrics.last_height.set(height as i64);
            if !records.is_empty() {
                let now = Instant::now();
                let mut seen = self.seen_at.lock().unwrap_or_else(|e| e.into_inner());
                for r in &records {
                    seen.entry(r.request_id).or_insert(now);
                    tracing::info!(
                        request_id = r.request_id,
                        model_id = r.model_id,
                        version = r.version,
                        height,
                        "paid request seen"
                    );
                }
                self.metrics.requests_seen.inc_by(records.len() as u64);
                self.wake_attributor.notify_one();
            }
        }
        Ok(())
    }

    /// Turns requests whose prompt has arrived into packets, round after round, and prunes the
    /// expired ones from every queue.
    pub async fn run_attributor(self: Arc<Self>) {
        let mut backoff = Backoff::new();
        let mut last_expiry_check: Option<Instant> = None;
        loop {
            if last_expiry_check.is_none_or(|t| t.elapsed() >= EXPIRY_CHECK) {
                last_expiry_check = Some(Instant::now());
                if let Err(e) = self.prune_expired().await {
                    tracing::debug!(error = %e, "pruning expired requests failed");
                }
            }
            let more = match self.attributor.attribute_round().await {
                Ok(settled) => {
                    backoff.reset();
                    settled > 0
                }
                Err(e) => {
                    self.metrics.retries.inc();
                    tracing::warn!(error = %e, "attribution paused; retrying");
                    self.metrics.set_error(Some(e.to_string()));
                    backoff.wait().await;
                    continue;
                }
            };
            if more {
                continue;
            }
            tokio::select! {
                _ = self.wake_attributor.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }

    /// Gives up the requests that expired before their packet was committed: one block-time
    /// query, compared with the expiry each request keeps from its event.
    async fn prune_expired(&self) -> Result<(), RunError> {
        // Outboxes written before requests kept their expiry: look each one up once.
        for id in self.outbox.without_expiry(EXPIRY_LOOKUPS)? {
            let request = self.payout().request(id).await?;
            self.outbox.set_expiry(id, request.expires_at.seconds())?;
        }
        let now = self.client.latest_block().await?.time_nanos / 1_000_000_000;
        self.attributor.prune_expired(now)?;
        Ok(())
    }

    /// Gives up request `request_id` of model version `model`.
    fn fail(&self, request_id: u64, model: (u64, u32), reason: &str) -> Result<(), OutboxError> {
        tracing::error!(request_id, reason, "request given up");
        self.outbox.mark_failed(request_id, reason)?;
        self.metrics.requests_failed.inc();
        self.metrics.count(model.0, model.1, "failed");
        Ok(())
    }

    /// Keeps the key's fee-denom balance in `operator_balance`, every [`BALANCE_POLL`].
    pub async fn run_balance_watch(self: Arc<Self>) {
        let address = self.signer.address().to_string();
        let denom = self.client.config().gas_denom.clone();
        loop {
            match self.client.balance(&address, &denom).await {
                Ok(amount) => {
                    self.metrics
                        .balance
                        .set(i64::try_from(amount).unwrap_or(i64::MAX));
                }
                Err(e) => tracing::debug!(error = %e, "reading the key's balance"),
            }
            tokio::time::sleep(BALANCE_POLL).await;
        }
    }

    /// Reveals the prompt and completion of this relayer's challenged requests, every few
    /// seconds (see [`crate::verifier::reveal_round`]).
    pub async fn run_revealer(self: Arc<Self>) {
        loop {
            let round = crate::verifier::reveal_round(
                &self.client,
                &self.config.contracts.payout,
                &self.signer,
                &self.outbox,
            );
            if let Err(e) = round.await {
                tracing::warn!(error = %e, "could not look for challenged requests; retrying");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// The one task that commits: settles broadcasts, commits batches, finalizes.
    pub async fn run_committer(self: Arc<Self>) {
        let mut backoff = Backoff::new();
        let mut single = 0usize;
        let mut last_finalize: Option<Instant> = None;
        loop {
            match self.commit_step(&mut single).await {
                Ok(Step::Again) => {
                    backoff.reset();
                    continue;
                }
                Ok(Step::Waiting(pause)) => {
                    backoff.reset();
                    let finalize_every = Duration::from_millis(self.config.finalize.interval_ms);
                    let due = self.config.finalize.enabled
                        && last_finalize.is_none_or(|t| t.elapsed() >= finalize_every);
                    if due && pause > CONFIRM_POLL {
                        last_finalize = Some(Instant::now());
                        if let Err(e) = self.finalize_ready().await {
                            self.chain_failure("finalizing", &e);
                        }
                    }
                    tokio::select! {
                        _ = self.wake_committer.notified() => {}
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
                Err(RunError::Chain(e)) => {
                    match e {
                        ChainError::InsufficientFunds { .. }
                        | ChainError::UnknownAccount { .. } => {
                            tracing::error!(
                                address = %self.signer.address(),
                                error = %e,
                                "the relayer's key cannot pay for its commits: fund it"
                            );
                            self.metrics.set_error(Some(format!("unfunded key: {e}")));
                            self.metrics.retries.inc();
                        }
                        e => self.chain_failure("committing", &e),
                    }
                    backoff.wait().await;
                }
                Err(e) => {
                    self.metrics.retries.inc();
                    tracing::warn!(error = %e, "committing paused; retrying");
                    self.metrics.set_error(Some(e.to_string()));
                    backoff.wait().await;
                }
            }
        }
    }

    async fn commit_step(&self, single: &mut usize) -> Result<Step, RunError> {
        let in_flight = self.outbox.in_flight()?;
        let counts = self.outbox.counts()?;
        self.metrics.observe_outbox(&counts, in_flight.len());
        // Pipelined: another commit leaves while fewer than `max_in_flight` wait for their
        // blocks. While a bad batch is bisected, one packet at a time, one commit is in flight.
        let mut settled = None;
        if !in_flight.is_empty() {
            let step = self.settle(in_flight, single).await?;
            let still = self.outbox.in_flight()?.len();
            let limit = if *single > 0 {
                1
            } else {
                self.config.batch.max_in_flight as usize
            };
            if still >= limit {
                return Ok(step);
            }
            settled = Some(step);
        }
        let max = self.config.batch.max_packets as usize;
        let ready = self.outbox.ready_to_commit(max)?;
        if ready.is_empty() {
            return Ok(settled.unwrap_or(Step::Waiting(POLL_INTERVAL)));
        }
        if *single == 0 && ready.len() < max {
            let max_delay = Duration::from_millis(self.config.batch.max_delay_ms);
            let oldest = {
                let at = self.attributed_at.lock().unwrap_or_else(|e| e.into_inner());
                // A packet from before a restart has waited long enough.
                ready
                    .iter()
                    .map(|(id, _)| at.get(id).map_or(max_delay, |t| t.elapsed()))
                    .max()
                    .unwrap_or(max_delay)
            };
            if oldest < max_delay {
                let wait = max_delay - oldest;
                return Ok(Step::Waiting(match settled {
                    Some(Step::Waiting(confirm)) => confirm.min(wait),
                    _ => wait,
                }));
            }
        }
        let batch: Vec<(u64, AttributionPacket)> = if *single > 0 {
            *single -= 1;
            ready.into_iter().take(1).collect()
        } else {
            ready
        };
        self.commit(batch, single).await
    }

    /// Settles the oldest broadcast: confirmed, failed in its block, or timed out unseen.
    async fn settle(
        &self,
        in_flight: Vec<crate::outbox::InFlightTx>,
        single: &mut usize,
    ) -> Result<Step, RunError> {
        let latest = self.client.latest_height().await?;
        self.metrics.chain_ok();
        let mut waiting = false;
        for tx in in_flight {
            match self.client.lookup_tx(&tx.tx_hash).await? {
                TxLookup::Committed(outcome) => {
                    failpoint("before_confirm");
                    let ids = self.outbox.mark_committed(&tx.tx_hash, outcome.height)?;
                    self.metrics.packets_committed.inc_by(ids.len() as u64);
                    for &id in &ids {
                        crate::attributor::count_outcome(
                            &self.outbox,
                            &self.metrics,
                            id,
                            "committed",
                        )?;
                    }
                    self.metrics.commit_txs.inc();
                    self.count_fee(&outcome.fee);
                    let duplicates = outcome
                        .events
                        .iter()
                        .filter(|e| e.attribute("duplicate") == Some("true"))
                        .count();
                    let seen = self.seen_at.lock().unwrap_or_else(|e| e.into_inner());
                    for id in &ids {
                        if let Some(t) = seen.get(id) {
                            self.metrics
                                .commit_latency
                                .observe(t.elapsed().as_secs_f64());
                        }
                    }
                    tracing::info!(
                        tx = %tx.tx_hash,
                        height = outcome.height,
                        packets = ids.len(),
                        duplicates,
                        gas_used = outcome.gas_used,
                        fee = %outcome.fee,
                        "commit confirmed"
                    );
                    self.metrics.set_error(None);
                }
                TxLookup::Failed(e) => {
                    // Its fee is spent; the packets go back and are tried again, one at a time
                    // if a batch, so a bad packet cannot hold the others back.
                    tracing::warn!(tx = %tx.tx_hash, error = %e, "commit failed in its block");
                    let ids = self.outbox.revert_to_attributed(&tx.tx_hash)?;
                    if ids.len() > 1 {
                        *single = (*single).max(ids.len());
                    }
                    self.metrics.retries.inc();
                }
                TxLookup::NotFound if latest > tx.timeout_height => {
                    tracing::warn!(
                        tx = %tx.tx_hash,
                        timeout_height = tx.timeout_height,
                        "commit never reached a block before its timeout; sending its packets again"
                    );
                    self.outbox.revert_to_attributed(&tx.tx_hash)?;
                    self.metrics.retries.inc();
                    // Whatever the node knew of our sequence may be stale now.
                    self.client
                        .forget_account(self.signer.address().as_ref())
                        .await;
                }
                TxLookup::NotFound => waiting = true,
            }
        }
        Ok(if waiting {
            Step::Waiting(CONFIRM_POLL)
        } else {
            Step::Again
        })
    }

    fn count_fee(&self, fee: &tributary_client::Coin) {
        if fee.denom.as_ref() == self.client.config().gas_denom {
            self.metrics
                .fees_spent
                .inc_by(u64::try_from(fee.amount).unwrap_or(u64::MAX));
        }
    }

    /// Signs one `CommitAttribution`, records its hash, then broadcasts it.
    async fn commit(
        &self,
        batch: Vec<(u64, AttributionPacket)>,
        single: &mut usize,
    ) -> Result<Step, RunError> {
        let ids: Vec<u64> = batch.iter().map(|(id, _)| *id).collect();
        let first_model = batch
            .first()
            .map_or((0, 0), |(_, p)| (p.model_id, p.model_version));
        let packets: Vec<AttributionPacket> = batch.into_iter().map(|(_, p)| p).collect();
        let call = ContractCall::new(
            &self.config.contracts.payout,
            &ExecuteMsg::CommitAttribution { packets },
            Vec::new(),
        )?;
        let msgs = self.client.execute_msgs(&self.signer, vec![call])?;
        let timeout_height = self.client.latest_height().await? + TX_TIMEOUT_BLOCKS;
        let options = TxOptions {
            timeout_height,
            ..TxOptions::default()
        };
        let prepared = match self.client.prepare_tx(&self.signer, msgs, &options).await {
            Ok(p) => p,
            Err(ChainError::Contract { message }) if ids.len() > 1 => {
                // One packet spoils the batch: commit them one by one to find it.
                tracing::warn!(
                    packets = ids.len(),
                    error = %message,
                    "the contract refused a batch; committing its packets one at a time"
                );
                *single = ids.len();
                return Ok(Step::Again);
            }
            Err(ChainError::Contract { message }) => {
                self.fail(
                    ids[0],
                    first_model,
                    &format!("the payout contract refused the packet: {message}"),
                )?;
                return Ok(Step::Again);
            }
            Err(e) => return Err(e.into()),
        };
        self.outbox
            .mark_broadcast(&ids, &prepared.hash, timeout_height)?;
        failpoint("before_broadcast");
        match self
            .client
            .broadcast_prepared(&self.signer, &prepared)
            .await
        {
            Ok(()) => {
                failpoint("after_broadcast");
                tracing::info!(
                    tx = %prepared.hash,
                    packets = ids.len(),
                    gas = prepared.gas_limit,
                    "commit broadcast"
                );
                Ok(Step::Waiting(CONFIRM_POLL))
            }
            // Transport failure: the node may or may not have it; `settle` finds out.
            Err(e @ (ChainError::Rpc(_) | ChainError::NodeUnreachable { .. })) => {
                Err(RunError::Chain(e))
            }
            Err(e) => {
                // Refused by CheckTx: it is in no mempool, so the packets can go again.
                self.outbox.revert_to_attributed(&prepared.hash)?;
                Err(RunError::Chain(e))
            }
        }
    }

    /// Finalizes served requests whose challenge window has passed.
    async fn finalize_ready(&self) -> Result<(), ChainError> {
        let now = self.client.latest_block().await?.time_nanos;
        let mut ready = Vec::new();
        for status in [RequestStatus::Attested, RequestStatus::Disputed] {
            let mut start_after = None;
            loop {
                let page = self
                    .payout()
                    .requests(Some(status), None, start_after, Some(100))
                    .await?;
                let Some(last) = page.last() else { break };
                start_after = Some(last.id);
                ready.extend(
                    page.iter()
                        .filter(|r| self.serves(r.model_id, r.model_version))
                        .filter(|r| r.agreed_packet.is_some())
                        .filter(|r| r.finalizable_at.is_some_and(|t| t.nanos() <= now))
                        .map(|r| r.id),
                );
            }
        }
        for chunk in ready.chunks(MAX_FINALIZE) {
            match self.payout().finalize(&self.signer, chunk.to_vec()).await {
                Ok(outcome) => {
                    self.metrics.requests_finalized.inc_by(chunk.len() as u64);
                    self.count_fee(&outcome.fee);
                    tracing::info!(tx = %outcome.hash, requests = chunk.len(), "finalized");
                }
                // Another relayer settled one of them first: the next round re-reads.
                Err(ChainError::Contract { message }) => {
                    tracing::info!(error = %message, "finalize refused; re-reading requests")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Crash tests: `TRIBUTARY_RELAYER_FAILPOINT=<name>` aborts the process (as `kill -9` would)
/// the first time it reaches the failpoint `name`.
pub(crate) fn failpoint(name: &str) {
    if std::env::var("TRIBUTARY_RELAYER_FAILPOINT").is_ok_and(|v| v == name) {
        tracing::error!(failpoint = name, "aborting at failpoint");
        std::process::abort();
    }
}

/// What the signing loop does next.
enum Step {
    /// Go on at once.
    Again,
    /// Wait this long (or until woken).
    Waiting(Duration),
}

/// A failure of one round of a task; the task retries it.
#[derive(Debug, Error)]
enum RunError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Keeps a WebSocket subscription to the payout contract's requests, waking the scanner on
/// each; polling covers the gaps while it reconnects.
async fn subscribe(relayer: Arc<Relayer>, new_block: Arc<Notify>) {
    let mut backoff = Backoff::new();
    loop {
        match relayer.payout().subscribe().await {
            Ok(mut stream) => {
                backoff.reset();
                tracing::debug!("subscribed to inference requests over WebSocket");
                while let Some(item) = stream.next().await {
                    if item.is_err() {
                        break;
                    }
                    new_block.notify_one();
                }
                tracing::debug!("WebSocket subscription ended; polling until it is back");
            }
            Err(e) => tracing::debug!(error = %e, "WebSocket subscription failed; polling"),
        }
        backoff.wait().await;
    }
}

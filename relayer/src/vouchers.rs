//! Serving inferences paid by vouchers, and settling them in batches.
//!
//! `POST /v1/vouchers/completions {"voucher": <signed voucher>, "prompt": "..."}`: the payer
//! signs, for each inference, the next voucher of its series with this relayer (see
//! [`tributary_types::voucher`]). [`VoucherDesk::submit`] checks it as the contract will:
//! this chain, contract and redeemer, a model this relayer serves, the payer's own key, exactly
//! one more prompt than served so far chained onto the last one, a cap that covers it, and
//! credit on chain for everything served and not yet settled. Only then does the engine run;
//! the inference is recorded in the outbox with its voucher and result before the payer reads
//! the completion. Sending the same voucher and prompt again answers the same completion.
//!
//! [`Relayer::run_batcher`] settles what was served: a `SettleBatch` per model version of up to
//! `vouchers.max_batch` inferences, each series redeemed with the voucher of its last included
//! inference, sent once the batch is full or its oldest inference waited `max_delay_ms`. The
//! hash is recorded before the broadcast; one batch is in flight at a time. Settled batches are
//! finalized when their window has passed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tributary_attrib_api::{CompletionRequest, CompletionResponse, Sampling, SamplingRequest};
use tributary_client::{verify_signature, ContractCall, Error as ChainError, TxLookup, TxOptions};
use tributary_types::batch::BatchResult;
use tributary_types::hash::{sha256, to_hex};
use tributary_types::payout::ExecuteMsg;
use tributary_types::registry::ModelVersion;
use tributary_types::voucher::{
    adr36_sign_bytes, chain_prompt, sampling_id, SignedVoucher, VoucherRedemption,
};

use crate::engine::EngineCallError;
use crate::outbox::{series_key, ItemState, OutboxError, SeriesRecord, SettledBatch, VoucherItem};
use crate::service::Relayer;

/// `POST /v1/vouchers/completions`.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VoucherCompletion {
    pub voucher: SignedVoucher,
    pub prompt: String,
}

/// What the payer reads back: the voucher count it paid and the completion.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VoucherServed {
    pub count: u64,
    #[serde(flatten)]
    pub response: CompletionResponse,
}

/// Why a voucher was not served.
#[derive(Debug, Error)]
pub enum VoucherError {
    #[error("{0}")]
    NotForThisRelayer(String),
    #[error("model {model_id} version {version} is not served here")]
    NotServed { model_id: u64, version: u32 },
    #[error("the voucher's signature is not the payer's: {0}")]
    BadSignature(String),
    #[error("the next voucher of this series has count {expected}, this one {got}")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("the voucher's prompt chain is not the served chain extended by this prompt")]
    ChainMismatch,
    #[error(
        "the voucher allows {max_amount} in all; with this inference {needed} would be charged"
    )]
    CapTooLow { max_amount: u128, needed: u128 },
    #[error("the payer's credit is {available}, {needed} is needed for what it was served and this inference")]
    InsufficientCredit { available: u128, needed: u128 },
    #[error("the engine returned no attribution packet")]
    NoPacket,
    #[error(transparent)]
    Engine(#[from] EngineCallError),
    #[error("the chain is unavailable: {0}")]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// The payer-facing side of voucher payments.
#[derive(Clone)]
pub struct VoucherDesk {
    relayer: Arc<Relayer>,
    /// One voucher at a time per series: its next count depends on the previous one.
    series_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    versions: Arc<Mutex<HashMap<(u64, u32), ModelVersion>>>,
}

impl VoucherDesk {
    pub fn new(relayer: Arc<Relayer>) -> Self {
        VoucherDesk {
            relayer,
            series_locks: Arc::new(Mutex::new(HashMap::new())),
            versions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    async fn version(&self, model_id: u64, version: u32) -> Result<ModelVersion, VoucherError> {
        let known = self
            .versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(model_id, version))
            .cloned();
        if let Some(known) = known {
            return Ok(known);
        }
        let r = &self.relayer;
        let fetched = r
            .client
            .registry(&r.config.contracts.model_registry)
            .model_version(model_id, version)
            .await?;
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((model_id, version), fetched.clone());
        Ok(fetched)
    }

    /// Serves one inference against its voucher (see the module docs).
    pub async fn submit(&self, request: VoucherCompletion) -> Result<VoucherServed, VoucherError> {
        let r = &self.relayer;
        let signed = &request.voucher;
        let voucher = &signed.voucher;
        let me = r.signer.address().to_string();
        if voucher.chain_id != r.config.chain.id
            || voucher.contract != r.config.contracts.payout
            || voucher.redeemer != me
        {
            return Err(VoucherError::NotForThisRelayer(format!(
                "this relayer redeems vouchers for {me} on {} at {}",
                r.config.chain.id, r.config.contracts.payout
            )));
        }
        if !r.serves(voucher.model_id, voucher.version) {
            return Err(VoucherError::NotServed {
                model_id: voucher.model_id,
                version: voucher.version,
            });
        }
        let data = voucher
            .sign_data()
            .map_err(|e| VoucherError::BadSignature(e.to_string()))?;
        let signer = verify_signature(
            &signed.pub_key,
            &adr36_sign_bytes(&voucher.payer, &data),
            &signed.signature,
            &r.config.chain.bech32_prefix,
        )
        .map_err(|e| VoucherError::BadSignature(e.to_string()))?;
        if signer.as_ref() != voucher.payer {
            return Err(VoucherError::BadSignature(format!(
                "signed by {signer}, not {}",
                voucher.payer
            )));
        }
        let prompt_hash = sha256(request.prompt.as_bytes());
        let key = series_key(&voucher.payer, voucher.model_id, voucher.version);

        let lock = self
            .series_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        let _one_at_a_time = lock.lock().await;
        let series = match r.outbox.voucher_series(&key)? {
            Some(series) => series,
            None => {
                let state = r
                    .client
                    .payout(&r.config.contracts.payout)
                    .redeemed_vouchers(&voucher.payer, &me, voucher.model_id, voucher.version)
                    .await?;
                SeriesRecord {
                    payer: voucher.payer.clone(),
                    model_id: voucher.model_id,
                    version: voucher.version,
                    served: state.count,
                    chain: state.prompts.to_hex(),
                    charged: state.charged.u128(),
                    settled: state.count,
                }
            }
        };
        if voucher.count <= series.served {
            // The same voucher and prompt again: the same answer.
            if let Some(item) = r.outbox.voucher_item(&key, voucher.count)? {
                if item.voucher == *signed && item.prompt_hash == to_hex(&prompt_hash) {
                    return Ok(VoucherServed {
                        count: voucher.count,
                        response: item.response,
                    });
                }
            }
        }
        if voucher.count != series.served + 1 {
            return Err(VoucherError::OutOfOrder {
                expected: series.served + 1,
                got: voucher.count,
            });
        }
        let last: [u8; 32] = cosmwasm_std::HexBinary::from_hex(&series.chain)
            .ok()
            .and_then(|b| b.to_vec().try_into().ok())
            .ok_or(VoucherError::ChainMismatch)?;
        let chain = chain_prompt(&last, &prompt_hash);
        if voucher.prompts.as_slice() != chain.as_slice() {
            return Err(VoucherError::ChainMismatch);
        }
        let model = self.version(voucher.model_id, voucher.version).await?;
        let price = model.price.amount.u128();
        let charged = series.charged.saturating_add(price);
        if charged > voucher.max_amount.u128() {
            return Err(VoucherError::CapTooLow {
                max_amount: voucher.max_amount.u128(),
                needed: charged,
            });
        }
        let unsettled = series.served - series.settled + 1;
        let needed = price.saturating_mul(u128::from(unsettled));
        let credit = r
            .client
            .payout(&r.config.contracts.payout)
            .credit(&voucher.payer, model.price.asset.clone())
            .await?;
        if credit.balance.u128() < needed {
            return Err(VoucherError::InsufficientCredit {
                available: credit.balance.u128(),
                needed,
            });
        }

        let engine_id = sampling_id(
            &voucher.payer,
            voucher.model_id,
            voucher.version,
            voucher.count,
        );
        let sampling = Sampling::for_paid_request(engine_id);
        let completion = CompletionRequest {
            model: r.engine_model(voucher.model_id, voucher.version),
            prompt: request.prompt.clone(),
            sampling: SamplingRequest::exactly(&sampling),
            request_id: Some(engine_id),
            model_id: Some(voucher.model_id),
            model_version: Some(voucher.version),
            method: Some(model.method.id.clone()),
        };
        let response = r.engine.complete(&completion).await?;
        let packet = response.packet.clone().ok_or(VoucherError::NoPacket)?;
        let item = VoucherItem {
            voucher: signed.clone(),
            prompt_hash: to_hex(&prompt_hash),
            prompt: request.prompt.clone(),
            result: BatchResult {
                output_hash: packet.output_hash,
                scores_root: packet.scores_root,
                entries: packet.entries,
            },
            response: response.clone(),
            state: ItemState::Pending,
        };
        let next = SeriesRecord {
            served: voucher.count,
            chain: to_hex(&chain),
            charged,
            ..series
        };
        r.outbox.record_voucher_item(&key, &next, &item)?;
        tracing::info!(payer = %voucher.payer, count = voucher.count, "served against a voucher");
        Ok(VoucherServed {
            count: voucher.count,
            response,
        })
    }
}

/// Blocks a batch may wait for inclusion before it is sent again.
const BATCH_TIMEOUT_BLOCKS: u64 = 20;

impl Relayer {
    /// Settles served voucher inferences in batches and finalizes them; runs until the process
    /// ends.
    pub async fn run_batcher(self: Arc<Self>) {
        let Some(settings) = self.config.vouchers else {
            return;
        };
        let max_delay = Duration::from_millis(settings.max_delay_ms);
        let mut pending_since: Option<Instant> = None;
        loop {
            let pause = match self
                .batch_step(settings.max_batch as usize, max_delay, &mut pending_since)
                .await
            {
                Ok(pause) => pause,
                Err(e) => {
                    self.metrics.retries.inc();
                    tracing::warn!(error = %e, "settling vouchers paused; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::time::sleep(pause).await;
        }
    }

    async fn batch_step(
        &self,
        max_batch: usize,
        max_delay: Duration,
        pending_since: &mut Option<Instant>,
    ) -> Result<Duration, VoucherError> {
        let poll = Duration::from_millis(250);
        if let Some((hash, record)) = self.outbox.batches_in_flight()?.into_iter().next() {
            match self.client.lookup_tx(&hash).await? {
                TxLookup::Committed(outcome) => {
                    crate::service::failpoint("batch_before_confirm");
                    let event = outcome
                        .events
                        .iter()
                        .find(|e| e.kind == "wasm-settlement_batch");
                    let number = |name: &str| {
                        event
                            .and_then(|e| e.attribute(name))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or_default()
                    };
                    let batch = SettledBatch {
                        batch_id: number("batch_id"),
                        first_request_id: number("first_request_id"),
                        finalizable_at: number("finalizable_at"),
                    };
                    let batch_id = batch.batch_id;
                    let settled = self.outbox.mark_batch_settled(&hash, batch)?;
                    tracing::info!(tx = %hash, batch_id, inferences = settled, gas_used = outcome.gas_used, "batch settled");
                    return Ok(Duration::ZERO);
                }
                TxLookup::Failed(e) => {
                    tracing::warn!(tx = %hash, error = %e, "batch failed in its block; sending its inferences again");
                    self.outbox.revert_batch(&hash)?;
                    return Ok(poll);
                }
                TxLookup::NotFound
                    if self.client.latest_height().await? > record.timeout_height =>
                {
                    tracing::warn!(tx = %hash, "batch never reached a block; sending its inferences again");
                    self.outbox.revert_batch(&hash)?;
                    self.client
                        .forget_account(self.signer.address().as_ref())
                        .await;
                    return Ok(Duration::ZERO);
                }
                TxLookup::NotFound => return Ok(poll),
            }
        }
        self.finalize_batches().await?;
        let pending = self.outbox.pending_voucher_items(max_batch)?;
        let Some((first_key, first)) = pending.first() else {
            *pending_since = None;
            return Ok(poll);
        };
        let since = *pending_since.get_or_insert_with(Instant::now);
        if pending.len() < max_batch && since.elapsed() < max_delay {
            return Ok(poll.min(max_delay - since.elapsed()));
        }
        // One model version per batch: the first pending one's.
        let version = (
            first.voucher.voucher.model_id,
            first.voucher.voucher.version,
        );
        let _ = first_key;
        let mut by_series: BTreeMap<String, Vec<VoucherItem>> = BTreeMap::new();
        for (key, item) in pending {
            let v = &item.voucher.voucher;
            if (v.model_id, v.version) == version {
                by_series.entry(key).or_default().push(item);
            }
        }
        let mut redemptions = Vec::new();
        let mut results = Vec::new();
        let mut items = Vec::new();
        for (key, series) in &by_series {
            let last = series.last().expect("a series with items");
            redemptions.push(VoucherRedemption {
                voucher: last.voucher.clone(),
                prompt_hashes: series
                    .iter()
                    .map(|i| {
                        cosmwasm_std::HexBinary::from_hex(&i.prompt_hash).expect("a stored hash")
                    })
                    .collect(),
            });
            for item in series {
                results.push(item.result.clone());
                items.push((key.clone(), item.voucher.voucher.count));
            }
        }
        let call = ContractCall::new(
            &self.config.contracts.payout,
            &ExecuteMsg::SettleBatch {
                redemptions,
                results,
            },
            Vec::new(),
        )?;
        let msgs = self.client.execute_msgs(&self.signer, vec![call])?;
        let timeout_height = self.client.latest_height().await? + BATCH_TIMEOUT_BLOCKS;
        let options = TxOptions {
            timeout_height,
            ..TxOptions::default()
        };
        let prepared = match self.client.prepare_tx(&self.signer, msgs, &options).await {
            Ok(prepared) => prepared,
            Err(ChainError::Contract { message }) => {
                tracing::error!(error = %message, inferences = items.len(), "the payout contract refused a batch");
                return Ok(Duration::from_secs(5));
            }
            Err(e) => return Err(e.into()),
        };
        self.outbox
            .mark_batch_broadcast(&items, &prepared.hash, timeout_height)?;
        crate::service::failpoint("batch_before_broadcast");
        match self
            .client
            .broadcast_prepared(&self.signer, &prepared)
            .await
        {
            Ok(()) => {
                crate::service::failpoint("batch_after_broadcast");
                *pending_since = None;
                tracing::info!(tx = %prepared.hash, inferences = items.len(), "batch broadcast");
                Ok(poll)
            }
            Err(e @ (ChainError::Rpc(_) | ChainError::NodeUnreachable { .. })) => Err(e.into()),
            Err(e) => {
                self.outbox.revert_batch(&prepared.hash)?;
                Err(e.into())
            }
        }
    }

    /// Finalizes this relayer's settled batches whose window has passed.
    async fn finalize_batches(&self) -> Result<(), VoucherError> {
        let now = self.client.latest_block().await?.time_nanos / 1_000_000_000;
        // `finalizable_at` is in whole seconds: a second's margin covers its fraction.
        let ready = self.outbox.batches_to_finalize(now.saturating_sub(1))?;
        let payout = self.client.payout(&self.config.contracts.payout);
        for chunk in ready.chunks(50) {
            let msg = ExecuteMsg::FinalizeBatches {
                batch_ids: chunk.to_vec(),
            };
            match payout.execute(&self.signer, &msg, Vec::new()).await {
                Ok(outcome) => {
                    tracing::info!(tx = %outcome.hash, batches = chunk.len(), "batches finalized");
                    self.outbox.forget_batches(chunk)?;
                }
                // One of them was finalized by someone else meanwhile: one at a time.
                Err(ChainError::Contract { .. }) => {
                    for &id in chunk {
                        let one = ExecuteMsg::FinalizeBatches {
                            batch_ids: vec![id],
                        };
                        match payout.execute(&self.signer, &one, Vec::new()).await {
                            Ok(_) => self.outbox.forget_batches(&[id])?,
                            Err(ChainError::Contract { message })
                                if message.contains("already finalized") =>
                            {
                                self.outbox.forget_batches(&[id])?
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

//! Settlement batches (the rules are in [`tributary_types::batch`]).
//!
//! `SettleBatch` pays, checks and sums; `FinalizeBatches` credits the sums after the challenge
//! window; `ChallengeBatchItem` turns one inference into a request for the dispute to settle.
//!
//! A batch needs a model version whose quorum is one: its single commit is the agreement, and
//! challenges are what checks it. A version with a larger quorum is settled per request, where
//! each attestor commits.
//!
//! What a batch stores: its record, its terms (once, shared by hash), the sums per party and
//! per contribution, and each payer's voucher state and credit. Nothing per inference, so its
//! cost grows with the number of payers and contributions it names, not with its inferences.

use std::collections::BTreeMap;

use cosmwasm_std::{
    Addr, Deps, DepsMut, Env, Event, HexBinary, MessageInfo, Order, Response, StdError, Storage,
    Uint128,
};
use cw_storage_plus::Bound;
use tributary_types::batch::{
    batch_leaf, terms_hash, BatchInfo, BatchLeaf, BatchResult, BatchStatus, MAX_BATCH_INFERENCES,
};
use tributary_types::datanet::UsageRecord;
use tributary_types::hash::hash32;
use tributary_types::merkle::{root_from_leaves, verify_inclusion};
use tributary_types::pagination::page_limit;
use tributary_types::payout::{InferenceRequest, RequestStatus, RequestTerms};
use tributary_types::split::settle;
use tributary_types::voucher::VoucherRedemption;
use tributary_types::{AttributionEntry, Settlement};

use crate::attribution::{admitted_contributor, check_lineage};
use crate::bond;
use crate::credit::charge;
use crate::dispute;
use crate::error::ContractError;
use crate::pool;
use crate::settlement::{credit, usage_messages, MAX_FINALIZE};
use crate::state::{
    BatchSums, Config, BATCHES, BATCH_SEQ, BATCH_SUMS, COMMITS, COMMITTERS, CONFIG, PACKETS,
    PACKET_CONTRIBUTORS, REQUESTS, REQUEST_SEQ, REQUEST_TERMS, TERMS_BY_HASH, VERIFICATION, VOTES,
};
use crate::terms;
use crate::time::later;

/// The redeemer pays for, attributes and commits every inference its vouchers cover.
pub fn settle_batch(
    mut deps: DepsMut,
    env: Env,
    info: MessageInfo,
    redemptions: Vec<VoucherRedemption>,
    results: Vec<BatchResult>,
) -> Result<Response, ContractError> {
    let Some(first) = redemptions.first() else {
        return Err(ContractError::EmptyBatch);
    };
    let (model_id, version) = (
        first.voucher.voucher.model_id,
        first.voucher.voucher.version,
    );
    let prompts: usize = redemptions.iter().map(|r| r.prompt_hashes.len()).sum();
    if prompts > MAX_BATCH_INFERENCES {
        return Err(ContractError::BatchTooLarge {
            count: prompts,
            max: MAX_BATCH_INFERENCES,
        });
    }
    if results.len() != prompts {
        return Err(ContractError::BatchResultCount {
            prompts,
            results: results.len(),
        });
    }
    if let Some(other) = redemptions
        .iter()
        .map(|r| &r.voucher.voucher)
        .find(|v| (v.model_id, v.version) != (model_id, version))
    {
        return Err(ContractError::BatchMixesVersions {
            model_id,
            version,
            other_model_id: other.model_id,
            other_version: other.version,
        });
    }
    let config = CONFIG.load(deps.storage)?;
    let terms = terms::snapshot(deps.as_ref(), &config, model_id, version)?;
    if terms.quorum != 1 {
        return Err(ContractError::BatchNeedsQuorumOne {
            model_id,
            version,
            quorum: terms.quorum,
        });
    }
    let attestor = info.sender;
    // `charge` checks that the redeemer is one of the version's attestors.
    let mut payers = Vec::with_capacity(redemptions.len());
    for redemption in &redemptions {
        payers.push(charge(&mut deps, &env, &attestor, &terms, redemption)?);
    }
    let min_bond = VERIFICATION.load(deps.storage)?.min_attestor_bond;
    bond::require_active(deps.storage, &attestor, min_bond, "attest")?;

    let first_request_id = REQUEST_SEQ.load(deps.storage)?.saturating_add(1);
    let last = first_request_id
        .checked_add(prompts as u64 - 1)
        .ok_or_else(|| StdError::generic_err("request ids exhausted"))?;
    REQUEST_SEQ.save(deps.storage, &last)?;

    let mut sums = Sums::new(&terms);
    let mut leaves = Vec::with_capacity(prompts);
    let items = redemptions
        .iter()
        .zip(&payers)
        .flat_map(|(r, payer)| r.prompt_hashes.iter().map(move |p| (payer, p)));
    for (index, ((payer, prompt_hash), result)) in items.zip(results).enumerate() {
        let item = |error: ContractError| ContractError::BadBatchItem {
            index: index as u32,
            error: Box::new(error),
        };
        let request_id = first_request_id + index as u64;
        let packet = result.packet(request_id, model_id, version, &terms);
        packet
            .check_shape(terms.max_entries)
            .map_err(|e| item(e.into()))?;
        let settled = sums
            .add(deps.as_ref(), &config, &attestor, &packet.entries)
            .map_err(item)?;
        debug_assert_eq!(settled.total(), Some(terms.price.amount));
        leaves.push(batch_leaf(&BatchLeaf {
            payer: payer.to_string(),
            prompt_hash: prompt_hash.clone(),
            result,
        })?);
    }

    let id = BATCH_SEQ
        .may_load(deps.storage)?
        .unwrap_or_default()
        .checked_add(1)
        .ok_or_else(|| StdError::generic_err("batch ids exhausted"))?;
    BATCH_SEQ.save(deps.storage, &id)?;
    let hash = terms_hash(&terms)?;
    if !TERMS_BY_HASH.has(deps.storage, &hash) {
        TERMS_BY_HASH.save(deps.storage, &hash, &terms)?;
    }
    let batch = BatchInfo {
        id,
        model_id,
        version,
        attestor: attestor.clone(),
        first_request_id,
        count: prompts as u32,
        price: terms.price.clone(),
        items_root: HexBinary::from(root_from_leaves(&leaves).as_slice()),
        terms_hash: HexBinary::from(hash.as_slice()),
        created_at: env.block.time,
        finalizable_at: later(env.block.time, terms.challenge_window_seconds)?,
        status: BatchStatus::Attested,
        challenged: Vec::new(),
    };
    BATCHES.save(deps.storage, id, &batch)?;
    BATCH_SUMS.save(deps.storage, id, &sums.into_stored(config.treasury))?;
    Ok(Response::new()
        .add_attribute("action", "settle_batch")
        .add_event(batch_event("settlement_batch", &batch)))
}

/// Anyone, after their challenge windows: credits each batch's sums.
pub fn finalize_batches(
    deps: DepsMut,
    env: Env,
    batch_ids: Vec<u64>,
) -> Result<Response, ContractError> {
    if batch_ids.is_empty() {
        return Err(ContractError::EmptyBatch);
    }
    if batch_ids.len() > MAX_FINALIZE {
        return Err(ContractError::BatchTooLarge {
            count: batch_ids.len(),
            max: MAX_FINALIZE,
        });
    }
    let config = CONFIG.load(deps.storage)?;
    let mut response = Response::new().add_attribute("action", "finalize_batches");
    let mut records = Vec::new();
    for id in batch_ids {
        let mut batch = load_attested(deps.storage, id)?;
        if env.block.time < batch.finalizable_at {
            return Err(ContractError::BatchWindowOpen {
                id,
                ready_at: batch.finalizable_at,
            });
        }
        let sums = BATCH_SUMS.load(deps.storage, id)?;
        let asset = &batch.price.asset;
        for (owner, amount) in &sums.credits {
            credit(deps.storage, owner, asset, *amount)?;
        }
        if !sums.pooled.is_zero() {
            let terms = TERMS_BY_HASH.load(deps.storage, batch.terms_hash.as_slice())?;
            pool::deposit(deps.storage, &terms.lineage, asset, sums.pooled)?;
        }
        records.extend(
            sums.usage
                .iter()
                .map(|(contribution_id, uses, amount)| UsageRecord {
                    contribution_id: *contribution_id,
                    asset: asset.clone(),
                    amount: *amount,
                    uses: Some(*uses),
                }),
        );
        BATCH_SUMS.remove(deps.storage, id);
        batch.status = BatchStatus::Finalized;
        BATCHES.save(deps.storage, id, &batch)?;
        response = response.add_event(batch_event("batch_finalized", &batch));
    }
    Ok(response.add_submessages(usage_messages(&config, &records)?))
}

/// What a challenger of one inference of a batch sends.
pub struct ItemChallenge {
    pub batch_id: u64,
    pub index: u32,
    /// The inference as the batch committed it.
    pub leaf: BatchLeaf,
    /// Its inclusion proof against the batch root.
    pub proof: Vec<HexBinary>,
    /// The challenger's own result for the same completion.
    pub result: BatchResult,
}

/// A bonded verifier disputes one inference of a batch: it leaves the batch's sums and becomes
/// a request holding the batch's result as its agreed packet, then is challenged like any.
pub fn challenge_item(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    challenge: ItemChallenge,
) -> Result<Response, ContractError> {
    let ItemChallenge {
        batch_id,
        index,
        leaf,
        proof,
        result,
    } = challenge;
    let mut batch = load_attested(deps.storage, batch_id)?;
    let request_id = batch.first_request_id + index as u64;
    if env.block.time >= batch.finalizable_at {
        return Err(ContractError::ChallengeWindowClosed {
            id: request_id,
            closed_at: batch.finalizable_at,
        });
    }
    let path = proof.iter().map(hash32).collect::<Result<Vec<_>, _>>()?;
    let root = hash32(&batch.items_root)?;
    if index >= batch.count
        || !verify_inclusion(
            &batch_leaf(&leaf)?,
            index.into(),
            batch.count.into(),
            &path,
            &root,
        )
    {
        return Err(ContractError::NotInBatch { batch_id, index });
    }
    if batch.challenged.contains(&request_id) {
        return Err(ContractError::AlreadyChallenged { id: request_id });
    }
    let config = CONFIG.load(deps.storage)?;
    let terms = TERMS_BY_HASH.load(deps.storage, batch.terms_hash.as_slice())?;
    let agreed = leaf
        .result
        .packet(request_id, batch.model_id, batch.version, &terms);
    let contributors = check_lineage(deps.as_ref(), &config, &terms, &agreed)?;

    // Out of the batch's sums: exactly what `settle_batch` added for it.
    let mut sums = BATCH_SUMS.load(deps.storage, batch_id)?;
    let settled = settle(batch.price.amount, &terms.split, &agreed.entries, 1)?;
    let parties = Parties {
        treasury: sums.treasury.clone(),
        operator: batch.attestor.clone(),
        developer: terms.developer.clone(),
    };
    sums.subtract(&parties, &settled, &contributors)?;
    BATCH_SUMS.save(deps.storage, batch_id, &sums)?;
    batch.challenged.push(request_id);
    BATCHES.save(deps.storage, batch_id, &batch)?;

    // The request the batch would have stored, with the batch's commit as its agreed packet.
    let agreed_hash = agreed.packet_hash()?;
    let hash = agreed_hash.as_slice();
    let request = InferenceRequest {
        id: request_id,
        payer: deps.api.addr_validate(&leaf.payer)?,
        model_id: batch.model_id,
        model_version: batch.version,
        prompt_hash: leaf.prompt_hash,
        price: batch.price.clone(),
        created_at: batch.created_at,
        expires_at: later(batch.created_at, config.request_expiry_seconds)?,
        status: RequestStatus::Attested,
        agreed_packet: Some(HexBinary::from(hash)),
        finalizable_at: Some(batch.finalizable_at),
        distinct_packets: 1,
        settlement: None,
    };
    REQUESTS.save(deps.storage, request_id, &request)?;
    REQUEST_TERMS.save(deps.storage, request_id, &batch.terms_hash.to_vec())?;
    COMMITS.save(deps.storage, (request_id, &batch.attestor), &hash.to_vec())?;
    COMMITTERS.save(deps.storage, (request_id, hash, &batch.attestor), &())?;
    VOTES.save(deps.storage, (request_id, hash), &1)?;
    PACKETS.save(deps.storage, (request_id, hash), &agreed)?;
    PACKET_CONTRIBUTORS.save(deps.storage, (request_id, hash), &contributors)?;

    let packet = result.packet(request_id, batch.model_id, batch.version, &terms);
    let response = dispute::challenge(deps, env, info, request_id, packet)?;
    Ok(response.add_attribute("batch_id", batch_id.to_string()))
}

/// A batch, unless it is unknown or finalized.
fn load_attested(storage: &dyn Storage, id: u64) -> Result<BatchInfo, ContractError> {
    let batch = BATCHES
        .may_load(storage, id)?
        .ok_or(ContractError::UnknownBatch { id })?;
    if batch.status != BatchStatus::Attested {
        return Err(ContractError::BatchFinalized { id });
    }
    Ok(batch)
}

fn batch_event(kind: &str, batch: &BatchInfo) -> Event {
    Event::new(kind)
        .add_attribute("batch_id", batch.id.to_string())
        .add_attribute("model_id", batch.model_id.to_string())
        .add_attribute("version", batch.version.to_string())
        .add_attribute("attestor", batch.attestor.as_str())
        .add_attribute("first_request_id", batch.first_request_id.to_string())
        .add_attribute("count", batch.count.to_string())
        .add_attribute("items_root", batch.items_root.to_hex())
        .add_attribute("finalizable_at", batch.finalizable_at.seconds().to_string())
}

/// A batch by id.
pub fn query_batch(deps: Deps, id: u64) -> Result<BatchInfo, ContractError> {
    BATCHES
        .may_load(deps.storage, id)?
        .ok_or(ContractError::UnknownBatch { id })
}

/// Batches by id.
pub fn query_batches(
    deps: Deps,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Result<Vec<BatchInfo>, ContractError> {
    let limit = page_limit(limit);
    Ok(BATCHES
        .range(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(limit)
        .map(|item| item.map(|(_, batch)| batch))
        .collect::<Result<_, _>>()?)
}

/// Who a batch's shares go to besides the contributors.
struct Parties {
    treasury: Addr,
    operator: Addr,
    developer: Addr,
}

/// A batch's running sums while it is checked, with the contributors it resolved.
struct Sums<'t> {
    terms: &'t RequestTerms,
    /// Datanet id -> leaves the lineage's largest version of it covers.
    leaves: BTreeMap<u64, u64>,
    /// Contribution id -> its contributor, once read.
    contributors: BTreeMap<u64, Addr>,
    credits: BTreeMap<Addr, Uint128>,
    usage: BTreeMap<u64, (u64, Uint128)>,
    pooled: Uint128,
}

impl<'t> Sums<'t> {
    fn new(terms: &'t RequestTerms) -> Self {
        let mut leaves: BTreeMap<u64, u64> = BTreeMap::new();
        for version in &terms.lineage {
            let count = leaves.entry(version.root.datanet_id).or_default();
            *count = (*count).max(version.contributions);
        }
        Sums {
            terms,
            leaves,
            contributors: BTreeMap::new(),
            credits: BTreeMap::new(),
            usage: BTreeMap::new(),
            pooled: Uint128::zero(),
        }
    }

    /// Adds one inference with these entries, served by `attestor`.
    fn add(
        &mut self,
        deps: Deps,
        config: &Config,
        attestor: &Addr,
        entries: &[AttributionEntry],
    ) -> Result<Settlement, ContractError> {
        let settled = settle(self.terms.price.amount, &self.terms.split, entries, 1)?;
        let mut add = |owner: &Addr, amount: Uint128| -> Result<(), ContractError> {
            if !amount.is_zero() {
                let sum = self.credits.entry(owner.clone()).or_default();
                *sum = sum.checked_add(amount)?;
            }
            Ok(())
        };
        add(&config.treasury, settled.protocol)?;
        add(attestor, settled.operators[0])?;
        add(&self.terms.developer, settled.developer)?;
        for (contribution_id, amount) in &settled.contributions {
            let contributor = match self.contributors.get(contribution_id) {
                Some(known) => known.clone(),
                None => {
                    let found = admitted_contributor(deps, config, &self.leaves, *contribution_id)
                        .ok_or(ContractError::ContributionNotInLineage {
                            contribution_id: *contribution_id,
                        })?;
                    self.contributors.insert(*contribution_id, found.clone());
                    found
                }
            };
            if !amount.is_zero() {
                let sum = self.credits.entry(contributor).or_default();
                *sum = sum.checked_add(*amount)?;
            }
            let (uses, total) = self.usage.entry(*contribution_id).or_default();
            *uses += 1;
            *total = total.checked_add(*amount)?;
        }
        self.pooled = self.pooled.checked_add(settled.unattributed)?;
        Ok(settled)
    }

    fn into_stored(self, treasury: Addr) -> BatchSums {
        BatchSums {
            treasury,
            credits: self.credits.into_iter().collect(),
            usage: self
                .usage
                .into_iter()
                .map(|(id, (uses, amount))| (id, uses, amount))
                .collect(),
            pooled: self.pooled,
        }
    }
}

impl BatchSums {
    /// Takes one inference's settlement back out.
    fn subtract(
        &mut self,
        parties: &Parties,
        settled: &Settlement,
        contributors: &[Addr],
    ) -> Result<(), ContractError> {
        let mut take = |owner: &Addr, amount: Uint128| -> Result<(), ContractError> {
            if amount.is_zero() {
                return Ok(());
            }
            let entry = self
                .credits
                .iter_mut()
                .find(|(o, _)| o == owner)
                .ok_or_else(|| StdError::generic_err("a batch share is missing"))?;
            entry.1 = entry.1.checked_sub(amount)?;
            Ok(())
        };
        take(&parties.treasury, settled.protocol)?;
        take(&parties.operator, settled.operators[0])?;
        take(&parties.developer, settled.developer)?;
        for ((contribution_id, amount), contributor) in
            settled.contributions.iter().zip(contributors)
        {
            take(contributor, *amount)?;
            let usage = self
                .usage
                .iter_mut()
                .find(|(id, _, _)| id == contribution_id)
                .ok_or_else(|| StdError::generic_err("a batch usage is missing"))?;
            usage.1 -= 1;
            usage.2 = usage.2.checked_sub(*amount)?;
        }
        self.credits.retain(|(_, amount)| !amount.is_zero());
        self.usage.retain(|(_, uses, _)| *uses > 0);
        self.pooled = self.pooled.checked_sub(settled.unattributed)?;
        Ok(())
    }
}

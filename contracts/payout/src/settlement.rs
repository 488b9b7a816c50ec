//! Finalization: the agreed packet of each request splits its escrow into claimable balances.
//!
//! The split is [`tributary_types::split::settle`] under the request's own terms. Its rounding
//! rule is chosen so that the contributors' share only ever reaches contributors:
//!
//! - the protocol, operators' and developer shares round down, and the contributors' pool is
//!   what is left, so every remainder of the fee goes to contributors rather than the developer;
//! - a packet with entries must weigh exactly 10 000 bps (`check_shape`), so it hands out the
//!   whole pool; each entry rounds down and the pool's remainder goes to the entry with the
//!   largest weight (the lowest contribution id among equals), a rule every attestor and client
//!   computes the same way;
//! - a packet with no entries sends the pool to the lineage's datanet pools ([`crate::pool`]),
//!   where the versions' contributors claim it. Before, both the uncovered part of the pool and
//!   the rounding dust went to the developer, so a model owner attesting its own requests could
//!   commit empty or light packets and keep the contributors' share.
//!
//! Each entry's contributor was resolved when its packet was first committed, so finalization
//! queries neither the registry nor the datanet contract for the money it moves. The usage
//! records it sends the datanet contract go as submessages that reply on error: if recording
//! fails (a datanet contract migrated, paused or refusing this recorder), the finalization and
//! its credits stand, the failure is an `usage_not_recorded` event, and escrow is never locked
//! behind a statistics update.
//!
//! # Served but never agreed
//!
//! A request on which an authorized attestor (by the request's terms) committed a valid packet
//! was served: the payer received a completion, whose hash the packet names. Such a request is
//! never refunded. If no packet holds quorum alone by expiry (too few attestors answered, or
//! they disagreed), it becomes finalizable at expiry, when no more commits are accepted, and is
//! settled without attribution:
//!
//! - the protocol and developer shares as usual;
//! - the operators' share equally among every attestor that committed a packet, in address
//!   order: each of them did the work, and without quorum nothing on chain tells the right one
//!   from the wrong one (telling them apart is the job of disputes and slashing, not of a vote
//!   count);
//! - the contributors' share to the lineage's datanet pools, as for a packet with no entries.
//!
//! The alternative of letting the packet with the most votes decide would hand the
//! contributors' share to a single attestor whenever the others are slow: with quorum 2, one
//! attestor (perhaps the model owner's) could commit alone and wait for expiry. Sending it to
//! the pools gives nobody a reason to keep quorum from forming, and keeps it with the
//! contributors. Refunding instead would let a payer who got a completion also get the fee back.

use cosmwasm_std::{
    to_json_binary, Addr, DepsMut, Env, Event, HexBinary, Order, Response, StdResult, Storage,
    SubMsg, Uint128, WasmMsg,
};
use tributary_types::datanet::{self, UsageRecord, MAX_USAGE_RECORDS};
use tributary_types::payout::{InferenceRequest, RequestStatus};
use tributary_types::split::settle;
use tributary_types::{AssetInfo, Settlement};

use crate::error::ContractError;
use crate::escrow::load_open_request;
use crate::pool;
use crate::state::{
    Config, BALANCES, COMMITS, COMMITTERS, CONFIG, PACKETS, PACKET_CONTRIBUTORS, REQUESTS,
};
use crate::terms;

/// Most requests one `Finalize` may settle.
pub const MAX_FINALIZE: usize = 50;
/// The reply id of the `RecordUsage` submessages.
pub const USAGE_REPLY_ID: u64 = 0;

/// Anyone: settles every listed request, or none if one of them cannot be settled yet.
pub fn finalize(
    mut deps: DepsMut,
    env: Env,
    request_ids: Vec<u64>,
) -> Result<Response, ContractError> {
    if request_ids.is_empty() {
        return Err(ContractError::EmptyBatch);
    }
    if request_ids.len() > MAX_FINALIZE {
        return Err(ContractError::BatchTooLarge {
            count: request_ids.len(),
            max: MAX_FINALIZE,
        });
    }
    let config = CONFIG.load(deps.storage)?;
    let mut records = Vec::new();
    let mut response = Response::new()
        .add_attribute("action", "finalize")
        .add_attribute(
            "request_ids",
            request_ids
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
    for &id in &request_ids {
        let (request, settled) = settle_request(&mut deps, &env, &config, id, &mut records)?;
        response = response.add_event(settlement_event(&request, &settled));
    }
    Ok(response.add_submessages(usage_messages(&config, &records)?))
}

/// The `RecordUsage` submessages of `records`. The datanet contract takes a bounded batch, and
/// a full finalize can exceed it. The usage counts are statistics; the money is already
/// credited by then, so a failing datanet contract must not revert the finalization with it.
pub(crate) fn usage_messages(config: &Config, records: &[UsageRecord]) -> StdResult<Vec<SubMsg>> {
    records
        .chunks(MAX_USAGE_RECORDS)
        .map(|batch| {
            let record = WasmMsg::Execute {
                contract_addr: config.datanet_contract.to_string(),
                msg: to_json_binary(&datanet::ExecuteMsg::RecordUsage {
                    records: batch.to_vec(),
                })?,
                funds: vec![],
            };
            Ok(SubMsg::reply_on_error(record, USAGE_REPLY_ID))
        })
        .collect()
}

/// A `RecordUsage` failed: its records are lost to the statistics, the finalization stands.
pub fn usage_not_recorded(error: String) -> Response {
    Response::new().add_event(
        Event::new("usage_not_recorded")
            .add_attribute("action", "usage_not_recorded")
            .add_attribute("error", error),
    )
}

/// How a request is settled.
enum Outcome {
    /// The packet with this hash held quorum alone and its challenge window passed.
    Agreed(HexBinary),
    /// Attestors committed but no packet held quorum alone by expiry.
    Unagreed,
}

/// Credits one request's escrow and marks it finalized; its usage is appended to `records`.
fn settle_request(
    deps: &mut DepsMut,
    env: &Env,
    config: &Config,
    id: u64,
    records: &mut Vec<UsageRecord>,
) -> Result<(InferenceRequest, Settlement), ContractError> {
    let mut request = load_open_request(deps.storage, id)?;
    if request.status == RequestStatus::Challenged {
        return Err(ContractError::RequestChallenged { id });
    }
    let terms = terms::load(deps.as_ref(), id)?;
    let outcome = match &request.agreed_packet {
        Some(agreed) => {
            // Set together with the agreed packet, so the fallback is never used.
            let ready_at = request.finalizable_at.unwrap_or(request.expires_at);
            if env.block.time < ready_at {
                return Err(ContractError::ChallengeWindowOpen { id, ready_at });
            }
            Outcome::Agreed(agreed.clone())
        }
        // Served but never agreed: settled without attribution once commits can no longer come.
        None if request.distinct_packets > 0 && env.block.time >= request.expires_at => {
            Outcome::Unagreed
        }
        None => {
            return Err(ContractError::NotFinalizable {
                id,
                status: request.status,
            })
        }
    };
    let (entries, contributors, operators) = match &outcome {
        Outcome::Agreed(agreed) => {
            let packet = PACKETS.load(deps.storage, (id, agreed.as_slice()))?;
            let contributors = PACKET_CONTRIBUTORS.load(deps.storage, (id, agreed.as_slice()))?;
            let operators = COMMITTERS
                .prefix((id, agreed.as_slice()))
                .keys(deps.storage, None, None, Order::Ascending)
                .collect::<StdResult<Vec<Addr>>>()?;
            (packet.entries, contributors, operators)
        }
        // One commit per attestor of the terms, so this is bounded by them.
        Outcome::Unagreed => {
            let operators = COMMITS
                .prefix(id)
                .keys(deps.storage, None, None, Order::Ascending)
                .collect::<StdResult<Vec<Addr>>>()?;
            (Vec::new(), Vec::new(), operators)
        }
    };
    let escrow = &request.price;
    let settled = settle(escrow.amount, &terms.split, &entries, operators.len())?;

    credit(
        deps.storage,
        &config.treasury,
        &escrow.asset,
        settled.protocol,
    )?;
    for (operator, share) in operators.iter().zip(&settled.operators) {
        credit(deps.storage, operator, &escrow.asset, *share)?;
    }
    credit(
        deps.storage,
        &terms.developer,
        &escrow.asset,
        settled.developer,
    )?;
    for ((contribution_id, amount), contributor) in settled.contributions.iter().zip(&contributors)
    {
        credit(deps.storage, contributor, &escrow.asset, *amount)?;
        records.push(UsageRecord {
            contribution_id: *contribution_id,
            asset: escrow.asset.clone(),
            amount: *amount,
            uses: None,
        });
    }
    if !settled.unattributed.is_zero() {
        pool::deposit(
            deps.storage,
            &terms.lineage,
            &escrow.asset,
            settled.unattributed,
        )?;
    }

    request.status = RequestStatus::Finalized;
    request.settlement = Some(settled.clone());
    REQUESTS.save(deps.storage, id, &request)?;
    Ok((request, settled))
}

/// Adds `amount` to what `owner` can claim; zero amounts leave no entry behind.
pub fn credit(
    storage: &mut dyn Storage,
    owner: &Addr,
    asset: &AssetInfo,
    amount: Uint128,
) -> Result<(), ContractError> {
    if amount.is_zero() {
        return Ok(());
    }
    let key = asset.key();
    let balance = BALANCES
        .may_load(storage, (owner, &key))?
        .unwrap_or_default()
        .checked_add(amount)?;
    BALANCES.save(storage, (owner, &key), &balance)?;
    Ok(())
}

fn settlement_event(request: &InferenceRequest, settled: &Settlement) -> Event {
    Event::new("settlement")
        .add_attribute("request_id", request.id.to_string())
        .add_attribute("asset", request.price.asset.to_string())
        .add_attribute("amount", request.price.amount)
        .add_attribute("protocol", settled.protocol)
        .add_attribute("operators", total(settled.operators.iter()))
        .add_attribute("developer", settled.developer)
        .add_attribute(
            "contributors",
            total(settled.contributions.iter().map(|(_, amount)| amount)),
        )
        .add_attribute("unattributed", settled.unattributed)
}

/// Sum of parts of one settlement, which never exceeds the escrowed amount.
fn total<'a>(parts: impl Iterator<Item = &'a Uint128>) -> Uint128 {
    parts.fold(Uint128::zero(), |acc, part| acc.saturating_add(*part))
}

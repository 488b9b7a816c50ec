//! Claims: everything finalization credited to the sender, paid out in one message.
//!
//! A claim pays up to [`MAX_CLAIM_ASSETS`] balances at once, and one asset that cannot be paid
//! must not hold the others back: a cw20 that refuses transfers (paused, blacklisting the
//! claimant, buggy, or migrated to something hostile), or a native denom whose sends are
//! disabled. So each payment goes as its own submessage (all native coins together in one bank
//! send, each cw20 in its own transfer) that replies whatever happens, and what it pays is
//! remembered under its reply id ([`PENDING_PAYOUTS`]). A payment that fails is credited back to
//! the claimant in the reply, with a `claim_payout_failed` event; the others go through. Reply
//! ids come from a counter, never reused, so a token that calls back into the contract during
//! its transfer cannot make two pending payments share an id. Either way the reply removes the
//! record, so nothing stays behind.

use cosmwasm_std::{
    BankMsg, Coin, DepsMut, Event, MessageInfo, Order, Response, StdError, StdResult, SubMsg,
    SubMsgResult, Uint128,
};
use tributary_types::AssetInfo;

use crate::error::ContractError;
use crate::escrow::transfer;
use crate::settlement::credit;
use crate::state::{PendingPayout, BALANCES, PAYOUT_REPLY_SEQ, PENDING_PAYOUTS};

/// Most assets one `Claim` pays out; the rest waits for the next claim.
pub const MAX_CLAIM_ASSETS: usize = 30;
/// Reply ids of payouts are above this one (which the usage records use).
pub const LAST_RESERVED_REPLY_ID: u64 = crate::settlement::USAGE_REPLY_ID;

/// Pays the sender every balance it holds (up to [`MAX_CLAIM_ASSETS`] assets) and clears them.
pub fn claim(deps: DepsMut, info: MessageInfo) -> Result<Response, ContractError> {
    let owner = info.sender;
    let balances = BALANCES
        .prefix(&owner)
        .range(deps.storage, None, None, Order::Ascending)
        .take(MAX_CLAIM_ASSETS)
        .collect::<StdResult<Vec<(String, Uint128)>>>()?;
    if balances.is_empty() {
        return Err(ContractError::NothingToClaim);
    }
    let mut native = Vec::new();
    let mut native_keys = Vec::new();
    let mut response = Response::new()
        .add_attribute("action", "claim")
        .add_attribute("claimant", owner.as_str());
    for (key, amount) in balances {
        BALANCES.remove(deps.storage, (&owner, &key));
        let asset = AssetInfo::from_key(&key)
            .ok_or_else(|| StdError::generic_err(format!("bad asset key {key}")))?;
        response = response.add_attribute("claimed", format!("{amount} {asset}"));
        match asset {
            // Keys sort by denom, so the coins are in the order the bank module requires.
            AssetInfo::Native { denom } => {
                native.push(Coin { denom, amount });
                native_keys.push((key, amount));
            }
            cw20 @ AssetInfo::Cw20 { .. } => {
                let id = remember(deps.storage, &owner, vec![(key, amount)])?;
                let msg = transfer(&owner, &cw20, amount)?;
                response = response.add_submessage(SubMsg::reply_always(msg, id));
            }
        }
    }
    if !native.is_empty() {
        let id = remember(deps.storage, &owner, native_keys)?;
        let msg = BankMsg::Send {
            to_address: owner.to_string(),
            amount: native,
        };
        response = response.add_submessage(SubMsg::reply_always(msg, id));
    }
    Ok(response)
}

/// Whether `id` is the reply id of a payout.
pub fn is_payout_reply(id: u64) -> bool {
    id > LAST_RESERVED_REPLY_ID
}

/// The reply of one payout: forgotten when it went through, credited back when it failed.
pub fn payout_replied(
    deps: DepsMut,
    id: u64,
    result: SubMsgResult,
) -> Result<Response, ContractError> {
    let pending = PENDING_PAYOUTS
        .may_load(deps.storage, id)?
        .ok_or(ContractError::UnknownReply { id })?;
    PENDING_PAYOUTS.remove(deps.storage, id);
    let SubMsgResult::Err(error) = result else {
        return Ok(Response::new());
    };
    let mut event = Event::new("claim_payout_failed")
        .add_attribute("action", "claim_payout_failed")
        .add_attribute("claimant", pending.owner.as_str())
        .add_attribute("error", error);
    for (key, amount) in &pending.amounts {
        let asset = AssetInfo::from_key(key)
            .ok_or_else(|| StdError::generic_err(format!("bad asset key {key}")))?;
        credit(deps.storage, &pending.owner, &asset, *amount)?;
        event = event.add_attribute("credited_back", format!("{amount} {asset}"));
    }
    Ok(Response::new().add_event(event))
}

/// Stores what a payout submessage pays, under a fresh reply id.
fn remember(
    storage: &mut dyn cosmwasm_std::Storage,
    owner: &cosmwasm_std::Addr,
    amounts: Vec<(String, Uint128)>,
) -> Result<u64, ContractError> {
    let id = PAYOUT_REPLY_SEQ
        .may_load(storage)?
        .unwrap_or(LAST_RESERVED_REPLY_ID)
        .checked_add(1)
        .ok_or_else(|| StdError::generic_err("payout reply ids exhausted"))?;
    PAYOUT_REPLY_SEQ.save(storage, &id)?;
    PENDING_PAYOUTS.save(
        storage,
        id,
        &PendingPayout {
            owner: owner.clone(),
            amounts,
        },
    )?;
    Ok(id)
}

//! Bonds: what verifiers and attestors put at stake.
//!
//! Any account can bond coins of the configured `bond_denom`. An active bond lets it challenge
//! and be drawn for committees (at least `min_verifier_bond`), and lets an attestor's commits
//! be accepted where the contract asks attestors to bond (`min_attestor_bond`). `Unbond` moves
//! part of the active bond to unbonding, which is released `unbonding_seconds` later; until
//! then it can still be slashed, so an attestor cannot commit a wrong packet and leave before
//! the challenge is settled. Nothing here creates or destroys funds: bonded coins stay in the
//! contract until they are withdrawn, or are moved to claimable balances when slashed.

use cosmwasm_std::{coins, Addr, BankMsg, DepsMut, Env, MessageInfo, Response, Storage, Uint128};
use tributary_types::verification::{BondInfo, VerificationParams, MAX_BONDED};

use crate::error::ContractError;
use crate::state::{BONDS, BOND_COUNT, VERIFICATION};
use crate::time::later;

/// Anyone: bonds the attached coins of `bond_denom`.
pub fn bond(deps: DepsMut, info: MessageInfo) -> Result<Response, ContractError> {
    let params = VERIFICATION.load(deps.storage)?;
    let amount = cw_utils::must_pay(&info, &params.bond_denom).map_err(|_| {
        ContractError::WrongBondFunds {
            denom: params.bond_denom.clone(),
        }
    })?;
    let mut bond = load(deps.storage, &info.sender)?;
    if bond.active.is_zero() && bond.unbonding.is_zero() {
        // A first bond takes a slot of the bounded set, so dust cannot fill it.
        let min = entry_minimum(&params);
        if amount < min {
            return Err(ContractError::BondTooSmall {
                min,
                denom: params.bond_denom,
            });
        }
    }
    bond.active = bond.active.checked_add(amount)?;
    save(deps.storage, &bond)?;
    Ok(Response::new()
        .add_attribute("action", "bond")
        .add_attribute("address", info.sender.as_str())
        .add_attribute("amount", amount)
        .add_attribute("active", bond.active))
}

/// Starts unbonding `amount`; adding to an unbonding amount restarts its delay.
pub fn unbond(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    amount: Uint128,
) -> Result<Response, ContractError> {
    let params = VERIFICATION.load(deps.storage)?;
    let mut bond = load(deps.storage, &info.sender)?;
    if amount.is_zero() || amount > bond.active {
        return Err(ContractError::InsufficientBond {
            address: info.sender,
            active: bond.active,
            requested: amount,
        });
    }
    bond.active -= amount;
    bond.unbonding = bond.unbonding.checked_add(amount)?;
    let release_at = later(env.block.time, params.unbonding_seconds)?;
    bond.release_at = Some(release_at);
    save(deps.storage, &bond)?;
    Ok(Response::new()
        .add_attribute("action", "unbond")
        .add_attribute("address", info.sender.as_str())
        .add_attribute("amount", amount)
        .add_attribute("release_at", release_at.to_string()))
}

/// Pays out the unbonding amount once it is released.
pub fn withdraw_unbonded(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
) -> Result<Response, ContractError> {
    let params = VERIFICATION.load(deps.storage)?;
    let mut bond = load(deps.storage, &info.sender)?;
    if bond.unbonding.is_zero() {
        return Err(ContractError::NothingUnbonding {
            address: info.sender,
        });
    }
    let release_at = bond.release_at.unwrap_or(env.block.time);
    if env.block.time < release_at {
        return Err(ContractError::StillUnbonding { release_at });
    }
    let amount = bond.unbonding;
    bond.unbonding = Uint128::zero();
    bond.release_at = None;
    save(deps.storage, &bond)?;
    Ok(Response::new()
        .add_attribute("action", "withdraw_unbonded")
        .add_attribute("address", info.sender.as_str())
        .add_attribute("amount", amount)
        .add_message(BankMsg::Send {
            to_address: info.sender.to_string(),
            amount: coins(amount.u128(), params.bond_denom),
        }))
}

/// `address`'s bond, zeros when it has none.
pub fn load(storage: &dyn Storage, address: &Addr) -> Result<BondInfo, ContractError> {
    Ok(BONDS.may_load(storage, address)?.unwrap_or(BondInfo {
        address: address.clone(),
        active: Uint128::zero(),
        unbonding: Uint128::zero(),
        release_at: None,
    }))
}

/// Stores a bond, keeping [`BOND_COUNT`] and the bound on the set; an empty bond is removed.
fn save(storage: &mut dyn Storage, bond: &BondInfo) -> Result<(), ContractError> {
    let existed = BONDS.has(storage, &bond.address);
    let empty = bond.active.is_zero() && bond.unbonding.is_zero();
    let count = BOND_COUNT.may_load(storage)?.unwrap_or_default();
    match (existed, empty) {
        (false, true) => {}
        (true, true) => {
            BONDS.remove(storage, &bond.address);
            BOND_COUNT.save(storage, &count.saturating_sub(1))?;
        }
        (true, false) => BONDS.save(storage, &bond.address, bond)?,
        (false, false) => {
            if count as usize >= MAX_BONDED {
                return Err(ContractError::BondSetFull { max: MAX_BONDED });
            }
            BONDS.save(storage, &bond.address, bond)?;
            BOND_COUNT.save(storage, &(count + 1))?;
        }
    }
    Ok(())
}

/// Takes `bps` basis points of `address`'s bond, active first, then unbonding; returns what
/// was taken (zero for an account without a bond).
pub fn slash(
    storage: &mut dyn Storage,
    address: &Addr,
    bps: u16,
) -> Result<Uint128, ContractError> {
    let mut bond = load(storage, address)?;
    let total = bond.active.checked_add(bond.unbonding)?;
    let take = total.multiply_ratio(u128::from(bps), 10_000u128);
    let from_active = take.min(bond.active);
    bond.active -= from_active;
    bond.unbonding -= take - from_active;
    if bond.unbonding.is_zero() {
        bond.release_at = None;
    }
    save(storage, &bond)?;
    Ok(take)
}

/// Fails unless `address` has at least `min` actively bonded.
pub fn require_active(
    storage: &dyn Storage,
    address: &Addr,
    min: Uint128,
    action: &'static str,
) -> Result<(), ContractError> {
    if min.is_zero() {
        return Ok(());
    }
    let active = load(storage, address)?.active;
    if active < min {
        return Err(ContractError::NotBonded {
            address: address.clone(),
            action,
            min,
            active,
        });
    }
    Ok(())
}

/// The least a first bond must be: the lower of the two minimums that are set, at least 1.
fn entry_minimum(params: &VerificationParams) -> Uint128 {
    [params.min_verifier_bond, params.min_attestor_bond]
        .into_iter()
        .filter(|min| !min.is_zero())
        .min()
        .unwrap_or(Uint128::one())
}

/// Checks parameters against the contract's challenge window.
pub fn check_params(
    params: &VerificationParams,
    challenge_window_seconds: u64,
) -> Result<(), ContractError> {
    use tributary_types::payout::MAX_REQUEST_EXPIRY_SECONDS;
    use tributary_types::verification::MAX_COMMITTEE;
    let invalid = |reason: String| Err(ContractError::InvalidVerification { reason });
    if params.bond_denom.is_empty() {
        return invalid("bond_denom is empty".into());
    }
    if params.min_verifier_bond.is_zero() || params.challenge_bond.is_zero() {
        return invalid("min_verifier_bond and challenge_bond must be positive".into());
    }
    if params.committee_size == 0
        || params.committee_size > MAX_COMMITTEE
        || params.committee_size % 2 == 0
    {
        return invalid(format!(
            "committee_size must be odd, from 1 to {MAX_COMMITTEE}, got {}",
            params.committee_size
        ));
    }
    if params.slash_bps > 10_000 {
        return invalid(format!("slash_bps is {}, at most 10000", params.slash_bps));
    }
    let month = 30 * 24 * 60 * 60;
    for (name, seconds) in [
        ("reveal_seconds", params.reveal_seconds),
        ("vote_seconds", params.vote_seconds),
    ] {
        if seconds == 0 || seconds > month {
            return invalid(format!("{name} must be from 1 to {month}, got {seconds}"));
        }
    }
    let settle = challenge_window_seconds + params.reveal_seconds + params.vote_seconds;
    if params.unbonding_seconds < settle || params.unbonding_seconds > MAX_REQUEST_EXPIRY_SECONDS {
        return invalid(format!(
            "unbonding_seconds must cover the challenge window, reveal and vote ({settle}s) and be at most {MAX_REQUEST_EXPIRY_SECONDS}, got {}",
            params.unbonding_seconds
        ));
    }
    Ok(())
}

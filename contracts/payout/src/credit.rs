//! Prepaid credit and voucher redemption (the rules are in [`tributary_types::voucher`]).
//!
//! A redemption opens ordinary requests: each is attested, challenged, finalized and refunded
//! exactly like one paid by `RequestInference`, under the terms of its model version when it was
//! redeemed. What changes is who sends the transaction (the redeemer, for many payers at once)
//! and where the price comes from (the payer's credit, debited when the request opens). A refund
//! pays the payer's wallet, as for any request.
//!
//! The withdrawal notice is the contract's request expiry: a redeemer that redeems its vouchers
//! within a request's lifetime of serving them is paid, whatever the payer withdraws.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use cosmwasm_std::{Addr, DepsMut, Env, Event, MessageInfo, Response, Storage, Uint128};
use tributary_types::hash::hash32;
use tributary_types::payout::{RequestTerms, MAX_REDEEMED_PROMPTS};
use tributary_types::voucher::{
    account_bytes, chain_prompt, CreditAccount, PendingWithdrawal, SignedVoucher,
    VoucherRedemption, VoucherState,
};
use tributary_types::AssetInfo;

use crate::error::ContractError;
use crate::escrow::{request_event, store_request, transfer, Purchase};
use crate::state::{CONFIG, CREDITS, VOUCHERS};
use crate::terms;
use crate::time::later;

/// Adds the attached native coins to the sender's credit.
pub fn deposit(deps: DepsMut, info: MessageInfo) -> Result<Response, ContractError> {
    if info.funds.iter().all(|coin| coin.amount.is_zero()) {
        return Err(ContractError::EmptyDeposit);
    }
    let mut response = Response::new()
        .add_attribute("action", "deposit")
        .add_attribute("payer", info.sender.as_str());
    for coin in info.funds.iter().filter(|coin| !coin.amount.is_zero()) {
        let asset = AssetInfo::native(&coin.denom);
        let balance = add_credit(deps.storage, &info.sender, &asset, coin.amount)?;
        response = response.add_event(credit_event(&info.sender, &asset, coin.amount, balance));
    }
    Ok(response)
}

/// Adds `amount` of an accepted cw20 `token`, sent by `payer`, to the payer's credit.
pub fn deposit_cw20(
    deps: DepsMut,
    payer: Addr,
    token: &Addr,
    amount: Uint128,
) -> Result<Response, ContractError> {
    if amount.is_zero() {
        return Err(ContractError::EmptyDeposit);
    }
    let asset = AssetInfo::cw20(token.as_str());
    let balance = add_credit(deps.storage, &payer, &asset, amount)?;
    Ok(Response::new()
        .add_attribute("action", "deposit")
        .add_attribute("payer", payer.as_str())
        .add_event(credit_event(&payer, &asset, amount, balance)))
}

fn add_credit(
    storage: &mut dyn Storage,
    payer: &Addr,
    asset: &AssetInfo,
    amount: Uint128,
) -> Result<Uint128, ContractError> {
    let key = asset.key();
    let mut account = CREDITS
        .may_load(storage, (payer, &key))?
        .unwrap_or_default();
    account.balance = account.balance.checked_add(amount)?;
    CREDITS.save(storage, (payer, &key), &account)?;
    Ok(account.balance)
}

fn credit_event(payer: &Addr, asset: &AssetInfo, amount: Uint128, balance: Uint128) -> Event {
    Event::new("credit_deposited")
        .add_attribute("payer", payer.as_str())
        .add_attribute("asset", asset.to_string())
        .add_attribute("amount", amount)
        .add_attribute("balance", balance)
}

/// Starts (or restarts) the notice of a withdrawal of up to `amount`.
pub fn request_withdrawal(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    asset: AssetInfo,
    amount: Uint128,
) -> Result<Response, ContractError> {
    let key = asset.key();
    let mut account = CREDITS
        .may_load(deps.storage, (&info.sender, &key))?
        .unwrap_or_default();
    if amount.is_zero() || amount > account.balance {
        return Err(ContractError::InsufficientCredit {
            payer: info.sender,
            asset: asset.to_string(),
            available: account.balance,
            needed: amount,
        });
    }
    let notice = CONFIG.load(deps.storage)?.request_expiry_seconds;
    let ready_at = later(env.block.time, notice)?;
    account.withdrawal = Some(PendingWithdrawal { amount, ready_at });
    CREDITS.save(deps.storage, (&info.sender, &key), &account)?;
    Ok(Response::new()
        .add_attribute("action", "request_withdrawal")
        .add_attribute("payer", info.sender.as_str())
        .add_attribute("asset", asset.to_string())
        .add_attribute("amount", amount)
        .add_attribute("ready_at", ready_at.seconds().to_string()))
}

/// Pays out a pending withdrawal whose notice has passed, up to the credit left.
pub fn withdraw(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    asset: AssetInfo,
) -> Result<Response, ContractError> {
    let key = asset.key();
    let mut account: CreditAccount = CREDITS
        .may_load(deps.storage, (&info.sender, &key))?
        .unwrap_or_default();
    let Some(pending) = account.withdrawal.take() else {
        return Err(ContractError::NoWithdrawalPending {
            asset: asset.to_string(),
        });
    };
    if env.block.time < pending.ready_at {
        return Err(ContractError::WithdrawalNotReady {
            ready_at: pending.ready_at,
        });
    }
    let paid = pending.amount.min(account.balance);
    account.balance -= paid;
    if account.balance.is_zero() {
        CREDITS.remove(deps.storage, (&info.sender, &key));
    } else {
        CREDITS.save(deps.storage, (&info.sender, &key), &account)?;
    }
    let mut response = Response::new()
        .add_attribute("action", "withdraw")
        .add_attribute("payer", info.sender.as_str())
        .add_attribute("asset", asset.to_string())
        .add_attribute("amount", paid);
    if !paid.is_zero() {
        response = response.add_message(transfer(&info.sender, &asset, paid)?);
    }
    Ok(response)
}

/// The redeemer opens the requests its vouchers cover (see [`tributary_types::voucher`]).
pub fn redeem_vouchers(
    mut deps: DepsMut,
    env: Env,
    info: MessageInfo,
    redemptions: Vec<VoucherRedemption>,
) -> Result<Response, ContractError> {
    if redemptions.is_empty() {
        return Err(ContractError::EmptyBatch);
    }
    let prompts: usize = redemptions.iter().map(|r| r.prompt_hashes.len()).sum();
    if prompts > MAX_REDEEMED_PROMPTS {
        return Err(ContractError::BatchTooLarge {
            count: prompts,
            max: MAX_REDEEMED_PROMPTS,
        });
    }
    let config = CONFIG.load(deps.storage)?;
    // One registry read per model version in the message, however many vouchers name it.
    let mut version_terms: BTreeMap<(u64, u32), RequestTerms> = BTreeMap::new();
    let mut response = Response::new()
        .add_attribute("action", "redeem_vouchers")
        .add_attribute("redeemer", info.sender.as_str())
        .add_attribute("requests", prompts.to_string());
    for redemption in redemptions {
        let key = (
            redemption.voucher.voucher.model_id,
            redemption.voucher.voucher.version,
        );
        let terms = match version_terms.entry(key) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => {
                slot.insert(terms::snapshot(deps.as_ref(), &config, key.0, key.1)?)
            }
        };
        let terms = &*terms;
        let payer = charge(&mut deps, &env, &info.sender, terms, &redemption)?;
        for prompt_hash in redemption.prompt_hashes {
            let purchase = Purchase {
                payer: payer.clone(),
                model_id: key.0,
                version: key.1,
                prompt_hash,
                terms: terms.clone(),
            };
            let request = store_request(deps.storage, &env, &config, purchase)?;
            response = response.add_event(request_event(&request));
        }
    }
    Ok(response)
}

/// Checks one redemption by `redeemer` of a voucher on the version with `terms` and charges the
/// payer's credit for its new prompts; returns the payer.
pub(crate) fn charge(
    deps: &mut DepsMut,
    env: &Env,
    redeemer: &Addr,
    terms: &RequestTerms,
    redemption: &VoucherRedemption,
) -> Result<Addr, ContractError> {
    let voucher = &redemption.voucher.voucher;
    let payer = check_signed(deps, env, redeemer, &redemption.voucher)?;
    if !terms.attestors.contains(redeemer) {
        return Err(ContractError::UnauthorizedAttestor {
            attestor: redeemer.clone(),
            model_id: voucher.model_id,
            version: voucher.version,
        });
    }
    let series = ((&payer, redeemer), (voucher.model_id, voucher.version));
    let state = VOUCHERS.may_load(deps.storage, series)?.unwrap_or_default();
    let new = redemption.prompt_hashes.len();
    if voucher.count <= state.count || voucher.count - state.count != new as u64 {
        return Err(ContractError::VoucherCountMismatch {
            count: voucher.count,
            redeemed: state.count,
            expected: voucher.count.saturating_sub(state.count),
            got: new,
        });
    }
    let mut chain = hash32(&state.prompts)?;
    for prompt_hash in &redemption.prompt_hashes {
        chain = chain_prompt(&chain, &hash32(prompt_hash)?);
    }
    if chain.as_slice() != voucher.prompts.as_slice() {
        return Err(ContractError::VoucherChainMismatch);
    }
    let needed = terms.price.amount.checked_mul(Uint128::from(new as u64))?;
    let charged = state.charged.checked_add(needed)?;
    if charged > voucher.max_amount {
        return Err(ContractError::VoucherCapExceeded {
            max_amount: voucher.max_amount,
            charged: state.charged,
            needed,
        });
    }
    debit_credit(deps.storage, &payer, &terms.price.asset, needed)?;
    VOUCHERS.save(
        deps.storage,
        series,
        &VoucherState {
            count: voucher.count,
            charged,
            prompts: voucher.prompts.clone(),
        },
    )?;
    Ok(payer)
}

/// Checks that the voucher is for this contract and redeemer and signed by its payer's key;
/// returns the payer.
fn check_signed(
    deps: &DepsMut,
    env: &Env,
    sender: &Addr,
    signed: &SignedVoucher,
) -> Result<Addr, ContractError> {
    let voucher = &signed.voucher;
    if voucher.chain_id != env.block.chain_id || voucher.contract != env.contract.address.as_str() {
        return Err(ContractError::VoucherForOtherContract {
            chain_id: voucher.chain_id.clone(),
            contract: voucher.contract.clone(),
        });
    }
    if voucher.redeemer != sender.as_str() {
        return Err(ContractError::NotTheRedeemer {
            redeemer: voucher.redeemer.clone(),
            sender: sender.clone(),
        });
    }
    let payer = deps.api.addr_validate(&voucher.payer)?;
    let canonical = deps.api.addr_canonicalize(payer.as_str())?;
    if signed.pub_key.len() != 33 || account_bytes(&signed.pub_key) != canonical.as_slice() {
        return Err(ContractError::VoucherKeyMismatch {
            payer: voucher.payer.clone(),
        });
    }
    let digest = voucher.sign_digest()?;
    let verified = deps
        .api
        .secp256k1_verify(&digest, &signed.signature, &signed.pub_key)
        .unwrap_or(false);
    if !verified {
        return Err(ContractError::BadVoucherSignature);
    }
    Ok(payer)
}

fn debit_credit(
    storage: &mut dyn Storage,
    payer: &Addr,
    asset: &AssetInfo,
    amount: Uint128,
) -> Result<(), ContractError> {
    let key = asset.key();
    let mut account = CREDITS
        .may_load(storage, (payer, &key))?
        .unwrap_or_default();
    account.balance =
        account
            .balance
            .checked_sub(amount)
            .map_err(|_| ContractError::InsufficientCredit {
                payer: payer.clone(),
                asset: asset.to_string(),
                available: account.balance,
                needed: amount,
            })?;
    CREDITS.save(storage, (payer, &key), &account)?;
    Ok(())
}

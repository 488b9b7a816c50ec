//! The entry points, each a dispatch to one function per message.
//!
//! Funds: only `RequestInference`, `Deposit`, `Bond`, `Challenge` and `ChallengeBatchItem` take
//! native coins (a payment, prepaid credit, a bond and challenge bonds). Every other message, `Receive` included
//! (a cw20 contract calls it with tokens, never with coins), refuses attached funds with
//! [`ContractError::FundsNotAccepted`]: coins sent with them would belong to no request and no
//! balance, so nothing could ever pay them out, and an accounting where the contract holds
//! exactly its escrow, balances and pools is what the invariant tests check.

#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{
    to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Reply, Response, SubMsgResult,
};
use tributary_types::batch::BatchesResponse;
use tributary_types::payout::{ExecuteMsg, InstantiateMsg, MigrateMsg, QueryMsg};
use tributary_types::upgrade::check_upgrade;

use crate::error::ContractError;
use tributary_types::verification::DisputeInputs;

use crate::{
    admin, attribution, batch, bond, claim, credit, dispute, escrow, pool, query, settlement,
};

/// The cw2 name of this contract.
pub const CONTRACT_NAME: &str = "crates.io:tributary-payout";
/// The cw2 version of this contract.
pub const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    cw2::set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    admin::instantiate(deps, info, msg)
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, ContractError> {
    // Only a native payment carries funds; anything attached to another message would be
    // stuck in the contract, held by no request and no balance.
    if !matches!(
        msg,
        ExecuteMsg::RequestInference { .. }
            | ExecuteMsg::Deposit {}
            | ExecuteMsg::Bond {}
            | ExecuteMsg::Challenge { .. }
            | ExecuteMsg::ChallengeBatchItem { .. }
    ) {
        cw_utils::nonpayable(&info)?;
    }
    match msg {
        ExecuteMsg::RequestInference {
            model_id,
            version,
            prompt_hash,
        } => escrow::request_inference(deps, env, info, model_id, version, prompt_hash),
        ExecuteMsg::Receive(receive) => escrow::receive_cw20(deps, env, info, receive),
        ExecuteMsg::CommitAttribution { packets } => {
            attribution::commit_attribution(deps, env, info, packets)
        }
        ExecuteMsg::Finalize { request_ids } => settlement::finalize(deps, env, request_ids),
        ExecuteMsg::Refund { request_id } => escrow::refund(deps, env, request_id),
        ExecuteMsg::Claim {} => claim::claim(deps, info),
        ExecuteMsg::ClaimPool {
            datanet_id,
            version,
            asset,
            contribution_ids,
        } => pool::claim_pool(deps, datanet_id, version, asset, contribution_ids),
        ExecuteMsg::BindChannel {
            channel_id,
            attestor,
            connection_id,
            counterparty_port_id,
        } => admin::bind_channel(
            deps,
            info,
            admin::ChannelRequest {
                channel_id,
                attestor,
                connection_id,
                counterparty_port_id,
            },
        ),
        ExecuteMsg::Deposit {} => credit::deposit(deps, info),
        ExecuteMsg::RequestWithdrawal { asset, amount } => {
            credit::request_withdrawal(deps, env, info, asset, amount)
        }
        ExecuteMsg::Withdraw { asset } => credit::withdraw(deps, env, info, asset),
        ExecuteMsg::RedeemVouchers { redemptions } => {
            credit::redeem_vouchers(deps, env, info, redemptions)
        }
        ExecuteMsg::SettleBatch {
            redemptions,
            results,
        } => batch::settle_batch(deps, env, info, redemptions, results),
        ExecuteMsg::FinalizeBatches { batch_ids } => batch::finalize_batches(deps, env, batch_ids),
        ExecuteMsg::ChallengeBatchItem {
            batch_id,
            index,
            leaf,
            proof,
            result,
        } => batch::challenge_item(
            deps,
            env,
            info,
            batch::ItemChallenge {
                batch_id,
                index,
                leaf,
                proof,
                result,
            },
        ),
        ExecuteMsg::Bond {} => bond::bond(deps, info),
        ExecuteMsg::Unbond { amount } => bond::unbond(deps, env, info, amount),
        ExecuteMsg::WithdrawUnbonded {} => bond::withdraw_unbonded(deps, env, info),
        ExecuteMsg::Challenge { request_id, packet } => {
            dispute::challenge(deps, env, info, request_id, packet)
        }
        ExecuteMsg::RevealInputs {
            request_id,
            prompt,
            completion,
        } => dispute::reveal_inputs(deps, env, request_id, DisputeInputs { prompt, completion }),
        ExecuteMsg::Vote {
            request_id,
            packet_hash,
        } => dispute::vote(deps, env, info, request_id, packet_hash),
        ExecuteMsg::Resolve { request_id } => dispute::resolve(deps, env, request_id),
        ExecuteMsg::UpdateVerification { params } => {
            dispute::update_verification(deps, info, params)
        }
        ExecuteMsg::UnbindChannel { channel_id } => admin::unbind_channel(deps, info, channel_id),
        ExecuteMsg::UpdateConfig {
            admin,
            treasury,
            challenge_window_seconds,
            request_expiry_seconds,
            accepted_cw20,
            max_entries,
        } => admin::update_config(
            deps,
            info,
            admin::ConfigUpdate {
                admin,
                treasury,
                challenge_window_seconds,
                request_expiry_seconds,
                accepted_cw20,
                max_entries,
            },
        ),
    }
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> Result<Binary, ContractError> {
    match msg {
        QueryMsg::Config {} => query::config(deps),
        QueryMsg::Request { request_id } => query::request(deps, request_id),
        QueryMsg::Terms { request_id } => query::terms(deps, request_id),
        QueryMsg::Requests {
            status,
            payer,
            start_after,
            limit,
        } => query::requests(deps, status, payer, start_after, limit),
        QueryMsg::Commits { request_id } => query::commits(deps, request_id),
        QueryMsg::Packet {
            request_id,
            packet_hash,
        } => query::packet(deps, request_id, packet_hash),
        QueryMsg::Balances {
            address,
            start_after,
            limit,
        } => query::balances(deps, address, start_after, limit),
        QueryMsg::Batch { batch_id } => Ok(to_json_binary(&batch::query_batch(deps, batch_id)?)?),
        QueryMsg::Batches { start_after, limit } => Ok(to_json_binary(&BatchesResponse {
            batches: batch::query_batches(deps, start_after, limit)?,
        })?),
        QueryMsg::Credit { address, asset } => query::credit(deps, address, asset),
        QueryMsg::RedeemedVouchers {
            payer,
            redeemer,
            model_id,
            version,
        } => query::redeemed_vouchers(deps, payer, redeemer, model_id, version),
        QueryMsg::Pools {
            datanet_id,
            version,
            start_after,
            limit,
        } => query::pools(deps, datanet_id, version, start_after, limit),
        QueryMsg::PoolOwed {
            datanet_id,
            version,
            asset,
            contribution_id,
        } => query::pool_owed(deps, datanet_id, version, asset, contribution_id),
        QueryMsg::Channels { start_after, limit } => query::channels(deps, start_after, limit),
        QueryMsg::Verification {} => query::verification(deps),
        QueryMsg::BondOf { address } => query::bond(deps, address),
        QueryMsg::Bonds { start_after, limit } => query::bonds(deps, start_after, limit),
        QueryMsg::ChallengeOf { request_id } => query::challenge(deps, request_id),
        QueryMsg::OpenChallenges { start_after, limit } => {
            query::open_challenges(deps, start_after, limit)
        }
    }
}

/// Replies of the submessages this contract sends.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn reply(deps: DepsMut, _env: Env, msg: Reply) -> Result<Response, ContractError> {
    match (msg.id, msg.result) {
        (settlement::USAGE_REPLY_ID, SubMsgResult::Err(error)) => {
            Ok(settlement::usage_not_recorded(error))
        }
        (id, result) if claim::is_payout_reply(id) => claim::payout_replied(deps, id, result),
        (id, _) => Err(ContractError::UnknownReply { id }),
    }
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn migrate(deps: DepsMut, _env: Env, _msg: MigrateMsg) -> Result<Response, ContractError> {
    let stored = cw2::get_contract_version(deps.storage)?;
    check_upgrade(
        &stored.contract,
        &stored.version,
        CONTRACT_NAME,
        CONTRACT_VERSION,
    )?;
    cw2::set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    Ok(Response::new()
        .add_attribute("action", "migrate")
        .add_attribute("from_version", stored.version)
        .add_attribute("to_version", CONTRACT_VERSION))
}

//! Read-only views of requests and their terms, commits, packets, balances, prepaid credit and
//! vouchers, pools and channel bindings.

use cosmwasm_std::{to_json_binary, Binary, Deps, HexBinary, Order, StdResult};
use cw_storage_plus::Bound;
use tributary_types::datanet::Earning;
use tributary_types::pagination::{page_limit, MAX_LIMIT};
use tributary_types::payout::{
    BalancesResponse, ChannelBinding, CommitInfo, InferenceRequest, RequestStatus, RequestsResponse,
};
use tributary_types::verification::{BondsResponse, ChallengesResponse};
use tributary_types::AssetInfo;

use crate::error::ContractError;
use crate::state::{
    BALANCES, BONDS, CHALLENGES, CHANNELS, COMMITS, CONFIG, CREDITS, OPEN_CHALLENGES, PACKETS,
    REQUESTS, VERIFICATION, VOUCHERS,
};
use crate::{pool, terms};

/// The configuration.
pub fn config(deps: Deps) -> Result<Binary, ContractError> {
    Ok(to_json_binary(&CONFIG.load(deps.storage)?)?)
}

/// One request.
pub fn request(deps: Deps, request_id: u64) -> Result<Binary, ContractError> {
    let request = REQUESTS
        .may_load(deps.storage, request_id)?
        .ok_or(ContractError::UnknownRequest { id: request_id })?;
    Ok(to_json_binary(&request)?)
}

/// The rules a request was paid under.
pub fn terms(deps: Deps, request_id: u64) -> Result<Binary, ContractError> {
    Ok(to_json_binary(&terms::load(deps, request_id)?)?)
}

/// A payer's prepaid credit in one asset.
pub fn credit(deps: Deps, address: String, asset: AssetInfo) -> Result<Binary, ContractError> {
    let address = deps.api.addr_validate(&address)?;
    let account = CREDITS
        .may_load(deps.storage, (&address, &asset.key()))?
        .unwrap_or_default();
    Ok(to_json_binary(&account)?)
}

/// What a payer's vouchers to a redeemer on a model version redeemed so far.
pub fn redeemed_vouchers(
    deps: Deps,
    payer: String,
    redeemer: String,
    model_id: u64,
    version: u32,
) -> Result<Binary, ContractError> {
    let payer = deps.api.addr_validate(&payer)?;
    let redeemer = deps.api.addr_validate(&redeemer)?;
    let state = VOUCHERS
        .may_load(deps.storage, ((&payer, &redeemer), (model_id, version)))?
        .unwrap_or_default();
    Ok(to_json_binary(&state)?)
}

/// Requests by id, filtered by status or payer through the indexes.
pub fn requests(
    deps: Deps,
    status: Option<RequestStatus>,
    payer: Option<String>,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Result<Binary, ContractError> {
    let limit = page_limit(limit);
    let min = start_after.map(Bound::exclusive);
    let page = match (payer, status) {
        // With both filters the payer's own requests are scanned, a short list in practice.
        (Some(payer), status) => {
            let payer = deps.api.addr_validate(&payer)?;
            REQUESTS
                .idx
                .payer
                .prefix(payer)
                .range(deps.storage, min, None, Order::Ascending)
                .filter(|item| {
                    item.as_ref()
                        .map_or(true, |(_, r)| status.is_none_or(|s| r.status == s))
                })
                .take(limit)
                .map(|item| item.map(|(_, r)| r))
                .collect::<StdResult<Vec<InferenceRequest>>>()?
        }
        (None, Some(status)) => REQUESTS
            .idx
            .status
            .prefix(status.as_str().to_string())
            .range(deps.storage, min, None, Order::Ascending)
            .take(limit)
            .map(|item| item.map(|(_, r)| r))
            .collect::<StdResult<Vec<_>>>()?,
        (None, None) => REQUESTS
            .range(deps.storage, min, None, Order::Ascending)
            .take(limit)
            .map(|item| item.map(|(_, r)| r))
            .collect::<StdResult<Vec<_>>>()?,
    };
    Ok(to_json_binary(&RequestsResponse { requests: page })?)
}

/// Every attestor's commit for a request, in address order.
pub fn commits(deps: Deps, request_id: u64) -> Result<Binary, ContractError> {
    // One commit per attestor of the version, so a single bounded page covers them.
    let commits = COMMITS
        .prefix(request_id)
        .range(deps.storage, None, None, Order::Ascending)
        .take(MAX_LIMIT as usize)
        .map(|item| {
            item.map(|(attestor, hash)| CommitInfo {
                attestor,
                packet_hash: HexBinary::from(hash),
            })
        })
        .collect::<StdResult<Vec<_>>>()?;
    Ok(to_json_binary(&commits)?)
}

/// A committed packet by its hash.
pub fn packet(
    deps: Deps,
    request_id: u64,
    packet_hash: HexBinary,
) -> Result<Binary, ContractError> {
    let packet = PACKETS
        .may_load(deps.storage, (request_id, packet_hash.as_slice()))?
        .ok_or_else(|| ContractError::UnknownPacket {
            request_id,
            packet_hash: packet_hash.to_hex(),
        })?;
    Ok(to_json_binary(&packet)?)
}

/// What `address` can claim, by asset key order.
pub fn balances(
    deps: Deps,
    address: String,
    start_after: Option<AssetInfo>,
    limit: Option<u32>,
) -> Result<Binary, ContractError> {
    let owner = deps.api.addr_validate(&address)?;
    let start = start_after.map(|asset| asset.key());
    let balances = BALANCES
        .prefix(&owner)
        .range(
            deps.storage,
            start.as_deref().map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_limit(limit))
        .filter_map(|item| match item {
            Ok((key, amount)) => {
                AssetInfo::from_key(&key).map(|asset| Ok(Earning { asset, amount }))
            }
            Err(err) => Some(Err(err)),
        })
        .collect::<StdResult<Vec<_>>>()?;
    Ok(to_json_binary(&BalancesResponse { balances })?)
}

/// The pools of a datanet version, by asset.
pub fn pools(
    deps: Deps,
    datanet_id: u64,
    version: u32,
    start_after: Option<AssetInfo>,
    limit: Option<u32>,
) -> Result<Binary, ContractError> {
    Ok(to_json_binary(&pool::pools(
        deps,
        datanet_id,
        version,
        start_after,
        limit,
    )?)?)
}

/// What a contribution can still be credited from a pool.
pub fn pool_owed(
    deps: Deps,
    datanet_id: u64,
    version: u32,
    asset: AssetInfo,
    contribution_id: u64,
) -> Result<Binary, ContractError> {
    Ok(to_json_binary(&pool::owed(
        deps,
        datanet_id,
        version,
        asset,
        contribution_id,
    )?)?)
}

/// The channel bindings, by channel id.
pub fn channels(
    deps: Deps,
    start_after: Option<String>,
    limit: Option<u32>,
) -> Result<Binary, ContractError> {
    let start = start_after.as_deref().map(Bound::exclusive);
    let bindings = CHANNELS
        .range(deps.storage, start, None, Order::Ascending)
        .take(page_limit(limit))
        .map(|item| item.map(|(_, binding)| binding))
        .collect::<StdResult<Vec<ChannelBinding>>>()?;
    Ok(to_json_binary(&bindings)?)
}

/// The bond and dispute parameters.
pub fn verification(deps: Deps) -> Result<Binary, ContractError> {
    Ok(to_json_binary(&VERIFICATION.load(deps.storage)?)?)
}

/// One account's bond.
pub fn bond(deps: Deps, address: String) -> Result<Binary, ContractError> {
    let address = deps.api.addr_validate(&address)?;
    Ok(to_json_binary(&crate::bond::load(deps.storage, &address)?)?)
}

/// Bonds by address.
pub fn bonds(
    deps: Deps,
    start_after: Option<String>,
    limit: Option<u32>,
) -> Result<Binary, ContractError> {
    let start = start_after
        .map(|a| deps.api.addr_validate(&a))
        .transpose()?;
    let bonds = BONDS
        .range(
            deps.storage,
            start.as_ref().map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_limit(limit))
        .map(|item| item.map(|(_, bond)| bond))
        .collect::<StdResult<Vec<_>>>()?;
    Ok(to_json_binary(&BondsResponse { bonds })?)
}

/// The challenge of a request, if any.
pub fn challenge(deps: Deps, request_id: u64) -> Result<Binary, ContractError> {
    Ok(to_json_binary(
        &CHALLENGES.may_load(deps.storage, request_id)?,
    )?)
}

/// Unresolved challenges by request id.
pub fn open_challenges(
    deps: Deps,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Result<Binary, ContractError> {
    let challenges = OPEN_CHALLENGES
        .keys(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_limit(limit))
        .map(|id| CHALLENGES.load(deps.storage, id?))
        .collect::<StdResult<Vec<_>>>()?;
    Ok(to_json_binary(&ChallengesResponse { challenges })?)
}

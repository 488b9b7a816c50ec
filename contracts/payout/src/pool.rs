//! Datanet pools: where the contributors' share goes when a finalized packet names no
//! contribution.
//!
//! The contributors' share of a fee belongs to contributors whatever the packet says. A packet
//! with entries must weigh exactly 10 000 bps, so it hands out the whole share; a packet with no
//! entries (the engine found nothing to attribute, or an attestor chose to name nothing) would
//! otherwise leave the share to someone. It goes instead to the request's lineage, split among
//! the lineage's datanet versions in proportion to their sizes (so every contribution of the
//! lineage weighs the same, [`tributary_types::split::pool_shares`]), and each version's part
//! into its pool for the fee's asset.
//!
//! A pool is shared equally by the accepted contributions its version froze, and the version
//! never changes, so no per-contribution bookkeeping happens on payment: the pool keeps the total
//! paid in, and contribution `c` at leaf `l` is owed
//! [`tributary_types::split::pool_entitlement`]`(total, contributions, l)` minus what it was
//! already credited. That entitlement only grows with the total and the entitlements of all
//! leaves sum to the total exactly, so no rounding dust is ever left to anyone but the
//! contributors. Crediting is `ClaimPool` with explicit contribution ids (bounded by
//! [`MAX_POOL_CLAIMS`]), so its gas does not grow with the size of a datanet. Anyone may call it:
//! it only ever credits a contribution's own contributor, who then `Claim`s as for any balance.
//! A contribution's leaf and contributor come from the datanet contract, and only an accepted
//! contribution of that datanet with a leaf inside the version is in the pool.
//!
//! Pool payouts are not usage records: no packet attributed the inference to these
//! contributions, so their usage counts stay as they are.

use cosmwasm_std::{Deps, DepsMut, Order, Response, StdResult, Storage, Uint128};
use cw_storage_plus::Bound;
use tributary_types::datanet::ContributionStatus;
use tributary_types::pagination::page_limit;
use tributary_types::payout::{LineageVersion, Pool, PoolsResponse, MAX_POOL_CLAIMS};
use tributary_types::split::{pool_entitlement, pool_shares};
use tributary_types::AssetInfo;

use crate::error::ContractError;
use crate::querier;
use crate::settlement::credit;
use crate::state::{PoolState, CONFIG, POOLS, POOL_CREDITED};

/// Pays `amount` of `asset` into the pools of `lineage`, split by the versions' sizes; returns
/// what each version received, in lineage order.
pub fn deposit(
    storage: &mut dyn Storage,
    lineage: &[LineageVersion],
    asset: &AssetInfo,
    amount: Uint128,
) -> Result<Vec<Uint128>, ContractError> {
    let sizes: Vec<u64> = lineage.iter().map(|v| v.contributions).collect();
    let shares = pool_shares(amount, &sizes)?;
    let key = asset.key();
    for (version, share) in lineage.iter().zip(&shares) {
        if share.is_zero() {
            continue;
        }
        let pool_key = (version.root.datanet_id, version.root.version, key.as_str());
        let mut pool = POOLS.may_load(storage, pool_key)?.unwrap_or(PoolState {
            contributions: version.contributions,
            total: Uint128::zero(),
            distributed: Uint128::zero(),
        });
        pool.total = pool.total.checked_add(*share)?;
        POOLS.save(storage, pool_key, &pool)?;
    }
    Ok(shares)
}

/// Credits each listed contribution's contributor with what it is owed from one pool.
pub fn claim_pool(
    deps: DepsMut,
    datanet_id: u64,
    version: u32,
    asset: AssetInfo,
    contribution_ids: Vec<u64>,
) -> Result<Response, ContractError> {
    if contribution_ids.is_empty() {
        return Err(ContractError::EmptyBatch);
    }
    if contribution_ids.len() > MAX_POOL_CLAIMS {
        return Err(ContractError::BatchTooLarge {
            count: contribution_ids.len(),
            max: MAX_POOL_CLAIMS,
        });
    }
    let config = CONFIG.load(deps.storage)?;
    let key = asset.key();
    let pool_key = (datanet_id, version, key.as_str());
    let mut pool =
        POOLS
            .may_load(deps.storage, pool_key)?
            .ok_or_else(|| ContractError::UnknownPool {
                datanet_id,
                version,
                asset: asset.clone(),
            })?;
    let mut response = Response::new()
        .add_attribute("action", "claim_pool")
        .add_attribute("datanet_id", datanet_id.to_string())
        .add_attribute("version", version.to_string())
        .add_attribute("asset", asset.to_string());
    let mut credited_now = Uint128::zero();
    for contribution_id in contribution_ids {
        let not_in_pool = || ContractError::ContributionNotInPool {
            contribution_id,
            datanet_id,
            version,
        };
        let contribution = querier::contribution(deps.as_ref(), &config, contribution_id)
            .ok_or_else(not_in_pool)?;
        let leaf = match contribution.leaf_index {
            Some(leaf)
                if contribution.datanet_id == datanet_id
                    && contribution.status == ContributionStatus::Accepted
                    && leaf < pool.contributions =>
            {
                leaf
            }
            _ => return Err(not_in_pool()),
        };
        let credited_key = ((datanet_id, version), key.as_str(), contribution_id);
        let credited = POOL_CREDITED
            .may_load(deps.storage, credited_key)?
            .unwrap_or_default();
        let owed = pool_entitlement(pool.total, pool.contributions, leaf).checked_sub(credited)?;
        if owed.is_zero() {
            continue;
        }
        POOL_CREDITED.save(deps.storage, credited_key, &credited.checked_add(owed)?)?;
        credit(deps.storage, &contribution.contributor, &asset, owed)?;
        credited_now = credited_now.checked_add(owed)?;
        response = response.add_attribute(
            "credited",
            format!("{contribution_id}:{}:{owed}", contribution.contributor),
        );
    }
    if credited_now.is_zero() {
        return Err(ContractError::NothingToClaim);
    }
    pool.distributed = pool.distributed.checked_add(credited_now)?;
    POOLS.save(deps.storage, pool_key, &pool)?;
    Ok(response.add_attribute("amount", credited_now))
}

/// The pools of one datanet version, by asset key.
pub fn pools(
    deps: Deps,
    datanet_id: u64,
    version: u32,
    start_after: Option<AssetInfo>,
    limit: Option<u32>,
) -> Result<PoolsResponse, ContractError> {
    let start = start_after.map(|asset| asset.key());
    let pools = POOLS
        .prefix((datanet_id, version))
        .range(
            deps.storage,
            start.as_deref().map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_limit(limit))
        .filter_map(|item| match item {
            Ok((key, pool)) => AssetInfo::from_key(&key).map(|asset| {
                Ok(Pool {
                    datanet_id,
                    version,
                    asset,
                    contributions: pool.contributions,
                    total: pool.total,
                    distributed: pool.distributed,
                })
            }),
            Err(err) => Some(Err(err)),
        })
        .collect::<StdResult<Vec<_>>>()?;
    Ok(PoolsResponse { pools })
}

/// What `contribution_id` can still be credited from one pool; zero when it is not in it.
pub fn owed(
    deps: Deps,
    datanet_id: u64,
    version: u32,
    asset: AssetInfo,
    contribution_id: u64,
) -> Result<Uint128, ContractError> {
    let key = asset.key();
    let Some(pool) = POOLS.may_load(deps.storage, (datanet_id, version, key.as_str()))? else {
        return Ok(Uint128::zero());
    };
    let config = CONFIG.load(deps.storage)?;
    let Some(contribution) = querier::contribution(deps, &config, contribution_id) else {
        return Ok(Uint128::zero());
    };
    let leaf = match contribution.leaf_index {
        Some(leaf)
            if contribution.datanet_id == datanet_id
                && contribution.status == ContributionStatus::Accepted =>
        {
            leaf
        }
        _ => return Ok(Uint128::zero()),
    };
    let credited = POOL_CREDITED
        .may_load(
            deps.storage,
            ((datanet_id, version), key.as_str(), contribution_id),
        )?
        .unwrap_or_default();
    Ok(pool_entitlement(pool.total, pool.contributions, leaf).saturating_sub(credited))
}

use cosmwasm_std::{Addr, Deps, HexBinary, Order, StdResult, Storage};
use cw_storage_plus::Bound;
use tributary_types::asset::AssetInfo;
use tributary_types::datanet::{
    Commitment, CommitmentsResponse, ConfigResponse, Contribution, ContributionStatus,
    ContributionsResponse, ContributorStats, Datanet, DatanetVersion, DatanetsResponse, Earning,
    InclusionProofResponse, VersionsResponse,
};
use tributary_types::hash::{parse_content_hash, to_hex, Hash32};
use tributary_types::merkle::{inclusion_path, NodeSource};
use tributary_types::pagination::{page_limit, MAX_LIMIT};

use crate::error::ContractError;
use crate::execute::{load_contribution, load_datanet, validate_addr};
use crate::state::{
    ALLOWED, COMMITMENTS, CONFIG, CONTRIBUTIONS, CURATORS, DATANETS, DATANET_TAGS, EARNED, HASHES,
    LEAVES, LIVE_HASHES, NODES, OPEN_COMMITMENTS, STATS, VERSIONS,
};

/// The stored subtree hashes of one datanet's tree, for rebuilding inclusion proofs.
struct StoredNodes<'a> {
    storage: &'a dyn Storage,
    datanet_id: u64,
}

impl NodeSource for StoredNodes<'_> {
    type Error = ContractError;

    fn node(&self, height: u32, index: u64) -> Result<Hash32, ContractError> {
        let missing = || ContractError::MissingNode {
            datanet_id: self.datanet_id,
            height,
            index,
        };
        NODES
            .may_load(self.storage, (self.datanet_id, height, index))?
            .ok_or_else(missing)?
            .as_slice()
            .try_into()
            .map_err(|_| missing())
    }
}

fn load_version(
    storage: &dyn Storage,
    datanet_id: u64,
    version: u32,
) -> Result<DatanetVersion, ContractError> {
    VERSIONS
        .may_load(storage, (datanet_id, version))?
        .ok_or(ContractError::VersionNotFound {
            datanet_id,
            version,
        })
}

/// The admin and the usage recorders.
pub fn config(deps: Deps) -> Result<ConfigResponse, ContractError> {
    let config = CONFIG.load(deps.storage)?;
    Ok(ConfigResponse {
        admin: config.admin,
        usage_recorder: config.usage_recorder,
        retired_usage_recorders: config.retired_usage_recorders,
    })
}

/// One datanet.
pub fn datanet(deps: Deps, datanet_id: u64) -> Result<Datanet, ContractError> {
    load_datanet(deps.storage, datanet_id)
}

/// Datanets by id, optionally only those carrying `domain_tag`.
pub fn datanets(
    deps: Deps,
    domain_tag: Option<String>,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Result<DatanetsResponse, ContractError> {
    let limit = page_limit(limit);
    let start = start_after.map(Bound::exclusive);
    let datanets = match domain_tag {
        Some(tag) => DATANET_TAGS
            .prefix(tag.as_str())
            .keys(deps.storage, start, None, Order::Ascending)
            .take(limit)
            .map(|id| DATANETS.load(deps.storage, id?))
            .collect::<StdResult<Vec<_>>>()?,
        None => DATANETS
            .range(deps.storage, start, None, Order::Ascending)
            .take(limit)
            .map(|item| item.map(|(_, datanet)| datanet))
            .collect::<StdResult<Vec<_>>>()?,
    };
    Ok(DatanetsResponse { datanets })
}

/// Every curator of a datanet (their number is capped, so this is bounded).
pub fn curators(deps: Deps, datanet_id: u64) -> Result<Vec<Addr>, ContractError> {
    load_datanet(deps.storage, datanet_id)?;
    Ok(CURATORS
        .prefix(datanet_id)
        .keys(deps.storage, None, None, Order::Ascending)
        .collect::<StdResult<Vec<_>>>()?)
}

/// Whether `contributor` is on the datanet's allow list.
pub fn is_allowed(deps: Deps, datanet_id: u64, contributor: String) -> Result<bool, ContractError> {
    load_datanet(deps.storage, datanet_id)?;
    let contributor = validate_addr(deps.api, &contributor)?;
    Ok(ALLOWED.has(deps.storage, (datanet_id, &contributor)))
}

/// One revealed contribution.
pub fn contribution(deps: Deps, contribution_id: u64) -> Result<Contribution, ContractError> {
    if COMMITMENTS.has(deps.storage, contribution_id) {
        return Err(ContractError::NotRevealed { contribution_id });
    }
    load_contribution(deps.storage, contribution_id)
}

/// One unrevealed commitment.
pub fn commitment(deps: Deps, contribution_id: u64) -> Result<Commitment, ContractError> {
    match COMMITMENTS.may_load(deps.storage, contribution_id)? {
        Some(commitment) => Ok(commitment),
        None => {
            load_contribution(deps.storage, contribution_id)?;
            Err(ContractError::AlreadyRevealed { contribution_id })
        }
    }
}

/// A contributor's unrevealed commitments, by id.
pub fn commitments(
    deps: Deps,
    contributor: String,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Result<CommitmentsResponse, ContractError> {
    let contributor = validate_addr(deps.api, &contributor)?;
    let commitments = OPEN_COMMITMENTS
        .prefix(&contributor)
        .keys(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_limit(limit))
        .map(|id| COMMITMENTS.load(deps.storage, id?))
        .collect::<StdResult<Vec<_>>>()?;
    Ok(CommitmentsResponse { commitments })
}

/// Every pending or accepted contribution of `content_hash`, in any datanet, by id.
pub fn contributions_by_hash(
    deps: Deps,
    content_hash: String,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Result<ContributionsResponse, ContractError> {
    let content_hash = to_hex(&parse_content_hash(&content_hash)?);
    let contributions = LIVE_HASHES
        .prefix(&content_hash)
        .keys(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_limit(limit))
        .map(|id| CONTRIBUTIONS.load(deps.storage, id?))
        .collect::<StdResult<Vec<_>>>()?;
    Ok(ContributionsResponse { contributions })
}

/// The pending or accepted contribution that owns `content_hash` in a datanet, if any.
pub fn contribution_by_hash(
    deps: Deps,
    datanet_id: u64,
    content_hash: String,
) -> Result<Option<Contribution>, ContractError> {
    load_datanet(deps.storage, datanet_id)?;
    let content_hash = to_hex(&parse_content_hash(&content_hash)?);
    HASHES
        .may_load(deps.storage, (datanet_id, &content_hash))?
        .map(|id| load_contribution(deps.storage, id))
        .transpose()
}

/// Contributions of a datanet by id, optionally only those with `status`.
pub fn contributions(
    deps: Deps,
    datanet_id: u64,
    status: Option<ContributionStatus>,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Result<ContributionsResponse, ContractError> {
    load_datanet(deps.storage, datanet_id)?;
    let limit = page_limit(limit);
    let start = start_after.map(Bound::exclusive);
    let indexes = &CONTRIBUTIONS.idx;
    let prefix = match status {
        Some(status) => indexes
            .datanet_status
            .prefix((datanet_id, status.as_str().to_string())),
        None => indexes.datanet.prefix(datanet_id),
    };
    let contributions = prefix
        .range(deps.storage, start, None, Order::Ascending)
        .take(limit)
        .map(|item| item.map(|(_, c)| c))
        .collect::<StdResult<Vec<_>>>()?;
    Ok(ContributionsResponse { contributions })
}

/// Contributions of one contributor across datanets, by id.
pub fn contributions_by_contributor(
    deps: Deps,
    contributor: String,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Result<ContributionsResponse, ContractError> {
    let contributor = validate_addr(deps.api, &contributor)?;
    let contributions = CONTRIBUTIONS
        .idx
        .contributor
        .prefix(contributor)
        .range(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_limit(limit))
        .map(|item| item.map(|(_, c)| c))
        .collect::<StdResult<Vec<_>>>()?;
    Ok(ContributionsResponse { contributions })
}

/// One frozen version.
pub fn version(deps: Deps, datanet_id: u64, version: u32) -> Result<DatanetVersion, ContractError> {
    load_version(deps.storage, datanet_id, version)
}

/// Versions of a datanet, oldest first.
pub fn versions(
    deps: Deps,
    datanet_id: u64,
    start_after: Option<u32>,
    limit: Option<u32>,
) -> Result<VersionsResponse, ContractError> {
    load_datanet(deps.storage, datanet_id)?;
    let versions = VERSIONS
        .prefix(datanet_id)
        .range(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_limit(limit))
        .map(|item| item.map(|(_, v)| v))
        .collect::<StdResult<Vec<_>>>()?;
    Ok(VersionsResponse { versions })
}

/// The contributions of a version in leaf order, starting after leaf `start_after`.
pub fn version_contributions(
    deps: Deps,
    datanet_id: u64,
    version: u32,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Result<ContributionsResponse, ContractError> {
    let frozen = load_version(deps.storage, datanet_id, version)?;
    let contributions = LEAVES
        .prefix(datanet_id)
        .range(
            deps.storage,
            start_after.map(Bound::exclusive),
            Some(Bound::exclusive(frozen.count)),
            Order::Ascending,
        )
        .take(page_limit(limit))
        .map(|item| {
            let (_, id) = item?;
            load_contribution(deps.storage, id)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ContributionsResponse { contributions })
}

/// The audit path proving a contribution's leaf is in a version's tree.
pub fn inclusion_proof(
    deps: Deps,
    contribution_id: u64,
    version: u32,
) -> Result<InclusionProofResponse, ContractError> {
    let contribution = load_contribution(deps.storage, contribution_id)?;
    let datanet_id = contribution.datanet_id;
    let frozen = load_version(deps.storage, datanet_id, version)?;
    // A superseded contribution that was accepted keeps its leaf, so it is proven like others.
    let (ContributionStatus::Accepted | ContributionStatus::Superseded, Some(leaf_index)) =
        (contribution.status, contribution.leaf_index)
    else {
        return Err(ContractError::NotAccepted {
            contribution_id,
            status: contribution.status,
        });
    };
    let not_in_version = || ContractError::NotInVersion {
        contribution_id,
        leaf_index,
        version,
        count: frozen.count,
    };
    let source = StoredNodes {
        storage: deps.storage,
        datanet_id,
    };
    let path = inclusion_path(&source, leaf_index, frozen.count)?.ok_or_else(not_in_version)?;
    let leaf = source.node(0, leaf_index)?;
    Ok(InclusionProofResponse {
        contribution_id,
        datanet_id,
        version,
        leaf: HexBinary::from(leaf.as_slice()),
        leaf_index,
        tree_size: frozen.count,
        path: path
            .iter()
            .map(|hash| HexBinary::from(hash.as_slice()))
            .collect(),
        root: frozen.root,
    })
}

/// A contributor's totals, zero for an address that never contributed.
pub fn contributor_stats(
    deps: Deps,
    contributor: String,
) -> Result<ContributorStats, ContractError> {
    let contributor = validate_addr(deps.api, &contributor)?;
    let stats = STATS
        .may_load(deps.storage, &contributor)?
        .unwrap_or_default();
    // Assets come from the usage recorder, which pays in the few assets models are priced in;
    // the cap keeps the answer bounded all the same.
    let earned = EARNED
        .prefix(&contributor)
        .range(deps.storage, None, None, Order::Ascending)
        .take(MAX_LIMIT as usize)
        .filter_map(|item| match item {
            Ok((key, amount)) => {
                AssetInfo::from_key(&key).map(|asset| Ok(Earning { asset, amount }))
            }
            Err(err) => Some(Err(err)),
        })
        .collect::<StdResult<Vec<_>>>()?;
    Ok(ContributorStats {
        contributor,
        contributed: stats.contributed,
        accepted: stats.accepted,
        rejected: stats.rejected,
        usage: stats.usage,
        earned,
    })
}

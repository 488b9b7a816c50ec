//! Messages of the datanet contract: datanets, contributions, curation, versions and usage.

use crate::asset::AssetInfo;
use crate::merkle::Frontier;
use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Addr, HexBinary, Timestamp, Uint128};

/// The cw2 name of the datanet contract, by which other contracts recognize it.
pub const CONTRACT_NAME: &str = "crates.io:tributary-datanet";

/// Who may contribute and whether contributions wait for a curator.
#[cw_serde]
#[derive(Copy, Eq)]
pub enum CurationPolicy {
    /// Anyone contributes; contributions are accepted at once.
    Open,
    /// Anyone contributes; curators accept or reject each contribution.
    CuratorReview,
    /// Only allow-listed contributors may contribute; their contributions are accepted at once.
    AllowList,
}

/// Where a contribution stands.
#[cw_serde]
#[derive(Copy, Eq, Hash)]
pub enum ContributionStatus {
    Pending,
    Accepted,
    Rejected,
    Withdrawn,
}

impl ContributionStatus {
    /// A short stable name, used in storage index keys and events.
    pub fn as_str(&self) -> &'static str {
        match self {
            ContributionStatus::Pending => "pending",
            ContributionStatus::Accepted => "accepted",
            ContributionStatus::Rejected => "rejected",
            ContributionStatus::Withdrawn => "withdrawn",
        }
    }
}

/// A curator's decision on a pending contribution.
#[cw_serde]
#[derive(Copy, Eq)]
pub enum ReviewDecision {
    Accept,
    Reject,
}

#[cw_serde]
pub struct InstantiateMsg {
    /// May change the config; defaults to the sender.
    pub admin: Option<String>,
    /// The only address allowed to record usage (the payout contract). Can be set later.
    pub usage_recorder: Option<String>,
}

#[cw_serde]
pub enum ExecuteMsg {
    /// Creates a datanet owned by the sender.
    CreateDatanet {
        name: String,
        description: String,
        domain_tags: Vec<String>,
        license: String,
        policy: CurationPolicy,
        curators: Vec<String>,
        max_contribution_bytes: u64,
    },
    /// Owner only: changes the datanet's descriptive fields, policy or size cap.
    UpdateDatanet {
        datanet_id: u64,
        description: Option<String>,
        domain_tags: Option<Vec<String>>,
        license: Option<String>,
        policy: Option<CurationPolicy>,
        max_contribution_bytes: Option<u64>,
    },
    /// Owner only.
    AddCurators {
        datanet_id: u64,
        curators: Vec<String>,
    },
    /// Owner only.
    RemoveCurators {
        datanet_id: u64,
        curators: Vec<String>,
    },
    /// Owner only: the contributors an `AllowList` datanet admits.
    UpdateAllowList {
        datanet_id: u64,
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// Owner only: hands the datanet to another owner.
    TransferOwnership { datanet_id: u64, new_owner: String },
    /// Registers content by its SHA-256; the bytes live off chain at `uri`.
    Contribute {
        datanet_id: u64,
        /// 64 hex characters.
        content_hash: String,
        size_bytes: u64,
        uri: String,
        media_type: String,
        metadata: Option<String>,
    },
    /// The contributor withdraws a contribution that is still pending.
    Withdraw { contribution_id: u64 },
    /// A curator (or the owner) accepts or rejects a pending contribution.
    Review {
        contribution_id: u64,
        decision: ReviewDecision,
        /// Required when rejecting.
        reason: Option<String>,
    },
    /// Owner or curator: freezes the accepted contributions into a new immutable version.
    Snapshot {
        datanet_id: u64,
        note: Option<String>,
    },
    /// Usage recorder only (the current one or a retired one): one use of each listed
    /// contribution, with what it earned.
    RecordUsage { records: Vec<UsageRecord> },
    /// Admin only. `None` leaves a field as it is; the usage recorder cannot be unset.
    UpdateConfig {
        admin: Option<String>,
        /// A new usage recorder, which must be a contract. The one it replaces stays
        /// authorized if it is a contract (at most [`MAX_RETIRED_USAGE_RECORDERS`]), so
        /// requests it holds in escrow still finalize.
        usage_recorder: Option<String>,
    },
}

/// Most usage records one `RecordUsage` may carry; the payout contract batches to this size.
pub const MAX_USAGE_RECORDS: usize = 256;

/// Largest `max_contribution_bytes` a datanet may set (1 TiB): a contribution's size is what its
/// contributor claims, and the cap keeps a datanet's byte total from overflowing.
pub const MAX_CONTRIBUTION_BYTES: u64 = 1 << 40;

/// Most addresses one list in one message may carry (curators, allow-list additions, removals).
pub const MAX_ADDRESS_LIST_LEN: usize = 64;

/// Most former usage recorders that stay authorized after being replaced (see `UpdateConfig`).
pub const MAX_RETIRED_USAGE_RECORDERS: usize = 8;

/// One use of a contribution in a finalized inference.
#[cw_serde]
pub struct UsageRecord {
    pub contribution_id: u64,
    pub asset: AssetInfo,
    pub amount: Uint128,
}

#[cw_serde]
pub struct MigrateMsg {}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(ConfigResponse)]
    Config {},
    #[returns(Datanet)]
    Datanet { datanet_id: u64 },
    /// Datanets by id; with `domain_tag`, only those carrying that tag.
    #[returns(DatanetsResponse)]
    Datanets {
        domain_tag: Option<String>,
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    #[returns(Vec<Addr>)]
    Curators { datanet_id: u64 },
    #[returns(bool)]
    IsAllowed {
        datanet_id: u64,
        contributor: String,
    },
    #[returns(Contribution)]
    Contribution { contribution_id: u64 },
    #[returns(Option<Contribution>)]
    ContributionByHash {
        datanet_id: u64,
        content_hash: String,
    },
    /// Contributions of a datanet by id, optionally only those with `status`.
    #[returns(ContributionsResponse)]
    Contributions {
        datanet_id: u64,
        status: Option<ContributionStatus>,
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    #[returns(ContributionsResponse)]
    ContributionsByContributor {
        contributor: String,
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    #[returns(DatanetVersion)]
    Version { datanet_id: u64, version: u32 },
    #[returns(VersionsResponse)]
    Versions {
        datanet_id: u64,
        start_after: Option<u32>,
        limit: Option<u32>,
    },
    /// Accepted contributions in leaf order (the version's tree order).
    #[returns(ContributionsResponse)]
    VersionContributions {
        datanet_id: u64,
        version: u32,
        /// Leaf index to start after.
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    /// Merkle inclusion proof of a contribution in a version.
    #[returns(InclusionProofResponse)]
    InclusionProof { contribution_id: u64, version: u32 },
    #[returns(ContributorStats)]
    ContributorStats { contributor: String },
}

#[cw_serde]
pub struct ConfigResponse {
    pub admin: Addr,
    /// The payout contract that records usage now.
    pub usage_recorder: Option<Addr>,
    /// Former usage recorders that were contracts: they may still hold escrow whose
    /// finalization records usage here, so they stay authorized.
    pub retired_usage_recorders: Vec<Addr>,
}

#[cw_serde]
pub struct Datanet {
    pub id: u64,
    pub owner: Addr,
    pub name: String,
    pub description: String,
    pub domain_tags: Vec<String>,
    pub license: String,
    pub policy: CurationPolicy,
    pub max_contribution_bytes: u64,
    pub created_at: Timestamp,
    /// Contributions ever submitted.
    pub contribution_count: u64,
    /// Accepted contributions (the leaves of the next version).
    pub accepted_count: u64,
    pub accepted_bytes: u64,
    /// Latest frozen version, 0 when none.
    pub latest_version: u32,
    /// The append-only tree of accepted contributions.
    pub frontier: Frontier,
}

#[cw_serde]
pub struct DatanetsResponse {
    pub datanets: Vec<Datanet>,
}

#[cw_serde]
pub struct Contribution {
    pub id: u64,
    pub datanet_id: u64,
    pub contributor: Addr,
    /// Lowercase hex SHA-256 of the content.
    pub content_hash: String,
    pub size_bytes: u64,
    pub uri: String,
    pub media_type: String,
    pub metadata: Option<String>,
    pub status: ContributionStatus,
    pub submitted_at: Timestamp,
    pub reviewed_by: Option<Addr>,
    pub reason: Option<String>,
    /// Position in the datanet's tree once accepted.
    pub leaf_index: Option<u64>,
    /// Finalized inferences that attributed to this contribution.
    pub usage_count: u64,
}

#[cw_serde]
pub struct ContributionsResponse {
    pub contributions: Vec<Contribution>,
}

#[cw_serde]
pub struct DatanetVersion {
    pub datanet_id: u64,
    pub version: u32,
    pub root: HexBinary,
    /// Accepted contributions in this version (leaves `0..count`).
    pub count: u64,
    pub total_bytes: u64,
    pub created_at: Timestamp,
    pub created_by: Addr,
    pub note: Option<String>,
}

#[cw_serde]
pub struct VersionsResponse {
    pub versions: Vec<DatanetVersion>,
}

#[cw_serde]
pub struct InclusionProofResponse {
    pub contribution_id: u64,
    pub datanet_id: u64,
    pub version: u32,
    pub leaf: HexBinary,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Sibling hashes from the leaf upwards (RFC 9162 audit path).
    pub path: Vec<HexBinary>,
    pub root: HexBinary,
}

/// An amount earned in one asset.
#[cw_serde]
pub struct Earning {
    pub asset: AssetInfo,
    pub amount: Uint128,
}

#[cw_serde]
pub struct ContributorStats {
    pub contributor: Addr,
    pub contributed: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub usage: u64,
    pub earned: Vec<Earning>,
}

impl InclusionProofResponse {
    /// Verifies this proof against its own root; callers compare `root` with the version they trust.
    pub fn verify(&self) -> bool {
        let (Ok(leaf), Ok(root)) = (
            crate::hash::hash32(&self.leaf),
            crate::hash::hash32(&self.root),
        ) else {
            return false;
        };
        let mut path = Vec::with_capacity(self.path.len());
        for p in &self.path {
            match crate::hash::hash32(p) {
                Ok(h) => path.push(h),
                Err(_) => return false,
            }
        }
        crate::merkle::verify_inclusion(&leaf, self.leaf_index, self.tree_size, &path, &root)
    }
}

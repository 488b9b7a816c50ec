//! Messages of the datanet contract: datanets, contributions, curation, versions and usage.
//!
//! A contribution is made in two transactions. `Contribute` puts a commitment on chain, the
//! [`contribution_commitment`] of the contributor's address and the content hash, which says
//! nothing about the content; `RevealContribution`, in a later block, names the content hash
//! and the contract checks it against the commitment. Whoever committed first owns a content
//! hash in a datanet, so someone who learns the hash (or the bytes) from the reveal or the
//! content store is always too late to take the contribution.

use crate::asset::AssetInfo;
use crate::hash::{sha256, Hash32};
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
    /// Revealed, waiting for a curator.
    Pending,
    Accepted,
    Rejected,
    Withdrawn,
    /// An earlier commitment revealed the same content in the same datanet and took it over.
    /// An accepted contribution keeps its leaf: versions are immutable.
    Superseded,
}

impl ContributionStatus {
    /// A short stable name, used in storage index keys and events.
    pub fn as_str(&self) -> &'static str {
        match self {
            ContributionStatus::Pending => "pending",
            ContributionStatus::Accepted => "accepted",
            ContributionStatus::Rejected => "rejected",
            ContributionStatus::Withdrawn => "withdrawn",
            ContributionStatus::Superseded => "superseded",
        }
    }
}

/// Domain separator of [`contribution_commitment`].
pub const CONTRIBUTION_COMMITMENT_DOMAIN: &[u8] = b"tributary-contribution-v1";

/// How long a commitment may wait for its reveal; after that it can only be withdrawn, and the
/// contract forgets it when its contributor commits again.
pub const COMMITMENT_TTL_SECONDS: u64 = 24 * 60 * 60;

/// Most unrevealed commitments one contributor may hold at once (expired ones do not count).
pub const MAX_OPEN_COMMITMENTS: usize = 64;

/// The commitment a `Contribute` carries: `sha256(CONTRIBUTION_COMMITMENT_DOMAIN || contributor
/// || content_hash)`, with the contributor's address as its bech32 text and the content hash as
/// its 32 bytes. Binding the contributor means nobody else can reveal it.
pub fn contribution_commitment(contributor: &str, content_hash: &Hash32) -> Hash32 {
    let mut preimage = Vec::with_capacity(
        CONTRIBUTION_COMMITMENT_DOMAIN.len() + contributor.len() + content_hash.len(),
    );
    preimage.extend_from_slice(CONTRIBUTION_COMMITMENT_DOMAIN);
    preimage.extend_from_slice(contributor.as_bytes());
    preimage.extend_from_slice(content_hash);
    sha256(&preimage)
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
    /// Commits to a contribution without revealing its content; the contribution id it gets
    /// fixes its place in commitment order. Reveal it with `RevealContribution` in a later
    /// block, within [`COMMITMENT_TTL_SECONDS`]. Nothing here may name the content: `metadata`
    /// is public at once.
    Contribute {
        datanet_id: u64,
        /// [`contribution_commitment`] of the sender and the content hash (32 bytes).
        commitment: HexBinary,
        size_bytes: u64,
        media_type: String,
        metadata: Option<String>,
    },
    /// The committer names the content of a commitment, in a later block than the commitment.
    /// Accepted at once in open and allow-list datanets, pending in curated ones. Refused when
    /// an earlier commitment owns the content in this datanet; when a later one holds it, that
    /// one is superseded.
    RevealContribution {
        contribution_id: u64,
        /// 64 hex characters, the SHA-256 of the content.
        content_hash: String,
        /// Where the bytes live; revealed here rather than committed since a content-addressed
        /// URI names the content.
        uri: String,
    },
    /// The contributor withdraws a commitment not yet revealed, or a contribution still
    /// pending.
    Withdraw { contribution_id: u64 },
    /// A curator (or the owner) accepts or rejects a pending (revealed) contribution.
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

/// Uses of a contribution in finalized inferences: one, or `uses` of them credited `amount`
/// in all (a settlement batch records each contribution once).
#[cw_serde]
pub struct UsageRecord {
    pub contribution_id: u64,
    pub asset: AssetInfo,
    pub amount: Uint128,
    /// How many uses the record counts; one when absent.
    #[serde(default)]
    pub uses: Option<u64>,
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
    /// A revealed contribution; one not yet revealed is a `Commitment`.
    #[returns(Contribution)]
    Contribution { contribution_id: u64 },
    /// The contribution that owns `content_hash` in a datanet: pending or accepted, revealed
    /// from the earliest commitment. Rejected, withdrawn and superseded ones own nothing.
    #[returns(Option<Contribution>)]
    ContributionByHash {
        datanet_id: u64,
        content_hash: String,
    },
    /// Every pending or accepted contribution of `content_hash`, in any datanet, by id: who
    /// may upload or keep these bytes in the content store.
    #[returns(ContributionsResponse)]
    ContributionsByHash {
        content_hash: String,
        /// Contribution id to start after.
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    /// A commitment not yet revealed (an expired one until it is withdrawn or forgotten).
    #[returns(Commitment)]
    Commitment { contribution_id: u64 },
    /// The unrevealed commitments of one contributor, by id (at most
    /// [`MAX_OPEN_COMMITMENTS`] that have not expired).
    #[returns(CommitmentsResponse)]
    Commitments {
        contributor: String,
        start_after: Option<u64>,
        limit: Option<u32>,
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
    /// Contributions ever revealed (commitments not revealed are not counted).
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
    /// Assigned at commitment, so ids are commitment order.
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
    /// When it was committed to.
    pub submitted_at: Timestamp,
    pub reviewed_by: Option<Addr>,
    /// The curator's reason for a rejection, or which contribution superseded this one.
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

/// A contribution committed to and not revealed yet.
#[cw_serde]
pub struct Commitment {
    /// The id the contribution keeps once revealed; its commitment order.
    pub contribution_id: u64,
    pub datanet_id: u64,
    pub contributor: Addr,
    /// [`contribution_commitment`] of the contributor and the content hash.
    pub commitment: HexBinary,
    pub size_bytes: u64,
    pub media_type: String,
    pub metadata: Option<String>,
    pub committed_at: Timestamp,
    /// The reveal must come in a later block than this one.
    pub committed_height: u64,
    /// From this time on the commitment can no longer be revealed.
    pub expires_at: Timestamp,
}

#[cw_serde]
pub struct CommitmentsResponse {
    pub commitments: Vec<Commitment>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::to_hex;

    #[test]
    fn commitment_is_sha256_of_domain_contributor_and_hash_bytes() {
        let content_hash = sha256(b"fn main() {}");
        let mut preimage = b"tributary-contribution-v1trib1alice".to_vec();
        preimage.extend_from_slice(&content_hash);
        assert_eq!(
            contribution_commitment("trib1alice", &content_hash),
            sha256(&preimage)
        );
        // A fixed vector, which the TypeScript implementation checks too.
        assert_eq!(
            to_hex(&contribution_commitment(
                "trib1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
                &sha256(b"tributary")
            )),
            "9a5240a4d6cde0eb578240684cd66c371bbf7cdbd1b9a4ba172fd09253b64e0e"
        );
    }

    #[test]
    fn commitments_differ_by_contributor_and_by_content() {
        let a = sha256(b"a");
        assert_ne!(
            contribution_commitment("trib1alice", &a),
            contribution_commitment("trib1bob", &a)
        );
        assert_ne!(
            contribution_commitment("trib1alice", &a),
            contribution_commitment("trib1alice", &sha256(b"b"))
        );
    }
}

/// The datanet contract's storage that other contracts read directly, by raw query, without
/// running it: the payout contract checks lineage and resolves contributors this way, which
/// costs a store read instead of a contract call per entry. These namespaces and their value
/// types ([`Contribution`] by `u64` id, [`DatanetVersion`] by `(datanet id, version)`) are part
/// of the contract's interface: a migration that changes them must migrate the payout contract
/// with it.
pub mod layout {
    /// `cw_storage_plus::Map<u64, Contribution>`.
    pub const CONTRIBUTIONS: &str = "contributions";
    /// `cw_storage_plus::Map<(u64, u32), DatanetVersion>`.
    pub const VERSIONS: &str = "versions";
}

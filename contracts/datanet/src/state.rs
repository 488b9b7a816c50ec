use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Binary, Timestamp, Uint128};
use cw_storage_plus::{Index, IndexList, IndexedMap, Item, Map, MultiIndex};
use tributary_types::datanet::{layout, Commitment, Contribution, Datanet, DatanetVersion};

/// Contract-wide settings.
#[cw_serde]
pub struct Config {
    /// May change the config.
    pub admin: Addr,
    /// The address that records usage now: the payout contract.
    pub usage_recorder: Option<Addr>,
    /// Contracts that were the usage recorder before and still may record (their escrow may
    /// still finalize); at most `MAX_RETIRED_USAGE_RECORDERS`. Absent in configs stored before
    /// recorders were retired rather than replaced.
    #[serde(default)]
    pub retired_usage_recorders: Vec<Addr>,
}

/// Running totals of one contributor across every datanet.
#[cw_serde]
#[derive(Default)]
pub struct Stats {
    /// Contributions revealed, whatever became of them.
    pub contributed: u64,
    /// Contributions accepted into a datanet's tree.
    pub accepted: u64,
    /// Contributions rejected by a curator.
    pub rejected: u64,
    /// Recorded uses of the contributor's contributions.
    pub usage: u64,
}

/// Secondary indexes of [`CONTRIBUTIONS`].
pub struct ContributionIndexes<'a> {
    /// (datanet id, status name) -> contributions, for status filters.
    pub datanet_status: MultiIndex<'a, (u64, String), Contribution, u64>,
    /// datanet id -> contributions.
    pub datanet: MultiIndex<'a, u64, Contribution, u64>,
    /// contributor -> contributions across datanets.
    pub contributor: MultiIndex<'a, Addr, Contribution, u64>,
}

impl IndexList<Contribution> for ContributionIndexes<'_> {
    fn get_indexes(&'_ self) -> Box<dyn Iterator<Item = &'_ dyn Index<Contribution>> + '_> {
        let v: Vec<&dyn Index<Contribution>> =
            vec![&self.datanet_status, &self.datanet, &self.contributor];
        Box::new(v.into_iter())
    }
}

/// Contract-wide settings.
pub const CONFIG: Item<Config> = Item::new("config");
/// The last datanet id handed out.
pub const DATANET_SEQ: Item<u64> = Item::new("datanet_seq");
/// The last contribution id handed out (global across datanets).
pub const CONTRIBUTION_SEQ: Item<u64> = Item::new("contribution_seq");
/// Datanets by id.
pub const DATANETS: Map<u64, Datanet> = Map::new("datanets");
/// (domain tag, datanet id) for the tag filter of the datanet list.
pub const DATANET_TAGS: Map<(&str, u64), ()> = Map::new("datanet_tags");
/// (datanet id, curator).
pub const CURATORS: Map<(u64, &Addr), ()> = Map::new("curators");
/// (datanet id, contributor) admitted to an allow-list datanet.
pub const ALLOWED: Map<(u64, &Addr), ()> = Map::new("allowed");
/// Contributions by id.
pub const CONTRIBUTIONS: IndexedMap<u64, Contribution, ContributionIndexes<'static>> =
    IndexedMap::new(
        layout::CONTRIBUTIONS,
        ContributionIndexes {
            datanet_status: MultiIndex::new(
                |_pk, c: &Contribution| (c.datanet_id, c.status.as_str().to_string()),
                layout::CONTRIBUTIONS,
                "contributions__datanet_status",
            ),
            datanet: MultiIndex::new(
                |_pk, c: &Contribution| c.datanet_id,
                layout::CONTRIBUTIONS,
                "contributions__datanet",
            ),
            contributor: MultiIndex::new(
                |_pk, c: &Contribution| c.contributor.clone(),
                layout::CONTRIBUTIONS,
                "contributions__contributor",
            ),
        },
    );
/// (datanet id, lowercase hex content hash) -> the pending or accepted contribution that owns
/// that content in the datanet (the earliest commitment that revealed it).
pub const HASHES: Map<(u64, &str), u64> = Map::new("hashes");
/// (lowercase hex content hash, contribution id) for every pending or accepted contribution, in
/// any datanet: who may keep these bytes in the content store.
pub const LIVE_HASHES: Map<(&str, u64), ()> = Map::new("live_hashes");
/// Contribution id -> a commitment not revealed yet. Removed at reveal or withdrawal, or when
/// its contributor commits again after it expired.
pub const COMMITMENTS: Map<u64, Commitment> = Map::new("commitments");
/// (contributor, contribution id) -> expiry of each of the contributor's unrevealed commitments,
/// to count them against `MAX_OPEN_COMMITMENTS` and forget the expired ones.
pub const OPEN_COMMITMENTS: Map<(&Addr, u64), Timestamp> = Map::new("open_commitments");
/// (datanet id, leaf index) -> contribution id, the leaf order of the datanet's tree.
pub const LEAVES: Map<(u64, u64), u64> = Map::new("leaves");
/// (datanet id, height, index) -> 32-byte hash of every perfect subtree of the datanet's tree.
/// Stored as `Binary` (a base64 string in JSON) rather than `Vec<u8>` (a JSON number array).
pub const NODES: Map<(u64, u32, u64), Binary> = Map::new("nodes");
/// (datanet id, version) -> frozen version.
pub const VERSIONS: Map<(u64, u32), DatanetVersion> = Map::new(layout::VERSIONS);
/// Contributor -> running totals.
pub const STATS: Map<&Addr, Stats> = Map::new("stats");
/// (contributor, `AssetInfo::key()`) -> total earned in that asset.
pub const EARNED: Map<(&Addr, &str), Uint128> = Map::new("earned");

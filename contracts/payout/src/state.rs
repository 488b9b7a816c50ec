use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Uint128};
use cw_storage_plus::{Index, IndexList, IndexedMap, Item, Map, MultiIndex};
use tributary_types::batch::BatchInfo;
use tributary_types::payout::{ChannelBinding, ConfigResponse, InferenceRequest, RequestTerms};
use tributary_types::verification::{BondInfo, ChallengeInfo, VerificationParams};
use tributary_types::voucher::{CreditAccount, VoucherState};
use tributary_types::AttributionPacket;

/// Contract-wide settings; stored in the shape the `Config` query returns.
pub type Config = ConfigResponse;

/// Secondary indexes of [`REQUESTS`].
pub struct RequestIndexes<'a> {
    /// Status name -> requests, for the status filter.
    pub status: MultiIndex<'a, String, InferenceRequest, u64>,
    /// Payer -> requests.
    pub payer: MultiIndex<'a, Addr, InferenceRequest, u64>,
}

impl IndexList<InferenceRequest> for RequestIndexes<'_> {
    fn get_indexes(&'_ self) -> Box<dyn Iterator<Item = &'_ dyn Index<InferenceRequest>> + '_> {
        let v: Vec<&dyn Index<InferenceRequest>> = vec![&self.status, &self.payer];
        Box::new(v.into_iter())
    }
}

/// One pool: the unattributed contributors' shares paid to a datanet version in one asset.
#[cw_serde]
pub struct PoolState {
    /// The version's accepted contributions (frozen, so fixed).
    pub contributions: u64,
    /// Everything paid in.
    pub total: Uint128,
    /// Everything credited to contributors; `total - distributed` is held for them.
    pub distributed: Uint128,
}

/// What one payout submessage of a claim pays.
#[cw_serde]
pub struct PendingPayout {
    pub owner: Addr,
    /// `(AssetInfo::key(), amount)` per asset it pays.
    pub amounts: Vec<(String, Uint128)>,
}

/// An attribution channel that completed its handshake on this contract's port.
#[cw_serde]
pub struct OpenChannel {
    pub connection_id: String,
    pub counterparty_port_id: String,
    pub counterparty_channel_id: String,
}

/// What a batch owes, summed over its inferences not taken out by a challenge.
#[cw_serde]
pub struct BatchSums {
    /// The treasury its protocol shares were summed for.
    pub treasury: Addr,
    /// (owner, amount), by owner.
    pub credits: Vec<(Addr, Uint128)>,
    /// (contribution id, uses, amount), by id.
    pub usage: Vec<(u64, u64, Uint128)>,
    /// The contributors' share of inferences whose packet named no contribution.
    pub pooled: Uint128,
}

/// Contract-wide settings.
pub const CONFIG: Item<Config> = Item::new("config");
/// The last request id handed out.
pub const REQUEST_SEQ: Item<u64> = Item::new("request_seq");
/// Paid inference requests by id.
pub const REQUESTS: IndexedMap<u64, InferenceRequest, RequestIndexes<'static>> = IndexedMap::new(
    "requests",
    RequestIndexes {
        status: MultiIndex::new(
            |_pk, r: &InferenceRequest| r.status.as_str().to_string(),
            "requests",
            "requests__status",
        ),
        payer: MultiIndex::new(
            |_pk, r: &InferenceRequest| r.payer.clone(),
            "requests",
            "requests__payer",
        ),
    },
);
/// Request id -> the rules it was paid under, for requests paid before terms were shared by
/// hash (see [`crate::terms`]); read only.
pub const TERMS: Map<u64, RequestTerms> = Map::new("terms");
/// SHA-256 of a terms' JSON -> those terms, stored once however many requests share them.
pub const TERMS_BY_HASH: Map<&[u8], RequestTerms> = Map::new("terms_by_hash");
/// Request id -> the hash of the terms it was paid under.
pub const REQUEST_TERMS: Map<u64, Vec<u8>> = Map::new("request_terms");
/// The last batch id handed out.
pub const BATCH_SEQ: Item<u64> = Item::new("batch_seq");
/// Settlement batches by id.
pub const BATCHES: Map<u64, BatchInfo> = Map::new("batches");
/// Batch id -> its sums, until it is finalized.
pub const BATCH_SUMS: Map<u64, BatchSums> = Map::new("batch_sums");
/// (payer, `AssetInfo::key()`) -> prepaid credit (see [`crate::credit`]).
pub const CREDITS: Map<(&Addr, &str), CreditAccount> = Map::new("credits");
/// ((payer, redeemer), (model id, version)): one series of vouchers.
pub type VoucherSeries<'a> = ((&'a Addr, &'a Addr), (u64, u32));
/// Voucher series -> what its vouchers redeemed so far.
pub const VOUCHERS: Map<VoucherSeries, VoucherState> = Map::new("vouchers");
/// (request id, attestor) -> the packet hash that attestor committed.
pub const COMMITS: Map<(u64, &Addr), Vec<u8>> = Map::new("commits");
/// (request id, packet hash, attestor): the attestors agreeing on a packet, in address order.
pub const COMMITTERS: Map<(u64, &[u8], &Addr), ()> = Map::new("committers");
/// (request id, packet hash) -> how many attestors committed that packet.
pub const VOTES: Map<(u64, &[u8]), u32> = Map::new("votes");
/// (request id, packet hash) -> the packet, stored once per distinct hash.
pub const PACKETS: Map<(u64, &[u8]), AttributionPacket> = Map::new("packets");
/// (request id, packet hash) -> the contributor of each of the packet's entries, in entry order,
/// resolved when the packet was first committed so finalization needs no datanet query.
pub const PACKET_CONTRIBUTORS: Map<(u64, &[u8]), Vec<Addr>> = Map::new("packet_contributors");
/// (datanet id, version, `AssetInfo::key()`) -> the contributors' pool of that version.
pub const POOLS: Map<(u64, u32, &str), PoolState> = Map::new("pools");
/// ((datanet id, version), `AssetInfo::key()`, contribution id) -> what that contribution was
/// credited from the pool so far.
pub const POOL_CREDITED: Map<((u64, u32), &str, u64), Uint128> = Map::new("pool_credited");
/// (owner, `AssetInfo::key()`) -> claimable amount.
pub const BALANCES: Map<(&Addr, &str), Uint128> = Map::new("balances");
/// The last reply id handed to a claim's payout submessage.
pub const PAYOUT_REPLY_SEQ: Item<u64> = Item::new("payout_reply_seq");
/// Reply id -> what that payout submessage pays, until its reply arrives (see [`crate::claim`]).
pub const PENDING_PAYOUTS: Map<u64, PendingPayout> = Map::new("pending_payouts");
/// IBC channel id -> the binding of an open channel to the attestor whose packets arrive on it.
pub const CHANNELS: Map<&str, ChannelBinding> = Map::new("channels");
/// IBC channel id -> the channel as it was when it opened on this contract's port; only these
/// can be bound.
pub const OPEN_CHANNELS: Map<&str, OpenChannel> = Map::new("open_channels");
/// The bond and dispute parameters (see [`crate::dispute`]).
pub const VERIFICATION: Item<VerificationParams> = Item::new("verification");
/// Account -> its bond; removed when nothing is left.
pub const BONDS: Map<&Addr, BondInfo> = Map::new("bonds");
/// How many accounts [`BONDS`] holds.
pub const BOND_COUNT: Item<u32> = Item::new("bond_count");
/// Request id -> its challenge, kept after resolution.
pub const CHALLENGES: Map<u64, ChallengeInfo> = Map::new("challenges");
/// Request ids of challenges not yet resolved.
pub const OPEN_CHALLENGES: Map<u64, ()> = Map::new("open_challenges");

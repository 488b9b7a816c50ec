//! Messages of the payout contract: inference escrow, attribution commits, finalization, claims.

use crate::asset::{AssetInfo, Price};
use crate::batch::{BatchInfo, BatchLeaf, BatchResult, BatchesResponse};
use crate::datanet::Earning;
use crate::packet::{AttributionPacket, DatanetRoot};
use crate::split::{FeeSplit, Settlement};
use crate::verification::{
    BondInfo, BondsResponse, ChallengeInfo, ChallengesResponse, VerificationParams,
};
use crate::voucher::{CreditAccount, VoucherRedemption, VoucherState};
use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Addr, HexBinary, Timestamp, Uint128};
use cw20::Cw20ReceiveMsg;

/// Shortest challenge window: a packet at quorum is always open to challenge for a moment.
pub const MIN_CHALLENGE_WINDOW_SECONDS: u64 = 1;
/// Longest challenge window (30 days).
pub const MAX_CHALLENGE_WINDOW_SECONDS: u64 = 30 * 24 * 60 * 60;
/// Longest request expiry (365 days): escrow is never held longer, and deadlines stay far from
/// the end of the timestamp range.
pub const MAX_REQUEST_EXPIRY_SECONDS: u64 = 365 * 24 * 60 * 60;
/// Most cw20 tokens the contract accepts as payment.
pub const MAX_ACCEPTED_CW20: usize = 32;

#[cw_serde]
pub struct InstantiateMsg {
    pub admin: Option<String>,
    pub datanet_contract: String,
    pub registry_contract: String,
    /// Receives the protocol share.
    pub treasury: String,
    /// Seconds between reaching quorum and the earliest finalization, from
    /// [`MIN_CHALLENGE_WINDOW_SECONDS`] to [`MAX_CHALLENGE_WINDOW_SECONDS`].
    pub challenge_window_seconds: u64,
    /// Seconds, longer than the window and at most [`MAX_REQUEST_EXPIRY_SECONDS`], after a
    /// request after which no commit is accepted: a request nobody attested is
    /// then refunded, one with commits but no agreed packet is settled without attribution.
    pub request_expiry_seconds: u64,
    /// cw20 tokens accepted as payment, at most [`MAX_ACCEPTED_CW20`].
    pub accepted_cw20: Vec<String>,
    /// Most entries a packet may carry (K).
    pub max_entries: u32,
    /// Bonds and disputes; [`VerificationParams::defaults`] when absent.
    #[serde(default)]
    pub verification: Option<VerificationParams>,
}

/// Only `RequestInference` takes native funds; every other message refuses them.
#[cw_serde]
pub enum ExecuteMsg {
    /// Pays for an inference in native coins; the exact price is escrowed and any excess refunded.
    RequestInference {
        model_id: u64,
        version: u32,
        /// SHA-256 of the prompt.
        prompt_hash: HexBinary,
    },
    /// cw20 `Send` hook; the inner message is a [`ReceiveMsg`].
    Receive(Cw20ReceiveMsg),
    /// An attestor commits attribution packets (batched).
    CommitAttribution { packets: Vec<AttributionPacket> },
    /// Anyone: settles requests whose quorum packet has passed the challenge window, and expired
    /// requests that were attested without an agreed packet (without attribution).
    Finalize { request_ids: Vec<u64> },
    /// Anyone, after expiry: returns the escrow of a request no attestor committed to its payer.
    Refund { request_id: u64 },
    /// Pays out everything the sender is owed (native and cw20).
    Claim {},
    /// Anyone: credits the listed contributions' contributors with what they are owed from the
    /// pool of `asset` of datanet `datanet_id` version `version` (the contributors' share of
    /// finalized requests whose packet named no contribution). They then `Claim` it.
    ClaimPool {
        datanet_id: u64,
        version: u32,
        asset: AssetInfo,
        /// At most [`MAX_POOL_CLAIMS`] accepted contributions frozen in that version.
        contribution_ids: Vec<u64>,
    },
    /// Admin only: packets arriving on `channel_id` are committed on behalf of `attestor`. The
    /// channel must be open on this contract's port, over `connection_id`, to
    /// `counterparty_port_id`: naming them makes sure the channel bound is the one intended.
    BindChannel {
        channel_id: String,
        attestor: String,
        connection_id: String,
        counterparty_port_id: String,
    },
    /// Admin only.
    UnbindChannel { channel_id: String },
    /// Bonds the attached `bond_denom` coins: a verifier, or an attestor whose commits need a
    /// bond.
    Bond {},
    /// Starts unbonding `amount` of the active bond; it stays slashable until released.
    Unbond { amount: Uint128 },
    /// Pays out the unbonded amount once released.
    WithdrawUnbonded {},
    /// A bonded verifier (not an attestor or the developer of the request) disputes the agreed
    /// packet of an attested request within its challenge window, with its own packet for the
    /// same completion and exactly `challenge_bond` attached.
    Challenge {
        request_id: u64,
        packet: AttributionPacket,
    },
    /// Anyone, while a challenge waits for them: the request's prompt and completion, checked
    /// against the prompt hash of the payment and the completion hash of the packets. Draws the
    /// committee.
    RevealInputs {
        request_id: u64,
        prompt: String,
        /// The completion's bytes, whose SHA-256 is the packets' `output_hash`.
        completion: HexBinary,
    },
    /// A committee member: the packet its recomputation gave (the agreed or the challenger's).
    Vote {
        request_id: u64,
        packet_hash: HexBinary,
    },
    /// Anyone: settles a challenge once every member voted or the vote period ended, or once
    /// the reveal period ended without inputs.
    Resolve { request_id: u64 },
    /// Adds the attached native coins to the sender's prepaid credit, which vouchers spend.
    Deposit {},
    /// Starts the withdrawal of up to `amount` of the sender's credit in `asset`. It can be
    /// executed once the contract's request expiry has passed, and vouchers may still spend the
    /// credit until then. A new request replaces a pending one and restarts its notice.
    RequestWithdrawal { asset: AssetInfo, amount: Uint128 },
    /// Pays out the sender's pending withdrawal in `asset` once its notice has passed, up to the
    /// credit left.
    Withdraw { asset: AssetInfo },
    /// The redeemer of the vouchers (an attestor of each one's model version): opens one
    /// request per new prompt hash, each paid from its payer's credit at the version's price.
    /// At most [`MAX_REDEEMED_PROMPTS`] prompts in all; every redemption is checked, and the
    /// whole message fails if one is invalid.
    RedeemVouchers { redemptions: Vec<VoucherRedemption> },
    /// The redeemer (an attestor of a model version whose quorum is 1) pays for and commits a
    /// settlement batch: the vouchers that pay its prompts, all on one model version, and one
    /// result per prompt in the order the vouchers chain them (see [`crate::batch`]), at most
    /// [`crate::batch::MAX_BATCH_INFERENCES`]. The whole batch fails if one voucher or result
    /// is invalid.
    SettleBatch {
        redemptions: Vec<VoucherRedemption>,
        results: Vec<BatchResult>,
    },
    /// Anyone: credits the sums of batches whose challenge window has passed.
    FinalizeBatches { batch_ids: Vec<u64> },
    /// A bonded verifier disputes inference `index` of a batch within its challenge window,
    /// with exactly `challenge_bond` attached: the inference's leaf and inclusion proof, and its
    /// own result for the same completion. The inference becomes request
    /// `first_request_id + index`, challenged as `Challenge` would.
    ChallengeBatchItem {
        batch_id: u64,
        index: u32,
        leaf: BatchLeaf,
        proof: Vec<HexBinary>,
        result: BatchResult,
    },
    /// Admin only: the bond and dispute parameters for challenges opened from now on.
    UpdateVerification { params: VerificationParams },
    /// Admin only.
    UpdateConfig {
        admin: Option<String>,
        treasury: Option<String>,
        challenge_window_seconds: Option<u64>,
        request_expiry_seconds: Option<u64>,
        accepted_cw20: Option<Vec<String>>,
        max_entries: Option<u32>,
    },
}

/// Most contributions one `ClaimPool` may credit.
pub const MAX_POOL_CLAIMS: usize = 50;
/// Most requests one `RedeemVouchers` may open.
pub const MAX_REDEEMED_PROMPTS: usize = 256;

/// The message inside a cw20 `Send` to the payout contract.
#[cw_serde]
pub enum ReceiveMsg {
    RequestInference {
        model_id: u64,
        version: u32,
        prompt_hash: HexBinary,
    },
    /// Adds the sent tokens to the sender's prepaid credit.
    Deposit {},
}

#[cw_serde]
pub struct MigrateMsg {}

/// Where a paid request stands.
#[cw_serde]
#[derive(Copy, Eq)]
pub enum RequestStatus {
    /// Paid; waiting for attestors.
    Open,
    /// One packet reached quorum; finalizable after the challenge window.
    Attested,
    /// Conflicting packets; finalized by the packet holding quorum alone if there is one, else
    /// settled without attribution at expiry.
    Disputed,
    /// A verifier challenged the agreed packet; settled by the committee's majority packet.
    Challenged,
    Finalized,
    Refunded,
}

impl RequestStatus {
    /// A short stable name, used in storage index keys and events.
    pub fn as_str(&self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::Attested => "attested",
            RequestStatus::Disputed => "disputed",
            RequestStatus::Challenged => "challenged",
            RequestStatus::Finalized => "finalized",
            RequestStatus::Refunded => "refunded",
        }
    }
}

#[cw_serde]
pub struct InferenceRequest {
    pub id: u64,
    pub payer: Addr,
    pub model_id: u64,
    pub model_version: u32,
    pub prompt_hash: HexBinary,
    /// What is escrowed.
    pub price: Price,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub status: RequestStatus,
    /// The packet hash that reached quorum.
    pub agreed_packet: Option<HexBinary>,
    /// Earliest finalization time once quorum is reached.
    pub finalizable_at: Option<Timestamp>,
    /// Distinct packet hashes committed so far.
    pub distinct_packets: u32,
    pub settlement: Option<Settlement>,
}

/// The rules of one request, copied from the registry and the datanet contract when it was paid.
/// Commits, finalization and refunds read only these; later changes to the model version (its
/// attestors, quorum, deprecation) or to the payout contract's configuration do not reach them.
#[cw_serde]
pub struct RequestTerms {
    /// Receives the developer share.
    pub developer: Addr,
    /// The attestors allowed to commit, in the registry's order.
    pub attestors: Vec<Addr>,
    /// How many of them must commit the same packet.
    pub quorum: u32,
    pub method_id: String,
    pub params_hash: HexBinary,
    pub weights_hash: HexBinary,
    /// The datanet versions the model was trained on, with their sizes.
    pub lineage: Vec<LineageVersion>,
    pub price: Price,
    pub split: FeeSplit,
    /// Most entries a packet for this request may carry.
    pub max_entries: u32,
    /// Seconds between a packet reaching quorum and the earliest finalization.
    pub challenge_window_seconds: u64,
}

/// A datanet version of a model's lineage and how many accepted contributions it froze.
#[cw_serde]
pub struct LineageVersion {
    pub root: DatanetRoot,
    /// Leaves `0..contributions` of the version's tree.
    pub contributions: u64,
}

/// One attestor's commit for a request.
#[cw_serde]
pub struct CommitInfo {
    pub attestor: Addr,
    pub packet_hash: HexBinary,
}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(ConfigResponse)]
    Config {},
    #[returns(InferenceRequest)]
    Request { request_id: u64 },
    /// The rules the request was paid under.
    #[returns(RequestTerms)]
    Terms { request_id: u64 },
    /// Requests by id, optionally only those with `status` or paid by `payer`.
    #[returns(RequestsResponse)]
    Requests {
        status: Option<RequestStatus>,
        payer: Option<String>,
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    #[returns(Vec<CommitInfo>)]
    Commits { request_id: u64 },
    #[returns(AttributionPacket)]
    Packet {
        request_id: u64,
        packet_hash: HexBinary,
    },
    /// What `address` can claim.
    #[returns(BalancesResponse)]
    Balances {
        address: String,
        start_after: Option<AssetInfo>,
        limit: Option<u32>,
    },
    /// The pools of a datanet version, one per asset, by asset key order.
    #[returns(PoolsResponse)]
    Pools {
        datanet_id: u64,
        version: u32,
        start_after: Option<AssetInfo>,
        limit: Option<u32>,
    },
    /// What a contribution can still be credited from a pool (zero when it is not in it).
    #[returns(Uint128)]
    PoolOwed {
        datanet_id: u64,
        version: u32,
        asset: AssetInfo,
        contribution_id: u64,
    },
    #[returns(VerificationParams)]
    Verification {},
    /// What `address` has bonded (zeros when nothing).
    #[returns(BondInfo)]
    BondOf { address: String },
    /// Every bond, by address.
    #[returns(BondsResponse)]
    Bonds {
        start_after: Option<String>,
        limit: Option<u32>,
    },
    /// The challenge of a request, if it was ever challenged.
    #[returns(Option<ChallengeInfo>)]
    ChallengeOf { request_id: u64 },
    /// Challenges not yet resolved, by request id.
    #[returns(ChallengesResponse)]
    OpenChallenges {
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    /// The prepaid credit of `address` in `asset` (zero when none).
    #[returns(CreditAccount)]
    Credit { address: String, asset: AssetInfo },
    /// What the vouchers of `payer` to `redeemer` on a model version have redeemed so far.
    #[returns(VoucherState)]
    RedeemedVouchers {
        payer: String,
        redeemer: String,
        model_id: u64,
        version: u32,
    },
    #[returns(BatchInfo)]
    Batch { batch_id: u64 },
    /// Settlement batches by id.
    #[returns(BatchesResponse)]
    Batches {
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    /// IBC channels bound to attestors, by channel id.
    #[returns(Vec<ChannelBinding>)]
    Channels {
        start_after: Option<String>,
        limit: Option<u32>,
    },
}

#[cw_serde]
pub struct ConfigResponse {
    pub admin: Addr,
    pub datanet_contract: Addr,
    pub registry_contract: Addr,
    pub treasury: Addr,
    pub challenge_window_seconds: u64,
    pub request_expiry_seconds: u64,
    pub accepted_cw20: Vec<Addr>,
    pub max_entries: u32,
}

#[cw_serde]
pub struct RequestsResponse {
    pub requests: Vec<InferenceRequest>,
}

#[cw_serde]
pub struct BalancesResponse {
    pub balances: Vec<Earning>,
}

/// The contributors' pool of one asset for one datanet version.
#[cw_serde]
pub struct Pool {
    pub datanet_id: u64,
    pub version: u32,
    pub asset: AssetInfo,
    /// The version's accepted contributions, who share the pool equally.
    pub contributions: u64,
    /// Everything paid in so far.
    pub total: Uint128,
    /// What has been credited to contributors so far.
    pub distributed: Uint128,
}

#[cw_serde]
pub struct PoolsResponse {
    pub pools: Vec<Pool>,
}

/// An open attribution channel bound to the attestor whose packets it carries.
#[cw_serde]
pub struct ChannelBinding {
    pub channel_id: String,
    pub attestor: Addr,
    /// The IBC connection the channel runs over, as recorded when it opened.
    pub connection_id: String,
    /// The counterparty's port and channel, as recorded when it opened.
    pub counterparty_port_id: String,
    pub counterparty_channel_id: String,
}

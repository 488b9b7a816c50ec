use cosmwasm_std::{Addr, IbcOrder, OverflowError, StdError, Timestamp, Uint128};
use cw_utils::PaymentError;
use thiserror::Error;
use tributary_types::packet::PacketError;
use tributary_types::payout::RequestStatus;
use tributary_types::upgrade::UpgradeError;
use tributary_types::{AssetInfo, HashError, SplitError};

/// Every way a message, query or IBC packet to the payout contract can fail.
#[derive(Error, Debug, PartialEq)]
pub enum ContractError {
    #[error(transparent)]
    Std(#[from] StdError),

    #[error(transparent)]
    Overflow(#[from] OverflowError),

    #[error(transparent)]
    Upgrade(#[from] UpgradeError),

    #[error("invalid packet: {0}")]
    Packet(#[from] PacketError),

    #[error("cannot settle: {0}")]
    Split(#[from] SplitError),

    #[error("invalid prompt hash: {0}")]
    InvalidHash(#[from] HashError),

    #[error("this message takes no funds: {0}")]
    FundsNotAccepted(#[from] PaymentError),

    #[error("{sender} is not allowed to {action}")]
    Unauthorized { sender: Addr, action: &'static str },

    #[error("the challenge window must be between {min}s and {max}s, got {window}s")]
    InvalidChallengeWindow { window: u64, min: u64, max: u64 },

    #[error("request expiry must be at most {max}s, got {expiry}s")]
    ExpiryTooLong { expiry: u64, max: u64 },

    #[error("at most {max} cw20 tokens can be accepted, got {count}")]
    TooManyTokens { count: usize, max: usize },

    #[error("request expiry ({expiry}s) must be longer than the challenge window ({window}s)")]
    ExpiryNotAfterWindow { expiry: u64, window: u64 },

    #[error("max_entries must be between 1 and {max}, got {max_entries}")]
    InvalidMaxEntries { max_entries: u32, max: u32 },

    #[error("model {model_id} has no version {version}")]
    UnknownModelVersion { model_id: u64, version: u32 },

    #[error("model {model_id} version {version} is deprecated")]
    ModelDeprecated { model_id: u64, version: u32 },

    #[error("model {model_id} version {version} has {attestors} attestors with quorum {quorum}, which this contract cannot settle")]
    UnusableAttestorSet {
        model_id: u64,
        version: u32,
        attestors: usize,
        quorum: u32,
    },

    #[error("model {model_id} version {version} has {count} lineage entries, between 1 and {max} are supported")]
    UnusableLineage {
        model_id: u64,
        version: u32,
        count: usize,
        max: usize,
    },

    #[error("datanet {datanet_id} version {version} of the model's lineage is not a frozen, non-empty version with the registered root")]
    LineageVersionUnavailable { datanet_id: u64, version: u32 },

    #[error("this model is priced in {expected}")]
    WrongPaymentAsset { expected: AssetInfo },

    #[error("only {expected} is accepted, {denom} was sent too")]
    UnexpectedFunds { denom: String, expected: String },

    #[error("paid {paid}, the price is {price}")]
    InsufficientPayment { paid: Uint128, price: Uint128 },

    #[error("cw20 token {token} is not accepted as payment")]
    TokenNotAccepted { token: Addr },

    #[error("a batch needs at least one item")]
    EmptyBatch,

    #[error("a batch may hold at most {max} items, got {count}")]
    BatchTooLarge { count: usize, max: usize },

    #[error("request {id} does not exist")]
    UnknownRequest { id: u64 },

    #[error("request {id} is {} and closed", .status.as_str())]
    RequestClosed { id: u64, status: RequestStatus },

    #[error("request {id} expired")]
    RequestExpired { id: u64 },

    #[error("{attestor} is not an attestor of model {model_id} version {version}")]
    UnauthorizedAttestor {
        attestor: Addr,
        model_id: u64,
        version: u32,
    },

    #[error("request {request_id} is for model {expected_model} version {expected_version}, the packet names model {model_id} version {version}")]
    WrongModel {
        request_id: u64,
        expected_model: u64,
        expected_version: u32,
        model_id: u64,
        version: u32,
    },

    #[error(
        "packet for request {request_id} names weights {got}, the model version has {expected}"
    )]
    WeightsHashMismatch {
        request_id: u64,
        expected: String,
        got: String,
    },

    #[error("packet for request {request_id} uses method {method}, the model version requires {expected} with its registered parameters")]
    MethodMismatch {
        request_id: u64,
        expected: String,
        method: String,
    },

    #[error("datanet {datanet_id} version {version} with this root is not in the model's lineage")]
    RootNotInLineage { datanet_id: u64, version: u32 },

    #[error("contribution {contribution_id} is not an accepted contribution of the packet's datanet versions")]
    ContributionNotInLineage { contribution_id: u64 },

    #[error("{attestor} already committed a different packet for request {request_id}")]
    ConflictingCommit { request_id: u64, attestor: Addr },

    #[error("request {id} has no packet holding quorum alone and is not expired with commits (status {})", .status.as_str())]
    NotFinalizable { id: u64, status: RequestStatus },

    #[error("request {id} is in its challenge window until {ready_at}")]
    ChallengeWindowOpen { id: u64, ready_at: Timestamp },

    #[error("request {id} does not expire before {expires_at}")]
    NotExpired { id: u64, expires_at: Timestamp },

    #[error("request {id} was attested; finalize it instead")]
    NotRefundable { id: u64 },

    #[error("packet {packet_hash} was not committed for request {request_id}")]
    UnknownPacket {
        request_id: u64,
        packet_hash: String,
    },

    #[error("datanet {datanet_id} version {version} has no pool in {asset}")]
    UnknownPool {
        datanet_id: u64,
        version: u32,
        asset: AssetInfo,
    },

    #[error("contribution {contribution_id} is not an accepted contribution of datanet {datanet_id} version {version}")]
    ContributionNotInPool {
        contribution_id: u64,
        datanet_id: u64,
        version: u32,
    },

    #[error("nothing to claim")]
    NothingToClaim,

    #[error("no submessage with reply id {id} is awaited")]
    UnknownReply { id: u64 },

    #[error("channel {channel_id} is not open on this contract's port")]
    ChannelNotOpen { channel_id: String },

    #[error("channel {channel_id} runs over {connection_id} to port {counterparty_port_id}, not the ones named")]
    ChannelMismatch {
        channel_id: String,
        connection_id: String,
        counterparty_port_id: String,
    },

    #[error("channel {channel_id} is not bound to an attestor")]
    UnboundChannel { channel_id: String },

    #[error("attribution channels must be unordered, got {order:?}")]
    OrderedChannel { order: IbcOrder },

    #[error("attribution channels use version {expected}, got {version:?}")]
    InvalidIbcVersion { version: String, expected: String },

    #[error("invalid verification parameters: {reason}")]
    InvalidVerification { reason: String },

    #[error("bonds are paid in {denom}")]
    WrongBondFunds { denom: String },

    #[error("a first bond must be at least {min} {denom}")]
    BondTooSmall { min: Uint128, denom: String },

    #[error("at most {max} accounts can hold a bond")]
    BondSetFull { max: usize },

    #[error("{address} has {active} bonded, {requested} was asked")]
    InsufficientBond {
        address: Addr,
        active: Uint128,
        requested: Uint128,
    },

    #[error("nothing is unbonding for {address}")]
    NothingUnbonding { address: Addr },

    #[error("the unbonded amount is released at {release_at}")]
    StillUnbonding { release_at: Timestamp },

    #[error("{address} needs {min} bonded to {action}, it has {active}")]
    NotBonded {
        address: Addr,
        action: &'static str,
        min: Uint128,
        active: Uint128,
    },

    #[error("{sender} is a party to request {request_id} (an attestor or its developer) and cannot challenge it")]
    PartyCannotChallenge { request_id: u64, sender: Addr },

    #[error("request {id} has no agreed packet open to challenge (status {})", .status.as_str())]
    NotChallengeable { id: u64, status: RequestStatus },

    #[error("the challenge window of request {id} closed at {closed_at}")]
    ChallengeWindowClosed { id: u64, closed_at: Timestamp },

    #[error("request {id} was already challenged")]
    AlreadyChallenged { id: u64 },

    #[error("the challenger's packet is the agreed packet")]
    ChallengeRepeatsAgreedPacket,

    #[error("the challenger's packet is for another completion than the agreed packet")]
    ChallengeOtherCompletion,

    #[error("a challenge needs exactly {bond} {denom} attached")]
    WrongChallengeBond { bond: Uint128, denom: String },

    #[error("request {id} was challenged; its committee settles it")]
    RequestChallenged { id: u64 },

    #[error("request {request_id} has no challenge")]
    UnknownChallenge { request_id: u64 },

    #[error("the challenge of request {request_id} is not waiting for {expected}")]
    WrongChallengePhase {
        request_id: u64,
        expected: &'static str,
    },

    #[error("the revealed {what} does not hash to the one committed")]
    InputMismatch { what: &'static str },

    #[error("the revealed {what} is {len} bytes, at most {max}")]
    InputTooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },

    #[error("the challenge of request {request_id} was open for reveal until {deadline}")]
    RevealClosed {
        request_id: u64,
        deadline: Timestamp,
    },

    #[error("{member} is not on the committee of request {request_id}")]
    NotOnCommittee { request_id: u64, member: Addr },

    #[error("{member} already voted on request {request_id}")]
    AlreadyVoted { request_id: u64, member: Addr },

    #[error("votes are for the agreed or the challenger's packet")]
    VoteForOtherPacket,

    #[error("the vote on request {request_id} closed at {deadline}")]
    VoteClosed {
        request_id: u64,
        deadline: Timestamp,
    },

    #[error("the challenge of request {request_id} cannot be resolved before {ready_at}")]
    NotResolvable {
        request_id: u64,
        ready_at: Timestamp,
    },

    #[error("a deposit needs funds")]
    EmptyDeposit,

    #[error("{payer} has {available} of {asset} in credit, {needed} needed")]
    InsufficientCredit {
        payer: Addr,
        asset: String,
        available: Uint128,
        needed: Uint128,
    },

    #[error("no withdrawal of {asset} is pending")]
    NoWithdrawalPending { asset: String },

    #[error("the withdrawal can be executed from {ready_at}")]
    WithdrawalNotReady { ready_at: Timestamp },

    #[error("the voucher is for chain {chain_id} and contract {contract}, not this one")]
    VoucherForOtherContract { chain_id: String, contract: String },

    #[error("the voucher names {redeemer} as its redeemer, not {sender}")]
    NotTheRedeemer { redeemer: String, sender: Addr },

    #[error("the voucher's public key is not {payer}'s")]
    VoucherKeyMismatch { payer: String },

    #[error("the voucher's signature does not verify")]
    BadVoucherSignature,

    #[error("the voucher covers {count} inferences and {redeemed} are already redeemed, so it needs {expected} new prompt hashes, not {got}")]
    VoucherCountMismatch {
        count: u64,
        redeemed: u64,
        expected: u64,
        got: usize,
    },

    #[error("the prompt hashes do not chain to the voucher's")]
    VoucherChainMismatch,

    #[error("the voucher allows {max_amount} in all, {charged} is charged already and {needed} more is needed")]
    VoucherCapExceeded {
        max_amount: Uint128,
        charged: Uint128,
        needed: Uint128,
    },

    #[error("the batch has {prompts} prompts and {results} results")]
    BatchResultCount { prompts: usize, results: usize },

    #[error("a batch is for one model version: model {model_id} version {version}, and model {other_model_id} version {other_version}")]
    BatchMixesVersions {
        model_id: u64,
        version: u32,
        other_model_id: u64,
        other_version: u32,
    },

    #[error("model {model_id} version {version} needs a quorum of {quorum}; batches settle versions whose quorum is 1")]
    BatchNeedsQuorumOne {
        model_id: u64,
        version: u32,
        quorum: u32,
    },

    #[error("inference {index} of the batch: {error}")]
    BadBatchItem {
        index: u32,
        error: Box<ContractError>,
    },

    #[error("batch {id} not found")]
    UnknownBatch { id: u64 },

    #[error("batch {id} is already finalized")]
    BatchFinalized { id: u64 },

    #[error("batch {id} cannot be finalized before {ready_at}")]
    BatchWindowOpen { id: u64, ready_at: Timestamp },

    #[error("the proof does not place that inference at index {index} of batch {batch_id}")]
    NotInBatch { batch_id: u64, index: u32 },
}

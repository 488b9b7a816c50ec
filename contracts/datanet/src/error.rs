use cosmwasm_std::{Addr, OverflowError, StdError, Timestamp};
use cw_utils::PaymentError;
use thiserror::Error;
use tributary_types::datanet::ContributionStatus;
use tributary_types::upgrade::UpgradeError;
use tributary_types::validate::TextError;
use tributary_types::HashError;

/// Every way a message or query to the datanet contract can fail.
#[derive(Error, Debug, PartialEq)]
pub enum ContractError {
    #[error(transparent)]
    Std(#[from] StdError),

    #[error(transparent)]
    Overflow(#[from] OverflowError),

    #[error(transparent)]
    Hash(#[from] HashError),

    #[error(transparent)]
    Text(#[from] TextError),

    #[error(transparent)]
    Upgrade(#[from] UpgradeError),

    /// Funds were attached to a message that takes none.
    #[error(transparent)]
    Payment(#[from] PaymentError),

    #[error("{sender} is not allowed to {action}")]
    Unauthorized { sender: Addr, action: &'static str },

    #[error("{address:?} is not a valid address")]
    InvalidAddress { address: String },

    #[error("datanet {datanet_id} does not exist")]
    DatanetNotFound { datanet_id: u64 },

    #[error("contribution {contribution_id} does not exist")]
    ContributionNotFound { contribution_id: u64 },

    #[error("datanet {datanet_id} has no version {version}")]
    VersionNotFound { datanet_id: u64, version: u32 },

    #[error("a datanet needs between {min} and {max} domain tags, got {count}")]
    TagCount {
        count: usize,
        min: usize,
        max: usize,
    },

    #[error("domain tag {tag:?} is listed twice")]
    DuplicateTag { tag: String },

    #[error("max_contribution_bytes must be greater than zero")]
    ZeroMaxContributionBytes,

    #[error("max_contribution_bytes of {max_contribution_bytes} exceeds the limit of {limit}")]
    MaxContributionBytesTooLarge {
        max_contribution_bytes: u64,
        limit: u64,
    },

    #[error("{field} lists {count} addresses, at most {max} fit in one message")]
    TooManyAddresses {
        field: &'static str,
        count: usize,
        max: usize,
    },

    #[error("usage recorder {address} is not a contract")]
    RecorderNotAContract { address: Addr },

    #[error("{max} retired usage recorders are kept already; no further recorder can be set")]
    TooManyRetiredRecorders { max: usize },

    #[error("a datanet may have at most {max} curators, this change would give it {count}")]
    TooManyCurators { count: usize, max: usize },

    #[error("a contribution must have at least one byte")]
    EmptyContribution,

    #[error("contribution of {size} bytes exceeds the datanet's limit of {max} bytes")]
    Oversize { size: u64, max: u64 },

    #[error(
        "content {content_hash} is already contribution {existing_id} of datanet {datanet_id}"
    )]
    DuplicateContent {
        datanet_id: u64,
        content_hash: String,
        existing_id: u64,
    },

    #[error("contribution {contribution_id} is committed to but not revealed yet")]
    NotRevealed { contribution_id: u64 },

    #[error("contribution {contribution_id} is revealed already")]
    AlreadyRevealed { contribution_id: u64 },

    #[error("contribution {contribution_id} was committed at height {committed_height}; reveal it in a later block (now {height})")]
    RevealTooEarly {
        contribution_id: u64,
        committed_height: u64,
        height: u64,
    },

    #[error("the commitment of contribution {contribution_id} expired at {expires_at}")]
    CommitmentExpired {
        contribution_id: u64,
        expires_at: Timestamp,
    },

    #[error("the content hash does not match the commitment of contribution {contribution_id} and its contributor")]
    CommitmentMismatch { contribution_id: u64 },

    #[error(
        "{contributor} holds {max} unrevealed commitments already; reveal or withdraw one first"
    )]
    TooManyOpenCommitments { contributor: Addr, max: usize },

    #[error("{contributor} is not on the allow list of datanet {datanet_id}")]
    NotAllowed { datanet_id: u64, contributor: Addr },

    #[error("contribution {id} is {} and no longer pending", .status.as_str())]
    NotPending { id: u64, status: ContributionStatus },

    #[error("rejecting contribution {contribution_id} requires a reason")]
    ReasonRequired { contribution_id: u64 },

    #[error("datanet {datanet_id} has no accepted contribution since its last version ({count} accepted)")]
    NothingToSnapshot { datanet_id: u64, count: u64 },

    #[error("contribution {contribution_id} is {} and not accepted", .status.as_str())]
    NotAccepted {
        contribution_id: u64,
        status: ContributionStatus,
    },

    #[error("contribution {contribution_id} (leaf {leaf_index}) is not in version {version}, which has {count} leaves")]
    NotInVersion {
        contribution_id: u64,
        leaf_index: u64,
        version: u32,
        count: u64,
    },

    #[error("a usage batch may hold at most {max} records, got {count}")]
    TooManyRecords { count: usize, max: usize },

    #[error("datanet {datanet_id} is missing tree node {height}/{index}")]
    MissingNode {
        datanet_id: u64,
        height: u32,
        index: u64,
    },
}

use cosmwasm_std::{OverflowError, StdError};
use cw_utils::PaymentError;
use thiserror::Error;
use tributary_types::upgrade::UpgradeError;
use tributary_types::validate::TextError;
use tributary_types::SplitError;

/// Every way a model-registry message can fail.
#[derive(Error, Debug, PartialEq)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),

    #[error("{0}")]
    Overflow(#[from] OverflowError),

    #[error("{0}")]
    Text(#[from] TextError),

    #[error("invalid fee split: {0}")]
    InvalidSplit(#[from] SplitError),

    #[error("{0}")]
    Upgrade(#[from] UpgradeError),

    /// Funds were attached to a message that takes none.
    #[error("{0}")]
    Payment(#[from] PaymentError),

    #[error("{sender} is not the admin")]
    NotAdmin { sender: String },

    #[error("{sender} is not the owner of model {model_id}")]
    NotModelOwner { model_id: u64, sender: String },

    #[error("model {model_id} does not exist")]
    ModelNotFound { model_id: u64 },

    #[error("model {model_id} has no version {version}")]
    VersionNotFound { model_id: u64, version: u32 },

    #[error("version {version} of model {model_id} is already deprecated")]
    AlreadyDeprecated { model_id: u64, version: u32 },

    #[error("{address:?} is not a valid address")]
    InvalidAddress { address: String },

    #[error("{address} is not a Tributary datanet contract")]
    NotADatanetContract { address: String },

    #[error(
        "minimum shares of {contributors_bps} (contributors) and {protocol_bps} (protocol) bps \
         exceed 10000 together"
    )]
    MinimumSharesTooHigh {
        contributors_bps: u16,
        protocol_bps: u16,
    },

    #[error("a model version needs at least one datanet version in its lineage")]
    EmptyLineage,

    #[error("lineage has {count} entries, at most {max} allowed")]
    TooManyLineageEntries { count: usize, max: usize },

    #[error("datanet {datanet_id} version {version} appears more than once in the lineage")]
    DuplicateLineageEntry { datanet_id: u64, version: u32 },

    #[error("datanet {datanet_id} has no version {version}")]
    UnknownDatanetVersion { datanet_id: u64, version: u32 },

    #[error("root given for datanet {datanet_id} version {version} is not the datanet's root")]
    LineageRootMismatch { datanet_id: u64, version: u32 },

    #[error("{field} must be a 32-byte hash, got {len} bytes")]
    InvalidHash { field: &'static str, len: usize },

    #[error("price must be greater than zero")]
    ZeroPrice,

    #[error("{denom:?} is not a valid denom")]
    InvalidDenom { denom: String },

    #[error("contributors' share of {share} bps is below the minimum of {min} bps")]
    ContributorsShareTooLow { share: u16, min: u16 },

    #[error("protocol share of {share} bps is below the minimum of {min} bps")]
    ProtocolShareTooLow { share: u16, min: u16 },

    #[error("a model version needs at least one attestor")]
    NoAttestors,

    #[error("{count} attestors given, at most {max} allowed")]
    TooManyAttestors { count: usize, max: usize },

    #[error("attestor {attestor} appears more than once")]
    DuplicateAttestor { attestor: String },

    #[error("quorum {quorum} must be between 1 and the number of attestors ({attestors})")]
    InvalidQuorum { quorum: u32, attestors: u32 },

    #[error("gateway URL {url:?} must be an http:// or https:// URL of at most {max} bytes")]
    InvalidGatewayUrl { url: String, max: usize },

    #[error("{attestor} has published no gateway")]
    NoGateway { attestor: String },
}

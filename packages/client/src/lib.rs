//! The Tributary Rust client: keys, signed transactions with simulated gas and confirmation,
//! typed contract calls and queries, and event subscriptions, over CometBFT RPC.
//!
//! A library for the CLI, the relayer, the demo and the tests: it never prints and never exits;
//! every failure is an [`Error`] a caller can match on.

mod batches;
mod client;
mod config;
mod datanet;
mod deployment;
mod error;
mod events;
mod gateway;
mod governance;
mod payout;
mod registry;
mod signer;
mod tx;
mod wasm;

pub use batches::{BatchContents, BatchItem};
pub use client::{Account, BlockInfo, Client};
pub use config::{coin, ChainConfig};
pub use datanet::{contribution_ids, Contributed, DatanetContract, NewContribution, NewDatanet};
pub use deployment::{deploy, read_artifacts, Contracts, DeploySettings, Deployment, ARTIFACTS};
pub use error::Error;
pub use events::{Event, InferenceRequested, InferenceRequests, INFERENCE_REQUESTED};
pub use gateway::{GatewayClient, PaidCompletion, Submission};
pub use payout::PayoutContract;
pub use registry::RegistryContract;
pub use signer::{verify_signature, Signer, COSMOS_HD_PATH};
pub use tx::{GasInfo, PreparedTx, TxLookup, TxOptions, TxOutcome};
pub use wasm::{CodeInfo, ContractCall};

pub use cosmrs::cosmwasm::ContractInfo;
pub use cosmrs::{AccountId, Any, Coin};
pub use cosmwasm_std::Decimal;

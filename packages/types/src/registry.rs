//! Messages of the model-registry contract: models, versions, lineage, price, split, attestors.

use crate::asset::Price;
use crate::packet::DatanetRoot;
use crate::split::FeeSplit;
use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Addr, HexBinary, Timestamp};

/// How attribution is computed for a model version; attestors must commit packets with the same
/// method id and parameters hash.
#[cw_serde]
#[derive(Eq)]
pub struct AttributionMethod {
    /// e.g. `trak-logra-v2`.
    pub id: String,
    /// SHA-256 of the canonical parameters.
    pub params_hash: HexBinary,
    /// The parameters in readable form, for anyone who wants to recompute.
    pub params: Option<String>,
}

/// Everything that defines one version of a model.
#[cw_serde]
pub struct ModelVersionInput {
    /// The datanet versions the weights were trained on, each checked against the datanet contract.
    pub lineage: Vec<DatanetRoot>,
    pub weights_hash: HexBinary,
    pub weights_uri: String,
    /// Hash of the gradient index the attestors use.
    pub index_hash: HexBinary,
    pub method: AttributionMethod,
    pub price: Price,
    pub split: FeeSplit,
    /// Addresses allowed to commit attribution packets for this version.
    pub attestors: Vec<String>,
    /// How many attestors must commit the same packet before it can be finalized.
    pub quorum: u32,
}

#[cw_serde]
pub struct InstantiateMsg {
    pub admin: Option<String>,
    pub datanet_contract: String,
    /// Smallest contributors' share a split may have.
    pub min_contributors_bps: u16,
    /// Smallest protocol share a split may have.
    pub min_protocol_bps: u16,
}

#[cw_serde]
pub enum ExecuteMsg {
    /// Registers a model owned by the sender, with its first version (version 1).
    RegisterModel {
        name: String,
        description: String,
        architecture: String,
        version: ModelVersionInput,
    },
    /// Owner only: adds the next version.
    AddVersion {
        model_id: u64,
        version: ModelVersionInput,
    },
    /// Owner only: no new inference requests for this version.
    DeprecateVersion { model_id: u64, version: u32 },
    /// Owner only: rotates the attestors of a version.
    SetAttestors {
        model_id: u64,
        version: u32,
        attestors: Vec<String>,
        quorum: u32,
    },
    /// Any address: publishes the URL of the gateway where it takes prompts for the model
    /// versions it attests (`None` withdraws it). Buyers find a version's gateways with
    /// `Gateways`, which lists only the version's current attestors.
    SetGateway { url: Option<String> },
    /// Admin only.
    UpdateConfig {
        admin: Option<String>,
        min_contributors_bps: Option<u16>,
        min_protocol_bps: Option<u16>,
    },
}

#[cw_serde]
pub struct MigrateMsg {}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(ConfigResponse)]
    Config {},
    #[returns(Model)]
    Model { model_id: u64 },
    #[returns(ModelsResponse)]
    Models {
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    #[returns(ModelsResponse)]
    ModelsByOwner {
        owner: String,
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    #[returns(ModelVersion)]
    ModelVersion { model_id: u64, version: u32 },
    #[returns(ModelVersionsResponse)]
    Versions {
        model_id: u64,
        start_after: Option<u32>,
        limit: Option<u32>,
    },
    /// Model versions trained on any version of a datanet (lineage, reverse direction).
    #[returns(ModelRefsResponse)]
    ModelsByDatanet {
        datanet_id: u64,
        /// `(model_id, version)` to start after.
        start_after: Option<(u64, u32)>,
        limit: Option<u32>,
    },
    /// The gateways of a version's attestors, in the version's attestor order; attestors that
    /// published none are left out.
    #[returns(GatewaysResponse)]
    Gateways { model_id: u64, version: u32 },
    /// The gateway an address published, if any.
    #[returns(Option<Gateway>)]
    Gateway { attestor: String },
}

#[cw_serde]
pub struct ConfigResponse {
    pub admin: Addr,
    pub datanet_contract: Addr,
    pub min_contributors_bps: u16,
    pub min_protocol_bps: u16,
}

#[cw_serde]
pub struct Model {
    pub id: u64,
    pub owner: Addr,
    pub name: String,
    pub description: String,
    pub architecture: String,
    pub latest_version: u32,
    pub created_at: Timestamp,
}

#[cw_serde]
pub struct ModelsResponse {
    pub models: Vec<Model>,
}

#[cw_serde]
pub struct ModelVersion {
    pub model_id: u64,
    pub version: u32,
    pub lineage: Vec<DatanetRoot>,
    pub weights_hash: HexBinary,
    pub weights_uri: String,
    pub index_hash: HexBinary,
    pub method: AttributionMethod,
    pub price: Price,
    pub split: FeeSplit,
    pub attestors: Vec<Addr>,
    pub quorum: u32,
    pub deprecated: bool,
    /// The model owner at registration; receives the developer share.
    pub developer: Addr,
    pub created_at: Timestamp,
}

#[cw_serde]
pub struct ModelVersionsResponse {
    pub versions: Vec<ModelVersion>,
}

/// A model version trained on a datanet, with the datanet version it used.
#[cw_serde]
pub struct ModelRef {
    pub model_id: u64,
    pub version: u32,
    pub datanet_version: u32,
}

#[cw_serde]
pub struct ModelRefsResponse {
    pub models: Vec<ModelRef>,
}

/// Where an attestor takes prompts: the base URL of its gateway (`POST {url}/v1/completions`).
#[cw_serde]
pub struct Gateway {
    pub attestor: Addr,
    pub url: String,
}

#[cw_serde]
pub struct GatewaysResponse {
    pub gateways: Vec<Gateway>,
}

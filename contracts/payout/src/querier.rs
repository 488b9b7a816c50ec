//! Reads of the model-registry and datanet contracts this contract settles against.
//!
//! Contributions and frozen versions are read straight from the datanet contract's storage
//! ([`tributary_types::datanet::layout`]): a raw query costs the chain one store read, where a
//! smart query runs the datanet contract for every entry of every packet.

use crate::error::ContractError;
use crate::state::Config;
use cosmwasm_std::Deps;
use cw_storage_plus::Map;
use tributary_types::datanet::{layout, Contribution, DatanetVersion};
use tributary_types::registry::{self, ModelVersion};

const CONTRIBUTIONS: Map<u64, Contribution> = Map::new(layout::CONTRIBUTIONS);
const VERSIONS: Map<(u64, u32), DatanetVersion> = Map::new(layout::VERSIONS);

/// The registered model version; any failure of the registry means it does not exist.
pub fn model_version(
    deps: Deps,
    config: &Config,
    model_id: u64,
    version: u32,
) -> Result<ModelVersion, ContractError> {
    deps.querier
        .query_wasm_smart(
            &config.registry_contract,
            &registry::QueryMsg::ModelVersion { model_id, version },
        )
        .map_err(|_| ContractError::UnknownModelVersion { model_id, version })
}

/// A contribution as the datanet contract records it; `None` when it does not exist.
pub fn contribution(deps: Deps, config: &Config, contribution_id: u64) -> Option<Contribution> {
    CONTRIBUTIONS
        .query(
            &deps.querier,
            config.datanet_contract.clone(),
            contribution_id,
        )
        .ok()
        .flatten()
}

/// A frozen datanet version; `None` when it does not exist.
pub fn datanet_version(
    deps: Deps,
    config: &Config,
    datanet_id: u64,
    version: u32,
) -> Option<DatanetVersion> {
    VERSIONS
        .query(
            &deps.querier,
            config.datanet_contract.clone(),
            (datanet_id, version),
        )
        .ok()
        .flatten()
}

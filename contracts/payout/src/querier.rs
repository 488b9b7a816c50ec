//! Typed reads of the model-registry and datanet contracts this contract settles against.

use crate::error::ContractError;
use crate::state::Config;
use cosmwasm_std::Deps;
use tributary_types::datanet::{self, Contribution, DatanetVersion};
use tributary_types::registry::{self, ModelVersion};

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
    deps.querier
        .query_wasm_smart(
            &config.datanet_contract,
            &datanet::QueryMsg::Contribution { contribution_id },
        )
        .ok()
}

/// A frozen datanet version; `None` when it does not exist.
pub fn datanet_version(
    deps: Deps,
    config: &Config,
    datanet_id: u64,
    version: u32,
) -> Option<DatanetVersion> {
    deps.querier
        .query_wasm_smart(
            &config.datanet_contract,
            &datanet::QueryMsg::Version {
                datanet_id,
                version,
            },
        )
        .ok()
}

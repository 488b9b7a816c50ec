//! One function per query message.

use crate::error::ContractError;
use crate::state::{BY_DATANET, CONFIG, GATEWAYS, MODELS, VERSIONS};
use cosmwasm_std::{Deps, Order, StdResult};
use cw_storage_plus::Bound;
use tributary_types::pagination::page_limit;
use tributary_types::registry::{
    ConfigResponse, Gateway, GatewaysResponse, Model, ModelRef, ModelRefsResponse, ModelVersion,
    ModelVersionsResponse, ModelsResponse,
};

/// The registry's settings.
pub fn config(deps: Deps) -> StdResult<ConfigResponse> {
    let config = CONFIG.load(deps.storage)?;
    Ok(ConfigResponse {
        admin: config.admin,
        datanet_contract: config.datanet_contract,
        min_contributors_bps: config.min_contributors_bps,
        min_protocol_bps: config.min_protocol_bps,
    })
}

/// One model.
pub fn model(deps: Deps, model_id: u64) -> Result<Model, ContractError> {
    MODELS
        .may_load(deps.storage, model_id)?
        .ok_or(ContractError::ModelNotFound { model_id })
}

/// Models by id.
pub fn models(
    deps: Deps,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> StdResult<ModelsResponse> {
    let models = MODELS
        .range(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_limit(limit))
        .map(|item| item.map(|(_, model)| model))
        .collect::<StdResult<_>>()?;
    Ok(ModelsResponse { models })
}

/// Models of one owner by id.
pub fn models_by_owner(
    deps: Deps,
    owner: String,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> StdResult<ModelsResponse> {
    let owner = deps.api.addr_validate(&owner)?;
    let models = MODELS
        .idx
        .owner
        .prefix(owner)
        .range(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_limit(limit))
        .map(|item| item.map(|(_, model)| model))
        .collect::<StdResult<_>>()?;
    Ok(ModelsResponse { models })
}

/// One model version.
pub fn model_version(
    deps: Deps,
    model_id: u64,
    version: u32,
) -> Result<ModelVersion, ContractError> {
    VERSIONS
        .may_load(deps.storage, (model_id, version))?
        .ok_or(ContractError::VersionNotFound { model_id, version })
}

/// The published gateways of a version's attestors, in attestor order. A version has at most
/// `MAX_ATTESTORS` attestors, so the answer is bounded without pagination.
pub fn gateways(
    deps: Deps,
    model_id: u64,
    version: u32,
) -> Result<GatewaysResponse, ContractError> {
    let version = model_version(deps, model_id, version)?;
    let mut gateways = Vec::new();
    for attestor in version.attestors {
        if let Some(url) = GATEWAYS.may_load(deps.storage, &attestor)? {
            gateways.push(Gateway { attestor, url });
        }
    }
    Ok(GatewaysResponse { gateways })
}

/// The gateway `attestor` published.
pub fn gateway(deps: Deps, attestor: String) -> Result<Option<Gateway>, ContractError> {
    let attestor = crate::validate::address(deps.api, &attestor)?;
    let url = GATEWAYS.may_load(deps.storage, &attestor)?;
    Ok(url.map(|url| Gateway { attestor, url }))
}

/// The versions of one model, oldest first.
pub fn versions(
    deps: Deps,
    model_id: u64,
    start_after: Option<u32>,
    limit: Option<u32>,
) -> StdResult<ModelVersionsResponse> {
    let versions = VERSIONS
        .prefix(model_id)
        .range(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_limit(limit))
        .map(|item| item.map(|(_, version)| version))
        .collect::<StdResult<_>>()?;
    Ok(ModelVersionsResponse { versions })
}

/// Model versions trained on a datanet, by `(model_id, version)`.
pub fn models_by_datanet(
    deps: Deps,
    datanet_id: u64,
    start_after: Option<(u64, u32)>,
    limit: Option<u32>,
) -> StdResult<ModelRefsResponse> {
    let models = BY_DATANET
        .sub_prefix(datanet_id)
        .range(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_limit(limit))
        .map(|item| {
            item.map(|((model_id, version), datanet_version)| ModelRef {
                model_id,
                version,
                datanet_version,
            })
        })
        .collect::<StdResult<_>>()?;
    Ok(ModelRefsResponse { models })
}

//! Entry points of the model-registry contract.

use crate::error::ContractError;
use crate::execute;
use crate::query;
use crate::state::{Config, CONFIG};
use crate::validate;
#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Response};
use cw_utils::nonpayable;
use tributary_types::registry::{ExecuteMsg, InstantiateMsg, MigrateMsg, QueryMsg};
use tributary_types::upgrade::check_upgrade;

/// The cw2 name of this contract.
pub const CONTRACT_NAME: &str = "crates.io:tributary-model-registry";
/// The cw2 version of this contract.
pub const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Sets the config; the admin defaults to the sender.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    // The registry never pays anything out, so coins sent to it would be stuck for good.
    nonpayable(&info)?;
    cw2::set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    let admin = match msg.admin {
        Some(admin) => validate::address(deps.api, &admin)?,
        None => info.sender,
    };
    validate::address(deps.api, &msg.datanet_contract)?;
    validate::minimum_shares(msg.min_contributors_bps, msg.min_protocol_bps)?;
    let datanet_contract = validate::datanet_contract(deps.as_ref(), &msg.datanet_contract)?;
    let config = Config {
        admin,
        datanet_contract,
        min_contributors_bps: msg.min_contributors_bps,
        min_protocol_bps: msg.min_protocol_bps,
    };
    CONFIG.save(deps.storage, &config)?;

    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("admin", config.admin)
        .add_attribute("datanet_contract", config.datanet_contract))
}

/// Dispatches an execute message; no message takes funds.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, ContractError> {
    // The registry never pays anything out, so coins sent to it would be stuck for good.
    nonpayable(&info)?;
    match msg {
        ExecuteMsg::RegisterModel {
            name,
            description,
            architecture,
            version,
        } => execute::register_model(deps, env, info, name, description, architecture, version),
        ExecuteMsg::AddVersion { model_id, version } => {
            execute::add_version(deps, env, info, model_id, version)
        }
        ExecuteMsg::DeprecateVersion { model_id, version } => {
            execute::deprecate_version(deps, info, model_id, version)
        }
        ExecuteMsg::SetAttestors {
            model_id,
            version,
            attestors,
            quorum,
        } => execute::set_attestors(deps, info, model_id, version, attestors, quorum),
        ExecuteMsg::SetGateway { url } => execute::set_gateway(deps, info, url),
        ExecuteMsg::UpdateConfig {
            admin,
            min_contributors_bps,
            min_protocol_bps,
        } => execute::update_config(deps, info, admin, min_contributors_bps, min_protocol_bps),
    }
}

/// Dispatches a query message.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> Result<Binary, ContractError> {
    let binary = match msg {
        QueryMsg::Config {} => to_json_binary(&query::config(deps)?),
        QueryMsg::Model { model_id } => to_json_binary(&query::model(deps, model_id)?),
        QueryMsg::Models { start_after, limit } => {
            to_json_binary(&query::models(deps, start_after, limit)?)
        }
        QueryMsg::ModelsByOwner {
            owner,
            start_after,
            limit,
        } => to_json_binary(&query::models_by_owner(deps, owner, start_after, limit)?),
        QueryMsg::ModelVersion { model_id, version } => {
            to_json_binary(&query::model_version(deps, model_id, version)?)
        }
        QueryMsg::Versions {
            model_id,
            start_after,
            limit,
        } => to_json_binary(&query::versions(deps, model_id, start_after, limit)?),
        QueryMsg::ModelsByDatanet {
            datanet_id,
            start_after,
            limit,
        } => to_json_binary(&query::models_by_datanet(
            deps,
            datanet_id,
            start_after,
            limit,
        )?),
        QueryMsg::Gateways { model_id, version } => {
            to_json_binary(&query::gateways(deps, model_id, version)?)
        }
        QueryMsg::Gateway { attestor } => to_json_binary(&query::gateway(deps, attestor)?),
    };
    Ok(binary?)
}

/// Upgrades in place: same contract only, never to an older version.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn migrate(deps: DepsMut, _env: Env, _msg: MigrateMsg) -> Result<Response, ContractError> {
    let stored = cw2::get_contract_version(deps.storage)?;
    check_upgrade(
        &stored.contract,
        &stored.version,
        CONTRACT_NAME,
        CONTRACT_VERSION,
    )?;
    cw2::set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;

    Ok(Response::new()
        .add_attribute("action", "migrate")
        .add_attribute("from_version", stored.version)
        .add_attribute("to_version", CONTRACT_VERSION))
}

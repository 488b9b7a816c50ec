//! One function per execute message.

use crate::error::ContractError;
use crate::state::{Config, BY_DATANET, CONFIG, GATEWAYS, MODELS, MODEL_SEQ, VERSIONS};
use crate::validate;
use cosmwasm_std::{
    Addr, DepsMut, Env, MessageInfo, OverflowError, OverflowOperation, Response, StdResult, Storage,
};
use tributary_types::registry::{Model, ModelVersion, ModelVersionInput};

/// Registers a model owned by the sender together with its version 1.
pub fn register_model(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    name: String,
    description: String,
    architecture: String,
    input: ModelVersionInput,
) -> Result<Response, ContractError> {
    validate::model_text(&name, &description, &architecture)?;
    let config = CONFIG.load(deps.storage)?;
    let model_id = MODEL_SEQ
        .may_load(deps.storage)?
        .unwrap_or_default()
        .checked_add(1)
        .ok_or(OverflowError::new(OverflowOperation::Add))?;
    let model = Model {
        id: model_id,
        owner: info.sender,
        name,
        description,
        architecture,
        latest_version: 1,
        created_at: env.block.time,
    };
    let version = validate::new_version(deps.as_ref(), &env, &config, &model, 1, input)?;

    MODEL_SEQ.save(deps.storage, &model_id)?;
    MODELS.save(deps.storage, model_id, &model)?;
    save_version(deps.storage, &version)?;

    Ok(Response::new()
        .add_attribute("action", "register_model")
        .add_attribute("model_id", model_id.to_string())
        .add_attribute("version", "1")
        .add_attribute("owner", model.owner))
}

/// Owner only: adds the model's next version.
pub fn add_version(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    model_id: u64,
    input: ModelVersionInput,
) -> Result<Response, ContractError> {
    let mut model = owned_model(deps.storage, model_id, &info.sender)?;
    let config = CONFIG.load(deps.storage)?;
    let next = model
        .latest_version
        .checked_add(1)
        .ok_or(OverflowError::new(OverflowOperation::Add))?;
    let version = validate::new_version(deps.as_ref(), &env, &config, &model, next, input)?;

    model.latest_version = next;
    MODELS.save(deps.storage, model_id, &model)?;
    save_version(deps.storage, &version)?;

    Ok(Response::new()
        .add_attribute("action", "add_version")
        .add_attribute("model_id", model_id.to_string())
        .add_attribute("version", next.to_string()))
}

/// Owner only: marks a version as closed to new inference requests.
pub fn deprecate_version(
    deps: DepsMut,
    info: MessageInfo,
    model_id: u64,
    version: u32,
) -> Result<Response, ContractError> {
    owned_model(deps.storage, model_id, &info.sender)?;
    let mut entry = load_version(deps.storage, model_id, version)?;
    if entry.deprecated {
        return Err(ContractError::AlreadyDeprecated { model_id, version });
    }
    entry.deprecated = true;
    VERSIONS.save(deps.storage, (model_id, version), &entry)?;

    Ok(Response::new()
        .add_attribute("action", "deprecate_version")
        .add_attribute("model_id", model_id.to_string())
        .add_attribute("version", version.to_string()))
}

/// Owner only: replaces a version's attestors and quorum.
///
/// Deprecated versions may still rotate, since requests made before deprecation still need
/// attestors to commit and finalize.
pub fn set_attestors(
    deps: DepsMut,
    info: MessageInfo,
    model_id: u64,
    version: u32,
    attestors: Vec<String>,
    quorum: u32,
) -> Result<Response, ContractError> {
    owned_model(deps.storage, model_id, &info.sender)?;
    let mut entry = load_version(deps.storage, model_id, version)?;
    entry.attestors = validate::attestors(deps.api, &attestors, quorum)?;
    entry.quorum = quorum;
    VERSIONS.save(deps.storage, (model_id, version), &entry)?;

    Ok(Response::new()
        .add_attribute("action", "set_attestors")
        .add_attribute("model_id", model_id.to_string())
        .add_attribute("version", version.to_string())
        .add_attribute("attestors", entry.attestors.len().to_string())
        .add_attribute("quorum", quorum.to_string()))
}

/// Publishes or withdraws the sender's gateway URL.
///
/// Anyone may publish one: `Gateways` lists only the current attestors of a version, so a URL
/// of an address that attests nothing is never shown to a buyer.
pub fn set_gateway(
    deps: DepsMut,
    info: MessageInfo,
    url: Option<String>,
) -> Result<Response, ContractError> {
    let response = Response::new()
        .add_attribute("action", "set_gateway")
        .add_attribute("attestor", info.sender.as_str());
    match url {
        Some(url) => {
            validate::gateway_url(&url)?;
            GATEWAYS.save(deps.storage, &info.sender, &url)?;
            Ok(response.add_attribute("url", url))
        }
        None => {
            if !GATEWAYS.has(deps.storage, &info.sender) {
                return Err(ContractError::NoGateway {
                    attestor: info.sender.into_string(),
                });
            }
            GATEWAYS.remove(deps.storage, &info.sender);
            Ok(response)
        }
    }
}

/// Admin only: changes the admin or the minimum shares of future versions.
pub fn update_config(
    deps: DepsMut,
    info: MessageInfo,
    admin: Option<String>,
    min_contributors_bps: Option<u16>,
    min_protocol_bps: Option<u16>,
) -> Result<Response, ContractError> {
    let config = CONFIG.load(deps.storage)?;
    if info.sender != config.admin {
        return Err(ContractError::NotAdmin {
            sender: info.sender.into_string(),
        });
    }
    let admin = match admin {
        Some(admin) => validate::address(deps.api, &admin)?,
        None => config.admin,
    };
    let min_contributors_bps = min_contributors_bps.unwrap_or(config.min_contributors_bps);
    let min_protocol_bps = min_protocol_bps.unwrap_or(config.min_protocol_bps);
    validate::minimum_shares(min_contributors_bps, min_protocol_bps)?;
    let config = Config {
        admin,
        datanet_contract: config.datanet_contract,
        min_contributors_bps,
        min_protocol_bps,
    };
    CONFIG.save(deps.storage, &config)?;

    Ok(Response::new()
        .add_attribute("action", "update_config")
        .add_attribute("admin", config.admin)
        .add_attribute("min_contributors_bps", min_contributors_bps.to_string())
        .add_attribute("min_protocol_bps", min_protocol_bps.to_string()))
}

fn owned_model(
    storage: &dyn Storage,
    model_id: u64,
    sender: &Addr,
) -> Result<Model, ContractError> {
    let model = MODELS
        .may_load(storage, model_id)?
        .ok_or(ContractError::ModelNotFound { model_id })?;
    if model.owner != *sender {
        return Err(ContractError::NotModelOwner {
            model_id,
            sender: sender.to_string(),
        });
    }
    Ok(model)
}

fn load_version(
    storage: &dyn Storage,
    model_id: u64,
    version: u32,
) -> Result<ModelVersion, ContractError> {
    VERSIONS
        .may_load(storage, (model_id, version))?
        .ok_or(ContractError::VersionNotFound { model_id, version })
}

fn save_version(storage: &mut dyn Storage, version: &ModelVersion) -> StdResult<()> {
    VERSIONS.save(storage, (version.model_id, version.version), version)?;
    for entry in &version.lineage {
        let key = (entry.datanet_id, version.model_id, version.version);
        // A lineage may name several versions of one datanet; versions only ever grow (each
        // contains the leaves of the one before), so the newest one named stands for them all.
        let datanet_version = BY_DATANET
            .may_load(storage, key)?
            .map_or(entry.version, |known| known.max(entry.version));
        BY_DATANET.save(storage, key, &datanet_version)?;
    }
    Ok(())
}

#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Response};
use cw_utils::nonpayable;
use tributary_types::datanet::{ExecuteMsg, InstantiateMsg, MigrateMsg, QueryMsg};
use tributary_types::upgrade::check_upgrade;

use crate::error::ContractError;
use crate::execute;
use crate::query;
use crate::state::{Config, CONFIG, CONTRIBUTION_SEQ, DATANET_SEQ};

/// The cw2 name of this contract.
pub const CONTRACT_NAME: &str = tributary_types::datanet::CONTRACT_NAME;
/// The cw2 version of this contract.
pub const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Sets the admin (the sender unless given) and the optional usage recorder.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    // The contract never pays anything out, so coins sent to it would be stuck for good.
    nonpayable(&info)?;
    cw2::set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    let admin = match msg.admin {
        Some(admin) => execute::validate_addr(deps.api, &admin)?,
        None => info.sender,
    };
    let usage_recorder = msg
        .usage_recorder
        .map(|r| execute::validate_addr(deps.api, &r))
        .transpose()?;
    CONFIG.save(
        deps.storage,
        &Config {
            admin: admin.clone(),
            usage_recorder: usage_recorder.clone(),
            retired_usage_recorders: Vec::new(),
        },
    )?;
    DATANET_SEQ.save(deps.storage, &0)?;
    CONTRIBUTION_SEQ.save(deps.storage, &0)?;
    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("admin", admin)
        .add_attribute(
            "usage_recorder",
            usage_recorder.map_or_else(String::new, String::from),
        ))
}

/// Dispatches each message to its handler in [`execute`]; no message takes funds.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, ContractError> {
    // The contract never pays anything out, so coins sent to it would be stuck for good.
    nonpayable(&info)?;
    match msg {
        ExecuteMsg::CreateDatanet {
            name,
            description,
            domain_tags,
            license,
            policy,
            curators,
            max_contribution_bytes,
        } => execute::create_datanet(
            deps,
            env,
            info,
            execute::NewDatanet {
                name,
                description,
                domain_tags,
                license,
                policy,
                curators,
                max_contribution_bytes,
            },
        ),
        ExecuteMsg::UpdateDatanet {
            datanet_id,
            description,
            domain_tags,
            license,
            policy,
            max_contribution_bytes,
        } => execute::update_datanet(
            deps,
            info,
            datanet_id,
            execute::DatanetChanges {
                description,
                domain_tags,
                license,
                policy,
                max_contribution_bytes,
            },
        ),
        ExecuteMsg::AddCurators {
            datanet_id,
            curators,
        } => execute::add_curators(deps, info, datanet_id, curators),
        ExecuteMsg::RemoveCurators {
            datanet_id,
            curators,
        } => execute::remove_curators(deps, info, datanet_id, curators),
        ExecuteMsg::UpdateAllowList {
            datanet_id,
            add,
            remove,
        } => execute::update_allow_list(deps, info, datanet_id, add, remove),
        ExecuteMsg::TransferOwnership {
            datanet_id,
            new_owner,
        } => execute::transfer_ownership(deps, info, datanet_id, new_owner),
        ExecuteMsg::Contribute {
            datanet_id,
            commitment,
            size_bytes,
            media_type,
            metadata,
        } => execute::contribute(
            deps,
            env,
            info,
            execute::NewCommitment {
                datanet_id,
                commitment,
                size_bytes,
                media_type,
                metadata,
            },
        ),
        ExecuteMsg::RevealContribution {
            contribution_id,
            content_hash,
            uri,
        } => execute::reveal_contribution(deps, env, info, contribution_id, content_hash, uri),
        ExecuteMsg::Withdraw { contribution_id } => execute::withdraw(deps, info, contribution_id),
        ExecuteMsg::Review {
            contribution_id,
            decision,
            reason,
        } => execute::review(deps, info, contribution_id, decision, reason),
        ExecuteMsg::Snapshot { datanet_id, note } => {
            execute::snapshot(deps, env, info, datanet_id, note)
        }
        ExecuteMsg::RecordUsage { records } => execute::record_usage(deps, info, records),
        ExecuteMsg::UpdateConfig {
            admin,
            usage_recorder,
        } => execute::update_config(deps, info, admin, usage_recorder),
    }
}

/// Dispatches each query to its handler in [`query`].
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> Result<Binary, ContractError> {
    let binary = match msg {
        QueryMsg::Config {} => to_json_binary(&query::config(deps)?),
        QueryMsg::Datanet { datanet_id } => to_json_binary(&query::datanet(deps, datanet_id)?),
        QueryMsg::Datanets {
            domain_tag,
            start_after,
            limit,
        } => to_json_binary(&query::datanets(deps, domain_tag, start_after, limit)?),
        QueryMsg::Curators { datanet_id } => to_json_binary(&query::curators(deps, datanet_id)?),
        QueryMsg::IsAllowed {
            datanet_id,
            contributor,
        } => to_json_binary(&query::is_allowed(deps, datanet_id, contributor)?),
        QueryMsg::Contribution { contribution_id } => {
            to_json_binary(&query::contribution(deps, contribution_id)?)
        }
        QueryMsg::ContributionByHash {
            datanet_id,
            content_hash,
        } => to_json_binary(&query::contribution_by_hash(
            deps,
            datanet_id,
            content_hash,
        )?),
        QueryMsg::ContributionsByHash {
            content_hash,
            start_after,
            limit,
        } => to_json_binary(&query::contributions_by_hash(
            deps,
            content_hash,
            start_after,
            limit,
        )?),
        QueryMsg::Commitment { contribution_id } => {
            to_json_binary(&query::commitment(deps, contribution_id)?)
        }
        QueryMsg::Commitments {
            contributor,
            start_after,
            limit,
        } => to_json_binary(&query::commitments(deps, contributor, start_after, limit)?),
        QueryMsg::Contributions {
            datanet_id,
            status,
            start_after,
            limit,
        } => to_json_binary(&query::contributions(
            deps,
            datanet_id,
            status,
            start_after,
            limit,
        )?),
        QueryMsg::ContributionsByContributor {
            contributor,
            start_after,
            limit,
        } => to_json_binary(&query::contributions_by_contributor(
            deps,
            contributor,
            start_after,
            limit,
        )?),
        QueryMsg::Version {
            datanet_id,
            version,
        } => to_json_binary(&query::version(deps, datanet_id, version)?),
        QueryMsg::Versions {
            datanet_id,
            start_after,
            limit,
        } => to_json_binary(&query::versions(deps, datanet_id, start_after, limit)?),
        QueryMsg::VersionContributions {
            datanet_id,
            version,
            start_after,
            limit,
        } => to_json_binary(&query::version_contributions(
            deps,
            datanet_id,
            version,
            start_after,
            limit,
        )?),
        QueryMsg::InclusionProof {
            contribution_id,
            version,
        } => to_json_binary(&query::inclusion_proof(deps, contribution_id, version)?),
        QueryMsg::ContributorStats { contributor } => {
            to_json_binary(&query::contributor_stats(deps, contributor)?)
        }
    }?;
    Ok(binary)
}

/// Upgrades this contract in place; refuses other contracts and older versions.
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

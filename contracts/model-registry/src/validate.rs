//! Checks on what users submit: model descriptions, version inputs, attestor sets and the
//! configured minimum shares.

use crate::error::ContractError;
use crate::state::Config;
use cosmwasm_std::{Addr, Api, Deps, Env, HexBinary};
use std::collections::BTreeSet;
use tributary_types::asset::{is_valid_denom, AssetInfo, Price};
use tributary_types::datanet::{
    DatanetVersion, QueryMsg as DatanetQueryMsg, CONTRACT_NAME as DATANET_CONTRACT_NAME,
};
use tributary_types::hash::hash32;
use tributary_types::registry::{AttributionMethod, Model, ModelVersion, ModelVersionInput};
use tributary_types::split::BPS_DENOMINATOR;
use tributary_types::validate::{is_gateway_url, text, uri, MAX_GATEWAY_URL_LEN};
use tributary_types::{DatanetRoot, FeeSplit};

/// Most datanet versions one model version may be trained on.
pub const MAX_LINEAGE: usize = 16;
/// Most attestors one model version may have.
pub const MAX_ATTESTORS: usize = 16;
/// Longest model name, in characters.
pub const MAX_NAME_LEN: usize = 64;
/// Longest model description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 2048;
/// Longest architecture string, in characters.
pub const MAX_ARCHITECTURE_LEN: usize = 128;
/// Longest attribution method id, in characters.
pub const MAX_METHOD_ID_LEN: usize = 64;
/// Longest readable form of the method's parameters, in characters.
pub const MAX_METHOD_PARAMS_LEN: usize = 4096;

/// Checks a gateway URL with [`is_gateway_url`].
pub fn gateway_url(url: &str) -> Result<(), ContractError> {
    if is_gateway_url(url) {
        Ok(())
    } else {
        Err(ContractError::InvalidGatewayUrl {
            url: url.chars().take(64).collect(),
            max: MAX_GATEWAY_URL_LEN,
        })
    }
}

/// Checks a model's descriptive fields.
pub fn model_text(name: &str, description: &str, architecture: &str) -> Result<(), ContractError> {
    text("name", name, 1, MAX_NAME_LEN)?;
    text("description", description, 0, MAX_DESCRIPTION_LEN)?;
    text("architecture", architecture, 1, MAX_ARCHITECTURE_LEN)?;
    Ok(())
}

/// Checks that the two configured minimum shares leave room for a split summing to 10 000.
pub fn minimum_shares(contributors_bps: u16, protocol_bps: u16) -> Result<(), ContractError> {
    if contributors_bps as u32 + protocol_bps as u32 > BPS_DENOMINATOR {
        return Err(ContractError::MinimumSharesTooHigh {
            contributors_bps,
            protocol_bps,
        });
    }
    Ok(())
}

/// Validates an address, reporting it as given when it is refused.
pub fn address(api: &dyn Api, address: &str) -> Result<Addr, ContractError> {
    api.addr_validate(address)
        .map_err(|_| ContractError::InvalidAddress {
            address: address.to_string(),
        })
}

/// Checks that `address` is a datanet contract (by its cw2 name). The registry checks every
/// lineage against it and it cannot be changed, so a wrong address would leave a registry on
/// which nothing can be registered.
pub fn datanet_contract(deps: Deps, address: &str) -> Result<Addr, ContractError> {
    let datanet = self::address(deps.api, address)?;
    match cw2::query_contract_info(&deps.querier, &datanet) {
        Ok(info) if info.contract == DATANET_CONTRACT_NAME => Ok(datanet),
        _ => Err(ContractError::NotADatanetContract {
            address: address.to_string(),
        }),
    }
}

/// Checks an attestor set and its quorum; returns the validated addresses in the order given.
pub fn attestors(
    api: &dyn Api,
    attestors: &[String],
    quorum: u32,
) -> Result<Vec<Addr>, ContractError> {
    if attestors.is_empty() {
        return Err(ContractError::NoAttestors);
    }
    if attestors.len() > MAX_ATTESTORS {
        return Err(ContractError::TooManyAttestors {
            count: attestors.len(),
            max: MAX_ATTESTORS,
        });
    }
    let mut seen = BTreeSet::new();
    let mut checked = Vec::with_capacity(attestors.len());
    for attestor in attestors {
        let addr = address(api, attestor)?;
        if !seen.insert(addr.clone()) {
            return Err(ContractError::DuplicateAttestor {
                attestor: addr.into_string(),
            });
        }
        checked.push(addr);
    }
    // At most MAX_ATTESTORS, so the count fits.
    let count = checked.len() as u32;
    if quorum == 0 || quorum > count {
        return Err(ContractError::InvalidQuorum {
            quorum,
            attestors: count,
        });
    }
    Ok(checked)
}

/// Checks `input` in full, lineage roots included, and builds version `version` of `model` from it.
pub fn new_version(
    deps: Deps,
    env: &Env,
    config: &Config,
    model: &Model,
    version: u32,
    input: ModelVersionInput,
) -> Result<ModelVersion, ContractError> {
    lineage_shape(&input.lineage)?;
    hash("weights_hash", &input.weights_hash)?;
    hash("index_hash", &input.index_hash)?;
    hash("method.params_hash", &input.method.params_hash)?;
    uri(&input.weights_uri)?;
    method(&input.method)?;
    let price = price(deps.api, input.price)?;
    split(config, &input.split)?;
    let attestors = attestors(deps.api, &input.attestors, input.quorum)?;
    // Last, because each entry costs a query to the datanet contract.
    lineage_roots(deps, config, &input.lineage)?;

    Ok(ModelVersion {
        model_id: model.id,
        version,
        lineage: input.lineage,
        weights_hash: input.weights_hash,
        weights_uri: input.weights_uri,
        index_hash: input.index_hash,
        method: input.method,
        price,
        split: input.split,
        attestors,
        quorum: input.quorum,
        deprecated: false,
        developer: model.owner.clone(),
        created_at: env.block.time,
    })
}

fn lineage_shape(lineage: &[DatanetRoot]) -> Result<(), ContractError> {
    if lineage.is_empty() {
        return Err(ContractError::EmptyLineage);
    }
    if lineage.len() > MAX_LINEAGE {
        return Err(ContractError::TooManyLineageEntries {
            count: lineage.len(),
            max: MAX_LINEAGE,
        });
    }
    let mut seen = BTreeSet::new();
    for entry in lineage {
        if !seen.insert((entry.datanet_id, entry.version)) {
            return Err(ContractError::DuplicateLineageEntry {
                datanet_id: entry.datanet_id,
                version: entry.version,
            });
        }
    }
    Ok(())
}

/// Each root must be exactly the one the datanet contract froze, so a packet's datanet roots can
/// be checked against the registry alone.
fn lineage_roots(
    deps: Deps,
    config: &Config,
    lineage: &[DatanetRoot],
) -> Result<(), ContractError> {
    for entry in lineage {
        let frozen: DatanetVersion = deps
            .querier
            .query_wasm_smart(
                &config.datanet_contract,
                &DatanetQueryMsg::Version {
                    datanet_id: entry.datanet_id,
                    version: entry.version,
                },
            )
            .map_err(|_| ContractError::UnknownDatanetVersion {
                datanet_id: entry.datanet_id,
                version: entry.version,
            })?;
        if frozen.root != entry.root {
            return Err(ContractError::LineageRootMismatch {
                datanet_id: entry.datanet_id,
                version: entry.version,
            });
        }
    }
    Ok(())
}

fn hash(field: &'static str, value: &HexBinary) -> Result<(), ContractError> {
    hash32(value)
        .map(|_| ())
        .map_err(|_| ContractError::InvalidHash {
            field,
            len: value.len(),
        })
}

fn method(method: &AttributionMethod) -> Result<(), ContractError> {
    text("method.id", &method.id, 1, MAX_METHOD_ID_LEN)?;
    if let Some(params) = &method.params {
        text("method.params", params, 0, MAX_METHOD_PARAMS_LEN)?;
    }
    Ok(())
}

fn price(api: &dyn Api, price: Price) -> Result<Price, ContractError> {
    if price.amount.is_zero() {
        return Err(ContractError::ZeroPrice);
    }
    let asset = match price.asset {
        AssetInfo::Native { denom } => {
            if !is_valid_denom(&denom) {
                return Err(ContractError::InvalidDenom { denom });
            }
            AssetInfo::Native { denom }
        }
        // Only the shape is checked here: which cw20 tokens are accepted for payment is the
        // payout contract's list, enforced when an inference is requested.
        AssetInfo::Cw20 { address: token } => AssetInfo::Cw20 {
            address: address(api, &token)?.into_string(),
        },
    };
    Ok(Price {
        asset,
        amount: price.amount,
    })
}

fn split(config: &Config, split: &FeeSplit) -> Result<(), ContractError> {
    split.validate()?;
    if split.contributors_bps < config.min_contributors_bps {
        return Err(ContractError::ContributorsShareTooLow {
            share: split.contributors_bps,
            min: config.min_contributors_bps,
        });
    }
    if split.protocol_bps < config.min_protocol_bps {
        return Err(ContractError::ProtocolShareTooLow {
            share: split.protocol_bps,
            min: config.min_protocol_bps,
        });
    }
    Ok(())
}

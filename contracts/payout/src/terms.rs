//! The rules of a request, fixed when it is paid.
//!
//! At payment the contract copies from the model registry everything that decides how the
//! request is attested and settled: the attestor set and quorum, the attribution method and its
//! parameters hash, the weights hash, the lineage, the price, the split and the developer, and
//! from its own configuration the packet size limit and the challenge window. It also reads each
//! lineage version's size from the datanet contract (frozen versions never change). Commits,
//! finalization and refunds read only this copy ([`TERMS_BY_HASH`], shared by every request
//! paid under the same terms), never the registry's current state.
//!
//! Why: the payer agreed to these rules, and the attestors did their work under them. If the
//! registry were read again later, the model owner could, after the fact, add an attestor of
//! their own and let it vote, remove an honest one so its commit is refused or it goes unpaid,
//! or raise the quorum so that a challenge clears a packet that had already been agreed. With
//! the copy, `SetAttestors`, `DeprecateVersion` and `UpdateConfig` act on requests paid after
//! them only.
//!
//! The copy is checked against the payout contract's own bounds before the payment is taken,
//! so every later loop over it is bounded whatever the registry allows: at most
//! [`MAX_ATTESTORS`] attestors with `1 <= quorum <= attestors`, at most [`MAX_DATANET_ROOTS`]
//! lineage versions, each one frozen, non-empty and with the root the registry recorded.

use cosmwasm_std::{to_json_vec, Deps, Storage};
use tributary_types::hash::sha256;
use tributary_types::packet::MAX_DATANET_ROOTS;
use tributary_types::payout::{LineageVersion, RequestTerms};

use crate::error::ContractError;
use crate::querier;
use crate::state::{Config, REQUEST_TERMS, TERMS, TERMS_BY_HASH};

/// Most attestors a request's terms may name (the registry's own limit).
pub const MAX_ATTESTORS: usize = 16;

/// The terms of a new request on `model_id` version `version`; refuses a deprecated version and
/// one whose rules the contract could not settle.
pub fn snapshot(
    deps: Deps,
    config: &Config,
    model_id: u64,
    version: u32,
) -> Result<RequestTerms, ContractError> {
    let model = querier::model_version(deps, config, model_id, version)?;
    if model.deprecated {
        return Err(ContractError::ModelDeprecated { model_id, version });
    }
    let attestors = model.attestors.len();
    if attestors == 0
        || attestors > MAX_ATTESTORS
        || model.quorum == 0
        || model.quorum as usize > attestors
    {
        return Err(ContractError::UnusableAttestorSet {
            model_id,
            version,
            attestors,
            quorum: model.quorum,
        });
    }
    if model.lineage.is_empty() || model.lineage.len() > MAX_DATANET_ROOTS {
        return Err(ContractError::UnusableLineage {
            model_id,
            version,
            count: model.lineage.len(),
            max: MAX_DATANET_ROOTS,
        });
    }
    model.split.validate()?;
    let mut lineage = Vec::with_capacity(model.lineage.len());
    for root in model.lineage {
        let frozen = querier::datanet_version(deps, config, root.datanet_id, root.version);
        match frozen {
            Some(frozen) if frozen.root == root.root && frozen.count > 0 => {
                lineage.push(LineageVersion {
                    root,
                    contributions: frozen.count,
                })
            }
            _ => {
                return Err(ContractError::LineageVersionUnavailable {
                    datanet_id: root.datanet_id,
                    version: root.version,
                })
            }
        }
    }
    Ok(RequestTerms {
        developer: model.developer,
        attestors: model.attestors,
        quorum: model.quorum,
        method_id: model.method.id,
        params_hash: model.method.params_hash,
        weights_hash: model.weights_hash,
        lineage,
        price: model.price,
        split: model.split,
        max_entries: config.max_entries,
        challenge_window_seconds: config.challenge_window_seconds,
    })
}

/// Records that request `id` was paid under `terms`. Terms are stored once per distinct value
/// and each request keeps only their hash: every request on a model version usually shares one
/// copy, where a copy per request cost each payment several hundred bytes of writes.
pub fn save(storage: &mut dyn Storage, id: u64, terms: &RequestTerms) -> Result<(), ContractError> {
    let hash = sha256(&to_json_vec(terms)?);
    if !TERMS_BY_HASH.has(storage, &hash) {
        TERMS_BY_HASH.save(storage, &hash, terms)?;
    }
    REQUEST_TERMS.save(storage, id, &hash.to_vec())?;
    Ok(())
}

/// The terms request `id` was paid under.
pub fn load(deps: Deps, id: u64) -> Result<RequestTerms, ContractError> {
    if let Some(hash) = REQUEST_TERMS.may_load(deps.storage, id)? {
        return Ok(TERMS_BY_HASH.load(deps.storage, &hash)?);
    }
    TERMS
        .may_load(deps.storage, id)?
        .ok_or(ContractError::UnknownRequest { id })
}

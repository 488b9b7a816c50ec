//! Attribution commits: each packet is first validated against the request, the model version and
//! the datanets without writing anything, then applied. The IBC path relies on that split to
//! acknowledge a bad packet with an error while leaving the state untouched.

use std::collections::BTreeMap;

use cosmwasm_std::{
    Addr, Deps, DepsMut, Env, Event, HexBinary, MessageInfo, Order, Response, StdError, Storage,
};
use tributary_types::datanet::ContributionStatus;
use tributary_types::hash::Hash32;
use tributary_types::payout::{InferenceRequest, RequestStatus, RequestTerms};
use tributary_types::AttributionPacket;

use crate::bond;
use crate::error::ContractError;
use crate::escrow::load_open_request;
use crate::querier;
use crate::state::{
    Config, CHALLENGES, COMMITS, COMMITTERS, CONFIG, PACKETS, PACKET_CONTRIBUTORS, REQUESTS,
    VERIFICATION, VOTES,
};
use crate::terms;
use crate::time::later;

/// Most packets one `CommitAttribution` may carry.
pub const MAX_PACKETS_PER_COMMIT: usize = 64;

/// A validated commit, ready to be written by [`apply_commit`].
#[derive(Debug, Clone, PartialEq)]
pub enum Commit {
    /// The attestor already committed this very packet; nothing changes.
    Duplicate {
        request: InferenceRequest,
        attestor: Addr,
        packet_hash: Hash32,
        votes: u32,
    },
    /// A first commit by this attestor for the request.
    New {
        /// The request as it stands after this commit.
        request: InferenceRequest,
        attestor: Addr,
        packet_hash: Hash32,
        /// Votes for `packet_hash` including this one.
        votes: u32,
        /// The packet and its entries' contributors, when no attestor committed its hash before.
        first_of_its_hash: Option<Box<(AttributionPacket, Vec<Addr>)>>,
    },
}

/// An attestor commits a batch of packets; the whole batch fails if any packet is invalid.
pub fn commit_attribution(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    packets: Vec<AttributionPacket>,
) -> Result<Response, ContractError> {
    if packets.is_empty() {
        return Err(ContractError::EmptyBatch);
    }
    if packets.len() > MAX_PACKETS_PER_COMMIT {
        return Err(ContractError::BatchTooLarge {
            count: packets.len(),
            max: MAX_PACKETS_PER_COMMIT,
        });
    }
    let config = CONFIG.load(deps.storage)?;
    let mut response = Response::new()
        .add_attribute("action", "commit_attribution")
        .add_attribute("attestor", info.sender.as_str())
        .add_attribute("packets", packets.len().to_string());
    for packet in packets {
        // Validated one at a time so a packet repeated within the batch reads as a duplicate.
        let commit = validate_commit(deps.as_ref(), &env, &config, &info.sender, packet)?;
        response = response.add_event(apply_commit(deps.storage, &commit)?);
    }
    Ok(response)
}

/// Checks a packet committed by `attestor` and works out what it changes, reading only.
pub fn validate_commit(
    deps: Deps,
    env: &Env,
    config: &Config,
    attestor: &Addr,
    packet: AttributionPacket,
) -> Result<Commit, ContractError> {
    let id = packet.request_id;
    let mut request = load_open_request(deps.storage, id)?;
    // A challenged request is settled by its committee: no commit before the resolution may
    // change what the committee judges, and none after it may undo the result.
    if request.status == RequestStatus::Challenged || CHALLENGES.has(deps.storage, id) {
        return Err(ContractError::RequestChallenged { id });
    }
    if env.block.time >= request.expires_at {
        return Err(ContractError::RequestExpired { id });
    }
    // The request's own terms, never the registry's current state (see `crate::terms`).
    let terms = terms::load(deps, id)?;
    packet.check_shape(terms.max_entries)?;
    if !terms.attestors.contains(attestor) {
        return Err(ContractError::UnauthorizedAttestor {
            attestor: attestor.clone(),
            model_id: request.model_id,
            version: request.model_version,
        });
    }
    // An attestor's bond is what a challenge that proves its packet wrong takes from.
    let min_bond = VERIFICATION.load(deps.storage)?.min_attestor_bond;
    bond::require_active(deps.storage, attestor, min_bond, "attest")?;
    let packet_hash = packet.packet_hash()?;
    if let Some(previous) = COMMITS.may_load(deps.storage, (id, attestor))? {
        if previous != packet_hash {
            return Err(ContractError::ConflictingCommit {
                request_id: id,
                attestor: attestor.clone(),
            });
        }
        let votes = VOTES
            .may_load(deps.storage, (id, packet_hash.as_slice()))?
            .unwrap_or_default();
        return Ok(Commit::Duplicate {
            request,
            attestor: attestor.clone(),
            packet_hash,
            votes,
        });
    }
    check_model(&request, &terms, &packet)?;
    let contributors = check_lineage(deps, config, &terms, &packet)?;

    let votes = VOTES
        .may_load(deps.storage, (id, packet_hash.as_slice()))?
        .unwrap_or_default()
        .checked_add(1)
        .ok_or_else(|| StdError::generic_err("vote count overflow"))?;
    let first_of_its_hash = !PACKETS.has(deps.storage, (id, packet_hash.as_slice()));
    if first_of_its_hash {
        request.distinct_packets = request
            .distinct_packets
            .checked_add(1)
            .ok_or_else(|| StdError::generic_err("packet count overflow"))?;
    }
    let at_quorum = hashes_at_quorum(deps.storage, id, &packet_hash, votes, terms.quorum)?;
    match at_quorum.as_slice() {
        [agreed] => {
            // The window opens when a packet first holds quorum alone; later votes do not move it.
            if request.agreed_packet.as_ref().map(HexBinary::as_slice) != Some(agreed.as_slice()) {
                request.agreed_packet = Some(HexBinary::from(agreed.as_slice()));
                request.finalizable_at =
                    Some(later(env.block.time, terms.challenge_window_seconds)?);
            }
        }
        // No packet at quorum yet, or two (ambiguous): nothing can be finalized.
        _ => {
            request.agreed_packet = None;
            request.finalizable_at = None;
        }
    }
    request.status = if request.distinct_packets > 1 {
        RequestStatus::Disputed
    } else if request.agreed_packet.is_some() {
        RequestStatus::Attested
    } else {
        RequestStatus::Open
    };
    Ok(Commit::New {
        request,
        attestor: attestor.clone(),
        packet_hash,
        votes,
        first_of_its_hash: first_of_its_hash.then(|| Box::new((packet, contributors))),
    })
}

/// Writes a validated commit and returns its event.
pub fn apply_commit(storage: &mut dyn Storage, commit: &Commit) -> Result<Event, ContractError> {
    let event = Event::new("commit_attribution");
    Ok(match commit {
        Commit::Duplicate {
            request,
            attestor,
            packet_hash,
            votes,
        } => commit_event(event, request, attestor, packet_hash, *votes)
            .add_attribute("duplicate", "true"),
        Commit::New {
            request,
            attestor,
            packet_hash,
            votes,
            first_of_its_hash,
        } => {
            let id = request.id;
            let hash = packet_hash.as_slice();
            COMMITS.save(storage, (id, attestor), &hash.to_vec())?;
            COMMITTERS.save(storage, (id, hash, attestor), &())?;
            VOTES.save(storage, (id, hash), votes)?;
            if let Some(first) = first_of_its_hash {
                let (packet, contributors) = first.as_ref();
                PACKETS.save(storage, (id, hash), packet)?;
                PACKET_CONTRIBUTORS.save(storage, (id, hash), contributors)?;
            }
            REQUESTS.save(storage, id, request)?;
            commit_event(event, request, attestor, packet_hash, *votes)
                .add_attribute("duplicate", "false")
        }
    })
}

fn commit_event(
    event: Event,
    request: &InferenceRequest,
    attestor: &Addr,
    packet_hash: &Hash32,
    votes: u32,
) -> Event {
    event
        .add_attribute("action", "commit_attribution")
        .add_attribute("request_id", request.id.to_string())
        .add_attribute("attestor", attestor.as_str())
        .add_attribute(
            "packet_hash",
            HexBinary::from(packet_hash.as_slice()).to_hex(),
        )
        .add_attribute("votes", votes.to_string())
        .add_attribute("status", request.status.as_str())
}

/// The packet hashes of request `id` holding quorum once `packet_hash` has `votes` votes.
fn hashes_at_quorum(
    storage: &dyn Storage,
    id: u64,
    packet_hash: &Hash32,
    votes: u32,
    quorum: u32,
) -> Result<Vec<Vec<u8>>, ContractError> {
    // Terms never hold a zero quorum; one commit is the least it takes in any case.
    let quorum = quorum.max(1);
    // One entry per distinct hash, so this is bounded by the version's attestors.
    let mut at_quorum = Vec::new();
    for item in VOTES
        .prefix(id)
        .range(storage, None, None, Order::Ascending)
    {
        let (hash, count) = item?;
        if hash.as_slice() != packet_hash.as_slice() && count >= quorum {
            at_quorum.push(hash);
        }
    }
    if votes >= quorum {
        at_quorum.push(packet_hash.to_vec());
    }
    Ok(at_quorum)
}

/// The packet describes the request's model version exactly as it was registered at payment.
pub(crate) fn check_model(
    request: &InferenceRequest,
    terms: &RequestTerms,
    packet: &AttributionPacket,
) -> Result<(), ContractError> {
    if packet.model_id != request.model_id || packet.model_version != request.model_version {
        return Err(ContractError::WrongModel {
            request_id: request.id,
            expected_model: request.model_id,
            expected_version: request.model_version,
            model_id: packet.model_id,
            version: packet.model_version,
        });
    }
    if packet.weights_hash != terms.weights_hash {
        return Err(ContractError::WeightsHashMismatch {
            request_id: request.id,
            expected: terms.weights_hash.to_hex(),
            got: packet.weights_hash.to_hex(),
        });
    }
    if packet.method != terms.method_id || packet.params_hash != terms.params_hash {
        return Err(ContractError::MethodMismatch {
            request_id: request.id,
            expected: terms.method_id.clone(),
            method: packet.method.clone(),
        });
    }
    Ok(())
}

/// Every root is in the request's lineage and every entry is an accepted contribution frozen in
/// one of those roots; returns each entry's contributor.
pub(crate) fn check_lineage(
    deps: Deps,
    config: &Config,
    terms: &RequestTerms,
    packet: &AttributionPacket,
) -> Result<Vec<Addr>, ContractError> {
    // Datanet id -> leaves covered by the largest listed version of it.
    let mut leaves: BTreeMap<u64, u64> = BTreeMap::new();
    for root in &packet.datanet_roots {
        let frozen = terms
            .lineage
            .iter()
            .find(|entry| entry.root == *root)
            .ok_or(ContractError::RootNotInLineage {
                datanet_id: root.datanet_id,
                version: root.version,
            })?;
        let count = leaves.entry(root.datanet_id).or_default();
        *count = (*count).max(frozen.contributions);
    }
    let mut contributors = Vec::with_capacity(packet.entries.len());
    for entry in &packet.entries {
        let contribution_id = entry.contribution_id;
        match admitted_contributor(deps, config, &leaves, contribution_id) {
            Some(contributor) => contributors.push(contributor),
            None => return Err(ContractError::ContributionNotInLineage { contribution_id }),
        }
    }
    Ok(contributors)
}

/// The contributor of `contribution_id` when it is accepted and frozen within `leaves` (datanet
/// id -> leaves covered by the lineage's largest version of it); `None` otherwise.
pub(crate) fn admitted_contributor(
    deps: Deps,
    config: &Config,
    leaves: &BTreeMap<u64, u64>,
    contribution_id: u64,
) -> Option<Addr> {
    querier::contribution(deps, config, contribution_id)
        .filter(|c| {
            c.status == ContributionStatus::Accepted
                && matches!(
                    (c.leaf_index, leaves.get(&c.datanet_id)),
                    (Some(leaf), Some(count)) if leaf < *count
                )
        })
        .map(|c| c.contributor)
}

//! One function per execute message.
//!
//! # Contributions: commit, then reveal
//!
//! Contributors upload their bytes to a public content store, so a contribution that named its
//! content hash in one message could be taken by anyone who saw the bytes first and registered
//! the hash before the contributor. A contribution is therefore made in two steps:
//!
//! 1. `Contribute` carries `contribution_commitment(sender, content_hash)` and gets the
//!    contribution id, which is its place in commitment order. The commitment binds the
//!    sender, so copying it gains nothing, and it names nothing about the content.
//! 2. `RevealContribution`, from the same sender in a later block (in the commitment's own
//!    block someone who saw the hash could still commit before it), names the content hash and
//!    the uri; the contract recomputes the commitment and records the contribution.
//!
//! Who owns a content hash in a datanet is decided by commitment order, not reveal order: a
//! reveal of a hash that an earlier commitment owns is refused (`DuplicateContent`); a reveal
//! of a hash that a later commitment holds takes it over and marks the later one
//! `Superseded`. Someone who learns the hash from a reveal, or the bytes from the store after
//! a commitment, can only commit after the contributor did, and so never wins. A rejected or
//! withdrawn contribution frees its hash, so rejecting a squatter's copy never blocks the
//! owner. An accepted contribution that is superseded keeps its leaf (versions are immutable)
//! and its usage is still recorded and provable.
//!
//! Unrevealed commitments are bounded: each may be revealed for `COMMITMENT_TTL_SECONDS`, a
//! contributor holds at most `MAX_OPEN_COMMITMENTS` that have not expired, and a contributor's
//! expired commitments are deleted when they commit again (or withdraw them). Contributors
//! should upload their bytes after the reveal, when the chain already records who owns them.
//!
//! # The usage recorder
//!
//! The payout contract holds inference fees in escrow; its `Finalize` sends `RecordUsage` here,
//! and if that message failed, the finalization would revert and the escrow of an attested
//! request could neither be paid out nor refunded. So no configuration change may make the
//! datanet refuse a payout contract that has ever been its recorder:
//!
//! - the recorder cannot be unset (`UpdateConfig` with `usage_recorder: None` keeps it);
//! - a new recorder must be a contract, so a typo cannot point it at an account;
//! - the recorder it replaces stays authorized when it is a contract (at most
//!   `MAX_RETIRED_USAGE_RECORDERS` of them), because it may still hold escrow. An account set
//!   at instantiation, before any payout contract exists, holds none and is simply replaced.
//!
//! Keeping a former payout contract authorized costs little: it records usage only when its
//! own code finalizes a paid, attested request, and usage counts and earnings here are
//! statistics, not balances. Refusing it would cost escrowed funds. `RecordUsage` from any
//! other sender is refused: no admin action can turn a recorder into one, and a sender that
//! never was one must not move the statistics.

use cosmwasm_std::{
    Addr, Api, Binary, DepsMut, Env, HexBinary, MessageInfo, Order, OverflowError,
    OverflowOperation, Response, StdResult, Storage, Timestamp, Uint64,
};
use cw_storage_plus::Item;
pub use tributary_types::datanet::MAX_USAGE_RECORDS;
use tributary_types::datanet::{
    contribution_commitment, Commitment, Contribution, ContributionStatus, CurationPolicy, Datanet,
    DatanetVersion, ReviewDecision, UsageRecord, COMMITMENT_TTL_SECONDS, MAX_ADDRESS_LIST_LEN,
    MAX_CONTRIBUTION_BYTES, MAX_OPEN_COMMITMENTS, MAX_RETIRED_USAGE_RECORDERS,
};
use tributary_types::hash::{hash32, parse_content_hash, to_hex};
use tributary_types::merkle::{contribution_leaf, Frontier};
use tributary_types::validate;

use crate::error::ContractError;
use crate::state::{
    Config, Stats, ALLOWED, COMMITMENTS, CONFIG, CONTRIBUTIONS, CONTRIBUTION_SEQ, CURATORS,
    DATANETS, DATANET_SEQ, DATANET_TAGS, EARNED, HASHES, LEAVES, LIVE_HASHES, NODES,
    OPEN_COMMITMENTS, STATS, VERSIONS,
};

/// Most domain tags a datanet may carry.
pub const MAX_DOMAIN_TAGS: usize = 8;
/// Most curators a datanet may have; the `Curators` query returns them all in one answer.
pub const MAX_CURATORS: usize = 32;
/// Longest review reason or snapshot note.
pub const MAX_REASON_LEN: usize = 512;

/// The fields of a `CreateDatanet` message.
pub struct NewDatanet {
    pub name: String,
    pub description: String,
    pub domain_tags: Vec<String>,
    pub license: String,
    pub policy: CurationPolicy,
    pub curators: Vec<String>,
    pub max_contribution_bytes: u64,
}

/// The optional fields of an `UpdateDatanet` message.
pub struct DatanetChanges {
    pub description: Option<String>,
    pub domain_tags: Option<Vec<String>>,
    pub license: Option<String>,
    pub policy: Option<CurationPolicy>,
    pub max_contribution_bytes: Option<u64>,
}

/// The fields of a `Contribute` message.
pub struct NewCommitment {
    pub datanet_id: u64,
    pub commitment: HexBinary,
    pub size_bytes: u64,
    pub media_type: String,
    pub metadata: Option<String>,
}

/// Validates a user-supplied address, naming it in the error.
pub fn validate_addr(api: &dyn Api, address: &str) -> Result<Addr, ContractError> {
    api.addr_validate(address)
        .map_err(|_| ContractError::InvalidAddress {
            address: address.to_string(),
        })
}

/// Loads a datanet or fails with `DatanetNotFound`.
pub fn load_datanet(storage: &dyn Storage, datanet_id: u64) -> Result<Datanet, ContractError> {
    DATANETS
        .may_load(storage, datanet_id)?
        .ok_or(ContractError::DatanetNotFound { datanet_id })
}

/// Loads a contribution or fails with `ContributionNotFound`.
pub fn load_contribution(
    storage: &dyn Storage,
    contribution_id: u64,
) -> Result<Contribution, ContractError> {
    CONTRIBUTIONS
        .may_load(storage, contribution_id)?
        .ok_or(ContractError::ContributionNotFound { contribution_id })
}

fn ensure_owner(
    datanet: &Datanet,
    sender: &Addr,
    action: &'static str,
) -> Result<(), ContractError> {
    if datanet.owner == sender {
        Ok(())
    } else {
        Err(ContractError::Unauthorized {
            sender: sender.clone(),
            action,
        })
    }
}

fn ensure_owner_or_curator(
    storage: &dyn Storage,
    datanet: &Datanet,
    sender: &Addr,
    action: &'static str,
) -> Result<(), ContractError> {
    if datanet.owner == sender || CURATORS.has(storage, (datanet.id, sender)) {
        Ok(())
    } else {
        Err(ContractError::Unauthorized {
            sender: sender.clone(),
            action,
        })
    }
}

fn checked_add(a: u64, b: u64) -> Result<u64, ContractError> {
    Ok(Uint64::new(a).checked_add(Uint64::new(b))?.u64())
}

fn next_id(storage: &mut dyn Storage, seq: &Item<u64>) -> Result<u64, ContractError> {
    let id = checked_add(seq.load(storage)?, 1)?;
    seq.save(storage, &id)?;
    Ok(id)
}

fn validate_tags(tags: &[String]) -> Result<(), ContractError> {
    if tags.is_empty() || tags.len() > MAX_DOMAIN_TAGS {
        return Err(ContractError::TagCount {
            count: tags.len(),
            min: 1,
            max: MAX_DOMAIN_TAGS,
        });
    }
    for (i, tag) in tags.iter().enumerate() {
        validate::domain_tag(tag)?;
        if tags[..i].contains(tag) {
            return Err(ContractError::DuplicateTag { tag: tag.clone() });
        }
    }
    Ok(())
}

fn validate_max_bytes(max_contribution_bytes: u64) -> Result<(), ContractError> {
    if max_contribution_bytes == 0 {
        return Err(ContractError::ZeroMaxContributionBytes);
    }
    if max_contribution_bytes > MAX_CONTRIBUTION_BYTES {
        return Err(ContractError::MaxContributionBytesTooLarge {
            max_contribution_bytes,
            limit: MAX_CONTRIBUTION_BYTES,
        });
    }
    Ok(())
}

fn validate_reason(reason: &Option<String>) -> Result<(), ContractError> {
    if let Some(reason) = reason {
        validate::text("reason", reason, 1, MAX_REASON_LEN)?;
    }
    Ok(())
}

/// Validates one address list of a message, `field` naming it; at most [`MAX_ADDRESS_LIST_LEN`].
fn validate_addrs(
    api: &dyn Api,
    field: &'static str,
    addresses: &[String],
) -> Result<Vec<Addr>, ContractError> {
    if addresses.len() > MAX_ADDRESS_LIST_LEN {
        return Err(ContractError::TooManyAddresses {
            field,
            count: addresses.len(),
            max: MAX_ADDRESS_LIST_LEN,
        });
    }
    addresses.iter().map(|a| validate_addr(api, a)).collect()
}

fn joined(addresses: &[Addr]) -> String {
    addresses
        .iter()
        .map(Addr::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

fn curator_count(storage: &dyn Storage, datanet_id: u64) -> usize {
    CURATORS
        .prefix(datanet_id)
        .keys_raw(storage, None, None, Order::Ascending)
        .count()
}

/// Adds an accepted contribution to its datanet's tree and counts it.
fn accept(
    storage: &mut dyn Storage,
    datanet: &mut Datanet,
    contribution: &mut Contribution,
) -> Result<(), ContractError> {
    let content_hash = parse_content_hash(&contribution.content_hash)?;
    let leaf = contribution_leaf(
        contribution.id,
        &content_hash,
        contribution.contributor.as_str(),
    );
    let leaf_index = datanet.frontier.size;
    for node in datanet.frontier.append(leaf) {
        NODES.save(
            storage,
            (datanet.id, node.height, node.index),
            &Binary::from(node.hash.as_slice()),
        )?;
    }
    LEAVES.save(storage, (datanet.id, leaf_index), &contribution.id)?;
    contribution.status = ContributionStatus::Accepted;
    contribution.leaf_index = Some(leaf_index);
    datanet.accepted_count = checked_add(datanet.accepted_count, 1)?;
    datanet.accepted_bytes = checked_add(datanet.accepted_bytes, contribution.size_bytes)?;
    update_stats(storage, &contribution.contributor, |s| s.accepted += 1)?;
    Ok(())
}

fn update_stats(
    storage: &mut dyn Storage,
    contributor: &Addr,
    change: impl FnOnce(&mut Stats),
) -> Result<(), ContractError> {
    let mut stats = STATS.may_load(storage, contributor)?.unwrap_or_default();
    change(&mut stats);
    STATS.save(storage, contributor, &stats)?;
    Ok(())
}

/// Creates a datanet owned by the sender.
pub fn create_datanet(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: NewDatanet,
) -> Result<Response, ContractError> {
    validate::text("name", &msg.name, 1, 64)?;
    validate::text("description", &msg.description, 0, 2048)?;
    validate_tags(&msg.domain_tags)?;
    validate::text("license", &msg.license, 1, 64)?;
    validate_max_bytes(msg.max_contribution_bytes)?;
    let curators = validate_addrs(deps.api, "curators", &msg.curators)?;
    let mut distinct = curators.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() > MAX_CURATORS {
        return Err(ContractError::TooManyCurators {
            count: distinct.len(),
            max: MAX_CURATORS,
        });
    }

    let id = next_id(deps.storage, &DATANET_SEQ)?;
    let datanet = Datanet {
        id,
        owner: info.sender.clone(),
        name: msg.name,
        description: msg.description,
        domain_tags: msg.domain_tags,
        license: msg.license,
        policy: msg.policy,
        max_contribution_bytes: msg.max_contribution_bytes,
        created_at: env.block.time,
        contribution_count: 0,
        accepted_count: 0,
        accepted_bytes: 0,
        latest_version: 0,
        frontier: Frontier::default(),
    };
    DATANETS.save(deps.storage, id, &datanet)?;
    for tag in &datanet.domain_tags {
        DATANET_TAGS.save(deps.storage, (tag, id), &())?;
    }
    for curator in &distinct {
        CURATORS.save(deps.storage, (id, curator), &())?;
    }
    Ok(Response::new()
        .add_attribute("action", "create_datanet")
        .add_attribute("datanet_id", id.to_string())
        .add_attribute("owner", info.sender)
        .add_attribute("curators", joined(&distinct)))
}

/// Owner only: changes the descriptive fields, policy or size cap.
pub fn update_datanet(
    deps: DepsMut,
    info: MessageInfo,
    datanet_id: u64,
    changes: DatanetChanges,
) -> Result<Response, ContractError> {
    let mut datanet = load_datanet(deps.storage, datanet_id)?;
    ensure_owner(&datanet, &info.sender, "update this datanet")?;
    if let Some(description) = changes.description {
        validate::text("description", &description, 0, 2048)?;
        datanet.description = description;
    }
    if let Some(license) = changes.license {
        validate::text("license", &license, 1, 64)?;
        datanet.license = license;
    }
    if let Some(policy) = changes.policy {
        datanet.policy = policy;
    }
    if let Some(max) = changes.max_contribution_bytes {
        validate_max_bytes(max)?;
        datanet.max_contribution_bytes = max;
    }
    if let Some(tags) = changes.domain_tags {
        validate_tags(&tags)?;
        for old in &datanet.domain_tags {
            DATANET_TAGS.remove(deps.storage, (old, datanet_id));
        }
        for new in &tags {
            DATANET_TAGS.save(deps.storage, (new, datanet_id), &())?;
        }
        datanet.domain_tags = tags;
    }
    DATANETS.save(deps.storage, datanet_id, &datanet)?;
    Ok(Response::new()
        .add_attribute("action", "update_datanet")
        .add_attribute("datanet_id", datanet_id.to_string()))
}

/// Owner only: adds curators (adding one twice is harmless).
pub fn add_curators(
    deps: DepsMut,
    info: MessageInfo,
    datanet_id: u64,
    curators: Vec<String>,
) -> Result<Response, ContractError> {
    let datanet = load_datanet(deps.storage, datanet_id)?;
    ensure_owner(&datanet, &info.sender, "add curators")?;
    let curators = validate_addrs(deps.api, "curators", &curators)?;
    for curator in &curators {
        CURATORS.save(deps.storage, (datanet_id, curator), &())?;
    }
    let count = curator_count(deps.storage, datanet_id);
    if count > MAX_CURATORS {
        // Returning the error reverts the saves above with the rest of the transaction.
        return Err(ContractError::TooManyCurators {
            count,
            max: MAX_CURATORS,
        });
    }
    Ok(Response::new()
        .add_attribute("action", "add_curators")
        .add_attribute("datanet_id", datanet_id.to_string())
        .add_attribute("curators", joined(&curators)))
}

/// Owner only: removes curators (removing a non-curator is harmless).
pub fn remove_curators(
    deps: DepsMut,
    info: MessageInfo,
    datanet_id: u64,
    curators: Vec<String>,
) -> Result<Response, ContractError> {
    let datanet = load_datanet(deps.storage, datanet_id)?;
    ensure_owner(&datanet, &info.sender, "remove curators")?;
    let curators = validate_addrs(deps.api, "curators", &curators)?;
    for curator in &curators {
        CURATORS.remove(deps.storage, (datanet_id, curator));
    }
    Ok(Response::new()
        .add_attribute("action", "remove_curators")
        .add_attribute("datanet_id", datanet_id.to_string())
        .add_attribute("curators", joined(&curators)))
}

/// Owner only: admits and removes contributors of an allow-list datanet.
pub fn update_allow_list(
    deps: DepsMut,
    info: MessageInfo,
    datanet_id: u64,
    add: Vec<String>,
    remove: Vec<String>,
) -> Result<Response, ContractError> {
    let datanet = load_datanet(deps.storage, datanet_id)?;
    ensure_owner(&datanet, &info.sender, "update the allow list")?;
    let add = validate_addrs(deps.api, "add", &add)?;
    let remove = validate_addrs(deps.api, "remove", &remove)?;
    for addr in &add {
        ALLOWED.save(deps.storage, (datanet_id, addr), &())?;
    }
    for addr in &remove {
        ALLOWED.remove(deps.storage, (datanet_id, addr));
    }
    Ok(Response::new()
        .add_attribute("action", "update_allow_list")
        .add_attribute("datanet_id", datanet_id.to_string())
        .add_attribute("added", joined(&add))
        .add_attribute("removed", joined(&remove)))
}

/// Owner only: hands the datanet to another owner.
pub fn transfer_ownership(
    deps: DepsMut,
    info: MessageInfo,
    datanet_id: u64,
    new_owner: String,
) -> Result<Response, ContractError> {
    let mut datanet = load_datanet(deps.storage, datanet_id)?;
    ensure_owner(&datanet, &info.sender, "transfer this datanet")?;
    datanet.owner = validate_addr(deps.api, &new_owner)?;
    DATANETS.save(deps.storage, datanet_id, &datanet)?;
    Ok(Response::new()
        .add_attribute("action", "transfer_ownership")
        .add_attribute("datanet_id", datanet_id.to_string())
        .add_attribute("previous_owner", info.sender)
        .add_attribute("new_owner", datanet.owner))
}

fn ensure_allowed(
    storage: &dyn Storage,
    datanet: &Datanet,
    contributor: &Addr,
) -> Result<(), ContractError> {
    if datanet.policy == CurationPolicy::AllowList
        && !ALLOWED.has(storage, (datanet.id, contributor))
    {
        return Err(ContractError::NotAllowed {
            datanet_id: datanet.id,
            contributor: contributor.clone(),
        });
    }
    Ok(())
}

/// Forgets the contributor's expired commitments and counts the others.
fn open_commitments(
    storage: &mut dyn Storage,
    contributor: &Addr,
    now: Timestamp,
) -> Result<usize, ContractError> {
    // At most MAX_OPEN_COMMITMENTS were open after the contributor's last commitment, so this
    // scan is bounded.
    let open = OPEN_COMMITMENTS
        .prefix(contributor)
        .range(storage, None, None, Order::Ascending)
        .collect::<StdResult<Vec<_>>>()?;
    let mut count = 0;
    for (id, expires_at) in open {
        if now >= expires_at {
            COMMITMENTS.remove(storage, id);
            OPEN_COMMITMENTS.remove(storage, (contributor, id));
        } else {
            count += 1;
        }
    }
    Ok(count)
}

fn forget_commitment(storage: &mut dyn Storage, commitment: &Commitment) {
    COMMITMENTS.remove(storage, commitment.contribution_id);
    OPEN_COMMITMENTS.remove(
        storage,
        (&commitment.contributor, commitment.contribution_id),
    );
}

/// Frees the content hash a contribution held, if it held it.
fn release_hash(storage: &mut dyn Storage, contribution: &Contribution) -> StdResult<()> {
    let key = (contribution.datanet_id, contribution.content_hash.as_str());
    if HASHES.may_load(storage, key)? == Some(contribution.id) {
        HASHES.remove(storage, key);
    }
    LIVE_HASHES.remove(storage, (&contribution.content_hash, contribution.id));
    Ok(())
}

/// Commits to a contribution; its content is revealed later by `reveal_contribution`.
pub fn contribute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: NewCommitment,
) -> Result<Response, ContractError> {
    let datanet = load_datanet(deps.storage, msg.datanet_id)?;
    ensure_allowed(deps.storage, &datanet, &info.sender)?;
    hash32(&msg.commitment)?;
    if msg.size_bytes == 0 {
        return Err(ContractError::EmptyContribution);
    }
    if msg.size_bytes > datanet.max_contribution_bytes {
        return Err(ContractError::Oversize {
            size: msg.size_bytes,
            max: datanet.max_contribution_bytes,
        });
    }
    validate::text("media_type", &msg.media_type, 1, 128)?;
    if let Some(metadata) = &msg.metadata {
        validate::text("metadata", metadata, 0, 2048)?;
    }
    if open_commitments(deps.storage, &info.sender, env.block.time)? >= MAX_OPEN_COMMITMENTS {
        return Err(ContractError::TooManyOpenCommitments {
            contributor: info.sender,
            max: MAX_OPEN_COMMITMENTS,
        });
    }

    let id = next_id(deps.storage, &CONTRIBUTION_SEQ)?;
    let expires_at = env.block.time.plus_seconds(COMMITMENT_TTL_SECONDS);
    let commitment = Commitment {
        contribution_id: id,
        datanet_id: datanet.id,
        contributor: info.sender.clone(),
        commitment: msg.commitment,
        size_bytes: msg.size_bytes,
        media_type: msg.media_type,
        metadata: msg.metadata,
        committed_at: env.block.time,
        committed_height: env.block.height,
        expires_at,
    };
    COMMITMENTS.save(deps.storage, id, &commitment)?;
    OPEN_COMMITMENTS.save(deps.storage, (&info.sender, id), &expires_at)?;
    Ok(Response::new()
        .add_attribute("action", "contribute")
        .add_attribute("contribution_id", id.to_string())
        .add_attribute("datanet_id", datanet.id.to_string())
        .add_attribute("commitment", commitment.commitment.to_hex())
        .add_attribute("status", "committed")
        .add_attribute("expires_at", expires_at.seconds().to_string()))
}

/// The contributor's content hash and uri for a commitment: checked against it, then recorded
/// as a contribution that owns its content hash in the datanet, unless an earlier commitment
/// owns it.
pub fn reveal_contribution(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    contribution_id: u64,
    content_hash: String,
    uri: String,
) -> Result<Response, ContractError> {
    let Some(commitment) = COMMITMENTS.may_load(deps.storage, contribution_id)? else {
        load_contribution(deps.storage, contribution_id)?;
        return Err(ContractError::AlreadyRevealed { contribution_id });
    };
    if commitment.contributor != info.sender {
        return Err(ContractError::Unauthorized {
            sender: info.sender,
            action: "reveal this contribution",
        });
    }
    // In the commitment's own block, someone who saw the hash could still commit before it.
    if env.block.height <= commitment.committed_height {
        return Err(ContractError::RevealTooEarly {
            contribution_id,
            committed_height: commitment.committed_height,
            height: env.block.height,
        });
    }
    if env.block.time >= commitment.expires_at {
        return Err(ContractError::CommitmentExpired {
            contribution_id,
            expires_at: commitment.expires_at,
        });
    }
    let hash = parse_content_hash(&content_hash)?;
    validate::uri(&uri)?;
    if contribution_commitment(info.sender.as_str(), &hash).as_slice()
        != commitment.commitment.as_slice()
    {
        return Err(ContractError::CommitmentMismatch { contribution_id });
    }
    let mut datanet = load_datanet(deps.storage, commitment.datanet_id)?;
    ensure_allowed(deps.storage, &datanet, &info.sender)?;
    let content_hash = to_hex(&hash);

    // Commitment order decides who owns the content: ids are handed out at commitment.
    let superseded = match HASHES.may_load(deps.storage, (datanet.id, &content_hash))? {
        Some(owner) if owner < contribution_id => {
            return Err(ContractError::DuplicateContent {
                datanet_id: datanet.id,
                content_hash,
                existing_id: owner,
            })
        }
        Some(later) => Some(supersede(deps.storage, later, contribution_id)?),
        None => None,
    };

    forget_commitment(deps.storage, &commitment);
    let mut contribution = Contribution {
        id: contribution_id,
        datanet_id: datanet.id,
        contributor: info.sender.clone(),
        content_hash,
        size_bytes: commitment.size_bytes,
        uri,
        media_type: commitment.media_type,
        metadata: commitment.metadata,
        status: ContributionStatus::Pending,
        submitted_at: commitment.committed_at,
        reviewed_by: None,
        reason: None,
        leaf_index: None,
        usage_count: 0,
    };
    update_stats(deps.storage, &info.sender, |s| s.contributed += 1)?;
    if datanet.policy != CurationPolicy::CuratorReview {
        accept(deps.storage, &mut datanet, &mut contribution)?;
    }
    datanet.contribution_count = checked_add(datanet.contribution_count, 1)?;
    HASHES.save(
        deps.storage,
        (datanet.id, &contribution.content_hash),
        &contribution_id,
    )?;
    LIVE_HASHES.save(
        deps.storage,
        (&contribution.content_hash, contribution_id),
        &(),
    )?;
    CONTRIBUTIONS.save(deps.storage, contribution_id, &contribution)?;
    DATANETS.save(deps.storage, datanet.id, &datanet)?;
    let mut response = Response::new()
        .add_attribute("action", "reveal_contribution")
        .add_attribute("contribution_id", contribution_id.to_string())
        .add_attribute("datanet_id", datanet.id.to_string())
        .add_attribute("content_hash", &contribution.content_hash)
        .add_attribute("status", contribution.status.as_str());
    if let Some(leaf_index) = contribution.leaf_index {
        response = response.add_attribute("leaf_index", leaf_index.to_string());
    }
    if let Some(superseded) = superseded {
        response = response.add_attribute("superseded", superseded.to_string());
    }
    Ok(response)
}

/// Marks the later contribution `id`, which holds content that the earlier commitment `by` has
/// revealed, as superseded, and frees the content for `by`. An accepted one keeps its leaf.
fn supersede(storage: &mut dyn Storage, id: u64, by: u64) -> Result<u64, ContractError> {
    let mut contribution = load_contribution(storage, id)?;
    release_hash(storage, &contribution)?;
    contribution.status = ContributionStatus::Superseded;
    contribution.reason = Some(format!(
        "superseded by contribution {by}, an earlier commitment to the same content"
    ));
    CONTRIBUTIONS.save(storage, id, &contribution)?;
    Ok(id)
}

/// The contributor takes back an unrevealed commitment or a pending contribution, freeing
/// its hash.
pub fn withdraw(
    deps: DepsMut,
    info: MessageInfo,
    contribution_id: u64,
) -> Result<Response, ContractError> {
    if let Some(commitment) = COMMITMENTS.may_load(deps.storage, contribution_id)? {
        if commitment.contributor != info.sender {
            return Err(ContractError::Unauthorized {
                sender: info.sender,
                action: "withdraw this contribution",
            });
        }
        forget_commitment(deps.storage, &commitment);
        return Ok(Response::new()
            .add_attribute("action", "withdraw")
            .add_attribute("contribution_id", contribution_id.to_string())
            .add_attribute("datanet_id", commitment.datanet_id.to_string())
            .add_attribute("status", ContributionStatus::Withdrawn.as_str()));
    }
    let mut contribution = load_contribution(deps.storage, contribution_id)?;
    if contribution.contributor != info.sender {
        return Err(ContractError::Unauthorized {
            sender: info.sender,
            action: "withdraw this contribution",
        });
    }
    if contribution.status != ContributionStatus::Pending {
        return Err(ContractError::NotPending {
            id: contribution_id,
            status: contribution.status,
        });
    }
    contribution.status = ContributionStatus::Withdrawn;
    release_hash(deps.storage, &contribution)?;
    CONTRIBUTIONS.save(deps.storage, contribution_id, &contribution)?;
    Ok(Response::new()
        .add_attribute("action", "withdraw")
        .add_attribute("contribution_id", contribution_id.to_string())
        .add_attribute("datanet_id", contribution.datanet_id.to_string())
        .add_attribute("status", contribution.status.as_str()))
}

/// A curator or the owner accepts or rejects a pending contribution.
pub fn review(
    deps: DepsMut,
    info: MessageInfo,
    contribution_id: u64,
    decision: ReviewDecision,
    reason: Option<String>,
) -> Result<Response, ContractError> {
    if COMMITMENTS.has(deps.storage, contribution_id) {
        return Err(ContractError::NotRevealed { contribution_id });
    }
    let mut contribution = load_contribution(deps.storage, contribution_id)?;
    let mut datanet = load_datanet(deps.storage, contribution.datanet_id)?;
    ensure_owner_or_curator(
        deps.storage,
        &datanet,
        &info.sender,
        "review contributions of this datanet",
    )?;
    if contribution.status != ContributionStatus::Pending {
        return Err(ContractError::NotPending {
            id: contribution_id,
            status: contribution.status,
        });
    }
    if decision == ReviewDecision::Reject && reason.is_none() {
        return Err(ContractError::ReasonRequired { contribution_id });
    }
    validate_reason(&reason)?;
    contribution.reviewed_by = Some(info.sender.clone());
    contribution.reason = reason;
    match decision {
        ReviewDecision::Accept => {
            accept(deps.storage, &mut datanet, &mut contribution)?;
            DATANETS.save(deps.storage, datanet.id, &datanet)?;
        }
        ReviewDecision::Reject => {
            contribution.status = ContributionStatus::Rejected;
            // A rejection frees the hash: content that someone else submits (or the rightful
            // owner, after a squatter's copy was rejected) gets its own review.
            release_hash(deps.storage, &contribution)?;
            update_stats(deps.storage, &contribution.contributor, |s| s.rejected += 1)?;
        }
    }
    CONTRIBUTIONS.save(deps.storage, contribution_id, &contribution)?;
    let mut response = Response::new()
        .add_attribute("action", "review")
        .add_attribute("contribution_id", contribution_id.to_string())
        .add_attribute("datanet_id", datanet.id.to_string())
        .add_attribute("status", contribution.status.as_str())
        .add_attribute("reviewer", info.sender);
    if let Some(leaf_index) = contribution.leaf_index {
        response = response.add_attribute("leaf_index", leaf_index.to_string());
    }
    Ok(response)
}

/// Owner or curator: freezes the accepted contributions into a new version.
pub fn snapshot(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    datanet_id: u64,
    note: Option<String>,
) -> Result<Response, ContractError> {
    let mut datanet = load_datanet(deps.storage, datanet_id)?;
    ensure_owner_or_curator(
        deps.storage,
        &datanet,
        &info.sender,
        "snapshot this datanet",
    )?;
    if let Some(note) = &note {
        validate::text("note", note, 0, MAX_REASON_LEN)?;
    }
    let previous_count = match datanet.latest_version {
        0 => 0,
        latest => VERSIONS.load(deps.storage, (datanet_id, latest))?.count,
    };
    if datanet.frontier.size == previous_count {
        return Err(ContractError::NothingToSnapshot {
            datanet_id,
            count: previous_count,
        });
    }
    let version = datanet
        .latest_version
        .checked_add(1)
        .ok_or_else(|| OverflowError::new(OverflowOperation::Add))?;
    let root = HexBinary::from(datanet.frontier.root().as_slice());
    let frozen = DatanetVersion {
        datanet_id,
        version,
        root: root.clone(),
        count: datanet.frontier.size,
        total_bytes: datanet.accepted_bytes,
        created_at: env.block.time,
        created_by: info.sender.clone(),
        note,
    };
    VERSIONS.save(deps.storage, (datanet_id, version), &frozen)?;
    datanet.latest_version = version;
    DATANETS.save(deps.storage, datanet_id, &datanet)?;
    Ok(Response::new()
        .add_attribute("action", "snapshot")
        .add_attribute("datanet_id", datanet_id.to_string())
        .add_attribute("version", version.to_string())
        .add_attribute("root", root.to_hex())
        .add_attribute("count", frozen.count.to_string()))
}

/// Usage recorder only: counts one use of each listed contribution and credits what it earned.
pub fn record_usage(
    deps: DepsMut,
    info: MessageInfo,
    records: Vec<UsageRecord>,
) -> Result<Response, ContractError> {
    let config = CONFIG.load(deps.storage)?;
    let authorized = config.usage_recorder.as_ref() == Some(&info.sender)
        || config.retired_usage_recorders.contains(&info.sender);
    if !authorized {
        return Err(ContractError::Unauthorized {
            sender: info.sender,
            action: "record usage",
        });
    }
    if records.len() > MAX_USAGE_RECORDS {
        return Err(ContractError::TooManyRecords {
            count: records.len(),
            max: MAX_USAGE_RECORDS,
        });
    }
    for record in &records {
        let mut contribution = load_contribution(deps.storage, record.contribution_id)?;
        // A superseded contribution that was accepted is still a leaf of the versions a model
        // may have been trained on, so its usage is recorded like any other leaf's.
        let in_tree = matches!(
            contribution.status,
            ContributionStatus::Accepted | ContributionStatus::Superseded
        ) && contribution.leaf_index.is_some();
        if !in_tree {
            return Err(ContractError::NotAccepted {
                contribution_id: contribution.id,
                status: contribution.status,
            });
        }
        let uses = record.uses.unwrap_or(1);
        contribution.usage_count = checked_add(contribution.usage_count, uses)?;
        CONTRIBUTIONS.save(deps.storage, contribution.id, &contribution)?;
        update_stats(deps.storage, &contribution.contributor, |s| {
            s.usage = s.usage.saturating_add(uses)
        })?;
        let key = record.asset.key();
        let earned = EARNED
            .may_load(deps.storage, (&contribution.contributor, &key))?
            .unwrap_or_default()
            .checked_add(record.amount)?;
        EARNED.save(deps.storage, (&contribution.contributor, &key), &earned)?;
    }
    let ids = records
        .iter()
        .map(|r| r.contribution_id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    Ok(Response::new()
        .add_attribute("action", "record_usage")
        .add_attribute("records", records.len().to_string())
        .add_attribute("contribution_ids", ids))
}

/// Whether `address` is a contract (rather than an account).
fn is_contract(deps: &DepsMut, address: &Addr) -> bool {
    deps.querier.query_wasm_contract_info(address).is_ok()
}

/// Makes `recorder` the usage recorder. The one it replaces stays authorized if it is a
/// contract: a payout contract may hold requests in escrow whose finalization records usage
/// here, and refusing it would make those finalizations revert.
fn replace_recorder(
    deps: &DepsMut,
    config: &mut Config,
    recorder: &str,
) -> Result<(), ContractError> {
    let recorder = validate_addr(deps.api, recorder)?;
    if config.usage_recorder.as_ref() == Some(&recorder) {
        return Ok(());
    }
    if !is_contract(deps, &recorder) {
        return Err(ContractError::RecorderNotAContract { address: recorder });
    }
    config.retired_usage_recorders.retain(|r| *r != recorder);
    if let Some(previous) = config.usage_recorder.take() {
        if is_contract(deps, &previous) {
            if config.retired_usage_recorders.len() >= MAX_RETIRED_USAGE_RECORDERS {
                return Err(ContractError::TooManyRetiredRecorders {
                    max: MAX_RETIRED_USAGE_RECORDERS,
                });
            }
            config.retired_usage_recorders.push(previous);
        }
    }
    config.usage_recorder = Some(recorder);
    Ok(())
}

/// Admin only: changes the admin or the usage recorder (see [`replace_recorder`]).
pub fn update_config(
    deps: DepsMut,
    info: MessageInfo,
    admin: Option<String>,
    usage_recorder: Option<String>,
) -> Result<Response, ContractError> {
    let mut config = CONFIG.load(deps.storage)?;
    if config.admin != info.sender {
        return Err(ContractError::Unauthorized {
            sender: info.sender,
            action: "update the config",
        });
    }
    if let Some(admin) = admin {
        config.admin = validate_addr(deps.api, &admin)?;
    }
    if let Some(recorder) = usage_recorder {
        replace_recorder(&deps, &mut config, &recorder)?;
    }
    CONFIG.save(deps.storage, &config)?;
    Ok(Response::new()
        .add_attribute("action", "update_config")
        .add_attribute("admin", config.admin)
        .add_attribute(
            "usage_recorder",
            config.usage_recorder.map_or_else(String::new, String::from),
        ))
}

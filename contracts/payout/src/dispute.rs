//! Challenges: any bonded verifier can dispute an agreed packet, and a committee of verifiers
//! that recomputes the request settles it.
//!
//! # Steps
//!
//! 1. **Challenge.** Within the request's challenge window, a verifier with at least
//!    `min_verifier_bond` active, who is neither an attestor of the request's terms nor their
//!    developer, sends its own packet for the same completion with exactly `challenge_bond`
//!    attached. The packet passes the same checks as a commit. The request becomes
//!    `challenged`: it cannot be finalized, committed to or refunded until the challenge is
//!    resolved.
//! 2. **Reveal.** Within `reveal_seconds`, anyone (the attestors and the challenger both hold
//!    them) reveals the prompt and completion; they must hash to the prompt hash committed at
//!    payment and to the packets' completion hash. Only disputed prompts become public.
//! 3. **Draw.** The reveal draws `committee_size` members among the accounts with at least
//!    `min_verifier_bond` active, excluding the challenger, the request's attestors and its
//!    developer. The seed is SHA-256 over the request, both packet hashes, the prompt hash and
//!    the height and time of the block the reveal lands in: the revealer cannot know the
//!    block's time before it is proposed, so no party picks the committee, short of proposing
//!    that block itself. A chain with a randomness beacon should feed it into this seed.
//! 4. **Vote.** Within `vote_seconds` each member recomputes the packet from the revealed
//!    inputs and votes for the agreed or the challenger's packet.
//! 5. **Resolve.** Anyone, once every member voted or the vote period ended. A packet with
//!    votes from a strict majority of the committee wins.
//!
//! # Who pays whom
//!
//! - **Upheld** (the challenger's packet wins): each attestor that committed the agreed packet
//!   loses `slash_bps` of its bond (active and unbonding). The challenger's packet becomes the
//!   request's agreed packet and the request is finalizable at once; the challenger is paid
//!   the operators' share in place of the attestors, and gets its challenge bond back.
//! - **Rejected** (the agreed packet wins): the challenger forfeits its challenge bond, and the
//!   request is finalizable at once by the agreed packet.
//! - What the losers lost is paid out in this order: `vote_reward` to each member who voted
//!   with the majority, in draw order, while it lasts; then half of the rest to the winners
//!   (the challenger, or the agreed packet's attestors in address order) in equal parts; what
//!   remains, rounding included, to the treasury. Members who did not vote, or voted with the
//!   minority, get no reward. Everything is credited to claimable balances, so slashing moves
//!   funds and never creates or destroys them.
//! - **Refunded**: no committee could be drawn (too few eligible verifiers), nobody revealed
//!   the inputs in time, or no packet won a majority. The payer gets the fee back, the
//!   challenger its bond, and nobody is slashed.

use cosmwasm_std::{
    Addr, Deps, DepsMut, Env, HexBinary, MessageInfo, Order, Response, StdResult, Storage, Uint128,
};
use tributary_types::payout::{InferenceRequest, RequestStatus, RequestTerms};
use tributary_types::verification::{
    ChallengeInfo, ChallengeOutcome, ChallengePhase, CommitteeVote, DisputeInputs,
    VerificationParams, MAX_REVEALED_BYTES,
};
use tributary_types::{sha256, AssetInfo, AttributionPacket};

use crate::attribution::{check_lineage, check_model};
use crate::bond;
use crate::error::ContractError;
use crate::escrow::{load_open_request, return_escrow};
use crate::settlement::credit;
use crate::state::{
    Config, BONDS, CHALLENGES, COMMITTERS, CONFIG, OPEN_CHALLENGES, PACKETS, PACKET_CONTRIBUTORS,
    REQUESTS, VERIFICATION,
};
use crate::terms;
use crate::time::later;

/// A bonded verifier disputes request `request_id`'s agreed packet with `packet`.
pub fn challenge(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    request_id: u64,
    packet: AttributionPacket,
) -> Result<Response, ContractError> {
    let params = VERIFICATION.load(deps.storage)?;
    let config = CONFIG.load(deps.storage)?;
    let paid = cw_utils::must_pay(&info, &params.bond_denom).ok();
    if paid != Some(params.challenge_bond) {
        return Err(ContractError::WrongChallengeBond {
            bond: params.challenge_bond,
            denom: params.bond_denom,
        });
    }
    let challenger = info.sender;
    bond::require_active(
        deps.storage,
        &challenger,
        params.min_verifier_bond,
        "challenge",
    )?;
    let mut request = load_open_request(deps.storage, request_id)?;
    if CHALLENGES.has(deps.storage, request_id) {
        return Err(ContractError::AlreadyChallenged { id: request_id });
    }
    let (Some(agreed), Some(closes_at)) = (request.agreed_packet.clone(), request.finalizable_at)
    else {
        return Err(ContractError::NotChallengeable {
            id: request_id,
            status: request.status,
        });
    };
    if env.block.time >= closes_at {
        return Err(ContractError::ChallengeWindowClosed {
            id: request_id,
            closed_at: closes_at,
        });
    }
    let terms = terms::load(deps.as_ref(), request_id)?;
    if terms.attestors.contains(&challenger) || terms.developer == challenger {
        return Err(ContractError::PartyCannotChallenge {
            request_id,
            sender: challenger,
        });
    }
    if packet.request_id != request_id {
        return Err(ContractError::UnknownPacket {
            request_id,
            packet_hash: HexBinary::from(packet.packet_hash()?.as_slice()).to_hex(),
        });
    }
    packet.check_shape(terms.max_entries)?;
    let hash = HexBinary::from(packet.packet_hash()?.as_slice());
    if hash == agreed {
        return Err(ContractError::ChallengeRepeatsAgreedPacket);
    }
    let agreed_packet = PACKETS.load(deps.storage, (request_id, agreed.as_slice()))?;
    if packet.output_hash != agreed_packet.output_hash {
        return Err(ContractError::ChallengeOtherCompletion);
    }
    check_model(&request, &terms, &packet)?;
    let contributors = check_lineage(deps.as_ref(), &config, &terms, &packet)?;
    if !PACKETS.has(deps.storage, (request_id, hash.as_slice())) {
        PACKETS.save(deps.storage, (request_id, hash.as_slice()), &packet)?;
        PACKET_CONTRIBUTORS.save(deps.storage, (request_id, hash.as_slice()), &contributors)?;
    }
    let reveal_by = later(env.block.time, params.reveal_seconds)?;
    let challenge = ChallengeInfo {
        request_id,
        challenger: challenger.clone(),
        bond: params.challenge_bond,
        agreed_packet: agreed,
        challenger_packet: hash.clone(),
        opened_at: env.block.time,
        reveal_by,
        phase: ChallengePhase::AwaitingInputs,
        inputs: None,
        committee: Vec::new(),
        vote_by: None,
        votes: Vec::new(),
        outcome: None,
        slashed: Uint128::zero(),
        params,
    };
    CHALLENGES.save(deps.storage, request_id, &challenge)?;
    OPEN_CHALLENGES.save(deps.storage, request_id, &())?;
    request.status = RequestStatus::Challenged;
    REQUESTS.save(deps.storage, request_id, &request)?;
    Ok(Response::new()
        .add_attribute("action", "challenge")
        .add_attribute("request_id", request_id.to_string())
        .add_attribute("challenger", challenger.as_str())
        .add_attribute("packet_hash", hash.to_hex())
        .add_attribute("reveal_by", reveal_by.to_string()))
}

/// Anyone: the request's prompt and completion; draws the committee.
pub fn reveal_inputs(
    deps: DepsMut,
    env: Env,
    request_id: u64,
    inputs: DisputeInputs,
) -> Result<Response, ContractError> {
    let mut challenge = load_phase(deps.storage, request_id, ChallengePhase::AwaitingInputs)?;
    if env.block.time >= challenge.reveal_by {
        return Err(ContractError::RevealClosed {
            request_id,
            deadline: challenge.reveal_by,
        });
    }
    let request = load_open_request(deps.storage, request_id)?;
    for (what, len) in [
        ("prompt", inputs.prompt.len()),
        ("completion", inputs.completion.len()),
    ] {
        if len > MAX_REVEALED_BYTES {
            return Err(ContractError::InputTooLong {
                what,
                len,
                max: MAX_REVEALED_BYTES,
            });
        }
    }
    if sha256(inputs.prompt.as_bytes()).as_slice() != request.prompt_hash.as_slice() {
        return Err(ContractError::InputMismatch { what: "prompt" });
    }
    let agreed = PACKETS.load(
        deps.storage,
        (request_id, challenge.agreed_packet.as_slice()),
    )?;
    if sha256(inputs.completion.as_slice()).as_slice() != agreed.output_hash.as_slice() {
        return Err(ContractError::InputMismatch { what: "completion" });
    }
    challenge.inputs = Some(inputs);
    let terms = terms::load(deps.as_ref(), request_id)?;
    let eligible = eligible_members(deps.storage, &challenge, &terms)?;
    let size = challenge.params.committee_size as usize;
    let mut response = Response::new()
        .add_attribute("action", "reveal_inputs")
        .add_attribute("request_id", request_id.to_string());
    if eligible.len() < size {
        // The documented fallback: without a committee nobody can tell who was right.
        response = response.add_attribute("committee", "unavailable");
        return refund_request(deps.storage, challenge, request, response);
    }
    let seed = draw_seed(&env, &request, &challenge);
    challenge.committee = draw(eligible, size, &seed);
    let vote_by = later(env.block.time, challenge.params.vote_seconds)?;
    challenge.vote_by = Some(vote_by);
    challenge.phase = ChallengePhase::Voting;
    CHALLENGES.save(deps.storage, request_id, &challenge)?;
    Ok(response
        .add_attribute(
            "committee",
            challenge
                .committee
                .iter()
                .map(Addr::as_str)
                .collect::<Vec<_>>()
                .join(","),
        )
        .add_attribute("vote_by", vote_by.to_string()))
}

/// A committee member votes for the packet its recomputation gave.
pub fn vote(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    request_id: u64,
    packet_hash: HexBinary,
) -> Result<Response, ContractError> {
    let mut challenge = load_phase(deps.storage, request_id, ChallengePhase::Voting)?;
    let member = info.sender;
    if !challenge.committee.contains(&member) {
        return Err(ContractError::NotOnCommittee { request_id, member });
    }
    if challenge.votes.iter().any(|v| v.member == member) {
        return Err(ContractError::AlreadyVoted { request_id, member });
    }
    let deadline = challenge.vote_by.unwrap_or(env.block.time);
    if env.block.time >= deadline {
        return Err(ContractError::VoteClosed {
            request_id,
            deadline,
        });
    }
    if packet_hash != challenge.agreed_packet && packet_hash != challenge.challenger_packet {
        return Err(ContractError::VoteForOtherPacket);
    }
    challenge.votes.push(CommitteeVote {
        member: member.clone(),
        packet_hash: packet_hash.clone(),
    });
    CHALLENGES.save(deps.storage, request_id, &challenge)?;
    Ok(Response::new()
        .add_attribute("action", "vote")
        .add_attribute("request_id", request_id.to_string())
        .add_attribute("member", member.as_str())
        .add_attribute("packet_hash", packet_hash.to_hex()))
}

/// Anyone: settles a challenge that is ready (see the module docs).
pub fn resolve(deps: DepsMut, env: Env, request_id: u64) -> Result<Response, ContractError> {
    let challenge = CHALLENGES
        .may_load(deps.storage, request_id)?
        .ok_or(ContractError::UnknownChallenge { request_id })?;
    let request = load_open_request(deps.storage, request_id)?;
    let treasury = config_treasury(deps.as_ref())?;
    let response = Response::new()
        .add_attribute("action", "resolve")
        .add_attribute("request_id", request_id.to_string());
    match challenge.phase {
        ChallengePhase::Resolved => Err(ContractError::WrongChallengePhase {
            request_id,
            expected: "resolution",
        }),
        ChallengePhase::AwaitingInputs => {
            if env.block.time < challenge.reveal_by {
                return Err(ContractError::NotResolvable {
                    request_id,
                    ready_at: challenge.reveal_by,
                });
            }
            refund_request(deps.storage, challenge, request, response)
        }
        ChallengePhase::Voting => {
            let vote_by = challenge.vote_by.unwrap_or(env.block.time);
            let all_voted = challenge.votes.len() == challenge.committee.len();
            if !all_voted && env.block.time < vote_by {
                return Err(ContractError::NotResolvable {
                    request_id,
                    ready_at: vote_by,
                });
            }
            let majority = challenge.committee.len() / 2 + 1;
            let count = |hash: &HexBinary| {
                challenge
                    .votes
                    .iter()
                    .filter(|v| &v.packet_hash == hash)
                    .count()
            };
            if count(&challenge.challenger_packet) >= majority {
                let winner = challenge.challenger_packet.clone();
                settle_by(deps, env, &treasury, challenge, request, winner, response)
            } else if count(&challenge.agreed_packet) >= majority {
                let winner = challenge.agreed_packet.clone();
                settle_by(deps, env, &treasury, challenge, request, winner, response)
            } else {
                refund_request(deps.storage, challenge, request, response)
            }
        }
    }
}

/// The committee's majority packet settles the request; the losers pay (see the module docs).
fn settle_by(
    deps: DepsMut,
    env: Env,
    treasury: &Addr,
    mut challenge: ChallengeInfo,
    mut request: InferenceRequest,
    winner: HexBinary,
    response: Response,
) -> Result<Response, ContractError> {
    let id = request.id;
    let params = &challenge.params;
    let asset = AssetInfo::Native {
        denom: params.bond_denom.clone(),
    };
    let upheld = winner == challenge.challenger_packet;
    let agreed_attestors = COMMITTERS
        .prefix((id, challenge.agreed_packet.as_slice()))
        .keys(deps.storage, None, None, Order::Ascending)
        .collect::<StdResult<Vec<Addr>>>()?;
    let (slashed, winners) = if upheld {
        let mut slashed = Uint128::zero();
        for attestor in &agreed_attestors {
            slashed =
                slashed.checked_add(bond::slash(deps.storage, attestor, params.slash_bps)?)?;
        }
        // The challenger did the attestors' work: it takes their place for the operators' share.
        COMMITTERS.save(
            deps.storage,
            (
                id,
                challenge.challenger_packet.as_slice(),
                &challenge.challenger,
            ),
            &(),
        )?;
        credit(deps.storage, &challenge.challenger, &asset, challenge.bond)?;
        (slashed, vec![challenge.challenger.clone()])
    } else {
        (challenge.bond, agreed_attestors)
    };
    // Rewards to the members who voted with the majority, in draw order, while they last.
    let mut left = slashed;
    for member in &challenge.committee {
        let with_majority = challenge
            .votes
            .iter()
            .any(|v| v.member == *member && v.packet_hash == winner);
        if with_majority {
            let reward = params.vote_reward.min(left);
            credit(deps.storage, member, &asset, reward)?;
            left -= reward;
        }
    }
    // Half of the rest to the winners in equal parts, the remainder to the treasury.
    let each = if winners.is_empty() {
        Uint128::zero()
    } else {
        (left / Uint128::new(2)) / Uint128::new(winners.len() as u128)
    };
    for winner in &winners {
        credit(deps.storage, winner, &asset, each)?;
        left -= each;
    }
    credit(deps.storage, treasury, &asset, left)?;

    request.agreed_packet = Some(winner.clone());
    request.finalizable_at = Some(env.block.time);
    request.status = RequestStatus::Attested;
    REQUESTS.save(deps.storage, id, &request)?;
    let outcome = if upheld {
        ChallengeOutcome::Upheld
    } else {
        ChallengeOutcome::Rejected
    };
    challenge.slashed = slashed;
    close(deps.storage, &mut challenge, outcome)?;
    Ok(response
        .add_attribute("outcome", outcome_name(outcome))
        .add_attribute("packet_hash", winner.to_hex())
        .add_attribute("slashed", slashed))
}

/// The fallback: the payer gets the fee back, the challenger its bond; nobody is slashed.
fn refund_request(
    storage: &mut dyn Storage,
    mut challenge: ChallengeInfo,
    mut request: InferenceRequest,
    response: Response,
) -> Result<Response, ContractError> {
    let asset = AssetInfo::Native {
        denom: challenge.params.bond_denom.clone(),
    };
    credit(storage, &challenge.challenger, &asset, challenge.bond)?;
    request.status = RequestStatus::Refunded;
    REQUESTS.save(storage, request.id, &request)?;
    close(storage, &mut challenge, ChallengeOutcome::Refunded)?;
    let response = response
        .add_attribute("outcome", outcome_name(ChallengeOutcome::Refunded))
        .add_attribute("payer", request.payer.as_str())
        .add_attribute("amount", request.price.amount);
    return_escrow(response, &request)
}

fn close(
    storage: &mut dyn Storage,
    challenge: &mut ChallengeInfo,
    outcome: ChallengeOutcome,
) -> Result<(), ContractError> {
    challenge.phase = ChallengePhase::Resolved;
    challenge.outcome = Some(outcome);
    CHALLENGES.save(storage, challenge.request_id, challenge)?;
    OPEN_CHALLENGES.remove(storage, challenge.request_id);
    Ok(())
}

fn outcome_name(outcome: ChallengeOutcome) -> &'static str {
    match outcome {
        ChallengeOutcome::Upheld => "upheld",
        ChallengeOutcome::Rejected => "rejected",
        ChallengeOutcome::Refunded => "refunded",
    }
}

fn config_treasury(deps: Deps) -> Result<Addr, ContractError> {
    let config: Config = CONFIG.load(deps.storage)?;
    Ok(config.treasury)
}

/// The challenge of `request_id`, which must be in `phase`.
fn load_phase(
    storage: &dyn Storage,
    request_id: u64,
    phase: ChallengePhase,
) -> Result<ChallengeInfo, ContractError> {
    let challenge = CHALLENGES
        .may_load(storage, request_id)?
        .ok_or(ContractError::UnknownChallenge { request_id })?;
    if challenge.phase != phase {
        return Err(ContractError::WrongChallengePhase {
            request_id,
            expected: match phase {
                ChallengePhase::AwaitingInputs => "its inputs",
                ChallengePhase::Voting => "votes",
                ChallengePhase::Resolved => "resolution",
            },
        });
    }
    Ok(challenge)
}

/// Bonded verifiers who may sit on this challenge's committee, in address order.
fn eligible_members(
    storage: &dyn Storage,
    challenge: &ChallengeInfo,
    terms: &RequestTerms,
) -> Result<Vec<Addr>, ContractError> {
    let min = challenge.params.min_verifier_bond;
    let mut eligible = Vec::new();
    // Bounded by `MAX_BONDED`.
    for item in BONDS.range(storage, None, None, Order::Ascending) {
        let (address, bond) = item?;
        let party = address == challenge.challenger
            || address == terms.developer
            || terms.attestors.contains(&address);
        if !party && bond.active >= min {
            eligible.push(address);
        }
    }
    Ok(eligible)
}

fn draw_seed(env: &Env, request: &InferenceRequest, challenge: &ChallengeInfo) -> [u8; 32] {
    let mut data = b"tributary-committee-v1".to_vec();
    data.extend_from_slice(&request.id.to_be_bytes());
    data.extend_from_slice(challenge.agreed_packet.as_slice());
    data.extend_from_slice(challenge.challenger_packet.as_slice());
    data.extend_from_slice(request.prompt_hash.as_slice());
    data.extend_from_slice(&env.block.height.to_be_bytes());
    data.extend_from_slice(&env.block.time.nanos().to_be_bytes());
    sha256(&data)
}

/// `size` of `pool` drawn by a Fisher-Yates shuffle driven by `seed`, in draw order.
fn draw(mut pool: Vec<Addr>, size: usize, seed: &[u8; 32]) -> Vec<Addr> {
    for i in 0..size {
        let mut data = seed.to_vec();
        data.extend_from_slice(&(i as u64).to_be_bytes());
        let digest = sha256(&data);
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest[..8]);
        let remaining = (pool.len() - i) as u64;
        let j = i + (u64::from_be_bytes(word) % remaining) as usize;
        pool.swap(i, j);
    }
    pool.truncate(size);
    pool
}

/// Admin only: parameters for challenges opened from now on.
pub fn update_verification(
    deps: DepsMut,
    info: MessageInfo,
    params: VerificationParams,
) -> Result<Response, ContractError> {
    let config = CONFIG.load(deps.storage)?;
    if info.sender != config.admin {
        return Err(ContractError::Unauthorized {
            sender: info.sender,
            action: "update the verification parameters",
        });
    }
    bond::check_params(&params, config.challenge_window_seconds)?;
    VERIFICATION.save(deps.storage, &params)?;
    Ok(Response::new().add_attribute("action", "update_verification"))
}

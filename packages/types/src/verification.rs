//! Open verification: bonds, challenges of an agreed packet, and the committee that settles them.
//!
//! Any account can bond to become a verifier. Within a request's challenge window a bonded
//! verifier that recomputed the request's packet and got another one challenges the agreed
//! packet with its own and a challenge bond. The request's prompt and completion are then
//! revealed to the dispute (checked against the prompt hash committed at payment and the
//! completion hash in the packets), a committee of verifiers is drawn, each member recomputes
//! and votes, and the majority packet settles the request. The rules of who pays whom are in
//! the payout contract's `dispute` module.

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, HexBinary, Timestamp, Uint128};

/// Most accounts that can hold a bond at once: the committee draw reads all of them.
pub const MAX_BONDED: usize = 256;
/// Largest committee.
pub const MAX_COMMITTEE: u32 = 15;
/// Longest prompt or completion a dispute accepts, in bytes.
pub const MAX_REVEALED_BYTES: usize = 16 * 1024;

/// The bond and dispute parameters of the payout contract.
#[cw_serde]
pub struct VerificationParams {
    /// The native denom bonds and challenge bonds are paid in.
    pub bond_denom: String,
    /// Least active bond to challenge or to be drawn for a committee.
    pub min_verifier_bond: Uint128,
    /// Least active bond an attestor needs for its commits to be accepted (zero: none).
    pub min_attestor_bond: Uint128,
    /// Seconds between `Unbond` and the earliest `WithdrawUnbonded`; unbonding funds can still
    /// be slashed. At least the challenge window plus the reveal and vote periods.
    pub unbonding_seconds: u64,
    /// What a challenge locks, exactly.
    pub challenge_bond: Uint128,
    /// Members drawn per challenge (odd, 1 to [`MAX_COMMITTEE`]).
    pub committee_size: u32,
    /// Seconds after a challenge for the prompt and completion to be revealed.
    pub reveal_seconds: u64,
    /// Seconds after the draw for the committee to vote.
    pub vote_seconds: u64,
    /// Share of a wrong attestor's bond (active and unbonding) taken, in basis points.
    pub slash_bps: u16,
    /// Paid to each member who voted with the majority, from what was taken from the losers.
    pub vote_reward: Uint128,
}

impl VerificationParams {
    /// The parameters a contract instantiated without any gets.
    pub fn defaults() -> Self {
        VerificationParams {
            bond_denom: "utrib".into(),
            min_verifier_bond: Uint128::new(1_000_000),
            min_attestor_bond: Uint128::zero(),
            unbonding_seconds: 7 * 24 * 60 * 60,
            challenge_bond: Uint128::new(1_000_000),
            committee_size: 3,
            reveal_seconds: 3600,
            vote_seconds: 3600,
            slash_bps: 5000,
            vote_reward: Uint128::new(100_000),
        }
    }
}

/// What one account has bonded.
#[cw_serde]
pub struct BondInfo {
    pub address: Addr,
    /// Counts for challenges, committees and attesting.
    pub active: Uint128,
    /// Leaving: withdrawable from `release_at`, slashable until then.
    pub unbonding: Uint128,
    pub release_at: Option<Timestamp>,
}

/// Where a challenge stands.
#[cw_serde]
#[derive(Copy, Eq)]
pub enum ChallengePhase {
    /// Waiting for the prompt and completion.
    AwaitingInputs,
    /// The committee is recomputing and voting.
    Voting,
    /// Settled: see the outcome.
    Resolved,
}

/// How a challenge ended.
#[cw_serde]
#[derive(Copy, Eq)]
pub enum ChallengeOutcome {
    /// The committee sided with the challenger: its packet settles the request, the attestors
    /// of the agreed packet were slashed.
    Upheld,
    /// The committee sided with the agreed packet: it settles the request, the challenger
    /// forfeited its challenge bond.
    Rejected,
    /// No committee could be drawn, the inputs were never revealed, or no packet won a
    /// majority: the request was refunded and the challenge bond returned; nobody was slashed.
    Refunded,
}

/// One member's vote.
#[cw_serde]
pub struct CommitteeVote {
    pub member: Addr,
    pub packet_hash: HexBinary,
}

/// The prompt and completion of a disputed request, public once revealed.
#[cw_serde]
pub struct DisputeInputs {
    pub prompt: String,
    /// The completion's bytes as served (a byte-level model's output need not be UTF-8).
    pub completion: HexBinary,
}

/// A challenge of a request's agreed packet.
#[cw_serde]
pub struct ChallengeInfo {
    pub request_id: u64,
    pub challenger: Addr,
    /// The challenge bond it locked.
    pub bond: Uint128,
    /// The packet the attestors agreed on.
    pub agreed_packet: HexBinary,
    /// The challenger's packet (stored; the `Packet` query returns it).
    pub challenger_packet: HexBinary,
    pub opened_at: Timestamp,
    pub reveal_by: Timestamp,
    pub phase: ChallengePhase,
    pub inputs: Option<DisputeInputs>,
    /// Drawn when the inputs were revealed, in draw order.
    pub committee: Vec<Addr>,
    pub vote_by: Option<Timestamp>,
    pub votes: Vec<CommitteeVote>,
    pub outcome: Option<ChallengeOutcome>,
    /// What the losers lost in total.
    pub slashed: Uint128,
    /// The parameters in force when the challenge was opened, which it is settled by.
    pub params: VerificationParams,
}

#[cw_serde]
pub struct ChallengesResponse {
    pub challenges: Vec<ChallengeInfo>,
}

#[cw_serde]
pub struct BondsResponse {
    pub bonds: Vec<BondInfo>,
}

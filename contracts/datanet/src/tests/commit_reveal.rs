//! Commit, then reveal: whoever committed to content first owns it in a datanet, and nobody who
//! learns the bytes or the hash later can take the contribution.

use tributary_types::datanet::{
    Commitment, CommitmentsResponse, Contribution, ContributionStatus, ContributionsResponse,
    CurationPolicy, ExecuteMsg, QueryMsg, ReviewDecision, COMMITMENT_TTL_SECONDS,
    MAX_OPEN_COMMITMENTS,
};

use super::suite::{attr, commit_msg, commitment_of, hash_of, reveal_msg, Suite};
use crate::error::ContractError;

const WORK: &[u8] = b"alice's carefully written example";

fn owner_of(suite: &Suite, datanet_id: u64, content: &[u8]) -> Option<Contribution> {
    suite
        .query(&QueryMsg::ContributionByHash {
            datanet_id,
            content_hash: hash_of(content),
        })
        .unwrap()
}

fn holders_of(suite: &Suite, content: &[u8]) -> Vec<(u64, ContributionStatus)> {
    let response: ContributionsResponse = suite
        .query(&QueryMsg::ContributionsByHash {
            content_hash: hash_of(content),
            start_after: None,
            limit: None,
        })
        .unwrap();
    response
        .contributions
        .into_iter()
        .map(|c| (c.id, c.status))
        .collect()
}

fn commitment(suite: &Suite, contribution_id: u64) -> Result<Commitment, String> {
    suite
        .query(&QueryMsg::Commitment { contribution_id })
        .map_err(|e| e.to_string())
}

#[test]
fn a_commitment_names_neither_the_content_nor_its_hash() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    let response = suite
        .execute(&alice, &commit_msg(&alice, id, WORK))
        .unwrap();
    let hash = hash_of(WORK);
    for event in &response.events {
        for attribute in &event.attributes {
            assert!(!attribute.value.contains(&hash), "{attribute:?}");
        }
    }
    assert_eq!(attr(&response, "status").unwrap(), "committed");
    assert_eq!(owner_of(&suite, id, WORK), None);
    assert!(holders_of(&suite, WORK).is_empty());
    suite.assert_query_err(
        &QueryMsg::Contribution { contribution_id: 1 },
        ContractError::NotRevealed { contribution_id: 1 },
    );

    let block = suite.app.block_info();
    assert_eq!(
        commitment(&suite, 1).unwrap(),
        Commitment {
            contribution_id: 1,
            datanet_id: id,
            contributor: alice.clone(),
            commitment: commitment_of(&alice, WORK),
            size_bytes: WORK.len() as u64,
            media_type: "text/plain".to_string(),
            metadata: None,
            committed_at: block.time,
            committed_height: block.height,
            expires_at: block.time.plus_seconds(COMMITMENT_TTL_SECONDS),
        }
    );
    let open: CommitmentsResponse = suite
        .query(&QueryMsg::Commitments {
            contributor: alice.to_string(),
            start_after: None,
            limit: None,
        })
        .unwrap();
    assert_eq!(open.commitments.len(), 1);

    suite.next_block();
    suite.reveal(&alice, 1, WORK);
    assert!(commitment(&suite, 1)
        .unwrap_err()
        .ends_with(&ContractError::AlreadyRevealed { contribution_id: 1 }.to_string()));
    let open: CommitmentsResponse = suite
        .query(&QueryMsg::Commitments {
            contributor: alice.to_string(),
            start_after: None,
            limit: None,
        })
        .unwrap();
    assert!(open.commitments.is_empty());
}

#[test]
fn reveal_in_the_commitment_block_is_refused() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    let cid = suite.commit(&alice, id, WORK);
    let height = suite.app.block_info().height;
    assert_eq!(
        suite.execute_err(&alice, &reveal_msg(cid, WORK)),
        ContractError::RevealTooEarly {
            contribution_id: cid,
            committed_height: height,
            height
        }
    );
    suite.next_block();
    suite.reveal(&alice, cid, WORK);
}

#[test]
fn only_the_committer_reveals_and_only_what_was_committed() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    let cid = suite.commit(&alice, id, WORK);
    suite.next_block();
    assert_eq!(
        suite.execute_err(&bob, &reveal_msg(cid, WORK)),
        ContractError::Unauthorized {
            sender: bob.clone(),
            action: "reveal this contribution"
        }
    );
    assert_eq!(
        suite.execute_err(&alice, &reveal_msg(cid, b"something else")),
        ContractError::CommitmentMismatch {
            contribution_id: cid
        }
    );
    suite.reveal(&alice, cid, WORK);
    assert_eq!(
        suite.execute_err(&alice, &reveal_msg(cid, WORK)),
        ContractError::AlreadyRevealed {
            contribution_id: cid
        }
    );
    assert_eq!(
        suite.execute_err(&alice, &reveal_msg(77, WORK)),
        ContractError::ContributionNotFound {
            contribution_id: 77
        }
    );
}

#[test]
fn a_squatter_who_sees_the_reveal_cannot_take_the_contribution() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    let mine = suite.contribute(&alice, id, WORK);

    // Bob now knows the hash and the bytes, and commits to them himself.
    let copy = suite.commit(&bob, id, WORK);
    suite.next_block();
    assert_eq!(
        suite.execute_err(&bob, &reveal_msg(copy, WORK)),
        ContractError::DuplicateContent {
            datanet_id: id,
            content_hash: hash_of(WORK),
            existing_id: mine
        }
    );
    assert_eq!(owner_of(&suite, id, WORK).unwrap().contributor, alice);
    assert_eq!(
        holders_of(&suite, WORK),
        vec![(mine, ContributionStatus::Accepted)]
    );
}

#[test]
fn a_copied_commitment_cannot_be_revealed_by_the_copier() {
    // Bob copies Alice's commitment from her transaction to get an earlier-looking claim on
    // the same datanet; it binds her address, so he can never reveal it.
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    let copied = suite
        .execute(&bob, &commit_msg(&alice, id, WORK))
        .map(|r| attr(&r, "contribution_id").unwrap().parse::<u64>().unwrap())
        .unwrap();
    let mine = suite.commit(&alice, id, WORK);
    suite.next_block();
    assert_eq!(
        suite.execute_err(&bob, &reveal_msg(copied, WORK)),
        ContractError::CommitmentMismatch {
            contribution_id: copied
        }
    );
    suite.reveal(&alice, mine, WORK);
    assert_eq!(owner_of(&suite, id, WORK).unwrap().id, mine);
}

#[test]
fn a_squatter_who_commits_first_without_the_bytes_cannot_reveal_them() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    // Bob commits before Alice, to a guess: he has not seen her bytes yet.
    let early = suite.commit(&bob, id, b"a guess");
    let mine = suite.contribute(&alice, id, WORK);
    // Having seen her reveal, he tries to reveal her hash under his earlier commitment.
    assert_eq!(
        suite.execute_err(&bob, &reveal_msg(early, WORK)),
        ContractError::CommitmentMismatch {
            contribution_id: early
        }
    );
    assert_eq!(owner_of(&suite, id, WORK).unwrap().id, mine);
}

#[test]
fn an_earlier_commitment_supersedes_a_later_one_that_revealed_first() {
    // Alice commits, and her bytes leak (e.g. from the content store) before she reveals. Bob
    // commits to them after her and reveals before her: he holds the content until she reveals.
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    let mine = suite.commit(&alice, id, WORK);
    suite.next_block();
    let squat = suite.commit(&bob, id, WORK);
    suite.next_block();
    suite.reveal(&bob, squat, WORK);
    assert_eq!(owner_of(&suite, id, WORK).unwrap().id, squat);
    assert_eq!(suite.contribution(squat).leaf_index, Some(0));

    let response = suite.reveal(&alice, mine, WORK);
    assert_eq!(attr(&response, "superseded").unwrap(), squat.to_string());
    assert_eq!(attr(&response, "status").unwrap(), "accepted");
    let owner = owner_of(&suite, id, WORK).unwrap();
    assert_eq!((owner.id, &owner.contributor), (mine, &alice));
    assert_eq!(owner.leaf_index, Some(1));
    let squatted = suite.contribution(squat);
    assert_eq!(squatted.status, ContributionStatus::Superseded);
    assert_eq!(
        squatted.reason.as_deref(),
        Some(
            format!("superseded by contribution {mine}, an earlier commitment to the same content")
                .as_str()
        )
    );
    // The tree is append-only, so the squatter's leaf stays where it was.
    assert_eq!(squatted.leaf_index, Some(0));
    assert_eq!(
        holders_of(&suite, WORK),
        vec![(mine, ContributionStatus::Accepted)]
    );
}

#[test]
fn a_superseded_pending_contribution_cannot_be_accepted() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, bob, curator) = (
        suite.alice.clone(),
        suite.bob.clone(),
        suite.curator.clone(),
    );
    let mine = suite.commit(&alice, id, WORK);
    suite.next_block();
    let squat = suite.contribute(&bob, id, WORK);
    suite.reveal(&alice, mine, WORK);
    assert_eq!(
        suite.execute_err(
            &curator,
            &ExecuteMsg::Review {
                contribution_id: squat,
                decision: ReviewDecision::Accept,
                reason: None,
            }
        ),
        ContractError::NotPending {
            id: squat,
            status: ContributionStatus::Superseded
        }
    );
    suite.review(mine, ReviewDecision::Accept);
    assert_eq!(
        suite.contribution(mine).status,
        ContributionStatus::Accepted
    );
}

#[test]
fn curators_cannot_review_an_unrevealed_contribution() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, curator) = (suite.alice.clone(), suite.curator.clone());
    let cid = suite.commit(&alice, id, WORK);
    for decision in [ReviewDecision::Accept, ReviewDecision::Reject] {
        assert_eq!(
            suite.execute_err(
                &curator,
                &ExecuteMsg::Review {
                    contribution_id: cid,
                    decision,
                    reason: Some("looked at it".to_string()),
                }
            ),
            ContractError::NotRevealed {
                contribution_id: cid
            }
        );
    }
}

#[test]
fn a_commitment_cannot_be_revealed_once_expired_and_can_be_withdrawn() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    let cid = suite.commit(&alice, id, WORK);
    let expires_at = commitment(&suite, cid).unwrap().expires_at;
    suite.app.update_block(|block| {
        block.height += 1;
        block.time = expires_at;
    });
    assert_eq!(
        suite.execute_err(&alice, &reveal_msg(cid, WORK)),
        ContractError::CommitmentExpired {
            contribution_id: cid,
            expires_at
        }
    );
    let withdraw = ExecuteMsg::Withdraw {
        contribution_id: cid,
    };
    assert_eq!(
        suite.execute_err(&bob, &withdraw),
        ContractError::Unauthorized {
            sender: bob.clone(),
            action: "withdraw this contribution"
        }
    );
    let response = suite.execute(&alice, &withdraw).unwrap();
    assert_eq!(attr(&response, "status").unwrap(), "withdrawn");
    assert!(commitment(&suite, cid).unwrap_err().ends_with(
        &ContractError::ContributionNotFound {
            contribution_id: cid
        }
        .to_string()
    ));
    // Nothing was taken: the content is free for a new commitment.
    let again = suite.contribute(&alice, id, WORK);
    assert_eq!(owner_of(&suite, id, WORK).unwrap().id, again);
}

#[test]
fn unrevealed_commitments_are_capped_per_contributor_and_expired_ones_forgotten() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    let ids: Vec<u64> = (0..MAX_OPEN_COMMITMENTS)
        .map(|i| suite.commit(&alice, id, format!("spam {i}").as_bytes()))
        .collect();
    let over = commit_msg(&alice, id, b"one more");
    assert_eq!(
        suite.execute_err(&alice, &over),
        ContractError::TooManyOpenCommitments {
            contributor: alice.clone(),
            max: MAX_OPEN_COMMITMENTS
        }
    );
    // Another contributor is not held back.
    suite.commit(&bob, id, b"bob's");

    // A reveal frees a slot.
    suite.next_block();
    suite.reveal(&alice, ids[0], b"spam 0");
    let freed = suite.commit(&alice, id, b"one more");
    assert_eq!(
        suite.execute_err(&alice, &commit_msg(&alice, id, b"and another")),
        ContractError::TooManyOpenCommitments {
            contributor: alice.clone(),
            max: MAX_OPEN_COMMITMENTS
        }
    );

    // Once expired, the commitments stop counting and the next commitment forgets them.
    suite.app.update_block(|block| {
        block.height += 1;
        block.time = block.time.plus_seconds(COMMITMENT_TTL_SECONDS);
    });
    let fresh = suite.commit(&alice, id, b"and another");
    for expired in ids[1..].iter().chain([&freed]) {
        assert!(
            commitment(&suite, *expired).is_err(),
            "commitment {expired} was forgotten"
        );
    }
    let open: CommitmentsResponse = suite
        .query(&QueryMsg::Commitments {
            contributor: alice.to_string(),
            start_after: None,
            limit: None,
        })
        .unwrap();
    assert_eq!(
        open.commitments
            .iter()
            .map(|c| c.contribution_id)
            .collect::<Vec<_>>(),
        vec![fresh]
    );
}

#[test]
fn contributions_by_hash_lists_the_live_holders_in_every_datanet() {
    let mut suite = Suite::new();
    let open = suite.create_datanet(CurationPolicy::Open);
    let curated = suite.create_datanet(CurationPolicy::CuratorReview);
    let other = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    let accepted = suite.contribute(&alice, open, WORK);
    let pending = suite.contribute(&bob, curated, WORK);
    let rejected = suite.contribute(&bob, other, WORK);
    suite.review(rejected, ReviewDecision::Reject);
    // Committed only: the chain cannot know its hash yet.
    suite.commit(&alice, other, WORK);
    assert_eq!(
        holders_of(&suite, WORK),
        vec![
            (accepted, ContributionStatus::Accepted),
            (pending, ContributionStatus::Pending)
        ]
    );
    let page: ContributionsResponse = suite
        .query(&QueryMsg::ContributionsByHash {
            content_hash: hash_of(WORK).to_uppercase(),
            start_after: Some(accepted),
            limit: Some(1),
        })
        .unwrap();
    assert_eq!(
        page.contributions
            .iter()
            .map(|c| (c.id, c.contributor.clone()))
            .collect::<Vec<_>>(),
        vec![(pending, bob.clone())]
    );
    suite
        .execute(
            &bob,
            &ExecuteMsg::Withdraw {
                contribution_id: pending,
            },
        )
        .unwrap();
    assert_eq!(
        holders_of(&suite, WORK),
        vec![(accepted, ContributionStatus::Accepted)]
    );
    suite.assert_query_err(
        &QueryMsg::ContributionsByHash {
            content_hash: "abc".to_string(),
            start_after: None,
            limit: None,
        },
        ContractError::Hash(tributary_types::HashError::BadLength { len: 3 }),
    );
}

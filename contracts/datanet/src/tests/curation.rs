//! Curators reviewing pending contributions.

use tributary_types::datanet::{
    ContributionStatus, ContributorStats, CurationPolicy, ExecuteMsg, QueryMsg, ReviewDecision,
};
use tributary_types::validate::TextError;

use super::suite::{attr, Suite};
use crate::error::ContractError;

fn review_msg(contribution_id: u64, decision: ReviewDecision, reason: Option<&str>) -> ExecuteMsg {
    ExecuteMsg::Review {
        contribution_id,
        decision,
        reason: reason.map(str::to_string),
    }
}

#[test]
fn curator_acceptance_adds_the_contribution_to_the_tree() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, curator) = (suite.alice.clone(), suite.curator.clone());
    let contribution_id = suite.contribute(&alice, id, b"good sample");
    let response = suite
        .execute(
            &curator,
            &review_msg(contribution_id, ReviewDecision::Accept, Some("clean")),
        )
        .unwrap();
    assert_eq!(attr(&response, "action").unwrap(), "review");
    assert_eq!(attr(&response, "contribution_id").unwrap(), "1");
    assert_eq!(attr(&response, "datanet_id").unwrap(), id.to_string());
    assert_eq!(attr(&response, "status").unwrap(), "accepted");
    assert_eq!(attr(&response, "leaf_index").unwrap(), "0");

    let contribution = suite.contribution(contribution_id);
    assert_eq!(contribution.status, ContributionStatus::Accepted);
    assert_eq!(contribution.reviewed_by, Some(curator));
    assert_eq!(contribution.reason.as_deref(), Some("clean"));
    assert_eq!(contribution.leaf_index, Some(0));
    let datanet = suite.datanet(id);
    assert_eq!(datanet.accepted_count, 1);
    assert_eq!(datanet.accepted_bytes, 11);
    assert_eq!(datanet.frontier.size, 1);

    let stats: ContributorStats = suite
        .query(&QueryMsg::ContributorStats {
            contributor: alice.to_string(),
        })
        .unwrap();
    assert_eq!(
        (stats.contributed, stats.accepted, stats.rejected),
        (1, 1, 0)
    );
}

#[test]
fn leaves_follow_acceptance_order_not_submission_order() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let alice = suite.alice.clone();
    let first = suite.contribute(&alice, id, b"first");
    let second = suite.contribute(&alice, id, b"second");
    suite.review(second, ReviewDecision::Accept);
    suite.review(first, ReviewDecision::Accept);
    assert_eq!(suite.contribution(second).leaf_index, Some(0));
    assert_eq!(suite.contribution(first).leaf_index, Some(1));
}

#[test]
fn owner_may_review_too() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, owner) = (suite.alice.clone(), suite.owner.clone());
    let contribution_id = suite.contribute(&alice, id, b"x");
    suite
        .execute(
            &owner,
            &review_msg(contribution_id, ReviewDecision::Reject, Some("duplicate")),
        )
        .unwrap();
    let contribution = suite.contribution(contribution_id);
    assert_eq!(contribution.status, ContributionStatus::Rejected);
    assert_eq!(contribution.reviewed_by, Some(owner));
}

#[test]
fn rejection_records_the_reason_and_counts_against_the_contributor() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, curator) = (suite.alice.clone(), suite.curator.clone());
    let contribution_id = suite.contribute(&alice, id, b"noise");
    let response = suite
        .execute(
            &curator,
            &review_msg(contribution_id, ReviewDecision::Reject, Some("not code")),
        )
        .unwrap();
    assert_eq!(attr(&response, "status").unwrap(), "rejected");
    assert_eq!(attr(&response, "leaf_index"), None);

    let contribution = suite.contribution(contribution_id);
    assert_eq!(contribution.status, ContributionStatus::Rejected);
    assert_eq!(contribution.reason.as_deref(), Some("not code"));
    assert_eq!(contribution.leaf_index, None);
    assert_eq!(suite.datanet(id).frontier.size, 0);
    let stats: ContributorStats = suite
        .query(&QueryMsg::ContributorStats {
            contributor: alice.to_string(),
        })
        .unwrap();
    assert_eq!(
        (stats.contributed, stats.accepted, stats.rejected),
        (1, 0, 1)
    );
}

#[test]
fn rejection_requires_a_reason_of_bounded_length() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, curator) = (suite.alice.clone(), suite.curator.clone());
    let contribution_id = suite.contribute(&alice, id, b"x");
    assert_eq!(
        suite.execute_err(
            &curator,
            &review_msg(contribution_id, ReviewDecision::Reject, None)
        ),
        ContractError::ReasonRequired { contribution_id }
    );
    assert_eq!(
        suite.execute_err(
            &curator,
            &review_msg(contribution_id, ReviewDecision::Reject, Some(""))
        ),
        ContractError::Text(TextError::Length {
            field: "reason",
            min: 1,
            max: 512,
            len: 0
        })
    );
    let long = "r".repeat(513);
    assert!(matches!(
        suite.execute_err(
            &curator,
            &review_msg(contribution_id, ReviewDecision::Reject, Some(&long))
        ),
        ContractError::Text(TextError::Length {
            field: "reason",
            len: 513,
            ..
        })
    ));
    assert_eq!(
        suite.contribution(contribution_id).status,
        ContributionStatus::Pending
    );
}

#[test]
fn only_curators_and_the_owner_review() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, bob, owner, curator) = (
        suite.alice.clone(),
        suite.bob.clone(),
        suite.owner.clone(),
        suite.curator.clone(),
    );
    let contribution_id = suite.contribute(&alice, id, b"x");
    let accept = review_msg(contribution_id, ReviewDecision::Accept, None);
    let unauthorized = |sender: &cosmwasm_std::Addr| ContractError::Unauthorized {
        sender: sender.clone(),
        action: "review contributions of this datanet",
    };
    assert_eq!(suite.execute_err(&bob, &accept), unauthorized(&bob));
    // A contributor cannot accept their own work.
    assert_eq!(suite.execute_err(&alice, &accept), unauthorized(&alice));

    suite
        .execute(
            &owner,
            &ExecuteMsg::RemoveCurators {
                datanet_id: id,
                curators: vec![curator.to_string()],
            },
        )
        .unwrap();
    assert_eq!(suite.execute_err(&curator, &accept), unauthorized(&curator));
}

#[test]
fn a_curator_of_another_datanet_cannot_review() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let other = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, owner, curator) = (
        suite.alice.clone(),
        suite.owner.clone(),
        suite.curator.clone(),
    );
    suite
        .execute(
            &owner,
            &ExecuteMsg::RemoveCurators {
                datanet_id: id,
                curators: vec![curator.to_string()],
            },
        )
        .unwrap();
    let contribution_id = suite.contribute(&alice, id, b"x");
    assert!(matches!(
        suite.execute_err(
            &curator,
            &review_msg(contribution_id, ReviewDecision::Accept, None)
        ),
        ContractError::Unauthorized { .. }
    ));
    let in_other = suite.contribute(&alice, other, b"x");
    suite.review(in_other, ReviewDecision::Accept);
}

#[test]
fn only_pending_contributions_are_reviewed() {
    let mut suite = Suite::new();
    let review = suite.create_datanet(CurationPolicy::CuratorReview);
    let open = suite.create_datanet(CurationPolicy::Open);
    let (alice, curator) = (suite.alice.clone(), suite.curator.clone());
    let accepted = suite.contribute(&alice, open, b"a");
    let withdrawn = suite.contribute(&alice, review, b"w");
    suite
        .execute(
            &alice,
            &ExecuteMsg::Withdraw {
                contribution_id: withdrawn,
            },
        )
        .unwrap();
    let rejected = suite.contribute(&alice, review, b"r");
    suite.review(rejected, ReviewDecision::Reject);

    for (id, status) in [
        (accepted, ContributionStatus::Accepted),
        (withdrawn, ContributionStatus::Withdrawn),
        (rejected, ContributionStatus::Rejected),
    ] {
        assert_eq!(
            suite.execute_err(&curator, &review_msg(id, ReviewDecision::Accept, None)),
            ContractError::NotPending { id, status }
        );
    }
    assert_eq!(
        suite.execute_err(&curator, &review_msg(42, ReviewDecision::Accept, None)),
        ContractError::ContributionNotFound {
            contribution_id: 42
        }
    );
}

#[test]
fn pending_contributions_stay_reviewable_after_a_policy_change() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, owner) = (suite.alice.clone(), suite.owner.clone());
    let pending = suite.contribute(&alice, id, b"before");
    suite
        .execute(
            &owner,
            &ExecuteMsg::UpdateDatanet {
                datanet_id: id,
                description: None,
                domain_tags: None,
                license: None,
                policy: Some(CurationPolicy::Open),
                max_contribution_bytes: None,
            },
        )
        .unwrap();
    let open = suite.contribute(&alice, id, b"after");
    assert_eq!(suite.contribution(open).leaf_index, Some(0));
    suite.review(pending, ReviewDecision::Accept);
    assert_eq!(suite.contribution(pending).leaf_index, Some(1));
}

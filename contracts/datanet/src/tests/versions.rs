//! Snapshots, version listings and inclusion proofs.

use cosmwasm_std::HexBinary;
use tributary_types::datanet::{
    ContributionStatus, ContributionsResponse, CurationPolicy, ExecuteMsg, InclusionProofResponse,
    QueryMsg, ReviewDecision, VersionsResponse,
};
use tributary_types::hash::sha256;
use tributary_types::merkle::{contribution_leaf, root_from_leaves};
use tributary_types::validate::TextError;

use super::suite::{attr, Suite};
use crate::error::ContractError;

fn snapshot_msg(datanet_id: u64) -> ExecuteMsg {
    ExecuteMsg::Snapshot {
        datanet_id,
        note: None,
    }
}

fn proof(suite: &Suite, contribution_id: u64, version: u32) -> InclusionProofResponse {
    suite
        .query(&QueryMsg::InclusionProof {
            contribution_id,
            version,
        })
        .unwrap()
}

fn version_contributions(
    suite: &Suite,
    datanet_id: u64,
    version: u32,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Vec<u64> {
    let response: ContributionsResponse = suite
        .query(&QueryMsg::VersionContributions {
            datanet_id,
            version,
            start_after,
            limit,
        })
        .unwrap();
    response.contributions.iter().map(|c| c.id).collect()
}

#[test]
fn snapshot_freezes_the_root_of_the_accepted_contributions() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, bob, owner) = (suite.alice.clone(), suite.bob.clone(), suite.owner.clone());
    let contents: [(&cosmwasm_std::Addr, &[u8]); 3] =
        [(&alice, b"one"), (&bob, b"two"), (&alice, b"three")];
    let mut leaves = Vec::new();
    for (who, content) in contents {
        let cid = suite.contribute(who, id, content);
        leaves.push(contribution_leaf(cid, &sha256(content), who.as_str()));
    }
    let response = suite
        .execute(
            &owner,
            &ExecuteMsg::Snapshot {
                datanet_id: id,
                note: Some("first cut".to_string()),
            },
        )
        .unwrap();
    let root = HexBinary::from(root_from_leaves(&leaves).as_slice());
    assert_eq!(attr(&response, "action").unwrap(), "snapshot");
    assert_eq!(attr(&response, "datanet_id").unwrap(), id.to_string());
    assert_eq!(attr(&response, "version").unwrap(), "1");
    assert_eq!(attr(&response, "root").unwrap(), root.to_hex());

    let version = suite.version(id, 1);
    assert_eq!(version.root, root);
    assert_eq!(version.count, 3);
    assert_eq!(version.total_bytes, 11);
    assert_eq!(version.created_by, owner);
    assert_eq!(version.note.as_deref(), Some("first cut"));
    assert_eq!(version.created_at, suite.app.block_info().time);
    assert_eq!(suite.datanet(id).latest_version, 1);
}

#[test]
fn snapshot_without_new_acceptances_is_refused() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, owner) = (suite.alice.clone(), suite.owner.clone());
    assert_eq!(
        suite.execute_err(&owner, &snapshot_msg(id)),
        ContractError::NothingToSnapshot {
            datanet_id: id,
            count: 0
        }
    );
    // Pending contributions are not in any version.
    let first = suite.contribute(&alice, id, b"a");
    assert_eq!(
        suite.execute_err(&owner, &snapshot_msg(id)),
        ContractError::NothingToSnapshot {
            datanet_id: id,
            count: 0
        }
    );
    suite.review(first, ReviewDecision::Accept);
    assert_eq!(suite.snapshot(id), 1);
    assert_eq!(
        suite.execute_err(&owner, &snapshot_msg(id)),
        ContractError::NothingToSnapshot {
            datanet_id: id,
            count: 1
        }
    );
    let second = suite.contribute(&alice, id, b"b");
    suite.review(second, ReviewDecision::Accept);
    assert_eq!(suite.snapshot(id), 2);
}

#[test]
fn curators_snapshot_and_strangers_do_not() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, curator) = (suite.alice.clone(), suite.curator.clone());
    suite.contribute(&alice, id, b"a");
    assert_eq!(
        suite.execute_err(&alice, &snapshot_msg(id)),
        ContractError::Unauthorized {
            sender: alice.clone(),
            action: "snapshot this datanet"
        }
    );
    let response = suite.execute(&curator, &snapshot_msg(id)).unwrap();
    assert_eq!(attr(&response, "version").unwrap(), "1");
    assert_eq!(suite.version(id, 1).created_by, curator);
    assert_eq!(
        suite.execute_err(&curator, &snapshot_msg(9)),
        ContractError::DatanetNotFound { datanet_id: 9 }
    );
}

#[test]
fn snapshot_note_is_bounded() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, owner) = (suite.alice.clone(), suite.owner.clone());
    suite.contribute(&alice, id, b"a");
    let err = suite.execute_err(
        &owner,
        &ExecuteMsg::Snapshot {
            datanet_id: id,
            note: Some("n".repeat(513)),
        },
    );
    assert_eq!(
        err,
        ContractError::Text(TextError::Length {
            field: "note",
            min: 0,
            max: 512,
            len: 513
        })
    );
}

#[test]
fn inclusion_proofs_verify_against_every_version_that_holds_the_contribution() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    let mut v1 = Vec::new();
    for i in 0..5u8 {
        let who = if i % 2 == 0 { &alice } else { &bob };
        v1.push(suite.contribute(who, id, &[i; 3]));
    }
    assert_eq!(suite.snapshot(id), 1);
    let mut v2 = v1.clone();
    for i in 5..12u8 {
        v2.push(suite.contribute(&alice, id, &[i; 3]));
    }
    assert_eq!(suite.snapshot(id), 2);
    let (root1, root2) = (suite.version(id, 1).root, suite.version(id, 2).root);
    assert_ne!(root1, root2);

    for (version, members, root) in [(1, &v1, &root1), (2, &v2, &root2)] {
        for (leaf_index, &cid) in members.iter().enumerate() {
            let proof = proof(&suite, cid, version);
            assert!(proof.verify(), "contribution {cid} in version {version}");
            assert_eq!(&proof.root, root);
            assert_eq!(proof.leaf_index, leaf_index as u64);
            assert_eq!(proof.tree_size, members.len() as u64);
            assert_eq!((proof.contribution_id, proof.datanet_id), (cid, id));
            assert_eq!(proof.version, version);
            let contribution = suite.contribution(cid);
            let expected_leaf = contribution_leaf(
                cid,
                &sha256(&[leaf_index as u8; 3]),
                contribution.contributor.as_str(),
            );
            assert_eq!(proof.leaf.as_slice(), expected_leaf.as_slice());
        }
    }

    // A proof does not verify once tampered with.
    let mut tampered = proof(&suite, v1[2], 2);
    tampered.leaf_index += 1;
    assert!(!tampered.verify());
    let mut tampered = proof(&suite, v1[2], 2);
    tampered.root = root1;
    assert!(!tampered.verify());
}

#[test]
fn inclusion_proof_errors_say_why() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let alice = suite.alice.clone();
    let first = suite.contribute(&alice, id, b"a");
    suite.review(first, ReviewDecision::Accept);
    suite.snapshot(id);
    let later = suite.contribute(&alice, id, b"b");
    suite.review(later, ReviewDecision::Accept);
    let pending = suite.contribute(&alice, id, b"c");
    let rejected = suite.contribute(&alice, id, b"d");
    suite.review(rejected, ReviewDecision::Reject);

    let query = |contribution_id, version| QueryMsg::InclusionProof {
        contribution_id,
        version,
    };
    suite.assert_query_err(
        &query(later, 1),
        ContractError::NotInVersion {
            contribution_id: later,
            leaf_index: 1,
            version: 1,
            count: 1,
        },
    );
    suite.assert_query_err(
        &query(pending, 1),
        ContractError::NotAccepted {
            contribution_id: pending,
            status: ContributionStatus::Pending,
        },
    );
    suite.assert_query_err(
        &query(rejected, 1),
        ContractError::NotAccepted {
            contribution_id: rejected,
            status: ContributionStatus::Rejected,
        },
    );
    suite.assert_query_err(
        &query(first, 2),
        ContractError::VersionNotFound {
            datanet_id: id,
            version: 2,
        },
    );
    suite.assert_query_err(
        &query(77, 1),
        ContractError::ContributionNotFound {
            contribution_id: 77,
        },
    );
    assert!(proof(&suite, first, 1).verify());
}

#[test]
fn version_contributions_walk_leaves_up_to_the_version_count() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let alice = suite.alice.clone();
    let ids: Vec<u64> = (0..6u8)
        .map(|i| suite.contribute(&alice, id, &[i]))
        .collect();
    // Accept in reverse: leaf order is acceptance order.
    for &cid in ids[2..].iter().rev() {
        suite.review(cid, ReviewDecision::Accept);
    }
    suite.snapshot(id);
    suite.review(ids[0], ReviewDecision::Accept);
    suite.snapshot(id);

    let leaf_order = vec![ids[5], ids[4], ids[3], ids[2]];
    assert_eq!(version_contributions(&suite, id, 1, None, None), leaf_order);
    assert_eq!(
        version_contributions(&suite, id, 1, Some(1), Some(2)),
        vec![ids[3], ids[2]]
    );
    assert_eq!(
        version_contributions(&suite, id, 1, Some(3), None),
        Vec::<u64>::new()
    );
    let mut with_later = leaf_order.clone();
    with_later.push(ids[0]);
    assert_eq!(version_contributions(&suite, id, 2, None, None), with_later);
    assert_eq!(
        version_contributions(&suite, id, 2, Some(3), None),
        vec![ids[0]]
    );
    suite.assert_query_err(
        &QueryMsg::VersionContributions {
            datanet_id: id,
            version: 3,
            start_after: None,
            limit: None,
        },
        ContractError::VersionNotFound {
            datanet_id: id,
            version: 3,
        },
    );
}

#[test]
fn versions_are_listed_in_pages() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    for i in 0..4u8 {
        suite.contribute(&alice, id, &[i]);
        suite.snapshot(id);
    }
    let page = |start_after, limit| -> Vec<(u32, u64)> {
        let response: VersionsResponse = suite
            .query(&QueryMsg::Versions {
                datanet_id: id,
                start_after,
                limit,
            })
            .unwrap();
        response
            .versions
            .iter()
            .map(|v| (v.version, v.count))
            .collect()
    };
    assert_eq!(page(None, None), vec![(1, 1), (2, 2), (3, 3), (4, 4)]);
    assert_eq!(page(None, Some(2)), vec![(1, 1), (2, 2)]);
    assert_eq!(page(Some(2), Some(2)), vec![(3, 3), (4, 4)]);
    assert_eq!(page(Some(4), None), vec![]);
    suite.assert_query_err(
        &QueryMsg::Version {
            datanet_id: id,
            version: 5,
        },
        ContractError::VersionNotFound {
            datanet_id: id,
            version: 5,
        },
    );
}

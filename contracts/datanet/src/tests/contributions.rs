//! Contributing and withdrawing under each curation policy.

use cosmwasm_std::{HexBinary, Uint64};
use tributary_types::datanet::{
    ContributionStatus, ContributorStats, CurationPolicy, ExecuteMsg, QueryMsg, ReviewDecision,
};
use tributary_types::validate::TextError;
use tributary_types::HashError;

use super::suite::{attr, commit_msg, hash_of, reveal_msg, Suite};
use crate::error::ContractError;

/// A `Contribute` with some of its fields changed.
fn commit_with(
    msg: ExecuteMsg,
    change: impl FnOnce(&mut HexBinary, &mut u64, &mut String, &mut Option<String>),
) -> ExecuteMsg {
    let mut msg = msg;
    if let ExecuteMsg::Contribute {
        commitment,
        size_bytes,
        media_type,
        metadata,
        ..
    } = &mut msg
    {
        change(commitment, size_bytes, media_type, metadata);
    }
    msg
}

/// A `RevealContribution` with its hash or uri changed.
fn reveal_with(msg: ExecuteMsg, change: impl FnOnce(&mut String, &mut String)) -> ExecuteMsg {
    let mut msg = msg;
    if let ExecuteMsg::RevealContribution {
        content_hash, uri, ..
    } = &mut msg
    {
        change(content_hash, uri);
    }
    msg
}

fn stats(suite: &Suite, who: &cosmwasm_std::Addr) -> ContributorStats {
    suite
        .query(&QueryMsg::ContributorStats {
            contributor: who.to_string(),
        })
        .unwrap()
}

#[test]
fn open_contribution_is_accepted_into_the_tree_at_reveal() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    let committed = suite
        .execute(&alice, &commit_msg(&alice, id, b"fn main() {}"))
        .unwrap();
    assert_eq!(attr(&committed, "action").unwrap(), "contribute");
    assert_eq!(attr(&committed, "contribution_id").unwrap(), "1");
    assert_eq!(attr(&committed, "datanet_id").unwrap(), id.to_string());
    assert_eq!(attr(&committed, "status").unwrap(), "committed");
    assert_eq!(attr(&committed, "content_hash"), None);
    let submitted_at = suite.app.block_info().time;

    suite.next_block();
    let response = suite.reveal(&alice, 1, b"fn main() {}");
    assert_eq!(attr(&response, "action").unwrap(), "reveal_contribution");
    assert_eq!(attr(&response, "contribution_id").unwrap(), "1");
    assert_eq!(attr(&response, "datanet_id").unwrap(), id.to_string());
    assert_eq!(
        attr(&response, "content_hash").unwrap(),
        hash_of(b"fn main() {}")
    );
    assert_eq!(attr(&response, "status").unwrap(), "accepted");
    assert_eq!(attr(&response, "leaf_index").unwrap(), "0");

    let contribution = suite.contribution(1);
    assert_eq!(contribution.status, ContributionStatus::Accepted);
    assert_eq!(contribution.contributor, alice);
    assert_eq!(contribution.content_hash, hash_of(b"fn main() {}"));
    assert_eq!(contribution.leaf_index, Some(0));
    assert_eq!(contribution.size_bytes, 12);
    assert_eq!(contribution.media_type, "text/plain");
    assert_eq!(contribution.usage_count, 0);
    assert_eq!(contribution.submitted_at, submitted_at);

    let datanet = suite.datanet(id);
    assert_eq!(datanet.contribution_count, 1);
    assert_eq!(datanet.accepted_count, 1);
    assert_eq!(datanet.accepted_bytes, 12);
    assert_eq!(datanet.frontier.size, 1);

    let stats = stats(&suite, &alice);
    assert_eq!(
        (stats.contributed, stats.accepted, stats.rejected),
        (1, 1, 0)
    );
}

#[test]
fn curator_review_contribution_waits_as_pending_after_reveal() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let alice = suite.alice.clone();
    let cid = suite.commit(&alice, id, b"draft");
    suite.next_block();
    let response = suite.reveal(&alice, cid, b"draft");
    assert_eq!(attr(&response, "status").unwrap(), "pending");
    assert_eq!(attr(&response, "leaf_index"), None);

    let contribution = suite.contribution(1);
    assert_eq!(contribution.status, ContributionStatus::Pending);
    assert_eq!(contribution.leaf_index, None);
    let datanet = suite.datanet(id);
    assert_eq!(datanet.contribution_count, 1);
    assert_eq!(datanet.accepted_count, 0);
    assert_eq!(datanet.frontier.size, 0);
    let stats = stats(&suite, &alice);
    assert_eq!((stats.contributed, stats.accepted), (1, 0));
}

#[test]
fn allow_list_admits_only_listed_contributors() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::AllowList);
    let (owner, alice) = (suite.owner.clone(), suite.alice.clone());
    assert_eq!(
        suite.execute_err(&alice, &commit_msg(&alice, id, b"one")),
        ContractError::NotAllowed {
            datanet_id: id,
            contributor: alice.clone()
        }
    );

    let allow = |add: Vec<String>, remove: Vec<String>| ExecuteMsg::UpdateAllowList {
        datanet_id: id,
        add,
        remove,
    };
    suite
        .execute(&owner, &allow(vec![alice.to_string()], vec![]))
        .unwrap();
    let first = suite.contribute(&alice, id, b"one");
    assert_eq!(
        suite.contribution(first).status,
        ContributionStatus::Accepted
    );

    // Removed between commitment and reveal: the reveal is refused too.
    let second = suite.commit(&alice, id, b"two");
    suite
        .execute(&owner, &allow(vec![], vec![alice.to_string()]))
        .unwrap();
    suite.next_block();
    let refused = ContractError::NotAllowed {
        datanet_id: id,
        contributor: alice.clone(),
    };
    assert_eq!(
        suite.execute_err(&alice, &reveal_msg(second, b"two")),
        refused
    );
    assert_eq!(
        suite.execute_err(&alice, &commit_msg(&alice, id, b"three")),
        refused
    );
}

#[test]
fn contribution_ids_are_global_across_datanets() {
    let mut suite = Suite::new();
    let first = suite.create_datanet(CurationPolicy::Open);
    let second = suite.create_datanet(CurationPolicy::CuratorReview);
    let alice = suite.alice.clone();
    assert_eq!(suite.contribute(&alice, first, b"a"), 1);
    assert_eq!(suite.contribute(&alice, second, b"a"), 2);
    assert_eq!(suite.contribute(&alice, first, b"b"), 3);
    assert_eq!(suite.contribution(2).datanet_id, second);
    assert_eq!(suite.contribution(3).leaf_index, Some(1));
}

#[test]
fn contributing_to_an_unknown_datanet_fails() {
    let mut suite = Suite::new();
    let alice = suite.alice.clone();
    assert_eq!(
        suite.execute_err(&alice, &commit_msg(&alice, 3, b"x")),
        ContractError::DatanetNotFound { datanet_id: 3 }
    );
}

#[test]
fn malformed_commitment_and_content_hash_are_rejected() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    let short = commit_with(commit_msg(&alice, id, b"x"), |c, _, _, _| {
        *c = HexBinary::from(&c.as_slice()[..31])
    });
    assert_eq!(
        suite.execute_err(&alice, &short),
        ContractError::Hash(HashError::BadByteLength { len: 31 })
    );

    let cid = suite.commit(&alice, id, b"x");
    suite.next_block();
    let short = reveal_with(reveal_msg(cid, b"x"), |h, _| h.truncate(10));
    assert_eq!(
        suite.execute_err(&alice, &short),
        ContractError::Hash(HashError::BadLength { len: 10 })
    );
    let not_hex = reveal_with(reveal_msg(cid, b"x"), |h, _| h.replace_range(5..6, "z"));
    assert_eq!(
        suite.execute_err(&alice, &not_hex),
        ContractError::Hash(HashError::NotHex { position: 5 })
    );
}

#[test]
fn uppercase_hash_is_stored_lowercase() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    let cid = suite.commit(&alice, id, b"x");
    suite.next_block();
    let upper = reveal_with(reveal_msg(cid, b"x"), |h, _| *h = h.to_uppercase());
    suite.execute(&alice, &upper).unwrap();
    assert_eq!(suite.contribution(cid).content_hash, hash_of(b"x"));
    // The lowercase form is the same content.
    let again = suite.commit(&alice, id, b"x");
    suite.next_block();
    assert!(matches!(
        suite.execute_err(&alice, &reveal_msg(again, b"x")),
        ContractError::DuplicateContent { existing_id: 1, .. }
    ));
}

#[test]
fn empty_and_oversize_contributions_are_rejected() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    let empty = commit_with(commit_msg(&alice, id, b"x"), |_, size, _, _| *size = 0);
    assert_eq!(
        suite.execute_err(&alice, &empty),
        ContractError::EmptyContribution
    );
    let big = commit_with(commit_msg(&alice, id, b"x"), |_, size, _, _| {
        *size = 1_000_001
    });
    assert_eq!(
        suite.execute_err(&alice, &big),
        ContractError::Oversize {
            size: 1_000_001,
            max: 1_000_000
        }
    );
    let at_cap = commit_with(commit_msg(&alice, id, b"x"), |_, size, _, _| {
        *size = 1_000_000
    });
    suite.execute(&alice, &at_cap).unwrap();
}

#[test]
fn uri_media_type_and_metadata_are_validated() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    let no_media = commit_with(commit_msg(&alice, id, b"x"), |_, _, media, _| media.clear());
    assert_eq!(
        suite.execute_err(&alice, &no_media),
        ContractError::Text(TextError::Length {
            field: "media_type",
            min: 1,
            max: 128,
            len: 0
        })
    );
    let long_media = commit_with(commit_msg(&alice, id, b"x"), |_, _, media, _| {
        *media = "m".repeat(129)
    });
    assert!(matches!(
        suite.execute_err(&alice, &long_media),
        ContractError::Text(TextError::Length {
            field: "media_type",
            len: 129,
            ..
        })
    ));
    let long_metadata = commit_with(commit_msg(&alice, id, b"x"), |_, _, _, metadata| {
        *metadata = Some("m".repeat(2049))
    });
    assert_eq!(
        suite.execute_err(&alice, &long_metadata),
        ContractError::Text(TextError::Length {
            field: "metadata",
            min: 0,
            max: 2048,
            len: 2049
        })
    );
    let metadata = commit_with(commit_msg(&alice, id, b"x"), |_, _, _, metadata| {
        *metadata = Some("{\"lang\":\"rust\"}".to_string())
    });
    suite.execute(&alice, &metadata).unwrap();

    suite.next_block();
    let bad_uri = reveal_with(reveal_msg(1, b"x"), |_, uri| *uri = "no scheme".to_string());
    assert_eq!(
        suite.execute_err(&alice, &bad_uri),
        ContractError::Text(TextError::Uri {
            uri: "no scheme".to_string()
        })
    );
    suite.reveal(&alice, 1, b"x");
    assert_eq!(
        suite.contribution(1).metadata.as_deref(),
        Some("{\"lang\":\"rust\"}")
    );
    assert_eq!(
        suite.contribution(1).uri,
        format!("tributary://blobs/{}", hash_of(b"x"))
    );
}

#[test]
fn duplicate_hash_is_rejected_within_a_datanet_only() {
    let mut suite = Suite::new();
    let first = suite.create_datanet(CurationPolicy::Open);
    let second = suite.create_datanet(CurationPolicy::Open);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    suite.contribute(&alice, first, b"same bytes");
    let copy = suite.commit(&bob, first, b"same bytes");
    suite.next_block();
    assert_eq!(
        suite.execute_err(&bob, &reveal_msg(copy, b"same bytes")),
        ContractError::DuplicateContent {
            datanet_id: first,
            content_hash: hash_of(b"same bytes"),
            existing_id: 1
        }
    );
    assert_eq!(suite.contribute(&bob, second, b"same bytes"), 3);
}

#[test]
fn withdrawn_contribution_frees_its_hash() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let alice = suite.alice.clone();
    let first = suite.contribute(&alice, id, b"draft");
    let response = suite
        .execute(
            &alice,
            &ExecuteMsg::Withdraw {
                contribution_id: first,
            },
        )
        .unwrap();
    assert_eq!(attr(&response, "action").unwrap(), "withdraw");
    assert_eq!(attr(&response, "contribution_id").unwrap(), "1");
    assert_eq!(attr(&response, "status").unwrap(), "withdrawn");
    assert_eq!(
        suite.contribution(first).status,
        ContributionStatus::Withdrawn
    );

    let again = suite.contribute(&alice, id, b"draft");
    assert_eq!(again, 2);
    assert_eq!(
        suite.contribution(again).status,
        ContributionStatus::Pending
    );
}

#[test]
fn rejected_contribution_frees_its_hash_for_others() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    let first = suite.contribute(&bob, id, b"alice's work");
    suite.review(first, ReviewDecision::Reject);
    let owner: Option<tributary_types::datanet::Contribution> = suite
        .query(&QueryMsg::ContributionByHash {
            datanet_id: id,
            content_hash: hash_of(b"alice's work"),
        })
        .unwrap();
    assert_eq!(owner, None);
    let mine = suite.contribute(&alice, id, b"alice's work");
    assert_eq!(suite.contribution(mine).status, ContributionStatus::Pending);
    suite.review(mine, ReviewDecision::Accept);
    assert_eq!(
        suite.contribution(mine).status,
        ContributionStatus::Accepted
    );
    assert_eq!(
        suite.contribution(first).status,
        ContributionStatus::Rejected
    );
}

#[test]
fn only_the_contributor_withdraws_and_only_while_pending() {
    let mut suite = Suite::new();
    let review = suite.create_datanet(CurationPolicy::CuratorReview);
    let open = suite.create_datanet(CurationPolicy::Open);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    let pending = suite.contribute(&alice, review, b"p");
    let accepted = suite.contribute(&alice, open, b"a");
    let withdraw = |contribution_id| ExecuteMsg::Withdraw { contribution_id };

    assert_eq!(
        suite.execute_err(&bob, &withdraw(pending)),
        ContractError::Unauthorized {
            sender: bob.clone(),
            action: "withdraw this contribution"
        }
    );
    assert_eq!(
        suite.execute_err(&alice, &withdraw(accepted)),
        ContractError::NotPending {
            id: accepted,
            status: ContributionStatus::Accepted
        }
    );
    suite.execute(&alice, &withdraw(pending)).unwrap();
    assert_eq!(
        suite.execute_err(&alice, &withdraw(pending)),
        ContractError::NotPending {
            id: pending,
            status: ContributionStatus::Withdrawn
        }
    );
    assert_eq!(
        suite.execute_err(&alice, &withdraw(99)),
        ContractError::ContributionNotFound {
            contribution_id: 99
        }
    );
}

#[test]
fn accepted_bytes_overflow_is_refused() {
    // Unreachable with real sizes (the cap is 1 TiB), so the total is set near the top directly.
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    suite.contribute(&alice, id, b"one");
    let contract = suite.contract.clone();
    {
        let mut storage = suite.app.contract_storage_mut(&contract);
        let mut datanet = crate::state::DATANETS.load(storage.as_ref(), id).unwrap();
        datanet.accepted_bytes = u64::MAX - 1;
        crate::state::DATANETS
            .save(storage.as_mut(), id, &datanet)
            .unwrap();
    }
    let two = suite.commit(&alice, id, b"two");
    suite.next_block();
    assert_eq!(
        suite.execute_err(&alice, &reveal_msg(two, b"two")),
        ContractError::Overflow(
            Uint64::new(u64::MAX - 1)
                .checked_add(Uint64::new(3))
                .unwrap_err()
        )
    );
    assert_eq!(suite.datanet(id).accepted_count, 1);
}

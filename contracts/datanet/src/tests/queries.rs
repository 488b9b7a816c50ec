//! List queries: filters, `start_after` and page limits.

use tributary_types::datanet::{
    Contribution, ContributionStatus, ContributionsResponse, CurationPolicy, DatanetsResponse,
    ExecuteMsg, QueryMsg, ReviewDecision,
};
use tributary_types::pagination::{DEFAULT_LIMIT, MAX_LIMIT};
use tributary_types::HashError;

use super::suite::{create_msg, hash_of, Suite};
use crate::error::ContractError;

fn datanet_ids(
    suite: &Suite,
    domain_tag: Option<&str>,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Vec<u64> {
    let response: DatanetsResponse = suite
        .query(&QueryMsg::Datanets {
            domain_tag: domain_tag.map(str::to_string),
            start_after,
            limit,
        })
        .unwrap();
    response.datanets.iter().map(|d| d.id).collect()
}

fn contribution_ids(
    suite: &Suite,
    datanet_id: u64,
    status: Option<ContributionStatus>,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Vec<u64> {
    let response: ContributionsResponse = suite
        .query(&QueryMsg::Contributions {
            datanet_id,
            status,
            start_after,
            limit,
        })
        .unwrap();
    response.contributions.iter().map(|c| c.id).collect()
}

fn by_contributor(
    suite: &Suite,
    contributor: &cosmwasm_std::Addr,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Vec<u64> {
    let response: ContributionsResponse = suite
        .query(&QueryMsg::ContributionsByContributor {
            contributor: contributor.to_string(),
            start_after,
            limit,
        })
        .unwrap();
    response.contributions.iter().map(|c| c.id).collect()
}

#[test]
fn datanet_pages_are_defaulted_capped_and_resumed() {
    let mut suite = Suite::new();
    let owner = suite.owner.clone();
    let total = MAX_LIMIT as u64 + 5;
    for _ in 0..total {
        suite
            .execute(&owner, &create_msg(CurationPolicy::Open, vec![]))
            .unwrap();
    }
    let default_page = datanet_ids(&suite, None, None, None);
    assert_eq!(default_page, (1..=DEFAULT_LIMIT as u64).collect::<Vec<_>>());
    let capped = datanet_ids(&suite, None, None, Some(1000));
    assert_eq!(capped, (1..=MAX_LIMIT as u64).collect::<Vec<_>>());
    let rest = datanet_ids(&suite, None, Some(MAX_LIMIT as u64), Some(1000));
    assert_eq!(rest, (MAX_LIMIT as u64 + 1..=total).collect::<Vec<_>>());
    assert_eq!(datanet_ids(&suite, None, Some(3), Some(2)), vec![4, 5]);
    assert_eq!(
        datanet_ids(&suite, None, Some(total), None),
        Vec::<u64>::new()
    );
}

#[test]
fn datanets_filter_by_domain_tag() {
    let mut suite = Suite::new();
    let owner = suite.owner.clone();
    for tags in [
        vec!["rust"],
        vec!["python"],
        vec!["rust", "web"],
        vec!["web"],
    ] {
        let mut msg = create_msg(CurationPolicy::Open, vec![]);
        if let ExecuteMsg::CreateDatanet { domain_tags, .. } = &mut msg {
            *domain_tags = tags.into_iter().map(str::to_string).collect();
        }
        suite.execute(&owner, &msg).unwrap();
    }
    assert_eq!(datanet_ids(&suite, Some("rust"), None, None), vec![1, 3]);
    assert_eq!(datanet_ids(&suite, Some("web"), None, None), vec![3, 4]);
    assert_eq!(datanet_ids(&suite, Some("web"), Some(3), None), vec![4]);
    assert_eq!(datanet_ids(&suite, Some("rust"), None, Some(1)), vec![1]);
    assert!(datanet_ids(&suite, Some("go"), None, None).is_empty());
    // A tag that is a prefix of another matches only itself.
    assert!(datanet_ids(&suite, Some("we"), None, None).is_empty());
}

#[test]
fn contributions_filter_by_datanet_and_status() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let other = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    let ids: Vec<u64> = (0..6u8)
        .map(|i| suite.contribute(&alice, id, &[i]))
        .collect();
    let elsewhere = suite.contribute(&alice, other, b"elsewhere");
    suite.review(ids[1], ReviewDecision::Accept);
    suite.review(ids[3], ReviewDecision::Accept);
    suite.review(ids[4], ReviewDecision::Reject);
    suite
        .execute(
            &alice,
            &ExecuteMsg::Withdraw {
                contribution_id: ids[5],
            },
        )
        .unwrap();

    assert_eq!(contribution_ids(&suite, id, None, None, None), ids);
    assert_eq!(
        contribution_ids(&suite, id, Some(ContributionStatus::Accepted), None, None),
        vec![ids[1], ids[3]]
    );
    assert_eq!(
        contribution_ids(&suite, id, Some(ContributionStatus::Pending), None, None),
        vec![ids[0], ids[2]]
    );
    assert_eq!(
        contribution_ids(&suite, id, Some(ContributionStatus::Rejected), None, None),
        vec![ids[4]]
    );
    assert_eq!(
        contribution_ids(&suite, id, Some(ContributionStatus::Withdrawn), None, None),
        vec![ids[5]]
    );
    assert_eq!(
        contribution_ids(&suite, other, None, None, None),
        vec![elsewhere]
    );
    assert_eq!(
        contribution_ids(
            &suite,
            id,
            Some(ContributionStatus::Accepted),
            Some(ids[1]),
            None
        ),
        vec![ids[3]]
    );
    assert_eq!(
        contribution_ids(&suite, id, None, Some(ids[2]), Some(2)),
        vec![ids[3], ids[4]]
    );
    suite.assert_query_err(
        &QueryMsg::Contributions {
            datanet_id: 99,
            status: None,
            start_after: None,
            limit: None,
        },
        ContractError::DatanetNotFound { datanet_id: 99 },
    );
}

#[test]
fn contribution_pages_are_capped() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    let total = MAX_LIMIT as u64 + 3;
    for i in 0..total {
        suite.contribute(&alice, id, &i.to_be_bytes());
    }
    assert_eq!(
        contribution_ids(&suite, id, None, None, None).len(),
        DEFAULT_LIMIT as usize
    );
    assert_eq!(
        contribution_ids(
            &suite,
            id,
            Some(ContributionStatus::Accepted),
            None,
            Some(500)
        ),
        (1..=MAX_LIMIT as u64).collect::<Vec<_>>()
    );
    assert_eq!(
        by_contributor(&suite, &alice, Some(MAX_LIMIT as u64), Some(500)),
        (MAX_LIMIT as u64 + 1..=total).collect::<Vec<_>>()
    );
    assert_eq!(by_contributor(&suite, &alice, None, Some(0)), vec![1]);
}

#[test]
fn contributions_by_contributor_span_datanets() {
    let mut suite = Suite::new();
    let first = suite.create_datanet(CurationPolicy::Open);
    let second = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    let a1 = suite.contribute(&alice, first, b"1");
    let b1 = suite.contribute(&bob, first, b"2");
    let a2 = suite.contribute(&alice, second, b"3");
    let a3 = suite.contribute(&alice, first, b"4");
    assert_eq!(by_contributor(&suite, &alice, None, None), vec![a1, a2, a3]);
    assert_eq!(by_contributor(&suite, &bob, None, None), vec![b1]);
    assert_eq!(by_contributor(&suite, &alice, Some(a1), Some(1)), vec![a2]);
    assert!(by_contributor(&suite, &suite.addr("nobody"), None, None).is_empty());
}

#[test]
fn contribution_by_hash_finds_the_current_holder() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let alice = suite.alice.clone();
    let by_hash = |suite: &Suite, content_hash: String| -> Option<Contribution> {
        suite
            .query(&QueryMsg::ContributionByHash {
                datanet_id: id,
                content_hash,
            })
            .unwrap()
    };
    let pending = suite.contribute(&alice, id, b"p");
    let rejected = suite.contribute(&alice, id, b"r");
    suite.review(rejected, ReviewDecision::Reject);

    assert_eq!(by_hash(&suite, hash_of(b"p")).unwrap().id, pending);
    assert_eq!(
        by_hash(&suite, hash_of(b"p").to_uppercase()).unwrap().id,
        pending
    );
    // A rejected contribution holds nothing.
    assert_eq!(
        suite.contribution(rejected).status,
        ContributionStatus::Rejected
    );
    assert_eq!(by_hash(&suite, hash_of(b"r")), None);
    assert_eq!(by_hash(&suite, hash_of(b"unknown")), None);

    suite
        .execute(
            &alice,
            &ExecuteMsg::Withdraw {
                contribution_id: pending,
            },
        )
        .unwrap();
    assert_eq!(by_hash(&suite, hash_of(b"p")), None);

    suite.assert_query_err(
        &QueryMsg::ContributionByHash {
            datanet_id: id,
            content_hash: "abc".to_string(),
        },
        ContractError::Hash(HashError::BadLength { len: 3 }),
    );
    suite.assert_query_err(
        &QueryMsg::ContributionByHash {
            datanet_id: 5,
            content_hash: hash_of(b"p"),
        },
        ContractError::DatanetNotFound { datanet_id: 5 },
    );
}

#[test]
fn curator_and_allow_list_queries_need_a_known_datanet() {
    let suite = Suite::new();
    suite.assert_query_err(
        &QueryMsg::Curators { datanet_id: 4 },
        ContractError::DatanetNotFound { datanet_id: 4 },
    );
    suite.assert_query_err(
        &QueryMsg::IsAllowed {
            datanet_id: 4,
            contributor: suite.alice.to_string(),
        },
        ContractError::DatanetNotFound { datanet_id: 4 },
    );
    suite.assert_query_err(
        &QueryMsg::Versions {
            datanet_id: 4,
            start_after: None,
            limit: None,
        },
        ContractError::DatanetNotFound { datanet_id: 4 },
    );
}

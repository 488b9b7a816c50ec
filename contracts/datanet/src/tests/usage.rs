//! Usage recorded by the payout contract and the contributor totals it feeds.

use cosmwasm_std::{Addr, Uint128};
use tributary_types::asset::AssetInfo;
use tributary_types::datanet::{
    ContributionStatus, ContributorStats, CurationPolicy, Earning, ExecuteMsg, QueryMsg,
    ReviewDecision, UsageRecord,
};

use super::suite::{attr, Suite};
use crate::error::ContractError;
use crate::execute::MAX_USAGE_RECORDS;

fn record(contribution_id: u64, asset: &AssetInfo, amount: u128) -> UsageRecord {
    UsageRecord {
        contribution_id,
        asset: asset.clone(),
        amount: Uint128::new(amount),
        uses: None,
    }
}

fn stats(suite: &Suite, who: &Addr) -> ContributorStats {
    suite
        .query(&QueryMsg::ContributorStats {
            contributor: who.to_string(),
        })
        .unwrap()
}

#[test]
fn usage_counts_and_earnings_are_credited_per_asset() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, bob, recorder) = (
        suite.alice.clone(),
        suite.bob.clone(),
        suite.recorder.clone(),
    );
    let a1 = suite.contribute(&alice, id, b"a1");
    let a2 = suite.contribute(&alice, id, b"a2");
    let b1 = suite.contribute(&bob, id, b"b1");
    let utrib = AssetInfo::native("utrib");
    let token = AssetInfo::cw20(suite.addr("token").to_string());

    let response = suite
        .execute(
            &recorder,
            &ExecuteMsg::RecordUsage {
                records: vec![
                    record(a1, &utrib, 100),
                    record(a2, &utrib, 50),
                    record(b1, &utrib, 7),
                    record(a1, &token, 3),
                ],
            },
        )
        .unwrap();
    assert_eq!(attr(&response, "action").unwrap(), "record_usage");
    assert_eq!(attr(&response, "records").unwrap(), "4");
    assert_eq!(
        attr(&response, "contribution_ids").unwrap(),
        format!("{a1},{a2},{b1},{a1}")
    );

    assert_eq!(suite.contribution(a1).usage_count, 2);
    assert_eq!(suite.contribution(a2).usage_count, 1);
    assert_eq!(suite.contribution(b1).usage_count, 1);

    let alice_stats = stats(&suite, &alice);
    assert_eq!(alice_stats.contributor, alice);
    assert_eq!(alice_stats.usage, 3);
    assert_eq!(alice_stats.contributed, 2);
    let mut expected = vec![
        Earning {
            asset: token.clone(),
            amount: Uint128::new(3),
        },
        Earning {
            asset: utrib.clone(),
            amount: Uint128::new(150),
        },
    ];
    expected.sort_by_key(|e| e.asset.key());
    assert_eq!(alice_stats.earned, expected);

    let bob_stats = stats(&suite, &bob);
    assert_eq!(bob_stats.usage, 1);
    assert_eq!(
        bob_stats.earned,
        vec![Earning {
            asset: utrib.clone(),
            amount: Uint128::new(7)
        }]
    );

    // A second batch adds to the totals.
    suite
        .execute(
            &recorder,
            &ExecuteMsg::RecordUsage {
                records: vec![record(b1, &utrib, 3)],
            },
        )
        .unwrap();
    let bob_stats = stats(&suite, &bob);
    assert_eq!(bob_stats.usage, 2);
    assert_eq!(bob_stats.earned[0].amount, Uint128::new(10));
}

#[test]
fn only_the_usage_recorder_records_usage() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, admin) = (suite.alice.clone(), suite.admin.clone());
    let cid = suite.contribute(&alice, id, b"x");
    let msg = ExecuteMsg::RecordUsage {
        records: vec![record(cid, &AssetInfo::native("utrib"), 1)],
    };
    for sender in [&alice, &admin] {
        assert_eq!(
            suite.execute_err(sender, &msg),
            ContractError::Unauthorized {
                sender: sender.clone(),
                action: "record usage"
            }
        );
    }
}

#[test]
fn usage_is_refused_while_no_recorder_is_set() {
    let mut suite = Suite::new();
    let app = &mut suite.app;
    let code_id = suite.code_id;
    let admin = suite.admin.clone();
    let contract = cw_multi_test::Executor::instantiate_contract(
        app,
        code_id,
        admin.clone(),
        &tributary_types::datanet::InstantiateMsg {
            admin: None,
            usage_recorder: None,
        },
        &[],
        "no recorder",
        None,
    )
    .unwrap();
    suite.contract = contract;
    let config: tributary_types::datanet::ConfigResponse =
        suite.query(&QueryMsg::Config {}).unwrap();
    assert_eq!(config.usage_recorder, None);
    let recorder = suite.stand_in("payout");
    assert_eq!(
        suite.execute_err(&recorder, &ExecuteMsg::RecordUsage { records: vec![] }),
        ContractError::Unauthorized {
            sender: recorder.clone(),
            action: "record usage"
        }
    );
    suite
        .execute(
            &admin,
            &ExecuteMsg::UpdateConfig {
                admin: None,
                usage_recorder: Some(recorder.to_string()),
            },
        )
        .unwrap();
    suite
        .execute(&recorder, &ExecuteMsg::RecordUsage { records: vec![] })
        .unwrap();
}

#[test]
fn usage_of_unknown_or_unaccepted_contributions_is_refused_atomically() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let (alice, recorder) = (suite.alice.clone(), suite.recorder.clone());
    let accepted = suite.contribute(&alice, id, b"ok");
    suite.review(accepted, ReviewDecision::Accept);
    let pending = suite.contribute(&alice, id, b"pending");
    let rejected = suite.contribute(&alice, id, b"rejected");
    suite.review(rejected, ReviewDecision::Reject);
    let utrib = AssetInfo::native("utrib");

    let batch = |other: u64| ExecuteMsg::RecordUsage {
        records: vec![record(accepted, &utrib, 5), record(other, &utrib, 5)],
    };
    assert_eq!(
        suite.execute_err(&recorder, &batch(pending)),
        ContractError::NotAccepted {
            contribution_id: pending,
            status: ContributionStatus::Pending
        }
    );
    assert_eq!(
        suite.execute_err(&recorder, &batch(rejected)),
        ContractError::NotAccepted {
            contribution_id: rejected,
            status: ContributionStatus::Rejected
        }
    );
    assert_eq!(
        suite.execute_err(&recorder, &batch(404)),
        ContractError::ContributionNotFound {
            contribution_id: 404
        }
    );
    // The accepted record in each failed batch was not kept.
    assert_eq!(suite.contribution(accepted).usage_count, 0);
    let stats = stats(&suite, &alice);
    assert_eq!(stats.usage, 0);
    assert!(stats.earned.is_empty());
}

#[test]
fn usage_of_a_superseded_leaf_is_still_recorded() {
    // A packet may name a leaf that was accepted when it was committed and superseded before
    // the request finalized; refusing its usage would make the payout's finalization revert.
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, bob, recorder) = (
        suite.alice.clone(),
        suite.bob.clone(),
        suite.recorder.clone(),
    );
    let earlier = suite.commit(&alice, id, b"leaked");
    suite.next_block();
    let squat = suite.contribute(&bob, id, b"leaked");
    suite.reveal(&alice, earlier, b"leaked");
    assert_eq!(
        suite.contribution(squat).status,
        ContributionStatus::Superseded
    );
    suite
        .execute(
            &recorder,
            &ExecuteMsg::RecordUsage {
                records: vec![record(squat, &AssetInfo::native("utrib"), 4)],
            },
        )
        .unwrap();
    assert_eq!(suite.contribution(squat).usage_count, 1);
    let proof: tributary_types::datanet::InclusionProofResponse = {
        let version = suite.snapshot(id);
        suite
            .query(&QueryMsg::InclusionProof {
                contribution_id: squat,
                version,
            })
            .unwrap()
    };
    assert!(proof.verify());
}

#[test]
fn usage_batches_are_bounded() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, recorder) = (suite.alice.clone(), suite.recorder.clone());
    let cid = suite.contribute(&alice, id, b"popular");
    let utrib = AssetInfo::native("utrib");
    let records = vec![record(cid, &utrib, 1); MAX_USAGE_RECORDS + 1];
    assert_eq!(
        suite.execute_err(&recorder, &ExecuteMsg::RecordUsage { records }),
        ContractError::TooManyRecords {
            count: MAX_USAGE_RECORDS + 1,
            max: MAX_USAGE_RECORDS
        }
    );
    let records = vec![record(cid, &utrib, 1); MAX_USAGE_RECORDS];
    suite
        .execute(&recorder, &ExecuteMsg::RecordUsage { records })
        .unwrap();
    assert_eq!(
        suite.contribution(cid).usage_count,
        MAX_USAGE_RECORDS as u64
    );
    assert_eq!(
        stats(&suite, &alice).earned[0].amount,
        Uint128::new(MAX_USAGE_RECORDS as u128)
    );
}

#[test]
fn earnings_overflow_is_refused() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (alice, recorder) = (suite.alice.clone(), suite.recorder.clone());
    let cid = suite.contribute(&alice, id, b"x");
    let utrib = AssetInfo::native("utrib");
    let err = suite.execute_err(
        &recorder,
        &ExecuteMsg::RecordUsage {
            records: vec![record(cid, &utrib, u128::MAX), record(cid, &utrib, 1)],
        },
    );
    assert_eq!(
        err,
        ContractError::Overflow(Uint128::MAX.checked_add(Uint128::one()).unwrap_err())
    );
}

#[test]
fn unknown_contributor_has_zero_stats() {
    let suite = Suite::new();
    let stranger = suite.addr("stranger");
    assert_eq!(
        stats(&suite, &stranger),
        ContributorStats {
            contributor: stranger.clone(),
            contributed: 0,
            accepted: 0,
            rejected: 0,
            usage: 0,
            earned: vec![],
        }
    );
    suite.assert_query_err(
        &QueryMsg::ContributorStats {
            contributor: "not-bech32".to_string(),
        },
        ContractError::InvalidAddress {
            address: "not-bech32".to_string(),
        },
    );
}

//! The whole life of paid inferences through the real contracts: a curated datanet, a registered
//! model with a native and a cw20 version, escrowed payments, batched attribution commits by two
//! attestors, the challenge window, finalization and every party's claim.

mod common;

use common::*;
use cosmwasm_std::{coins, Addr, Coin, Uint128};
use cw_multi_test::{BankSudo, Executor, SudoMsg};
use tributary_payout::error::ContractError;
use tributary_types::datanet::{
    self, Contribution, ContributorStats, CurationPolicy, ReviewDecision,
};
use tributary_types::payout::{self, CommitInfo, RequestStatus, RequestsResponse};
use tributary_types::{AssetInfo, FeeSplit, Price};

const NATIVE_PRICE: u128 = 1_000_013;
const TOKEN_PRICE: u128 = 5_001;

#[test]
fn paid_inferences_settle_to_the_last_unit_and_the_contract_ends_empty() {
    let mut w = World::new();
    let api = w.app.api();
    let curator = api.addr_make("curator");
    let [alice, bob, carol, dave] = ["alice", "bob", "carol", "dave"].map(|n| api.addr_make(n));

    // A curated datanet: four contributors, the curator accepts four and rejects one.
    let res = w
        .app
        .execute_contract(
            w.owner.clone(),
            w.datanet.clone(),
            &datanet::ExecuteMsg::CreateDatanet {
                name: "rust-snippets".into(),
                description: "Idiomatic Rust".into(),
                domain_tags: vec!["rust".into(), "code".into()],
                license: "Apache-2.0".into(),
                policy: CurationPolicy::CuratorReview,
                curators: vec![curator.to_string()],
                max_contribution_bytes: 10_000,
            },
            &[],
        )
        .unwrap();
    let datanet_id: u64 = attr(&res, "datanet_id").unwrap().parse().unwrap();
    let c1 = w.contribute(datanet_id, &alice, "fn main() {}");
    let c2 = w.contribute(datanet_id, &alice, "impl Iterator for Fib");
    let c3 = w.contribute(datanet_id, &bob, "async fn fetch()");
    let c4 = w.contribute(datanet_id, &carol, "macro_rules! vec");
    let c5 = w.contribute(datanet_id, &dave, "print('python')");
    for (id, decision) in [
        (c1, ReviewDecision::Accept),
        (c2, ReviewDecision::Accept),
        (c3, ReviewDecision::Accept),
        (c4, ReviewDecision::Accept),
        (c5, ReviewDecision::Reject),
    ] {
        let reason = (decision == ReviewDecision::Reject).then(|| "not Rust".to_string());
        w.app
            .execute_contract(
                curator.clone(),
                w.datanet.clone(),
                &datanet::ExecuteMsg::Review {
                    contribution_id: id,
                    decision,
                    reason,
                },
                &[],
            )
            .unwrap();
    }
    w.app
        .execute_contract(
            curator.clone(),
            w.datanet.clone(),
            &datanet::ExecuteMsg::Snapshot {
                datanet_id,
                note: Some("first cut".into()),
            },
            &[],
        )
        .unwrap();
    let version: datanet::DatanetVersion = w
        .app
        .wrap()
        .query_wasm_smart(
            &w.datanet,
            &datanet::QueryMsg::Version {
                datanet_id,
                version: 1,
            },
        )
        .unwrap();
    assert_eq!(version.count, 4);
    // Models below are trained on this version, and packets name it.
    w.root = tributary_types::DatanetRoot {
        datanet_id,
        version: 1,
        root: version.root,
    };

    // One model: version 1 priced in utrib, version 2 priced in the accepted cw20.
    let operators = [w.attestors[0].clone(), w.attestors[1].clone()];
    let model_id = w.register_model(ModelSpec {
        price: Price {
            asset: AssetInfo::native(DENOM),
            amount: Uint128::new(NATIVE_PRICE),
        },
        split: FeeSplit {
            contributors_bps: 7000,
            developer_bps: 1500,
            operator_bps: 1000,
            protocol_bps: 500,
        },
        attestors: operators.to_vec(),
        quorum: 2,
    });
    let token_version = w.add_version(
        model_id,
        ModelSpec {
            price: Price {
                asset: AssetInfo::cw20(w.token.as_str()),
                amount: Uint128::new(TOKEN_PRICE),
            },
            split: FeeSplit {
                contributors_bps: 6000,
                developer_bps: 2000,
                operator_bps: 1500,
                protocol_bps: 500,
            },
            attestors: operators.to_vec(),
            quorum: 2,
        },
    );
    assert_eq!(token_version, 2);

    // Three paid inferences: native with excess, native exact, cw20 with excess.
    let [payer0, payer1, payer2] = [0, 1, 2].map(|i| w.payers[i].clone());
    let res = w
        .request(&payer0, model_id, 1, &coins(1_200_000, DENOM))
        .unwrap();
    assert_eq!(attr(&res, "request_id").as_deref(), Some("1"));
    assert_eq!(attr(&res, "model_id"), Some(model_id.to_string()));
    assert_eq!(attr(&res, "version").as_deref(), Some("1"));
    assert_eq!(attr(&res, "payer"), Some(payer0.to_string()));
    assert_eq!(attr(&res, "prompt_hash"), Some(h("prompt").to_hex()));
    assert_eq!(attr(&res, "refunded").as_deref(), Some("199987"));
    let requested = res
        .events
        .iter()
        .find(|e| e.ty == "wasm-inference_requested")
        .expect("an inference_requested event");
    assert!(requested
        .attributes
        .iter()
        .any(|a| a.key == "request_id" && a.value == "1"));
    assert_eq!(w.native_balance(&payer0), START_NATIVE - NATIVE_PRICE);
    let res = w
        .request(&payer1, model_id, 1, &coins(NATIVE_PRICE, DENOM))
        .unwrap();
    assert_eq!(attr(&res, "request_id").as_deref(), Some("2"));
    assert_eq!(w.native_balance(&payer1), START_NATIVE - NATIVE_PRICE);
    let token = w.token.clone();
    let res = w
        .request_cw20(&payer2, &token, model_id, token_version, 6_000)
        .unwrap();
    assert_eq!(attr(&res, "request_id").as_deref(), Some("3"));
    assert_eq!(w.token_balance(&token, &payer2), START_TOKENS - TOKEN_PRICE);
    assert_eq!(w.native_balance(&w.payout), 2 * NATIVE_PRICE);
    assert_eq!(w.token_balance(&token, &w.payout), TOKEN_PRICE);
    let r3 = w.request_state(3);
    assert_eq!(r3.payer, payer2);
    assert_eq!(r3.price.asset, AssetInfo::cw20(token.as_str()));
    assert_eq!(r3.expires_at, r3.created_at.plus_seconds(EXPIRY));

    // Both attestors compute the same packets and commit them in one batch each.
    let packets = vec![
        w.packet(1, model_id, 1, &[(c1, 4000), (c3, 3000), (c4, 3000)]),
        w.packet(2, model_id, 1, &[(c2, 7500), (c1, 2500)]),
        w.packet(3, model_id, 2, &[(c4, 7000), (c2, 3000)]),
    ];
    w.commit(&operators[0], packets.clone()).unwrap();
    for id in 1..=3 {
        let request = w.request_state(id);
        assert_eq!(request.status, RequestStatus::Open);
        assert_eq!(request.distinct_packets, 1);
        assert_eq!(request.agreed_packet, None);
    }
    let res = w.commit(&operators[1], packets.clone()).unwrap();
    let commit_events: Vec<_> = res
        .events
        .iter()
        .filter(|e| e.ty == "wasm-commit_attribution")
        .collect();
    assert_eq!(commit_events.len(), 3);
    let quorum_at = w.app.block_info().time;
    for (packet, id) in packets.iter().zip(1..) {
        let request = w.request_state(id);
        let hash = packet.packet_hash().unwrap();
        assert_eq!(request.status, RequestStatus::Attested);
        assert_eq!(request.agreed_packet.as_deref(), Some(hash.as_slice()));
        assert_eq!(request.finalizable_at, Some(quorum_at.plus_seconds(WINDOW)));
        let commits: Vec<CommitInfo> = w
            .app
            .wrap()
            .query_wasm_smart(&w.payout, &payout::QueryMsg::Commits { request_id: id })
            .unwrap();
        assert_eq!(commits.len(), 2);
        assert!(commits.iter().all(|c| c.packet_hash.as_slice() == hash));
    }

    // The challenge window holds finalization back, then anyone can finalize.
    let err = w.finalize(vec![1, 2, 3]).unwrap_err();
    assert_eq!(
        contract_err(err),
        ContractError::ChallengeWindowOpen {
            id: 1,
            ready_at: quorum_at.plus_seconds(WINDOW),
        }
    );
    w.advance(WINDOW);
    w.finalize(vec![1, 2, 3]).unwrap();
    let finalized: RequestsResponse = w
        .app
        .wrap()
        .query_wasm_smart(
            &w.payout,
            &payout::QueryMsg::Requests {
                status: Some(RequestStatus::Finalized),
                payer: None,
                start_after: None,
                limit: None,
            },
        )
        .unwrap();
    assert_eq!(
        finalized.requests.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );

    // Expected credits, from the rule: the protocol, operators' and developer shares round
    // down, the first operator (in address order) takes the operators' remainder, and the
    // contributors' pool is the rest; inside it each entry rounds down and the top weight takes
    // the pool's remainder.
    //
    // Requests 1 and 2, 1_000_013 utrib at 70/15/10/5:
    //   protocol   = floor(1_000_013 * 0.05) = 50_000
    //   operators  = floor(1_000_013 * 0.10) = 100_001 -> 50_001 + 50_000
    //   developer  = floor(1_000_013 * 0.15) = 150_001
    //   pool       = 1_000_013 - 50_000 - 100_001 - 150_001 = 700_011
    //   request 1: c1 40% floor(280_004.4) = 280_004 + the 1 left, c3 30% floor(210_003.3)
    //              = 210_003, c4 30% = 210_003
    //   request 2: c2 75% floor(525_008.25) = 525_008 + the 1 left, c1 25% floor(175_002.75)
    //              = 175_002
    // Request 3, 5_001 tokens at 60/20/15/5:
    //   protocol = floor(250.05) = 250, operators = floor(750.15) = 750 -> 375 + 375,
    //   developer = floor(1_000.2) = 1_000, pool = 5_001 - 250 - 750 - 1_000 = 3_001:
    //   c4 70% floor(2_100.7) = 2_100 + the 1 left, c2 30% floor(900.3) = 900
    let (first_op, second_op) = if operators[0] < operators[1] {
        (operators[0].clone(), operators[1].clone())
    } else {
        (operators[1].clone(), operators[0].clone())
    };
    let native = |amount: u128| (AssetInfo::native(DENOM), amount);
    let tokens = |amount: u128| (AssetInfo::cw20(token.as_str()), amount);
    // Balances list cw20 keys before native ones.
    let expected: Vec<(Addr, Vec<(AssetInfo, u128)>)> = vec![
        (w.treasury.clone(), vec![tokens(250), native(100_000)]),
        (first_op.clone(), vec![tokens(375), native(100_002)]),
        (second_op.clone(), vec![tokens(375), native(100_000)]),
        (w.developer.clone(), vec![tokens(1_000), native(300_002)]),
        (
            alice.clone(),
            vec![tokens(900), native(280_005 + 525_009 + 175_002)],
        ),
        (bob.clone(), vec![native(210_003)]),
        (carol.clone(), vec![tokens(2_101), native(210_003)]),
    ];
    let native_total: u128 = expected
        .iter()
        .flat_map(|(_, b)| b.iter())
        .filter(|(a, _)| matches!(a, AssetInfo::Native { .. }))
        .map(|(_, amount)| amount)
        .sum();
    assert_eq!(native_total, 2 * NATIVE_PRICE);
    for (who, balances) in &expected {
        assert_eq!(&w.claimable(who), balances, "claimable of {who}");
    }
    assert!(w.claimable(&dave).is_empty());
    let r1 = w.request_state(1);
    let settlement = r1.settlement.unwrap();
    assert_eq!(settlement.protocol, Uint128::new(50_000));
    assert_eq!(
        settlement.contributions,
        vec![
            (c1, Uint128::new(280_005)),
            (c3, Uint128::new(210_003)),
            (c4, Uint128::new(210_003))
        ]
    );

    // Every party claims; each receives exactly its credits and the contract ends empty.
    for (who, balances) in &expected {
        let before_native = w.native_balance(who);
        let before_tokens = w.token_balance(&token, who);
        w.claim(who).unwrap();
        for (asset, amount) in balances {
            match asset {
                AssetInfo::Native { .. } => {
                    assert_eq!(w.native_balance(who), before_native + amount, "{who}")
                }
                AssetInfo::Cw20 { .. } => {
                    assert_eq!(
                        w.token_balance(&token, who),
                        before_tokens + amount,
                        "{who}"
                    )
                }
            }
        }
        assert!(w.claimable(who).is_empty());
        assert_eq!(
            contract_err(w.claim(who).unwrap_err()),
            ContractError::NothingToClaim
        );
    }
    assert_eq!(
        contract_err(w.claim(&dave).unwrap_err()),
        ContractError::NothingToClaim
    );
    assert_eq!(w.native_balance(&w.payout), 0);
    assert_eq!(w.token_balance(&token, &w.payout), 0);

    // The datanet recorded each use and what each contributor earned.
    let usage = |w: &World, id: u64| -> u64 {
        let c: Contribution = w
            .app
            .wrap()
            .query_wasm_smart(
                &w.datanet,
                &datanet::QueryMsg::Contribution {
                    contribution_id: id,
                },
            )
            .unwrap();
        c.usage_count
    };
    assert_eq!(
        [c1, c2, c3, c4, c5].map(|id| usage(&w, id)),
        [2, 2, 1, 2, 0]
    );
    let stats = |w: &World, who: &Addr| -> ContributorStats {
        w.app
            .wrap()
            .query_wasm_smart(
                &w.datanet,
                &datanet::QueryMsg::ContributorStats {
                    contributor: who.to_string(),
                },
            )
            .unwrap()
    };
    let earned = |s: &ContributorStats, asset: &AssetInfo| -> u128 {
        s.earned
            .iter()
            .find(|e| &e.asset == asset)
            .map_or(0, |e| e.amount.u128())
    };
    let utrib = AssetInfo::native(DENOM);
    let tok = AssetInfo::cw20(token.as_str());
    let a = stats(&w, &alice);
    assert_eq!((a.contributed, a.accepted, a.usage), (2, 2, 4));
    assert_eq!(earned(&a, &utrib), 980_016);
    assert_eq!(earned(&a, &tok), 900);
    let b = stats(&w, &bob);
    assert_eq!(b.usage, 1);
    assert_eq!(earned(&b, &utrib), 210_003);
    assert_eq!(earned(&b, &tok), 0);
    let c = stats(&w, &carol);
    assert_eq!(c.usage, 2);
    assert_eq!(earned(&c, &utrib), 210_003);
    assert_eq!(earned(&c, &tok), 2_101);
    let d = stats(&w, &dave);
    assert_eq!((d.rejected, d.usage), (1, 0));
    assert!(d.earned.is_empty());
}

#[test]
fn requests_are_listed_by_status_and_by_payer() {
    let mut w = World::new();
    let model = w.native_model(1_000, 2, 2);
    let [p0, p1] = [w.payers[0].clone(), w.payers[1].clone()];
    for payer in [&p0, &p1, &p0, &p0] {
        w.paid_request(payer, model, 1_000);
    }
    let packet = w.packet(2, model, 1, &[(w.accepted[0], 10_000)]);
    for attestor in [w.attestors[0].clone(), w.attestors[1].clone()] {
        w.commit(&attestor, vec![packet.clone()]).unwrap();
    }
    let list = |w: &World, status, payer: Option<&Addr>, start_after, limit| -> Vec<u64> {
        let res: RequestsResponse = w
            .app
            .wrap()
            .query_wasm_smart(
                &w.payout,
                &payout::QueryMsg::Requests {
                    status,
                    payer: payer.map(Addr::to_string),
                    start_after,
                    limit,
                },
            )
            .unwrap();
        res.requests.iter().map(|r| r.id).collect()
    };
    assert_eq!(list(&w, None, None, None, None), vec![1, 2, 3, 4]);
    assert_eq!(list(&w, None, None, Some(1), Some(2)), vec![2, 3]);
    assert_eq!(
        list(&w, Some(RequestStatus::Open), None, None, None),
        vec![1, 3, 4]
    );
    assert_eq!(
        list(&w, Some(RequestStatus::Attested), None, None, None),
        vec![2]
    );
    assert_eq!(list(&w, None, Some(&p0), None, None), vec![1, 3, 4]);
    assert_eq!(list(&w, None, Some(&p0), Some(1), Some(1)), vec![3]);
    assert_eq!(
        list(&w, Some(RequestStatus::Attested), Some(&p1), None, None),
        vec![2]
    );
    assert!(list(&w, Some(RequestStatus::Attested), Some(&p0), None, None).is_empty());
}

#[test]
fn a_finalize_of_many_requests_records_usage_in_bounded_batches() {
    // 50 requests with 16 entries each make 800 usage records, over the datanet's batch limit.
    let mut w = World::with(Setup {
        contributions: 16,
        ..Setup::default()
    });
    let model = w.native_model(20_000, 2, 2);
    let payer = w.payers[0].clone();
    let entries: Vec<(u64, u16)> = w.accepted.iter().map(|&id| (id, 625)).collect();
    let ids: Vec<u64> = (0..50)
        .map(|_| w.paid_request(&payer, model, 20_000))
        .collect();
    let packets: Vec<_> = ids
        .iter()
        .map(|&id| w.packet(id, model, 1, &entries))
        .collect();
    for attestor in [w.attestors[0].clone(), w.attestors[1].clone()] {
        w.commit(&attestor, packets.clone()).unwrap();
    }
    w.advance(WINDOW);
    w.finalize(ids).unwrap();
    let usage: Contribution = w
        .app
        .wrap()
        .query_wasm_smart(
            &w.datanet,
            &datanet::QueryMsg::Contribution {
                contribution_id: w.accepted[15],
            },
        )
        .unwrap();
    assert_eq!(usage.usage_count, 50);
    // The pool is 20_000 - 1_000 - 2_000 - 3_000 = 14_000, 6.25% of it 875 per entry and request.
    let contributor = usage.contributor;
    let per_contributor = w
        .accepted
        .iter()
        .filter(|&&id| {
            let c: Contribution = w
                .app
                .wrap()
                .query_wasm_smart(
                    &w.datanet,
                    &datanet::QueryMsg::Contribution {
                        contribution_id: id,
                    },
                )
                .unwrap();
            c.contributor == contributor
        })
        .count() as u128;
    assert_eq!(
        w.claimable(&contributor),
        vec![(AssetInfo::native(DENOM), 50 * 875 * per_contributor)]
    );
}

#[test]
fn a_claim_pays_at_most_thirty_assets_and_the_rest_on_the_next_claim() {
    let mut w = World::new();
    let payer = w.payers[0].clone();
    let denoms: Vec<String> = (0..32).map(|i| format!("uden{i:02}")).collect();
    let funds: Vec<Coin> = denoms.iter().map(|d| Coin::new(1_000u128, d)).collect();
    w.app
        .sudo(SudoMsg::Bank(BankSudo::Mint {
            to_address: payer.to_string(),
            amount: funds,
        }))
        .unwrap();
    let mut packets = Vec::new();
    for denom in &denoms {
        let model = w.register_model(ModelSpec {
            price: Price {
                asset: AssetInfo::native(denom),
                amount: Uint128::new(1_000),
            },
            split: default_split(),
            attestors: w.attestors[..1].to_vec(),
            quorum: 1,
        });
        let res = w.request(&payer, model, 1, &coins(1_000, denom)).unwrap();
        let id: u64 = attr(&res, "request_id").unwrap().parse().unwrap();
        packets.push(w.packet(id, model, 1, &[]));
    }
    let attestor = w.attestors[0].clone();
    w.commit(&attestor, packets).unwrap();
    w.advance(WINDOW);
    w.finalize((1..=32).collect()).unwrap();

    // The balance list pages by asset; every page holds the treasury's 5% of 1_000.
    let treasury = w.treasury.clone();
    let page = |w: &World, start_after: Option<AssetInfo>| -> Vec<AssetInfo> {
        let res: payout::BalancesResponse = w
            .app
            .wrap()
            .query_wasm_smart(
                &w.payout,
                &payout::QueryMsg::Balances {
                    address: treasury.to_string(),
                    start_after,
                    limit: Some(20),
                },
            )
            .unwrap();
        assert!(res.balances.iter().all(|e| e.amount == Uint128::new(50)));
        res.balances.into_iter().map(|e| e.asset).collect()
    };
    let first = page(&w, None);
    let second = page(&w, first.last().cloned());
    assert_eq!((first.len(), second.len()), (20, 12));
    assert_eq!(first[0], AssetInfo::native("uden00"));
    assert_eq!(second[11], AssetInfo::native("uden31"));

    w.claim(&treasury).unwrap();
    let paid = |w: &World, d: &str| w.app.wrap().query_balance(&treasury, d).unwrap().amount;
    assert_eq!(paid(&w, "uden29"), Uint128::new(50));
    assert_eq!(paid(&w, "uden30"), Uint128::zero());
    assert_eq!(
        w.claimable(&treasury),
        vec![
            (AssetInfo::native("uden30"), 50),
            (AssetInfo::native("uden31"), 50)
        ]
    );
    w.claim(&treasury).unwrap();
    assert_eq!(paid(&w, "uden31"), Uint128::new(50));
    assert_eq!(
        contract_err(w.claim(&treasury).unwrap_err()),
        ContractError::NothingToClaim
    );
}

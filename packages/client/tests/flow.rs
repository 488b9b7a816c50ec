//! The whole protocol through signed transactions on a one-validator devnet: a curated datanet,
//! a model trained on its first version, inferences paid in utrib and in the cw20, attribution by
//! two attestors, finalization after the challenge window, and every party's claim, checked to
//! the last unit. Needs the binary (`TRIBUTARYD=$(chain/build)`) and the artifacts
//! (`ci/build-wasm`).

mod common;

use common::{artifacts_dir, content, hash, utrib, wait_for_block_time, LiveNet};
use cosmwasm_std::{HexBinary, Timestamp, Uint128};
use std::collections::BTreeMap;
use tributary_client::{
    deploy, Client, DeploySettings, Error, InferenceRequested, NewDatanet, PayoutContract, Signer,
    TxOutcome,
};
use tributary_types::datanet::{
    self, ContributionStatus, ContributorStats, CurationPolicy, Earning, ReviewDecision,
};
use tributary_types::packet::{AttributionEntry, AttributionPacket, DatanetRoot};
use tributary_types::payout::{self, RequestStatus};
use tributary_types::registry::{AttributionMethod, ModelVersionInput};
use tributary_types::{AssetInfo, FeeSplit, Price, Settlement};

/// Seconds between a packet reaching quorum and the earliest finalization.
const CHALLENGE_WINDOW_SECONDS: u64 = 5;
/// The native price of version 1 and the cw20 price of version 2: both leave rounding dust.
const NATIVE_PRICE: u128 = 1011;
const CW20_PRICE: u128 = 807;
/// What the payer pays for its second native request; the contract refunds the excess.
const OVERPAYMENT: u128 = 1500;
/// Every version's split, in basis points.
const SPLIT: FeeSplit = FeeSplit {
    contributors_bps: 6000,
    developer_bps: 2000,
    operator_bps: 1500,
    protocol_bps: 500,
};

#[tokio::test]
async fn the_whole_protocol_pays_every_party_to_the_last_unit() {
    let net = LiveNet::start(2600, Some(300)).await;
    let client = net.client().await;
    let curator = net.signer("curator");
    let developer = net.signer("developer");
    let operator = net.signer("operator");
    let attestor2 = net.signer("attestor2");
    let user = net.signer("user");
    let contributors = ["contributor1", "contributor2", "contributor3"].map(|n| net.signer(n));
    let treasury = net.signer("treasury");

    let deployment = deploy(
        &client,
        &curator,
        &artifacts_dir(),
        DeploySettings {
            treasury: Some(treasury.address().to_string()),
            challenge_window_seconds: CHALLENGE_WINDOW_SECONDS,
            max_entries: 16,
            token_balances: vec![(user.address().to_string(), 1_000_000)],
            ..DeploySettings::default()
        },
    )
    .await
    .unwrap();
    let token = deployment.contracts.cw20.clone();
    let datanets = client.datanet(&deployment.contracts.datanet);
    let registry = client.registry(&deployment.contracts.model_registry);
    let payouts = client.payout(&deployment.contracts.payout);

    // A curated datanet: contributions wait for the curator (its owner).
    let datanet_id = datanets
        .create_datanet(
            &curator,
            NewDatanet {
                name: "mechanics-qa".into(),
                description: "Classical mechanics questions and answers".into(),
                domain_tags: vec!["physics".into()],
                license: "CC-BY-4.0".into(),
                policy: CurationPolicy::CuratorReview,
                curators: Vec::new(),
                max_contribution_bytes: 1 << 20,
            },
        )
        .await
        .unwrap();
    let texts = [
        "Newton's first law: a body keeps its velocity unless a force acts on it.",
        "Newton's second law: F = m a.",
        "Newton's third law: every action has an equal and opposite reaction.",
        "Momentum p = m v is conserved in a closed system.",
        "Buy cheap watches at example.com",
    ];
    let [c1, c2, c3, c4, c5] = {
        let authors = [0, 1, 2, 0, 2];
        let mut ids = [0u64; 5];
        for (i, (text, author)) in texts.iter().zip(authors).enumerate() {
            ids[i] = datanets
                .contribute(&contributors[author], datanet_id, content(text))
                .await
                .unwrap();
        }
        ids
    };
    for id in [c1, c2, c3, c4, c5] {
        assert_eq!(
            datanets.contribution(id).await.unwrap().status,
            ContributionStatus::Pending
        );
    }
    // The same content from someone else: refused, naming the contribution it duplicates.
    let duplicate = datanets
        .contribute(&contributors[1], datanet_id, content(texts[0]))
        .await;
    let Err(Error::Contract { message }) = duplicate else {
        panic!("expected a contract error, got {duplicate:?}")
    };
    assert_eq!(
        message,
        format!(
            "content {} is already contribution {c1} of datanet {datanet_id}",
            content(texts[0]).content_hash
        )
    );

    for id in [c1, c2, c3, c4] {
        datanets
            .review(&curator, id, ReviewDecision::Accept, None)
            .await
            .unwrap();
    }
    let reason = "spam: not about mechanics";
    datanets
        .review(&curator, c5, ReviewDecision::Reject, Some(reason.into()))
        .await
        .unwrap();
    let rejected = datanets.contribution(c5).await.unwrap();
    assert_eq!(rejected.status, ContributionStatus::Rejected);
    assert_eq!(rejected.reason.as_deref(), Some(reason));
    assert_eq!(
        rejected.reviewed_by.as_ref().map(|a| a.as_str()),
        Some(curator.address().as_ref())
    );
    assert_eq!(
        datanets.datanet(datanet_id).await.unwrap().accepted_count,
        4
    );

    let version = datanets
        .snapshot(&curator, datanet_id, Some("reviewed".into()))
        .await
        .unwrap();
    let frozen = datanets.version(datanet_id, version).await.unwrap();
    assert_eq!(frozen.count, 4);
    let lineage = vec![DatanetRoot {
        datanet_id,
        version,
        root: frozen.root,
    }];

    // A model on that version, attested by two operators who must agree.
    let method = AttributionMethod {
        id: "trak-logra-v1".into(),
        params_hash: hash("params"),
        params: None,
    };
    let model_version = |price: Price| ModelVersionInput {
        lineage: lineage.clone(),
        weights_hash: hash("weights"),
        weights_uri: "tributary://weights".into(),
        index_hash: hash("index"),
        method: method.clone(),
        price,
        split: SPLIT,
        attestors: vec![
            operator.address().to_string(),
            attestor2.address().to_string(),
        ],
        quorum: 2,
    };
    let model_id = registry
        .register_model(
            &developer,
            "mechanics-tutor",
            "a tiny mechanics tutor",
            "transformer",
            model_version(Price {
                asset: AssetInfo::native("utrib"),
                amount: Uint128::new(NATIVE_PRICE),
            }),
        )
        .await
        .unwrap();
    let cw20_version = registry
        .add_version(
            &developer,
            model_id,
            model_version(Price {
                asset: AssetInfo::cw20(&token),
                amount: Uint128::new(CW20_PRICE),
            }),
        )
        .await
        .unwrap();

    // Three paid inferences: exact, overpaid (the excess comes back) and in the cw20.
    let (r1, _) = pay_native(&payouts, &user, model_id, 1, "q1", NATIVE_PRICE).await;
    let paid_before = client
        .balance(user.address().as_ref(), "utrib")
        .await
        .unwrap();
    let (r2, overpaid) = pay_native(&payouts, &user, model_id, 1, "q2", OVERPAYMENT).await;
    let paid_after = client
        .balance(user.address().as_ref(), "utrib")
        .await
        .unwrap();
    assert_eq!(
        overpaid.wasm_attribute(payouts.address(), "refunded"),
        Some((OVERPAYMENT - NATIVE_PRICE).to_string().as_str())
    );
    assert_eq!(paid_before - paid_after, NATIVE_PRICE + overpaid.fee.amount);
    let user_tokens = cw20_balance(&client, &token, user.address().as_ref()).await;
    let r3 = payouts
        .request_inference_cw20(
            &user,
            &token,
            CW20_PRICE,
            model_id,
            cw20_version,
            hash("q3"),
        )
        .await
        .unwrap()
        .request_id;
    assert_eq!(
        user_tokens - cw20_balance(&client, &token, user.address().as_ref()).await,
        CW20_PRICE
    );
    assert_eq!(
        client.balance(payouts.address(), "utrib").await.unwrap(),
        2 * NATIVE_PRICE
    );
    assert_eq!(
        cw20_balance(&client, &token, payouts.address()).await,
        CW20_PRICE
    );

    // The packets both attestors compute.
    let packet = |request_id: u64, model_version: u32, entries: &[(u64, u16)]| AttributionPacket {
        request_id,
        model_id,
        model_version,
        weights_hash: hash("weights"),
        datanet_roots: lineage.clone(),
        method: method.id.clone(),
        params_hash: method.params_hash.clone(),
        output_hash: hash(&format!("answer {request_id}")),
        scores_root: hash(&format!("scores {request_id}")),
        entries: entries
            .iter()
            .map(|&(contribution_id, weight_bps)| AttributionEntry {
                contribution_id,
                weight_bps,
            })
            .collect(),
    };
    let packets = vec![
        packet(r1, 1, &[(c1, 5000), (c2, 3000), (c3, 2000)]),
        packet(r2, 1, &[(c1, 6000), (c4, 4000)]),
        packet(r3, cw20_version, &[(c1, 5001), (c2, 4999)]),
    ];
    payouts
        .commit_attribution(&operator, packets.clone())
        .await
        .unwrap();
    for p in &packets {
        let request = payouts.request(p.request_id).await.unwrap();
        assert_eq!(request.status, RequestStatus::Open, "one vote of two");
        assert_eq!(request.finalizable_at, None);
    }
    payouts
        .commit_attribution(&attestor2, packets.clone())
        .await
        .unwrap();
    let mut ready_at = Timestamp::from_nanos(0);
    for p in &packets {
        let request = payouts.request(p.request_id).await.unwrap();
        assert_eq!(request.status, RequestStatus::Attested);
        let agreed = HexBinary::from(p.packet_hash().unwrap().as_slice());
        assert_eq!(request.agreed_packet.as_ref(), Some(&agreed));
        let commits = payouts.commits(p.request_id).await.unwrap();
        assert_eq!(commits.len(), 2);
        assert!(commits.iter().all(|c| c.packet_hash == agreed));
        ready_at = ready_at.max(request.finalizable_at.unwrap());
    }

    // Inside the challenge window nothing settles.
    let early = payouts.finalize(&curator, vec![r1, r2, r3]).await;
    let Err(Error::Contract { message }) = early else {
        panic!("expected a contract error, got {early:?}")
    };
    let r1_ready = payouts.request(r1).await.unwrap().finalizable_at.unwrap();
    assert_eq!(
        message,
        format!("request {r1} is in its challenge window until {r1_ready}")
    );

    wait_for_block_time(&client, ready_at).await;
    payouts.finalize(&curator, vec![r1, r2, r3]).await.unwrap();

    // The expected split, by the rule of `tributary_types::split` written out: the protocol's,
    // the developer's and the operators' shares are floor(amount * bps / 10000); the operators'
    // share is split evenly, floor each, and the first operator takes the remainder; the
    // contributors' pool is everything left, a contribution's part floor(pool * weight / 10000)
    // and the pool's rounding dust the top entry's. The payout contract lists a packet's
    // operators in address order, so the first operator is the smaller address.
    let (first_operator, second_operator) =
        if operator.address().as_ref() < attestor2.address().as_ref() {
            (&operator, &attestor2)
        } else {
            (&attestor2, &operator)
        };
    // Native, 1011 utrib: protocol floor(1011 * 500 / 10000) = floor(50.55) = 50; developer
    // floor(1011 * 2000 / 10000) = floor(202.2) = 202; operators floor(1011 * 1500 / 10000) =
    // floor(151.65) = 151 = 76 + 75; contributors' pool 1011 - 50 - 202 - 151 = 608.
    // r1: c1 floor(608 * 0.5) = 304, c2 floor(608 * 0.3) = floor(182.4) = 182,
    //     c3 floor(608 * 0.2) = floor(121.6) = 121; dust 608 - 607 = 1 to c1: 305.
    // r2: c1 floor(608 * 0.6) = floor(364.8) = 364, c4 floor(608 * 0.4) = floor(243.2) = 243;
    //     dust 1 to c1: 365.
    // cw20, 807: protocol floor(40.35) = 40; developer floor(161.4) = 161; operators
    // floor(121.05) = 121 = 61 + 60; pool 807 - 40 - 161 - 121 = 485.
    // r3: c1 floor(485 * 0.5001) = floor(242.5485) = 242, c2 floor(485 * 0.4999) =
    //     floor(242.4515) = 242; dust 1 to c1: 243.
    let expected_settlements = [
        (r1, 50, [76, 75], 202, vec![(c1, 305), (c2, 182), (c3, 121)]),
        (r2, 50, [76, 75], 202, vec![(c1, 365), (c4, 243)]),
        (r3, 40, [61, 60], 161, vec![(c1, 243), (c2, 242)]),
    ];
    for (id, protocol, operators, developer_share, contributions) in expected_settlements {
        let request = payouts.request(id).await.unwrap();
        assert_eq!(request.status, RequestStatus::Finalized);
        let expected = Settlement {
            protocol: Uint128::new(protocol),
            operators: operators.map(Uint128::new).to_vec(),
            developer: Uint128::new(developer_share),
            contributions: contributions
                .into_iter()
                .map(|(c, a)| (c, Uint128::new(a)))
                .collect(),
            unattributed: Uint128::zero(),
        };
        assert_eq!(
            expected.total(),
            Some(request.price.amount),
            "the parts add up to the fee"
        );
        assert_eq!(request.settlement, Some(expected), "request {id}");
    }

    // Each party's total, (utrib, cw20): contributor1 holds c1 and c4, contributor2 c2,
    // contributor3 c3 (c5 was rejected).
    let parties: [(&str, &Signer, u128, u128); 7] = [
        ("contributor1", &contributors[0], 305 + 365 + 243, 243),
        ("contributor2", &contributors[1], 182, 242),
        ("contributor3", &contributors[2], 121, 0),
        ("developer", &developer, 202 + 202, 161),
        ("first operator", first_operator, 76 + 76, 61),
        ("second operator", second_operator, 75 + 75, 60),
        ("treasury", &treasury, 50 + 50, 40),
    ];
    assert_eq!(parties.iter().map(|p| p.2).sum::<u128>(), 2 * NATIVE_PRICE);
    assert_eq!(parties.iter().map(|p| p.3).sum::<u128>(), CW20_PRICE);

    for (name, signer, native, tokens) in parties {
        let address = signer.address().as_ref();
        assert_eq!(
            owed(&payouts, &token, address).await,
            (native, tokens),
            "{name} before claiming"
        );
        let bank_before = client.balance(address, "utrib").await.unwrap();
        let tokens_before = cw20_balance(&client, &token, address).await;
        let claimed = payouts.claim(signer).await.unwrap();
        assert_eq!(claimed.fee.denom.as_ref(), "utrib");
        let bank_after = client.balance(address, "utrib").await.unwrap();
        let tokens_after = cw20_balance(&client, &token, address).await;
        assert_eq!(
            bank_after + claimed.fee.amount,
            bank_before + native,
            "{name}'s utrib: claimed {native}, paid a fee of {}",
            claimed.fee.amount
        );
        assert_eq!(tokens_after - tokens_before, tokens, "{name}'s cw20");
        assert_eq!(owed(&payouts, &token, address).await, (0, 0), "{name}");
    }
    let again = payouts.claim(&treasury).await;
    assert!(
        matches!(&again, Err(Error::Contract { message }) if message == "nothing to claim"),
        "{again:?}"
    );
    assert_eq!(client.balance(payouts.address(), "utrib").await.unwrap(), 0);
    assert_eq!(cw20_balance(&client, &token, payouts.address()).await, 0);

    // Usage: one per finalized packet naming the contribution.
    for id in [c1, c2, c3, c4, c5] {
        let named = packets
            .iter()
            .filter(|p| p.entries.iter().any(|e| e.contribution_id == id))
            .count() as u64;
        assert_eq!(
            datanets.contribution(id).await.unwrap().usage_count,
            named,
            "contribution {id}"
        );
    }
    assert_eq!(
        [c1, c2, c3, c4, c5].map(|id| packets
            .iter()
            .filter(|p| p.entries.iter().any(|e| e.contribution_id == id))
            .count()),
        [3, 2, 1, 1, 0]
    );

    // The contributors' records: what they submitted, how it was reviewed, what it earned.
    let native = AssetInfo::native("utrib");
    let cw20 = AssetInfo::cw20(&token);
    let expected_stats = [
        (0, (2, 2, 0), 3 + 1, vec![(&native, 913), (&cw20, 243)]),
        (1, (1, 1, 0), 2, vec![(&native, 182), (&cw20, 242)]),
        (2, (2, 1, 1), 1, vec![(&native, 121)]),
    ];
    for (i, (contributed, accepted, rejected), usage, earned) in expected_stats {
        let stats: ContributorStats = datanets
            .query(&datanet::QueryMsg::ContributorStats {
                contributor: contributors[i].address().to_string(),
            })
            .await
            .unwrap();
        let name = format!("contributor{}", i + 1);
        assert_eq!(
            (
                stats.contributed,
                stats.accepted,
                stats.rejected,
                stats.usage
            ),
            (contributed, accepted, rejected, usage),
            "{name}"
        );
        assert_eq!(
            earnings(&stats.earned),
            earned
                .into_iter()
                .map(|(asset, amount)| (asset.key(), amount))
                .collect(),
            "{name}"
        );
    }
}

/// Pays for an inference in utrib; returns the request id and the transaction.
async fn pay_native(
    payouts: &PayoutContract<'_>,
    payer: &Signer,
    model_id: u64,
    version: u32,
    prompt: &str,
    amount: u128,
) -> (u64, TxOutcome) {
    let outcome = payouts
        .execute(
            payer,
            &payout::ExecuteMsg::RequestInference {
                model_id,
                version,
                prompt_hash: hash(prompt),
            },
            utrib(amount),
        )
        .await
        .unwrap();
    let requested = InferenceRequested::from_events(&outcome.events, payouts.address()).unwrap();
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0].amount, NATIVE_PRICE);
    (requested[0].request_id, outcome)
}

async fn cw20_balance(client: &Client, token: &str, address: &str) -> u128 {
    let response: cw20::BalanceResponse = client
        .query_contract(
            token,
            &cw20::Cw20QueryMsg::Balance {
                address: address.to_string(),
            },
        )
        .await
        .unwrap();
    response.balance.u128()
}

/// What the payout contract holds for `address`: (utrib, cw20).
async fn owed(payouts: &PayoutContract<'_>, token: &str, address: &str) -> (u128, u128) {
    let mut owed = (0, 0);
    for earning in payouts.balances(address).await.unwrap().balances {
        if earning.asset == AssetInfo::native("utrib") {
            owed.0 += earning.amount.u128();
        } else if earning.asset == AssetInfo::cw20(token) {
            owed.1 += earning.amount.u128();
        } else {
            panic!("{address} is owed an unexpected asset: {earning:?}");
        }
    }
    owed
}

/// Earnings by asset key (`native:<denom>`, `cw20:<address>`).
fn earnings(earned: &[Earning]) -> BTreeMap<String, u128> {
    earned
        .iter()
        .map(|e| (e.asset.key(), e.amount.u128()))
        .collect()
}

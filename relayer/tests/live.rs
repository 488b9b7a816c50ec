//! The relayer against a real `tributaryd`: paid requests (utrib and cw20) served through its
//! gateway, attributed by a really trained model, committed in signed batches, finalized by the
//! relayer itself, and every party credited by the split. Needs the node binary
//! (`TRIBUTARYD=$(chain/build)`) and the contract artifacts (`ci/build-wasm`).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{prompt, submit, submit_until_served, RelayerProcess, World, PRICE, SPLIT};
use cosmwasm_std::Uint128;
use tributary_types::payout::RequestStatus;
use tributary_types::split::settle;
use tributary_types::AssetInfo;

/// Sums what every contributor is owed by the agreed packets of `ids`, with the split rule of
/// `tributary_types::split` and one operator.
async fn expected_contributor_shares(world: &World, ids: &[u64]) -> BTreeMap<String, u128> {
    let payout = world.client.payout(&world.payout);
    let mut owed: BTreeMap<String, u128> = BTreeMap::new();
    for &id in ids {
        let commits = payout.commits(id).await.unwrap();
        assert_eq!(commits.len(), 1, "request {id}: one attestor, one commit");
        let packet: tributary_types::AttributionPacket = payout
            .query(&tributary_types::payout::QueryMsg::Packet {
                request_id: id,
                packet_hash: commits[0].packet_hash.clone(),
            })
            .await
            .unwrap();
        let settled = settle(Uint128::new(PRICE), &SPLIT, &packet.entries, 1).unwrap();
        for (contribution, amount) in settled.contributions {
            *owed
                .entry(world.contributors[&contribution].clone())
                .or_default() += amount.u128();
        }
    }
    owed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_requests_are_served_committed_finalized_and_paid() {
    let world = World::start(4000, 400, 2).await;
    let model_id = world.register(&["operator"], 1).await;
    let home = world.relayer_config(
        "operator",
        0,
        &[(model_id, 1), (model_id, 2)],
        &world.in_process_engine(),
    );
    let relayer = RelayerProcess::start(&home);
    relayer.wait_ready().await;

    let prompts: Vec<String> = (0..5).map(prompt).collect();
    let mut ids = world.pay(model_id, &prompts).await;
    assert_eq!(ids.len(), 5);
    let cw20_prompt = "Question cw20: what is a pipe?".to_string();
    let cw20_id = world.pay_cw20(model_id, &cw20_prompt).await;

    // The gateway refuses what is not paid, or paid for another prompt.
    let (status, body) = submit(&home.gateway, 9_999, "unpaid").await.unwrap();
    assert_eq!(status, 402, "{body}");
    let (status, body) = submit(&home.gateway, ids[0], "another prompt")
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("prompt_hash"),
        "{body}"
    );

    for (id, p) in ids.iter().zip(&prompts) {
        let response = submit_until_served(&home.gateway, *id, p, Duration::from_secs(30)).await;
        assert_eq!(response["request_id"], *id);
        assert_eq!(response["packet"]["request_id"], *id);
        assert_eq!(response["packet"]["model_version"], 1);
        assert!(!response["attribution"]["top"]
            .as_array()
            .unwrap()
            .is_empty());
    }
    let response = submit_until_served(
        &home.gateway,
        cw20_id,
        &cw20_prompt,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(response["packet"]["model_version"], 2);
    ids.push(cw20_id);

    // The relayer commits, waits out the challenge window and finalizes on its own.
    world.wait_finalized(&ids, Duration::from_secs(90)).await;

    // Every contributor is owed exactly the split of the agreed packets.
    let native: Vec<u64> = ids[..5].to_vec();
    let expected_native = expected_contributor_shares(&world, &native).await;
    let expected_cw20 = expected_contributor_shares(&world, &[cw20_id]).await;
    let payout = world.client.payout(&world.payout);
    assert!(!expected_native.is_empty());
    for address in world
        .contributors
        .values()
        .collect::<std::collections::BTreeSet<_>>()
    {
        let balances = payout.balances(address).await.unwrap().balances;
        let owed = |asset: &AssetInfo| {
            balances
                .iter()
                .find(|b| &b.asset == asset)
                .map_or(0, |b| b.amount.u128())
        };
        assert_eq!(
            owed(&AssetInfo::native("utrib")),
            expected_native.get(address).copied().unwrap_or(0),
            "{address} native"
        );
        assert_eq!(
            owed(&AssetInfo::cw20(&world.token)),
            expected_cw20.get(address).copied().unwrap_or(0),
            "{address} cw20"
        );
    }
    // The operator's share of every request is its own to claim.
    let operator = world.signer("operator");
    let operator_owed = payout
        .balances(operator.address().as_ref())
        .await
        .unwrap()
        .balances;
    let one = settle(Uint128::new(PRICE), &SPLIT, &[], 1)
        .unwrap()
        .operators[0]
        .u128();
    assert!(operator_owed
        .iter()
        .any(|b| b.asset == AssetInfo::native("utrib") && b.amount.u128() == 5 * one));

    // A contributor claims and its bank balance rises by what it was owed, less the fee.
    let (address, owed) = expected_native.iter().next().unwrap();
    let name = ["contributor1", "contributor2", "contributor3"]
        .into_iter()
        .find(|n| world.signer(n).address().as_ref() == address)
        .unwrap();
    let before = world.client.balance(address, "utrib").await.unwrap();
    let claim = payout.claim(&world.signer(name)).await.unwrap();
    let after = world.client.balance(address, "utrib").await.unwrap();
    assert_eq!(after + claim.fee.amount, before + owed);

    // Metrics tell the same story.
    assert_eq!(
        relayer
            .metric("tributary_relayer_packets_committed_total")
            .await,
        6.0
    );
    assert_eq!(
        relayer
            .metric("tributary_relayer_requests_seen_total")
            .await,
        6.0
    );
    assert!(relayer.metric("tributary_relayer_fees_spent_total").await > 0.0);
    for id in &ids {
        assert_eq!(
            payout.request(*id).await.unwrap().status,
            RequestStatus::Finalized
        );
    }
    // `status` asks the running relayer.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tributary-relayer"))
        .args(["status", "--json", "--config"])
        .arg(&home.config)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["counts"]["committed"], 6, "{report}");
}

//! The relayer against a real `tributaryd`: paid requests (utrib and cw20) served through its
//! gateway, attributed by a really trained model, committed in signed batches, finalized by the
//! relayer itself, and every party credited by the split. Needs the node binary
//! (`TRIBUTARYD=$(chain/build)`) and the contract artifacts (`ci/build-wasm`).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    paid_txs, prompt, serial, submit, submit_until_served, submit_with, Batching, Chaos,
    RelayerProcess, World, PRICE, SPLIT,
};
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
    let _serial = serial().await;
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

/// Requests paid in transactions of ten.
async fn pay_many(world: &World, model_id: u64, from: usize, count: usize) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for start in (from..from + count).step_by(10) {
        let prompts: Vec<String> = (start..(start + 10).min(from + count))
            .map(prompt)
            .collect();
        let ids = world.pay(model_id, &prompts).await;
        out.extend(ids.into_iter().zip(prompts));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_and_a_node_restart_commit_every_request_exactly_once() {
    let _serial = serial().await;
    let world = World::start(4100, 400, 2).await;
    let model_id = world.register(&["operator"], 1).await;
    let operator = world.signer("operator").address().to_string();
    // Commits of two packets, four in flight: the crashes land with several broadcasts open.
    let pipelined = Batching {
        max_packets: 2,
        max_in_flight: 4,
        ..Batching::default()
    };
    let home = world.relayer_config_with(
        "operator",
        0,
        &[(model_id, 1)],
        &world.in_process_engine(),
        &pipelined,
    );
    let balance_before = world.client.balance(&operator, "utrib").await.unwrap();
    let sequence_before = world.client.account(&operator).await.unwrap().sequence;

    // First the three moments that matter, exactly: the process dies after recording a commit
    // but before sending it, after sending it, and after it is in a block but before the
    // outbox knows.
    let mut process = RelayerProcess::start(&home);
    process.kill();
    let mut requests = Vec::new();
    for (round, failpoint) in ["before_broadcast", "after_broadcast", "before_confirm"]
        .into_iter()
        .enumerate()
    {
        process.restart_with_failpoint(Some(failpoint));
        let paid = pay_many(&world, model_id, round * 2, 2).await;
        // The process may abort at its failpoint before it serves these (settling an earlier
        // round's transaction): they are served again after the rounds.
        for (id, p) in &paid {
            let _ = submit(&home.gateway, *id, p).await;
        }
        requests.extend(paid);
        assert!(
            process.wait_exit(Duration::from_secs(60)).await,
            "the relayer did not reach {failpoint}:\n{}",
            process.log()
        );
        assert_eq!(
            process.log().matches("aborting at failpoint").count(),
            round + 1,
            "{failpoint}"
        );
    }
    process.restart();
    process.wait_ready().await;
    for (id, p) in &requests {
        submit_until_served(&home.gateway, *id, p, Duration::from_secs(60)).await;
    }
    let relayer = std::sync::Arc::new(tokio::sync::Mutex::new(process));

    // A chaos task kills the relayer with SIGKILL at random moments and restarts it.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let kills = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let chaos = {
        let (relayer, stop, kills) = (relayer.clone(), stop.clone(), kills.clone());
        tokio::spawn(async move {
            let mut chaos = Chaos::from_env_or_time();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(chaos.millis(300, 2500)).await;
                relayer.lock().await.kill();
                kills.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(chaos.millis(100, 1000)).await;
                relayer.lock().await.restart();
            }
        })
    };

    let gateway = home.gateway.clone();
    let paid = pay_many(&world, model_id, 6, 30).await;
    requests.extend(paid.iter().cloned());
    for (id, p) in &paid {
        submit_until_served(&gateway, *id, p, Duration::from_secs(60)).await;
    }
    // The node goes down hard and comes back while the relayer works. Until the restarted
    // node commits a new block it cannot simulate (no block time yet), so wait for one.
    let height = world.client.latest_height().await.unwrap();
    world.devnet.kill_node(0).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    world.devnet.start_node(0).unwrap();
    world
        .devnet
        .wait_for_height(0, height + 2, Duration::from_secs(60))
        .await
        .unwrap();
    let more = pay_many(&world, model_id, 36, 30).await;
    for (id, p) in &more {
        submit_until_served(&gateway, *id, p, Duration::from_secs(60)).await;
    }
    requests.extend(more);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    chaos.await.unwrap();
    let kills = kills.load(std::sync::atomic::Ordering::SeqCst);
    assert!(kills >= 3, "only {kills} kills");

    let ids: Vec<u64> = requests.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 66);
    let log = relayer.lock().await.log();
    tokio::time::timeout(
        Duration::from_secs(180),
        world.wait_finalized(&ids, Duration::from_secs(180)),
    )
    .await
    .unwrap_or_else(|_| panic!("not all finalized; relayer log:\n{log}"));

    // Exactly one commit per request, in transactions that all succeeded.
    let payout = world.client.payout(&world.payout);
    for id in &ids {
        let commits = payout.commits(*id).await.unwrap();
        assert_eq!(commits.len(), 1, "request {id}");
        assert_eq!(commits[0].attestor.as_str(), operator);
    }
    let txs = paid_txs(&world.client, &operator).await;
    let failed: Vec<&common::PaidTx> = txs.iter().filter(|t| t.code != 0).collect();
    assert!(failed.is_empty(), "failed transactions: {failed:?}");
    let committed: usize = txs.iter().map(|t| t.new_commits).sum();
    let repeated: usize = txs.iter().map(|t| t.duplicate_commits).sum();
    assert_eq!(committed, ids.len(), "every packet committed once");
    assert_eq!(repeated, 0, "no packet re-sent in a block");
    // Every fee the key paid is one of these transactions', and each signed transaction is one
    // of them: nothing was spent on a transaction that did not do its work.
    let fees: u128 = txs.iter().map(|t| t.fee).sum();
    let balance_after = world.client.balance(&operator, "utrib").await.unwrap();
    assert_eq!(balance_before - balance_after, fees);
    let sequence_after = world.client.account(&operator).await.unwrap().sequence;
    assert_eq!((sequence_after - sequence_before) as usize, txs.len());
    let commit_txs = txs.iter().filter(|t| t.new_commits > 0).count();
    eprintln!(
        "{kills} kills; {} packets in {commit_txs} commit transactions; {} transactions, {fees} utrib in fees",
        committed,
        txs.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_attestors_reach_quorum_and_a_different_packet_is_a_dispute() {
    let _serial = serial().await;
    let world = World::start(4200, 400, 2).await;
    let model_id = world.register(&["operator", "attestor2"], 2).await;
    let homes = [
        world.relayer_config("operator", 0, &[(model_id, 1)], &world.in_process_engine()),
        world.relayer_config("attestor2", 1, &[(model_id, 1)], &world.in_process_engine()),
    ];
    let relayers: Vec<RelayerProcess> = homes.iter().map(RelayerProcess::start).collect();
    for r in &relayers {
        r.wait_ready().await;
    }
    let prompts: Vec<String> = (0..3).map(prompt).collect();
    let ids = world.pay(model_id, &prompts).await;
    // Both attestors serve the first two requests as paid.
    for home in &homes {
        for (id, p) in ids[..2].iter().zip(&prompts) {
            submit_until_served(&home.gateway, *id, p, Duration::from_secs(30)).await;
        }
    }
    // The payer cannot steer the second attestor to another completion: the sampling of a
    // paid request is fixed.
    let (status, body) = submit_with(
        &homes[1].gateway,
        serde_json::json!({"request_id": ids[2], "prompt": prompts[2], "seed": 7}),
    )
    .await
    .unwrap();
    assert_eq!(status, 422, "{body}");
    // The third is served by the first attestor; the second commits another packet for it
    // (another completion) straight to the contract.
    let first = submit_until_served(
        &homes[0].gateway,
        ids[2],
        &prompts[2],
        Duration::from_secs(30),
    )
    .await;
    let mut other: tributary_types::AttributionPacket =
        serde_json::from_value(first["packet"].clone()).unwrap();
    other.output_hash = tributary_types::sha256(b"another completion")
        .to_vec()
        .into();
    world
        .client
        .payout(&world.payout)
        .commit_attribution(&world.signer("attestor2"), vec![other])
        .await
        .unwrap();

    world
        .wait_finalized(&ids[..2], Duration::from_secs(90))
        .await;
    let payout = world.client.payout(&world.payout);
    // Both operators share the operators' part of each finalized request.
    let split = settle(Uint128::new(PRICE), &SPLIT, &[], 2).unwrap();
    let mut shares: Vec<u128> = Vec::new();
    for name in ["operator", "attestor2"] {
        let address = world.signer(name).address().to_string();
        let owed = payout.balances(&address).await.unwrap().balances;
        shares.push(owed.iter().map(|b| b.amount.u128()).sum());
    }
    shares.sort();
    let mut expected: Vec<u128> = split.operators.iter().map(|s| 2 * s.u128()).collect();
    expected.sort();
    assert_eq!(shares, expected);

    // The third request: two packets, no quorum, disputed and never finalized.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let request = payout.request(ids[2]).await.unwrap();
        if request.distinct_packets == 2 {
            assert_eq!(request.status, RequestStatus::Disputed);
            assert_eq!(request.agreed_packet, None);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{request:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(payout.commits(ids[2]).await.unwrap().len(), 2);
}

/// The secret the relayer and its engine share in the http-mode test.
const ENGINE_TOKEN: &str = "the-relayer-and-its-engine-share-this-0123456789";

/// The engine's own gateway in this process, on `address`, answering callers with `token`,
/// until `stop` fires.
fn serve_engine(world: &World, address: &str, token: &str) -> tokio::sync::oneshot::Sender<()> {
    use tributary_attrib::engine::Engine;
    use tributary_attrib::serve::{
        router, serve_with_shutdown, AccessToken, CompletionService, GatewayConfig, ServedModel,
        Unchecked,
    };
    let engine = Engine::open(&world.model_dir, &world.index_dir).unwrap();
    let app = router(
        std::sync::Arc::new(CompletionService::new(
            vec![ServedModel {
                name: "systems".into(),
                engine,
            }],
            std::sync::Arc::new(Unchecked),
            GatewayConfig::default(),
        )),
        Some(AccessToken::new(token).unwrap()),
    );
    let listener = std::net::TcpListener::bind(address).unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_with_shutdown(listener, app, async move {
        let _ = stopped.await;
    }));
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_waits_while_the_engine_is_down_and_resumes_when_it_is_back() {
    let _serial = serial().await;
    let world = World::start(4300, 400, 2).await;
    let model_id = world.register(&["operator"], 1).await;
    let engine_address = format!("127.0.0.1:{}", 20_000 + world.port_offset + 99);
    let token_file = world.dir.join("engine.token");
    std::fs::write(&token_file, ENGINE_TOKEN).unwrap();
    let engine = format!(
        "[engine]\nmode = \"http\"\nurl = \"http://{engine_address}\"\nmodel_name = \"systems\"\nauth_token_file = \"{}\"",
        token_file.display()
    );
    let home = world.relayer_config("operator", 0, &[(model_id, 1)], &engine);

    // Pointed at the wrong chain, the relayer refuses to start and says why.
    let wrong = home.config.with_file_name("wrong-chain.toml");
    let text = std::fs::read_to_string(&home.config).unwrap();
    std::fs::write(
        &wrong,
        text.replace(&world.devnet.chain_id, "some-other-chain"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tributary-relayer"))
        .args(["start", "--config"])
        .arg(&wrong)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "node is on chain \"{}\", the configuration expects \"some-other-chain\"",
            world.devnet.chain_id
        )),
        "{stderr}"
    );

    let relayer = RelayerProcess::start(&home);
    relayer.wait_ready().await;

    let prompts: Vec<String> = (0..3).map(prompt).collect();
    let ids = world.pay(model_id, &prompts).await;
    // The engine is down: the payer hears so, the prompt is kept, and the first submission
    // gets the token that reads the completion later.
    let mut tokens = Vec::new();
    for (id, p) in ids.iter().zip(&prompts) {
        let (status, body) = submit(&home.gateway, *id, p).await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("unavailable"),
            "{body}"
        );
        tokens.push(body["token"].as_str().expect("a token").to_string());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let payout = world.client.payout(&world.payout);
    for id in &ids {
        assert_eq!(
            payout.request(*id).await.unwrap().status,
            RequestStatus::Open
        );
    }
    assert!(relayer.metric("tributary_relayer_retries_total").await >= 1.0);

    // Back up: every request is attributed from its kept prompt, without the payer resending.
    let _engine = serve_engine(&world, &engine_address, ENGINE_TOKEN);
    world.wait_finalized(&ids, Duration::from_secs(90)).await;
    // The payer reads its completion by request id, with its token; nobody else can.
    let read = |token: Option<&str>| {
        let mut request =
            reqwest::Client::new().get(format!("{}/v1/requests/{}", home.gateway, ids[0]));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(read(None).await.unwrap().status().as_u16(), 401);
    assert_eq!(read(Some(&tokens[1])).await.unwrap().status().as_u16(), 401);
    let stored = read(Some(&tokens[0])).await.unwrap();
    assert_eq!(stored.status().as_u16(), 200);
    let body: serde_json::Value = serde_json::from_slice(&stored.bytes().await.unwrap()).unwrap();
    assert_eq!(body["packet"]["request_id"], ids[0]);
}

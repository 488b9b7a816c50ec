//! Open verification with real processes: a `tributaryd` devnet, an owner-run attestor whose
//! engine pays a sock puppet, an honest attestor, and four `tributary-relayer verify`
//! processes that recompute packets with their own engine (one scan thread, where the
//! attestors' engines use the machine's default) and sit on committees.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::Json;
use common::*;
use cosmwasm_std::{HexBinary, Uint128};
use tributary_attrib::engine::Engine;
use tributary_attrib::serve::{CompletionService, GatewayConfig, ServedModel, Unchecked};
use tributary_attrib_api::{CompletionRequest, Sampling, SamplingRequest};
use tributary_client::coin;
use tributary_types::batch::{BatchInfo, BatchStatus, BatchesResponse};
use tributary_types::payout::{ExecuteMsg, QueryMsg, RequestStatus};
use tributary_types::split::settle;
use tributary_types::verification::{
    BondInfo, ChallengeInfo, ChallengeOutcome, VerificationParams,
};
use tributary_types::voucher::sampling_id;
use tributary_types::{AttributionEntry, AttributionPacket};

/// The secret the dishonest attestor and its engine share.
const ENGINE_TOKEN: &str = "the-owner-and-its-engine-share-this-0123456789";
/// What the owner bonds as an attestor.
const OWNER_BOND: u128 = 4_000_000;

fn engine_service(world: &World) -> Arc<CompletionService> {
    let engine = Engine::open(&world.model_dir, &world.index_dir).unwrap();
    Arc::new(CompletionService::new(
        vec![ServedModel {
            name: "systems".into(),
            engine,
        }],
        Arc::new(Unchecked),
        GatewayConfig::default(),
    ))
}

/// The owner's engine: the real one, except that every packet hands all the contributors'
/// share to `puppet`. Everything else in the packet (weights, method, completion hash) is
/// what the chain expects, so the commit is accepted.
fn serve_forging_engine(world: &World, address: &str, puppet: u64) {
    let service = engine_service(world);
    let app = axum::Router::new().route(
        "/v1/completions",
        axum::routing::post(
            move |_headers: HeaderMap, Json(request): Json<CompletionRequest>| {
                let service = service.clone();
                async move {
                    let mut response = (*service.complete(&request).await.unwrap()).clone();
                    if let Some(packet) = response.packet.as_mut() {
                        packet.entries = vec![AttributionEntry {
                            contribution_id: puppet,
                            weight_bps: 10_000,
                        }];
                    }
                    Json(response)
                }
            },
        ),
    );
    let listener = std::net::TcpListener::bind(address).unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
}

/// Serves the owner's forging engine ([`serve_forging_engine`]) for the world's last
/// contribution, the sock puppet, which the honest packets must not pay alone; returns the
/// puppet and the relayer's `[engine]` section that calls the forging engine.
fn forging_engine(world: &World) -> (u64, String) {
    let puppet = *world.contributors.keys().last().unwrap();
    let engine_address = format!("127.0.0.1:{}", 20_000 + world.port_offset + 99);
    serve_forging_engine(world, &engine_address, puppet);
    let token_file = world.dir.join("engine.token");
    std::fs::write(&token_file, ENGINE_TOKEN).unwrap();
    let section = format!(
        "[engine]\nmode = \"http\"\nurl = \"http://{engine_address}\"\nmodel_name = \"systems\"\nauth_token_file = \"{}\"",
        token_file.display()
    );
    (puppet, section)
}

/// The owner's account, bonded with `OWNER_BOND` as an attestor.
async fn bonded_owner(world: &World) -> tributary_client::Signer {
    let owner = world.signer("operator");
    world
        .client
        .payout(&world.payout)
        .execute(
            &owner,
            &ExecuteMsg::Bond {},
            vec![coin(OWNER_BOND, "utrib").unwrap()],
        )
        .await
        .unwrap();
    owner
}

/// Four `verify` processes (one scan thread each) recomputing `models`, reading inputs from
/// these attestors' gateways; returns once each has bonded itself.
async fn start_verifiers(
    world: &World,
    models: &[(u64, u32)],
    sources: &[(&RelayerHome, &str)],
) -> Vec<(Account, RelayerProcess)> {
    let mut config = "\n[verifier]\nsample_rate = 1.0\npoll_ms = 500\n".to_string();
    for (home, attestor) in sources {
        config.push_str(&format!(
            "\n[[verifier.sources]]\nurl = \"{}\"\nattestor = \"{attestor}\"\n",
            home.gateway
        ));
    }
    let mut verifiers = Vec::new();
    for i in 0..4u16 {
        let account = world.new_account(&format!("verifier{i}"), 20_000_000).await;
        let home = world.relayer_config_for(
            &account,
            2 + i,
            models,
            &world.in_process_engine(),
            &Batching::default(),
            &config,
        );
        verifiers.push((
            account,
            RelayerProcess::verify(&home, &[("TRIBUTARY_SCAN_THREADS", "1")]),
        ));
    }
    for (_, p) in &verifiers {
        p.wait_ready().await;
    }
    // Every verifier bonds itself at start.
    let payout = world.client.payout(&world.payout);
    let params: VerificationParams = payout.query(&QueryMsg::Verification {}).await.unwrap();
    for (account, p) in &verifiers {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let bond: BondInfo = payout
                .query(&QueryMsg::BondOf {
                    address: account.address.clone(),
                })
                .await
                .unwrap();
            if bond.active >= params.min_verifier_bond {
                break;
            }
            assert!(Instant::now() < deadline, "not bonded:\n{}", p.log());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    verifiers
}

/// The packet an honest engine in this process computes for a paid request, or for a voucher
/// inference when `request_id` is its sampling id.
async fn honest_packet(
    service: &CompletionService,
    request_id: u64,
    model_id: u64,
    prompt: &str,
) -> AttributionPacket {
    let request = CompletionRequest {
        model: "systems".into(),
        prompt: prompt.into(),
        sampling: SamplingRequest::exactly(&Sampling::for_paid_request(request_id)),
        request_id: Some(request_id),
        model_id: Some(model_id),
        model_version: Some(1),
        method: Some(tributary_attrib::index::Method::Preconditioned.id().into()),
    };
    service
        .complete(&request)
        .await
        .unwrap()
        .packet
        .clone()
        .unwrap()
}

fn hash(packet: &AttributionPacket) -> HexBinary {
    HexBinary::from(packet.packet_hash().unwrap().as_slice())
}

async fn challenge_of(world: &World, request_id: u64) -> Option<ChallengeInfo> {
    world
        .client
        .payout(&world.payout)
        .query(&QueryMsg::ChallengeOf { request_id })
        .await
        .unwrap()
}

/// Waits until request `id`'s challenge is resolved and returns it.
async fn resolved(
    world: &World,
    id: u64,
    within: Duration,
    logs: &[&RelayerProcess],
) -> ChallengeInfo {
    let deadline = Instant::now() + within;
    loop {
        if let Some(c) = challenge_of(world, id).await {
            if c.outcome.is_some() {
                return c;
            }
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|p| p.log()).collect();
            panic!(
                "request {id} not resolved: {:?}\n{}",
                challenge_of(world, id).await,
                logs.join("\n----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn claimable(world: &World, address: &str) -> u128 {
    let balances = world
        .client
        .payout(&world.payout)
        .balances(address)
        .await
        .unwrap()
        .balances;
    balances
        .iter()
        .filter(|b| b.asset == tributary_types::AssetInfo::native("utrib"))
        .map(|b| b.amount.u128())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifiers_catch_a_forged_packet_and_reject_a_frivolous_challenge() {
    let _serial = serial().await;
    let world = World::start(4400, 400, 20).await;
    let payout = world.client.payout(&world.payout);
    // The owner runs the only attestor of its model; an independent operator attests a
    // second model on the same weights.
    let owned = world.register(&["operator"], 1).await;
    let independent = world.register(&["attestor2"], 1).await;
    let owner = bonded_owner(&world).await;

    let (puppet, forging) = forging_engine(&world);
    let owner_home = world.relayer_config("operator", 0, &[(owned, 1)], &forging);
    let honest_home = world.relayer_config(
        "attestor2",
        1,
        &[(independent, 1)],
        &world.in_process_engine(),
    );
    let owner_relayer = RelayerProcess::start(&owner_home);
    let honest_relayer = RelayerProcess::start(&honest_home);

    // Four verifiers reading prompts from both attestors' gateways.
    for p in [&owner_relayer, &honest_relayer] {
        p.wait_ready().await;
    }
    let verifiers = start_verifiers(
        &world,
        &[(owned, 1), (independent, 1)],
        &[
            (&owner_home, owner.address().as_ref()),
            (&honest_home, world.signer("attestor2").address().as_ref()),
        ],
    )
    .await;
    let params: VerificationParams = payout.query(&QueryMsg::Verification {}).await.unwrap();

    // ---- the forged packet
    let prompt = prompt(0);
    let id = world.pay(owned, std::slice::from_ref(&prompt)).await[0];
    let served =
        submit_until_served(&owner_home.gateway, id, &prompt, Duration::from_secs(30)).await;
    let forged: AttributionPacket = serde_json::from_value(served["packet"].clone()).unwrap();
    let service = engine_service(&world);
    let honest = honest_packet(&service, id, owned, &prompt).await;
    assert_ne!(
        hash(&forged),
        hash(&honest),
        "the honest packet pays the puppet alone"
    );

    let logs: Vec<&RelayerProcess> = verifiers.iter().map(|(_, p)| p).collect();
    let challenge = resolved(&world, id, Duration::from_secs(120), &logs).await;
    assert_eq!(challenge.outcome, Some(ChallengeOutcome::Upheld));
    assert_eq!(challenge.agreed_packet, hash(&forged));
    // The verifier recomputed, in another process and with another thread count, exactly the
    // packet this process computes.
    assert_eq!(challenge.challenger_packet, hash(&honest));
    assert_eq!(challenge.committee.len(), 3);
    assert_eq!(challenge.votes.len(), 3);
    // Half the owner's bond is gone.
    let bond: BondInfo = payout
        .query(&QueryMsg::BondOf {
            address: owner.address().to_string(),
        })
        .await
        .unwrap();
    assert_eq!(bond.active.u128(), OWNER_BOND / 2);
    assert_eq!(challenge.slashed.u128(), OWNER_BOND / 2);

    // The request settles by the honest packet: the contributors get its split, the puppet
    // only what the honest packet gives it, the owner's attestor nothing.
    world.wait_finalized(&[id], Duration::from_secs(60)).await;
    let settled = settle(Uint128::new(PRICE), &SPLIT, &honest.entries, 1).unwrap();
    let settlement = payout.request(id).await.unwrap().settlement.unwrap();
    assert_eq!(settlement, settled);
    assert_eq!(claimable(&world, owner.address().as_ref()).await, 0);
    let challenger = challenge.challenger.to_string();
    let rewards = params.vote_reward.u128() * 3;
    let rest = OWNER_BOND / 2 - rewards;
    assert_eq!(
        claimable(&world, &challenger).await,
        params.challenge_bond.u128() + rest / 2 + settled.operators[0].u128()
    );
    for member in &challenge.committee {
        assert_eq!(
            claimable(&world, member.as_str()).await,
            params.vote_reward.u128()
        );
    }

    // ---- a frivolous challenge of an honest packet
    // The owner leaves: unbonding, it no longer counts as a verifier for committees.
    payout
        .execute(
            &owner,
            &ExecuteMsg::Unbond {
                amount: Uint128::new(OWNER_BOND / 2),
            },
            vec![],
        )
        .await
        .unwrap();
    let prompt = common::prompt(1);
    let id = world.pay(independent, std::slice::from_ref(&prompt)).await[0];
    let served =
        submit_until_served(&honest_home.gateway, id, &prompt, Duration::from_secs(30)).await;
    let agreed: AttributionPacket = serde_json::from_value(served["packet"].clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while payout.request(id).await.unwrap().status != RequestStatus::Attested {
        assert!(Instant::now() < deadline, "{}", honest_relayer.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let troll = world.new_account("troll", 20_000_000).await;
    let troll_signer = tributary_client::Signer::from_mnemonic(&troll.mnemonic, "trib").unwrap();
    payout
        .execute(
            &troll_signer,
            &ExecuteMsg::Bond {},
            vec![coin(params.min_verifier_bond.u128(), "utrib").unwrap()],
        )
        .await
        .unwrap();
    let mut wrong = agreed.clone();
    wrong.entries = vec![AttributionEntry {
        contribution_id: puppet,
        weight_bps: 10_000,
    }];
    payout
        .execute(
            &troll_signer,
            &ExecuteMsg::Challenge {
                request_id: id,
                packet: wrong,
            },
            vec![coin(params.challenge_bond.u128(), "utrib").unwrap()],
        )
        .await
        .unwrap();
    // The troll does not reveal; the honest attestor does, and the committee recomputes.
    let mut logs = logs;
    logs.push(&honest_relayer);
    let challenge = resolved(&world, id, Duration::from_secs(120), &logs).await;
    assert_eq!(challenge.outcome, Some(ChallengeOutcome::Rejected));
    assert_eq!(challenge.slashed, params.challenge_bond);
    world.wait_finalized(&[id], Duration::from_secs(60)).await;
    assert_eq!(claimable(&world, &troll.address).await, 0);
    let rest = params.challenge_bond.u128() - 3 * params.vote_reward.u128();
    let operators = settle(Uint128::new(PRICE), &SPLIT, &agreed.entries, 1)
        .unwrap()
        .operators[0]
        .u128();
    assert_eq!(
        claimable(&world, world.signer("attestor2").address().as_ref()).await,
        rest / 2 + operators
    );

    // The verifiers say what they did.
    let mut checked = 0.0;
    let mut challenges = 0.0;
    for (_, p) in &verifiers {
        checked += p.metric("tributary_verifier_checked").await;
        challenges += p.metric("tributary_verifier_challenges").await;
    }
    assert!(checked >= 2.0, "checked {checked}");
    assert_eq!(challenges, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifiers_catch_forged_results_in_a_settlement_batch() {
    let _serial = serial().await;
    let world = World::start(5200, 400, 20).await;
    let payout = world.client.payout(&world.payout);
    // The owner runs the only attestor of its model and settles voucher inferences in batches
    // of two; its engine forges every result.
    let owned = world.register(&["operator"], 1).await;
    let owner = bonded_owner(&world).await;
    let (puppet, forging) = forging_engine(&world);
    let account = world.devnet_account("operator");
    let owner_home = world.relayer_config_for(
        &account,
        0,
        &[(owned, 1)],
        &forging,
        &Batching::default(),
        "\n[vouchers]\nmax_batch = 2\nmax_delay_ms = 300\n",
    );
    // The verifiers are given no source: they read the attestor's gateway from the registry.
    publish_gateway(&owner_home);
    let owner_relayer = RelayerProcess::start(&owner_home);
    owner_relayer.wait_ready().await;
    let verifiers = start_verifiers(&world, &[(owned, 1)], &[]).await;

    // A payer deposits once and is served two inferences against vouchers.
    let user = world.signer("user");
    payout
        .deposit(&user, vec![coin(10 * PRICE, "utrib").unwrap()])
        .await
        .unwrap();
    let mut series = world.voucher_series("user", &account.address, owned);
    let prompts = [prompt(0), prompt(1)];
    let mut forged = Vec::new();
    for p in &prompts {
        let served = serve(&owner_home.gateway, &series.next(p)).await;
        forged.push(serde_json::from_value::<AttributionPacket>(served["packet"].clone()).unwrap());
    }
    // They are settled in one batch.
    let deadline = Instant::now() + Duration::from_secs(60);
    let batch: BatchInfo = loop {
        let page: BatchesResponse = payout
            .query(&QueryMsg::Batches {
                start_after: None,
                limit: None,
            })
            .await
            .unwrap();
        if let Some(batch) = page.batches.into_iter().next() {
            break batch;
        }
        assert!(
            Instant::now() < deadline,
            "no batch:\n{}",
            owner_relayer.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(batch.count, 2);

    // What an honest engine computes for each, under its voucher's sampling id.
    let service = engine_service(&world);
    let payer = user.address().to_string();
    let mut logs: Vec<&RelayerProcess> = verifiers.iter().map(|(_, p)| p).collect();
    logs.push(&owner_relayer);
    let mut honest = Vec::new();
    for (index, p) in prompts.iter().enumerate() {
        let request_id = batch.first_request_id + index as u64;
        let id = sampling_id(&payer, owned, 1, index as u64 + 1);
        let mut packet = honest_packet(&service, id, owned, p).await;
        assert_ne!(
            packet.entries, forged[index].entries,
            "the honest result pays the puppet alone"
        );
        assert!(!packet.entries.iter().all(|e| e.contribution_id == puppet));
        packet.request_id = request_id;
        let mut agreed = forged[index].clone();
        agreed.request_id = request_id;

        // Each forged result is challenged with its proof, and the committee recomputes the
        // inference under its sampling id (it was never a request before the challenge).
        let challenge = resolved(&world, request_id, Duration::from_secs(120), &logs).await;
        assert_eq!(challenge.outcome, Some(ChallengeOutcome::Upheld));
        assert_eq!(challenge.agreed_packet, hash(&agreed));
        assert_eq!(challenge.challenger_packet, hash(&packet));
        assert_eq!(challenge.committee.len(), 3);
        assert_eq!(challenge.votes.len(), 3);
        honest.push((request_id, packet));
    }
    // Two slashes of half the bond.
    let bond: BondInfo = payout
        .query(&QueryMsg::BondOf {
            address: owner.address().to_string(),
        })
        .await
        .unwrap();
    assert_eq!(bond.active.u128(), OWNER_BOND / 4);

    // Both settle by the honest results; the batch is finalized with nothing left for the
    // owner's attestor.
    let ids: Vec<u64> = honest.iter().map(|(id, _)| *id).collect();
    world.wait_finalized(&ids, Duration::from_secs(60)).await;
    for (id, packet) in &honest {
        let settled = settle(Uint128::new(PRICE), &SPLIT, &packet.entries, 1).unwrap();
        assert_eq!(
            payout.request(*id).await.unwrap().settlement.unwrap(),
            settled
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now: BatchInfo = payout
            .query(&QueryMsg::Batch { batch_id: batch.id })
            .await
            .unwrap();
        if now.status == BatchStatus::Finalized {
            let mut challenged = now.challenged.clone();
            challenged.sort();
            assert_eq!(challenged, ids);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "batch not finalized:\n{}",
            owner_relayer.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(claimable(&world, owner.address().as_ref()).await, 0);
    let mut challenges = 0.0;
    for (_, p) in &verifiers {
        challenges += p.metric("tributary_verifier_challenges").await;
    }
    assert_eq!(challenges, 2.0);
}

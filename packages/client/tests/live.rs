//! The client against real `tributaryd` devnets (one validator each, on their own ports).
//! Needs the binary (`TRIBUTARYD=$(chain/build)`) and the contract artifacts (`ci/build-wasm`).

mod common;

use common::{
    artifact, artifacts_dir, bank_send, content, hash, utrib, wait_for_block_time, LiveNet,
};
use cosmwasm_std::Uint128;
use futures::StreamExt;
use std::time::Duration;
use tributary_client::{
    contribution_ids, deploy, Client, Decimal, DeploySettings, Deployment, Error,
    InferenceRequested, NewDatanet, Signer, TxOptions, ARTIFACTS,
};
use tributary_types::datanet::{ContributionStatus, CurationPolicy};
use tributary_types::packet::{AttributionEntry, AttributionPacket, DatanetRoot};
use tributary_types::payout::RequestStatus;
use tributary_types::registry::{AttributionMethod, ModelVersionInput};
use tributary_types::{sha256, AssetInfo, FeeSplit, Price};

#[tokio::test]
async fn bank_sends_confirm_and_chain_failures_are_typed() {
    let net = LiveNet::start(2300, Some(300)).await;
    let client = net.client().await;
    let user = net.signer("user");
    let sender = user.address().to_string();
    let fresh = Signer::random("trib").unwrap();
    let recipient = fresh.address().to_string();

    // Many transactions of one signer in flight at once, each with simulated gas, all land:
    // each is signed at the next sequence while earlier ones still wait in the mempool (and a
    // simulation that falls between a commit and the mempool's recheck sees an older one).
    let operator = net.signer("operator");
    let sink = Signer::random("trib").unwrap().address().to_string();
    let pipelined =
        futures::future::join_all((0..12).map(|i| client.send(&operator, &sink, utrib(1 + i))))
            .await;
    for outcome in &pipelined {
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    assert_eq!(
        client.balance(&sink, "utrib").await.unwrap(),
        (1..=12).sum::<u128>()
    );

    // A send lands and moves exactly amount + fee.
    let before = client.balance(&sender, "utrib").await.unwrap();
    let sent = client.send(&user, &recipient, utrib(12_345)).await.unwrap();
    assert!(sent.height > 0 && sent.gas_used > 0 && sent.gas_used <= sent.gas_wanted);
    assert_eq!(sent.hash.len(), 64);
    assert_eq!(
        sent.fee,
        client.config().fee_for(sent.gas_wanted).unwrap(),
        "the fee is ceil(gas limit * gas price)"
    );
    let after = client.balance(&sender, "utrib").await.unwrap();
    assert_eq!(before - after, 12_345 + sent.fee.amount);
    assert_eq!(client.balance(&recipient, "utrib").await.unwrap(), 12_345);
    let all = client.balances(&recipient).await.unwrap();
    assert_eq!(all, utrib(12_345));
    // The first transfer pays the fee collector; the send is another.
    assert!(sent
        .events
        .iter()
        .any(|e| e.kind == "transfer" && e.attribute("recipient") == Some(recipient.as_str())));

    // Confirmation by hash: the same outcome again, and a timeout for a hash no block has.
    assert_eq!(client.wait_for_tx(&sent.hash).await.unwrap(), sent);
    let mut impatient = net.config();
    impatient.confirm_timeout = Duration::from_millis(500);
    let impatient = Client::connect(impatient).await.unwrap();
    let unknown = "AB".repeat(32);
    match impatient.wait_for_tx(&unknown).await {
        Err(Error::ConfirmTimeout { hash }) => assert_eq!(hash, unknown),
        other => panic!("expected ConfirmTimeout, got {other:?}"),
    }

    // The wrong chain.
    let mut other = net.config();
    other.chain_id = "some-other-chain".into();
    match Client::connect(other).await {
        Err(Error::WrongChainId { expected, actual }) => {
            assert_eq!(expected, "some-other-chain");
            assert_eq!(actual, net.devnet.chain_id);
        }
        other => panic!("expected WrongChainId, got {other:?}"),
    }

    // A node that is not there: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut down = net.config();
    down.rpc_url = format!("http://127.0.0.1:{port}");
    assert!(matches!(
        Client::connect(down).await,
        Err(Error::NodeUnreachable { url, .. }) if url.ends_with(&port.to_string())
    ));

    // A key that never received anything has no account on chain: no account number to sign
    // with, so the client stops before simulating.
    let unfunded = Signer::random("trib").unwrap();
    match client.send(&unfunded, &sender, utrib(1)).await {
        Err(Error::UnknownAccount { address }) => {
            assert_eq!(address, unfunded.address().as_ref())
        }
        other => panic!("expected UnknownAccount, got {other:?}"),
    }
    // An account that exists but cannot pay: the simulation already fails.
    match client.send(&fresh, &sender, utrib(1_000_000)).await {
        Err(Error::InsufficientFunds { message }) => {
            assert!(message.contains("insufficient funds"), "{message}")
        }
        other => panic!("expected InsufficientFunds, got {other:?}"),
    }

    // Gas price 0: the validator's minimum gas price refuses it in CheckTx.
    let mut free = net.config();
    free.gas_price_amount = Decimal::zero();
    let free = Client::connect(free).await.unwrap();
    match free.send(&user, &recipient, utrib(1)).await {
        Err(Error::FeeTooLow { message }) => assert!(message.contains("insufficient fee")),
        other => panic!("expected FeeTooLow, got {other:?}"),
    }

    // A gas limit below what the ante handler alone needs fails in CheckTx.
    let msgs = vec![bank_send(&user, &recipient, 1)];
    let low = TxOptions {
        gas_limit: Some(5_000),
        ..TxOptions::default()
    };
    match client.sign_and_broadcast(&user, msgs, &low).await {
        Err(Error::OutOfGas { gas_wanted, .. }) => assert_eq!(gas_wanted, 5_000),
        other => panic!("expected OutOfGas, got {other:?}"),
    }

    // A stale cached sequence: another client (another process) spends the next sequence.
    let cached = client.cached_account(&sender).await.unwrap();
    let elsewhere = net.client().await;
    elsewhere.send(&user, &recipient, utrib(1)).await.unwrap();
    assert_eq!(client.cached_account(&sender).await, Some(cached));
    let landed = client.send(&user, &recipient, utrib(2)).await.unwrap();
    assert!(landed.height > 0);
    let on_chain = client.account(&sender).await.unwrap();
    assert_eq!(on_chain.sequence, cached.sequence + 2);
    assert_eq!(client.cached_account(&sender).await, Some(on_chain));
    assert_eq!(
        client.balance(&recipient, "utrib").await.unwrap(),
        12_345 + 3
    );
}

#[tokio::test]
async fn contracts_deploy_execute_query_and_announce_requests() {
    let net = LiveNet::start(2400, Some(300)).await;
    let client = net.client().await;
    let curator = net.signer("curator");
    let developer = net.signer("developer");
    let operator = net.signer("operator");
    let user = net.signer("user");
    let contributor = net.signer("contributor1");
    let treasury = net.devnet.key("treasury").unwrap().address.clone();

    // Deploy the four artifacts wired together; the chain's checksum is each file's SHA-256.
    let deployment = deploy(
        &client,
        &curator,
        &artifacts_dir(),
        DeploySettings {
            treasury: Some(treasury.clone()),
            challenge_window_seconds: 1,
            min_contributors_bps: 1000,
            max_entries: 16,
            token_balances: vec![(user.address().to_string(), 1_000_000)],
            ..DeploySettings::default()
        },
    )
    .await
    .unwrap();
    for (code_id, name) in [
        (deployment.code_ids.datanet, ARTIFACTS.datanet),
        (deployment.code_ids.model_registry, ARTIFACTS.model_registry),
        (deployment.code_ids.payout, ARTIFACTS.payout),
        (deployment.code_ids.cw20, ARTIFACTS.cw20),
    ] {
        let info = client.code_info(code_id).await.unwrap();
        assert_eq!(info.checksum, sha256(&artifact(name)).to_vec());
        assert_eq!(info.creator, curator.address().as_ref());
    }
    let datanet_addr = deployment.contracts.datanet.clone();
    let info = client.contract_info(&datanet_addr).await.unwrap();
    assert_eq!(info.code_id, deployment.code_ids.datanet);
    assert_eq!(info.label, "tributary-datanet");
    assert_eq!(info.admin.as_ref(), Some(curator.address()));
    let saved = tempfile::tempdir().unwrap();
    deployment
        .save(&saved.path().join("deployment.json"))
        .unwrap();
    assert_eq!(
        Deployment::load(&saved.path().join("deployment.json")).unwrap(),
        deployment
    );

    // A datanet, a contribution, and the contribution read back.
    let datanets = client.datanet(&datanet_addr);
    let datanet_id = datanets
        .create_datanet(
            &curator,
            NewDatanet {
                name: "physics-qa".into(),
                description: "Physics questions and answers".into(),
                domain_tags: vec!["physics".into()],
                license: "CC-BY-4.0".into(),
                policy: CurationPolicy::Open,
                curators: Vec::new(),
                max_contribution_bytes: 1 << 20,
            },
        )
        .await
        .unwrap();
    let first = content("What is the speed of light? 299792458 m/s.");
    let contribution_id = datanets
        .contribute(&contributor, datanet_id, first.clone())
        .await
        .unwrap();
    let stored = datanets.contribution(contribution_id).await.unwrap();
    assert_eq!(stored.datanet_id, datanet_id);
    assert_eq!(stored.contributor.as_str(), contributor.address().as_ref());
    assert_eq!(stored.content_hash, first.content_hash);
    assert_eq!(stored.status, ContributionStatus::Accepted);
    let by_hash = datanets
        .contribution_by_hash(datanet_id, &first.content_hash)
        .await
        .unwrap();
    assert_eq!(by_hash.map(|c| c.id), Some(contribution_id));

    // The same content again: committed, but its reveal is refused by the contract, in
    // simulation...
    let commit = |c: &tributary_client::NewContribution| {
        let msg = c
            .commit_msg(datanet_id, contributor.address().as_ref())
            .unwrap();
        tributary_client::ContractCall::new(&datanet_addr, &msg, Vec::new()).unwrap()
    };
    let committed = client
        .execute_many(&contributor, vec![commit(&first)])
        .await
        .unwrap();
    let duplicate_id = contribution_ids(&committed, &datanet_addr).unwrap()[0];
    client.wait_for_block_after(committed.height).await.unwrap();
    let reveal = tributary_client::ContractCall::new(
        &datanet_addr,
        &first.reveal_msg(duplicate_id),
        Vec::new(),
    )
    .unwrap();
    let duplicate = client
        .execute_many(&contributor, vec![reveal.clone()])
        .await;
    let Err(Error::Contract { message }) = duplicate else {
        panic!("expected a contract error, got {duplicate:?}")
    };
    assert_eq!(
        message,
        format!(
            "content {} is already contribution {contribution_id} of datanet {datanet_id}",
            first.content_hash
        )
    );
    // ...and in a block, when a fixed gas limit skips the simulation.
    let msgs = client.execute_msgs(&contributor, vec![reveal]).unwrap();
    let fixed = TxOptions {
        gas_limit: Some(400_000),
        ..TxOptions::default()
    };
    match client.sign_and_broadcast(&contributor, msgs, &fixed).await {
        Err(Error::Contract { message: in_block }) => assert_eq!(in_block, message),
        other => panic!("expected a contract error from the block, got {other:?}"),
    }
    // A query the contract refuses carries its text too.
    match datanets.contribution(9_999).await {
        Err(Error::Contract { message }) => {
            assert!(message.contains("9999"), "{message}")
        }
        other => panic!("expected a contract error, got {other:?}"),
    }

    // Out of gas during execution: enough for the ante handler, not for the contract.
    let second = content("Newton's second law: F = m a.");
    let msgs = client
        .execute_msgs(&contributor, vec![commit(&second)])
        .unwrap();
    let needed = client.simulate(&contributor, &msgs).await.unwrap().gas_used;
    let starved = TxOptions {
        gas_limit: Some(needed * 2 / 3),
        ..TxOptions::default()
    };
    match client
        .sign_and_broadcast(&contributor, msgs, &starved)
        .await
    {
        Err(Error::OutOfGas {
            gas_wanted,
            gas_used,
            ..
        }) => {
            assert_eq!(gas_wanted, needed * 2 / 3);
            assert!(gas_used >= gas_wanted, "{gas_used} < {gas_wanted}");
        }
        other => panic!("expected OutOfGas, got {other:?}"),
    }

    // Several contributions in one transaction of commitments and one of reveals.
    let batch = datanets
        .contribute_many(
            &contributor,
            datanet_id,
            &[content("F = m a"), content("E = m c^2")],
        )
        .await
        .unwrap();
    assert_eq!(batch.ids.len(), 2, "{:?}", batch.commit.events);
    assert!(batch.reveal.height > batch.commit.height);
    assert_eq!(
        datanets.datanet(datanet_id).await.unwrap().accepted_count,
        3
    );

    let version = datanets
        .snapshot(&curator, datanet_id, Some("first".into()))
        .await
        .unwrap();
    let root = datanets.version(datanet_id, version).await.unwrap().root;

    let registry_addr = deployment.contracts.model_registry.clone();
    let payout_addr = deployment.contracts.payout.clone();
    let token = deployment.contracts.cw20.clone();

    let method = AttributionMethod {
        id: "trak-logra-v1".into(),
        params_hash: hash("params"),
        params: None,
    };
    let lineage = vec![DatanetRoot {
        datanet_id,
        version,
        root: root.clone(),
    }];
    let model_version = |price: Price| ModelVersionInput {
        lineage: lineage.clone(),
        weights_hash: hash("weights"),
        weights_uri: "tributary://weights".into(),
        index_hash: hash("index"),
        method: method.clone(),
        price,
        split: FeeSplit {
            contributors_bps: 6000,
            developer_bps: 2000,
            operator_bps: 1000,
            protocol_bps: 1000,
        },
        attestors: vec![operator.address().to_string()],
        quorum: 1,
    };
    let registry = client.registry(&registry_addr);
    let model_id = registry
        .register_model(
            &developer,
            "tiny-physics",
            "a tiny model",
            "transformer",
            model_version(Price {
                asset: AssetInfo::native("utrib"),
                amount: Uint128::new(1000),
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
                amount: Uint128::new(500),
            }),
        )
        .await
        .unwrap();
    assert_eq!(cw20_version, 2);
    assert_eq!(registry.model(model_id).await.unwrap().latest_version, 2);

    // Requests: announced to a subscriber, found again by block, decoded from the outcome.
    let payouts = client.payout(&payout_addr);
    let mut subscription = payouts.subscribe().await.unwrap();
    let prompt = hash("What is F?");
    let requested = payouts
        .request_inference(&user, model_id, 1, prompt.clone(), utrib(1500))
        .await
        .unwrap();
    assert_eq!(requested.model_id, model_id);
    assert_eq!(requested.version, 1);
    assert_eq!(requested.payer, user.address().as_ref());
    assert_eq!(requested.prompt_hash, prompt.to_hex());
    assert_eq!(requested.amount, 1000);
    assert_eq!(requested.asset, AssetInfo::native("utrib"));
    assert_eq!(requested.contract, payout_addr);
    let heard = tokio::time::timeout(Duration::from_secs(30), subscription.next())
        .await
        .expect("the subscription announced the request")
        .unwrap()
        .unwrap();
    // The payment's hash is known to the one who sent it, not from the block's events.
    assert!(requested.tx_hash.as_deref().is_some_and(|h| h.len() == 64));
    let announced = InferenceRequested {
        tx_hash: None,
        ..requested.clone()
    };
    assert_eq!(heard, announced);
    let polled = payouts
        .requests_in_block(requested.height.unwrap())
        .await
        .unwrap();
    assert_eq!(polled, vec![announced.clone()]);

    let paid_in_token = payouts
        .request_inference_cw20(&user, &token, 500, model_id, 2, prompt.clone())
        .await
        .unwrap();
    assert_eq!(paid_in_token.asset, AssetInfo::cw20(&token));
    assert_eq!(paid_in_token.request_id, requested.request_id + 1);
    let heard = tokio::time::timeout(Duration::from_secs(30), subscription.next())
        .await
        .expect("the subscription announced the cw20 request")
        .unwrap()
        .unwrap();
    assert!(paid_in_token.tx_hash.is_some());
    assert_eq!(
        heard,
        InferenceRequested {
            tx_hash: None,
            ..paid_in_token
        }
    );
    drop(subscription);

    // Attribution, finalization and the contributor's claim.
    let packet = AttributionPacket {
        request_id: requested.request_id,
        model_id,
        model_version: 1,
        weights_hash: hash("weights"),
        datanet_roots: lineage.clone(),
        method: method.id.clone(),
        params_hash: method.params_hash.clone(),
        output_hash: hash("F = m a"),
        scores_root: hash("scores"),
        entries: vec![AttributionEntry {
            contribution_id,
            weight_bps: 10_000,
        }],
    };
    payouts
        .commit_attribution(&operator, vec![packet])
        .await
        .unwrap();
    let attested = payouts.request(requested.request_id).await.unwrap();
    assert_eq!(attested.status, RequestStatus::Attested);
    wait_for_block_time(&client, attested.finalizable_at.unwrap()).await;
    payouts
        .finalize(&operator, vec![requested.request_id])
        .await
        .unwrap();
    assert_eq!(
        payouts.request(requested.request_id).await.unwrap().status,
        RequestStatus::Finalized
    );
    let owed = payouts
        .balances(contributor.address().as_ref())
        .await
        .unwrap();
    assert_eq!(owed.balances.len(), 1);
    assert_eq!(owed.balances[0].amount, Uint128::new(600));
    let before = client
        .balance(contributor.address().as_ref(), "utrib")
        .await
        .unwrap();
    let claimed = payouts.claim(&contributor).await.unwrap();
    let after = client
        .balance(contributor.address().as_ref(), "utrib")
        .await
        .unwrap();
    assert_eq!(after + claimed.fee.amount, before + 600);
    assert_eq!(
        datanets
            .contribution(contribution_id)
            .await
            .unwrap()
            .usage_count,
        1
    );
}

//! `tributary-relayer` serving inferences paid by vouchers and settling them in batches, against
//! a real `tributaryd` and a real engine: every inference served is redeemed once, through
//! crashes at each moment of a batch's life, and finalized.

mod common;

use std::time::{Duration, Instant};

use common::{send, serial, serve, Batching, RelayerProcess, Series, World, PRICE, SPLIT};
use cosmwasm_std::Binary;
use tributary_types::voucher::{adr36_sign_bytes, SignedVoucher};
use tributary_types::AssetInfo;

async fn post(gateway: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    send(gateway, body).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voucher_inferences_are_settled_once_in_batches_through_crashes() {
    let _serial = serial().await;
    let world = World::start(4800, 400, 2).await;
    let model_id = world.register(&["operator"], 1).await;
    let account = world.devnet_account("operator");
    let home = world.relayer_config_for(
        &account,
        0,
        &[(model_id, 1)],
        &world.in_process_engine(),
        &Batching::default(),
        "\n[vouchers]\nmax_batch = 4\nmax_delay_ms = 300\n",
    );
    let user = world.signer("user");
    let payouts = world.client.payout(&world.payout);
    payouts
        .deposit(
            &user,
            vec![tributary_client::coin(100 * PRICE, "utrib").unwrap()],
        )
        .await
        .unwrap();
    let mut series = world.voucher_series("user", &account.address, model_id);

    let mut process = RelayerProcess::start(&home);
    process.wait_ready().await;
    let first = series.next("what does malloc return on failure?");
    let served = serve(&home.gateway, &first).await;
    assert_eq!(served["count"], 1);
    assert!(served["completion"].is_string());
    // The same voucher again: the same completion, nothing served twice.
    let again = serve(&home.gateway, &first).await;
    assert_eq!(again["completion"], served["completion"]);
    // A voucher that skips one is refused.
    let mut skipping = Series {
        signer: world.signer("user"),
        voucher: series.voucher.clone(),
    };
    skipping.voucher.count += 1;
    let (status, _) = post(&home.gateway, &skipping.next("skipped")).await;
    assert_eq!(status, 409);
    // Another key cannot pay with the user's credit.
    let curator = world.signer("curator");
    let forged = series.extended("forged");
    let data = forged.sign_data().unwrap();
    let signature = curator
        .sign_message(&adr36_sign_bytes(&forged.payer, &data))
        .unwrap();
    let forged = SignedVoucher {
        voucher: forged,
        pub_key: Binary::from(curator.public_key().to_bytes()),
        signature: Binary::from(signature),
    };
    let body = serde_json::json!({"voucher": forged, "prompt": "forged"});
    let (status, _) = post(&home.gateway, &body).await;
    assert_eq!(status, 401);

    // The process dies after recording a batch but before sending it, after sending it, and
    // after it is in a block but before the outbox knows.
    let mut served_count = 1;
    for (round, failpoint) in [
        "batch_before_broadcast",
        "batch_after_broadcast",
        "batch_before_confirm",
    ]
    .into_iter()
    .enumerate()
    {
        process.kill();
        // It may abort at its failpoint at once, settling an earlier round's batch.
        process.restart_with_failpoint(Some(failpoint));
        let mut bodies = Vec::new();
        for i in 0..2 {
            let body = series.next(&format!("round {round} prompt {i}"));
            // The process may abort before it answers: it is served again after the restart.
            if matches!(send(&home.gateway, &body).await, Ok((200, _))) {
                served_count += 1;
            } else {
                bodies.push(body);
            }
        }
        assert!(
            process.wait_exit(Duration::from_secs(60)).await,
            "the relayer did not reach {failpoint}:\n{}",
            process.log()
        );
        process.restart();
        process.wait_ready().await;
        for body in bodies {
            serve(&home.gateway, &body).await;
            served_count += 1;
        }
    }

    // Every inference served is redeemed, once, and the batches are finalized.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = payouts
            .redeemed_vouchers(user.address().as_ref(), &account.address, model_id, 1)
            .await
            .unwrap();
        if state.count == served_count {
            assert_eq!(state.charged.u128(), u128::from(served_count) * PRICE);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {served_count} redeemed:\n{}",
            state.count,
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let credit = payouts
        .credit(user.address().as_ref(), AssetInfo::native("utrib"))
        .await
        .unwrap();
    assert_eq!(
        credit.balance.u128(),
        (100 - u128::from(served_count)) * PRICE
    );
    let developer = world.signer("developer").address().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    let developer_share =
        u128::from(served_count) * PRICE * u128::from(SPLIT.developer_bps) / 10_000;
    loop {
        let owed: u128 = payouts
            .balances(&developer)
            .await
            .unwrap()
            .balances
            .iter()
            .filter(|e| e.asset == AssetInfo::native("utrib"))
            .map(|e| e.amount.u128())
            .sum();
        if owed == developer_share {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "developer owed {owed} of {developer_share}:\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

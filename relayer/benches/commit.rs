//! Commit throughput and latency of `tributary-relayer` against a local `tributaryd`.
//!
//! A devnet (default one-second blocks), the contracts, a tiny model trained on a curated
//! datanet, and one relayer process per batching setting (packets per commit, commits in flight). A payer pays `--requests` inferences
//! (32 per transaction) and sends every prompt to the relayer's gateway as soon as its payment is
//! in a block; the bench then watches the chain until every request holds its packet.
//!
//! Reported per setting: wall time from the first payment to the last commit, packets per
//! second, packets per commit transaction, fee per packet, and per-request latency from the
//! payment's confirmation to the block that committed its packet (median and p95). The baseline
//! is `max_packets = 1` (one packet per transaction); ratios are against it, in the same run.
//!
//! Then the voucher path end to end: payers with deposits send prompts with signed vouchers to
//! a relayer with `[vouchers]` on, until every inference is redeemed in a `SettleBatch` and
//! finalized; its rate is printed beside the bank-send rate measured in the same run.
//!
//! ```text
//! TRIBUTARYD=$(chain/build | tail -n 1) cargo bench -p tributary-relayer --bench commit -- --requests 64
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{
    paid_txs, prompt, submit_until_served, Account, Batching, RelayerProcess, World, PRICE, SPLIT,
};
use cosmwasm_std::{HexBinary, Uint128};
use tributary_client::{coin, Signer, TxOptions};
use tributary_types::payout::RequestStatus;
use tributary_types::voucher::{Voucher, EMPTY_CHAIN};

struct Run {
    label: String,
    requests: usize,
    wall: Duration,
    commit_txs: usize,
    fees: u128,
    latencies: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn run(world: &World, model_id: u64, slot: u16, batching: Batching, requests: usize) -> Run {
    let key = "operator";
    let operator = world.signer(key).address().to_string();
    let txs_before = paid_txs(&world.client, &operator).await.len();
    let home = world.relayer_config_with(
        key,
        slot,
        &[(model_id, 1)],
        &world.in_process_engine(),
        &batching,
    );
    let relayer = RelayerProcess::start(&home);
    relayer.wait_ready().await;

    let start = Instant::now();
    let mut paid_at: BTreeMap<u64, Instant> = BTreeMap::new();
    let base = slot as usize * 100_000;
    let mut submitters = Vec::new();
    for chunk in (0..requests).collect::<Vec<_>>().chunks(32) {
        let prompts: Vec<String> = chunk.iter().map(|i| prompt(base + i)).collect();
        let ids = world.pay(model_id, &prompts).await;
        let now = Instant::now();
        for (id, p) in ids.into_iter().zip(prompts) {
            paid_at.insert(id, now);
            let gateway = home.gateway.clone();
            submitters.push(tokio::spawn(async move {
                submit_until_served(&gateway, id, &p, Duration::from_secs(120)).await;
            }));
        }
    }
    // Watch for each request's packet: a request leaves `Open` when its (quorum 1) packet is in.
    let payout = world.client.payout(&world.payout);
    let mut committed_at: BTreeMap<u64, Instant> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while committed_at.len() < paid_at.len() {
        assert!(
            Instant::now() < deadline,
            "commits did not arrive:\n{}",
            relayer.log()
        );
        for status in [RequestStatus::Attested, RequestStatus::Finalized] {
            let mut start_after = None;
            loop {
                let page = payout
                    .requests(Some(status), None, start_after, Some(100))
                    .await
                    .unwrap();
                let Some(last) = page.last() else { break };
                start_after = Some(last.id);
                for r in page {
                    if paid_at.contains_key(&r.id) {
                        committed_at.entry(r.id).or_insert_with(Instant::now);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = start.elapsed();
    for s in submitters {
        s.await.unwrap();
    }
    let txs = paid_txs(&world.client, &operator).await;
    let new: Vec<_> = txs[txs_before..]
        .iter()
        .filter(|t| t.new_commits > 0)
        .collect();
    let mut latencies: Vec<Duration> = paid_at
        .iter()
        .map(|(id, t)| committed_at[id] - *t)
        .collect();
    latencies.sort();
    Run {
        label: format!(
            "packets {:>2}, in flight {}",
            batching.max_packets, batching.max_in_flight
        ),
        requests,
        wall,
        commit_txs: new.len(),
        fees: new.iter().map(|t| t.fee).sum(),
        latencies,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut requests = 64usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--requests" {
            requests = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--requests N");
        }
    }
    eprintln!("starting a devnet and training the model...");
    // The commit runs do not finalize, so only commits are measured; the voucher run
    // finalizes its batches after this window.
    let world = World::start(4600, 1000, 5).await;
    let model_id = world.register(&["operator"], 1).await;
    // (max_packets, max_in_flight): the baseline commits one packet at a time, one in flight.
    let settings = [(1u32, 1u32), (1, 4), (16, 4), (64, 4)];
    let mut runs = Vec::new();
    for (slot, (max_packets, max_in_flight)) in settings.into_iter().enumerate() {
        eprintln!(
            "measuring max_packets = {max_packets}, max_in_flight = {max_in_flight} with \
             {requests} requests..."
        );
        let batching = Batching {
            max_packets,
            max_delay_ms: 500,
            max_in_flight,
            finalize: false,
        };
        runs.push(run(&world, model_id, slot as u16, batching, requests).await);
    }
    let baseline_rate = runs[0].requests as f64 / runs[0].wall.as_secs_f64();
    let baseline_fee = runs[0].fees as f64 / runs[0].requests as f64;
    println!(
        "relayer commit benchmark: {requests} requests per setting, 1 s blocks, in-process engine"
    );
    println!(
        "{:<15} {:>8} {:>10} {:>9} {:>11} {:>13} {:>12} {:>12}",
        "setting",
        "wall s",
        "packets/s",
        "x base",
        "packets/tx",
        "fee/packet",
        "p50 latency",
        "p95 latency"
    );
    for r in &runs {
        let rate = r.requests as f64 / r.wall.as_secs_f64();
        let fee = r.fees as f64 / r.requests as f64;
        println!(
            "{:<24} {:>8.1} {:>10.2} {:>9.2} {:>11.1} {:>8.0} utrib {:>10.2} s {:>10.2} s   (fee x{:.2} of base)",
            r.label,
            r.wall.as_secs_f64(),
            rate,
            rate / baseline_rate,
            r.requests as f64 / r.commit_txs.max(1) as f64,
            fee,
            percentile(&r.latencies, 0.5).as_secs_f64(),
            percentile(&r.latencies, 0.95).as_secs_f64(),
            fee / baseline_fee,
        );
    }
    let vouchers = vouchers_end_to_end(&world, model_id, settings.len() as u16).await;
    let bank = bank_send_rate(&world).await;
    println!();
    println!(
        "vouchers, end to end through this relayer: {} payers x {} prompts sent to the gateway \
         at once, each payer signing its next voucher when answered; settled = redeemed in \
         SettleBatch on chain, then finalized",
        VOUCHER_PAYERS, VOUCHER_PROMPTS
    );
    let served = vouchers.inferences as f64 / vouchers.served.as_secs_f64();
    let settled = vouchers.inferences as f64 / vouchers.settled.as_secs_f64();
    println!(
        "  served {:.1}/s (wall {:.1} s), settled and finalized {:.1}/s (wall {:.1} s), \
         {} SettleBatch transactions",
        served,
        vouchers.served.as_secs_f64(),
        settled,
        vouchers.settled.as_secs_f64(),
        vouchers.batches
    );
    println!(
        "  bank sends in the same run: {bank:.1} tx/s; settled inferences per bank send: {:.3}",
        settled / bank
    );
}

const VOUCHER_PAYERS: usize = 4;
const VOUCHER_PROMPTS: usize = 24;

struct VoucherRun {
    inferences: usize,
    served: Duration,
    settled: Duration,
    batches: usize,
}

/// Payers with deposits send prompts with vouchers to a relayer with `[vouchers]` on, until
/// every inference is redeemed on chain and its batch finalized.
async fn vouchers_end_to_end(world: &World, model_id: u64, slot: u16) -> VoucherRun {
    let operator = world.devnet.key("operator").unwrap();
    let account = Account {
        name: "operator".into(),
        address: operator.address.clone(),
        mnemonic: operator.mnemonic.clone(),
    };
    let home = world.relayer_config_for(
        &account,
        slot,
        &[(model_id, 1)],
        &world.in_process_engine(),
        &Batching {
            finalize: true,
            ..Batching::default()
        },
        "\n[vouchers]\nmax_batch = 512\nmax_delay_ms = 1000\n",
    );
    let relayer = RelayerProcess::start(&home);
    relayer.wait_ready().await;
    let payout = world.client.payout(&world.payout);
    let mut payers = Vec::new();
    for i in 0..VOUCHER_PAYERS {
        let account = world
            .new_account(&format!("voucher-payer-{i}"), 1_000_000_000)
            .await;
        let signer = Signer::from_mnemonic(&account.mnemonic, "trib").unwrap();
        payout
            .deposit(&signer, vec![coin(100 * PRICE, "utrib").unwrap()])
            .await
            .unwrap();
        payers.push(signer);
    }
    let start = Instant::now();
    let chain_id = world.devnet.chain_id.clone();
    let tasks = payers.iter().enumerate().map(|(p, signer)| {
        let (gateway, chain_id) = (home.gateway.clone(), chain_id.clone());
        let (contract, redeemer) = (world.payout.clone(), operator.address.clone());
        async move {
            let mut voucher = Voucher {
                chain_id,
                contract,
                payer: signer.address().to_string(),
                redeemer,
                model_id,
                version: 1,
                count: 0,
                max_amount: Uint128::zero(),
                prompts: HexBinary::from(EMPTY_CHAIN.as_slice()),
            };
            let client = reqwest::Client::new();
            for k in 0..VOUCHER_PROMPTS {
                let prompt = prompt(p * 1000 + k);
                voucher = voucher.extended(
                    &tributary_types::sha256(prompt.as_bytes()),
                    Uint128::new(PRICE),
                );
                let signed = signer.sign_voucher(voucher.clone()).unwrap();
                let body = serde_json::json!({"voucher": signed, "prompt": prompt});
                let response = client
                    .post(format!("{gateway}/v1/vouchers/completions"))
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&body).unwrap())
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                assert!(
                    status.is_success(),
                    "{status}: {}",
                    response.text().await.unwrap_or_default()
                );
            }
        }
    });
    futures::future::join_all(tasks).await;
    let served = start.elapsed();
    let inferences = VOUCHER_PAYERS * VOUCHER_PROMPTS;
    let developer = world.signer("developer").address().to_string();
    let expected = inferences as u128 * PRICE * u128::from(SPLIT.developer_bps) / 10_000;
    let before: u128 = developer_owed(world, &developer).await;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut redeemed = 0;
        for signer in &payers {
            redeemed += payout
                .redeemed_vouchers(signer.address().as_ref(), &operator.address, model_id, 1)
                .await
                .unwrap()
                .count;
        }
        let owed = developer_owed(world, &developer).await;
        if redeemed as usize == inferences && owed >= before + expected {
            break;
        }
        assert!(Instant::now() < deadline, "not settled:\n{}", relayer.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let batches = relayer.log().matches("batch settled").count();
    VoucherRun {
        inferences,
        served,
        settled: start.elapsed(),
        batches,
    }
}

async fn developer_owed(world: &World, developer: &str) -> u128 {
    world
        .client
        .payout(&world.payout)
        .balances(developer)
        .await
        .unwrap()
        .balances
        .iter()
        .filter(|e| e.asset == tributary_types::AssetInfo::native("utrib"))
        .map(|e| e.amount.u128())
        .sum()
}

/// Bank sends per second in this run: eight fresh accounts send 64 each at once, fixed gas.
async fn bank_send_rate(world: &World) -> f64 {
    use cosmrs::tx::Msg as _;
    let mut senders = Vec::new();
    for i in 0..8 {
        let account = world
            .new_account(&format!("bank-sender-{i}"), 100_000_000)
            .await;
        senders.push(Signer::from_mnemonic(&account.mnemonic, "trib").unwrap());
    }
    let to = senders[0].address().clone();
    let options = TxOptions {
        gas_limit: Some(100_000),
        ..TxOptions::default()
    };
    let start = Instant::now();
    let sends = (0..512).map(|i| {
        let signer = &senders[i % senders.len()];
        let msg = cosmrs::bank::MsgSend {
            from_address: signer.address().clone(),
            to_address: to.clone(),
            amount: vec![coin(1, "utrib").unwrap()],
        }
        .to_any()
        .unwrap();
        let (client, options) = (&world.client, &options);
        async move {
            client
                .sign_and_broadcast(signer, vec![msg], options)
                .await
                .unwrap()
        }
    });
    futures::future::join_all(sends).await;
    512.0 / start.elapsed().as_secs_f64()
}

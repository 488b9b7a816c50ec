//! What a one-validator devnet sustains through this client: bank sends and batched attribution
//! commits per second, their gas, their time to confirmation, and the node's memory; and the gas
//! of a bank send, a cw20 transfer, a payment and a commit before and after the contracts' code
//! is pinned by governance (the throughput rounds run pinned, as `tributary devnet up` leaves a
//! devnet).
//!
//! `cargo bench -p tributary-client --bench chain`; needs the binary (`TRIBUTARYD=$(chain/build)`)
//! and the artifacts (`ci/build-wasm`). It starts its own devnet (port offset 2800) with the
//! parameters' block time and stops it at the end, also when it fails.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "load/mod.rs"]
mod load;

use common::{artifacts_dir, bank_send, hash, pin_contracts, utrib, LiveNet, TestModel};
use cosmwasm_std::{HexBinary, Uint128};
use futures::future::join_all;
use load::{fresh_signer, median, percentile_ms, resident_memory_kib, run_phase, Phase};
use std::time::{Duration, Instant};
use tendermint_rpc::Client as _;
use tributary_client::{
    deploy, Any, Client, ContractCall, DeploySettings, InferenceRequested, Signer, TxOptions,
};
use tributary_types::packet::{AttributionEntry, AttributionPacket};
use tributary_types::payout;
use tributary_types::voucher::{chain_prompt, Voucher, VoucherRedemption, EMPTY_CHAIN};

/// The port offset of this benchmark's devnet.
const PORT_OFFSET: u16 = 2800;
/// Signers sending at once in the throughput rounds (fresh keys funded from a genesis key); the
/// attestors among them fit the registry's cap of 16 per model version.
const SIGNERS: usize = 16;
/// Measured rounds; each reports its own rate and the medians are printed.
const ROUNDS: usize = 3;
/// Bank sends per round, spread over the signers.
const SENDS_PER_ROUND: usize = 1024;
/// Packets committed per round at each batch size (each a distinct paid request).
const PACKETS_PER_ROUND: usize = 512;
/// Packets per `CommitAttribution` transaction.
const BATCH_SIZES: [usize; 3] = [1, 8, 32];
/// Transactions sent one at a time per kind and round, for the latency without load.
const LATENCY_SAMPLES: usize = 6;
/// Contributions every packet attributes to.
const ENTRIES_PER_PACKET: usize = 4;
/// Requests paid per setup transaction.
const REQUESTS_PER_TX: usize = 48;
const PRICE: u128 = 1000;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        // Dropping the devnet stops it, after a failure (a panic unwinds through here) too.
        let net = LiveNet::start(PORT_OFFSET, None).await;
        let report = measure(&net).await;
        let rss = resident_memory_kib(&net);
        drop(net);
        print_report(&report, rss);
    });
}

/// The measured figures of one kind of transaction, every round pooled.
struct Figures {
    label: String,
    /// Packets per transaction; 0 for bank sends.
    batch: usize,
    /// Transactions per second of each round.
    txs_per_second: Vec<f64>,
    /// Transactions measured under full load.
    txs: usize,
    /// Broadcast to confirmation under full load, every round pooled.
    loaded: Vec<Duration>,
    /// Broadcast to confirmation with one transaction in flight, every round pooled.
    alone: Vec<Duration>,
    gas_used: Vec<u64>,
    gas_limit: u64,
}

struct Report {
    version: String,
    block_time_ms: u64,
    /// Seconds per block over the measured phases, from the blocks' own times.
    block_interval: f64,
    /// Devnet start excluded: deploy, datanet, model, funding and paying the requests.
    setup: Duration,
    measured: Duration,
    bank: Figures,
    commits: Vec<Figures>,
    /// (call, gas into unpinned code, gas into pinned code), simulated.
    gas_by_pinning: Vec<(String, u64, u64)>,
}

async fn measure(net: &LiveNet) -> Report {
    let started = Instant::now();
    let client = net.client().await;
    let admin = net.signer("curator");
    let developer = net.signer("developer");
    let contributor = net.signer("contributor1");
    let funder = net.signer("user");

    let deployment = deploy(
        &client,
        &admin,
        &artifacts_dir(),
        DeploySettings {
            max_entries: ENTRIES_PER_PACKET as u32,
            token_balances: vec![(admin.address().to_string(), 1_000_000)],
            ..DeploySettings::default()
        },
    )
    .await
    .expect("deploy");
    let payout_addr = deployment.contracts.payout.clone();
    // Fresh signers: bank senders (also the payers of the requests) and attestors.
    let senders: Vec<Signer> = (0..SIGNERS).map(|_| fresh_signer()).collect();
    let attestors: Vec<Signer> = (0..SIGNERS).map(|_| fresh_signer()).collect();
    let funding = senders
        .iter()
        .chain(&attestors)
        .map(|s| bank_send(&funder, s.address().as_ref(), 10_000_000_000))
        .collect();
    client
        .sign_and_broadcast(&funder, funding, &TxOptions::default())
        .await
        .expect("fund the signers");

    // A datanet with accepted contributions, frozen, and a model trained on it.
    let attestor_addresses: Vec<String> =
        attestors.iter().map(|a| a.address().to_string()).collect();
    let model = TestModel::register(
        &client,
        &deployment,
        &developer,
        &contributor,
        ENTRIES_PER_PACKET,
        &attestor_addresses,
        1,
        PRICE,
    )
    .await;
    let (model_id, lineage, method, contribution_ids) =
        (model.id, model.lineage, model.method, model.contributions);

    // Every packet of every round answers its own paid request; pay for them all first.
    let needed = requests_needed();
    let mut request_ids = pay_requests(&client, &senders, &payout_addr, model_id, needed).await;
    request_ids.sort_unstable();
    assert_eq!(request_ids.len(), needed);
    let weights = [4000u16, 3000, 2000, 1000];
    let packet = |request_id: u64| AttributionPacket {
        request_id,
        model_id,
        model_version: 1,
        weights_hash: hash("weights"),
        datanet_roots: lineage.clone(),
        method: method.id.clone(),
        params_hash: method.params_hash.clone(),
        output_hash: hash(&format!("output {request_id}")),
        scores_root: hash(&format!("scores {request_id}")),
        entries: contribution_ids
            .iter()
            .zip(weights)
            .map(|(&contribution_id, weight_bps)| AttributionEntry {
                contribution_id,
                weight_bps,
            })
            .collect(),
    };
    let commit = |signer: &Signer, ids: &[u64]| -> Vec<Any> {
        let call = ContractCall::new(
            &payout_addr,
            &payout::ExecuteMsg::CommitAttribution {
                packets: ids.iter().map(|&id| packet(id)).collect(),
            },
            Vec::new(),
        )
        .expect("a commit call");
        client
            .execute_msgs(signer, vec![call])
            .expect("commit msgs")
    };

    // Fixed gas limits, one simulation per kind of transaction times the gas adjustment: a
    // simulation per transaction would run every commit twice on the node.
    let recipient = fresh_signer().address().to_string();
    let send = |signer: &Signer| vec![bank_send(signer, &recipient, 1)];
    let gas_limit = |simulated: u64| client.config().gas_limit_for(simulated);
    let send_gas = client
        .simulate(&senders[0], &send(&senders[0]))
        .await
        .expect("simulate a send")
        .gas_used;
    let mut bank = figures("bank send (MsgSend)", 0, gas_limit(send_gas));
    let mut commits = Vec::new();
    for batch in BATCH_SIZES {
        let ids = &request_ids[..batch];
        let simulated = client
            .simulate(&attestors[0], &commit(&attestors[0], ids))
            .await
            .expect("simulate a commit")
            .gas_used;
        commits.push(figures(
            &format!("CommitAttribution x{batch}"),
            batch,
            gas_limit(simulated),
        ));
    }

    // The gas of one of each kind of call, into unpinned code and then pinned by proposal; the
    // throughput rounds run pinned.
    let cw20 = deployment.contracts.cw20.clone();
    let mut probes: Vec<(&str, &Signer, Vec<Any>)> = vec![
        ("bank send", &senders[0], send(&senders[0])),
        (
            "cw20 transfer",
            &admin,
            client
                .execute_msgs(
                    &admin,
                    vec![ContractCall::new(
                        &cw20,
                        &cw20::Cw20ExecuteMsg::Transfer {
                            recipient: recipient.clone(),
                            amount: Uint128::new(1),
                        },
                        Vec::new(),
                    )
                    .expect("a transfer call")],
                )
                .expect("transfer msgs"),
        ),
        (
            "RequestInference x1",
            &senders[0],
            client
                .execute_msgs(
                    &senders[0],
                    vec![ContractCall::new(
                        &payout_addr,
                        &payout::ExecuteMsg::RequestInference {
                            model_id,
                            version: 1,
                            prompt_hash: hash("a probe prompt"),
                        },
                        utrib(PRICE),
                    )
                    .expect("a request call")],
                )
                .expect("request msgs"),
        ),
        (
            "CommitAttribution x1",
            &attestors[0],
            commit(&attestors[0], &request_ids[..1]),
        ),
        (
            "CommitAttribution x32",
            &attestors[0],
            commit(&attestors[0], &request_ids[..32]),
        ),
    ];
    // A payer with prepaid credit and one voucher for 32 inferences, redeemed by an attestor.
    let voucher_payer = &senders[1];
    client
        .payout(&payout_addr)
        .deposit(voucher_payer, utrib(PRICE * 64))
        .await
        .expect("deposit credit");
    let voucher_prompts: Vec<_> = (0..32)
        .map(|i| hash(&format!("voucher prompt {i}")))
        .collect();
    let chain = voucher_prompts
        .iter()
        .fold(EMPTY_CHAIN, |c, p| chain_prompt(&c, p));
    let voucher = voucher_payer
        .sign_voucher(Voucher {
            chain_id: client.config().chain_id.clone(),
            contract: payout_addr.clone(),
            payer: voucher_payer.address().to_string(),
            redeemer: attestors[0].address().to_string(),
            model_id,
            version: 1,
            count: voucher_prompts.len() as u64,
            max_amount: Uint128::new(PRICE * voucher_prompts.len() as u128),
            prompts: HexBinary::from(chain.as_slice()),
        })
        .expect("sign a voucher");
    let redeem = client
        .execute_msgs(
            &attestors[0],
            vec![ContractCall::new(
                &payout_addr,
                &payout::ExecuteMsg::RedeemVouchers {
                    redemptions: vec![VoucherRedemption {
                        voucher,
                        prompt_hashes: voucher_prompts,
                    }],
                },
                Vec::new(),
            )
            .expect("a redeem call")],
        )
        .expect("redeem msgs");
    probes.push(("RedeemVouchers x32", &attestors[0], redeem));
    let mut gas_by_pinning = Vec::new();
    for (label, signer, msgs) in &probes {
        let unpinned = client
            .simulate(signer, msgs)
            .await
            .expect("simulate")
            .gas_used;
        gas_by_pinning.push((label.to_string(), unpinned, 0));
    }
    pin_contracts(net, &client, &deployment).await;
    for ((_, signer, msgs), row) in probes.iter().zip(&mut gas_by_pinning) {
        row.2 = client
            .simulate(signer, msgs)
            .await
            .expect("simulate")
            .gas_used;
    }
    bank.gas_limit = gas_limit(gas_by_pinning[0].2);
    for (figures, batch) in commits.iter_mut().zip(BATCH_SIZES) {
        let ids = &request_ids[..batch];
        let simulated = client
            .simulate(&attestors[0], &commit(&attestors[0], ids))
            .await
            .expect("simulate a commit")
            .gas_used;
        figures.gas_limit = gas_limit(simulated);
    }

    let block_time = Duration::from_millis(net.params.consensus.block_time_ms);
    let setup = started.elapsed();
    let first_block = client.rpc().status().await.expect("status").sync_info;
    let mut unused = request_ids.into_iter();
    let mut take = |n: usize| -> Vec<u64> {
        let ids: Vec<u64> = unused.by_ref().take(n).collect();
        assert_eq!(ids.len(), n, "enough paid requests");
        ids
    };
    for _ in 0..ROUNDS {
        let sends = |count: usize| {
            (0..count)
                .map(|i| (i % SIGNERS, send(&senders[i % SIGNERS])))
                .collect::<Vec<_>>()
        };
        let loaded = run_phase(&client, &senders, sends(SENDS_PER_ROUND), bank.gas_limit);
        record(&mut bank, loaded.await, Load::Full);
        let alone = one_at_a_time(
            &client,
            &senders,
            sends(LATENCY_SAMPLES),
            bank.gas_limit,
            block_time,
        );
        record(&mut bank, alone.await, Load::Alone);
        for figures in &mut commits {
            let batch = figures.batch;
            let commits = |ids: Vec<u64>| {
                ids.chunks(batch)
                    .enumerate()
                    .map(|(i, ids)| (i % SIGNERS, commit(&attestors[i % SIGNERS], ids)))
                    .collect::<Vec<_>>()
            };
            let txs = commits(take(PACKETS_PER_ROUND));
            let loaded = run_phase(&client, &attestors, txs, figures.gas_limit);
            record(figures, loaded.await, Load::Full);
            let txs = commits(take(LATENCY_SAMPLES * batch));
            let alone = one_at_a_time(&client, &attestors, txs, figures.gas_limit, block_time);
            record(figures, alone.await, Load::Alone);
        }
    }
    let last_block = client.rpc().status().await.expect("status").sync_info;
    let measured = started.elapsed() - setup;
    let blocks = last_block.latest_block_height.value() - first_block.latest_block_height.value();
    let nanos = last_block.latest_block_time.unix_timestamp_nanos()
        - first_block.latest_block_time.unix_timestamp_nanos();

    let version = std::process::Command::new(&net.devnet.binary)
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    Report {
        version,
        block_time_ms: net.params.consensus.block_time_ms,
        block_interval: nanos as f64 / 1e9 / blocks.max(1) as f64,
        setup,
        measured,
        bank,
        commits,
        gas_by_pinning,
    }
}

fn figures(label: &str, batch: usize, gas_limit: u64) -> Figures {
    Figures {
        label: label.to_string(),
        batch,
        txs_per_second: Vec::new(),
        txs: 0,
        loaded: Vec::new(),
        alone: Vec::new(),
        gas_used: Vec::new(),
        gas_limit,
    }
}

/// How a phase loads the chain.
#[derive(Clone, Copy, PartialEq)]
enum Load {
    /// A round's whole workload at once: the rate and the loaded latencies.
    Full,
    /// One transaction at a time: latencies without load.
    Alone,
}

fn record(figures: &mut Figures, phase: Phase, load: Load) {
    figures.gas_used.extend(phase.gas_used);
    match load {
        Load::Full => {
            let txs = phase.latencies.len();
            figures.txs += txs;
            figures
                .txs_per_second
                .push(txs as f64 / phase.elapsed.as_secs_f64());
            figures.loaded.extend(phase.latencies);
        }
        Load::Alone => figures.alone.extend(phase.latencies),
    }
}

/// Paid requests the measured phases commit packets for.
fn requests_needed() -> usize {
    BATCH_SIZES
        .iter()
        .map(|batch| ROUNDS * (PACKETS_PER_ROUND + LATENCY_SAMPLES * batch))
        .sum()
}

/// Pays `count` requests, `REQUESTS_PER_TX` to a transaction; returns their ids. The payers pay
/// at once, each one transaction at a time: these transactions simulate their gas, and a
/// simulation that lands between a block and the mempool's recheck sees the committed sequence.
async fn pay_requests(
    client: &Client,
    payers: &[Signer],
    payout_addr: &str,
    model_id: u64,
    count: usize,
) -> Vec<u64> {
    let txs = count.div_ceil(REQUESTS_PER_TX);
    let paid = join_all(payers.iter().enumerate().map(|(p, payer)| async move {
        let mut ids = Vec::new();
        for t in (p..txs).step_by(payers.len()) {
            let in_this_tx = REQUESTS_PER_TX.min(count - t * REQUESTS_PER_TX);
            let calls = (0..in_this_tx)
                .map(|i| {
                    ContractCall::new(
                        payout_addr,
                        &payout::ExecuteMsg::RequestInference {
                            model_id,
                            version: 1,
                            prompt_hash: hash(&format!("prompt {t}/{i}")),
                        },
                        utrib(PRICE),
                    )
                    .expect("a request call")
                })
                .collect();
            let outcome = client
                .execute_many(payer, calls)
                .await
                .expect("pay for requests");
            let requested = InferenceRequested::from_events(&outcome.events, payout_addr)
                .expect("request events");
            ids.extend(requested.into_iter().map(|r| r.request_id));
        }
        ids
    }))
    .await;
    paid.into_iter().flatten().collect()
}

/// Sends transactions one after another, each after a pause that moves it to another point of
/// the block interval (the fractional parts of multiples of the golden ratio spread evenly), so
/// the latencies sample the whole interval.
async fn one_at_a_time(
    client: &Client,
    signers: &[Signer],
    txs: Vec<(usize, Vec<Any>)>,
    gas_limit: u64,
    block_time: Duration,
) -> Phase {
    let options = TxOptions {
        gas_limit: Some(gas_limit),
        ..TxOptions::default()
    };
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut gas_used = Vec::new();
    for (k, (signer, msgs)) in txs.into_iter().enumerate() {
        let offset = ((k + 1) as f64 * 0.618_033_988_75).fract();
        tokio::time::sleep(block_time.mul_f64(offset)).await;
        let submitted = Instant::now();
        let outcome = client
            .sign_and_broadcast(&signers[signer], msgs, &options)
            .await
            .unwrap_or_else(|e| panic!("a measured transaction failed: {e}"));
        latencies.push(submitted.elapsed());
        gas_used.push(outcome.gas_used);
    }
    Phase {
        elapsed: start.elapsed(),
        latencies,
        gas_used,
    }
}

fn print_report(report: &Report, rss_kib: Option<u64>) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("Tributary chain benchmark");
    println!(
        "  node: tributaryd {}, one validator, block time {} ms (the devnet default \
         timeout_commit); measured block interval {:.2} s",
        report.version, report.block_time_ms, report.block_interval
    );
    println!(
        "  signers: {SIGNERS} at once, fresh keys funded from a genesis key (bank senders; \
         attestors of the model, quorum 1)"
    );
    println!(
        "  workload per round, {ROUNDS} rounds: {SENDS_PER_ROUND} bank sends of 1 utrib; \
         {PACKETS_PER_ROUND} packets at each batch size {BATCH_SIZES:?}; every packet answers its \
         own paid request ({PRICE} utrib) and names {ENTRIES_PER_PACKET} contributions"
    );
    println!(
        "  gas limit: fixed per kind from one simulation x 1.3 (no simulation per transaction)"
    );
    println!("  this machine: {cores} cores, shared by the node and the client; release build");
    println!();
    println!(
        "(a, b) throughput: a round's whole workload handed to the client at once, from the \
         first broadcast to the last confirmation; median of {ROUNDS} rounds"
    );
    let bank_rate = median(&report.bank.txs_per_second);
    println!(
        "{:<24} {:>6} {:>9} {:>10} {:>9} {:>11} {:>19}",
        "transaction", "txs", "tx/s", "packets/s", "gas/tx", "gas/packet", "packets/s per"
    );
    println!(
        "{:<24} {:>6} {:>9} {:>10} {:>9} {:>11} {:>19}",
        "", "", "", "", "(median)", "(median)", "bank send/s"
    );
    for f in std::iter::once(&report.bank).chain(&report.commits) {
        let rate = median(&f.txs_per_second);
        let gas: Vec<f64> = f.gas_used.iter().map(|&g| g as f64).collect();
        let (packets, gas_per_packet, ratio) = if f.batch == 0 {
            ("-".to_string(), "-".to_string(), "-".to_string())
        } else {
            let per_packet: Vec<f64> = gas.iter().map(|g| g / f.batch as f64).collect();
            let packets = rate * f.batch as f64;
            (
                format!("{packets:.1}"),
                format!("{:.0}", median(&per_packet)),
                format!("{:.2}", packets / bank_rate),
            )
        };
        println!(
            "{:<24} {:>6} {:>9.1} {:>10} {:>9.0} {:>11} {:>19}",
            f.label,
            f.txs,
            rate,
            packets,
            median(&gas),
            gas_per_packet,
            ratio
        );
    }
    println!();
    println!(
        "(c) broadcast to confirmation, ms: 'alone' = one transaction in flight, {LATENCY_SAMPLES} \
         per round sent at points spread over the block interval; 'loaded' = during the \
         throughput rounds above, where a signer's transactions also wait for its earlier ones to \
         be broadcast; the client polls for confirmation every 250 ms; nearest-rank percentiles"
    );
    println!(
        "{:<24} {:>8} {:>10} {:>10} {:>8} {:>11} {:>11}",
        "transaction", "samples", "alone p50", "alone p95", "samples", "loaded p50", "loaded p95"
    );
    for f in std::iter::once(&report.bank).chain(&report.commits) {
        println!(
            "{:<24} {:>8} {:>10.0} {:>10.0} {:>8} {:>11.0} {:>11.0}",
            f.label,
            f.alone.len(),
            percentile_ms(&f.alone, 50.0),
            percentile_ms(&f.alone, 95.0),
            f.loaded.len(),
            percentile_ms(&f.loaded, 50.0),
            percentile_ms(&f.loaded, 95.0),
        );
    }
    println!();
    for f in std::iter::once(&report.bank).chain(&report.commits) {
        let rounds: Vec<String> = f.txs_per_second.iter().map(|r| format!("{r:.1}")).collect();
        println!(
            "  {:<24} tx/s by round: {}; gas limit {}",
            f.label,
            rounds.join(", "),
            f.gas_limit
        );
    }
    println!(
        "  time: setup (deploy, datanet, model, funding, {} paid requests) {:.0} s, measured \
         phases {:.0} s",
        requests_needed(),
        report.setup.as_secs_f64(),
        report.measured.as_secs_f64()
    );
    println!();
    println!(
        "(e) simulated gas of one transaction, contract code unpinned and then pinned by an \
         expedited governance proposal (the rounds above ran pinned)"
    );
    println!(
        "{:<24} {:>10} {:>10} {:>12} {:>14}",
        "transaction", "unpinned", "pinned", "pinned/cw20", "pinned per one"
    );
    let cw20_pinned = report
        .gas_by_pinning
        .iter()
        .find(|(label, _, _)| label == "cw20 transfer")
        .map_or(1, |row| row.2.max(1));
    for (label, unpinned, pinned) in &report.gas_by_pinning {
        // "x32": the transaction carries 32 payments or packets.
        let each = label
            .rsplit_once(" x")
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .unwrap_or(1);
        println!(
            "{:<24} {:>10} {:>10} {:>12.2} {:>14}",
            label,
            unpinned,
            pinned,
            *pinned as f64 / cw20_pinned as f64,
            pinned / each
        );
    }
    match rss_kib {
        Some(kib) => println!(
            "(f) tributaryd resident memory (VmRSS) at the end: {kib} kB ({:.1} MiB)",
            kib as f64 / 1024.0
        ),
        None => println!("(f) tributaryd resident memory (VmRSS) at the end: unavailable"),
    }
}

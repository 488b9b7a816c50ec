//! Paid inferences settled per second and the chain gas each costs, in both settlement modes,
//! against the chain's own bank-send rate and a cw20 transfer's gas, measured in the same run.
//!
//! - **per request**: each inference paid by its own `RequestInference` transaction (what a
//!   Keplr user signs), its packet committed in `CommitAttribution` batches of 32, finalized in
//!   `Finalize` batches of 50, in rounds whose phases run one after another;
//! - **batched**: payers deposit once and sign vouchers off chain; 16 attestors each send
//!   `SettleBatch` transactions of 16 payers x 32 prompts back to back, while a finalizer sends
//!   `FinalizeBatches` for every batch whose challenge window has passed. The rate counts the
//!   inferences whose finalization confirmed in each of several windows after a warm-up, when
//!   settling and finalizing share blocks as they would in steady state.
//!
//! A settled inference is paid, committed, finalized and credited to every party. Deposits are
//! set-up, made once per payer. The results are precomputed: this measures the chain, not the
//! attribution engine or the relayer.
//!
//! `cargo bench -p tributary-client --bench settlement`; needs the binary
//! (`TRIBUTARYD=$(chain/build)`) and the artifacts (`ci/build-wasm`). It starts its own devnet
//! (port offset 3300), pins the contracts' code as `tributary devnet up` does, and prints the
//! two ratios last.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "load/mod.rs"]
mod load;

use common::{
    artifacts_dir, bank_send, hash, pin_contracts, utrib, wait_for_block_time, LiveNet, TestModel,
};
use cosmwasm_std::{HexBinary, Timestamp, Uint128};
use futures::future::join_all;
use load::{
    fresh_signer, median, percentile_ms, resident_memory_kib, run_phase, run_phase_events, Phase,
};
use std::time::{Duration, Instant};
use tributary_client::{
    deploy, Any, Client, ContractCall, DeploySettings, InferenceRequested, Signer, TxOptions,
};
use tributary_types::batch::BatchResult;
use tributary_types::packet::{AttributionEntry, AttributionPacket};
use tributary_types::payout;
use tributary_types::voucher::{Voucher, VoucherRedemption, EMPTY_CHAIN};

const PORT_OFFSET: u16 = 3300;
/// Senders at once: bank senders, per-request payers, attestors (one per batch of a round).
const SIGNERS: usize = 16;
const ROUNDS: usize = 3;
const SENDS_PER_ROUND: usize = 1024;
/// Per-request inferences per round.
const REQUESTS_PER_ROUND: usize = 128;
const PACKETS_PER_COMMIT: usize = 32;
const REQUESTS_PER_FINALIZE: usize = 50;
/// The batched mode's shape: every attestor sends batches of `PAYERS_PER_BATCH` payers x
/// `PROMPTS_PER_PAYER` prompts, one after another, for `SUSTAINED`; a finalizer credits every
/// batch once its window has passed. The rate is taken over the finalizations confirmed in
/// `MEASURED` windows after a warm-up of `WARM_UP`, when settling and finalizing share blocks.
const PAYERS_PER_BATCH: usize = 16;
const PROMPTS_PER_PAYER: usize = 32;
const SUSTAINED: Duration = Duration::from_secs(40);
const WARM_UP: Duration = Duration::from_secs(12);
const MEASURED: usize = 5;
/// Voucher payers; attestor `a` takes payers `a * PAYERS_PER_BATCH ..` (mod this) in turn, so
/// each payer has a voucher series with several attestors.
const VOUCHER_PAYERS: usize = 64;
/// Each voucher payer's deposit, in inferences.
const DEPOSIT_INFERENCES: u128 = 50_000;
/// Contributions in the lineage, and attributed per inference.
const CONTRIBUTIONS: usize = 8;
const ENTRIES: usize = 4;
const PRICE: u128 = 1000;
const WINDOW: u64 = 5;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let net = LiveNet::start(PORT_OFFSET, None).await;
        let report = measure(&net).await;
        let rss = resident_memory_kib(&net);
        drop(net);
        print_report(&report, rss);
    });
}

/// One mode's figures, every round pooled.
#[derive(Default)]
struct Mode {
    /// Settled inferences per second, per round.
    rates: Vec<f64>,
    inferences: usize,
    gas: u64,
    /// Confirmation latency of each kind of transaction under load.
    latencies: Vec<(&'static str, Vec<Duration>)>,
}

impl Mode {
    fn record(&mut self, kind: &'static str, phase: &Phase) {
        self.gas += phase.gas_used.iter().sum::<u64>();
        match self.latencies.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, all)) => all.extend(&phase.latencies),
            None => self.latencies.push((kind, phase.latencies.clone())),
        }
    }

    fn gas_per_inference(&self) -> f64 {
        self.gas as f64 / self.inferences.max(1) as f64
    }
}

struct Report {
    bank_rates: Vec<f64>,
    cw20_transfer_gas: u64,
    per_request: Mode,
    batched: Mode,
}

/// The model every inference is paid on, and what its packets name.
type Model = TestModel;

async fn measure(net: &LiveNet) -> Report {
    let client = net.client().await;
    let admin = net.signer("curator");
    let funder = net.signer("user");
    let deployment = deploy(
        &client,
        &admin,
        &artifacts_dir(),
        DeploySettings {
            challenge_window_seconds: WINDOW,
            token_balances: vec![(admin.address().to_string(), 1_000_000)],
            ..DeploySettings::default()
        },
    )
    .await
    .expect("deploy");
    pin_contracts(net, &client, &deployment).await;
    let payout_addr = deployment.contracts.payout.clone();

    let senders: Vec<Signer> = (0..SIGNERS).map(|_| fresh_signer()).collect();
    let attestors: Vec<Signer> = (0..SIGNERS).map(|_| fresh_signer()).collect();
    let voucher_payers: Vec<Signer> = (0..VOUCHER_PAYERS).map(|_| fresh_signer()).collect();
    let funding = senders
        .iter()
        .chain(&attestors)
        .chain(&voucher_payers)
        .map(|s| bank_send(&funder, s.address().as_ref(), 10_000_000_000))
        .collect();
    client
        .sign_and_broadcast(&funder, funding, &Default::default())
        .await
        .expect("fund the signers");
    let attestor_addresses: Vec<String> =
        attestors.iter().map(|a| a.address().to_string()).collect();
    let model = TestModel::register(
        &client,
        &deployment,
        &admin,
        &admin,
        CONTRIBUTIONS,
        &attestor_addresses,
        1,
        PRICE,
    )
    .await;

    // The cw20 transfer every gas figure is compared with.
    let transfer = ContractCall::new(
        &deployment.contracts.cw20,
        &cw20::Cw20ExecuteMsg::Transfer {
            recipient: senders[0].address().to_string(),
            amount: Uint128::new(1),
        },
        Vec::new(),
    )
    .expect("a transfer");
    let cw20_transfer_gas = client
        .execute_many(&admin, vec![transfer])
        .await
        .expect("a cw20 transfer")
        .gas_used;

    // Deposits, once per voucher payer.
    let per_payer = DEPOSIT_INFERENCES * PRICE;
    let deposit = |payer: &Signer| -> Vec<Any> {
        let call = ContractCall::new(
            &payout_addr,
            &payout::ExecuteMsg::Deposit {},
            utrib(per_payer),
        )
        .expect("a deposit");
        client
            .execute_msgs(payer, vec![call])
            .expect("deposit msgs")
    };
    let deposit_gas = simulated(&client, &voucher_payers[0], &deposit(&voucher_payers[0])).await;
    run_phase(
        &client,
        &voucher_payers,
        (0..VOUCHER_PAYERS)
            .map(|p| (p, deposit(&voucher_payers[p])))
            .collect(),
        deposit_gas,
    )
    .await;

    let bank_recipient = fresh_signer().address().to_string();
    let send = |s: &Signer| vec![bank_send(s, &bank_recipient, 1)];
    let send_gas = simulated(&client, &senders[0], &send(&senders[0])).await;
    let mut bank_rates = Vec::new();
    let mut per_request = Mode::default();
    for round in 0..ROUNDS {
        let sends = (0..SENDS_PER_ROUND)
            .map(|i| (i % SIGNERS, send(&senders[i % SIGNERS])))
            .collect();
        let phase = run_phase(&client, &senders, sends, send_gas).await;
        bank_rates.push(SENDS_PER_ROUND as f64 / phase.elapsed.as_secs_f64());

        per_request_round(&client, &payout_addr, &model, &senders, &attestors, round)
            .await
            .add_to(&mut per_request);
    }
    let batched =
        batched_sustained(&client, &payout_addr, &model, &voucher_payers, &attestors).await;
    Report {
        bank_rates,
        cw20_transfer_gas,
        per_request,
        batched,
    }
}

/// One round's figures of one mode.
struct Round {
    inferences: usize,
    phases: Vec<(&'static str, Phase)>,
}

impl Round {
    fn add_to(self, mode: &mut Mode) {
        let elapsed: f64 = self
            .phases
            .iter()
            .map(|(_, p)| p.elapsed.as_secs_f64())
            .sum();
        mode.rates.push(self.inferences as f64 / elapsed);
        mode.inferences += self.inferences;
        for (kind, phase) in &self.phases {
            mode.record(kind, phase);
        }
    }
}

async fn per_request_round(
    client: &Client,
    payout_addr: &str,
    model: &Model,
    payers: &[Signer],
    attestors: &[Signer],
    round: usize,
) -> Round {
    let pay = |payer: &Signer, i: usize| -> Vec<Any> {
        let call = ContractCall::new(
            payout_addr,
            &payout::ExecuteMsg::RequestInference {
                model_id: model.id,
                version: 1,
                prompt_hash: hash(&format!("round {round} request {i}")),
            },
            utrib(PRICE),
        )
        .expect("a payment");
        client
            .execute_msgs(payer, vec![call])
            .expect("payment msgs")
    };
    let pay_gas = simulated(client, &payers[0], &pay(&payers[0], usize::MAX)).await;
    let payments: Vec<_> = (0..REQUESTS_PER_ROUND)
        .map(|i| (i % payers.len(), pay(&payers[i % payers.len()], i)))
        .collect();
    let paid = run_phase_events(client, payers, payments, pay_gas).await;
    let mut ids: Vec<u64> = paid
        .1
        .iter()
        .flat_map(|events| InferenceRequested::from_events(events, payout_addr).expect("events"))
        .map(|r| r.request_id)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), REQUESTS_PER_ROUND);

    let commit = |attestor: &Signer, ids: &[u64]| -> Vec<Any> {
        let packets = ids.iter().map(|&id| packet(model, id)).collect();
        let call = ContractCall::new(
            payout_addr,
            &payout::ExecuteMsg::CommitAttribution { packets },
            Vec::new(),
        )
        .expect("a commit");
        client
            .execute_msgs(attestor, vec![call])
            .expect("commit msgs")
    };
    let chunks: Vec<&[u64]> = ids.chunks(PACKETS_PER_COMMIT).collect();
    let commit_gas = simulated(client, &attestors[0], &commit(&attestors[0], chunks[0])).await;
    let commits = chunks
        .iter()
        .enumerate()
        .map(|(i, ids)| (i, commit(&attestors[i], ids)))
        .collect();
    let committed = run_phase(client, attestors, commits, commit_gas).await;

    wait_for_window(client).await;
    let finalize = |signer: &Signer, ids: &[u64]| -> Vec<Any> {
        let call = ContractCall::new(
            payout_addr,
            &payout::ExecuteMsg::Finalize {
                request_ids: ids.to_vec(),
            },
            Vec::new(),
        )
        .expect("a finalize");
        client
            .execute_msgs(signer, vec![call])
            .expect("finalize msgs")
    };
    let chunks: Vec<&[u64]> = ids.chunks(REQUESTS_PER_FINALIZE).collect();
    let finalize_gas = simulated(client, &payers[0], &finalize(&payers[0], chunks[0])).await;
    let finalizes = chunks
        .iter()
        .enumerate()
        .map(|(i, ids)| (i, finalize(&payers[i], ids)))
        .collect();
    let finalized = run_phase(client, payers, finalizes, finalize_gas).await;
    Round {
        inferences: REQUESTS_PER_ROUND,
        phases: vec![
            ("RequestInference x1", paid.0),
            ("CommitAttribution x32", committed),
            ("Finalize x50", finalized),
        ],
    }
}

/// A payer's voucher series with one attestor.
struct Series {
    voucher: Voucher,
    prompts: Vec<HexBinary>,
}

impl Series {
    fn new(
        client: &Client,
        payout_addr: &str,
        payer: &Signer,
        redeemer: &Signer,
        model: u64,
    ) -> Self {
        Series {
            voucher: Voucher {
                chain_id: client.config().chain_id.clone(),
                contract: payout_addr.to_string(),
                payer: payer.address().to_string(),
                redeemer: redeemer.address().to_string(),
                model_id: model,
                version: 1,
                count: 0,
                max_amount: Uint128::zero(),
                prompts: HexBinary::from(EMPTY_CHAIN.as_slice()),
            },
            prompts: Vec::new(),
        }
    }

    /// The payer asks for `n` more inferences: the redemption of the voucher covering them.
    fn ask(&mut self, payer: &Signer, n: usize) -> VoucherRedemption {
        let start = self.prompts.len();
        let mut new = Vec::with_capacity(n);
        for i in start..start + n {
            let prompt = hash(&format!(
                "{} to {} prompt {i}",
                payer.address(),
                self.voucher.redeemer
            ));
            self.voucher = self.voucher.extended(&prompt, Uint128::new(PRICE));
            new.push(prompt);
        }
        self.prompts.extend(new.iter().cloned());
        VoucherRedemption {
            voucher: payer.sign_voucher(self.voucher.clone()).expect("sign"),
            prompt_hashes: new,
        }
    }
}

/// Every attestor settles batches back to back while a finalizer credits those whose window
/// has passed; see [`SUSTAINED`].
async fn batched_sustained(
    client: &Client,
    payout_addr: &str,
    model: &Model,
    payers: &[Signer],
    attestors: &[Signer],
) -> Mode {
    let per_batch = PAYERS_PER_BATCH * PROMPTS_PER_PAYER;
    let results: Vec<BatchResult> = (0..per_batch)
        .map(|i| {
            let packet = packet(model, i as u64);
            BatchResult {
                output_hash: packet.output_hash,
                scores_root: packet.scores_root,
                entries: packet.entries,
            }
        })
        .collect();
    let start = Instant::now();
    let deadline = start + SUSTAINED;
    let (settled_tx, mut settled_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    let senders = attestors.iter().enumerate().map(|(a, attestor)| {
        let results = &results;
        let settled_tx = settled_tx.clone();
        async move {
            let mut series: Vec<(usize, Series)> = (0..PAYERS_PER_BATCH)
                .map(|k| {
                    let p = (a * PAYERS_PER_BATCH + k) % payers.len();
                    (
                        p,
                        Series::new(client, payout_addr, &payers[p], attestor, model.id),
                    )
                })
                .collect();
            let mut gas = Vec::new();
            let mut latencies = Vec::new();
            let mut limit = None;
            while Instant::now() < deadline {
                let redemptions = series
                    .iter_mut()
                    .map(|(p, s)| s.ask(&payers[*p], PROMPTS_PER_PAYER))
                    .collect();
                let call = ContractCall::new(
                    payout_addr,
                    &payout::ExecuteMsg::SettleBatch {
                        redemptions,
                        results: results.clone(),
                    },
                    Vec::new(),
                )
                .expect("a batch");
                let msgs = client
                    .execute_msgs(attestor, vec![call])
                    .expect("batch msgs");
                // Each attestor simulates its first batch; later ones are alike.
                let gas_limit = match limit {
                    Some(limit) => limit,
                    None => *limit.insert(simulated(client, attestor, &msgs).await),
                };
                let options = TxOptions {
                    gas_limit: Some(gas_limit),
                    ..TxOptions::default()
                };
                let sent = Instant::now();
                let outcome = client
                    .sign_and_broadcast(attestor, msgs, &options)
                    .await
                    .unwrap_or_else(|e| panic!("a batch failed: {e}"));
                latencies.push(sent.elapsed());
                gas.push(outcome.gas_used);
                let event = outcome
                    .events
                    .iter()
                    .find(|e| e.kind == "wasm-settlement_batch")
                    .expect("a settlement_batch event");
                let id = event
                    .attribute("batch_id")
                    .expect("batch_id")
                    .parse()
                    .unwrap();
                let ready = event
                    .attribute("finalizable_at")
                    .expect("finalizable_at")
                    .parse()
                    .unwrap();
                settled_tx
                    .send((id, ready))
                    .expect("the finalizer is running");
            }
            (gas, latencies)
        }
    });
    let senders: Vec<_> = senders.collect();
    drop(settled_tx);
    let finalizer = async {
        let signer = &payers[0];
        let mut waiting: Vec<(u64, u64)> = Vec::new();
        let mut open = true;
        let mut finalized: Vec<(Instant, usize)> = Vec::new();
        let mut gas = Vec::new();
        let mut latencies = Vec::new();
        while open || !waiting.is_empty() {
            loop {
                match settled_rx.try_recv() {
                    Ok(batch) => waiting.push(batch),
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            let now = client
                .latest_block()
                .await
                .expect("the latest block")
                .time_nanos
                / 1_000_000_000;
            // `finalizable_at` is in whole seconds: a second's margin covers its fraction.
            let (ready, later): (Vec<_>, Vec<_>) =
                waiting.iter().partition(|(_, at)| *at + 1 < now);
            waiting = later;
            if ready.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            for chunk in ready.chunks(REQUESTS_PER_FINALIZE) {
                let ids: Vec<u64> = chunk.iter().map(|(id, _)| *id).collect();
                let sent = Instant::now();
                let outcome = client
                    .payout(payout_addr)
                    .execute(
                        signer,
                        &payout::ExecuteMsg::FinalizeBatches { batch_ids: ids },
                        Vec::new(),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("a finalization failed: {e}"));
                latencies.push(sent.elapsed());
                gas.push(outcome.gas_used);
                finalized.push((Instant::now(), chunk.len() * per_batch));
            }
        }
        (finalized, gas, latencies)
    };
    let (sent, (finalized, finalize_gas, finalize_latencies)) =
        tokio::join!(join_all(senders), finalizer);

    let mut mode = Mode::default();
    let mut settle_latencies = Vec::new();
    for (gas, latencies) in sent {
        mode.gas += gas.iter().sum::<u64>();
        mode.inferences += gas.len() * per_batch;
        settle_latencies.extend(latencies);
    }
    mode.gas += finalize_gas.iter().sum::<u64>();
    // Settled inferences per second in each measured window, by finalization time.
    let window = (SUSTAINED - WARM_UP) / MEASURED as u32;
    for w in 0..MEASURED {
        let from = start + WARM_UP + window * w as u32;
        let to = from + window;
        let count: usize = finalized
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, n)| n)
            .sum();
        mode.rates.push(count as f64 / window.as_secs_f64());
    }
    mode.latencies
        .push(("SettleBatch x512 (sustained)", settle_latencies));
    mode.latencies.push(("FinalizeBatches", finalize_latencies));
    mode
}

/// Waits out the challenge window of everything committed so far.
async fn wait_for_window(client: &Client) {
    let now = client
        .latest_block()
        .await
        .expect("the latest block")
        .time_nanos;
    let ready = Timestamp::from_nanos(now).plus_seconds(WINDOW + 1);
    wait_for_block_time(client, ready).await;
}

/// The gas limit for transactions like `msgs`: one simulation times the gas adjustment.
async fn simulated(client: &Client, signer: &Signer, msgs: &[Any]) -> u64 {
    let used = client
        .simulate(signer, msgs)
        .await
        .expect("simulate")
        .gas_used;
    client.config().gas_limit_for(used)
}

fn packet(model: &Model, request_id: u64) -> AttributionPacket {
    let weights = [4000u16, 3000, 2000, 1000];
    let first = request_id as usize % (CONTRIBUTIONS - ENTRIES + 1);
    AttributionPacket {
        request_id,
        model_id: model.id,
        model_version: 1,
        weights_hash: hash("weights"),
        datanet_roots: model.lineage.clone(),
        method: model.method.id.clone(),
        params_hash: model.method.params_hash.clone(),
        output_hash: hash(&format!("output {request_id}")),
        scores_root: hash(&format!("scores {request_id}")),
        entries: model.contributions[first..first + ENTRIES]
            .iter()
            .zip(weights)
            .map(|(&contribution_id, weight_bps)| AttributionEntry {
                contribution_id,
                weight_bps,
            })
            .collect(),
    }
}

fn print_report(report: &Report, rss_kib: Option<u64>) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let bank = median(&report.bank_rates);
    let cw20 = report.cw20_transfer_gas as f64;
    println!("Tributary settlement benchmark");
    println!(
        "  one validator, default block time; {cores} cores shared by the node and the client; \
         contract code pinned; medians of the rates per round or window"
    );
    println!(
        "  per request: {ROUNDS} rounds of {REQUESTS_PER_ROUND} inferences, one RequestInference \
         each, commits of {PACKETS_PER_COMMIT}, finalizations of {REQUESTS_PER_FINALIZE}, phases \
         one after another"
    );
    println!(
        "  batched: {SIGNERS} attestors each sending batches of {PAYERS_PER_BATCH} payers x \
         {PROMPTS_PER_PAYER} prompts back to back for {} s, a finalizer crediting each batch once \
         its {WINDOW} s window passed; {VOUCHER_PAYERS} payers with one deposit each; rates over \
         {MEASURED} windows after a {} s warm-up, by finalization time",
        SUSTAINED.as_secs(),
        WARM_UP.as_secs()
    );
    println!("  every inference names {ENTRIES} of {CONTRIBUTIONS} contributions");
    println!();
    println!(
        "bank send: {bank:.1} tx/s (rounds {}); cw20 transfer: {} gas",
        join(&report.bank_rates),
        report.cw20_transfer_gas
    );
    println!();
    println!(
        "{:<12} {:>11} {:>14} {:>12} {:>13} {:>12}",
        "mode", "inferences", "settled/s", "per bank/s", "gas/inference", "per cw20 gas"
    );
    for (name, mode) in [
        ("per request", &report.per_request),
        ("batched", &report.batched),
    ] {
        let rate = median(&mode.rates);
        println!(
            "{:<12} {:>11} {:>14.1} {:>12.2} {:>13.0} {:>12.3}",
            name,
            mode.inferences,
            rate,
            rate / bank,
            mode.gas_per_inference(),
            mode.gas_per_inference() / cw20
        );
    }
    println!();
    println!("broadcast to confirmation under load, ms (p50 / p95):");
    for mode in [&report.per_request, &report.batched] {
        for (kind, latencies) in &mode.latencies {
            println!(
                "  {:<24} {:>7.0} / {:>7.0}  ({} transactions)",
                kind,
                percentile_ms(latencies, 50.0),
                percentile_ms(latencies, 95.0),
                latencies.len()
            );
        }
    }
    println!(
        "  in the batched mode payment and commit are one transaction: its confirmation is the \
         latency from payment to commit"
    );
    match rss_kib {
        Some(kib) => println!(
            "tributaryd resident memory at the end: {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("tributaryd resident memory at the end: unavailable"),
    }
    println!();
    let batched = &report.batched;
    println!(
        "ratios (batched): settled inferences/s per bank send/s = {:.2} (goal >= 10); gas per \
         settled inference per cw20 transfer = {:.3} (goal <= 0.5)",
        median(&batched.rates) / bank,
        batched.gas_per_inference() / cw20
    );
}

fn join(rates: &[f64]) -> String {
    rates
        .iter()
        .map(|r| format!("{r:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

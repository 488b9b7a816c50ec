//! The demo's steps, each on the real component: devnet, signed transactions, content store
//! over HTTP, Burn training and gradient index, relayers, finalization, claims.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use cosmwasm_std::{HexBinary, Uint128};
use futures::future::try_join_all;
use serde_json::Value;
use tendermint_rpc::Client as _;
use tributary_attrib::artifact::ModelArtifact;
use tributary_attrib::data::{examples, open_store, Contribution, Corpus};
use tributary_attrib::engine::{build_index, Engine, IndexSettings};
use tributary_attrib::heldout::held_out_report;
use tributary_attrib::index::{GradientIndex, Method};
use tributary_attrib::model::LmConfig;
use tributary_attrib::packet::params_hash;
use tributary_attrib::serve::GatewayConfig;
use tributary_attrib::training::{progress_bar, train_on_cpu, TrainConfig};
use tributary_client::{
    coin, deploy, ChainConfig, Client, ContractCall, Decimal, DeploySettings, InferenceRequested,
    NewContribution, Signer, TxOptions,
};
use tributary_devnet::{Devnet, DevnetParams, InitOptions, Tributaryd};
use tributary_keyring::Keyring;
use tributary_store::{ChainGate, ContentStore, HttpStore, LocalStore, ServerConfig};
use tributary_types::datanet::{self, CurationPolicy, ReviewDecision};
use tributary_types::packet::DatanetRoot;
use tributary_types::payout::{self, RequestStatus};
use tributary_types::registry::{self, AttributionMethod, ModelVersionInput};
use tributary_types::split::settle;
use tributary_types::{sha256, AssetInfo, AttributionPacket, FeeSplit, Price};

use crate::corpus::{self, Sizes, Source};
use crate::relayer_config::{spawn_process, wait_ready, RelayerToml};
use crate::report::*;
use crate::Args;

/// Seconds between a packet reaching quorum and the earliest finalization.
const CHALLENGE_WINDOW_SECONDS: u64 = 8;
/// The price of one inference, in utrib and in the cw20's smallest unit.
const PRICE: u128 = 25_000;
/// The fee split of every model version.
const SPLIT: FeeSplit = FeeSplit {
    contributors_bps: 6000,
    developer_bps: 2000,
    operator_bps: 1500,
    protocol_bps: 500,
};
/// Every demo account gets this much utrib for fees.
const ACCOUNT_FUNDS: u128 = 50_000_000;

/// How big a run is.
struct Plan {
    manpages: Sizes,
    fortunes: Sizes,
    model: LmConfig,
    /// Training steps per datanet, in the order of the sources (man pages, fortunes).
    steps: [usize; 2],
    /// Index the intermediate checkpoints too (each costs a gradient pass over every window),
    /// or only the final weights.
    index_checkpoints: bool,
    batch_size: usize,
    /// Gradient shards per batch, computed on parallel threads.
    shards: usize,
    learning_rate: f64,
    /// Native and cw20 inferences per model.
    native: usize,
    cw20: usize,
}

impl Plan {
    fn new(small: bool) -> Plan {
        if small {
            let sizes = Sizes {
                groups: 3,
                per_group: 3,
                held_per_group: 1,
                max_document_bytes: 1600,
            };
            Plan {
                manpages: sizes,
                fortunes: Sizes {
                    max_document_bytes: 900,
                    ..sizes
                },
                model: LmConfig::new()
                    .with_d_model(16)
                    .with_n_layers(1)
                    .with_n_heads(2)
                    .with_d_ff(32)
                    .with_context(16),
                steps: [40, 40],
                index_checkpoints: true,
                batch_size: 32,
                shards: 2,
                learning_rate: 3e-3,
                native: 2,
                cw20: 1,
            }
        } else {
            Plan {
                manpages: Sizes {
                    groups: 8,
                    per_group: 24,
                    held_per_group: 2,
                    max_document_bytes: 8000,
                },
                fortunes: Sizes {
                    groups: 8,
                    per_group: 12,
                    held_per_group: 8,
                    max_document_bytes: 4000,
                },
                model: LmConfig::new()
                    .with_d_model(128)
                    .with_n_layers(2)
                    .with_n_heads(4)
                    .with_d_ff(512)
                    .with_context(128),
                // The fortunes are a third of the man pages' bytes: half the steps is still
                // several passes over them.
                steps: [700, 300],
                index_checkpoints: false,
                batch_size: 32,
                shards: 4,
                learning_rate: 6e-3,
                native: 6,
                cw20: 2,
            }
        }
    }
}

/// A demo account: a fresh key, funded from the curator.
struct Account {
    label: String,
    signer: Signer,
}

/// A datanet as the demo built it.
struct BuiltDatanet {
    report: DatanetReport,
    /// contribution id → (text, contributor account index).
    texts: BTreeMap<u64, String>,
    corpus: Corpus,
    /// Documents of the same source that nobody contributed.
    held_out: Vec<String>,
}

/// A trained, indexed, registered model.
struct BuiltModel {
    report: ModelReport,
    model_dir: PathBuf,
    index_dir: PathBuf,
    datanet: usize,
}

/// Step timings, printed as they finish.
struct Steps {
    started: Instant,
    done: Vec<StepTiming>,
}

impl Steps {
    fn begin(&mut self, name: &str) {
        println!("\n==> {name}");
        self.started = Instant::now();
    }

    fn end(&mut self, name: &str) {
        let seconds = self.started.elapsed().as_secs_f64();
        println!("    done in {seconds:.1}s");
        self.done.push(StepTiming {
            name: name.to_string(),
            seconds,
        });
    }
}

fn hex(bytes: &[u8]) -> HexBinary {
    HexBinary::from(bytes)
}

/// The hash of the first transaction with an event attribute `key` equal to `value`, e.g. the
/// commit of a request. (Built, not parsed: the Rust query parser refuses the `-` that wasmd
/// puts in custom event types, which the node accepts.)
async fn first_tx(client: &Client, key: &str, value: u64) -> Result<String> {
    let query = tendermint_rpc::query::Query::eq(key, value.to_string());
    let found = client
        .rpc()
        .tx_search(query, false, 1, 1, tendermint_rpc::Order::Ascending)
        .await?;
    Ok(found
        .txs
        .first()
        .map(|t| t.hash.to_string())
        .unwrap_or_default())
}

pub async fn run(args: Args) -> Result<bool> {
    let plan = Plan::new(args.small);
    let mut steps = Steps {
        started: Instant::now(),
        done: Vec::new(),
    };
    let home = args.home.clone();
    if home.exists() {
        std::fs::remove_dir_all(&home).with_context(|| format!("emptying {}", home.display()))?;
    }
    std::fs::create_dir_all(home.join("logs"))?;
    init_logs(&home.join("logs/relayers.log"))?;

    // The corpora first: a missing package fails before anything starts.
    let sources = [
        corpus::manpages(&args.man_dir, plan.manpages).map_err(|e| anyhow!(e))?,
        corpus::fortunes(
            &args.fortunes_dir,
            &[
                "computers",
                "science",
                "linux",
                "wisdom",
                "education",
                "literature",
                "work",
                "debian",
            ],
            plan.fortunes,
        )
        .map_err(|e| anyhow!(e))?,
    ];

    steps.begin("devnet: one tributaryd validator");
    let params = DevnetParams::default_devnet();
    let devnet = Devnet::init(
        &Tributaryd::from_env(),
        &home.join("devnet"),
        &params,
        &InitOptions {
            port_offset: args.port_offset,
            ..InitOptions::default()
        },
    )?;
    devnet.start()?;
    let guard = DevnetGuard(&devnet);
    devnet
        .wait_for_height(0, 2, Duration::from_secs(120))
        .await?;
    let client = Client::connect(ChainConfig::new(
        &devnet.chain_id,
        devnet.rpc_url(),
        &params.bech32_prefix,
        Decimal::from_str(&params.fees.min_gas_price)?,
        &devnet.denom,
    ))
    .await?;
    println!("    {} at {}", devnet.chain_id, devnet.rpc_url());
    steps.end("devnet");

    let key = |name: &str| -> Result<Signer> {
        let k = devnet
            .key(name)
            .ok_or_else(|| anyhow!("the devnet has no key {name}"))?;
        Ok(Signer::from_mnemonic(&k.mnemonic, &params.bech32_prefix)?)
    };
    let curator = key("curator")?;
    let developer = key("developer")?;
    let operators = [key("operator")?, key("attestor2")?];
    let users = [key("user")?, key("contributor1")?];
    let treasury = key("treasury")?;

    steps.begin("contracts: datanet, model registry, payout and a cw20 token");
    let deployment = deploy(
        &client,
        &curator,
        &args.artifacts,
        DeploySettings {
            treasury: Some(treasury.address().to_string()),
            challenge_window_seconds: CHALLENGE_WINDOW_SECONDS,
            max_entries: 16,
            token_balances: users
                .iter()
                .map(|u| (u.address().to_string(), 10_000_000))
                .collect(),
            ..DeploySettings::default()
        },
    )
    .await?;
    deployment.save(&home.join("deployment.json"))?;
    let contracts = deployment.contracts.clone();
    println!("    payout {}", contracts.payout);
    steps.end("contracts");

    steps.begin("accounts: one contributor per file group, funded in one transaction");
    let mut accounts: Vec<Vec<Account>> = Vec::new();
    let mut sends = Vec::new();
    for source in &sources {
        let mut group_accounts = Vec::new();
        for label in &source.groups {
            let mnemonic = Keyring::generate_mnemonic();
            let signer = Signer::from_mnemonic(&mnemonic, &params.bech32_prefix)?;
            sends.push(bank_send(&curator, signer.address(), ACCOUNT_FUNDS)?);
            group_accounts.push(Account {
                label: label.clone(),
                signer,
            });
        }
        accounts.push(group_accounts);
    }
    let funded = client
        .sign_and_broadcast(&curator, sends, &TxOptions::default())
        .await?;
    println!(
        "    {} accounts funded in {}",
        accounts.iter().map(Vec::len).sum::<usize>(),
        funded.hash
    );
    steps.end("accounts");

    steps.begin("content store: tributary-store over HTTP");
    let store_addr = format!("127.0.0.1:{}", 8600 + args.port_offset);
    let store_url = format!("http://{store_addr}");
    let local = LocalStore::open(home.join("store"))?;
    let listener = tokio::net::TcpListener::bind(&store_addr)
        .await
        .with_context(|| format!("binding the content store to {store_addr}"))?;
    // Gated by the chain, as a real store is: it takes the bytes of a contribution only once
    // its reveal is on chain, and every contributor here (the web app's too) uploads after it.
    let rest_url = devnet
        .nodes
        .first()
        .map(|n| n.rest_url.clone())
        .context("the devnet has no REST endpoint for the content store's chain gate")?;
    let gate = ChainGate::new(&rest_url, contracts.datanet.as_str())?;
    let store_task = tokio::spawn(tributary_store::serve(
        listener,
        local,
        Arc::new(gate),
        ServerConfig::default(),
    ));
    let store = HttpStore::new(&store_url)?;
    println!("    {store_url}");
    steps.end("content store");

    steps.begin("datanets: contributions, curation and snapshots");
    let mut datanets = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let built = build_datanet(
            &client,
            &contracts.datanet,
            &curator,
            &accounts[i],
            source,
            &store,
            &store_url,
        )
        .await?;
        let accepted = built
            .report
            .contributions
            .iter()
            .filter(|c| c.status == "accepted")
            .count();
        println!(
            "    datanet {} {:?}: {} accepted, {} rejected, version {} root {}",
            built.report.id,
            built.report.name,
            accepted,
            built.report.contributions.len() - accepted,
            built.report.version,
            &built.report.root[..16]
        );
        datanets.push(built);
    }
    steps.end("datanets");

    steps.begin("models: train, index and register one model per datanet");
    let mut models = Vec::new();
    for (i, built) in datanets.iter().enumerate() {
        let model = train_and_register(
            &client,
            &contracts,
            &developer,
            &operators[i],
            &plan,
            built,
            i,
            &home,
            &store_url,
        )
        .await?;
        println!(
            "    model {} {:?}: {} steps in {:.1}s, loss {:.3}, {} windows indexed",
            model.report.id,
            model.report.name,
            model.report.train_steps,
            model.report.train_seconds,
            model.report.final_loss,
            model.report.examples
        );
        println!(
            "    held-out bits per byte on {} documents nobody contributed: {}",
            model.report.held_out.documents,
            crate::report::held_out_line(&model.report.held_out)
        );
        models.push(model);
    }
    steps.end("models");

    steps.begin("relayers: one attestor per model");
    let (relayer_stop, relayer_tasks, gateways) = start_relayers(
        &home,
        &devnet,
        &params,
        &contracts,
        &models,
        args.port_offset,
    )
    .await?;
    steps.end("relayers");

    steps.begin("inferences: users pay in utrib and in the cw20, relayers serve them");
    let mut inferences = Vec::new();
    for (m, model) in models.iter().enumerate() {
        let prompts = prompts(&datanets[model.datanet], plan.native + plan.cw20);
        for (k, prompt) in prompts.iter().enumerate() {
            let user = &users[k % users.len()];
            let cw20 = k >= plan.native;
            let (request_id, pay_tx) = pay(
                &client,
                &contracts.payout,
                &contracts.cw20,
                user,
                model.report.id,
                cw20,
                prompt,
            )
            .await?;
            let response = submit(&gateways[m], request_id, prompt).await?;
            inferences.push((
                m,
                request_id,
                pay_tx,
                user.address().to_string(),
                prompt.clone(),
                cw20,
                response,
            ));
        }
    }
    println!("    {} inferences paid and served", inferences.len());
    steps.end("inferences");

    steps.begin("attribution commits, challenge window and finalization (by the relayers)");
    let payout = client.payout(&contracts.payout);
    let progress = progress_bar(inferences.len() as u64, true, "finalized");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut done = 0;
        for (_, id, ..) in &inferences {
            if payout.request(*id).await?.status == RequestStatus::Finalized {
                done += 1;
            }
        }
        progress.set_position(done);
        if done as usize == inferences.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "requests not finalized after 300s (relayer log: {})",
                home.join("logs/relayers.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    progress.finish();
    steps.end("finalization");

    steps.begin("verify the chain state, claim, report");
    let mut report = Report {
        chain_id: devnet.chain_id.clone(),
        small: args.small,
        ..Report::default()
    };
    let request_ids: Vec<u64> = inferences.iter().map(|(_, id, ..)| *id).collect();
    let agreed = agreed_packets(&client, &contracts.payout, &request_ids).await?;
    let labels: BTreeMap<String, String> = accounts
        .iter()
        .flatten()
        .map(|a| (a.signer.address().to_string(), a.label.clone()))
        .collect();
    // The contributors' part of every settlement, recomputed with the split rule.
    let mut expected: BTreeMap<(String, bool), u128> = BTreeMap::new();
    let mut expected_usage: BTreeMap<u64, u64> = BTreeMap::new();
    let mut actor_expected: BTreeMap<(String, bool), u128> = BTreeMap::new();
    let contributor_of: BTreeMap<u64, String> = datanets
        .iter()
        .flat_map(|d| d.report.contributions.iter())
        .map(|c| (c.id, c.contributor.clone()))
        .collect();
    for (m, id, _, _, _, cw20, _) in &inferences {
        let packet = &agreed[id];
        let settled = settle(Uint128::new(PRICE), &SPLIT, &packet.entries, 1)?;
        for (contribution, amount) in &settled.contributions {
            *expected
                .entry((contributor_of[contribution].clone(), *cw20))
                .or_default() += amount.u128();
            *expected_usage.entry(*contribution).or_default() += 1;
        }
        *actor_expected
            .entry((treasury.address().to_string(), *cw20))
            .or_default() += settled.protocol.u128();
        *actor_expected
            .entry((developer.address().to_string(), *cw20))
            .or_default() += settled.developer.u128();
        *actor_expected
            .entry((operators[models[*m].datanet].address().to_string(), *cw20))
            .or_default() += settled.operators[0].u128();
    }
    let cw20_asset = AssetInfo::cw20(&contracts.cw20);
    let native_asset = AssetInfo::native("utrib");
    let owed = |address: String| {
        let payout = client.payout(&contracts.payout);
        let (native_asset, cw20_asset) = (native_asset.clone(), cw20_asset.clone());
        async move {
            let balances = payout.balances(&address).await?.balances;
            let of = |asset: &AssetInfo| {
                balances
                    .iter()
                    .find(|b| &b.asset == asset)
                    .map_or(0, |b| b.amount.u128())
            };
            Ok::<_, anyhow::Error>((of(&native_asset), of(&cw20_asset)))
        }
    };
    let mut contributors_ok = true;
    let mut payouts = Vec::new();
    for (d, built) in datanets.iter().enumerate() {
        for account in &accounts[d] {
            let address = account.signer.address().to_string();
            let (native, cw20) = owed(address.clone()).await?;
            let want = (
                expected
                    .get(&(address.clone(), false))
                    .copied()
                    .unwrap_or(0),
                expected.get(&(address.clone(), true)).copied().unwrap_or(0),
            );
            contributors_ok &= (native, cw20) == want;
            payouts.push(ContributorPayout {
                address,
                label: account.label.clone(),
                datanet: built.report.name.clone(),
                native,
                cw20,
                claim_tx: None,
            });
        }
    }
    if !args.small {
        // The reduced run's models are too small to be worth paying for.
        for model in &models {
            let h = &model.report.held_out;
            report.checks.push(Check {
                name: format!(
                    "{} predicts documents nobody contributed in fewer bits than gzip -9",
                    model.report.name
                ),
                passed: h.beats_gzip() == Some(true),
                detail: crate::report::held_out_line(h),
            });
        }
    }
    report.checks.push(Check {
        name: "every paid request finalized".into(),
        passed: true,
        detail: format!("{} requests", request_ids.len()),
    });
    report.checks.push(Check {
        name: "contributor balances equal the split of the fees by the agreed packets".into(),
        passed: contributors_ok,
        detail: format!("{} contributors", payouts.len()),
    });
    let mut actors_ok = true;
    let mut actors = Vec::new();
    for (actor, signer) in [
        ("protocol treasury".to_string(), &treasury),
        ("model developer".to_string(), &developer),
        (
            format!("operator of model {}", models[0].report.id),
            &operators[0],
        ),
        (
            format!("operator of model {}", models[1].report.id),
            &operators[1],
        ),
    ] {
        let address = signer.address().to_string();
        let (native, cw20) = owed(address.clone()).await?;
        let want = (
            actor_expected
                .get(&(address.clone(), false))
                .copied()
                .unwrap_or(0),
            actor_expected
                .get(&(address.clone(), true))
                .copied()
                .unwrap_or(0),
        );
        actors_ok &= (native, cw20) == want;
        actors.push(ActorFees {
            actor,
            address,
            native,
            cw20,
        });
    }
    actors.push(ActorFees {
        actor: "contributors".into(),
        address: String::new(),
        native: payouts.iter().map(|p| p.native).sum(),
        cw20: payouts.iter().map(|p| p.cw20).sum(),
    });
    report.checks.push(Check {
        name: "protocol, developer and operator balances equal their split".into(),
        passed: actors_ok,
        detail: "per asset".into(),
    });
    let total_native: u128 = actors[..4].iter().map(|a| a.native).sum::<u128>() + actors[4].native;
    let paid_native = PRICE * inferences.iter().filter(|i| !i.5).count() as u128;
    report.checks.push(Check {
        name: "the native fees are fully distributed".into(),
        passed: total_native == paid_native,
        detail: format!("{total_native} of {paid_native} utrib credited"),
    });

    // Usage counts on the datanet contract equal the committed attributions.
    let datanet_contract = client.datanet(&contracts.datanet);
    let mut usage_ok = true;
    for built in &mut datanets {
        for c in &mut built.report.contributions {
            let on_chain = datanet_contract.contribution(c.id).await?.usage_count;
            c.usage_count = on_chain;
            usage_ok &= on_chain == expected_usage.get(&c.id).copied().unwrap_or(0);
        }
    }
    report.checks.push(Check {
        name: "usage counts equal the committed attributions".into(),
        passed: usage_ok,
        detail: format!("{} contributions", contributor_of.len()),
    });

    // The three best-paid contributors claim.
    let mut by_earnings: Vec<usize> = (0..payouts.len()).collect();
    by_earnings.sort_by_key(|&i| std::cmp::Reverse(payouts[i].native));
    let mut claims_ok = true;
    for &i in by_earnings.iter().take(3) {
        let account = accounts
            .iter()
            .flatten()
            .find(|a| a.signer.address().as_ref() == payouts[i].address)
            .expect("every payout is an account's");
        let address = payouts[i].address.clone();
        let before = client.balance(&address, "utrib").await?;
        let claim = payout.claim(&account.signer).await?;
        let after = client.balance(&address, "utrib").await?;
        claims_ok &= after + claim.fee.amount == before + payouts[i].native;
        payouts[i].claim_tx = Some(claim.hash);
    }
    report.checks.push(Check {
        name: "claims pay out exactly what was owed".into(),
        passed: claims_ok,
        detail: "3 contributors, bank balance change plus fee".into(),
    });

    // The inferences as the report shows them, with the transactions that back them.
    let texts: BTreeMap<u64, (String, String)> = datanets
        .iter()
        .flat_map(|d| {
            d.report.contributions.iter().map(|c| {
                (
                    c.id,
                    (
                        c.title.clone(),
                        d.texts.get(&c.id).cloned().unwrap_or_default(),
                    ),
                )
            })
        })
        .collect();
    for (m, id, pay_tx, payer, prompt, cw20, response) in &inferences {
        let packet = &agreed[id];
        let top = packet
            .entries
            .iter()
            .map(|e| {
                let (title, text) = texts.get(&e.contribution_id).cloned().unwrap_or_default();
                TopPassage {
                    contribution_id: e.contribution_id,
                    title,
                    contributor_label: labels
                        .get(&contributor_of[&e.contribution_id])
                        .cloned()
                        .unwrap_or_default(),
                    weight_bps: e.weight_bps,
                    passage: text.chars().take(240).collect(),
                }
            })
            .collect();
        report.inferences.push(InferenceReport {
            request_id: *id,
            model_name: models[*m].report.name.clone(),
            model_version: if *cw20 { 2 } else { 1 },
            payer: payer.clone(),
            price: if *cw20 {
                format!("{PRICE} TRC (cw20)")
            } else {
                format!("{PRICE} utrib")
            },
            prompt: prompt.clone(),
            completion: response["completion"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            pay_tx: pay_tx.clone(),
            commit_tx: first_tx(&client, "wasm-commit_attribution.request_id", *id).await?,
            finalize_tx: first_tx(&client, "wasm-settlement.request_id", *id).await?,
            top,
        });
    }
    report.datanets = datanets.iter().map(|d| d.report.clone()).collect();
    report.models = models.iter().map(|m| m.report.clone()).collect();
    report.contributors = payouts;
    report.actors = actors;
    steps.end("verify, claim, report");

    steps.begin("open verification: a self-attested model, four verifiers");
    let honest_datanet = &datanets[models[0].datanet];
    let puppet = honest_datanet
        .report
        .contributions
        .iter()
        .rev()
        .find(|c| c.status == "accepted")
        .map(|c| (c.id, c.contributor_label.clone()))
        .ok_or_else(|| anyhow!("the first datanet has no accepted contribution"))?;
    let (verification, checks) = crate::verification::run(crate::verification::Stage {
        home: &home,
        devnet: &devnet,
        params: &params,
        contracts: &contracts,
        client: &client,
        developer: &developer,
        funder: &curator,
        user: &users[0],
        honest: crate::verification::Honest {
            model_id: models[0].report.id,
            model_dir: &models[0].model_dir,
            index_dir: &models[0].index_dir,
            gateway: &gateways[0],
            attestor: operators[0].address().to_string(),
        },
        puppet,
        prompts: prompts(honest_datanet, 6),
        port_offset: args.port_offset,
    })
    .await?;
    report.checks.extend(checks);
    report.verification = Some(verification);
    steps.end("open verification");
    report.steps = steps.done.clone();
    report.generated_at = cosmrs::tendermint::Time::now().to_rfc3339();

    let json = home.join("report.json");
    let html = home.join("report.html");
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)?;
    std::fs::write(&html, crate::report::render_html(&report))?;
    print_summary(&report, &html);

    let passed = report.checks.iter().all(|c| c.passed);
    if args.keep_running {
        let rest = devnet
            .nodes
            .first()
            .map(|n| n.rest_url.clone())
            .unwrap_or_default();
        let info = params.keplr_chain_info(devnet.rpc_url(), &rest);
        std::fs::write(
            home.join("chain-info.json"),
            serde_json::to_vec_pretty(&info)?,
        )?;
        // The web app's config.json: chain, contracts, store and the gateway of each model.
        let web = serde_json::json!({
            "chain": info,
            "contracts": contracts,
            "store": store_url,
            "gateways": models
                .iter()
                .zip(&gateways)
                .map(|(m, g)| (m.report.id.to_string(), g.clone()))
                .collect::<BTreeMap<_, _>>(),
        });
        std::fs::write(
            home.join("web-config.json"),
            serde_json::to_vec_pretty(&web)?,
        )?;
        println!("\nThe network keeps running (ctrl-c stops it):");
        println!("  RPC            {}", devnet.rpc_url());
        println!("  REST           {rest}");
        println!("  content store  {store_url}");
        for (m, g) in gateways.iter().enumerate() {
            println!(
                "  relayer {}      {g}  (model {})",
                m + 1,
                models[m].report.id
            );
        }
        println!(
            "  deployment     {}",
            home.join("deployment.json").display()
        );
        println!(
            "  Keplr chain    {}",
            home.join("chain-info.json").display()
        );
        println!(
            "  web app        copy {} to web/dist/config.json",
            home.join("web-config.json").display()
        );
        tributary_attrib::serve::shutdown_signal().await;
    }
    let _ = relayer_stop.send(true);
    for task in relayer_tasks {
        let _ = task.await;
    }
    store_task.abort();
    drop(guard);
    Ok(passed)
}

/// Stops the devnet when the run ends, however it ends.
struct DevnetGuard<'a>(&'a Devnet);

impl Drop for DevnetGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.stop();
    }
}

fn init_logs(path: &Path) -> Result<()> {
    let file = std::fs::File::create(path)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
    Ok(())
}

fn bank_send(
    from: &Signer,
    to: &tributary_client::AccountId,
    amount: u128,
) -> Result<tributary_client::Any> {
    use cosmrs::tx::Msg;
    cosmrs::bank::MsgSend {
        from_address: from.address().clone(),
        to_address: to.clone(),
        amount: vec![coin(amount, "utrib")?],
    }
    .to_any()
    .map_err(|e| anyhow!("{e}"))
}

/// Creates a datanet, contributes every document (per contributor, all at once: one
/// transaction of commitments, one of reveals) and uploads it, submits near-duplicates that the
/// curator rejects, reviews and snapshots.
async fn build_datanet(
    client: &Client,
    contract: &str,
    curator: &Signer,
    accounts: &[Account],
    source: &Source,
    store: &HttpStore,
    store_url: &str,
) -> Result<BuiltDatanet> {
    let created = client
        .execute(
            curator,
            contract,
            &datanet::ExecuteMsg::CreateDatanet {
                name: source.name.clone(),
                description: source.description.clone(),
                domain_tags: vec![source.domain.clone()],
                license: "as distributed by Debian".into(),
                policy: CurationPolicy::CuratorReview,
                curators: Vec::new(),
                max_contribution_bytes: 1 << 16,
            },
            Vec::new(),
        )
        .await?;
    let id: u64 = created
        .wasm_attribute(contract, "datanet_id")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("create_datanet announced no id"))?;

    // Each group's documents, plus a near-duplicate of another group's first document: a copy
    // with different whitespace, which the curator rejects.
    let mut per_account: Vec<Vec<(String, String)>> = vec![Vec::new(); accounts.len()];
    for doc in &source.documents {
        per_account[doc.group].push((doc.title.clone(), doc.text.clone()));
    }
    let mut near_duplicates = BTreeSet::new();
    let groups = accounts.len();
    for (g, docs) in per_account.iter_mut().enumerate().take(2) {
        let victim = &source.documents[((g + 1) % groups) * source.documents.len() / groups];
        near_duplicates.insert((g, docs.len()));
        docs.push((
            format!("{} (copy)", victim.title),
            format!("{}\n", victim.text.replace('\n', " \n")),
        ));
    }
    // Each account commits to all its documents in one transaction and reveals them in the
    // next block in a second one; only then are the bytes uploaded, when the chain already
    // records whose they are.
    let datanets = client.datanet(contract);
    let contributions = per_account.iter().enumerate().map(|(g, docs)| {
        let datanets = &datanets;
        async move {
            let batch: Vec<NewContribution> = docs
                .iter()
                .map(|(title, text)| {
                    let hash = sha256(text.as_bytes());
                    let hex = HexBinary::from(hash.as_slice()).to_hex();
                    NewContribution {
                        uri: format!("{store_url}/blobs/{hex}"),
                        content_hash: hex,
                        size_bytes: text.len() as u64,
                        media_type: "text/plain".into(),
                        metadata: Some(serde_json::json!({ "title": title }).to_string()),
                    }
                })
                .collect();
            let contributed = datanets
                .contribute_many(&accounts[g].signer, id, &batch)
                .await?;
            for ((_, text), c) in docs.iter().zip(&batch) {
                let stored = store.put(text.as_bytes().to_vec()).await?;
                if stored.to_hex() != c.content_hash {
                    bail!(
                        "the store named {} by {stored}, not {}",
                        c.uri,
                        c.content_hash
                    );
                }
            }
            Ok::<_, anyhow::Error>((g, contributed.ids, contributed.reveal.hash))
        }
    });
    let contributed = try_join_all(contributions).await?;

    let mut report_rows = Vec::new();
    let mut reviews = Vec::new();
    let mut texts = BTreeMap::new();
    for (g, ids, tx) in &contributed {
        for (k, cid) in ids.iter().enumerate() {
            let (title, text) = &per_account[*g][k];
            let rejected = near_duplicates.contains(&(*g, k));
            let reason = rejected.then(|| "near-duplicate of another contribution".to_string());
            reviews.push(ContractCall::new(
                contract,
                &datanet::ExecuteMsg::Review {
                    contribution_id: *cid,
                    decision: if rejected {
                        ReviewDecision::Reject
                    } else {
                        ReviewDecision::Accept
                    },
                    reason: reason.clone(),
                },
                Vec::new(),
            )?);
            texts.insert(*cid, text.clone());
            report_rows.push(ContributionReport {
                id: *cid,
                title: title.clone(),
                contributor: accounts[*g].signer.address().to_string(),
                contributor_label: accounts[*g].label.clone(),
                status: if rejected { "rejected" } else { "accepted" }.into(),
                reason,
                size_bytes: text.len() as u64,
                usage_count: 0,
                contribute_tx: tx.clone(),
                review_tx: String::new(),
            });
        }
    }
    // Reviewed in contribution order, so the tree order is the id order.
    report_rows.sort_by_key(|r| r.id);
    let review = client.execute_many(curator, reviews).await?;
    for row in &mut report_rows {
        row.review_tx = review.hash.clone();
    }
    let snapshot = client
        .execute(
            curator,
            contract,
            &datanet::ExecuteMsg::Snapshot {
                datanet_id: id,
                note: Some("demo snapshot".into()),
            },
            Vec::new(),
        )
        .await?;
    let version: u32 = snapshot
        .wasm_attribute(contract, "version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("snapshot announced no version"))?;
    let datanets = client.datanet(contract);
    let frozen = datanets.version(id, version).await?;

    // The corpus the model trains on: the version's accepted contributions in tree order.
    let mut contributions = Vec::new();
    for row in report_rows.iter().filter(|r| r.status == "accepted") {
        let on_chain = datanets.contribution(row.id).await?;
        contributions.push(Contribution {
            contribution_id: row.id,
            datanet_id: id,
            contributor: on_chain.contributor.to_string(),
            content_hash: on_chain.content_hash.clone(),
            leaf_index: on_chain.leaf_index,
        });
    }
    contributions.sort_by_key(|c| c.leaf_index);
    let corpus = Corpus {
        datanets: vec![DatanetRoot {
            datanet_id: id,
            version,
            root: frozen.root.clone(),
        }],
        contributions,
    };
    Ok(BuiltDatanet {
        report: DatanetReport {
            id,
            name: source.name.clone(),
            domain: source.domain.clone(),
            source: source.origin.clone(),
            version,
            root: frozen.root.to_hex(),
            create_tx: created.hash,
            snapshot_tx: snapshot.hash,
            contributions: report_rows,
        },
        texts,
        corpus,
        held_out: source.held_out.iter().map(|d| d.text.clone()).collect(),
    })
}

/// Trains on the snapshot's content read back from the store, indexes, registers two versions
/// (utrib and cw20 prices) attested by `operator`.
#[allow(clippy::too_many_arguments)]
async fn train_and_register(
    client: &Client,
    contracts: &tributary_client::Contracts<String>,
    developer: &Signer,
    operator: &Signer,
    plan: &Plan,
    built: &BuiltDatanet,
    index: usize,
    home: &Path,
    store_url: &str,
) -> Result<BuiltModel> {
    let model_dir = home.join(format!("models/{}/model", built.report.name));
    let index_dir = home.join(format!("models/{}/index", built.report.name));
    let corpus = built.corpus.clone();
    let steps = plan.steps[index];
    let config = TrainConfig::new(plan.model.clone())
        .with_steps(steps)
        .with_batch_size(plan.batch_size)
        .with_shards(plan.shards)
        .with_learning_rate(plan.learning_rate)
        .with_warmup_steps(steps / 10)
        .with_checkpoints(if plan.index_checkpoints { 2 } else { 0 });
    let index_settings = IndexSettings {
        all_checkpoints: plan.index_checkpoints,
        ..IndexSettings::default()
    };
    let (store_url, model_dir_c, index_dir_c) =
        (store_url.to_string(), model_dir.clone(), index_dir.clone());
    let held_out_texts = built.held_out.clone();
    let started = Instant::now();
    let (weights_hash, index_hash, params, final_loss, examples_len, parameters, held_out) =
        tokio::task::spawn_blocking(move || -> Result<_> {
            let store = open_store(&store_url)?;
            // Every blob is re-hashed and the version's root recomputed from the leaves.
            corpus.check()?;
            let mut texts = corpus.read(&store)?;
            // Contributors' transactions land in any order, and with them the leaf order the
            // corpus lists: training in content order makes the model the same on every run.
            texts.sort_by_cached_key(|(_, bytes)| sha256(bytes));
            let examples = examples(&texts, config.model.context);
            let trained = train_on_cpu(&config, &examples, true).map_err(|e| anyhow!(e))?;
            let loss = trained.report.train_loss;
            let parameters = trained.parameters();
            let held_out = held_out_report(
                &trained.model,
                config.model.context,
                &texts.iter().map(|(_, t)| t.as_slice()).collect::<Vec<_>>(),
                &held_out_texts
                    .iter()
                    .map(|t| t.as_bytes())
                    .collect::<Vec<_>>(),
            );
            let artifact = ModelArtifact::save(&model_dir_c, &config, &corpus, &trained)?;
            build_index(&artifact, &examples, &index_dir_c, &index_settings, true)?;
            let index = GradientIndex::open(&index_dir_c)?;
            let engine = Engine::open(&model_dir_c, &index_dir_c)?;
            let params = params_hash(&engine.params(
                Method::Preconditioned,
                GatewayConfig::default().packet_top_k,
            ));
            Ok((
                artifact.weights_hash().to_string(),
                index.index_hash().to_string(),
                params,
                loss,
                examples.len(),
                parameters,
                held_out,
            ))
        })
        .await??;
    let train_seconds = started.elapsed().as_secs_f64();
    let version_input = |price: Price| -> Result<ModelVersionInput> {
        Ok(ModelVersionInput {
            lineage: built.corpus.datanets.clone(),
            weights_hash: HexBinary::from_hex(&weights_hash)?,
            weights_uri: format!("file://{}", model_dir.display()),
            index_hash: HexBinary::from_hex(&index_hash)?,
            method: AttributionMethod {
                id: Method::Preconditioned.id().into(),
                params_hash: hex(&params),
                params: None,
            },
            price,
            split: SPLIT,
            attestors: vec![operator.address().to_string()],
            quorum: 1,
        })
    };
    let name = format!("{}-slm", built.report.name);
    let registered = client
        .execute(
            developer,
            &contracts.model_registry,
            &registry::ExecuteMsg::RegisterModel {
                name: name.clone(),
                description: format!(
                    "A small byte-level language model of {}",
                    built.report.domain
                ),
                architecture: "decoder-only transformer, byte tokens".into(),
                version: version_input(Price {
                    asset: AssetInfo::native("utrib"),
                    amount: Uint128::new(PRICE),
                })?,
            },
            Vec::new(),
        )
        .await?;
    let model_id: u64 = registered
        .wasm_attribute(&contracts.model_registry, "model_id")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("register_model announced no id"))?;
    let added = client
        .execute(
            developer,
            &contracts.model_registry,
            &registry::ExecuteMsg::AddVersion {
                model_id,
                version: version_input(Price {
                    asset: AssetInfo::cw20(&contracts.cw20),
                    amount: Uint128::new(PRICE),
                })?,
            },
            Vec::new(),
        )
        .await?;
    let version = |price: &str, tx: &str| ModelVersionReport {
        version: 0,
        price: price.to_string(),
        weights_hash: weights_hash.clone(),
        index_hash: index_hash.clone(),
        register_tx: tx.to_string(),
    };
    Ok(BuiltModel {
        report: ModelReport {
            id: model_id,
            name,
            datanet_id: built.report.id,
            datanet_version: built.report.version,
            developer: developer.address().to_string(),
            versions: vec![
                ModelVersionReport {
                    version: 1,
                    ..version(&format!("{PRICE} utrib"), &registered.hash)
                },
                ModelVersionReport {
                    version: 2,
                    ..version(&format!("{PRICE} TRC (cw20)"), &added.hash)
                },
            ],
            train_steps: steps,
            train_seconds,
            final_loss,
            examples: examples_len,
            parameters,
            held_out,
            operator: operator.address().to_string(),
        },
        model_dir,
        index_dir,
        datanet: index,
    })
}

/// Starts one in-process relayer per model (its own key, outbox and gateway).
#[allow(clippy::type_complexity)]
async fn start_relayers(
    home: &Path,
    devnet: &Devnet,
    params: &DevnetParams,
    contracts: &tributary_client::Contracts<String>,
    models: &[BuiltModel],
    port_offset: u16,
) -> Result<(
    tokio::sync::watch::Sender<bool>,
    Vec<tokio::task::JoinHandle<()>>,
    Vec<String>,
)> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let mut gateways = Vec::new();
    for (m, model) in models.iter().enumerate() {
        let name = if m == 0 { "operator" } else { "attestor2" };
        let dir = home.join(format!("relayers/{name}"));
        let dev = devnet
            .key(name)
            .ok_or_else(|| anyhow!("no devnet key {name}"))?;
        let gateway = format!("127.0.0.1:{}", 8700 + port_offset + m as u16 * 10);
        let telemetry = format!("127.0.0.1:{}", 9464 + port_offset + m as u16);
        let toml = RelayerToml {
            chain_id: devnet.chain_id.clone(),
            rpc: devnet.rpc_url().to_string(),
            prefix: params.bech32_prefix.clone(),
            gas_price: format!("{}{}", params.fees.min_gas_price, devnet.denom),
            key: name.to_string(),
            keys: dir.join("keys"),
            payout: contracts.payout.clone(),
            registry: contracts.model_registry.clone(),
            models: vec![(model.report.id, 1), (model.report.id, 2)],
            engine: format!(
                "[engine]\nmode = \"in_process\"\nmodel_dir = \"{}\"\nindex_dir = \"{}\"",
                model.model_dir.display(),
                model.index_dir.display()
            ),
            gateway: gateway.clone(),
            telemetry: telemetry.clone(),
            outbox: dir.join("outbox.redb"),
            extra: String::new(),
        };
        let config_path = dir.join("relayer.toml");
        tasks.push(spawn_process(
            &dir,
            &toml,
            dev.mnemonic.clone(),
            false,
            stopped.clone(),
        )?);
        let log = home.join("logs/relayers.log");
        wait_ready(
            &telemetry,
            &format!("relayer {name} (log: {})", log.display()),
        )
        .await?;
        println!(
            "    relayer {} for model {} at http://{gateway} ({})",
            dev.address,
            model.report.id,
            config_path.display()
        );
        gateways.push(format!("http://{gateway}"));
    }
    Ok((stop, tasks, gateways))
}

/// Prompts for a datanet's model: the opening words of some of its documents.
fn prompts(datanet: &BuiltDatanet, count: usize) -> Vec<String> {
    let docs: Vec<&String> = datanet.texts.values().collect();
    (0..count)
        .map(|k| {
            let text = docs[(k * 7 + 3) % docs.len()];
            let words: Vec<&str> = text.split_whitespace().take(4).collect();
            words.join(" ")
        })
        .collect()
}

/// Pays for one inference of version 1 (utrib) or 2 (cw20); returns the request and its tx.
pub(crate) async fn pay(
    client: &Client,
    payout: &str,
    token: &str,
    user: &Signer,
    model_id: u64,
    cw20: bool,
    prompt: &str,
) -> Result<(u64, String)> {
    let prompt_hash = hex(&sha256(prompt.as_bytes()));
    let outcome = if cw20 {
        let hook = payout::ReceiveMsg::RequestInference {
            model_id,
            version: 2,
            prompt_hash,
        };
        client
            .execute(
                user,
                token,
                &cw20::Cw20ExecuteMsg::Send {
                    contract: payout.to_string(),
                    amount: Uint128::new(PRICE),
                    msg: cosmwasm_std::to_json_binary(&hook)?,
                },
                Vec::new(),
            )
            .await?
    } else {
        client
            .execute(
                user,
                payout,
                &payout::ExecuteMsg::RequestInference {
                    model_id,
                    version: 1,
                    prompt_hash,
                },
                vec![coin(PRICE, "utrib")?],
            )
            .await?
    };
    let request = InferenceRequested::from_events(&outcome.events, payout)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the payment announced no request"))?;
    Ok((request.request_id, outcome.hash))
}

/// Sends the prompt of a paid request to a relayer's gateway; the sampling is the one every
/// attestor of a paid request uses, so the payer sends none.
pub(crate) async fn submit(gateway: &str, request_id: u64, prompt: &str) -> Result<Value> {
    let body = serde_json::json!({
        "request_id": request_id,
        "prompt": prompt,
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = reqwest::Client::new()
            .post(format!("{gateway}/v1/completions"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        if let Ok(response) = response {
            let status = response.status();
            let value: Value = serde_json::from_slice(&response.bytes().await?)?;
            if status.is_success() {
                return Ok(value);
            }
            // Not seen by the node the gateway reads yet, or the engine busy: ask again.
            if !(status.as_u16() == 402 || status.is_server_error()) || Instant::now() > deadline {
                bail!("request {request_id}: the gateway answered {status}: {value}");
            }
        } else if Instant::now() > deadline {
            bail!("request {request_id}: the gateway at {gateway} does not answer");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The packet holding quorum for each request.
async fn agreed_packets(
    client: &Client,
    payout: &str,
    ids: &[u64],
) -> Result<BTreeMap<u64, AttributionPacket>> {
    let contract = client.payout(payout);
    let mut out = BTreeMap::new();
    for &id in ids {
        let request = contract.request(id).await?;
        let hash = request
            .agreed_packet
            .ok_or_else(|| anyhow!("request {id} has no agreed packet"))?;
        let packet: AttributionPacket = contract
            .query(&payout::QueryMsg::Packet {
                request_id: id,
                packet_hash: hash,
            })
            .await?;
        out.insert(id, packet);
    }
    Ok(out)
}

fn print_summary(report: &Report, html: &Path) {
    println!("\n==> summary");
    for d in &report.datanets {
        let accepted = d
            .contributions
            .iter()
            .filter(|c| c.status == "accepted")
            .count();
        let contributors: BTreeSet<&str> = d
            .contributions
            .iter()
            .map(|c| c.contributor.as_str())
            .collect();
        println!(
            "  datanet {} {:<16} {:>3} contributions ({} accepted) from {} contributors, {}",
            d.id,
            d.name,
            d.contributions.len(),
            accepted,
            contributors.len(),
            d.source
        );
    }
    for m in &report.models {
        println!(
            "  model   {} {:<20} {} parameters, {} steps ({:.0}s), loss {:.3}",
            m.id, m.name, m.parameters, m.train_steps, m.train_seconds, m.final_loss
        );
    }
    println!(
        "  {} paid inferences, every one finalized",
        report.inferences.len()
    );
    for a in &report.actors {
        println!("  {:<28} {:>9} utrib {:>9} TRC", a.actor, a.native, a.cw20);
    }
    let mut top: Vec<&ContributorPayout> = report.contributors.iter().collect();
    top.sort_by_key(|c| std::cmp::Reverse(c.native + c.cw20));
    println!("  best-paid contributors:");
    for c in top.iter().take(5) {
        println!(
            "    {:<40} {:>8} utrib {:>8} TRC",
            c.label, c.native, c.cw20
        );
    }
    if let Some(i) = report.inferences.first() {
        println!("  sample inference #{} ({}):", i.request_id, i.model_name);
        println!("    prompt     {:?}", i.prompt);
        println!("    completion {:?}", i.completion);
        for t in i.top.iter().take(3) {
            println!(
                "    {:>6.2}%  #{} {} ({})",
                f64::from(t.weight_bps) / 100.0,
                t.contribution_id,
                t.title,
                t.contributor_label
            );
        }
    }
    println!("  checks:");
    for c in &report.checks {
        println!(
            "    [{}] {} ({})",
            if c.passed { "ok" } else { "FAILED" },
            c.name,
            c.detail
        );
    }
    println!("  steps:");
    let mut total = 0.0;
    for s in &report.steps {
        total += s.seconds;
        println!("    {:<16} {:>7.1}s", s.name, s.seconds);
    }
    println!("    {:<16} {:>7.1}s", "total", total);
    println!("\n  report: {}", html.display());
}

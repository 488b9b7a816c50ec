//! Open verification in the demo: the developer registers a copy of the first model attested by
//! itself, and its attestor's engine hands every packet's contributors' share to one
//! contribution (a sock puppet). Four independent verifiers, each bonded, recompute a share of
//! the requests of both that model and the honest first model with the real engine, challenge
//! the forged packets, sit on each other's committees and resolve. The report shows what each
//! verifier checked, found and earned, and how each forged request was settled.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use axum::Json;
use cosmwasm_std::HexBinary;
use tributary_attrib::engine::Engine;
use tributary_attrib::serve::{
    router, serve_with_shutdown, AccessToken, CompletionService, GatewayConfig, ServedModel,
    Unchecked,
};
use tributary_attrib_api::{CompletionRequest, CompletionResponse, Sampling, SamplingRequest};
use tributary_client::{coin, Client, Contracts, Signer};
use tributary_devnet::{Devnet, DevnetParams};
use tributary_keyring::Keyring;
use tributary_relayer::verifier::VerifierStatus;
use tributary_types::payout::{ExecuteMsg, QueryMsg, RequestStatus};
use tributary_types::registry::ModelVersionInput;
use tributary_types::verification::{BondInfo, ChallengeInfo, VerificationParams};
use tributary_types::{AttributionEntry, AttributionPacket};

use crate::relayer_config::{spawn_process, wait_ready, RelayerToml};
use crate::report::{Check, DisputeReport, VerificationReport, VerifierReport};

/// How many verifiers run: a challenger and a committee of three.
const VERIFIERS: usize = 4;
/// What the dishonest developer bonds as an attestor.
const OWNER_BOND: u128 = 10_000_000;
/// Share of the attested requests each verifier recomputes.
const SAMPLE_RATE: f64 = 0.5;

/// The honest model the dishonest one copies, and where its honest attestor serves.
pub struct Honest<'a> {
    pub model_id: u64,
    pub model_dir: &'a Path,
    pub index_dir: &'a Path,
    pub gateway: &'a str,
    pub attestor: String,
}

/// Everything the stage needs from the run.
pub struct Stage<'a> {
    pub home: &'a Path,
    pub devnet: &'a Devnet,
    pub params: &'a DevnetParams,
    pub contracts: &'a Contracts<String>,
    pub client: &'a Client,
    pub developer: &'a Signer,
    pub funder: &'a Signer,
    pub user: &'a Signer,
    pub honest: Honest<'a>,
    /// The contribution the dishonest engine pays, and who made it.
    pub puppet: (u64, String),
    pub prompts: Vec<String>,
    pub port_offset: u16,
}

/// Runs the stage; returns its report and checks.
pub async fn run(stage: Stage<'_>) -> Result<(VerificationReport, Vec<Check>)> {
    let Stage {
        home,
        devnet,
        params,
        contracts,
        client,
        developer,
        funder,
        user,
        honest,
        puppet,
        prompts,
        port_offset,
    } = stage;
    let payout = client.payout(&contracts.payout);
    let registry = client.registry(&contracts.model_registry);
    let verification: VerificationParams = payout.query(&QueryMsg::Verification {}).await?;

    // The developer's own copy of the honest model, attested by itself alone.
    let original = registry.model_version(honest.model_id, 1).await?;
    let owned = registry
        .register_model(
            developer,
            "self-attested copy",
            "the first model, attested by its own developer",
            "transformer",
            ModelVersionInput {
                lineage: original.lineage.clone(),
                weights_hash: original.weights_hash.clone(),
                weights_uri: original.weights_uri.clone(),
                index_hash: original.index_hash.clone(),
                method: original.method.clone(),
                price: original.price.clone(),
                split: original.split,
                attestors: vec![developer.address().to_string()],
                quorum: 1,
            },
        )
        .await?;
    payout
        .execute(
            developer,
            &ExecuteMsg::Bond {},
            vec![coin(OWNER_BOND, &devnet.denom)?],
        )
        .await?;
    println!(
        "    model {owned}: the developer's copy of model {}, attested by the developer, bonded {OWNER_BOND} utrib",
        honest.model_id
    );

    // One engine: served honestly to the verifiers, and through the forging gateway to the
    // developer's attestor.
    let engine = Engine::open(honest.model_dir, honest.index_dir)
        .context("opening the first model for the verifiers")?;
    let service = Arc::new(CompletionService::new(
        vec![ServedModel {
            name: "model".into(),
            engine,
        }],
        Arc::new(Unchecked),
        GatewayConfig::default(),
    ));
    let token = "the-verifiers-share-an-engine-gateway-0123456789";
    let token_file = home.join("verifiers/engine.token");
    std::fs::create_dir_all(home.join("verifiers"))?;
    std::fs::write(&token_file, token)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let honest_engine = format!("127.0.0.1:{}", 8760 + port_offset);
    let forging_engine = format!("127.0.0.1:{}", 8761 + port_offset);
    serve_honest(&honest_engine, service.clone(), token, stopped.clone()).await?;
    serve_forging(&forging_engine, service.clone(), puppet.0, stopped.clone()).await?;
    let http_engine = |address: &str| {
        format!(
            "[engine]\nmode = \"http\"\nurl = \"http://{address}\"\nmodel_name = \"model\"\nauth_token_file = \"{}\"",
            token_file.display()
        )
    };
    let config =
        |dir: &Path, key: &str, slot: u16, models, engine: String, extra: String| RelayerToml {
            chain_id: devnet.chain_id.clone(),
            rpc: devnet.rpc_url().to_string(),
            prefix: params.bech32_prefix.clone(),
            gas_price: format!("{}{}", params.fees.min_gas_price, devnet.denom),
            key: key.to_string(),
            keys: dir.join("keys"),
            payout: contracts.payout.clone(),
            registry: contracts.model_registry.clone(),
            models,
            engine,
            gateway: format!("127.0.0.1:{}", 8770 + port_offset + slot * 2),
            telemetry: format!("127.0.0.1:{}", 8771 + port_offset + slot * 2),
            outbox: dir.join("outbox.redb"),
            extra,
        };

    // The developer's attestor.
    let dir = home.join("relayers/developer");
    let owner = config(
        &dir,
        "developer",
        0,
        vec![(owned, 1)],
        http_engine(&forging_engine),
        String::new(),
    );
    let owner_gateway = format!("http://{}", owner.gateway);
    let mut tasks = vec![spawn_process(
        &dir,
        &owner,
        developer_mnemonic(devnet)?,
        false,
        stopped.clone(),
    )?];
    wait_ready(&owner.telemetry, "the developer's attestor").await?;

    // The verifiers.
    let sources = format!(
        "\n[verifier]\nsample_rate = {SAMPLE_RATE}\npoll_ms = 500\n\n[[verifier.sources]]\nurl = \"{owner_gateway}\"\nattestor = \"{}\"\n\n[[verifier.sources]]\nurl = \"{}\"\nattestor = \"{}\"\n",
        developer.address(),
        honest.gateway,
        honest.attestor,
    );
    let mut verifiers = Vec::new();
    for i in 0..VERIFIERS {
        let mnemonic = Keyring::generate_mnemonic().to_string();
        let signer = Signer::from_mnemonic(&mnemonic, &params.bech32_prefix)?;
        client
            .send(
                funder,
                signer.address().as_ref(),
                vec![coin(20_000_000, &devnet.denom)?],
            )
            .await?;
        let name = format!("verifier{}", i + 1);
        let dir = home.join(format!("verifiers/{name}"));
        let toml = config(
            &dir,
            &name,
            1 + i as u16,
            vec![(owned, 1), (honest.model_id, 1)],
            http_engine(&honest_engine),
            sources.clone(),
        );
        tasks.push(spawn_process(&dir, &toml, mnemonic, true, stopped.clone())?);
        wait_ready(&toml.telemetry, &name).await?;
        verifiers.push((name, signer.address().to_string(), toml.telemetry.clone()));
    }
    for (name, address, _) in &verifiers {
        wait_bonded(client, &contracts.payout, address, &verification, name).await?;
    }
    println!(
        "    {VERIFIERS} verifiers bonded {} utrib each, recomputing {:.0}% of the attested requests",
        verification.min_verifier_bond,
        SAMPLE_RATE * 100.0
    );

    // Paid requests to both models.
    let mut requests = Vec::new();
    for (k, prompt) in prompts.iter().enumerate() {
        let (model_id, gateway) = if k % 3 == 2 {
            (honest.model_id, honest.gateway.to_string())
        } else {
            (owned, owner_gateway.clone())
        };
        let (id, _) = crate::flow::pay(
            client,
            &contracts.payout,
            &contracts.cw20,
            user,
            model_id,
            false,
            prompt,
        )
        .await?;
        let served = crate::flow::submit(&gateway, id, prompt).await?;
        let served: CompletionResponse = serde_json::from_value(served)?;
        requests.push((id, model_id, prompt.clone(), served));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for (id, ..) in &requests {
        while payout.request(*id).await?.status != RequestStatus::Finalized {
            if Instant::now() > deadline {
                bail!(
                    "request {id} not finalized after 300 s: {:?}",
                    challenge_of(client, &contracts.payout, *id).await?
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // What happened to each request.
    let mut disputes = Vec::new();
    let mut caught = 0;
    let mut forged_settled_right = true;
    let mut honest_unchallenged = true;
    let mut expected_bond = OWNER_BOND;
    for (id, model_id, prompt, served) in &requests {
        let recomputed =
            honest_packet(&service, *id, *model_id, prompt, &original.method.id).await?;
        let challenge = challenge_of(client, &contracts.payout, *id).await?;
        let request = payout.request(*id).await?;
        let settled_by = request.agreed_packet.clone().unwrap_or_default();
        let attested = served
            .packet
            .as_ref()
            .map(hash)
            .ok_or_else(|| anyhow!("request {id} was served without a packet"))?;
        if *model_id == owned {
            if let Some(c) = &challenge {
                caught += 1;
                expected_bond -= expected_bond * u128::from(c.params.slash_bps) / 10_000;
                forged_settled_right &= settled_by == hash(&recomputed)
                    && c.outcome == Some(tributary_types::verification::ChallengeOutcome::Upheld);
            }
        } else {
            honest_unchallenged &= challenge.is_none() && settled_by == hash(&recomputed);
        }
        disputes.push(DisputeReport {
            request_id: *id,
            model_id: *model_id,
            attested_by_owner: *model_id == owned,
            attested_packet: attested.to_hex(),
            recomputed_packet: hash(&recomputed).to_hex(),
            settled_by: settled_by.to_hex(),
            challenger: challenge.as_ref().map(|c| c.challenger.to_string()),
            outcome: challenge
                .as_ref()
                .and_then(|c| c.outcome)
                .map(|o| format!("{o:?}").to_lowercase()),
            committee: challenge
                .as_ref()
                .map(|c| c.committee.iter().map(|m| m.to_string()).collect())
                .unwrap_or_default(),
            slashed: challenge.as_ref().map_or(0, |c| c.slashed.u128()),
            puppet_weight_bps: served
                .packet
                .as_ref()
                .and_then(|p| p.entries.iter().find(|e| e.contribution_id == puppet.0))
                .map_or(0, |e| e.weight_bps),
        });
    }
    let bond: BondInfo = payout
        .query(&QueryMsg::BondOf {
            address: developer.address().to_string(),
        })
        .await?;
    let mut rows = Vec::new();
    for (name, address, telemetry) in &verifiers {
        let body = reqwest::get(format!("http://{telemetry}/status"))
            .await?
            .bytes()
            .await?;
        let status: VerifierStatus = serde_json::from_slice(&body)?;
        rows.push(VerifierReport {
            name: name.clone(),
            address: address.clone(),
            checked: status.checked,
            mismatches: status.mismatches,
            challenges: status.challenges,
            votes: status.votes,
            earned: u128::try_from(status.earned).unwrap_or_default(),
            recompute_ms_p50: status.recompute_seconds_p50.map(|s| s * 1000.0),
            gas_used: status.gas_used,
        });
    }
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }

    let forged = requests.iter().filter(|r| r.1 == owned).count();
    println!(
        "    {caught} of {forged} forged packets caught and overturned; the developer's bond {OWNER_BOND} -> {} utrib",
        bond.active + bond.unbonding
    );
    let checks = vec![
        Check {
            name: "verifiers caught the self-attested forged packets".into(),
            passed: caught > 0 && forged_settled_right,
            detail: format!(
                "{caught} of {forged} challenged (each verifier samples {:.0}%), every challenge upheld and settled by the recomputed packet",
                SAMPLE_RATE * 100.0
            ),
        },
        Check {
            name: "the dishonest attestor was slashed, the honest one never challenged".into(),
            passed: (bond.active + bond.unbonding).u128() == expected_bond && honest_unchallenged,
            detail: format!(
                "bond {OWNER_BOND} -> {} utrib",
                bond.active + bond.unbonding
            ),
        },
    ];
    let report = VerificationReport {
        model_id: owned,
        copied_model_id: honest.model_id,
        puppet_contribution: puppet.0,
        puppet_contributor: puppet.1,
        owner_bond_before: OWNER_BOND,
        owner_bond_after: (bond.active + bond.unbonding).u128(),
        sample_rate: SAMPLE_RATE,
        committee_size: verification.committee_size,
        challenge_bond: verification.challenge_bond.u128(),
        slash_bps: verification.slash_bps,
        verifiers: rows,
        requests: disputes,
    };
    Ok((report, checks))
}

fn hash(packet: &AttributionPacket) -> HexBinary {
    HexBinary::from(packet.packet_hash().map(|h| h.to_vec()).unwrap_or_default())
}

fn developer_mnemonic(devnet: &Devnet) -> Result<String> {
    Ok(devnet
        .key("developer")
        .ok_or_else(|| anyhow!("no devnet key developer"))?
        .mnemonic
        .clone())
}

async fn wait_bonded(
    client: &Client,
    payout: &str,
    address: &str,
    params: &VerificationParams,
    name: &str,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let bond: BondInfo = client
            .payout(payout)
            .query(&QueryMsg::BondOf {
                address: address.to_string(),
            })
            .await?;
        if bond.active >= params.min_verifier_bond {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{name} did not bond");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn challenge_of(
    client: &Client,
    payout: &str,
    request_id: u64,
) -> Result<Option<ChallengeInfo>> {
    Ok(client
        .payout(payout)
        .query(&QueryMsg::ChallengeOf { request_id })
        .await?)
}

/// The packet the honest engine computes for a paid request, as every honest attestor would.
async fn honest_packet(
    service: &CompletionService,
    request_id: u64,
    model_id: u64,
    prompt: &str,
    method: &str,
) -> Result<AttributionPacket> {
    let request = CompletionRequest {
        model: "model".into(),
        prompt: prompt.into(),
        sampling: SamplingRequest::exactly(&Sampling::for_paid_request(request_id)),
        request_id: Some(request_id),
        model_id: Some(model_id),
        model_version: Some(1),
        method: Some(method.into()),
    };
    let response = service
        .complete(&request)
        .await
        .map_err(|e| anyhow!("recomputing request {request_id}: {e}"))?;
    response
        .packet
        .clone()
        .ok_or_else(|| anyhow!("request {request_id}: no packet"))
}

async fn serve_honest(
    address: &str,
    service: Arc<CompletionService>,
    token: &str,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let app = router(
        service,
        Some(AccessToken::new(token).map_err(|e| anyhow!("{e}"))?),
    );
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    tokio::spawn(serve_with_shutdown(listener, app, async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    Ok(())
}

/// The dishonest developer's engine gateway: the real engine, with every packet's entries
/// replaced by one that pays `puppet` the whole contributors' share. The chain accepts such a
/// packet (right weights, method and completion hash); only recomputing shows it is wrong.
async fn serve_forging(
    address: &str,
    service: Arc<CompletionService>,
    puppet: u64,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let app = axum::Router::new().route(
        "/v1/completions",
        axum::routing::post(move |Json(request): Json<CompletionRequest>| {
            let service = service.clone();
            async move {
                match service.complete(&request).await {
                    Ok(response) => {
                        let mut response = (*response).clone();
                        if let Some(packet) = response.packet.as_mut() {
                            packet.entries = vec![AttributionEntry {
                                contribution_id: puppet,
                                weight_bps: 10_000,
                            }];
                        }
                        Ok(Json(response))
                    }
                    Err(e) => Err((
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        Json(serde_json::json!({ "error": e.to_string() })),
                    )),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
    });
    Ok(())
}

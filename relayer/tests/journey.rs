//! A buyer's whole journey through the `tributary` command line, against a live devnet, a
//! relayer that publishes its gateway on chain, and a content store: `infer` pays, finds the
//! gateway in the registry, prints the completion with the passages that shaped it; a lost
//! gateway call is retried with `--request-id`; `requests` lists the buyer's requests and
//! `refund` returns the fee of one nobody served. A relayer whose engine serves other weights
//! than the registry holds refuses to start. Needs the node binary
//! (`TRIBUTARYD=$(chain/build)`), the contract artifacts (`ci/build-wasm`) and the `tributary`
//! binary (built with the workspace; `TRIBUTARY_CLI` names another).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{publish_gateway, serial, Batching, RelayerProcess, World, PRICE, TEXTS};
use cosmwasm_std::HexBinary;
use serde_json::Value;
use tributary_keyring::{Backend, Keyring};
use tributary_store::LocalStore;
use tributary_types::payout::ExecuteMsg;
use tributary_types::registry::ModelVersionInput;
use tributary_types::sha256;

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `tributary` binary beside this test's executable, or `$TRIBUTARY_CLI`.
fn cli_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TRIBUTARY_CLI") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("tributary");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "tributary-cli",
                "--bin",
                "tributary",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "building the tributary binary failed");
    }
    bin
}

/// The buyer's side: a keyring holding the devnet's `user` key and the deployment file.
struct Buyer {
    bin: PathBuf,
    keys: PathBuf,
    deployment: PathBuf,
    store: String,
}

/// What one command did.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        assert!(self.ok, "failed: {}\n{}", self.stderr, self.stdout);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl Buyer {
    fn new(world: &World, dir: &Path, store: String) -> Buyer {
        let keys = dir.join("keys");
        let account = world.devnet_account("user");
        Keyring::open(&keys, Backend::Test)
            .unwrap()
            .add("user", &account.address, &account.mnemonic, None)
            .unwrap();
        let deployment = dir.join("deployment.json");
        std::fs::write(
            &deployment,
            serde_json::to_vec_pretty(&world.deployment).unwrap(),
        )
        .unwrap();
        Buyer {
            bin: cli_binary(),
            keys,
            deployment,
            store,
        }
    }

    /// `tributary --from user <args>`, with JSON output unless `text`.
    async fn run(&self, args: &[&str], text: bool) -> Ran {
        let mut command = Command::new(&self.bin);
        command
            .args(["--output", if text { "text" } else { "json" }])
            .arg("--deployment")
            .arg(&self.deployment)
            .arg("--keyring-dir")
            .arg(&self.keys)
            .args(["--keyring-backend", "test", "--from", "user"])
            .args(args)
            .env("TRIBUTARY_STORE", &self.store);
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        Ran {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `tributary store serve` over a folder holding the world's texts; killed when dropped.
struct StoreServer(Child);

impl Drop for StoreServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn serve_texts(dir: &Path, addr: &str) -> StoreServer {
    let blobs = dir.join("blobs");
    let store = LocalStore::open(&blobs).unwrap();
    for (_, text) in TEXTS {
        store.put(text.as_bytes()).unwrap();
    }
    let child = Command::new(cli_binary())
        .args(["store", "serve", "--open", "--addr", addr, "--dir"])
        .arg(&blobs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "store at {addr} never listened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    StoreServer(child)
}

/// A devnet key's balance of the world's cw20.
async fn cw20_balance(world: &World, key: &str) -> u128 {
    let address = world.devnet_account(key).address;
    let answer: Value = world
        .client
        .query_contract(
            &world.token,
            &serde_json::json!({ "balance": { "address": address } }),
        )
        .await
        .unwrap();
    answer["balance"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_pays_finds_the_gateway_on_chain_reads_the_passages_and_refunds_what_nobody_served()
{
    let _serial = serial().await;
    let world = World::start(5600, 400, 2).await;
    let model_id = world.register(&["operator"], 1).await;

    // A version registered with other weights than the engine's: a relayer asked to serve it
    // refuses to start rather than serve payers packets the chain would refuse.
    let registry = world.client.registry(&world.registry);
    let v1 = registry.model_version(model_id, 1).await.unwrap();
    let other_weights = ModelVersionInput {
        lineage: v1.lineage.clone(),
        weights_hash: HexBinary::from(sha256(b"other weights").as_slice()),
        weights_uri: v1.weights_uri.clone(),
        index_hash: v1.index_hash.clone(),
        method: v1.method.clone(),
        price: v1.price.clone(),
        split: v1.split,
        attestors: v1.attestors.iter().map(|a| a.to_string()).collect(),
        quorum: v1.quorum,
    };
    let mismatched = registry
        .add_version(&world.signer("developer"), model_id, other_weights)
        .await
        .unwrap();
    let wrong = world.relayer_config_for(
        &world.devnet_account("operator"),
        1,
        &[(model_id, mismatched)],
        &world.in_process_engine(),
        &Batching::default(),
        "",
    );
    let mut refused = RelayerProcess::start(&wrong);
    let status = refused.exit_status(Duration::from_secs(60)).await;
    assert!(
        status.is_some_and(|s| !s.success()),
        "started anyway: {}",
        refused.log()
    );
    let log = refused.log();
    assert!(
        log.contains(&format!(
            "model {model_id} version {mismatched}: the registry holds weights hash {}",
            hex_of(&sha256(b"other weights"))
        )),
        "{log}"
    );
    assert!(
        !log.contains("index hash"),
        "only the weights differ: {log}"
    );

    // The relayer serves version 1 only, and publishes its gateway.
    let home = world.relayer_config_for(
        &world.devnet_account("operator"),
        0,
        &[(model_id, 1)],
        &world.in_process_engine(),
        &Batching::default(),
        "",
    );
    publish_gateway(&home);
    let public_url = home.gateway.clone();
    let relayer = RelayerProcess::start(&home);
    relayer.wait_ready().await;

    let operator = world.signer("operator").address().to_string();
    let start = Instant::now();
    loop {
        let gateways = registry.gateways(model_id, 1).await.unwrap();
        if let Some(g) = gateways.first() {
            assert_eq!(
                (g.attestor.as_str(), g.url.as_str()),
                (operator.as_str(), public_url.as_str())
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the relayer never published its gateway:\n{}",
            relayer.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let store_addr = format!("127.0.0.1:{}", 20_050 + world.port_offset);
    let _store = serve_texts(dir.path(), &store_addr).await;
    let buyer = Buyer::new(&world, dir.path(), format!("http://{store_addr}"));
    let model = model_id.to_string();

    // Pay, send, wait, read: one command, no gateway given.
    let prompt = "Question: what does a pipe connect?";
    let inference = buyer
        .run(&["infer", "--model", &model, "--prompt", prompt], false)
        .await
        .json();
    let request_id = inference["request_id"].as_u64().unwrap();
    assert_eq!(inference["gateway"], public_url.as_str());
    assert_eq!(inference["paid"]["request_id"], request_id);
    assert_eq!(inference["paid"]["amount"].as_u64(), Some(PRICE as u64));
    assert!(inference["paid"]["tx_hash"]
        .as_str()
        .is_some_and(|h| h.len() == 64));
    assert!(!inference["completion_hex"].as_str().unwrap().is_empty());
    let attribution = inference["attribution"].as_array().unwrap();
    assert!(!attribution.is_empty(), "{inference}");
    let mut passages = 0;
    for a in attribution {
        assert!(a["datanet_id"].as_u64().is_some(), "{a}");
        let Some(passage) = a["passage"].as_str() else {
            continue;
        };
        passages += 1;
        // The passage is a piece of a text that the contribution's own contributor gave.
        let contributor = a["contributor"].as_str().unwrap();
        assert!(
            TEXTS.iter().any(|(name, text)| {
                world.signer(name).address().as_ref() == contributor && text.contains(passage)
            }),
            "{passage:?} is no text of {contributor}"
        );
        assert!(!passage.is_empty());
    }
    assert!(passages > 0, "no passage was read: {inference}");

    // The gateway call lost: the same paid request is sent again, not paid again.
    let again = buyer
        .run(
            &[
                "infer",
                "--model",
                &model,
                "--prompt",
                prompt,
                "--request-id",
                &request_id.to_string(),
            ],
            true,
        )
        .await;
    assert!(again.ok, "{}", again.stderr);
    assert!(
        again.stdout.contains(&format!("request {request_id}")),
        "{}",
        again.stdout
    );
    assert!(again.stdout.contains("attribution ("), "{}", again.stdout);
    assert!(
        !again.stderr.contains("paid "),
        "paid twice: {}",
        again.stderr
    );
    let wrong = buyer
        .run(
            &[
                "infer",
                "--model",
                &model,
                "--prompt",
                "another prompt",
                "--request-id",
                &request_id.to_string(),
            ],
            false,
        )
        .await;
    assert!(!wrong.ok);
    let error: Value = serde_json::from_str(wrong.stderr.trim()).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("another prompt"),
        "{error}"
    );

    // Requests expire within seconds from now on; version 2 (paid in the cw20) has no relayer.
    let admin = world.signer("curator");
    world
        .client
        .payout(&world.payout)
        .execute(
            &admin,
            &ExecuteMsg::UpdateConfig {
                admin: None,
                treasury: None,
                challenge_window_seconds: None,
                request_expiry_seconds: Some(6),
                accepted_cw20: None,
                max_entries: None,
            },
            Vec::new(),
        )
        .await
        .unwrap();
    let unserved = buyer
        .run(
            &[
                "infer",
                "--model",
                &model,
                "--version",
                "2",
                "--prompt",
                "nobody serves this",
                "--gateway",
                "http://127.0.0.1:9",
                "--wait",
                "2",
            ],
            false,
        )
        .await;
    assert!(!unserved.ok);
    let error: Value = serde_json::from_str(unserved.stderr.trim()).unwrap();
    let message = error["error"].as_str().unwrap();
    let unserved_id: u64 = message
        .split("--request-id ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("the error names no request to retry: {message}"));
    assert!(message.contains("is paid"), "{message}");

    // Too early: refused, with when.
    let early = buyer
        .run(&["refund", &unserved_id.to_string()], false)
        .await;
    assert!(!early.ok);
    assert!(early.stderr.contains("expires at"), "{}", early.stderr);

    let before = cw20_balance(&world, "user").await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let listed = buyer.run(&["requests"], false).await.json();
    let rows = listed["requests"].as_array().unwrap();
    let row = |id: u64| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(row(unserved_id)["status"], "open");
    assert_eq!(row(unserved_id)["refundable"], true);
    assert_eq!(row(request_id)["refundable"], false);
    assert_ne!(row(request_id)["status"], "open", "{listed}");

    let refunded = buyer
        .run(&["refund", &unserved_id.to_string()], false)
        .await
        .json();
    assert!(refunded["tx_hash"].is_string(), "{refunded}");
    let after = cw20_balance(&world, "user").await;
    assert_eq!(after, before + PRICE);
    let again = buyer
        .run(&["refund", &unserved_id.to_string()], false)
        .await;
    assert!(
        again.stderr.contains("refunded already"),
        "{}",
        again.stderr
    );
    let refunded_only = buyer
        .run(&["requests", "--status", "refunded"], false)
        .await
        .json();
    let ids: Vec<u64> = refunded_only["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![unserved_id]);
}

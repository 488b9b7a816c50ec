//! The inference gateway over real HTTP on loopback, with a tiny model trained once on a
//! corpus in a temporary content store; and the `tributary-attrib` CLI end to end.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use burn::prelude::*;
use cosmwasm_std::HexBinary;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tributary_attrib::artifact::ModelArtifact;
use tributary_attrib::data::{examples, Contribution, Corpus};
use tributary_attrib::engine::{build_index, Engine, IndexSettings};
use tributary_attrib::index::Method;
use tributary_attrib::serve::{
    parse_method, router, serve_with_shutdown, AccessToken, ChainPayments, CompletionRequest,
    CompletionService, GatewayConfig, PaymentCheck, PaymentRefused, ServedModel, Unchecked,
};
use tributary_attrib::training::{train, TrainConfig};
use tributary_store::{BlockingStore, LocalStore};
use tributary_types::{AttributionPacket, DatanetRoot};

const MODEL: &str = "tiny";
/// The token the fixture's gateways want from their callers.
const FIXTURE_TOKEN: &str = "the-fixture-gateways-caller-token-0123456789";
const MAX_PROMPT_BYTES: usize = 256;
const CONTRIBUTORS: [&str; 3] = ["tb1alice", "tb1bob", "tb1carol"];
const TEXTS: [&str; 5] = [
    "The river of Velmora is called Quendil. Boats carry salt down the Quendil.",
    "The capital of Ostria is Marrowgate. Every spring the market of Marrowgate opens.",
    "The founder of the guild was Ilse Varn. Ilse Varn kept the ledgers herself.",
    "Pilgrims climb Mount Serrow at dawn. The path up Serrow is steep and narrow.",
    "The harbor of Caldris freezes in winter. Ships wait outside Caldris until the thaw.",
];

/// Refuses request ids 900 to 999 as unpaid (402) and model id 13 as not allowed (403).
struct TestPayments;

#[async_trait]
impl PaymentCheck for TestPayments {
    async fn check(&self, request: &CompletionRequest) -> Result<(), PaymentRefused> {
        if let Some(id) = request.request_id.filter(|id| (900..1000).contains(id)) {
            return Err(PaymentRefused::payment_required(format!(
                "request {id} is not paid on chain"
            )));
        }
        if request.model_id == Some(13) {
            return Err(PaymentRefused::forbidden(
                "model 13 is not served by this gateway",
            ));
        }
        Ok(())
    }
}

/// Refuses every request while [`REFUSE_ALL`] is set.
struct Switch;

static REFUSE_ALL: AtomicBool = AtomicBool::new(false);

#[async_trait]
impl PaymentCheck for Switch {
    async fn check(&self, request: &CompletionRequest) -> Result<(), PaymentRefused> {
        if REFUSE_ALL.load(Ordering::SeqCst) {
            return Err(PaymentRefused::payment_required(format!(
                "request {:?} is not paid on chain",
                request.request_id
            )));
        }
        Ok(())
    }
}

struct Fixture {
    dir: PathBuf,
    store: PathBuf,
    corpus: PathBuf,
    weights_hash: String,
    /// The gateway with [`TestPayments`] and the default response store.
    url: String,
    /// A second gateway over the same model that keeps one response only.
    small_store_url: String,
    /// A third whose payment check refuses everything while [`REFUSE_ALL`] is set.
    switch_url: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    // Built on a thread of its own: the blocking store and the servers' runtime cannot live
    // inside a test's async runtime.
    FIXTURE.get_or_init(|| {
        std::thread::spawn(build_fixture)
            .join()
            .expect("build the fixture")
    })
}

fn build_fixture() -> Fixture {
    let dir = common::fresh_dir("gateway");
    let store_dir = dir.join("store");
    let store = BlockingStore::new(Arc::new(
        LocalStore::open(&store_dir).expect("open the store"),
    ))
    .unwrap();
    let contributions: Vec<Contribution> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, text)| Contribution {
            contribution_id: i as u64 + 1,
            datanet_id: 1,
            contributor: CONTRIBUTORS[i % CONTRIBUTORS.len()].to_string(),
            content_hash: store
                .put(text.as_bytes().to_vec())
                .expect("store a text")
                .to_hex(),
            leaf_index: None,
        })
        .collect();
    let corpus = Corpus {
        datanets: vec![DatanetRoot {
            datanet_id: 1,
            version: 1,
            root: HexBinary::from(vec![0u8; 32]),
        }],
        contributions,
    };
    let corpus_path = dir.join("corpus.json");
    std::fs::write(&corpus_path, serde_json::to_vec_pretty(&corpus).unwrap()).unwrap();
    let texts = corpus.read(&store).expect("read the corpus back");

    let config = TrainConfig::new(common::tiny_model())
        .with_steps(30)
        .with_warmup_steps(5)
        .with_checkpoints(1);
    let examples = examples(&texts, config.model.context);
    let trained = train(&config, &examples, &Device::flex().autodiff(), false).expect("train");
    let model_dir = dir.join("model");
    let artifact =
        ModelArtifact::save(&model_dir, &config, &corpus, &trained).expect("save the model");
    let index_dir = dir.join("index");
    let settings = IndexSettings {
        k_in: 8,
        k_out: 8,
        ..IndexSettings::default()
    };
    build_index(&artifact, &examples, &index_dir, &settings, false).expect("index");

    let open = || Engine::open(&model_dir, &index_dir).expect("open the engine");
    let config = GatewayConfig {
        max_prompt_bytes: MAX_PROMPT_BYTES,
        max_tokens_limit: 64,
        ..GatewayConfig::default()
    };
    let gateway = |payments: Arc<dyn PaymentCheck>, config: GatewayConfig| {
        let service = CompletionService::new(
            vec![ServedModel {
                name: MODEL.into(),
                engine: open(),
            }],
            payments,
            config,
        );
        router(
            Arc::new(service),
            Some(AccessToken::new(FIXTURE_TOKEN).unwrap()),
        )
    };
    let main = gateway(Arc::new(TestPayments), config.clone());
    let small = gateway(
        Arc::new(Unchecked),
        GatewayConfig {
            stored_responses: 1,
            ..config.clone()
        },
    );
    let switch = gateway(Arc::new(Switch), config);
    let (addresses, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut servers = Vec::new();
            for app in [main, small, switch] {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addresses.send(listener.local_addr().unwrap()).unwrap();
                servers.push(tokio::spawn(serve_with_shutdown(
                    listener,
                    app,
                    std::future::pending(),
                )));
            }
            for server in servers {
                server.await.unwrap().unwrap();
            }
        });
    });
    let url = format!("http://{}", receive.recv().unwrap());
    let small_store_url = format!("http://{}", receive.recv().unwrap());
    let switch_url = format!("http://{}", receive.recv().unwrap());
    Fixture {
        dir,
        store: store_dir,
        corpus: corpus_path,
        weights_hash: artifact.weights_hash().to_string(),
        url,
        small_store_url,
        switch_url,
    }
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("a body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "status {status}: the body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, body)
}

/// GET with the fixture's token.
async fn get(url: &str) -> (u16, Value) {
    send(reqwest::Client::new().get(url).bearer_auth(FIXTURE_TOKEN)).await
}

/// POST /v1/completions with the fixture's token.
async fn post_raw(url: &str, body: String) -> (u16, Value) {
    send(
        reqwest::Client::new()
            .post(format!("{url}/v1/completions"))
            .header("content-type", "application/json")
            .bearer_auth(FIXTURE_TOKEN)
            .body(body),
    )
    .await
}

async fn post(url: &str, body: Value) -> (u16, Value) {
    post_raw(url, body.to_string()).await
}

fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"))
}

#[tokio::test]
async fn health_and_model_list() {
    let f = fixture();
    let (status, health) = get(&format!("{}/healthz", f.url)).await;
    assert_eq!(status, 200);
    assert_eq!(health, json!({"status": "ok", "models": 1}));

    let (status, list) = get(&format!("{}/v1/models", f.url)).await;
    assert_eq!(status, 200, "{list}");
    let models = list["models"].as_array().expect("a model list");
    assert_eq!(models.len(), 1);
    let m = &models[0];
    assert_eq!(m["name"], MODEL);
    assert_eq!(m["weights_hash"], f.weights_hash.as_str());
    assert_eq!(m["index_hash"].as_str().unwrap().len(), 64);
    assert_eq!(m["context"], 16);
    assert_eq!(m["contributions"], TEXTS.len());
    assert!(m["examples"].as_u64().unwrap() >= TEXTS.len() as u64);
    assert_eq!(m["datanet_roots"][0]["datanet_id"], 1);
    assert_eq!(
        m["methods"],
        json!(["trak-logra-v2", "graddot-logra-v2", "cosine-logra-v2"])
    );
    assert_eq!(m["default_method"], "trak-logra-v2");
}

fn paid_request(request_id: u64) -> Value {
    json!({
        "model": MODEL,
        "prompt": "The river of ",
        "max_tokens": 24,
        "request_id": request_id,
        "model_id": 1,
        "model_version": 1,
    })
}

#[tokio::test]
async fn a_paid_completion_carries_a_packet_that_is_stored_and_repeated() {
    let f = fixture();
    let (status, first) = post(&f.url, paid_request(42)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["model"], MODEL);
    assert_eq!(first["request_id"], 42);
    // The seed defaults to the request id, so every attestor regenerates the same completion.
    assert_eq!(first["sampling"]["seed"], 42);
    let completion = hex::decode(first["completion_hex"].as_str().unwrap()).unwrap();
    assert!(!completion.is_empty());
    assert_eq!(
        first["completion"],
        String::from_utf8_lossy(&completion).as_ref()
    );

    let packet: AttributionPacket =
        serde_json::from_value(first["packet"].clone()).expect("a packet");
    packet
        .check_shape(8)
        .expect("the packet passes the contract's shape check");
    assert_eq!(packet.request_id, 42);
    assert_eq!((packet.model_id, packet.model_version), (1, 1));
    assert_eq!(
        packet.output_hash.to_vec(),
        Sha256::digest(&completion).to_vec()
    );
    assert_eq!(packet.weights_hash.to_hex(), f.weights_hash);
    assert_eq!(packet.method, "trak-logra-v2");

    // The attribution lists contributions with the packet's shares.
    let attribution = &first["attribution"];
    assert_eq!(attribution["method"], "trak-logra-v2");
    let top = attribution["top"].as_array().unwrap();
    assert_eq!(top.len(), TEXTS.len());
    for entry in &packet.entries {
        let listed = top
            .iter()
            .find(|t| t["contribution_id"] == entry.contribution_id)
            .expect("a packet entry is listed");
        assert_eq!(listed["share_bps"], entry.weight_bps);
    }
    let contributors = attribution["contributors"].as_array().unwrap();
    assert_eq!(contributors.len(), CONTRIBUTORS.len());
    let shares: u64 = contributors
        .iter()
        .map(|c| c["share_bps"].as_u64().unwrap())
        .sum();
    let bps: u64 = packet.entries.iter().map(|e| e.weight_bps as u64).sum();
    assert_eq!(shares, bps);

    // The same request again: the identical response, packet included.
    let (status, again) = post(&f.url, paid_request(42)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    let again: AttributionPacket = serde_json::from_value(again["packet"].clone()).unwrap();
    assert_eq!(again.packet_hash().unwrap(), packet.packet_hash().unwrap());

    // And by its id.
    let (status, stored) = get(&format!("{}/v1/requests/42", f.url)).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored, first);

    // Other parameters under the same request id are refused, not silently answered.
    let mut other = paid_request(42);
    other["prompt"] = json!("The capital of ");
    let (status, body) = post(&f.url, other).await;
    assert_eq!(status, 409, "{body}");
    assert!(error_of(&body).contains("request 42"), "{body}");
}

#[tokio::test]
async fn an_unstored_request_is_404() {
    let f = fixture();
    let (status, body) = get(&format!("{}/v1/requests/777", f.url)).await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"error": "no completion for request 777"}));
    let (status, body) = get(&format!("{}/v1/requests/not-a-number", f.url)).await;
    assert_eq!(status, 400);
    assert!(error_of(&body).contains("unsigned integer"), "{body}");
}

#[tokio::test]
async fn requests_without_an_id_get_no_packet_and_seed_zero() {
    let f = fixture();
    // Without request_id: no packet, nothing stored, seed 0, greedy is repeatable.
    let request = json!({"model": MODEL, "prompt": "The harbor of ", "max_tokens": 12, "temperature": 0.0, "method": "cosine"});
    let (status, first) = post(&f.url, request.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert!(first.get("packet").is_none(), "{first}");
    assert_eq!(first["request_id"], Value::Null);
    assert_eq!(first["sampling"]["seed"], 0);
    assert_eq!(first["attribution"]["method"], "cosine-logra-v2");
    let (_, second) = post(&f.url, request).await;
    assert_eq!(second["completion_hex"], first["completion_hex"]);
}

#[tokio::test]
async fn bad_requests_get_clear_json_errors() {
    let f = fixture();
    let cases = [
        (json!({"model": "huge", "prompt": "hi"}), 404, "tiny"),
        (json!({"model": MODEL, "prompt": ""}), 422, "empty"),
        (
            json!({"model": MODEL, "prompt": "x".repeat(MAX_PROMPT_BYTES + 1)}),
            413,
            "256",
        ),
        (
            json!({"model": MODEL, "prompt": "hi", "max_tokens": 0}),
            422,
            "max_tokens",
        ),
        (
            json!({"model": MODEL, "prompt": "hi", "max_tokens": 65}),
            422,
            "max_tokens",
        ),
        (
            json!({"model": MODEL, "prompt": "hi", "temperature": -1.0}),
            422,
            "temperature",
        ),
        (
            json!({"model": MODEL, "prompt": "hi", "method": "shapley"}),
            422,
            "shapley",
        ),
        (
            json!({"model": MODEL, "prompt": "hi", "request_id": 5, "model_id": 1}),
            422,
            "model_version",
        ),
        (json!({"model": MODEL, "prompt": 7}), 422, "prompt"),
        (json!({"prompt": "hi"}), 422, "model"),
    ];
    for (body, expected, mentions) in cases {
        let (status, answer) = post(&f.url, body.clone()).await;
        assert_eq!(status, expected, "{body} -> {answer}");
        assert!(error_of(&answer).contains(mentions), "{body} -> {answer}");
    }
    for malformed in ["{\"model\": ", "not json", ""] {
        let (status, answer) = post_raw(&f.url, malformed.to_string()).await;
        assert_eq!(status, 400, "{malformed:?} -> {answer}");
        error_of(&answer);
    }
    let (status, answer) = send(
        reqwest::Client::new()
            .post(format!("{}/v1/completions", f.url))
            .bearer_auth(FIXTURE_TOKEN)
            .body(json!({"model": MODEL, "prompt": "hi"}).to_string()),
    )
    .await;
    assert_eq!(status, 415, "{answer}");
    let (status, answer) = get(&format!("{}/v1/nothing", f.url)).await;
    assert_eq!(status, 404);
    error_of(&answer);
    let (status, answer) = get(&format!("{}/v1/completions", f.url)).await;
    assert_eq!(status, 405);
    error_of(&answer);
}

#[tokio::test]
async fn refused_payments_are_402_or_403_with_the_checkers_message() {
    let f = fixture();
    let (status, body) = post(&f.url, paid_request(901)).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body, json!({"error": "request 901 is not paid on chain"}));
    let (status, _) = get(&format!("{}/v1/requests/901", f.url)).await;
    assert_eq!(status, 404, "a refused request is not stored");

    let mut forbidden = paid_request(43);
    forbidden["model_id"] = json!(13);
    let (status, body) = post(&f.url, forbidden).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body,
        json!({"error": "model 13 is not served by this gateway"})
    );
}

#[tokio::test]
async fn the_response_store_is_bounded() {
    let f = fixture();
    let url = &f.small_store_url;
    let (status, first) = post(url, paid_request(1)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(get(&format!("{url}/v1/requests/1")).await.0, 200);
    let (status, _) = post(url, paid_request(2)).await;
    assert_eq!(status, 200);
    assert_eq!(
        get(&format!("{url}/v1/requests/1")).await.0,
        404,
        "the oldest response is evicted"
    );
    assert_eq!(get(&format!("{url}/v1/requests/2")).await.0, 200);
    // An evicted request is recomputed, identically: generation and attribution are deterministic.
    let (status, recomputed) = post(url, paid_request(1)).await;
    assert_eq!(status, 200);
    assert_eq!(recomputed, first);
}

#[test]
fn methods_parse_by_id_snake_name_and_short_name() {
    assert_eq!(parse_method("trak"), Some(Method::Preconditioned));
    assert_eq!(parse_method("graddot"), Some(Method::GradDot));
    assert_eq!(parse_method("grad_dot"), Some(Method::GradDot));
    for m in Method::ALL {
        assert_eq!(parse_method(m.id()), Some(m));
    }
    assert_eq!(parse_method("shapley"), None);
}

/// Runs the binary with `--output json`: a result is JSON on stdout, an error is JSON on stderr
/// with nothing on stdout.
fn cli(args: &[&str]) -> (bool, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_tributary-attrib"))
        .args(["--output", "json"])
        .args(args)
        .output()
        .expect("run tributary-attrib");
    let ok = output.status.success();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !ok {
        assert!(
            stdout.is_empty(),
            "{args:?}: a failure printed on stdout: {stdout}"
        );
    }
    // The error is the last line of stderr, after any log lines.
    let json = if ok {
        &stdout
    } else {
        stderr.lines().last().unwrap_or_default()
    };
    let value = serde_json::from_str(json).unwrap_or_else(|e| {
        panic!("{args:?}: the output is not JSON ({e}): {stdout}\nstderr: {stderr}")
    });
    (ok, value)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_cli_trains_indexes_generates_attributes_and_serves() {
    let f = fixture();
    let (store, corpus) = (path(&f.store), path(&f.corpus));
    let model = f.dir.join("cli-model");
    let index = f.dir.join("cli-index");
    let train_args = [
        "train",
        "--corpus",
        corpus,
        "--store",
        store,
        "--out",
        path(&model),
        "--d-model",
        "16",
        "--layers",
        "1",
        "--heads",
        "2",
        "--d-ff",
        "32",
        "--context",
        "16",
        "--steps",
        "8",
        "--warmup",
        "2",
        "--batch-size",
        "8",
        "--checkpoints",
        "1",
        "--val-fraction",
        "0.2",
    ];
    let (ok, trained) = cli(&train_args);
    assert!(ok, "{trained}");
    assert_eq!(trained["weights_hash"].as_str().unwrap().len(), 64);
    assert!(trained["report"]["val_loss"].is_number(), "{trained}");
    let (ok, refused) = cli(&train_args);
    assert!(!ok, "an existing model is not overwritten without --force");
    assert!(error_of(&refused).contains("--force"), "{refused}");

    let (ok, indexed) = cli(&[
        "index",
        "--model",
        path(&model),
        "--store",
        store,
        "--out",
        path(&index),
        "--k-in",
        "4",
        "--k-out",
        "4",
        "--layers",
        "all",
        "--final-only",
    ]);
    assert!(ok, "{indexed}");
    assert_eq!(indexed["checkpoints"].as_array().unwrap().len(), 1);
    assert!(indexed["bytes"].as_u64().unwrap() > 0);

    let (ok, generated) = cli(&[
        "generate",
        "--model",
        path(&model),
        "--prompt",
        "The ",
        "--max-tokens",
        "8",
        "--seed",
        "3",
    ]);
    assert!(ok, "{generated}");
    assert_eq!(generated["sampling"]["seed"], 3);

    let (ok, attributed) = cli(&[
        "attribute",
        "--model",
        path(&model),
        "--index",
        path(&index),
        "--prompt",
        "The river of ",
        "--completion",
        "Velmora",
        "--method",
        "graddot",
        "--request-id",
        "7",
        "--model-id",
        "2",
        "--model-version",
        "3",
        "--packet-top-k",
        "4",
    ]);
    assert!(ok, "{attributed}");
    assert_eq!(attributed["attribution"]["method"], "graddot-logra-v2");
    let packet: AttributionPacket = serde_json::from_value(attributed["packet"].clone()).unwrap();
    packet.check_shape(4).unwrap();
    assert_eq!(
        (packet.request_id, packet.model_id, packet.model_version),
        (7, 2, 3)
    );
    assert_eq!(
        packet.output_hash.to_vec(),
        Sha256::digest(b"Velmora").to_vec()
    );

    // serve prints its address, then answers.
    let spec = format!("cli={}:{}", path(&model), path(&index));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary-attrib"))
        .args(["serve", "--model", &spec, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let mut line = String::new();
    // The reader lives until the server is stopped: the server's stdout stays open.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let health = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(get(&format!("{address}/healthz")));
    child.kill().ok();
    child.wait().ok();
    drop(stdout);
    assert_eq!(health, (200, json!({"status": "ok", "models": 1})));
}

// --- nothing is served without payment, and only to whom it is due ----------------------

#[tokio::test]
async fn a_stored_response_is_served_only_after_the_payment_check() {
    let f = fixture();
    let (status, first) = post(&f.switch_url, paid_request(60)).await;
    assert_eq!(status, 200, "{first}");
    REFUSE_ALL.store(true, Ordering::SeqCst);
    let (status, body) = post(&f.switch_url, paid_request(60)).await;
    REFUSE_ALL.store(false, Ordering::SeqCst);
    assert_eq!(
        status, 402,
        "a stored response is no way around the check: {body}"
    );
}

/// A `tributary-attrib serve` of the fixture's model, killed when dropped.
struct Served {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Starts `serve` with `args`; its URL once it listens, or what it said when it stopped.
fn serve_cli(args: &[&str]) -> Result<Served, String> {
    let f = fixture();
    let spec = format!(
        "{MODEL}={}:{}",
        path(&f.dir.join("model")),
        path(&f.dir.join("index"))
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary-attrib"));
    command.args(["serve", "--model", &spec]);
    if !args.contains(&"--listen") {
        command.args(["--listen", "127.0.0.1:0"]);
    }
    let mut child = command
        .args(args)
        .env_remove("TRIBUTARY_ATTRIB_AUTH_TOKEN_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    match line.trim().strip_prefix("listening on ") {
        Some(url) => Ok(Served {
            url: url.to_string(),
            child,
            _stdout: stdout,
        }),
        None => {
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            child.kill().ok();
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).ok();
            Err(format!("{line}{stderr}"))
        }
    }
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

async fn post_as(url: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/v1/completions"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    send(request).await
}

async fn get_as(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    send(request).await
}

#[test]
fn without_a_token_or_a_payment_check_serve_runs_no_paid_request() {
    let served = serve_cli(&[]).expect("serve starts on loopback");
    block_on(async {
        let (status, body) = post(&served.url, paid_request(80)).await;
        assert_eq!(status, 403, "{body}");
        assert!(error_of(&body).contains("--auth-token-file"), "{body}");
        // Unpaid completions (no request id, no packet) stay for local use.
        let free = json!({"model": MODEL, "prompt": "The river of ", "max_tokens": 8});
        let (status, body) = post(&served.url, free).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = get(&format!("{}/v1/requests/80", served.url)).await;
        assert_eq!(status, 403, "{body}");
    });
}

#[test]
fn serve_on_a_public_address_needs_a_token_or_a_payment_check() {
    let refused = serve_cli(&["--listen", "0.0.0.0:0"]);
    let message = refused.err().expect("serve refuses to start");
    assert!(message.contains("--auth-token-file"), "{message}");
    assert!(message.contains("--chain-rest"), "{message}");
}

#[test]
fn with_a_token_file_serve_answers_only_callers_presenting_it() {
    let f = fixture();
    let token = "relayer-and-engine-share-this-0123456789abcdef";
    let file = f.dir.join("engine.token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let served = serve_cli(&["--auth-token-file", path(&file)]).expect("serve starts");
    block_on(async {
        for wrong in [
            None,
            Some("nope"),
            Some("relayer-and-engine-share-this-0123456789abcdeF"),
        ] {
            let (status, body) = post_as(&served.url, wrong, paid_request(81)).await;
            assert_eq!(status, 401, "{wrong:?}: {body}");
        }
        let (status, first) = post_as(&served.url, Some(token), paid_request(81)).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(first["packet"]["request_id"], 81);
        let stored = format!("{}/v1/requests/81", served.url);
        assert_eq!(get_as(&stored, None).await.0, 401);
        assert_eq!(get_as(&stored, Some(token)).await, (200, first));
        // Health and the model list are public.
        assert_eq!(get(&format!("{}/healthz", served.url)).await.0, 200);
        assert_eq!(get(&format!("{}/v1/models", served.url)).await.0, 200);
    });
}

/// A REST (LCD) gateway stand-in holding payout requests 70 (open, for "The river of "), 71
/// (finalized), 72 (for model 2) and no other.
async fn payout_rest() -> String {
    use axum::extract::Path as UrlPath;
    use base64::Engine as _;
    use cosmwasm_std::{Addr, Timestamp, Uint128};
    use tributary_types::payout::{InferenceRequest, RequestStatus};
    use tributary_types::{AssetInfo, Price};

    async fn smart(UrlPath((_, query)): UrlPath<(String, String)>) -> axum::response::Response {
        use axum::response::IntoResponse;
        let query = base64::engine::general_purpose::URL_SAFE
            .decode(query)
            .expect("URL-safe base64");
        let query: Value = serde_json::from_slice(&query).unwrap();
        let id = query["request"]["request_id"]
            .as_u64()
            .expect("a Request query");
        let (status, model_id) = match id {
            70 => (RequestStatus::Open, 1),
            71 => (RequestStatus::Finalized, 1),
            72 => (RequestStatus::Open, 2),
            _ => {
                let body = json!({"code": 2, "message": format!("request {id} not found: query wasm contract failed"), "details": []});
                return (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    body.to_string(),
                )
                    .into_response();
            }
        };
        let request = InferenceRequest {
            id,
            payer: Addr::unchecked("trib1payer"),
            model_id,
            model_version: 1,
            prompt_hash: HexBinary::from(Sha256::digest(b"The river of ").to_vec()),
            price: Price {
                asset: AssetInfo::native("utrib"),
                amount: Uint128::new(10),
            },
            created_at: Timestamp::from_seconds(1),
            expires_at: Timestamp::from_seconds(10_000),
            status,
            agreed_packet: None,
            finalizable_at: None,
            distinct_packets: 0,
            settlement: None,
        };
        json!({ "data": request }).to_string().into_response()
    }

    let app = axum::Router::new().route(
        "/cosmwasm/wasm/v1/contract/{address}/smart/{query}",
        axum::routing::get(smart),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A service over the fixture's model checking payment with `payments`.
fn service_with(payments: Arc<dyn PaymentCheck>) -> CompletionService {
    let f = fixture();
    let engine = Engine::open(&f.dir.join("model"), &f.dir.join("index")).unwrap();
    CompletionService::new(
        vec![ServedModel {
            name: MODEL.into(),
            engine,
        }],
        payments,
        GatewayConfig::default(),
    )
}

/// A gateway over the fixture's model checking payment with `payments`.
async fn gateway_with(payments: Arc<dyn PaymentCheck>) -> String {
    let service = service_with(payments);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve_with_shutdown(
        listener,
        router(Arc::new(service), None),
        std::future::pending(),
    ));
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_payment_check_serves_open_requests_for_their_prompt_only() {
    let rest = payout_rest().await;
    let payments = ChainPayments::new(&rest, "trib1payout").unwrap();
    let url = gateway_with(Arc::new(payments)).await;
    let (status, body) = post(&url, paid_request(70)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["packet"]["request_id"], 70);
    let mut other_prompt = paid_request(70);
    other_prompt["prompt"] = json!("The capital of ");
    let mut other_model = paid_request(70);
    other_model["model_id"] = json!(2);
    let free = json!({"model": MODEL, "prompt": "The river of "});
    for (body, expected, mentions) in [
        (other_prompt, 403, "prompt"),
        (other_model, 403, "model"),
        (paid_request(71), 403, "finalized"),
        (paid_request(72), 403, "model"),
        (paid_request(73), 402, "not found"),
        (free, 402, "request_id"),
    ] {
        let (status, answer) = post(&url, body.clone()).await;
        assert_eq!(status, expected, "{body} -> {answer}");
        assert!(error_of(&answer).contains(mentions), "{body} -> {answer}");
    }
    // A chain that does not answer: try again later.
    let down = gateway_with(Arc::new(
        ChainPayments::new("http://127.0.0.1:1", "trib1payout").unwrap(),
    ))
    .await;
    let (status, answer) = post(&down, paid_request(70)).await;
    assert_eq!(status, 503, "{answer}");
}

/// One random change to a JSON request body: a field dropped, added, or replaced by a value at
/// the edge of its type (or of another type).
fn mutate_body(body: &mut Value, rng: &mut rand_chacha::ChaCha8Rng) {
    use rand::Rng;
    let Value::Object(fields) = body else {
        return;
    };
    let keys: Vec<String> = fields.keys().cloned().collect();
    let key = keys[rng.random_range(0..keys.len())].clone();
    let edge = match rng.random_range(0..12) {
        0 => Value::Null,
        1 => json!(-1),
        2 => json!(u64::MAX),
        3 => json!(1e300),
        4 => json!(""),
        5 => json!("\u{0}\u{202e}ünïcödé"),
        6 => json!("x".repeat(rng.random_range(1..100_000))),
        7 => json!([]),
        8 => json!({}),
        9 => json!(true),
        10 => {
            fields.remove(&key);
            return;
        }
        _ => {
            fields.insert(format!("unexpected{}", rng.random::<u8>()), json!(1));
            return;
        }
    };
    fields.insert(key, edge);
}

#[tokio::test]
async fn no_request_body_or_path_panics_the_gateway() {
    use rand::{Rng, SeedableRng};
    let f = fixture();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut sent = 0usize;
    for round in 0..240u64 {
        let body = match round % 4 {
            // Bytes that are not JSON at all.
            0 => (0..rng.random_range(0..256))
                .map(|_| rng.random::<u8>() as char)
                .collect::<String>(),
            // A paid request with one to three fields changed.
            _ => {
                let mut body = paid_request(10_000 + round);
                for _ in 0..rng.random_range(1..4) {
                    mutate_body(&mut body, &mut rng);
                }
                body.to_string()
            }
        };
        // Every answer is a JSON body with a status; a handler that panicked would close the
        // connection instead, and `send` would fail the test.
        let (status, _) = post_raw(&f.url, body.clone()).await;
        assert!(status < 500, "{status} for {body}");
        let id: String = match round % 3 {
            0 => rng.random::<u64>().to_string(),
            1 => "-1".into(),
            _ => "%F0%9F%A6%80".into(),
        };
        let (status, _) = get(&format!("{}/v1/requests/{id}", f.url)).await;
        assert!(status < 500, "{status} for GET /v1/requests/{id}");
        sent += 2;
    }
    eprintln!("sent {sent} random requests to the engine's gateway");
}

/// The gateway serves every operation its OpenAPI document lists, and the document at
/// `/openapi.json` is the one `tributary-attrib openapi` prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes_and_is_served() {
    let app = router(
        Arc::new(service_with(Arc::new(Unchecked))),
        Some(AccessToken::new(FIXTURE_TOKEN).unwrap()),
    );
    let document = tributary_attrib::serve::http::openapi();
    let unrouted = tributary_openapi::testing::unrouted_operations(app.clone(), &document).await;
    assert!(
        unrouted.is_empty(),
        "documented but not served: {unrouted:?}"
    );
    for path in [
        "/healthz",
        "/v1/models",
        "/v1/completions",
        "/v1/requests/{request_id}",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "{path} is not documented"
        );
    }
    // Schemas come from the wire types: the response's fields are all there.
    let response = &document["components"]["schemas"]["CompletionResponse"]["properties"];
    for field in [
        "completion",
        "completion_hex",
        "attribution",
        "packet",
        "sampling",
    ] {
        assert!(response[field].is_object(), "{field}: {response}");
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/openapi.json", listener.local_addr().unwrap());
    tokio::spawn(serve_with_shutdown(listener, app, std::future::pending()));
    let served = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    let served: Value = serde_json::from_slice(&served).unwrap();
    assert_eq!(served, document);
    // The binary prints the same document.
    let printed = Command::new(env!("CARGO_BIN_EXE_tributary-attrib"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(printed.status.success());
    let printed: Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(printed, document);
}

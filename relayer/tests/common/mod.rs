//! The world the relayer's live tests run in: a `tributaryd` devnet with the contracts
//! deployed, a curated datanet snapshot, a tiny model really trained and indexed on it and
//! registered with its lineage, and relayer processes started from their config files.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use cosmwasm_std::{HexBinary, Uint128};
use serde_json::Value;
use tributary_attrib::artifact::ModelArtifact;
use tributary_attrib::data::{examples, Contribution, Corpus};
use tributary_attrib::engine::{build_index, Engine, IndexSettings};
use tributary_attrib::index::{GradientIndex, Method};
use tributary_attrib::model::LmConfig;
use tributary_attrib::packet::params_hash;
use tributary_attrib::serve::GatewayConfig;
use tributary_attrib::training::{train_on_cpu, TrainConfig};
use tributary_client::{
    coin, deploy, ChainConfig, Client, ContractCall, Decimal, DeploySettings, Deployment,
    InferenceRequested, NewContribution, NewDatanet, Signer,
};
use tributary_devnet::{Devnet, DevnetParams, InitOptions, Tributaryd};
use tributary_keyring::{Backend, Keyring};
use tributary_types::datanet::{CurationPolicy, ReviewDecision};
use tributary_types::packet::DatanetRoot;
use tributary_types::payout::{ExecuteMsg, RequestStatus};
use tributary_types::registry::{AttributionMethod, ModelVersionInput};
use tributary_types::voucher::{Voucher, EMPTY_CHAIN};
use tributary_types::{sha256, AssetInfo, FeeSplit, Price};

/// The price of one inference in utrib.
pub const PRICE: u128 = 10_000;
/// The split of every model version.
pub const SPLIT: FeeSplit = FeeSplit {
    contributors_bps: 6000,
    developer_bps: 2000,
    operator_bps: 1500,
    protocol_bps: 500,
};
/// Who contributes which text to the datanet.
pub const TEXTS: [(&str, &str); 8] = [
    (
        "contributor1",
        "The kernel schedules threads; a mutex guards shared memory.",
    ),
    (
        "contributor2",
        "Rust moves ownership; borrows are checked at compile time.",
    ),
    (
        "contributor3",
        "A pipe connects the output of one process to the input of another.",
    ),
    (
        "contributor1",
        "Signals interrupt a process: SIGKILL cannot be caught or ignored.",
    ),
    (
        "contributor2",
        "Cargo builds crates; the lock file pins every dependency.",
    ),
    (
        "contributor3",
        "mmap maps a file into memory; pages load when first touched.",
    ),
    (
        "contributor1",
        "fork copies the process; exec replaces its program image.",
    ),
    (
        "contributor2",
        "A trait names behaviour; generics are monomorphized per type.",
    ),
];

/// A live chain with everything deployed and a trained model on it.
pub struct World {
    /// What `deploy` wrote: the `deployment.json` of the `tributary` command line.
    pub deployment: Deployment,
    pub devnet: Devnet,
    pub params: DevnetParams,
    pub client: Client,
    pub payout: String,
    pub registry: String,
    pub token: String,
    pub lineage: Vec<DatanetRoot>,
    pub model_dir: PathBuf,
    pub index_dir: PathBuf,
    pub weights_hash: HexBinary,
    pub index_hash: HexBinary,
    pub params_hash: HexBinary,
    /// contribution id → contributor address.
    pub contributors: BTreeMap<u64, String>,
    pub port_offset: u16,
    pub dir: PathBuf,
    _home: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.devnet.stop();
    }
}

pub fn artifacts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts")
}

fn hex(bytes: &[u8]) -> HexBinary {
    HexBinary::from(bytes)
}

impl World {
    /// Starts a devnet (blocks every `block_time_ms`), deploys, curates a datanet, trains and
    /// indexes a tiny model on its snapshot.
    pub async fn start(port_offset: u16, block_time_ms: u64, challenge_window: u64) -> World {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().to_path_buf();
        let params = DevnetParams::default_devnet();
        let devnet = Devnet::init(
            &Tributaryd::from_env(),
            &dir.join("devnet"),
            &params,
            &InitOptions {
                validators: 1,
                port_offset,
                block_time_ms: Some(block_time_ms),
                ..InitOptions::default()
            },
        )
        .unwrap();
        devnet.start().unwrap();
        devnet
            .wait_for_height(0, 2, Duration::from_secs(90))
            .await
            .unwrap();
        let config = ChainConfig::new(
            &devnet.chain_id,
            devnet.rpc_url(),
            &params.bech32_prefix,
            Decimal::from_str(&params.fees.min_gas_price).unwrap(),
            &devnet.denom,
        );
        let client = Client::connect(config).await.unwrap();
        let signer = |name: &str| {
            let key = devnet.key(name).unwrap();
            Signer::from_mnemonic(&key.mnemonic, &params.bech32_prefix).unwrap()
        };
        let curator = signer("curator");
        let user = signer("user");
        let deployment = deploy(
            &client,
            &curator,
            &artifacts_dir(),
            DeploySettings {
                treasury: Some(signer("treasury").address().to_string()),
                challenge_window_seconds: challenge_window,
                max_entries: 16,
                token_balances: vec![(user.address().to_string(), 10_000_000)],
                ..DeploySettings::default()
            },
        )
        .await
        .unwrap();
        let contracts = deployment.contracts.clone();

        // A curated datanet, every text accepted, frozen as version 1.
        let datanets = client.datanet(&contracts.datanet);
        let datanet_id = datanets
            .create_datanet(
                &curator,
                NewDatanet {
                    name: "systems".into(),
                    description: "Systems programming notes".into(),
                    domain_tags: vec!["systems".into()],
                    license: "CC-BY-4.0".into(),
                    policy: CurationPolicy::CuratorReview,
                    curators: Vec::new(),
                    max_contribution_bytes: 1 << 16,
                },
            )
            .await
            .unwrap();
        let mut contributors = BTreeMap::new();
        let mut corpus_entries = Vec::new();
        let mut texts = Vec::new();
        for (name, text) in TEXTS {
            let who = signer(name);
            let id = datanets
                .contribute(
                    &who,
                    datanet_id,
                    NewContribution {
                        content_hash: hex(&sha256(text.as_bytes())).to_hex(),
                        size_bytes: text.len() as u64,
                        uri: format!("tributary://blobs/{}", hex(&sha256(text.as_bytes()))),
                        media_type: "text/plain".into(),
                        metadata: None,
                    },
                )
                .await
                .unwrap();
            datanets
                .review(&curator, id, ReviewDecision::Accept, None)
                .await
                .unwrap();
            let leaf = datanets.contribution(id).await.unwrap().leaf_index;
            contributors.insert(id, who.address().to_string());
            corpus_entries.push(Contribution {
                contribution_id: id,
                datanet_id,
                contributor: who.address().to_string(),
                content_hash: hex(&sha256(text.as_bytes())).to_hex(),
                leaf_index: leaf,
            });
            texts.push((id, text.as_bytes().to_vec()));
        }
        let version = datanets.snapshot(&curator, datanet_id, None).await.unwrap();
        let frozen = datanets.version(datanet_id, version).await.unwrap();
        let lineage = vec![DatanetRoot {
            datanet_id,
            version,
            root: frozen.root,
        }];
        let corpus = Corpus {
            datanets: lineage.clone(),
            contributions: corpus_entries,
        };

        let (model_dir, index_dir) = (dir.join("model"), dir.join("index"));
        let (weights_hash, index_hash, params_hash) = {
            let corpus = corpus.clone();
            let (model_dir, index_dir) = (model_dir.clone(), index_dir.clone());
            tokio::task::spawn_blocking(move || {
                train_and_index(&corpus, &texts, &model_dir, &index_dir)
            })
            .await
            .unwrap()
        };
        World {
            deployment,
            devnet,
            params,
            client,
            payout: contracts.payout,
            registry: contracts.model_registry,
            token: contracts.cw20,
            lineage,
            model_dir,
            index_dir,
            weights_hash,
            index_hash,
            params_hash,
            contributors,
            port_offset,
            dir,
            _home: home,
        }
    }

    pub fn signer(&self, name: &str) -> Signer {
        let key = self.devnet.key(name).unwrap();
        Signer::from_mnemonic(&key.mnemonic, &self.params.bech32_prefix).unwrap()
    }

    /// Registers the model: version 1 priced in utrib, version 2 in the cw20, both attested by
    /// `attestors` (devnet key names) with `quorum`.
    pub async fn register(&self, attestors: &[&str], quorum: u32) -> u64 {
        let developer = self.signer("developer");
        let version = |price: Price| ModelVersionInput {
            lineage: self.lineage.clone(),
            weights_hash: self.weights_hash.clone(),
            weights_uri: "tributary://weights".into(),
            index_hash: self.index_hash.clone(),
            method: AttributionMethod {
                id: Method::Preconditioned.id().into(),
                params_hash: self.params_hash.clone(),
                params: None,
            },
            price,
            split: SPLIT,
            attestors: attestors
                .iter()
                .map(|n| self.signer(n).address().to_string())
                .collect(),
            quorum,
        };
        let registry = self.client.registry(&self.registry);
        let model_id = registry
            .register_model(
                &developer,
                "systems-slm",
                "a tiny systems-programming model",
                "transformer",
                version(Price {
                    asset: AssetInfo::native("utrib"),
                    amount: Uint128::new(PRICE),
                }),
            )
            .await
            .unwrap();
        registry
            .add_version(
                &developer,
                model_id,
                version(Price {
                    asset: AssetInfo::cw20(&self.token),
                    amount: Uint128::new(PRICE),
                }),
            )
            .await
            .unwrap();
        model_id
    }

    /// Pays for one inference per prompt in one transaction (utrib, version 1); returns the
    /// request ids in prompt order.
    pub async fn pay(&self, model_id: u64, prompts: &[String]) -> Vec<u64> {
        let user = self.signer("user");
        let calls = prompts
            .iter()
            .map(|p| {
                ContractCall::new(
                    &self.payout,
                    &ExecuteMsg::RequestInference {
                        model_id,
                        version: 1,
                        prompt_hash: hex(&sha256(p.as_bytes())),
                    },
                    vec![coin(PRICE, "utrib").unwrap()],
                )
                .unwrap()
            })
            .collect();
        let outcome = self.client.execute_many(&user, calls).await.unwrap();
        InferenceRequested::from_events(&outcome.events, &self.payout)
            .unwrap()
            .into_iter()
            .map(|r| r.request_id)
            .collect()
    }

    /// Pays for one inference in the cw20 (version 2).
    pub async fn pay_cw20(&self, model_id: u64, prompt: &str) -> u64 {
        self.client
            .payout(&self.payout)
            .request_inference_cw20(
                &self.signer("user"),
                &self.token,
                PRICE,
                model_id,
                2,
                hex(&sha256(prompt.as_bytes())),
            )
            .await
            .unwrap()
            .request_id
    }

    /// Waits until every request is finalized.
    pub async fn wait_finalized(&self, ids: &[u64], within: Duration) {
        let payout = self.client.payout(&self.payout);
        let deadline = Instant::now() + within;
        for &id in ids {
            loop {
                let request = payout.request(id).await.unwrap();
                if request.status == RequestStatus::Finalized {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "request {id} is still {:?} after {within:?}",
                    request.status
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }

    /// Writes a relayer home (keyring with devnet key `key`, config) for `models` and
    /// returns its config file. `slot` keeps the ports of several relayers apart.
    pub fn relayer_config(
        &self,
        key: &str,
        slot: u16,
        models: &[(u64, u32)],
        engine: &str,
    ) -> RelayerHome {
        self.relayer_config_with(key, slot, models, engine, &Batching::default())
    }

    /// [`World::relayer_config`] with explicit batching and finalization. Its ports lie below
    /// Linux's ephemeral range (32768 and up), where outgoing connections could take them.
    pub fn relayer_config_with(
        &self,
        key: &str,
        slot: u16,
        models: &[(u64, u32)],
        engine: &str,
        batching: &Batching,
    ) -> RelayerHome {
        let account = self.devnet_account(key);
        self.relayer_config_for(&account, slot, models, engine, batching, "")
    }

    /// Devnet key `payer`'s first voucher series with `redeemer` on version 1 of `model_id`.
    pub fn voucher_series(&self, payer: &str, redeemer: &str, model_id: u64) -> Series {
        let signer = self.signer(payer);
        let voucher = Voucher {
            chain_id: self.devnet.chain_id.clone(),
            contract: self.payout.clone(),
            payer: signer.address().to_string(),
            redeemer: redeemer.to_string(),
            model_id,
            version: 1,
            count: 0,
            max_amount: Uint128::zero(),
            prompts: HexBinary::from(EMPTY_CHAIN.as_slice()),
        };
        Series { signer, voucher }
    }

    /// Devnet key `name` as an [`Account`].
    pub fn devnet_account(&self, name: &str) -> Account {
        let key = self.devnet.key(name).unwrap();
        Account {
            name: name.to_string(),
            address: key.address.clone(),
            mnemonic: key.mnemonic.clone(),
        }
    }

    /// A new account funded with `utrib` from the curator.
    pub async fn new_account(&self, name: &str, utrib: u128) -> Account {
        let mnemonic = Keyring::generate_mnemonic().to_string();
        let signer = Signer::from_mnemonic(&mnemonic, &self.params.bech32_prefix).unwrap();
        self.client
            .send(
                &self.signer("curator"),
                signer.address().as_ref(),
                vec![coin(utrib, "utrib").unwrap()],
            )
            .await
            .unwrap();
        Account {
            name: name.to_string(),
            address: signer.address().to_string(),
            mnemonic,
        }
    }

    /// [`World::relayer_config_with`] for any account, with `extra` appended to the file.
    pub fn relayer_config_for(
        &self,
        account: &Account,
        slot: u16,
        models: &[(u64, u32)],
        engine: &str,
        batching: &Batching,
        extra: &str,
    ) -> RelayerHome {
        let key = account.name.as_str();
        let home = self.dir.join(format!("relayer-{key}-{slot}"));
        let keys = home.join("keys");
        let ring = Keyring::open(&keys, Backend::Test).unwrap();
        if ring.show(key).is_err() {
            ring.add(key, &account.address, &account.mnemonic, None)
                .unwrap();
        }
        let gateway = format!("127.0.0.1:{}", 20_000 + self.port_offset + slot * 10);
        let telemetry = format!("127.0.0.1:{}", 20_001 + self.port_offset + slot * 10);
        let models: String = models
            .iter()
            .map(|(m, v)| format!("[[models]]\nmodel_id = {m}\nversion = {v}\n\n"))
            .collect();
        let text = format!(
            r#"[chain]
id = "{chain_id}"
rpc = ["{rpc}"]
bech32_prefix = "trib"
gas_price = "{gas_price}utrib"
gas_adjustment = 1.4
key = "{key}"
keyring_dir = "{keys}"
keyring_backend = "test"

[contracts]
payout = "{payout}"
model_registry = "{registry}"

{models}{engine}

[gateway]
listen = "{gateway}"

[batch]
max_packets = {max_packets}
max_delay_ms = {max_delay_ms}
max_in_flight = {max_in_flight}

[finalize]
enabled = {finalize}
interval_ms = 1000

[telemetry]
listen = "{telemetry}"

[outbox]
path = "{outbox}"
{extra}"#,
            chain_id = self.devnet.chain_id,
            rpc = self.devnet.rpc_url(),
            gas_price = self.params.fees.min_gas_price,
            keys = keys.display(),
            payout = self.payout,
            registry = self.registry,
            outbox = home.join("outbox.redb").display(),
            max_packets = batching.max_packets,
            max_delay_ms = batching.max_delay_ms,
            max_in_flight = batching.max_in_flight,
            finalize = batching.finalize,
        );
        let config = home.join("relayer.toml");
        std::fs::write(&config, text).unwrap();
        RelayerHome {
            config,
            log: home.join("relayer.log"),
            gateway: format!("http://{gateway}"),
            telemetry: format!("http://{telemetry}"),
        }
    }

    /// The `[engine]` section that loads this world's model in process.
    pub fn in_process_engine(&self) -> String {
        format!(
            "[engine]\nmode = \"in_process\"\nmodel_dir = \"{}\"\nindex_dir = \"{}\"",
            self.model_dir.display(),
            self.index_dir.display()
        )
    }
}

/// Trains the tiny model on the snapshot's texts and indexes it; returns the weights hash,
/// index hash and params hash a model version registers.
fn train_and_index(
    corpus: &Corpus,
    texts: &[(u64, Vec<u8>)],
    model_dir: &Path,
    index_dir: &Path,
) -> (HexBinary, HexBinary, HexBinary) {
    let model = LmConfig::new()
        .with_d_model(16)
        .with_n_layers(1)
        .with_n_heads(2)
        .with_d_ff(32)
        .with_context(16);
    let config = TrainConfig::new(model)
        .with_steps(40)
        .with_warmup_steps(5)
        .with_checkpoints(1);
    let examples = examples(texts, config.model.context);
    let trained = train_on_cpu(&config, &examples, false).unwrap();
    let artifact = ModelArtifact::save(model_dir, &config, corpus, &trained).unwrap();
    let settings = IndexSettings {
        k_in: 8,
        k_out: 8,
        ..IndexSettings::default()
    };
    build_index(&artifact, &examples, index_dir, &settings, false).unwrap();
    let index = GradientIndex::open(index_dir).unwrap();
    let engine = Engine::open(model_dir, index_dir).unwrap();
    let top_k = GatewayConfig::default().packet_top_k;
    let params = params_hash(&engine.params(Method::Preconditioned, top_k));
    (
        HexBinary::from_hex(artifact.weights_hash()).unwrap(),
        HexBinary::from_hex(index.index_hash()).unwrap(),
        hex(&params),
    )
}

/// A relayer's `[batch]` and `[finalize]` settings.
#[derive(Clone, Debug)]
pub struct Batching {
    pub max_packets: u32,
    pub max_delay_ms: u64,
    /// Commits broadcast and not yet confirmed at once.
    pub max_in_flight: u32,
    pub finalize: bool,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            max_packets: 16,
            max_delay_ms: 500,
            max_in_flight: 4,
            finalize: true,
        }
    }
}

/// A key that can sign: a devnet key or a new account.
#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub address: String,
    pub mnemonic: String,
}

/// Sets `[gateway] public_url` of a relayer's config to its gateway's URL, so that it publishes
/// the URL in the model registry at start.
pub fn publish_gateway(home: &RelayerHome) {
    let config = std::fs::read_to_string(&home.config).unwrap();
    let listen = format!(
        "listen = \"{}\"",
        home.gateway.strip_prefix("http://").unwrap()
    );
    assert!(config.contains(&listen), "{config}");
    let published = format!("{listen}\npublic_url = \"{}\"", home.gateway);
    std::fs::write(&home.config, config.replacen(&listen, &published, 1)).unwrap();
}

/// A relayer's files and endpoints.
#[derive(Clone, Debug)]
pub struct RelayerHome {
    pub config: PathBuf,
    pub log: PathBuf,
    pub gateway: String,
    pub telemetry: String,
}

/// A running `tributary-relayer start`, killed (SIGKILL) when dropped.
pub struct RelayerProcess {
    pub home: RelayerHome,
    child: Option<Child>,
    /// `start`, or `verify`.
    command: &'static str,
    env: Vec<(String, String)>,
}

impl RelayerProcess {
    pub fn start(home: &RelayerHome) -> RelayerProcess {
        Self::spawn(home, "start", &[])
    }

    /// `tributary-relayer verify` with these environment variables.
    pub fn verify(home: &RelayerHome, env: &[(&str, &str)]) -> RelayerProcess {
        Self::spawn(home, "verify", env)
    }

    fn spawn(home: &RelayerHome, command: &'static str, env: &[(&str, &str)]) -> RelayerProcess {
        let mut p = RelayerProcess {
            home: home.clone(),
            child: None,
            command,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        p.restart();
        p
    }

    /// Starts the process (again), appending to its log.
    pub fn restart(&mut self) {
        self.restart_with_failpoint(None);
    }

    /// Starts the process set to abort at `failpoint` (see the relayer's `failpoint`).
    pub fn restart_with_failpoint(&mut self, failpoint: Option<&str>) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.home.log)
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tributary-relayer"));
        if let Some(name) = failpoint {
            command.env("TRIBUTARY_RELAYER_FAILPOINT", name);
        }
        let child = command
            .args([self.command, "--config"])
            .arg(&self.home.config)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Waits up to `within` for the process to exit on its own; its status, or `None`.
    pub async fn exit_status(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.home.log).unwrap_or_default()
    }

    /// Waits for the telemetry endpoint to answer.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/status", self.home.telemetry)).await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "relayer not ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of a Prometheus metric (first sample whose name starts with `name`).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.home.telemetry))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
    }
}

impl Drop for RelayerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// POSTs a prompt for a paid request to a relayer's gateway; returns status and JSON body.
pub async fn submit(gateway: &str, request_id: u64, prompt: &str) -> Result<(u16, Value), String> {
    submit_with(
        gateway,
        serde_json::json!({"request_id": request_id, "prompt": prompt}),
    )
    .await
}

pub async fn submit_with(gateway: &str, body: Value) -> Result<(u16, Value), String> {
    let response = reqwest::Client::new()
        .post(format!("{gateway}/v1/completions"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    let body = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// Submits until the gateway answers 200 (it may be down or restarting meanwhile).
pub async fn submit_until_served(
    gateway: &str,
    request_id: u64,
    prompt: &str,
    within: Duration,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        match submit(gateway, request_id, prompt).await {
            Ok((200, body)) => return body,
            other => assert!(
                Instant::now() < deadline,
                "request {request_id} not served: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn prompt(i: usize) -> String {
    format!("Question {i}: what does the kernel do with a process?")
}

/// One transaction whose fee the relayer's key paid.
#[derive(Debug)]
pub struct PaidTx {
    pub hash: String,
    pub code: u32,
    pub fee: u128,
    /// `commit_attribution` events that changed state, and those that were repeats.
    pub new_commits: usize,
    pub duplicate_commits: usize,
    pub finalized: usize,
}

/// Every transaction `address` paid a fee for, failed ones included (the ante handler's
/// `tx.fee_payer` event is indexed for both).
pub async fn paid_txs(client: &Client, address: &str) -> Vec<PaidTx> {
    use tendermint_rpc::Client as _;
    let query = tendermint_rpc::query::Query::eq("tx.fee_payer", address);
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let response = client
            .rpc()
            .tx_search(
                query.clone(),
                false,
                page,
                100,
                tendermint_rpc::Order::Ascending,
            )
            .await
            .unwrap();
        let total = response.total_count as usize;
        for tx in response.txs {
            let decoded = cosmrs::Tx::from_bytes(&tx.tx).unwrap();
            let fee = decoded.auth_info.fee.amount.first().map_or(0, |c| c.amount);
            let count = |kind: &str, key: &str, value: &str| {
                tx.tx_result
                    .events
                    .iter()
                    .filter(|e| e.kind == kind)
                    .filter(|e| {
                        e.attributes.iter().any(|a| {
                            a.key_bytes() == key.as_bytes() && a.value_bytes() == value.as_bytes()
                        })
                    })
                    .count()
            };
            out.push(PaidTx {
                hash: tx.hash.to_string(),
                code: tx.tx_result.code.value(),
                fee,
                new_commits: count("wasm-commit_attribution", "duplicate", "false"),
                duplicate_commits: count("wasm-commit_attribution", "duplicate", "true"),
                finalized: count("wasm", "action", "finalize"),
            });
        }
        if out.len() >= total {
            return out;
        }
        page += 1;
    }
}

/// Serializes the live tests of one binary: each runs a node, a relayer and training, and on
/// two cores their timings should not depend on each other.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A small deterministic generator for fault timings (xorshift64*); the seed is printed so a
/// failing schedule can be replayed.
pub struct Chaos(u64);

impl Chaos {
    pub fn from_env_or_time() -> Chaos {
        let seed = std::env::var("TRIBUTARY_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("chaos seed: {seed} (replay with TRIBUTARY_CHAOS_SEED={seed})");
        Chaos(seed)
    }

    /// Uniform in `[lo, hi)` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        Duration::from_millis(lo + x % (hi - lo))
    }
}

impl RelayerProcess {
    /// Waits for the process to exit on its own (a failpoint), up to `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if child.try_wait().unwrap().is_some() {
                    self.child = None;
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

/// A payer's side of its voucher series with the relayer.
pub struct Series {
    pub signer: Signer,
    pub voucher: Voucher,
}

impl Series {
    /// The voucher after one more prompt.
    pub fn extended(&self, prompt: &str) -> Voucher {
        self.voucher
            .extended(&sha256(prompt.as_bytes()), Uint128::new(PRICE))
    }

    /// The request for the next inference, with the voucher the payer signs for it.
    pub fn next(&mut self, prompt: &str) -> serde_json::Value {
        self.voucher = self.extended(prompt);
        let signed = self.signer.sign_voucher(self.voucher.clone()).unwrap();
        serde_json::json!({"voucher": signed, "prompt": prompt})
    }
}

/// Sends one voucher request; `Err` when the relayer does not answer.
pub async fn send(
    gateway: &str,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value), reqwest::Error> {
    let response = reqwest::Client::new()
        .post(format!("{gateway}/v1/vouchers/completions"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    Ok((status, serde_json::from_slice(&bytes).unwrap_or_default()))
}

/// Posts until the relayer answers (it may be restarting).
pub async fn serve(gateway: &str, body: &serde_json::Value) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((status, value)) = send(gateway, body).await {
            if status == 200 {
                return value;
            }
            assert!(status >= 500, "refused: {status} {value}");
        }
        assert!(Instant::now() < deadline, "not served in 60 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

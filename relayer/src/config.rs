//! The relayer's TOML configuration: loading, `~` expansion and validation.
//!
//! Parsing only rejects what serde cannot represent (wrong types, unknown keys); everything
//! about values is left to [`Config::validate`] so an operator sees every problem at once.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use thiserror::Error;
use tributary_client::Decimal;
use tributary_types::validate::{is_gateway_url, MAX_GATEWAY_URL_LEN};

/// The payout contract's cap on packets per `CommitAttribution` (`MAX_PACKETS_PER_COMMIT`).
///
/// Mirrored rather than imported so the relayer does not link the contract crate; a batch
/// above it would be rejected on chain after the gas is spent.
pub const MAX_PACKETS_PER_COMMIT: u32 = 64;

/// Why `engine.mode = "in_process"` cannot work in a relayer built without the engine.
pub const IN_PROCESS_MISSING: &str = "this relayer was built without the `in-process-engine` feature: use \"http\" or rebuild with --features in-process-engine";

/// The keyring directory used when `chain.keyring_dir` is left out.
pub const DEFAULT_KEYRING_DIR: &str = "~/.tributary/relayer/keys";

/// Why the configuration file could not be read or parsed.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the config's shape.
    #[error("config file {path} is malformed: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
}

/// One thing wrong with a parsed configuration, located by its TOML path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where the problem is, e.g. `chain.gas_adjustment` or `models[1].version`.
    pub path: String,
    /// What is wrong and, where useful, the offending value.
    pub message: String,
}

impl ConfigProblem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The whole relayer configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The chain to watch and sign for.
    pub chain: ChainConfig,
    /// The contracts the relayer talks to.
    pub contracts: ContractsConfig,
    /// The models whose requests this relayer serves.
    // Defaulted so a missing list is reported by `validate` alongside everything else.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// Where completions and packets come from.
    pub engine: EngineConfig,
    /// The payer-facing gateway.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// How packets are grouped into commit transactions.
    pub batch: BatchConfig,
    /// Periodic `Finalize` calls.
    pub finalize: FinalizeConfig,
    /// The metrics endpoint.
    pub telemetry: TelemetryConfig,
    /// The durable outbox.
    pub outbox: OutboxConfig,
    /// `tributary-relayer verify`: recomputing and challenging other attestors' packets.
    #[serde(default)]
    pub verifier: Option<VerifierConfig>,
    /// Serving inferences paid by vouchers and settling them in batches; off when absent.
    #[serde(default)]
    pub vouchers: Option<VouchersConfig>,
}

/// `[vouchers]`: `POST /v1/vouchers/completions` and settlement batches.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VouchersConfig {
    /// Most inferences in one `SettleBatch` (1 to the contract's 1 024).
    #[serde(default = "default_voucher_batch")]
    pub max_batch: u32,
    /// How long a served inference may wait for its batch to fill.
    #[serde(default = "default_voucher_delay_ms")]
    pub max_delay_ms: u64,
}

fn default_voucher_batch() -> u32 {
    512
}

fn default_voucher_delay_ms() -> u64 {
    2000
}

/// `[verifier]`: what `tributary-relayer verify` checks and where it reads prompts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VerifierConfig {
    /// Share of the attested requests of the served models to recompute, 0 to 1.
    #[serde(default = "default_sample_rate")]
    pub sample_rate: f64,
    /// Attestors' gateways to read prompts and completions from, as a bonded verifier.
    #[serde(default)]
    pub sources: Vec<InputSource>,
    /// Milliseconds between rounds.
    #[serde(default = "default_verifier_poll_ms")]
    pub poll_ms: u64,
    /// Bond up to the contract's `min_verifier_bond` at start and whenever below it.
    #[serde(default = "default_auto_bond")]
    pub auto_bond: bool,
}

/// `[[verifier.sources]]`: one attestor's gateway.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InputSource {
    /// The gateway's base URL.
    pub url: String,
    /// The attestor that runs it: proofs are signed for it.
    pub attestor: String,
}

fn default_sample_rate() -> f64 {
    1.0
}

fn default_verifier_poll_ms() -> u64 {
    1_000
}

fn default_auto_bond() -> bool {
    true
}

/// `[chain]`: the chain, its endpoints and the signing key.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// The chain id, e.g. `tributary-devnet-1`.
    pub id: String,
    /// CometBFT RPC endpoints, tried in order.
    pub rpc: Vec<String>,
    /// The account address prefix, e.g. `trib`.
    pub bech32_prefix: String,
    /// The gas price as amount and denom, e.g. `0.025utrib`.
    pub gas_price: String,
    /// The factor applied to simulated gas.
    pub gas_adjustment: f64,
    /// The signing key's name in the keyring.
    pub key: String,
    /// The keyring directory.
    #[serde(default = "default_keyring_dir")]
    pub keyring_dir: PathBuf,
    /// `file` (encrypted; passphrase from `$TRIBUTARY_KEYRING_PASSPHRASE`) or `test` (clear
    /// text, devnets only).
    #[serde(default = "default_keyring_backend")]
    pub keyring_backend: String,
    /// The first block to scan on a first start (default: the chain's latest block then);
    /// later starts resume after the last scanned block.
    #[serde(default)]
    pub start_height: Option<u64>,
}

fn default_keyring_backend() -> String {
    "file".into()
}

fn default_keyring_dir() -> PathBuf {
    PathBuf::from(DEFAULT_KEYRING_DIR)
}

impl ChainConfig {
    /// The parsed `gas_price`.
    pub fn parsed_gas_price(&self) -> Result<GasPrice, String> {
        GasPrice::parse(&self.gas_price)
    }
}

/// A gas price: amount per unit of gas in `denom`.
#[derive(Debug, Clone, PartialEq)]
pub struct GasPrice {
    /// The decimal amount, e.g. `0.025`, exact as the client computes fees with it.
    pub amount: Decimal,
    /// The fee denom, e.g. `utrib`.
    pub denom: String,
}

impl GasPrice {
    /// Parses `<decimal amount><denom>`, e.g. `0.025utrib`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (amount, denom) = s.split_at(split);
        if amount.is_empty() {
            return Err(format!(
                "{s:?} must start with an amount, e.g. \"0.025utrib\""
            ));
        }
        let amount = Decimal::from_str(amount)
            .map_err(|_| format!("{s:?} has an unreadable amount {amount:?}"))?;
        if amount.is_zero() {
            return Err(format!("{s:?} must have an amount above zero"));
        }
        if !is_valid_denom(denom) {
            return Err(format!(
                "{s:?} has an invalid denom {denom:?} (3-128 characters, starting with a letter)"
            ));
        }
        Ok(Self {
            amount,
            denom: denom.to_string(),
        })
    }
}

// The Cosmos SDK's denom rule: a letter, then 2-127 of letters, digits, `/:._-`.
fn is_valid_denom(denom: &str) -> bool {
    let mut chars = denom.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && (3..=128).contains(&denom.len())
        && chars.all(|c| c.is_ascii_alphanumeric() || "/:._-".contains(c))
}

/// `[contracts]`: the addresses of the contracts the relayer calls.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContractsConfig {
    /// The payout contract (`CommitAttribution`, `Finalize`).
    pub payout: String,
    /// The model registry (lineage and weights hashes).
    pub model_registry: String,
}

/// `[[models]]`: one served model version.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model id in the registry.
    pub model_id: u64,
    /// The model version in the registry.
    pub version: u32,
    /// The engine's name of the model that serves this version (http mode), when it is not
    /// `engine.model_name`: one engine gateway may serve several models.
    #[serde(default)]
    pub engine_model: Option<String>,
}

/// How the attribution engine is reached.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EngineMode {
    /// Through the engine's HTTP gateway (`url`, `model_name`).
    Http,
    /// Loaded into the relayer process (`model_dir`, `index_dir`).
    InProcess,
}

impl Config {
    /// The engine model serving each `[[models]]` version: its `engine_model`, else `default`
    /// (the engine's own model name).
    pub fn engine_models(&self, default: &str) -> BTreeMap<(u64, u32), String> {
        self.models
            .iter()
            .map(|m| {
                let name = m
                    .engine_model
                    .clone()
                    .unwrap_or_else(|| default.to_string());
                ((m.model_id, m.version), name)
            })
            .collect()
    }
}

impl fmt::Display for EngineMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineMode::Http => "http",
            EngineMode::InProcess => "in_process",
        })
    }
}

/// `[engine]`: the attribution engine.
// A flat struct rather than a tagged enum so that a field of the wrong mode can be reported
// with its path by `validate` instead of as an opaque parse error.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// `http` or `in_process`.
    pub mode: EngineMode,
    /// The gateway URL (http mode).
    pub url: Option<String>,
    /// The model name at the gateway (http mode).
    pub model_name: Option<String>,
    /// A file holding the token the engine's gateway wants as `Authorization: Bearer` (http
    /// mode): the same secret as its `serve --auth-token-file`.
    pub auth_token_file: Option<PathBuf>,
    /// The model directory (in_process mode).
    pub model_dir: Option<PathBuf>,
    /// The attribution index directory (in_process mode).
    pub index_dir: Option<PathBuf>,
}

/// `[gateway]`: where payers send their prompts and read their completions.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The `host:port` to serve `POST /v1/completions` and `GET /v1/requests/{id}` on.
    #[serde(default = "default_gateway_listen")]
    pub listen: String,
    /// A prompt is refused when its request has less than this left before it expires: the
    /// relayer must still be able to attribute and commit it, or the payer would get both the
    /// completion and, at expiry, its fee back.
    #[serde(default = "default_commit_margin_seconds")]
    pub commit_margin_seconds: u64,
    /// Most requests of one payer in each queue: waiting for their prompt, and waiting for
    /// attribution. Past it, a payer's new requests are not kept until they get a prompt, and
    /// new prompts are refused (429) until its queue drains.
    #[serde(default = "default_max_waiting_per_payer")]
    pub max_waiting_per_payer: usize,
    /// Most requests in each queue, from all payers together.
    #[serde(default = "default_max_waiting")]
    pub max_waiting: usize,
    /// How long `POST /v1/completions` waits for the completion before answering 503; the
    /// prompt stays queued and the payer reads the completion later.
    #[serde(default = "default_response_timeout_ms")]
    pub response_timeout_ms: u64,
    /// The `http(s)://` URL buyers reach this gateway at, published in the model registry at
    /// start; `None` publishes nothing.
    #[serde(default)]
    pub public_url: Option<String>,
}

fn default_max_waiting_per_payer() -> usize {
    32
}

fn default_max_waiting() -> usize {
    4096
}

fn default_response_timeout_ms() -> u64 {
    60_000
}

fn default_gateway_listen() -> String {
    "127.0.0.1:8710".into()
}

fn default_commit_margin_seconds() -> u64 {
    60
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: default_gateway_listen(),
            commit_margin_seconds: default_commit_margin_seconds(),
            max_waiting_per_payer: default_max_waiting_per_payer(),
            max_waiting: default_max_waiting(),
            response_timeout_ms: default_response_timeout_ms(),
            public_url: None,
        }
    }
}

/// `[batch]`: commit batching.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// The most packets in one commit transaction.
    pub max_packets: u32,
    /// How long a packet may wait for its batch to fill.
    pub max_delay_ms: u64,
    /// Most commit transactions broadcast and not yet confirmed at once (sequence numbers
    /// consecutive, each recorded in the outbox before it leaves).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
}

/// Commits in flight when `batch.max_in_flight` is not set.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 4;
/// Most commits in flight the relayer accepts: past a few blocks' worth a stalled one holds
/// back more packets than pipelining gains.
pub const MAX_IN_FLIGHT: u32 = 32;

fn default_max_in_flight() -> u32 {
    DEFAULT_MAX_IN_FLIGHT
}

/// `[finalize]`: periodic `Finalize` calls.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FinalizeConfig {
    /// Whether this relayer calls `Finalize` at all.
    pub enabled: bool,
    /// How often it does.
    pub interval_ms: u64,
}

/// `[telemetry]`: the metrics endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The `host:port` to serve metrics on.
    pub listen: String,
}

/// `[outbox]`: the durable request outbox.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// The redb file.
    pub path: PathBuf,
}

impl Config {
    /// Reads and parses `path`, expanding a leading `~` in paths to `$HOME`; does not validate.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        config.expand_home(std::env::var_os("HOME").map(PathBuf::from).as_deref());
        Ok(config)
    }

    /// Parses TOML text without touching `~` or validating.
    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Replaces a leading `~` in every path setting with `home` (left as is when `None`).
    pub fn expand_home(&mut self, home: Option<&Path>) {
        let paths = [
            Some(&mut self.chain.keyring_dir),
            Some(&mut self.outbox.path),
            self.engine.model_dir.as_mut(),
            self.engine.index_dir.as_mut(),
            self.engine.auth_token_file.as_mut(),
        ];
        for path in paths.into_iter().flatten() {
            *path = expand_tilde(path, home);
        }
    }

    /// Checks every value, returning all problems found rather than stopping at the first.
    pub fn validate(&self) -> Result<(), Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut problem = |path: &str, message: String| {
            problems.push(ConfigProblem::new(path, message));
        };

        let chain = &self.chain;
        if chain.id.trim().is_empty() {
            problem("chain.id", "must not be empty".into());
        }
        if chain.rpc.is_empty() {
            problem("chain.rpc", "at least one RPC endpoint is required".into());
        }
        for (i, url) in chain.rpc.iter().enumerate() {
            if let Err(e) = check_http_url(url) {
                problem(&format!("chain.rpc[{i}]"), e);
            }
        }
        let prefix_ok = is_valid_hrp(&chain.bech32_prefix);
        if !prefix_ok {
            problem(
                "chain.bech32_prefix",
                format!(
                    "{:?} is not a valid bech32 prefix (1-83 lowercase ASCII letters or digits)",
                    chain.bech32_prefix
                ),
            );
        }
        if let Err(e) = chain.parsed_gas_price() {
            problem("chain.gas_price", e);
        }
        if !chain.gas_adjustment.is_finite() || chain.gas_adjustment < 1.0 {
            problem(
                "chain.gas_adjustment",
                format!("must be at least 1.0, got {}", chain.gas_adjustment),
            );
        }
        if chain.key.trim().is_empty() {
            problem("chain.key", "must name a key in the keyring".into());
        }
        if !matches!(chain.keyring_backend.as_str(), "file" | "test") {
            problem(
                "chain.keyring_backend",
                format!(
                    "must be \"file\" or \"test\", got {:?}",
                    chain.keyring_backend
                ),
            );
        }

        // With a broken prefix every address would also be reported; one problem is enough.
        if prefix_ok {
            for (path, address) in [
                ("contracts.payout", &self.contracts.payout),
                ("contracts.model_registry", &self.contracts.model_registry),
            ] {
                if let Err(e) = check_address(address, &chain.bech32_prefix) {
                    problem(path, e);
                }
            }
        }

        if self.models.is_empty() {
            problem("models", "at least one model must be served".into());
        }
        for (i, model) in self.models.iter().enumerate() {
            match (&model.engine_model, self.engine.mode) {
                (Some(name), EngineMode::Http) if name.trim().is_empty() => problem(
                    &format!("models[{i}].engine_model"),
                    "must not be empty".into(),
                ),
                (Some(_), EngineMode::InProcess) => problem(
                    &format!("models[{i}].engine_model"),
                    "is not used when engine.mode is \"in_process\" (the process serves one model)"
                        .into(),
                ),
                _ => {}
            }
            if self.models[..i]
                .iter()
                .any(|m| (m.model_id, m.version) == (model.model_id, model.version))
            {
                problem(
                    &format!("models[{i}]"),
                    format!(
                        "model {} version {} is listed twice",
                        model.model_id, model.version
                    ),
                );
            }
        }

        let engine = &self.engine;
        // (field, present) pairs: the fields the mode needs, and those it does not use.
        type Fields<'a> = &'a [(&'a str, bool)];
        let (needed, foreign): (Fields, Fields) = match engine.mode {
            EngineMode::Http => (
                &[
                    ("url", engine.url.is_some()),
                    ("model_name", engine.model_name.is_some()),
                    ("auth_token_file", engine.auth_token_file.is_some()),
                ],
                &[
                    ("model_dir", engine.model_dir.is_some()),
                    ("index_dir", engine.index_dir.is_some()),
                ],
            ),
            EngineMode::InProcess => (
                &[
                    ("model_dir", engine.model_dir.is_some()),
                    ("index_dir", engine.index_dir.is_some()),
                ],
                &[
                    ("url", engine.url.is_some()),
                    ("model_name", engine.model_name.is_some()),
                    ("auth_token_file", engine.auth_token_file.is_some()),
                ],
            ),
        };
        if engine.mode == EngineMode::InProcess && !cfg!(feature = "in-process-engine") {
            problem("engine.mode", IN_PROCESS_MISSING.into());
        }
        for (field, present) in needed {
            if !present {
                problem(
                    &format!("engine.{field}"),
                    format!("is required when engine.mode is \"{}\"", engine.mode),
                );
            }
        }
        for (field, present) in foreign {
            if *present {
                problem(
                    &format!("engine.{field}"),
                    format!("is not used when engine.mode is \"{}\"", engine.mode),
                );
            }
        }
        if let (EngineMode::Http, Some(url)) = (engine.mode, &engine.url) {
            if let Err(e) = check_http_url(url) {
                problem("engine.url", e);
            }
        }
        if let (EngineMode::Http, Some(name)) = (engine.mode, &engine.model_name) {
            if name.trim().is_empty() {
                problem("engine.model_name", "must not be empty".into());
            }
        }

        if !(1..=MAX_PACKETS_PER_COMMIT).contains(&self.batch.max_packets) {
            problem(
                "batch.max_packets",
                format!(
                    "must be between 1 and {MAX_PACKETS_PER_COMMIT} (the payout contract's limit), got {}",
                    self.batch.max_packets
                ),
            );
        }
        if let Some(vouchers) = &self.vouchers {
            let max = tributary_types::batch::MAX_BATCH_INFERENCES as u32;
            if !(1..=max).contains(&vouchers.max_batch) {
                problem(
                    "vouchers.max_batch",
                    format!("must be between 1 and {max}, got {}", vouchers.max_batch),
                );
            }
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.batch.max_in_flight) {
            problem(
                "batch.max_in_flight",
                format!(
                    "must be between 1 and {MAX_IN_FLIGHT}, got {}",
                    self.batch.max_in_flight
                ),
            );
        }
        if self.finalize.enabled && self.finalize.interval_ms == 0 {
            problem(
                "finalize.interval_ms",
                "must be above 0 when finalize is enabled".into(),
            );
        }
        if self.telemetry.listen.parse::<SocketAddr>().is_err() {
            problem(
                "telemetry.listen",
                format!(
                    "{:?} is not a host:port socket address, e.g. \"127.0.0.1:9464\"",
                    self.telemetry.listen
                ),
            );
        }
        if self.gateway.listen.parse::<SocketAddr>().is_err() {
            problem(
                "gateway.listen",
                format!(
                    "{:?} is not a host:port socket address, e.g. \"127.0.0.1:8710\"",
                    self.gateway.listen
                ),
            );
        } else if self.gateway.listen == self.telemetry.listen {
            problem("gateway.listen", "must differ from telemetry.listen".into());
        }
        let gateway = &self.gateway;
        if gateway.max_waiting_per_payer == 0 {
            problem("gateway.max_waiting_per_payer", "must be at least 1".into());
        }
        if gateway.max_waiting < gateway.max_waiting_per_payer {
            problem(
                "gateway.max_waiting",
                format!(
                    "must be at least gateway.max_waiting_per_payer ({}), got {}",
                    gateway.max_waiting_per_payer, gateway.max_waiting
                ),
            );
        }
        // The registry's own rule: a URL it would refuse is never published.
        if let Some(url) = gateway.public_url.as_deref().filter(|u| !is_gateway_url(u)) {
            problem(
                "gateway.public_url",
                format!(
                    "{url:?} is not an http:// or https:// URL of at most {MAX_GATEWAY_URL_LEN} bytes"
                ),
            );
        }
        if gateway.response_timeout_ms == 0 {
            problem("gateway.response_timeout_ms", "must be above 0".into());
        }
        if self.outbox.path.as_os_str().is_empty() {
            problem("outbox.path", "must not be empty".into());
        }
        if let Some(verifier) = &self.verifier {
            if !(0.0..=1.0).contains(&verifier.sample_rate) {
                problem(
                    "verifier.sample_rate",
                    format!("must be from 0 to 1, got {}", verifier.sample_rate),
                );
            }
            if verifier.poll_ms == 0 {
                problem("verifier.poll_ms", "must be above 0".into());
            }
            for (i, source) in verifier.sources.iter().enumerate() {
                if let Err(e) = check_http_url(&source.url) {
                    problem(&format!("verifier.sources[{i}].url"), e);
                }
                if prefix_ok {
                    if let Err(e) = check_address(&source.attestor, &chain.bech32_prefix) {
                        problem(&format!("verifier.sources[{i}].attestor"), e);
                    }
                }
            }
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Replaces a leading `~` (alone or followed by `/`) with `home`; other paths are unchanged.
pub fn expand_tilde(path: &Path, home: Option<&Path>) -> PathBuf {
    let Some(home) = home else {
        return path.to_path_buf();
    };
    match path.strip_prefix("~") {
        Ok(rest) => home.join(rest),
        Err(_) => path.to_path_buf(),
    }
}

fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} must start with http:// or https://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{url:?} has no valid host"));
    }
    Ok(())
}

fn is_valid_hrp(hrp: &str) -> bool {
    (1..=83).contains(&hrp.len())
        && hrp
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

// Checking the checksum here catches a mistyped address at startup instead of as a failed
// transaction later.
fn check_address(address: &str, prefix: &str) -> Result<(), String> {
    let (hrp, data) = bech32::decode(address)
        .map_err(|e| format!("{address:?} is not a valid bech32 address ({e})"))?;
    if hrp.as_str() != prefix {
        return Err(format!(
            "{address:?} does not have the chain's prefix {prefix:?}"
        ));
    }
    // Accounts are 20 bytes, contracts 32.
    if data.len() != 20 && data.len() != 32 {
        return Err(format!(
            "{address:?} holds {} bytes, not the 20 of an account or the 32 of a contract",
            data.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../relayer.example.toml");
    const PAYOUT: &str = "trib1qnwy70dsu82ua4cffqku0wr2mehpdgzs83w2kj7qm8j6k5u60lqs9excyz";

    fn example() -> Config {
        Config::parse(EXAMPLE).expect("example parses")
    }

    fn problems(config: &Config) -> Vec<String> {
        match config.validate() {
            Ok(()) => vec![],
            Err(p) => p.iter().map(ToString::to_string).collect(),
        }
    }

    fn assert_one_problem(config: &Config, expected: &str) {
        assert_eq!(problems(config), vec![expected.to_string()]);
    }

    #[test]
    fn example_config_loads_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("relayer.example.toml");
        let config = Config::load(&path).unwrap();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.chain.id, "tributary-devnet-1");
        assert_eq!(
            config.models,
            vec![ModelConfig {
                model_id: 1,
                version: 1,
                engine_model: None,
            }]
        );
        assert_eq!(config.engine.mode, EngineMode::Http);
        assert_eq!(config.batch.max_packets, 16);
        assert_eq!(
            config.chain.parsed_gas_price().unwrap(),
            GasPrice {
                amount: Decimal::from_str("0.025").unwrap(),
                denom: "utrib".into()
            }
        );
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(
                config.outbox.path,
                Path::new(&home).join(".tributary/relayer/outbox.redb")
            );
        }
    }

    #[test]
    fn a_verifier_section_parses_and_its_mistakes_are_named() {
        let attestor = "trib1qnwy70dsu82ua4cffqku0wr2mehpdgzs83w2kj7qm8j6k5u60lqs9excyz";
        let section = format!(
            "\n[verifier]\nsample_rate = 0.5\n\n[[verifier.sources]]\nurl = \"http://a:8710\"\nattestor = \"{attestor}\"\n"
        );
        let config = Config::parse(&format!("{EXAMPLE}{section}")).unwrap();
        assert_eq!(config.validate(), Ok(()));
        let verifier = config.verifier.unwrap();
        assert_eq!(verifier.sample_rate, 0.5);
        assert_eq!(verifier.poll_ms, 1_000);
        assert!(verifier.auto_bond);
        assert_eq!(verifier.sources[0].attestor, attestor);

        let bad = section
            .replace("0.5", "1.5")
            .replace(attestor, "cosmos1nope");
        let config = Config::parse(&format!("{EXAMPLE}{bad}")).unwrap();
        let found = problems(&config);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("verifier.sample_rate"), "{found:?}");
        assert!(
            found[1].starts_with("verifier.sources[0].attestor"),
            "{found:?}"
        );
    }

    #[test]
    fn keyring_dir_defaults_and_tilde_expands() {
        let text = EXAMPLE.replace("keyring_dir = \"~/.tributary/relayer/keys\"\n", "");
        let mut config = Config::parse(&text).unwrap();
        assert_eq!(config.chain.keyring_dir, PathBuf::from(DEFAULT_KEYRING_DIR));
        config.expand_home(Some(Path::new("/home/op")));
        assert_eq!(
            config.chain.keyring_dir,
            PathBuf::from("/home/op/.tributary/relayer/keys")
        );
        assert_eq!(
            expand_tilde(Path::new("/abs/~x"), Some(Path::new("/h"))),
            PathBuf::from("/abs/~x")
        );
        assert_eq!(
            expand_tilde(Path::new("~"), Some(Path::new("/h"))),
            PathBuf::from("/h")
        );
        assert_eq!(expand_tilde(Path::new("~/a"), None), PathBuf::from("~/a"));
    }

    #[test]
    fn unknown_key_is_a_parse_error() {
        let text = EXAMPLE.replace("[batch]\n", "[batch]\nmax_packet = 3\n");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field `max_packet`"), "{err}");
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let err = Config::load("/nonexistent/relayer.toml").unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    }

    #[test]
    fn malformed_file_is_a_parse_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[chain\n").unwrap();
        let err = Config::load(&path).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    }

    #[test]
    fn gas_adjustment_below_one() {
        let mut c = example();
        c.chain.gas_adjustment = 0.9;
        assert_one_problem(&c, "chain.gas_adjustment: must be at least 1.0, got 0.9");
    }

    #[test]
    fn gas_price_is_parsed_and_checked() {
        for (bad, expected) in [
            ("utrib", "must start with an amount"),
            ("0.025", "invalid denom"),
            ("0utrib", "above zero"),
            ("1.2.3utrib", "unreadable amount"),
            ("0.025u", "invalid denom"),
        ] {
            let mut c = example();
            c.chain.gas_price = bad.into();
            let p = problems(&c);
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(p[0].starts_with("chain.gas_price: "), "{p:?}");
            assert!(p[0].contains(expected), "{bad}: {p:?}");
        }
    }

    #[test]
    fn rpc_needs_at_least_one_valid_url() {
        let mut c = example();
        c.chain.rpc.clear();
        assert_one_problem(&c, "chain.rpc: at least one RPC endpoint is required");
        c.chain.rpc = vec!["http://127.0.0.1:26657".into(), "tcp://x:1".into()];
        assert_one_problem(
            &c,
            "chain.rpc[1]: \"tcp://x:1\" must start with http:// or https://",
        );
    }

    #[test]
    fn empty_chain_id_and_key() {
        let mut c = example();
        c.chain.id = " ".into();
        c.chain.key = String::new();
        assert_eq!(
            problems(&c),
            vec![
                "chain.id: must not be empty".to_string(),
                "chain.key: must name a key in the keyring".to_string(),
            ]
        );
    }

    #[test]
    fn bad_bech32_prefix() {
        let mut c = example();
        c.chain.bech32_prefix = "Trib".into();
        assert_one_problem(
            &c,
            "chain.bech32_prefix: \"Trib\" is not a valid bech32 prefix (1-83 lowercase ASCII letters or digits)",
        );
    }

    #[test]
    fn contract_with_foreign_prefix() {
        let mut c = example();
        c.contracts.payout =
            "cosmos1qnwy70dsu82ua4cffqku0wr2mehpdgzs83w2kj7qm8j6k5u60lqspwa2le".into();
        assert_one_problem(
            &c,
            "contracts.payout: \"cosmos1qnwy70dsu82ua4cffqku0wr2mehpdgzs83w2kj7qm8j6k5u60lqspwa2le\" does not have the chain's prefix \"trib\"",
        );
    }

    #[test]
    fn contract_address_shape_and_checksum() {
        let mut c = example();
        for bad in [
            "trib1abc".to_string(),
            // `b` is outside the bech32 alphabet.
            PAYOUT.replace('q', "b"),
            // One changed character breaks the checksum.
            PAYOUT.replacen('n', "m", 1),
            "trib".to_string(),
        ] {
            c.contracts.model_registry = bad.clone();
            let p = problems(&c);
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(
                p[0].starts_with("contracts.model_registry: ")
                    && p[0].contains("is not a valid bech32 address"),
                "{bad}: {p:?}"
            );
        }
        // A well-formed address of the wrong size.
        let hrp = bech32::Hrp::parse("trib").unwrap();
        c.contracts.model_registry = bech32::encode::<bech32::Bech32>(hrp, &[7u8; 8]).unwrap();
        let p = problems(&c);
        assert!(p[0].contains("holds 8 bytes"), "{p:?}");
    }

    #[test]
    fn no_models() {
        let text = EXAMPLE.replace("[[models]]\nmodel_id = 1\nversion = 1\n", "");
        let c = Config::parse(&text).unwrap();
        assert_one_problem(&c, "models: at least one model must be served");
    }

    #[test]
    fn duplicate_model() {
        let mut c = example();
        c.models.push(c.models[0].clone());
        assert_one_problem(&c, "models[1]: model 1 version 1 is listed twice");
        // Another engine model does not make it another version.
        c.models[1].engine_model = Some("other".into());
        assert_one_problem(&c, "models[1]: model 1 version 1 is listed twice");
    }

    #[test]
    fn an_engine_model_per_version_is_for_http_engines_only() {
        let mut c = example();
        c.models.push(ModelConfig {
            model_id: 2,
            version: 1,
            engine_model: Some("legal".into()),
        });
        assert_eq!(c.validate(), Ok(()));
        let names = c.engine_models("systems");
        assert_eq!(names[&(1, 1)], "systems");
        assert_eq!(names[&(2, 1)], "legal");
        c.models[1].engine_model = Some(" ".into());
        assert_one_problem(&c, "models[1].engine_model: must not be empty");
        let mut c = example();
        c.engine.mode = EngineMode::InProcess;
        c.engine.url = None;
        c.engine.model_name = None;
        c.engine.auth_token_file = None;
        c.engine.model_dir = Some("/m".into());
        c.engine.index_dir = Some("/i".into());
        c.models[0].engine_model = Some("legal".into());
        assert_one_problem(
            &c,
            "models[0].engine_model: is not used when engine.mode is \"in_process\" (the process serves one model)",
        );
    }

    #[test]
    fn engine_fields_must_match_mode() {
        let mut c = example();
        c.engine.mode = EngineMode::InProcess;
        assert_eq!(
            problems(&c),
            vec![
                "engine.model_dir: is required when engine.mode is \"in_process\"".to_string(),
                "engine.index_dir: is required when engine.mode is \"in_process\"".to_string(),
                "engine.url: is not used when engine.mode is \"in_process\"".to_string(),
                "engine.model_name: is not used when engine.mode is \"in_process\"".to_string(),
                "engine.auth_token_file: is not used when engine.mode is \"in_process\""
                    .to_string(),
            ]
        );
        c.engine.url = None;
        c.engine.model_name = None;
        c.engine.auth_token_file = None;
        c.engine.model_dir = Some("/m".into());
        c.engine.index_dir = Some("/i".into());
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn engine_url_checked() {
        let mut c = example();
        c.engine.url = Some("127.0.0.1:8800".into());
        assert_one_problem(
            &c,
            "engine.url: \"127.0.0.1:8800\" must start with http:// or https://",
        );
    }

    #[test]
    fn unknown_engine_mode_is_a_parse_error() {
        let text = EXAMPLE.replace("mode = \"http\"", "mode = \"grpc\"");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("unknown variant `grpc`"), "{err}");
    }

    #[test]
    fn batch_size_within_contract_limit() {
        let mut c = example();
        c.batch.max_packets = 0;
        assert_one_problem(
            &c,
            "batch.max_packets: must be between 1 and 64 (the payout contract's limit), got 0",
        );
        c.batch.max_packets = 65;
        assert_eq!(problems(&c).len(), 1);
        c.batch.max_packets = 64;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn finalize_interval_zero_only_when_disabled() {
        let mut c = example();
        c.finalize.interval_ms = 0;
        assert_one_problem(
            &c,
            "finalize.interval_ms: must be above 0 when finalize is enabled",
        );
        c.finalize.enabled = false;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn telemetry_listen_is_a_socket_address() {
        let mut c = example();
        c.telemetry.listen = "localhost".into();
        assert_one_problem(
            &c,
            "telemetry.listen: \"localhost\" is not a host:port socket address, e.g. \"127.0.0.1:9464\"",
        );
    }

    #[test]
    fn keyring_backend_and_gateway_are_checked() {
        let mut c = example();
        c.chain.keyring_backend = "os".into();
        assert_one_problem(
            &c,
            "chain.keyring_backend: must be \"file\" or \"test\", got \"os\"",
        );
        let mut c = example();
        c.gateway.listen = "nowhere".into();
        assert_one_problem(
            &c,
            "gateway.listen: \"nowhere\" is not a host:port socket address, e.g. \"127.0.0.1:8710\"",
        );
        let mut c = example();
        c.gateway.listen = c.telemetry.listen.clone();
        assert_one_problem(&c, "gateway.listen: must differ from telemetry.listen");
        for url in ["relayer.example.com", "ftp://x", "https://", "https://a b"] {
            let mut c = example();
            c.gateway.public_url = Some(url.into());
            assert_one_problem(
                &c,
                &format!(
                    "gateway.public_url: {url:?} is not an http:// or https:// URL of at most 256 bytes"
                ),
            );
        }
        let mut c = example();
        c.gateway.public_url = Some("https://relayer.example.com/tributary".into());
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn gateway_queue_caps_and_timeout_are_checked() {
        let mut c = example();
        assert_eq!(c.gateway.max_waiting_per_payer, 32);
        assert_eq!(c.gateway.commit_margin_seconds, 60);
        c.gateway.max_waiting_per_payer = 0;
        assert_one_problem(&c, "gateway.max_waiting_per_payer: must be at least 1");
        c.gateway.max_waiting_per_payer = 10;
        c.gateway.max_waiting = 5;
        assert_one_problem(
            &c,
            "gateway.max_waiting: must be at least gateway.max_waiting_per_payer (10), got 5",
        );
        c.gateway.max_waiting = 10;
        c.gateway.response_timeout_ms = 0;
        assert_one_problem(&c, "gateway.response_timeout_ms: must be above 0");
        // A config without the new keys takes the defaults.
        let text = EXAMPLE
            .lines()
            .filter(|l| !l.starts_with("max_waiting") && !l.starts_with("response_timeout"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            Config::parse(&text).unwrap().gateway,
            GatewayConfig::default()
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let mut c = example();
        c.chain.gas_adjustment = 0.5;
        c.models.clear();
        c.batch.max_packets = 0;
        c.telemetry.listen = "x".into();
        let p = problems(&c);
        assert_eq!(p.len(), 4, "{p:?}");
    }
}

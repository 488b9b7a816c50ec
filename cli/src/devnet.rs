//! `tributary devnet up|status|logs|down` and `tributary chain-info`.

use crate::output::Output;
use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tributary_client::{ChainConfig, Client, Contracts, DeploySettings, Deployment, Signer};
use tributary_devnet::{Devnet, DevnetParams, Error as DevnetError, InitOptions, Tributaryd};
use tributary_keyring::{Backend, Keyring};

#[derive(Subcommand)]
pub enum DevnetCommand {
    /// Creates (or restarts) a devnet, waits for blocks and deploys the contracts.
    Up {
        /// Devnet home folder.
        #[arg(long, env = "TRIBUTARY_DEVNET_HOME", default_value_os_t = default_home())]
        home: PathBuf,
        /// Number of validators.
        #[arg(long, default_value_t = 1)]
        validators: usize,
        /// Extra genesis balance, `ADDRESS=COINS` (repeatable).
        #[arg(long = "fund", value_parser = parse_fund)]
        funds: Vec<(String, String)>,
        /// Chain parameters (default: the repository's chain/devnet.toml).
        #[arg(long)]
        params: Option<PathBuf>,
        /// Block time override in milliseconds.
        #[arg(long)]
        block_time_ms: Option<u64>,
        /// Added to every port, to run several devnets side by side.
        #[arg(long, default_value_t = 0)]
        port_offset: u16,
        /// The tributaryd binary (what `chain/build` prints).
        #[arg(long, env = "TRIBUTARYD", default_value = "tributaryd")]
        tributaryd: PathBuf,
        /// Start the chain only; deploy later with `tributary deploy`.
        #[arg(long)]
        no_deploy: bool,
        /// Folder of the wasm artifacts and checksums.txt (`ci/build-wasm`).
        #[arg(long, env = "TRIBUTARY_ARTIFACTS", default_value = "artifacts")]
        artifacts: PathBuf,
        /// Seconds between an attribution quorum and finalization.
        #[arg(long, default_value_t = 30)]
        challenge_window: u64,
    },
    /// Shows each node's process and height.
    Status {
        #[arg(long, env = "TRIBUTARY_DEVNET_HOME", default_value_os_t = default_home())]
        home: PathBuf,
    },
    /// Prints the last lines of a node's log.
    Logs {
        #[arg(long, env = "TRIBUTARY_DEVNET_HOME", default_value_os_t = default_home())]
        home: PathBuf,
        #[arg(long, default_value_t = 0)]
        node: usize,
        #[arg(long, default_value_t = 50)]
        lines: usize,
    },
    /// Stops every node (data is kept; `up` restarts it).
    Down {
        #[arg(long, env = "TRIBUTARY_DEVNET_HOME", default_value_os_t = default_home())]
        home: PathBuf,
    },
}

/// `~/.tributary/devnet`.
pub fn default_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| ".".into())
        .join(".tributary/devnet")
}

fn parse_fund(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(a, c)| (a.to_string(), c.to_string()))
        .filter(|(a, c)| !a.is_empty() && !c.is_empty())
        .ok_or_else(|| format!("expected ADDRESS=COINS, got {s:?}"))
}

#[derive(Serialize)]
struct UpReport<'a> {
    home: &'a Path,
    deployment: Option<&'a Contracts<String>>,
    keyring: PathBuf,
    chain_id: &'a str,
    height: u64,
    nodes: Vec<NodeReport<'a>>,
    keys: Vec<KeyReport<'a>>,
}

#[derive(Serialize)]
struct NodeReport<'a> {
    rpc: &'a str,
    rest: &'a str,
    grpc: &'a str,
}

#[derive(Serialize)]
struct KeyReport<'a> {
    name: &'a str,
    address: &'a str,
}

pub async fn run(command: DevnetCommand, output: Output) -> Result<()> {
    match command {
        DevnetCommand::Up {
            home,
            validators,
            funds,
            params,
            block_time_ms,
            port_offset,
            tributaryd,
            no_deploy,
            artifacts,
            challenge_window,
        } => {
            let params = match params {
                Some(path) => DevnetParams::from_toml(
                    &std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                )?,
                None => DevnetParams::default_devnet(),
            };
            let devnet = match Devnet::load(&home) {
                Ok(existing) => {
                    if let Some(node) = existing.nodes.iter().find(|n| existing.is_running(n.index))
                    {
                        anyhow::bail!(
                            "the devnet at {} is already running (node {} pid {}); `tributary devnet status` shows it",
                            home.display(),
                            node.index,
                            existing.pid(node.index).unwrap_or_default()
                        );
                    }
                    existing
                }
                Err(DevnetError::NotInitialized { .. }) => {
                    let options = InitOptions {
                        validators,
                        port_offset,
                        extra_funds: funds,
                        block_time_ms,
                    };
                    Devnet::init(&Tributaryd::new(tributaryd), &home, &params, &options)?
                }
                Err(err) => return Err(err.into()),
            };
            devnet.start()?;
            let height = devnet
                .wait_for_height(0, 2, Duration::from_secs(120))
                .await
                .context("waiting for the first blocks")?;
            import_keys(&devnet)?;
            let deployment_path = devnet.home.join("deployment.json");
            let deployment = if no_deploy {
                None
            } else if let Ok(existing) = Deployment::load(&deployment_path) {
                Some(existing)
            } else {
                Some(deploy_devnet(&devnet, &artifacts, challenge_window, &deployment_path).await?)
            };
            let report = UpReport {
                home: &devnet.home,
                deployment: deployment.as_ref().map(|d| &d.contracts),
                keyring: devnet.home.join("keyring"),
                chain_id: &devnet.chain_id,
                height,
                nodes: devnet
                    .nodes
                    .iter()
                    .map(|n| NodeReport {
                        rpc: &n.rpc_url,
                        rest: &n.rest_url,
                        grpc: &n.grpc_addr,
                    })
                    .collect(),
                keys: devnet
                    .keys
                    .iter()
                    .map(|k| KeyReport {
                        name: &k.name,
                        address: &k.address,
                    })
                    .collect(),
            };
            output.print(&report, || up_text(&report));
        }
        DevnetCommand::Status { home } => {
            let devnet = Devnet::load(&home)?;
            let status = devnet.status().await;
            output.print(&status, || {
                status
                    .iter()
                    .map(|s| {
                        format!(
                            "node{}  {}  pid {}  height {}  {}",
                            s.index,
                            if s.running { "running" } else { "stopped" },
                            s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                            s.height
                                .map(|h| h.to_string())
                                .unwrap_or_else(|| "-".into()),
                            s.rpc_url
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DevnetCommand::Logs { home, node, lines } => {
            let devnet = Devnet::load(&home)?;
            let n = devnet
                .nodes
                .get(node)
                .with_context(|| format!("the devnet has {} node(s)", devnet.nodes.len()))?;
            let path = n.home.join("node.log");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            output.print(&tail, || tail.join("\n"));
        }
        DevnetCommand::Down { home } => {
            let devnet = Devnet::load(&home)?;
            devnet.stop()?;
            output.print(&serde_json::json!({"stopped": devnet.nodes.len()}), || {
                format!(
                    "stopped {} node(s); data kept in {}",
                    devnet.nodes.len(),
                    home.display()
                )
            });
        }
    }
    Ok(())
}

fn up_text(report: &UpReport) -> String {
    let mut out = format!(
        "devnet {} is producing blocks (height {}), home {}\n",
        report.chain_id,
        report.height,
        report.home.display()
    );
    for (i, n) in report.nodes.iter().enumerate() {
        out += &format!("node{i}: rpc {}  rest {}  grpc {}\n", n.rpc, n.rest, n.grpc);
    }
    if let Some(c) = report.deployment {
        out += &format!(
            "contracts (deployment.json):\n  datanet         {}\n  model registry  {}\n  payout          {}\n  cw20 token      {}\n",
            c.datanet, c.model_registry, c.payout, c.cw20
        );
    }
    out += &format!(
        "funded test keys (test keyring {}; use --keyring-backend test --keyring-dir {} --from NAME):\n",
        report.keyring.display(),
        report.keyring.display()
    );
    for k in &report.keys {
        out += &format!("  {:<14} {}\n", k.name, k.address);
    }
    out
}

/// Puts the devnet's keys (and validator0, the deployer) in `<home>/keyring`, test backend.
fn import_keys(devnet: &Devnet) -> Result<()> {
    let ring = Keyring::open(devnet.home.join("keyring"), Backend::Test)?;
    for key in devnet.keys.iter().chain([&devnet.nodes[0].validator]) {
        if ring.show(&key.name).is_err() {
            ring.add(&key.name, &key.address, &key.mnemonic, None)?;
        }
    }
    Ok(())
}

/// Deploys the contracts with validator0 as admin and `treasury` as the protocol treasury;
/// every named key but the treasury starts with cw20 tokens to pay with.
async fn deploy_devnet(
    devnet: &Devnet,
    artifacts: &Path,
    challenge_window_seconds: u64,
    out: &Path,
) -> Result<Deployment> {
    let params = &devnet.params;
    let admin = Signer::from_mnemonic(&devnet.nodes[0].validator.mnemonic, &params.bech32_prefix)?;
    let config = ChainConfig::new(
        devnet.chain_id.clone(),
        devnet.rpc_url().to_string(),
        params.bech32_prefix.clone(),
        params.fees.average.parse().context("fees.average")?,
        params.denom.clone(),
    );
    let settings = DeploySettings {
        treasury: devnet.key("treasury").map(|k| k.address.clone()),
        challenge_window_seconds,
        token_balances: devnet
            .keys
            .iter()
            .filter(|k| k.name != "treasury")
            .map(|k| (k.address.clone(), 1_000_000_000))
            .collect(),
        ..DeploySettings::default()
    };
    let node = &devnet.nodes[0];
    let deployment = crate::deploy::run(
        config.clone(),
        &admin,
        artifacts,
        settings,
        Some(node.rest_url.clone()),
        Some(node.grpc_addr.clone()),
        out,
    )
    .await?;
    // Pinned code costs about 2 000 gas per call instead of 60 000: the devnet's only validator
    // passes the proposal alone (a real network votes on it; see docs/settlement.md).
    let client = Client::connect(config).await?;
    let codes = &deployment.code_ids;
    client
        .pin_codes(
            &admin,
            &[
                codes.datanet,
                codes.model_registry,
                codes.payout,
                codes.cw20,
            ],
            PIN_TIMEOUT,
        )
        .await
        .context("pinning the contracts' code")?;
    Ok(deployment)
}

/// Longest wait for the pinning proposal: the devnet's expedited voting period and some blocks.
const PIN_TIMEOUT: Duration = Duration::from_secs(120);

/// `tributary chain-info`: Keplr's chain description for the devnet at `home`.
pub fn chain_info(home: &Path, output: Output) -> Result<()> {
    let devnet = Devnet::load(home)?;
    let node = &devnet.nodes[0];
    let info = devnet
        .params
        .keplr_chain_info(&node.rpc_url, &node.rest_url);
    output.print(&info, || {
        serde_json::to_string_pretty(&info).expect("chain info serializes")
    });
    Ok(())
}

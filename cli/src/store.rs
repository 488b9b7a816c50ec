//! `tributary store serve`: the content store of the embedded default.

use crate::output::Output;
use anyhow::{anyhow, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tributary_client::Deployment;
use tributary_store::{
    AccountPolicy, AllowedOrigins, ChainGate, LocalStore, OpenPolicy, ServerConfig, WritePolicy,
};

/// Where `--tokens` keeps what each account has stored, under the store's folder.
pub const USAGE_LEDGER: &str = "account-usage.json";

/// Who may write to the store: at most one of these; with none, the chain of the deployment.
#[derive(Args, Debug)]
pub struct WriteArgs {
    /// Take only bytes of live contributions: the chain's REST (LCD) URL to ask.
    #[arg(long, requires = "datanet_contract", conflicts_with_all = ["tokens", "open"])]
    pub chain_rest: Option<String>,
    /// The datanet contract to ask, with --chain-rest.
    #[arg(long, requires = "chain_rest")]
    pub datanet_contract: Option<String>,
    /// Take writes from accounts: a JSON file of names, token SHA-256s and byte quotas.
    #[arg(long, conflicts_with = "open")]
    pub tokens: Option<PathBuf>,
    /// Take every write from anyone: local development only.
    #[arg(long)]
    pub open: bool,
}

/// How much the server takes on at once.
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// The most bytes the folder may hold in all; no limit when absent.
    #[arg(long)]
    pub max_total_bytes: Option<u64>,
    /// Blob requests served at once; more are answered 503.
    #[arg(long, default_value_t = tributary_store::server::DEFAULT_MAX_CONCURRENT_REQUESTS)]
    pub max_concurrent_requests: usize,
    /// Seconds an upload may go without a byte arriving.
    #[arg(long, default_value_t = tributary_store::server::DEFAULT_BODY_IDLE_TIMEOUT.as_secs())]
    pub body_idle_timeout: u64,
}

#[allow(clippy::too_many_arguments)]
pub async fn serve(
    dir: PathBuf,
    addr: String,
    max_bytes: u64,
    origins: Vec<String>,
    writes: WriteArgs,
    limits: LimitArgs,
    deployment: &Path,
    output: Output,
) -> Result<()> {
    let mut store = LocalStore::open(&dir)
        .with_context(|| format!("opening the store at {}", dir.display()))?
        .with_max_blob_bytes(max_bytes);
    if let Some(max) = limits.max_total_bytes {
        store = store
            .with_max_total_bytes(max)
            .with_context(|| format!("measuring the store at {}", dir.display()))?;
    }
    let (policy, writes_by) = write_policy(&writes, &dir, deployment)?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    if writes.open && !bound.ip().is_loopback() {
        eprintln!("warning: --open on {bound}: anyone who reaches this address can fill the store");
    }
    let config = ServerConfig {
        max_blob_bytes: max_bytes,
        max_concurrent_requests: limits.max_concurrent_requests,
        body_idle_timeout: Duration::from_secs(limits.body_idle_timeout),
        allowed_origins: if origins.is_empty() {
            AllowedOrigins::Any
        } else {
            AllowedOrigins::List(origins)
        },
    };
    output.print(
        &serde_json::json!({"url": format!("http://{bound}"), "dir": dir, "writes": writes_by}),
        || {
            format!(
                "content store at http://{bound} (blobs in {}; writes: {writes_by})",
                dir.display()
            )
        },
    );
    tributary_store::serve(listener, store, policy, config).await?;
    Ok(())
}

/// The policy the flags name, and a line saying which it is.
fn write_policy(
    writes: &WriteArgs,
    dir: &Path,
    deployment: &Path,
) -> Result<(Arc<dyn WritePolicy>, String)> {
    if let (Some(rest), Some(contract)) = (&writes.chain_rest, &writes.datanet_contract) {
        let gate = ChainGate::new(rest, contract)?;
        return Ok((
            Arc::new(gate),
            format!("live contributions of {contract} via {rest}"),
        ));
    }
    if let Some(tokens) = &writes.tokens {
        let policy = AccountPolicy::open(tokens, dir.join(USAGE_LEDGER))
            .with_context(|| format!("reading the accounts in {}", tokens.display()))?;
        return Ok((
            Arc::new(policy),
            format!("accounts of {}", tokens.display()),
        ));
    }
    if writes.open {
        return Ok((Arc::new(OpenPolicy), "anyone (--open)".to_string()));
    }
    // No flag: the chain of the deployment other commands use, when there is one.
    let refuse = |why: String| {
        anyhow!(
            "say who may write to the store: --chain-rest URL --datanet-contract ADDR (bytes of \
             live contributions), --tokens FILE (accounts with quotas) or --open (anyone: local \
             development only); {why}"
        )
    };
    if !deployment.exists() {
        return Err(refuse(format!(
            "there is no deployment at {} to take the chain from",
            deployment.display()
        )));
    }
    let d = Deployment::load(deployment)
        .map_err(|e| refuse(format!("the deployment cannot be read: {e}")))?;
    let rest = d.rest_url.ok_or_else(|| {
        refuse(format!(
            "the deployment at {} names no REST URL",
            deployment.display()
        ))
    })?;
    let contract = d.contracts.datanet;
    let gate = ChainGate::new(&rest, &contract)?;
    Ok((
        Arc::new(gate),
        format!(
            "live contributions of {contract} via {rest} (from {})",
            deployment.display()
        ),
    ))
}

//! `tributary-attrib serve`: completions with attribution and packets over HTTP.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use tributary_attrib::engine::Engine;
use tributary_attrib::index::Method;
use tributary_attrib::serve::{
    self, AccessToken, ChainPayments, CompletionService, GatewayConfig, NoPaidRequests,
    PaymentCheck, ServedModel, Unchecked,
};

use crate::{method_arg, Output};

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// A model to serve, as name=<model_dir>:<index_dir>; repeat for more.
    #[arg(long = "model", required = true, value_parser = served_arg)]
    models: Vec<ServedArg>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8800")]
    listen: SocketAddr,
    /// Longest prompt accepted, in bytes.
    #[arg(long, default_value_t = 4096)]
    max_prompt_bytes: usize,
    /// Largest max_tokens a request may ask for.
    #[arg(long, default_value_t = 512)]
    max_tokens_limit: usize,
    /// Attribution method of requests that name none.
    #[arg(long, default_value = "trak", value_parser = method_arg)]
    method: Method,
    /// Entries of each attribution packet at most.
    #[arg(long, default_value_t = 8)]
    packet_top_k: usize,
    /// Responses kept in memory for GET /v1/requests/{id}.
    #[arg(long, default_value_t = 10_000)]
    stored_responses: usize,
    /// A file holding the secret callers present as `Authorization: Bearer <token>` (the
    /// relayer's engine.auth_token_file); they vouch for payment. Without it (or
    /// --chain-rest) the gateway serves no paid request and no stored response.
    #[arg(long, env = "TRIBUTARY_ATTRIB_AUTH_TOKEN_FILE")]
    auth_token_file: Option<PathBuf>,
    /// The node's REST (LCD) URL, e.g. http://127.0.0.1:1317: every completion must name a
    /// request the payout contract holds, open, for its model and the SHA-256 of its prompt.
    #[arg(long, requires = "payout_contract")]
    chain_rest: Option<String>,
    /// The payout contract checked by --chain-rest.
    #[arg(long, requires = "chain_rest")]
    payout_contract: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct ServedArg {
    name: String,
    model: PathBuf,
    index: PathBuf,
}

pub(crate) fn served_arg(s: &str) -> Result<ServedArg, String> {
    let usage = "expected name=<model_dir>:<index_dir>";
    let (name, dirs) = s.split_once('=').ok_or_else(|| format!("`{s}`: {usage}"))?;
    let (model, index) = dirs
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: {usage}"))?;
    if name.trim().is_empty() || model.is_empty() || index.is_empty() {
        return Err(format!("`{s}`: {usage}"));
    }
    Ok(ServedArg {
        name: name.trim().to_string(),
        model: model.into(),
        index: index.into(),
    })
}

pub(crate) fn run_serve(args: ServeArgs, out: Output) -> Result<()> {
    let mut models: Vec<ServedModel> = Vec::with_capacity(args.models.len());
    for m in &args.models {
        if models.iter().any(|s| s.name == m.name) {
            bail!(
                "two models are named `{}`: give each --model its own name",
                m.name
            );
        }
        let engine = Engine::open(&m.model, &m.index).with_context(|| {
            format!(
                "opening model `{}` ({} with index {})",
                m.name,
                m.model.display(),
                m.index.display()
            )
        })?;
        models.push(ServedModel {
            name: m.name.clone(),
            engine,
        });
    }
    let names: Vec<(String, String)> = models
        .iter()
        .map(|m| (m.name.clone(), m.engine.artifact.weights_hash().to_string()))
        .collect();
    let access = args
        .auth_token_file
        .as_deref()
        .map(AccessToken::from_file)
        .transpose()
        .context("reading --auth-token-file")?;
    let payments: Arc<dyn PaymentCheck> = match (&args.chain_rest, &args.payout_contract) {
        (Some(rest), Some(payout)) => Arc::new(ChainPayments::new(rest, payout)?),
        _ if access.is_some() => Arc::new(Unchecked),
        _ => Arc::new(NoPaidRequests),
    };
    if access.is_none() && args.chain_rest.is_none() && !args.listen.ip().is_loopback() {
        bail!(
            "{} is reachable from other hosts: give --auth-token-file (callers that check payment, such as a relayer) or --chain-rest and --payout-contract, or listen on a loopback address",
            args.listen
        );
    }
    let config = GatewayConfig {
        max_prompt_bytes: args.max_prompt_bytes,
        max_tokens_limit: args.max_tokens_limit,
        default_method: args.method,
        packet_top_k: args.packet_top_k,
        stored_responses: args.stored_responses,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let service = CompletionService::new(models, payments, config);
        let router = serve::router(Arc::new(service), access);
        // Written at once and never fatal: a closed stdout must not stop the server.
        let announcement = if out.json {
            let models: Vec<_> = names
                .iter()
                .map(|(n, h)| serde_json::json!({"name": n, "weights_hash": h}))
                .collect();
            let started =
                serde_json::json!({ "listening": format!("http://{addr}"), "models": models });
            format!("{started}\n")
        } else {
            let mut text = format!("listening on http://{addr}\n");
            for (name, hash) in &names {
                text.push_str(&format!("  model {name} (weights {hash})\n"));
            }
            text
        };
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(announcement.as_bytes())
            .and_then(|()| stdout.flush());
        drop(stdout);
        serve::serve(listener, router).await.context("serving")
    })
}

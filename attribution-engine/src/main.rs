//! `tributary-attrib`: train a datanet version's model, index its training data, generate,
//! attribute completions, and serve it all over HTTP.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use burn::prelude::*;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use tributary_attrib::artifact::ModelArtifact;
use tributary_attrib::data::{examples, open_store, Corpus};
use tributary_attrib::engine::{build_index, Engine, IndexSettings, LayerSelection};
use tributary_attrib::eval::{evaluate_lds, evaluate_planted, PlantedSpec};
use tributary_attrib::index::{Method, DEFAULT_DAMPING, DEFAULT_FISHER_ROWS, MANIFEST_FILE};
use tributary_attrib::inference::{generate, Sampling};
use tributary_attrib::model::LmConfig;
use tributary_attrib::packet::PacketRequest;
use tributary_attrib::serve::{
    self, parse_method, summarize, AccessToken, ChainPayments, CompletionService, GatewayConfig,
    NoPaidRequests, PaymentCheck, ServedModel, Unchecked,
};
use tributary_attrib::training::{train, TrainConfig};

#[derive(Parser)]
#[command(
    name = "tributary-attrib",
    version,
    about = "Tributary's attribution engine: train a model on a datanet version, index its training data, and attribute every completion to the contributions behind it"
)]
struct Cli {
    /// Print results as JSON on stdout (and hide progress bars).
    #[arg(long, global = true)]
    json: bool,
    /// Hide progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a corpus and save it as a model artifact.
    Train(TrainArgs),
    /// Build the gradient index of a model's training data.
    Index(IndexArgs),
    /// Continue a prompt with a model.
    Generate(GenerateArgs),
    /// Attribute a completion to the contributions a model was trained on.
    Attribute(AttributeArgs),
    /// Serve models over HTTP: completions with attribution and packets.
    Serve(ServeArgs),
    /// Measure attribution against ground truth on a generated corpus.
    Eval(EvalArgs),
}

#[derive(Args)]
struct EvalArgs {
    /// `planted`: is each planted fact attributed to its owner first? `lds`: linear
    /// datamodeling score against models retrained on random halves of the contributions.
    #[arg(value_parser = ["planted", "lds"])]
    kind: String,
    /// Contributors of the generated corpus (two contributions and three facts each).
    #[arg(long, default_value_t = 8)]
    contributors: usize,
    /// Training steps of every model. The corpus is small: much longer runs memorize it, and
    /// the final weights' gradients then carry little signal (see the README).
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Models retrained for LDS.
    #[arg(long, default_value_t = 50)]
    models: usize,
    /// Seed of the generated corpus.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Layers indexed: `mlp`, `attention`, `all` or layer names.
    #[arg(long, default_value = "mlp")]
    layers: String,
    /// Projected width per side of each layer.
    #[arg(long, default_value_t = 32)]
    k: usize,
    /// Damping of the preconditioner (share of the mean eigenvalue).
    #[arg(long, default_value_t = DEFAULT_DAMPING)]
    damping: f32,
    /// Intermediate checkpoints kept and indexed besides the final weights.
    #[arg(long, default_value_t = 2)]
    checkpoints: usize,
}

#[derive(Args)]
struct TrainArgs {
    /// Corpus file (JSON): the datanet versions and their accepted contributions.
    #[arg(long)]
    corpus: PathBuf,
    /// Content store holding the contributions' bytes: a folder or an http(s) URL.
    #[arg(long, env = "TRIBUTARY_STORE")]
    store: String,
    /// Folder to save the model artifact in.
    #[arg(long)]
    out: PathBuf,
    /// Overwrite a model already saved in --out.
    #[arg(long)]
    force: bool,
    /// Width of the residual stream.
    #[arg(long, default_value_t = 64)]
    d_model: usize,
    /// Transformer blocks.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Attention heads per block (must divide --d-model).
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Hidden width of each feed-forward layer.
    #[arg(long, default_value_t = 256)]
    d_ff: usize,
    /// Context window, in bytes.
    #[arg(long, default_value_t = 64)]
    context: usize,
    /// Optimizer steps.
    #[arg(long, default_value_t = 600)]
    steps: usize,
    /// Examples per step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Learning-rate warmup steps.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Share of examples held out for validation loss.
    #[arg(long, default_value_t = 0.05)]
    val_fraction: f64,
    /// Intermediate checkpoints kept for the gradient index.
    #[arg(long, default_value_t = 2)]
    checkpoints: usize,
    /// Seed of initialization and batching.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Args)]
struct IndexArgs {
    /// Model artifact folder.
    #[arg(long)]
    model: PathBuf,
    /// Corpus file; by default the model's own lineage (from its model.json).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Content store holding the contributions' bytes: a folder or an http(s) URL.
    #[arg(long, env = "TRIBUTARY_STORE")]
    store: String,
    /// Folder to write the index in.
    #[arg(long)]
    out: PathBuf,
    /// Replace an index already in --out.
    #[arg(long)]
    force: bool,
    /// Layers to index: mlp, attention, all, or comma-separated names (blocks.0.fc2,head).
    #[arg(long, default_value = "mlp")]
    layers: String,
    /// Projected input width per layer.
    #[arg(long, default_value_t = 32)]
    k_in: usize,
    /// Projected output-gradient width per layer.
    #[arg(long, default_value_t = 32)]
    k_out: usize,
    /// Seed of the gradient projection [default: the engine's fixed seed].
    #[arg(long)]
    seed: Option<u64>,
    /// Damping of the preconditioner, as a share of each layer's mean eigenvalue.
    #[arg(long, default_value_t = DEFAULT_DAMPING)]
    damping: f32,
    /// Rows the preconditioner is fitted on at most.
    #[arg(long, default_value_t = DEFAULT_FISHER_ROWS)]
    fisher_rows: usize,
    /// Examples per batched gradient pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Index only the final weights, not the intermediate checkpoints.
    #[arg(long)]
    final_only: bool,
}

#[derive(Args, Clone)]
struct SamplingArgs {
    /// Bytes to generate at most.
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Sample among the most likely bytes (0: all).
    #[arg(long, default_value_t = 16)]
    top_k: usize,
}

#[derive(Args)]
struct GenerateArgs {
    /// Model artifact folder.
    #[arg(long)]
    model: PathBuf,
    /// Text to continue.
    #[arg(long)]
    prompt: String,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct AttributeArgs {
    /// Model artifact folder.
    #[arg(long)]
    model: PathBuf,
    /// Gradient index folder.
    #[arg(long)]
    index: PathBuf,
    /// The prompt.
    #[arg(long)]
    prompt: String,
    /// The completion to attribute; without it one is generated.
    #[arg(long)]
    completion: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Sampling seed when generating [default: --request-id, else 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Attribution method: trak (preconditioned), graddot or cosine, or a method id.
    #[arg(long, default_value = "trak", value_parser = method_arg)]
    method: Method,
    /// Contributions to list.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Build the attribution packet for this paid request.
    #[arg(long, requires_all = ["model_id", "model_version"])]
    request_id: Option<u64>,
    /// The model's id in the registry (for the packet).
    #[arg(long, requires = "request_id")]
    model_id: Option<u64>,
    /// The model version in the registry (for the packet).
    #[arg(long, requires = "request_id")]
    model_version: Option<u32>,
    /// Entries of the packet (and shares) at most.
    #[arg(long, default_value_t = 8)]
    packet_top_k: usize,
}

#[derive(Args)]
struct ServeArgs {
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
struct ServedArg {
    name: String,
    model: PathBuf,
    index: PathBuf,
}

fn method_arg(s: &str) -> Result<Method, String> {
    parse_method(s).ok_or_else(|| {
        let ids: Vec<&str> = Method::ALL.iter().map(|m| m.id()).collect();
        format!(
            "unknown method `{s}`: use trak, graddot, cosine or one of {}",
            ids.join(", ")
        )
    })
}

fn served_arg(s: &str) -> Result<ServedArg, String> {
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

/// How results are shown.
#[derive(Clone, Copy)]
struct Output {
    json: bool,
    progress: bool,
}

impl Output {
    /// Prints `value` as JSON, or `human` otherwise.
    fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce()) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            human();
        }
        Ok(())
    }
}

fn main() {
    let cli = Cli::parse();
    let out = Output {
        json: cli.json,
        progress: !cli.quiet && !cli.json,
    };
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Train(args) => run_train(args, out),
        Command::Index(args) => run_index(args, out),
        Command::Generate(args) => run_generate(args, out),
        Command::Attribute(args) => run_attribute(args, out),
        Command::Serve(args) => run_serve(args, out),
        Command::Eval(args) => run_eval(args, out),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        if out.json {
            println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
        }
        std::process::exit(1);
    }
}

fn load_texts(corpus: &Corpus, store: &str) -> Result<Vec<(u64, Vec<u8>)>> {
    let store = open_store(store).with_context(|| format!("opening the content store {store}"))?;
    Ok(corpus.read(&store)?)
}

fn run_train(args: TrainArgs, out: Output) -> Result<()> {
    if args.out.join("model.json").exists() && !args.force {
        bail!(
            "{} already holds a model (model.json); pass --force to overwrite it or choose another --out",
            args.out.display()
        );
    }
    if !(0.0..1.0).contains(&args.val_fraction) {
        bail!(
            "--val-fraction must be at least 0 and below 1, got {}",
            args.val_fraction
        );
    }
    let model = LmConfig::new()
        .with_d_model(args.d_model)
        .with_n_layers(args.layers)
        .with_n_heads(args.heads)
        .with_d_ff(args.d_ff)
        .with_context(args.context);
    model
        .check()
        .map_err(|e| anyhow!("invalid model shape: {e}"))?;
    let config = TrainConfig::new(model)
        .with_seed(args.seed)
        .with_steps(args.steps)
        .with_batch_size(args.batch_size)
        .with_learning_rate(args.lr)
        .with_warmup_steps(args.warmup)
        .with_val_fraction(args.val_fraction)
        .with_checkpoints(args.checkpoints);
    let corpus = Corpus::load(&args.corpus)?;
    let texts = load_texts(&corpus, &args.store)?;
    let examples = examples(&texts, args.context);
    let trained = train(&config, &examples, &Device::flex().autodiff(), out.progress)
        .map_err(|e| anyhow!("training failed: {e}"))?;
    let artifact = ModelArtifact::save(&args.out, &config, &corpus, &trained)?;
    let report = &trained.report;
    let result = serde_json::json!({
        "out": args.out,
        "weights_hash": artifact.weights_hash(),
        "contributions": corpus.contributions.len(),
        "examples": examples.len(),
        "checkpoints": artifact.manifest.checkpoints.iter().map(|c| c.step).collect::<Vec<_>>(),
        "report": report,
        "config": config,
    });
    out.emit(&result, || {
        println!(
            "trained {} steps on {} examples of {} contributions ({} held out for validation)",
            report.steps,
            report.train_examples,
            corpus.contributions.len(),
            report.val_examples
        );
        match report.val_loss {
            Some(val) => println!(
                "loss         train {:.4}  val {val:.4} (nats per byte)",
                report.train_loss
            ),
            None => println!(
                "loss         train {:.4} (nats per byte)",
                report.train_loss
            ),
        }
        println!(
            "throughput   {:.0} tokens/s over {:.1} s",
            report.tokens_per_second, report.seconds
        );
        println!("weights_hash {}", artifact.weights_hash());
        println!("saved to     {}", args.out.display());
    })
}

/// Checks that a corpus lists the same datanet versions and contributions as the model's lineage.
fn check_same_lineage(corpus: &Corpus, lineage: &Corpus) -> Result<()> {
    let key = |c: &Corpus| {
        let mut datanets = c.datanets.clone();
        datanets.sort();
        let mut contributions: Vec<(u64, u64, String, String)> = c
            .contributions
            .iter()
            .map(|c| {
                (
                    c.contribution_id,
                    c.datanet_id,
                    c.contributor.clone(),
                    c.content_hash.to_lowercase(),
                )
            })
            .collect();
        contributions.sort();
        (datanets, contributions)
    };
    if key(corpus) != key(lineage) {
        bail!("the corpus lists other datanet versions or contributions than the model was trained on (its model.json lineage); index the model's own training data");
    }
    Ok(())
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn run_index(args: IndexArgs, out: Output) -> Result<()> {
    let artifact = ModelArtifact::open(&args.model)?;
    let lineage = &artifact.manifest.lineage;
    let corpus = match &args.corpus {
        Some(path) => {
            let corpus = Corpus::load(path)?;
            check_same_lineage(&corpus, lineage)?;
            corpus
        }
        None => lineage.clone(),
    };
    let manifest_path = args.out.join(MANIFEST_FILE);
    if manifest_path.exists() {
        if !args.force {
            bail!(
                "{} already holds an index ({MANIFEST_FILE}); pass --force to replace it or choose another --out",
                args.out.display()
            );
        }
        std::fs::remove_file(&manifest_path)
            .with_context(|| format!("removing {}", manifest_path.display()))?;
    }
    let defaults = IndexSettings::default();
    let settings = IndexSettings {
        layers: LayerSelection::parse(&args.layers),
        k_in: args.k_in,
        k_out: args.k_out,
        projection_seed: args.seed.unwrap_or(defaults.projection_seed),
        damping: args.damping,
        fisher_rows_max: args.fisher_rows,
        batch_size: args.batch_size,
        all_checkpoints: !args.final_only,
    };
    if settings.k_in == 0 || settings.k_out == 0 {
        bail!("--k-in and --k-out must be positive");
    }
    let texts = load_texts(&corpus, &args.store)?;
    let examples = examples(&texts, artifact.manifest.train.model.context);
    let started = Instant::now();
    let manifest = build_index(&artifact, &examples, &args.out, &settings, out.progress)?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = dir_bytes(&args.out);
    let rate = manifest.n_examples as f64 * manifest.checkpoints.len() as f64 / seconds.max(1e-9);
    let result = serde_json::json!({
        "out": args.out,
        "index_hash": manifest.index_hash,
        "weights_hash": manifest.weights_hash,
        "examples": manifest.n_examples,
        "dim": manifest.dim,
        "checkpoints": manifest.checkpoints,
        "bytes": bytes,
        "seconds": seconds,
        "examples_per_second": rate,
        "settings": settings,
    });
    out.emit(&result, || {
        println!(
            "indexed {} examples at {} checkpoint(s), {} dims per row",
            manifest.n_examples,
            manifest.checkpoints.len(),
            manifest.dim
        );
        println!("size         {bytes} bytes");
        println!("throughput   {rate:.1} examples/s over {seconds:.1} s");
        println!("index_hash   {}", manifest.index_hash);
        println!("saved to     {}", args.out.display());
    })
}

fn sampling(args: &SamplingArgs, seed: u64) -> Result<Sampling> {
    if args.max_tokens == 0 {
        bail!("--max-tokens must be positive");
    }
    if !args.temperature.is_finite() || args.temperature < 0.0 {
        bail!("--temperature must be a finite number at least 0");
    }
    Ok(Sampling {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        seed,
    })
}

fn run_generate(args: GenerateArgs, out: Output) -> Result<()> {
    let sampling = sampling(&args.sampling, args.seed)?;
    let artifact = ModelArtifact::open(&args.model)?;
    let device = Device::flex();
    let model = artifact.load_model(&device)?;
    let completion = generate(
        &model,
        artifact.manifest.train.model.context,
        args.prompt.as_bytes(),
        &sampling,
        &device,
    );
    let text = String::from_utf8_lossy(&completion).into_owned();
    let result = serde_json::json!({
        "prompt": args.prompt,
        "completion": text,
        "completion_hex": hex::encode(&completion),
        "sampling": sampling,
        "weights_hash": artifact.weights_hash(),
    });
    out.emit(&result, || println!("{text}"))
}

fn run_attribute(args: AttributeArgs, out: Output) -> Result<()> {
    let engine = Engine::open(&args.model, &args.index)?;
    let prompt = args.prompt.as_bytes();
    let (completion, generated_with) = match &args.completion {
        Some(c) => (c.as_bytes().to_vec(), None),
        None => {
            let sampling = sampling(&args.sampling, args.seed.or(args.request_id).unwrap_or(0))?;
            (engine.generate(prompt, &sampling), Some(sampling))
        }
    };
    if completion.is_empty() {
        bail!("the completion is empty (the model ended the document at once): nothing to attribute; try another prompt or --seed, or pass --completion");
    }
    let attribution = engine.attribute(prompt, &completion, args.method)?;
    let summary = summarize(&attribution, args.top, args.packet_top_k);
    let packet = match (args.request_id, args.model_id, args.model_version) {
        (Some(request_id), Some(model_id), Some(model_version)) => {
            let request = PacketRequest {
                request_id,
                model_id,
                model_version,
                top_k: args.packet_top_k,
            };
            Some(engine.packet(&request, &completion, &attribution)?)
        }
        _ => None,
    };
    let text = String::from_utf8_lossy(&completion).into_owned();
    let result = serde_json::json!({
        "prompt": args.prompt,
        "completion": text,
        "completion_hex": hex::encode(&completion),
        "generated_with": generated_with,
        "weights_hash": engine.artifact.weights_hash(),
        "index_hash": engine.index.index_hash(),
        "examples": engine.index.n_examples(),
        "attribution": summary,
        "packet": packet,
    });
    let packet_json = packet
        .as_ref()
        .map(serde_json::to_string_pretty)
        .transpose()?;
    out.emit(&result, || {
        println!("prompt      {:?}", args.prompt);
        match &generated_with {
            Some(s) => println!("completion  {text:?} (generated, seed {})", s.seed),
            None => println!("completion  {text:?}"),
        }
        println!(
            "method      {} over {} examples of {} contributions",
            summary.method,
            engine.index.n_examples(),
            attribution.contributions.len()
        );
        println!();
        println!("top contributions");
        println!(
            "{:>4}  {:>8}  {:<46}  {:>14}  {:>7}",
            "rank", "id", "contributor", "score", "share"
        );
        for (rank, c) in summary.top.iter().enumerate() {
            let share = c
                .share_bps
                .map(|b| format!("{:.2}%", b as f64 / 100.0))
                .unwrap_or_else(|| "-".into());
            println!(
                "{:>4}  {:>8}  {:<46}  {:>14.6e}  {:>7}",
                rank + 1,
                c.contribution_id,
                c.contributor,
                c.score,
                share
            );
        }
        println!();
        println!("top contributors");
        for c in &summary.contributors {
            println!(
                "      {:<46}  {:>14.6e}  {:>6.2}%",
                c.contributor,
                c.score,
                c.share_bps as f64 / 100.0
            );
        }
        if let Some(json) = &packet_json {
            println!();
            println!("attribution packet");
            println!("{json}");
        }
    })
}

fn run_serve(args: ServeArgs, out: Output) -> Result<()> {
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

fn run_eval(args: EvalArgs, out: Output) -> Result<()> {
    let spec = PlantedSpec {
        contributors: args.contributors,
        seed: args.seed,
        ..PlantedSpec::default()
    };
    let config = TrainConfig::new(LmConfig::new())
        .with_steps(args.steps)
        .with_checkpoints(args.checkpoints);
    let work = tempfile::tempdir().context("creating a working folder")?;
    let settings = IndexSettings {
        layers: LayerSelection::parse(&args.layers),
        k_in: args.k,
        k_out: args.k,
        damping: args.damping,
        ..IndexSettings::default()
    };
    if args.kind == "planted" {
        let reports = evaluate_planted(work.path(), &spec, &config, &settings, out.progress)?;
        return out.emit(&reports, || {
            println!("| method | top-1 | top-3 |\n|---|---|---|");
            for r in &reports {
                println!("| {} | {:.3} | {:.3} |", r.method, r.top1, r.top3);
            }
        });
    }
    let report = evaluate_lds(
        work.path(),
        &spec,
        &config,
        &settings,
        args.models,
        out.progress,
    )?;
    out.emit(&report, || {
        println!(
            "{} contributions, {} queries, {} models on random halves",
            report.contributions, report.queries, report.models
        );
        println!("| method | checkpoints | LDS |\n|---|---|---|");
        for row in &report.rows {
            println!("| {} | {} | {:.3} |", row.method, row.checkpoints, row.lds);
        }
    })
}

//! `tributary-attrib attribute`: a completion attributed to the contributions behind it.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use tributary_attrib::engine::Engine;
use tributary_attrib::index::Method;
use tributary_attrib::packet::PacketRequest;
use tributary_attrib::serve::summarize;

use crate::{method_arg, sampling, Output, SamplingArgs};

#[derive(Args)]
pub(crate) struct AttributeArgs {
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

pub(crate) fn run_attribute(args: AttributeArgs, out: Output) -> Result<()> {
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

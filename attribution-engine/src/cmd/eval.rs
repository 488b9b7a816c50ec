//! `tributary-attrib eval`: attribution against ground truth, and a model's loss.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use clap::{Args, Subcommand};
use serde::Serialize;
use tributary_attrib::artifact::ModelArtifact;
use tributary_attrib::engine::{IndexSettings, LayerSelection};
use tributary_attrib::eval::{
    completion_loss, evaluate_lds, evaluate_planted, CompletionLoss, PlantedSpec,
};
use tributary_attrib::index::DEFAULT_DAMPING;
use tributary_attrib::model::LmConfig;
use tributary_attrib::training::TrainConfig;

use crate::Output;

#[derive(Args)]
pub(crate) struct EvalArgs {
    #[command(subcommand)]
    kind: EvalKind,
}

#[derive(Subcommand)]
enum EvalKind {
    /// Is each planted fact of a generated corpus attributed to its owner first?
    Planted(GroundTruthArgs),
    /// Linear datamodeling score against models retrained on random halves of the
    /// contributions of a generated corpus.
    Lds(GroundTruthArgs),
    /// A model's mean loss on completions: one `--prompt` and `--completion`, or a file of
    /// them, so that users can evaluate their models and run their own LDS.
    Loss(LossArgs),
}

#[derive(Args)]
struct GroundTruthArgs {
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
    /// Training seeds averaged per retrained half (LDS): more make the retrained losses
    /// depend on the data more than on the seed.
    #[arg(long, default_value_t = 1)]
    seeds_per_subset: usize,
    /// Seed of the generated corpus.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Layers indexed: `mlp`, `attention`, `all` or layer names.
    #[arg(long, default_value = "mlp")]
    layers: String,
    /// Projected width per side of each layer.
    #[arg(long, default_value_t = IndexSettings::default().k_in)]
    k: usize,
    /// Damping of the preconditioner (share of the mean eigenvalue).
    #[arg(long, default_value_t = DEFAULT_DAMPING)]
    damping: f32,
    /// Intermediate checkpoints kept and indexed besides the final weights.
    #[arg(long, default_value_t = TrainConfig::new(LmConfig::new()).checkpoints)]
    checkpoints: usize,
}

#[derive(Args)]
struct LossArgs {
    /// Model artifact folder.
    #[arg(long)]
    model: PathBuf,
    /// The prompt the completion follows.
    #[arg(long, requires = "completion", conflicts_with = "file")]
    prompt: Option<String>,
    /// The completion whose loss is measured.
    #[arg(long, requires = "prompt", conflicts_with = "file")]
    completion: Option<String>,
    /// A JSON Lines file of `{"prompt": ..., "completion": ...}` objects.
    #[arg(long, required_unless_present = "prompt")]
    file: Option<PathBuf>,
}

/// One line of an `eval loss --file`.
#[derive(serde::Deserialize)]
struct LossItem {
    prompt: String,
    completion: String,
}

/// What `eval loss` reports.
#[derive(Serialize)]
struct LossReport {
    model: PathBuf,
    weights_hash: String,
    items: Vec<CompletionLoss>,
    /// Over all completion bytes.
    mean: CompletionLoss,
}

pub(crate) fn run_eval(args: EvalArgs, out: Output) -> Result<()> {
    let (kind, args) = match args.kind {
        EvalKind::Loss(args) => return run_loss(args, out),
        EvalKind::Planted(args) => ("planted", args),
        EvalKind::Lds(args) => ("lds", args),
    };
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
    if kind == "planted" {
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
        args.seeds_per_subset,
        out.progress,
    )?;
    out.emit(&report, || {
        println!(
            "{} contributions, {} queries per set, {} models on random halves ({} seeds each)",
            report.contributions, report.queries, report.models, report.seeds_per_subset
        );
        println!(
            "query loss spread: {:.4} nats between seeds, {:.4} between halves ({:.2}x)",
            report.spread.seed,
            report.spread.subset,
            report.spread.subset / report.spread.seed.max(1e-12)
        );
        println!("| method | queries | checkpoints | LDS |\n|---|---|---|---|");
        for row in &report.rows {
            println!(
                "| {} | {} | {} | {:.3} |",
                row.method, row.queries, row.checkpoints, row.lds
            );
        }
    })
}

fn run_loss(args: LossArgs, out: Output) -> Result<()> {
    let items: Vec<LossItem> = match (&args.file, args.prompt, args.completion) {
        (Some(file), _, _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            text.lines()
                .enumerate()
                .filter(|(_, line)| !line.trim().is_empty())
                .map(|(n, line)| {
                    serde_json::from_str(line).with_context(|| {
                        format!(
                            "{} line {}: expected {{\"prompt\": ..., \"completion\": ...}}",
                            file.display(),
                            n + 1
                        )
                    })
                })
                .collect::<Result<_>>()?
        }
        (None, Some(prompt), Some(completion)) => vec![LossItem { prompt, completion }],
        _ => bail!("give --prompt and --completion, or --file"),
    };
    let artifact = ModelArtifact::open(&args.model)?;
    let device = Device::flex();
    let model = artifact.load_model(&device)?;
    let context = artifact.manifest.train.model.context;
    let losses: Vec<CompletionLoss> = items
        .iter()
        .map(|item| {
            completion_loss(
                &model,
                context,
                item.prompt.as_bytes(),
                item.completion.as_bytes(),
                &device,
            )
        })
        .collect();
    let bytes: usize = losses.iter().map(|l| l.bytes).sum();
    let nats = if bytes == 0 {
        0.0
    } else {
        losses
            .iter()
            .map(|l| l.nats_per_byte * l.bytes as f64)
            .sum::<f64>()
            / bytes as f64
    };
    let report = LossReport {
        model: args.model.clone(),
        weights_hash: artifact.weights_hash().to_string(),
        mean: CompletionLoss {
            bytes,
            nats_per_byte: nats,
            bits_per_byte: nats / std::f64::consts::LN_2,
        },
        items: losses,
    };
    out.emit(&report, || {
        if report.items.len() > 1 {
            println!("| # | bytes | nats/byte | bits/byte |\n|---|---|---|---|");
            for (i, l) in report.items.iter().enumerate() {
                println!(
                    "| {} | {} | {:.4} | {:.4} |",
                    i + 1,
                    l.bytes,
                    l.nats_per_byte,
                    l.bits_per_byte
                );
            }
        }
        println!(
            "{} completion bytes: {:.4} nats/byte, {:.4} bits/byte",
            report.mean.bytes, report.mean.nats_per_byte, report.mean.bits_per_byte
        );
    })
}

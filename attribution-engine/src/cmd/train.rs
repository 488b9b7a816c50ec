//! `tributary-attrib train`: a model trained on a corpus, saved as a model artifact.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use burn::prelude::*;
use clap::Args;
use tributary_attrib::artifact::ModelArtifact;
use tributary_attrib::data::{examples, Corpus};
use tributary_attrib::model::LmConfig;
use tributary_attrib::training::{train_with, TrainConfig, TrainOptions};

use crate::{load_texts, Output};

#[derive(Args)]
pub(crate) struct TrainArgs {
    /// Corpus file (JSON): the datanet versions and their accepted contributions.
    #[arg(long)]
    corpus: PathBuf,
    /// Content store holding the contributions' bytes: a folder or an http(s) URL.
    #[arg(long, env = "TRIBUTARY_STORE")]
    store: String,
    /// Folder to save the model artifact in.
    #[arg(long)]
    out: PathBuf,
    /// Overwrite a model already saved in --out, or start over instead of resuming.
    #[arg(long)]
    force: bool,
    /// Continue the interrupted run whose state is in `<out>/resume` (the same flags and
    /// corpus); the result is the same as an uninterrupted run.
    #[arg(long)]
    resume: bool,
    /// Save the resume state every this many steps.
    #[arg(long, default_value_t = 100)]
    save_every: usize,
    /// Width of the residual stream.
    #[arg(long, default_value_t = LmConfig::new().d_model)]
    d_model: usize,
    /// Transformer blocks.
    #[arg(long, default_value_t = LmConfig::new().n_layers)]
    layers: usize,
    /// Attention heads per block (must divide --d-model).
    #[arg(long, default_value_t = LmConfig::new().n_heads)]
    heads: usize,
    /// Hidden width of each feed-forward layer.
    #[arg(long, default_value_t = LmConfig::new().d_ff)]
    d_ff: usize,
    /// Context window, in bytes.
    #[arg(long, default_value_t = LmConfig::new().context)]
    context: usize,
    /// Optimizer steps.
    #[arg(long, default_value_t = train_defaults().steps)]
    steps: usize,
    /// Examples per step.
    #[arg(long, default_value_t = train_defaults().batch_size)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = train_defaults().learning_rate)]
    lr: f64,
    /// Learning-rate warmup steps.
    #[arg(long, default_value_t = train_defaults().warmup_steps)]
    warmup: usize,
    /// Share of examples held out for validation loss.
    #[arg(long, default_value_t = train_defaults().val_fraction)]
    val_fraction: f64,
    /// Intermediate checkpoints kept for the gradient index.
    #[arg(long, default_value_t = train_defaults().checkpoints)]
    checkpoints: usize,
    /// Shards of each batch whose gradients are computed on parallel threads (the weights
    /// depend on this number, not on the cores).
    #[arg(long, default_value_t = train_defaults().shards)]
    shards: usize,
    /// Seed of initialization and batching.
    #[arg(long, default_value_t = train_defaults().seed)]
    seed: u64,
}

/// The library's training defaults, which the flags default to.
fn train_defaults() -> TrainConfig {
    TrainConfig::new(LmConfig::new())
}

pub(crate) fn run_train(args: TrainArgs, out: Output) -> Result<()> {
    if args.out.join("model.json").exists() && !args.force {
        bail!(
            "{} already holds a model (model.json); pass --force to overwrite it or choose another --out",
            args.out.display()
        );
    }
    let resume_dir = args.out.join("resume");
    let interrupted = resume_dir.join("state.json").exists();
    if args.resume && !interrupted {
        bail!(
            "--resume: {} holds no interrupted run to continue",
            resume_dir.display()
        );
    }
    if interrupted && !args.resume {
        if !args.force {
            bail!(
                "{} holds an interrupted run; pass --resume to continue it or --force to start over",
                resume_dir.display()
            );
        }
        std::fs::remove_dir_all(&resume_dir)
            .map_err(|e| anyhow!("{}: {e}", resume_dir.display()))?;
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
        .with_checkpoints(args.checkpoints)
        .with_shards(args.shards);
    let corpus = Corpus::load(&args.corpus)?;
    let texts = load_texts(&corpus, &args.store)?;
    let examples = examples(&texts, args.context);
    let options = TrainOptions {
        progress: out.progress,
        resume: Some(resume_dir.clone()),
        save_every: args.save_every,
        stop_after: None,
    };
    let trained = train_with(&config, &examples, &Device::flex().autodiff(), &options)
        .map_err(|e| anyhow!("training failed: {e}"))?
        .ok_or_else(|| anyhow!("training stopped before its last step"))?;
    let artifact = ModelArtifact::save(&args.out, &config, &corpus, &trained)?;
    // The artifact is complete: nothing is left to resume.
    std::fs::remove_dir_all(&resume_dir).ok();
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

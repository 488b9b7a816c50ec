//! `tributary-attrib index`: the gradient index of a model's training data.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use tributary_attrib::artifact::ModelArtifact;
use tributary_attrib::data::{examples, Corpus};
use tributary_attrib::engine::{build_index, IndexSettings, LayerSelection};
use tributary_attrib::index::{DEFAULT_DAMPING, MANIFEST_FILE};

use crate::{load_texts, Output};

#[derive(Args)]
pub(crate) struct IndexArgs {
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
    #[arg(long, default_value_t = IndexSettings::default().k_in)]
    k_in: usize,
    /// Projected output-gradient width per layer.
    #[arg(long, default_value_t = IndexSettings::default().k_out)]
    k_out: usize,
    /// Seed of the gradient projection [default: the engine's fixed seed].
    #[arg(long)]
    seed: Option<u64>,
    /// Damping of the preconditioner, as a share of each layer's mean eigenvalue.
    #[arg(long, default_value_t = DEFAULT_DAMPING)]
    damping: f32,
    /// Rows the preconditioner is fitted on at most.
    #[arg(long, default_value_t = IndexSettings::default().fisher_rows_max)]
    fisher_rows: usize,
    /// Examples per batched gradient pass.
    #[arg(long, default_value_t = IndexSettings::default().batch_size)]
    batch_size: usize,
    /// Index only the final weights, not the intermediate checkpoints.
    #[arg(long)]
    final_only: bool,
}

/// Checks that a corpus lists the same datanet versions and contributions as the model's lineage.
pub(crate) fn check_same_lineage(corpus: &Corpus, lineage: &Corpus) -> Result<()> {
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

pub(crate) fn dir_bytes(dir: &Path) -> u64 {
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

pub(crate) fn run_index(args: IndexArgs, out: Output) -> Result<()> {
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

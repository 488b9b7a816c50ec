//! `tributary-attrib generate`: a prompt continued by a model.

use std::path::PathBuf;

use anyhow::Result;
use burn::prelude::*;
use clap::Args;
use tributary_attrib::artifact::ModelArtifact;
use tributary_attrib::inference::generate;

use crate::{sampling, Output, SamplingArgs};

#[derive(Args)]
pub(crate) struct GenerateArgs {
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

pub(crate) fn run_generate(args: GenerateArgs, out: Output) -> Result<()> {
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

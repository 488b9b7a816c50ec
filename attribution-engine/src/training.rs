//! Training a model on a corpus: seeded, checkpointed, with train and validation loss.

use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{batch, Example};
use crate::model::{Lm, LmConfig};

/// How a model is trained.
#[derive(Config, Debug, PartialEq)]
pub struct TrainConfig {
    pub model: LmConfig,
    #[config(default = 42)]
    pub seed: u64,
    /// Optimizer steps.
    #[config(default = 600)]
    pub steps: usize,
    #[config(default = 32)]
    pub batch_size: usize,
    /// Peak learning rate (Adam), reached after `warmup_steps` and decayed by a cosine to 10 %.
    #[config(default = 3e-3)]
    pub learning_rate: f64,
    #[config(default = 50)]
    pub warmup_steps: usize,
    /// Share of examples held out for validation loss (0 keeps every example for training).
    #[config(default = 0.0)]
    pub val_fraction: f64,
    /// Intermediate checkpoints kept for the gradient index (0 keeps only the final weights).
    #[config(default = 2)]
    pub checkpoints: usize,
}

impl TrainConfig {
    /// Steps after which intermediate checkpoints are saved, evenly spaced, final excluded.
    pub fn checkpoint_steps(&self) -> Vec<usize> {
        (1..=self.checkpoints)
            .map(|i| i * self.steps / (self.checkpoints + 1))
            .filter(|&s| s > 0 && s < self.steps)
            .collect()
    }

    fn learning_rate_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.learning_rate * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = (self.steps - self.warmup_steps).max(1) as f64;
        let progress = (step - self.warmup_steps) as f64 / span;
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.learning_rate * (0.1 + 0.9 * cosine)
    }
}

/// The trained weights at one step.
pub struct Checkpoint {
    pub step: usize,
    pub model: Lm,
}

/// What a training run did.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainReport {
    pub steps: usize,
    pub train_examples: usize,
    pub val_examples: usize,
    /// Mean training loss over the last tenth of the steps (nats per token).
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub tokens: u64,
    pub seconds: f64,
    pub tokens_per_second: f64,
}

/// The result: the final model, intermediate checkpoints, and the report.
pub struct Trained {
    pub model: Lm,
    pub checkpoints: Vec<Checkpoint>,
    pub report: TrainReport,
}

impl Trained {
    /// Trainable parameters of the model.
    pub fn parameters(&self) -> usize {
        self.model.num_params()
    }
}

/// Splits examples into training and validation sets, deterministically from the seed.
pub fn split_examples(examples: &[Example], config: &TrainConfig) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let val = ((examples.len() as f64) * config.val_fraction).floor() as usize;
    if val == 0 {
        return (order, Vec::new());
    }
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(
        config.seed ^ 0x005e_ed0f_5a11,
    ));
    let val_set = order.split_off(examples.len() - val);
    order.sort_unstable();
    let mut val_set = val_set;
    val_set.sort_unstable();
    (order, val_set)
}

/// [`train`] on Burn's pure-Rust CPU backend (`flex` with autodiff), the default device.
pub fn train_on_cpu(
    config: &TrainConfig,
    examples: &[Example],
    progress: bool,
) -> Result<Trained, String> {
    train(config, examples, &Device::flex().autodiff(), progress)
}

/// Trains a model on `examples` (all of them, or the training split when `val_fraction > 0`).
///
/// `device` must be an autodiff device. The run is a pure function of the config, the examples
/// and the backend: the device is seeded, batches are drawn from a seeded generator.
pub fn train(
    config: &TrainConfig,
    examples: &[Example],
    device: &Device,
    progress: bool,
) -> Result<Trained, String> {
    config.model.check()?;
    if examples.is_empty() {
        return Err("no training examples: the corpus is empty".into());
    }
    if config.steps == 0 || config.batch_size == 0 {
        return Err("steps and batch_size must be positive".into());
    }
    device.seed(config.seed);
    let mut model = config.model.init(device);
    let mut optimizer = AdamConfig::new()
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();
    let (train_ids, val_ids) = split_examples(examples, config);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut order = train_ids.clone();
    let mut cursor = order.len();
    let checkpoint_steps = config.checkpoint_steps();
    let mut checkpoints = Vec::new();
    let mut recent_losses = Vec::new();
    let mut tokens = 0u64;

    let bar = progress_bar(config.steps as u64, progress, "training");
    let started = Instant::now();
    for step in 0..config.steps {
        let mut chosen = Vec::with_capacity(config.batch_size);
        while chosen.len() < config.batch_size.min(train_ids.len()) {
            if cursor == order.len() {
                order.shuffle(&mut rng);
                cursor = 0;
            }
            chosen.push(&examples[order[cursor]]);
            cursor += 1;
        }
        let b = batch(&chosen, device);
        tokens += b.tokens as u64;
        let (loss, _) = model.weighted_loss(b.inputs, b.targets, b.weights, None);
        let loss = loss / chosen.len() as f64;
        let value: f64 = loss.clone().into_scalar::<f32>() as f64;
        if !value.is_finite() {
            return Err(format!("training diverged at step {step}: loss {value}"));
        }
        if step >= config.steps - (config.steps / 10).max(1) {
            recent_losses.push(value);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(config.learning_rate_at(step), model, grads);
        bar.set_message(format!("loss {value:.3}"));
        bar.inc(1);
        if checkpoint_steps.contains(&(step + 1)) {
            checkpoints.push(Checkpoint {
                step: step + 1,
                model: model.clone(),
            });
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let val_loss = if val_ids.is_empty() {
        None
    } else {
        let val: Vec<&Example> = val_ids.iter().map(|&i| &examples[i]).collect();
        Some(mean_loss(
            &model.valid(),
            &val,
            config.batch_size,
            &device_of(&model),
        ))
    };
    let train_loss = recent_losses.iter().sum::<f64>() / recent_losses.len().max(1) as f64;
    Ok(Trained {
        model,
        checkpoints,
        report: TrainReport {
            steps: config.steps,
            train_examples: train_ids.len(),
            val_examples: val_ids.len(),
            train_loss,
            val_loss,
            tokens,
            seconds,
            tokens_per_second: tokens as f64 / seconds.max(1e-9),
        },
    })
}

fn device_of(model: &Lm) -> Device {
    model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(Device::flex)
}

/// Mean per-token loss of `examples` (each example weighted by its token count).
pub fn mean_loss(model: &Lm, examples: &[&Example], batch_size: usize, device: &Device) -> f64 {
    let mut total = 0.0;
    let mut count = 0usize;
    for chunk in examples.chunks(batch_size.max(1)) {
        let b = batch(chunk, device);
        let (_, per_example) = model.weighted_loss(b.inputs, b.targets, b.weights, None);
        let losses: Vec<f32> = per_example.into_data().try_to_vec().unwrap_or_default();
        for (loss, e) in losses.iter().zip(chunk) {
            let n = e.tokens.len().saturating_sub(1);
            total += *loss as f64 * n as f64;
            count += n;
        }
    }
    total / count.max(1) as f64
}

/// A progress bar on stderr, hidden when `visible` is false or stderr is not a terminal.
pub fn progress_bar(len: u64, visible: bool, what: &str) -> ProgressBar {
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what:>10} [{{bar:30}}] {{pos}}/{{len}} {{per_sec}} eta {{eta}} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Loads weights from a checkpoint file into a model of `config`'s shape.
pub fn load_weights(config: &LmConfig, bytes: Vec<u8>, device: &Device) -> Result<Lm, String> {
    let record = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| format!("unreadable weights: {e}"))?;
    config
        .init(device)
        .try_load_record(record)
        .map_err(|e| format!("weights do not fit the model config: {e}"))
}

/// The weights' bytes (burnpack).
pub fn weights_bytes(model: &Lm) -> Result<Vec<u8>, String> {
    model
        .clone()
        .into_record()
        .into_bytes()
        .map(|b| b.to_vec())
        .map_err(|e| format!("cannot serialize weights: {e}"))
}

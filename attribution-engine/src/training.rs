//! Training a model on a corpus: seeded, checkpointed, with train and validation loss.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::{ModuleMapper, Param};
use burn::optim::{AdamConfig, GradientsAccumulator, GradientsParams};
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
    /// Each batch is split into this many shards whose gradients are computed on parallel
    /// threads and summed in shard order. The weights depend on the shard count (it fixes the
    /// order of the sums), never on the number of threads or cores.
    #[config(default = 1)]
    pub shards: usize,
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

/// How one call of [`train_with`] runs.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Folder for the resume state: an interrupted run started again with the same folder,
    /// config and examples continues from the last saved step and ends with the same weights
    /// as a run that was never interrupted.
    pub resume: Option<PathBuf>,
    /// Save the resume state every this many steps (0: only at intermediate checkpoints).
    pub save_every: usize,
    /// Stop once this step is done and saved, leaving the run to be resumed (splits a long
    /// training into pieces).
    pub stop_after: Option<usize>,
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
    let options = TrainOptions {
        progress,
        ..TrainOptions::default()
    };
    train_with(config, examples, device, &options)?
        .ok_or_else(|| "training stopped before its last step".to_string())
}

/// [`train`] with a resume state and an optional early stop; `Ok(None)` when the run stopped
/// at [`TrainOptions::stop_after`] before its last step.
pub fn train_with(
    config: &TrainConfig,
    examples: &[Example],
    device: &Device,
    options: &TrainOptions,
) -> Result<Option<Trained>, String> {
    config.model.check()?;
    if examples.is_empty() {
        return Err("no training examples: the corpus is empty".into());
    }
    if config.steps == 0 || config.batch_size == 0 || config.shards == 0 {
        return Err("steps, batch_size and shards must be positive".into());
    }
    device.seed(config.seed);
    let (train_ids, val_ids) = split_examples(examples, config);
    let mut sampler = Sampler::new(config, train_ids.clone());
    let checkpoint_steps = config.checkpoint_steps();
    let digest = examples_digest(examples);

    let resumed = match &options.resume {
        Some(dir) => ResumeState::load(dir, config, &digest, device)?,
        None => None,
    };
    let (mut model, mut optimizer, mut run) = match resumed {
        Some((state, model, optimizer)) => {
            for _ in 0..state.step {
                sampler.next_batch();
            }
            let checkpoints = state.load_checkpoints(device)?;
            (model, optimizer, Run::from_state(state, checkpoints))
        }
        None => (config.model.init(device), optimizer(), Run::default()),
    };

    let bar = progress_bar(config.steps as u64, options.progress, "training");
    bar.set_position(run.step as u64);
    let started = Instant::now();
    let tokens_before = run.tokens;
    while run.step < config.steps {
        let step = run.step;
        let chosen: Vec<&Example> = sampler
            .next_batch()
            .into_iter()
            .map(|i| &examples[i])
            .collect();
        let (value, tokens, grads) = batch_gradients(&model, &chosen, config.shards, device);
        run.tokens += tokens;
        if !value.is_finite() {
            return Err(format!("training diverged at step {step}: loss {value}"));
        }
        if step >= config.steps - (config.steps / 10).max(1) {
            run.recent_losses.push(value);
        }
        model = optimizer.step(config.learning_rate_at(step), model, grads);
        run.step += 1;
        bar.set_message(format!("loss {value:.3}"));
        bar.inc(1);
        let is_checkpoint = checkpoint_steps.contains(&run.step);
        if is_checkpoint {
            run.checkpoints.push(Checkpoint {
                step: run.step,
                model: model.clone(),
            });
        }
        let stop = options.stop_after == Some(run.step) && run.step < config.steps;
        let periodic = options.save_every > 0 && run.step % options.save_every == 0;
        if let Some(dir) = &options.resume {
            if run.step < config.steps && (stop || periodic || is_checkpoint) {
                ResumeState::save(dir, config, &digest, &run, &model, &optimizer)?;
            }
        }
        if stop {
            bar.finish_and_clear();
            return Ok(None);
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
    let train_loss = run.recent_losses.iter().sum::<f64>() / run.recent_losses.len().max(1) as f64;
    let tokens_this_run = run.tokens - tokens_before;
    Ok(Some(Trained {
        model,
        checkpoints: run.checkpoints,
        report: TrainReport {
            steps: config.steps,
            train_examples: train_ids.len(),
            val_examples: val_ids.len(),
            train_loss,
            val_loss,
            tokens: run.tokens,
            seconds,
            tokens_per_second: tokens_this_run as f64 / seconds.max(1e-9),
        },
    }))
}

/// The batch-mean loss, the tokens scored and the gradients of one step, the batch split into
/// `shards` computed in parallel and summed in order.
fn batch_gradients(
    model: &Lm,
    chosen: &[&Example],
    shards: usize,
    device: &Device,
) -> (f64, u64, GradientsParams) {
    let scale = chosen.len() as f64;
    let shard = |model: &Lm, part: &[&Example]| {
        let b = batch(part, device);
        let tokens = b.tokens as u64;
        let (loss, _) = model.weighted_loss(b.inputs, b.targets, b.weights, None);
        let loss = loss / scale;
        let value = loss.clone().into_scalar::<f32>() as f64;
        (
            value,
            tokens,
            GradientsParams::from_grads(loss.backward(), model),
        )
    };
    let size = chosen.len().div_ceil(shards.max(1));
    if size >= chosen.len() {
        return shard(model, chosen);
    }
    // Each shard runs on its own OS thread with its own autodiff leaves for the parameters
    // (same ids, so the gradients add up): graphs that share leaves are merged under locks
    // taken in no fixed order, which can deadlock threads that build them at once.
    let results: Vec<(f64, u64, GradientsParams)> = std::thread::scope(|scope| {
        let handles: Vec<_> = chosen
            .chunks(size)
            .map(|part| {
                let own = model.clone().map(&mut OwnLeaves);
                scope.spawn(move || shard(&own, part))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut accumulator = GradientsAccumulator::<Lm>::new();
    let (mut value, mut tokens) = (0.0, 0);
    for (v, t, grads) in results {
        value += v;
        tokens += t;
        accumulator.accumulate(model, grads);
    }
    (value, tokens, accumulator.grads())
}

/// Replaces every parameter by a fresh autodiff leaf holding the same values, under the same id.
struct OwnLeaves;

impl ModuleMapper for OwnLeaves {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|tensor| tensor.detach().require_grad())
    }
}

type Optimizer = burn::optim::ModuleOptimizer;

fn optimizer() -> Optimizer {
    AdamConfig::new()
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init()
}

/// The order training examples are drawn in: shuffled passes over the training set, from a
/// generator seeded by the config, so that the batch of every step is known without training.
struct Sampler {
    rng: ChaCha8Rng,
    order: Vec<usize>,
    cursor: usize,
    batch: usize,
}

impl Sampler {
    fn new(config: &TrainConfig, train_ids: Vec<usize>) -> Sampler {
        Sampler {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            cursor: train_ids.len(),
            batch: config.batch_size.min(train_ids.len()),
            order: train_ids,
        }
    }

    fn next_batch(&mut self) -> Vec<usize> {
        let mut chosen = Vec::with_capacity(self.batch);
        while chosen.len() < self.batch {
            if self.cursor == self.order.len() {
                self.order.shuffle(&mut self.rng);
                self.cursor = 0;
            }
            chosen.push(self.order[self.cursor]);
            self.cursor += 1;
        }
        chosen
    }
}

/// Where a run is: steps done, tokens seen, the losses of the last tenth, checkpoints kept.
#[derive(Default)]
struct Run {
    step: usize,
    tokens: u64,
    recent_losses: Vec<f64>,
    checkpoints: Vec<Checkpoint>,
}

impl Run {
    fn from_state(state: ResumeState, checkpoints: Vec<Checkpoint>) -> Run {
        Run {
            step: state.step,
            tokens: state.tokens,
            recent_losses: state.recent_losses,
            checkpoints,
        }
    }
}

/// Format tag of a resume state's `state.json`.
const RESUME_FORMAT: &str = "tributary-train-resume-1";

/// `state.json` of a resume folder. The weights, the optimizer state (Adam's moments and step
/// counts) and the intermediate checkpoints lie beside it in files named by their step, so the
/// state written last always names complete files.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ResumeState {
    format: String,
    config: TrainConfig,
    /// SHA-256 over the examples' contribution ids and tokens.
    examples: String,
    step: usize,
    tokens: u64,
    recent_losses: Vec<f64>,
    model: String,
    optimizer: String,
    checkpoints: Vec<(usize, String)>,
    #[serde(skip)]
    dir: PathBuf,
}

impl ResumeState {
    fn load(
        dir: &Path,
        config: &TrainConfig,
        digest: &str,
        device: &Device,
    ) -> Result<Option<(ResumeState, Lm, Optimizer)>, String> {
        let path = dir.join("state.json");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut state: ResumeState = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a resume state: {e}", path.display()))?;
        state.dir = dir.to_path_buf();
        if state.format != RESUME_FORMAT {
            return Err(format!(
                "{}: unsupported resume format {}",
                path.display(),
                state.format
            ));
        }
        if &state.config != config {
            return Err(format!(
                "{} was saved by a run with another training config; train with the same flags or remove the folder to start over",
                dir.display()
            ));
        }
        if state.examples != digest {
            return Err(format!(
                "{} was saved by a run on other training examples; remove the folder to start over",
                dir.display()
            ));
        }
        let model = load_weights(&config.model, state.read(&state.model)?, device)?;
        let record = burn::optim::OptimizerRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(
            state.read(&state.optimizer)?,
        ))
        .map_err(|e| format!("{}: unreadable optimizer state: {e}", state.optimizer))?;
        let optimizer = optimizer().load_record(record);
        Ok(Some((state, model, optimizer)))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, String> {
        let path = self.dir.join(name);
        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn load_checkpoints(&self, device: &Device) -> Result<Vec<Checkpoint>, String> {
        self.checkpoints
            .iter()
            .map(|(step, name)| {
                Ok(Checkpoint {
                    step: *step,
                    model: load_weights(&self.config.model, self.read(name)?, device)?,
                })
            })
            .collect()
    }

    fn save(
        dir: &Path,
        config: &TrainConfig,
        digest: &str,
        run: &Run,
        model: &Lm,
        optimizer: &Optimizer,
    ) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let write = |name: &str, bytes: &[u8]| {
            crate::artifact::write_atomic(&dir.join(name), bytes).map_err(|e| e.to_string())
        };
        let model_name = format!("model-{}.bpk", run.step);
        write(&model_name, &weights_bytes(model)?)?;
        let optimizer_name = format!("optimizer-{}.bpk", run.step);
        let optimizer_bytes = optimizer
            .to_record()
            .into_bytes()
            .map_err(|e| format!("cannot serialize the optimizer state: {e}"))?;
        write(&optimizer_name, &optimizer_bytes)?;
        let mut checkpoints = Vec::new();
        for checkpoint in &run.checkpoints {
            let name = format!("checkpoint-{}.bpk", checkpoint.step);
            if !dir.join(&name).exists() {
                write(&name, &weights_bytes(&checkpoint.model)?)?;
            }
            checkpoints.push((checkpoint.step, name));
        }
        let state = ResumeState {
            format: RESUME_FORMAT.to_string(),
            config: config.clone(),
            examples: digest.to_string(),
            step: run.step,
            tokens: run.tokens,
            recent_losses: run.recent_losses.clone(),
            model: model_name.clone(),
            optimizer: optimizer_name.clone(),
            checkpoints: checkpoints.clone(),
            dir: dir.to_path_buf(),
        };
        let json = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
        write("state.json", &json)?;
        // Files of earlier saves are no longer named by the state.
        let keep: Vec<&str> = [model_name.as_str(), optimizer_name.as_str(), "state.json"]
            .into_iter()
            .chain(checkpoints.iter().map(|(_, n)| n.as_str()))
            .collect();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".bpk") && !keep.contains(&name.as_str()) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }
}

/// SHA-256 over each example's contribution id, length and tokens.
fn examples_digest(examples: &[Example]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for e in examples {
        hasher.update(e.contribution_id.to_le_bytes());
        hasher.update((e.tokens.len() as u64).to_le_bytes());
        for t in &e.tokens {
            hasher.update(t.to_le_bytes());
        }
    }
    hex::encode(hasher.finalize())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::examples;

    fn config() -> TrainConfig {
        TrainConfig::new(
            LmConfig::new()
                .with_d_model(16)
                .with_n_layers(1)
                .with_n_heads(2)
                .with_d_ff(32)
                .with_context(16),
        )
        .with_steps(24)
        .with_batch_size(4)
        .with_warmup_steps(3)
        .with_checkpoints(2)
    }

    fn corpus() -> Vec<Example> {
        let texts = vec![
            (
                1,
                b"read() attempts to read up to count bytes from fd into buf".to_vec(),
            ),
            (
                2,
                b"write() writes up to count bytes from buf to the file fd".to_vec(),
            ),
            (
                3,
                b"close() closes a file descriptor so that it no longer refers".to_vec(),
            ),
        ];
        examples(&texts, 16)
    }

    /// Logits of a fixed batch, as bits.
    fn fingerprint(model: &Lm, examples: &[Example]) -> Vec<u32> {
        let device = Device::flex();
        let chosen: Vec<&Example> = examples.iter().collect();
        let b = batch(&chosen, &device);
        let logits: Vec<f32> = model
            .valid()
            .forward(b.inputs)
            .into_data()
            .try_to_vec()
            .unwrap();
        logits.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one() {
        let device = Device::flex().autodiff();
        let examples = corpus();
        let config = config();
        let whole = train(&config, &examples, &device, false).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let options = |stop_after| TrainOptions {
            resume: Some(dir.path().to_path_buf()),
            save_every: 5,
            stop_after,
            ..TrainOptions::default()
        };
        // Stopped after an intermediate checkpoint (step 8) and between two saves.
        assert!(train_with(&config, &examples, &device, &options(Some(13)))
            .unwrap()
            .is_none());
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).unwrap()).unwrap();
        assert_eq!(state["step"], 13);
        let resumed = train_with(&config, &examples, &device, &options(None))
            .unwrap()
            .unwrap();

        assert_eq!(
            fingerprint(&resumed.model, &examples),
            fingerprint(&whole.model, &examples)
        );
        assert_eq!(resumed.report.tokens, whole.report.tokens);
        assert_eq!(resumed.report.train_loss, whole.report.train_loss);
        let steps = |t: &Trained| t.checkpoints.iter().map(|c| c.step).collect::<Vec<_>>();
        assert_eq!(steps(&resumed), vec![8, 16]);
        assert_eq!(steps(&resumed), steps(&whole));
        for (a, b) in resumed.checkpoints.iter().zip(&whole.checkpoints) {
            assert_eq!(
                fingerprint(&a.model, &examples),
                fingerprint(&b.model, &examples)
            );
        }
        // Only the files the last state names are kept.
        let mut files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "checkpoint-16.bpk",
                "checkpoint-8.bpk",
                "model-20.bpk",
                "optimizer-20.bpk",
                "state.json"
            ]
        );
    }

    #[test]
    fn a_resume_state_of_another_config_or_corpus_is_refused() {
        let device = Device::flex().autodiff();
        let examples = corpus();
        let dir = tempfile::tempdir().unwrap();
        let options = TrainOptions {
            resume: Some(dir.path().to_path_buf()),
            stop_after: Some(4),
            ..TrainOptions::default()
        };
        assert!(train_with(&config(), &examples, &device, &options)
            .unwrap()
            .is_none());
        let other = config().with_learning_rate(1e-3);
        let err = train_with(&other, &examples, &device, &options)
            .err()
            .unwrap();
        assert!(err.contains("another training config"), "{err}");
        let fewer = &examples[1..];
        let err = train_with(&config(), fewer, &device, &options)
            .err()
            .unwrap();
        assert!(err.contains("other training examples"), "{err}");
    }

    #[test]
    fn sharded_batches_train_the_same_model_reproducibly() {
        let device = Device::flex().autodiff();
        let examples = corpus();
        let config = config().with_checkpoints(0).with_batch_size(6);
        let whole = train(&config, &examples, &device, false).unwrap();
        let sharded = config.clone().with_shards(3);
        let a = train(&sharded, &examples, &device, false).unwrap();
        let b = train(&sharded, &examples, &device, false).unwrap();
        // The same shards sum in the same order: the same bits, run after run.
        assert_eq!(
            fingerprint(&a.model, &examples),
            fingerprint(&b.model, &examples)
        );
        assert_eq!(a.report.tokens, whole.report.tokens);
        // Sums in another order differ only by rounding.
        let close = fingerprint(&a.model, &examples)
            .iter()
            .zip(fingerprint(&whole.model, &examples))
            .all(|(x, y)| (f32::from_bits(*x) - f32::from_bits(y)).abs() < 1e-3);
        assert!(close);
        assert!((a.report.train_loss - whole.report.train_loss).abs() < 1e-4);
    }

    #[test]
    fn the_sampler_draws_every_training_example_once_per_pass() {
        let config = config().with_batch_size(3);
        let mut sampler = Sampler::new(&config, (0..7).collect());
        let drawn: Vec<usize> = (0..7).flat_map(|_| sampler.next_batch()).collect();
        // 21 draws are three passes over 7 examples.
        for pass in drawn.chunks(7) {
            let mut pass = pass.to_vec();
            pass.sort();
            assert_eq!(pass, (0..7).collect::<Vec<_>>());
        }
    }
}

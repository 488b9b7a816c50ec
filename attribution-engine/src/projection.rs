//! Batched, projected per-example gradients (the probe trick with a LoGra projection).
//!
//! For a linear layer `y = x W + b` applied at every position `t` of example `e`, the
//! example's weight gradient is `Σ_t x_tᵀ g_t`, with `g_t` the gradient of the example's loss
//! with respect to `y_t`. The tapped forward pass gives `x` and, through the probe's gradient,
//! `g` for the whole batch at once. Projecting inputs with `P_in` (`d_in × k_in`) and output
//! gradients with `P_out` (`d_out × k_out`) and summing outer products gives
//! `Σ_t (P_outᵀ g_t)(P_inᵀ x_t)ᵀ = P_outᵀ (Σ_t g_tᵀ x_t) P_in`, which is exactly the true
//! per-example gradient projected by `P_out ⊗ P_in`, at a cost linear in the batch.

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::Batch;
use crate::model::{LayerId, Lm, LmConfig, Taps};

/// How one layer's gradient is projected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSpec {
    pub layer: LayerId,
    pub d_in: usize,
    pub d_out: usize,
    /// Projected input width.
    pub k_in: usize,
    /// Projected output-gradient width.
    pub k_out: usize,
}

impl LayerSpec {
    /// Width of this layer's projected gradient.
    pub fn dim(&self) -> usize {
        self.k_in * self.k_out
    }
}

/// The projection of a set of layers, reproducible from its seed.
#[derive(Clone, Debug)]
pub struct Projector {
    pub seed: u64,
    pub layers: Vec<LayerSpec>,
    /// Per layer: `P_in` `[d_in, k_in]` and `P_out` `[d_out, k_out]`.
    matrices: Vec<(Tensor<2>, Tensor<2>)>,
}

/// A Rademacher matrix `[rows, cols]` with entries `±1/√cols`, seeded by `seed`, the layer
/// and the side, so every layer and side gets an independent stream.
pub fn rademacher(seed: u64, layer: &str, side: &str, rows: usize, cols: usize) -> Vec<f32> {
    let digest = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(layer.as_bytes())
        .chain_update([0])
        .chain_update(side.as_bytes())
        .finalize();
    let mut key = [0u8; 32];
    key.copy_from_slice(&digest);
    let mut rng = ChaCha8Rng::from_seed(key);
    let scale = 1.0 / (cols as f32).sqrt();
    (0..rows * cols)
        .map(|_| if rng.random::<bool>() { scale } else { -scale })
        .collect()
}

impl Projector {
    /// Projects `layers` of a model shaped by `config` to `k_in × k_out` each.
    pub fn new(
        config: &LmConfig,
        layers: &[LayerId],
        k_in: usize,
        k_out: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let specs: Vec<LayerSpec> = layers
            .iter()
            .map(|&layer| {
                let (d_in, d_out) = config.layer_dims(layer);
                LayerSpec {
                    layer,
                    d_in,
                    d_out,
                    k_in: k_in.min(d_in),
                    k_out: k_out.min(d_out),
                }
            })
            .collect();
        Self::from_specs(specs, seed, device)
    }

    /// Rebuilds a projector from its specs (as stored in an index manifest).
    pub fn from_specs(layers: Vec<LayerSpec>, seed: u64, device: &Device) -> Self {
        let matrices = layers
            .iter()
            .map(|s| {
                let name = s.layer.name();
                let p_in = rademacher(seed, &name, "in", s.d_in, s.k_in);
                let p_out = rademacher(seed, &name, "out", s.d_out, s.k_out);
                (
                    Tensor::from_data(TensorData::new(p_in, [s.d_in, s.k_in]), device),
                    Tensor::from_data(TensorData::new(p_out, [s.d_out, s.k_out]), device),
                )
            })
            .collect();
        Projector {
            seed,
            layers,
            matrices,
        }
    }

    /// Width of a full projected gradient (all layers, concatenated in order).
    pub fn dim(&self) -> usize {
        self.layers.iter().map(LayerSpec::dim).sum()
    }

    /// Layer ids, in order.
    pub fn layer_ids(&self) -> Vec<LayerId> {
        self.layers.iter().map(|s| s.layer).collect()
    }

    /// Projected per-example gradients of `batch`'s weighted loss, `[batch, dim]` row-major,
    /// and the per-example losses. `model` must live on an autodiff device.
    pub fn project(&self, model: &Lm, batch: &Batch) -> (Vec<f32>, Vec<f32>) {
        let mut taps = Taps::new(&self.layer_ids());
        let (loss, per_example) = model.weighted_loss(
            batch.inputs.clone(),
            batch.targets.clone(),
            batch.weights.clone(),
            Some(&mut taps),
        );
        let grads = loss.backward();
        let [n, seq] = batch.inputs.dims();
        let mut parts = Vec::with_capacity(self.layers.len());
        for (spec, (p_in, p_out)) in self.layers.iter().zip(&self.matrices) {
            let record = taps
                .records
                .iter()
                .find(|r| r.layer == spec.layer)
                .expect("the tapped forward pass records every projected layer");
            let g = record
                .probe
                .grad(&grads)
                .expect("probe leaves always receive a gradient")
                .inner();
            let x = record.input.clone().inner();
            let x = x
                .reshape([n * seq, spec.d_in])
                .matmul(p_in.clone().inner())
                .reshape([n, seq, spec.k_in]);
            let g = g
                .reshape([n * seq, spec.d_out])
                .matmul(p_out.clone().inner())
                .reshape([n, seq, spec.k_out]);
            parts.push(g.swap_dims(1, 2).matmul(x).reshape([n, spec.dim()]));
        }
        let projected: Vec<f32> = Tensor::cat(parts, 1)
            .into_data()
            .try_to_vec()
            .expect("f32 gradients");
        let losses: Vec<f32> = per_example
            .inner()
            .into_data()
            .try_to_vec()
            .expect("f32 losses");
        (projected, losses)
    }

    /// Projects an explicit weight gradient `[d_in, d_out]` of layer `i` (for checking).
    pub fn project_weight_gradient(&self, i: usize, weight_grad: Tensor<2>) -> Vec<f32> {
        let (p_in, p_out) = &self.matrices[i];
        let projected = p_out
            .clone()
            .inner()
            .transpose()
            .matmul(weight_grad.transpose())
            .matmul(p_in.clone().inner());
        projected.into_data().try_to_vec().expect("f32 gradients")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{batch, windows};

    fn tiny() -> LmConfig {
        LmConfig::new()
            .with_d_model(16)
            .with_n_heads(2)
            .with_d_ff(32)
            .with_context(12)
    }

    /// The batched projected gradient equals the projection of each example's explicit
    /// weight gradient from its own backward pass.
    #[test]
    fn batched_projection_equals_projected_per_example_gradient() {
        let device = Device::flex().autodiff();
        device.seed(7);
        let config = tiny();
        let model = config.init(&device);
        let layers = config.linear_layers();
        let projector = Projector::new(&config, &layers, 8, 6, 99, &device);

        let texts: [&[u8]; 3] = [
            b"open(2) returns a file descriptor",
            b"lseek",
            b"read(fd, buf, n) reads",
        ];
        let examples: Vec<_> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| windows(i as u64, t, config.context).remove(0))
            .collect();
        let refs: Vec<_> = examples.iter().collect();
        let (batched, _) = projector.project(&model, &batch(&refs, &device));
        let dim = projector.dim();
        assert_eq!(batched.len(), examples.len() * dim);

        for (e, example) in examples.iter().enumerate() {
            let one = batch(&[example], &device);
            let (loss, _) = model.weighted_loss(one.inputs, one.targets, one.weights, None);
            let grads = loss.backward();
            let mut explicit = Vec::with_capacity(dim);
            for (i, spec) in projector.layers.iter().enumerate() {
                let weight: Tensor<2> = model.layer_weight(spec.layer);
                let grad = weight.grad(&grads).expect("weights are parameters");
                explicit.extend(projector.project_weight_gradient(i, grad.inner()));
            }
            let row = &batched[e * dim..(e + 1) * dim];
            let diff: f32 = row
                .iter()
                .zip(&explicit)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f32>()
                .sqrt();
            let norm: f32 = explicit.iter().map(|b| b * b).sum::<f32>().sqrt();
            assert!(norm > 0.0, "example {e} has a zero gradient");
            assert!(
                diff / norm < 1e-4,
                "example {e}: relative error {}",
                diff / norm
            );
        }
    }
}

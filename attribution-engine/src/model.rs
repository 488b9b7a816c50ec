//! The specialized language model: a small decoder-only transformer over bytes.
//!
//! The forward pass can be *tapped*: for a chosen set of linear layers it records each layer's
//! input and adds a zero "probe" leaf to the layer's output. After a backward pass the probe's
//! gradient is the per-example, per-position output gradient of that layer, which together with
//! the recorded input gives every example's weight gradient without a per-example loop (see
//! [`crate::projection`]).

use burn::nn::{
    Embedding, EmbeddingConfig, Gelu, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

use crate::tokenizer::VOCAB_SIZE;

/// Shape of the language model.
#[derive(Config, Debug, PartialEq, Eq)]
pub struct LmConfig {
    /// Token vocabulary (the byte tokenizer's 257 symbols by default).
    #[config(default = 257)]
    pub vocab_size: usize,
    /// Width of the residual stream.
    #[config(default = 64)]
    pub d_model: usize,
    /// Number of transformer blocks.
    #[config(default = 2)]
    pub n_layers: usize,
    /// Attention heads per block; must divide `d_model`.
    #[config(default = 4)]
    pub n_heads: usize,
    /// Hidden width of each block's feed-forward layer.
    #[config(default = 256)]
    pub d_ff: usize,
    /// Longest sequence the model attends over, in tokens.
    #[config(default = 64)]
    pub context: usize,
}

impl LmConfig {
    /// Checks the shape before any tensor is allocated.
    pub fn check(&self) -> Result<(), String> {
        if self.vocab_size != VOCAB_SIZE {
            return Err(format!(
                "vocab_size must be {VOCAB_SIZE} for the byte tokenizer, got {}",
                self.vocab_size
            ));
        }
        for (name, v) in [
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("d_ff", self.d_ff),
            ("context", self.context),
        ] {
            if v == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        if self.d_model % self.n_heads != 0 {
            return Err(format!(
                "n_heads ({}) must divide d_model ({})",
                self.n_heads, self.d_model
            ));
        }
        Ok(())
    }

    /// Builds a freshly initialized model on `device` (seed the device first for a
    /// reproducible initialization).
    pub fn init(&self, device: &Device) -> Lm {
        let blocks = (0..self.n_layers)
            .map(|_| Block {
                ln1: LayerNormConfig::new(self.d_model).init(device),
                qkv: LinearConfig::new(self.d_model, 3 * self.d_model).init(device),
                attn_out: LinearConfig::new(self.d_model, self.d_model).init(device),
                ln2: LayerNormConfig::new(self.d_model).init(device),
                fc1: LinearConfig::new(self.d_model, self.d_ff).init(device),
                fc2: LinearConfig::new(self.d_ff, self.d_model).init(device),
                gelu: Gelu::new(),
                n_heads: self.n_heads,
            })
            .collect();
        Lm {
            token_embedding: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            position_embedding: EmbeddingConfig::new(self.context, self.d_model).init(device),
            blocks,
            ln_f: LayerNormConfig::new(self.d_model).init(device),
            head: LinearConfig::new(self.d_model, self.vocab_size).init(device),
        }
    }

    /// Every linear layer of the model, in forward order.
    pub fn linear_layers(&self) -> Vec<LayerId> {
        let mut layers = Vec::new();
        for block in 0..self.n_layers {
            for kind in [
                LinearKind::Qkv,
                LinearKind::AttnOut,
                LinearKind::Fc1,
                LinearKind::Fc2,
            ] {
                layers.push(LayerId::Block { block, kind });
            }
        }
        layers.push(LayerId::Head);
        layers
    }

    /// `(d_in, d_out)` of a linear layer.
    pub fn layer_dims(&self, layer: LayerId) -> (usize, usize) {
        match layer {
            LayerId::Head => (self.d_model, self.vocab_size),
            LayerId::Block { kind, .. } => match kind {
                LinearKind::Qkv => (self.d_model, 3 * self.d_model),
                LinearKind::AttnOut => (self.d_model, self.d_model),
                LinearKind::Fc1 => (self.d_model, self.d_ff),
                LinearKind::Fc2 => (self.d_ff, self.d_model),
            },
        }
    }
}

/// Which linear layer inside a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearKind {
    Qkv,
    AttnOut,
    Fc1,
    Fc2,
}

/// A linear layer of the model, named the way the index manifest names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LayerId {
    Block { block: usize, kind: LinearKind },
    Head,
}

impl LayerId {
    /// `blocks.1.fc2`, `head`.
    pub fn name(&self) -> String {
        match self {
            LayerId::Head => "head".to_string(),
            LayerId::Block { block, kind } => {
                let kind = match kind {
                    LinearKind::Qkv => "qkv",
                    LinearKind::AttnOut => "attn_out",
                    LinearKind::Fc1 => "fc1",
                    LinearKind::Fc2 => "fc2",
                };
                format!("blocks.{block}.{kind}")
            }
        }
    }

    /// Parses [`LayerId::name`].
    pub fn parse(name: &str) -> Option<LayerId> {
        if name == "head" {
            return Some(LayerId::Head);
        }
        let rest = name.strip_prefix("blocks.")?;
        let (block, kind) = rest.split_once('.')?;
        let kind = match kind {
            "qkv" => LinearKind::Qkv,
            "attn_out" => LinearKind::AttnOut,
            "fc1" => LinearKind::Fc1,
            "fc2" => LinearKind::Fc2,
            _ => return None,
        };
        Some(LayerId::Block {
            block: block.parse().ok()?,
            kind,
        })
    }
}

impl Serialize for LayerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for LayerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        LayerId::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown layer `{name}`")))
    }
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    ln1: LayerNorm,
    qkv: Linear,
    attn_out: Linear,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    gelu: Gelu,
    n_heads: usize,
}

/// The language model.
#[derive(Module, Debug)]
pub struct Lm {
    token_embedding: Embedding,
    position_embedding: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    head: Linear,
}

/// What a tapped forward pass recorded for one layer.
pub struct TapRecord {
    pub layer: LayerId,
    /// The layer's input, `[batch, seq, d_in]`, detached.
    pub input: Tensor<3>,
    /// The zero leaf added to the layer's output, `[batch, seq, d_out]`.
    pub probe: Tensor<3>,
}

/// The layers a forward pass taps, and what it recorded.
pub struct Taps {
    layers: Vec<LayerId>,
    pub records: Vec<TapRecord>,
}

impl Taps {
    pub fn new(layers: &[LayerId]) -> Self {
        Taps {
            layers: layers.to_vec(),
            records: Vec::with_capacity(layers.len()),
        }
    }

    fn apply(&mut self, layer: LayerId, linear: &Linear, input: Tensor<3>) -> Tensor<3> {
        let output = linear.forward(input.clone());
        if !self.layers.contains(&layer) {
            return output;
        }
        let probe = Tensor::zeros(output.dims(), &output.device()).require_grad();
        self.records.push(TapRecord {
            layer,
            input: input.detach(),
            probe: probe.clone(),
        });
        output + probe
    }
}

impl Block {
    fn forward(&self, x: Tensor<3>, index: usize, taps: &mut Option<&mut Taps>) -> Tensor<3> {
        let [batch, seq, d_model] = x.dims();
        let heads = self.n_heads;
        let d_head = d_model / heads;
        let id = |kind| LayerId::Block { block: index, kind };

        let h = self.ln1.forward(x.clone());
        let qkv = linear(&self.qkv, h, id(LinearKind::Qkv), taps);
        let split = |i: usize| {
            qkv.clone()
                .narrow(2, i * d_model, d_model)
                .reshape([batch, seq, heads, d_head])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = q.matmul(k.swap_dims(2, 3)) / (d_head as f64).sqrt();
        let mask = Tensor::<2, Bool>::tril_mask([seq, seq], 0, &scores.device())
            .unsqueeze_dims::<4>(&[0, 1])
            .expand([batch, heads, seq, seq]);
        let attention = softmax(scores.mask_fill(mask, f32::NEG_INFINITY), 3);
        let mixed = attention
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([batch, seq, d_model]);
        let x = x + linear(&self.attn_out, mixed, id(LinearKind::AttnOut), taps);

        let h = self.ln2.forward(x.clone());
        let h = linear(&self.fc1, h, id(LinearKind::Fc1), taps);
        let h = self.gelu.forward(h);
        x + linear(&self.fc2, h, id(LinearKind::Fc2), taps)
    }
}

fn linear(
    linear: &Linear,
    input: Tensor<3>,
    layer: LayerId,
    taps: &mut Option<&mut Taps>,
) -> Tensor<3> {
    match taps {
        Some(taps) => taps.apply(layer, linear, input),
        None => linear.forward(input),
    }
}

impl Lm {
    /// Logits `[batch, seq, vocab]` for token ids `[batch, seq]` (seq ≤ context).
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.forward_tapped(tokens, None)
    }

    /// [`Lm::forward`], recording and probing the layers `taps` names.
    pub fn forward_tapped(&self, tokens: Tensor<2, Int>, mut taps: Option<&mut Taps>) -> Tensor<3> {
        let [batch, seq] = tokens.dims();
        let device = tokens.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device)
            .unsqueeze_dim::<2>(0)
            .expand([batch, seq]);
        let mut x =
            self.token_embedding.forward(tokens) + self.position_embedding.forward(positions);
        for (index, block) in self.blocks.iter().enumerate() {
            x = block.forward(x, index, &mut taps);
        }
        let x = self.ln_f.forward(x);
        linear(&self.head, x, LayerId::Head, &mut taps)
    }

    /// Per-token negative log-likelihood `[batch, seq]` of `targets` under `logits`.
    pub fn token_nll(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
        let log_probs = log_softmax(logits, 2);
        log_probs
            .gather(2, targets.unsqueeze_dim::<3>(2))
            .squeeze_dim::<2>(2)
            .neg()
    }

    /// The weighted loss `Σ_b Σ_t weights[b,t] · nll[b,t]` and the per-example losses `[batch]`.
    ///
    /// Summing (not averaging) over the batch keeps each example's gradient independent of
    /// the batch it was computed in.
    pub fn weighted_loss(
        &self,
        inputs: Tensor<2, Int>,
        targets: Tensor<2, Int>,
        weights: Tensor<2>,
        taps: Option<&mut Taps>,
    ) -> (Tensor<1>, Tensor<1>) {
        let logits = self.forward_tapped(inputs, taps);
        let per_example = (Self::token_nll(logits, targets) * weights)
            .sum_dim(1)
            .squeeze_dim::<1>(1);
        (per_example.clone().sum(), per_example)
    }

    /// The weight matrix `[d_in, d_out]` of a linear layer.
    pub fn layer_weight(&self, layer: LayerId) -> Tensor<2> {
        let linear = match layer {
            LayerId::Head => &self.head,
            LayerId::Block { block, kind } => {
                let b = &self.blocks[block];
                match kind {
                    LinearKind::Qkv => &b.qkv,
                    LinearKind::AttnOut => &b.attn_out,
                    LinearKind::Fc1 => &b.fc1,
                    LinearKind::Fc2 => &b.fc2,
                }
            }
        };
        linear.weight.val()
    }
}

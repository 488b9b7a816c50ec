//! Generation: seeded sampling with temperature and top-k.

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::Lm;
use crate::tokenizer::{encode, BOS};

/// Sampling settings; a wire type, so the relayer shares it without linking the engine.
pub use tributary_attrib_api::Sampling;

/// Continues `prompt`; returns the completion's bytes (without the prompt).
pub fn generate(
    model: &Lm,
    context: usize,
    prompt: &[u8],
    sampling: &Sampling,
    device: &Device,
) -> Vec<u8> {
    let mut tokens = vec![BOS];
    tokens.extend(encode(prompt));
    let mut rng = ChaCha8Rng::seed_from_u64(sampling.seed);
    let mut completion = Vec::with_capacity(sampling.max_tokens);
    for _ in 0..sampling.max_tokens {
        let window = &tokens[tokens.len().saturating_sub(context)..];
        let input: Vec<i64> = window.iter().map(|&t| t as i64).collect();
        let n = input.len();
        let logits = model
            .forward(Tensor::from_data(TensorData::new(input, [1, n]), device))
            .narrow(1, n - 1, 1);
        let logits: Vec<f32> = logits.into_data().try_to_vec().unwrap_or_default();
        let next = sample(&logits, sampling, &mut rng);
        if next == BOS {
            break;
        }
        tokens.push(next);
        completion.push(next as u8);
    }
    completion
}

/// Picks the next token from `logits`: argmax at temperature 0, else top-k sampling.
fn sample(logits: &[f32], sampling: &Sampling, rng: &mut ChaCha8Rng) -> u32 {
    let mut ranked: Vec<(usize, f32)> = logits.iter().copied().enumerate().collect();
    // Ties broken by token id, so the order never depends on the sort's stability.
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if sampling.temperature <= 0.0 || ranked.len() == 1 {
        return ranked[0].0 as u32;
    }
    if sampling.top_k > 0 {
        ranked.truncate(sampling.top_k);
    }
    let max = ranked[0].1;
    let weights: Vec<f64> = ranked
        .iter()
        .map(|(_, l)| (((l - max) / sampling.temperature) as f64).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut target = rng.random::<f64>() * total;
    for ((token, _), w) in ranked.iter().zip(&weights) {
        if target < *w {
            return *token as u32;
        }
        target -= w;
    }
    ranked[ranked.len() - 1].0 as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_temperature_is_argmax_and_sampling_respects_top_k() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let logits = [0.0, 3.0, 2.5, -1.0];
        let greedy = Sampling {
            temperature: 0.0,
            ..Default::default()
        };
        assert_eq!(sample(&logits, &greedy, &mut rng), 1);
        let top2 = Sampling {
            temperature: 1.0,
            top_k: 2,
            ..Default::default()
        };
        for _ in 0..200 {
            let t = sample(&logits, &top2, &mut rng);
            assert!(t == 1 || t == 2, "token {t} is outside the top 2");
        }
    }
}

#![doc = include_str!("../README.md")]

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tributary_types::{AttributionPacket, DatanetRoot};

/// Sampling settings. The same settings and seed give the same completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sampling {
    /// Tokens (bytes) to generate at most; generation also stops at a document boundary.
    pub max_tokens: usize,
    /// 0 picks the most likely byte every time.
    pub temperature: f32,
    /// Sample among the `top_k` most likely bytes (0: all).
    pub top_k: usize,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            max_tokens: 64,
            temperature: 0.8,
            top_k: 16,
            seed: 0,
        }
    }
}

impl Sampling {
    /// The sampling of paid request `request_id`: the defaults, seeded by the request id. Every
    /// attestor generates with it, so all of them commit the same packet and a payer cannot
    /// steer attestors apart (into a dispute, and a refund) by asking each for other settings.
    pub fn for_paid_request(request_id: u64) -> Self {
        Sampling {
            seed: request_id,
            ..Sampling::default()
        }
    }
}

/// The sampling fields a request may set; each one left out takes its default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SamplingRequest {
    /// Bytes to generate at most (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// Sampling temperature, 0 for greedy (default 0.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Sample among the most likely `top_k` bytes, 0 for all (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// Sampling seed; defaults to `request_id`, else 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl SamplingRequest {
    /// Every field set, to `sampling`'s values.
    pub fn exactly(sampling: &Sampling) -> Self {
        SamplingRequest {
            max_tokens: Some(sampling.max_tokens),
            temperature: Some(sampling.temperature),
            top_k: Some(sampling.top_k),
            seed: Some(sampling.seed),
        }
    }

    /// The fields set to something other than `sampling`'s value, as `name value` pairs.
    pub fn differences_from(&self, sampling: &Sampling) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(v) = self.max_tokens.filter(|v| *v != sampling.max_tokens) {
            out.push(format!("max_tokens {v} (fixed at {})", sampling.max_tokens));
        }
        // Compared bit for bit: the engine samples with exactly this value.
        if let Some(v) = self
            .temperature
            .filter(|v| v.to_bits() != sampling.temperature.to_bits())
        {
            out.push(format!(
                "temperature {v} (fixed at {})",
                sampling.temperature
            ));
        }
        if let Some(v) = self.top_k.filter(|v| *v != sampling.top_k) {
            out.push(format!("top_k {v} (fixed at {})", sampling.top_k));
        }
        if let Some(v) = self.seed.filter(|v| *v != sampling.seed) {
            out.push(format!("seed {v} (fixed at {})", sampling.seed));
        }
        out
    }
}

/// `POST /v1/completions`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompletionRequest {
    /// Name of a served model.
    pub model: String,
    pub prompt: String,
    #[serde(flatten)]
    pub sampling: SamplingRequest,
    /// The paid request on chain. With `model_id` and `model_version` the response carries
    /// the attribution packet.
    #[serde(default)]
    pub request_id: Option<u64>,
    #[serde(default)]
    pub model_id: Option<u64>,
    #[serde(default)]
    pub model_version: Option<u32>,
    /// `trak-logra-v2`, `graddot-logra-v2`, `cosine-logra-v2` (or `preconditioned`,
    /// `grad_dot`, `cosine`, `trak`, `graddot`).
    #[serde(default)]
    pub method: Option<String>,
}

/// A contribution among the highest-scoring ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TopContribution {
    pub contribution_id: u64,
    pub contributor: String,
    pub score: f64,
    /// Its share of the fee in basis points, as the packet's top-k rule gives it; absent when
    /// it gets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_bps: Option<u16>,
    /// The contribution's training window that scored highest: the passage that shaped the
    /// completion most. Absent below the best-ranked few, whose rows alone are scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passage: Option<Passage>,
}

/// One training window of a contribution, by its place among the contribution's windows.
///
/// The engine cuts a document of `L` bytes into windows of `context + 1` tokens (a leading
/// BOS token, then one token per byte) starting every `context` tokens, the last one aligned
/// to the document's end. [`Passage::byte_range`] turns a window back into the bytes it
/// holds, given the contribution's size as the datanet contract records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Passage {
    /// The window's position, from 0.
    pub window: u32,
    /// How many windows the contribution has.
    pub windows: u32,
    /// The model's context, in tokens.
    pub context: u32,
}

impl Passage {
    /// The window's bytes within a contribution of `size` bytes.
    pub fn byte_range(&self, size: u64) -> std::ops::Range<u64> {
        let context = u64::from(self.context);
        let window = u64::from(self.window);
        // The token that starts the window; token t > 0 is byte t - 1.
        let start = if self.windows > 1 && self.window + 1 == self.windows {
            size.saturating_sub(context)
        } else {
            window * context
        };
        let first = start.saturating_sub(1).min(size);
        let end = (start + context).min(size);
        first..end.max(first)
    }
}

/// A contributor's summed score and share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContributorShare {
    pub contributor: String,
    pub score: f64,
    /// Sum of the shares of the contributor's contributions, in basis points.
    pub share_bps: u32,
}

/// The readable part of an attribution: the top contributions and contributors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AttributionSummary {
    /// Method id, e.g. `trak-logra-v2`.
    pub method: String,
    /// Contributions by descending score.
    pub top: Vec<TopContribution>,
    /// Contributors by descending summed score.
    pub contributors: Vec<ContributorShare>,
}

/// The response to `POST /v1/completions` (and `GET /v1/requests/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompletionResponse {
    pub model: String,
    pub request_id: Option<u64>,
    /// The completion as text (invalid UTF-8 replaced).
    pub completion: String,
    /// The completion's exact bytes, hex; the packet's `output_hash` is their SHA-256.
    pub completion_hex: String,
    /// The sampling that produced the completion: with it anyone regenerates it.
    pub sampling: Sampling,
    pub weights_hash: String,
    pub attribution: AttributionSummary,
    /// Present when the request gave `request_id`, `model_id` and `model_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet: Option<AttributionPacket>,
}

/// A served model as `GET /v1/models` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelInfo {
    pub name: String,
    pub weights_hash: String,
    pub index_hash: String,
    pub datanet_roots: Vec<DatanetRoot>,
    /// Context window, in tokens (bytes).
    pub context: usize,
    /// Training examples in the index.
    pub examples: usize,
    /// Contributions of the model's lineage.
    pub contributions: usize,
    /// Method ids the index can score with.
    pub methods: Vec<String>,
    pub default_method: String,
    /// SHA-256 (hex) of each method's parameters with the packet size this engine commits: what
    /// a model version registers as its method's `params_hash`.
    #[serde(default)]
    pub params_hashes: std::collections::BTreeMap<String, String>,
}

/// `GET /v1/models`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelList {
    pub models: Vec<ModelInfo>,
}

/// The body of every refusal: `{"error": "..."}`, with an HTTP status that says whose fault it
/// is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_fields_sit_beside_the_request_fields_on_the_wire() {
        let request: CompletionRequest = serde_json::from_str(
            r#"{"model":"m","prompt":"p","max_tokens":8,"seed":3,"request_id":5}"#,
        )
        .unwrap();
        assert_eq!(request.sampling.max_tokens, Some(8));
        assert_eq!(request.sampling.seed, Some(3));
        assert_eq!(request.sampling.temperature, None);
        assert_eq!(request.request_id, Some(5));
        let again: CompletionRequest =
            serde_json::from_value(serde_json::to_value(&request).unwrap()).unwrap();
        assert_eq!(again, request);
        // Requests written before the fields moved (explicit nulls) still read.
        let old: CompletionRequest = serde_json::from_str(
            r#"{"model":"m","prompt":"p","max_tokens":null,"temperature":null,"top_k":null,"seed":null,"request_id":null,"model_id":null,"model_version":null,"method":null}"#,
        )
        .unwrap();
        assert_eq!(old.sampling, SamplingRequest::default());
    }

    #[test]
    fn a_paid_request_is_seeded_by_its_id_and_differences_are_named() {
        let paid = Sampling::for_paid_request(42);
        assert_eq!(paid.seed, 42);
        assert_eq!(paid.max_tokens, Sampling::default().max_tokens);
        assert!(SamplingRequest::exactly(&paid)
            .differences_from(&paid)
            .is_empty());
        let asked = SamplingRequest {
            max_tokens: Some(16),
            seed: Some(7),
            ..SamplingRequest::default()
        };
        assert_eq!(
            asked.differences_from(&paid),
            vec![
                "max_tokens 16 (fixed at 64)".to_string(),
                "seed 7 (fixed at 42)".to_string()
            ]
        );
    }
}

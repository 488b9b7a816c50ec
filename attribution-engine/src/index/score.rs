//! Scoring: the methods, the prepared query, and the scans over contribution sums (every
//! contribution's score) and over rows (the scores of single examples, for passages).
//!
//! A score is `Σ_c ⟨x_c, p_c⟩` over the checkpoints `c` in order, where `p_c` is the prepared
//! query (see [`Method`]) and `x_c` a stored vector: a contribution's row sum (its unit-row sum
//! for cosine), or one example's row (divided by the row's norm for cosine). Every dot product
//! is the fixed-order one of [`super::kernel`], every prepared value an f32, and no score
//! depends on another: work is split into fixed-size chunks and the results are put back in
//! order, so neither the kernel nor the number of threads changes a bit.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::kernel::dot_f32s;
use super::{GradientIndex, IndexError};

/// Examples scored per parallel task of a row scan.
const EXAMPLE_CHUNK: usize = 1024;

/// Contributions scored per parallel task.
const CONTRIBUTION_CHUNK: usize = 64;

/// Preconditioner rows per parallel task when a query is preconditioned.
const PRECONDITIONER_CHUNK: usize = 64;

/// How scores are computed from projected gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// TRAK-style: the query preconditioned by the inverse damped Fisher, dotted with each row.
    Preconditioned,
    /// Plain dot product of query and row.
    GradDot,
    /// Cosine similarity of query and row (LESS-style).
    Cosine,
}

impl Method {
    /// Every method, in a stable order.
    pub const ALL: [Method; 3] = [Method::Preconditioned, Method::GradDot, Method::Cosine];

    /// The versioned identifier recorded with attributions. Version 2 scores a contribution
    /// from its stored row sums (see [`super::contributions`]); its bits differ from
    /// version 1's sums of per-example scores, which this build no longer computes.
    pub fn id(&self) -> &'static str {
        match self {
            Method::Preconditioned => "trak-logra-v2",
            Method::GradDot => "graddot-logra-v2",
            Method::Cosine => "cosine-logra-v2",
        }
    }

    /// The snake-case name (`preconditioned`, `grad_dot`, `cosine`).
    pub fn name(&self) -> &'static str {
        match self {
            Method::Preconditioned => "preconditioned",
            Method::GradDot => "grad_dot",
            Method::Cosine => "cosine",
        }
    }

    /// Parses either [`Method::id`] or [`Method::name`].
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.id() == s || m.name() == s)
    }
}

/// A query ready to be dotted with stored vectors: per checkpoint, `F⁻¹ q`, `q` or `q / |q|`,
/// every value an f32 (held as f64, so every product with a stored value is exact).
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedQuery {
    method: Method,
    checkpoints: Vec<Vec<f64>>,
}

impl PreparedQuery {
    /// The method the query was prepared for.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The prepared vector of each checkpoint.
    pub fn vectors(&self) -> &[Vec<f64>] {
        &self.checkpoints
    }
}

impl GradientIndex {
    /// Checks a query (`query[c]`: its projected gradient at checkpoint `c`, `dim` finite
    /// values) and prepares it for `method`.
    pub fn prepare(&self, query: &[Vec<f32>], method: Method) -> Result<PreparedQuery, IndexError> {
        let c_count = self.n_checkpoints();
        if query.len() != c_count {
            return Err(IndexError::BadQuery {
                reason: format!(
                    "the query has gradients for {} checkpoints, the index has {c_count}",
                    query.len()
                ),
            });
        }
        for (c, g) in query.iter().enumerate() {
            if g.len() != self.dim {
                return Err(IndexError::BadQuery {
                    reason: format!(
                        "checkpoint {c} of the query has {} values, the index rows have {}",
                        g.len(),
                        self.dim
                    ),
                });
            }
            if let Some(v) = g.iter().find(|v| !v.is_finite()) {
                return Err(IndexError::BadQuery {
                    reason: format!("checkpoint {c} of the query contains {v}"),
                });
            }
        }
        let checkpoints = self.install(|| {
            query
                .iter()
                .enumerate()
                .map(|(c, q)| self.prepare_checkpoint(c, q, method))
                .collect()
        });
        Ok(PreparedQuery {
            method,
            checkpoints,
        })
    }

    /// The vector each stored vector of `checkpoint` is dotted with.
    pub(super) fn prepare_checkpoint(
        &self,
        checkpoint: usize,
        q: &[f32],
        method: Method,
    ) -> Vec<f64> {
        match method {
            Method::GradDot => q.iter().map(|&v| f64::from(v)).collect(),
            Method::Cosine => {
                let norm = dot_f32s(q, q).sqrt();
                q.iter()
                    .map(|&v| {
                        if norm > 0.0 {
                            f64::from((f64::from(v) / norm) as f32)
                        } else {
                            0.0
                        }
                    })
                    .collect()
            }
            Method::Preconditioned => {
                let p = &self.preconditioners[checkpoint];
                let q64: Vec<f64> = q.iter().map(|&v| f64::from(v)).collect();
                // (layer offset, width, byte offset of the layer's matrix, row) per output.
                let mut rows = Vec::with_capacity(self.dim);
                let mut base = 0;
                for &(offset, k) in &self.blocks {
                    rows.extend((0..k).map(|r| (offset, k, base, r)));
                    base += k * k * 4;
                }
                let kernel = self.kernel;
                let parts: Vec<Vec<f64>> = rows
                    .par_chunks(PRECONDITIONER_CHUNK)
                    .map(|chunk| {
                        chunk
                            .iter()
                            .map(|&(offset, k, base, r)| {
                                let row = &p[base + r * k * 4..base + (r + 1) * k * 4];
                                let v = kernel.dot_f32(row, &q64[offset..offset + k]);
                                f64::from(v as f32)
                            })
                            .collect()
                    })
                    .collect();
                parts.concat()
            }
        }
    }

    /// Every contribution's score, in the order of [`GradientIndex::contributions`]: its
    /// stored sums dotted with the prepared query, summed over checkpoints.
    pub fn contribution_scores(&self, query: &PreparedQuery) -> Vec<f64> {
        let maps = if query.method == Method::Cosine {
            &self.unit_sums
        } else {
            &self.sums
        };
        let width = self.dim * 4;
        let kernel = self.kernel;
        let m = self.contributions.len();
        let parts: Vec<Vec<f64>> = self.install(|| {
            (0..m.div_ceil(CONTRIBUTION_CHUNK))
                .into_par_iter()
                .map(|chunk| {
                    let start = chunk * CONTRIBUTION_CHUNK;
                    (start..m.min(start + CONTRIBUTION_CHUNK))
                        .map(|j| {
                            let mut score = 0.0;
                            for (map, q) in maps.iter().zip(&query.checkpoints) {
                                score += kernel.dot_f32(&map[j * width..(j + 1) * width], q);
                            }
                            score
                        })
                        .collect()
                })
                .collect()
        });
        parts.concat()
    }

    /// One example's score: its rows dotted with the prepared query, summed over checkpoints.
    fn example_score(&self, query: &PreparedQuery, example: usize) -> f64 {
        let cosine = query.method == Method::Cosine;
        let mut score = 0.0;
        for (c, q) in query.checkpoints.iter().enumerate() {
            let row = self.row_bytes(c, example);
            let d = self.kernel.dot_f16(row, q);
            score += if !cosine {
                d
            } else {
                let norm = self.kernel.norm_sq_f16(row).sqrt();
                if norm > 0.0 {
                    d / norm
                } else {
                    0.0
                }
            };
        }
        score
    }

    /// Every example's score, in example order: a full scan of the rows.
    pub fn example_scores(&self, query: &PreparedQuery) -> Vec<f64> {
        let n = self.n;
        let parts: Vec<Vec<f64>> = self.install(|| {
            (0..n.div_ceil(EXAMPLE_CHUNK))
                .into_par_iter()
                .map(|chunk| {
                    let start = chunk * EXAMPLE_CHUNK;
                    (start..n.min(start + EXAMPLE_CHUNK))
                        .map(|e| self.example_score(query, e))
                        .collect()
                })
                .collect()
        });
        parts.concat()
    }

    /// For each contribution position given, its highest-scoring example and that score
    /// (ties go to the lower example); only those contributions' rows are read.
    pub fn best_examples(
        &self,
        query: &PreparedQuery,
        positions: &[usize],
    ) -> Vec<Option<(usize, f64)>> {
        let m = self.contributions.len();
        self.install(|| {
            positions
                .par_iter()
                .map(|&position| {
                    if position >= m {
                        return None;
                    }
                    let mut best: Option<(usize, f64)> = None;
                    for &e in self.contributions.examples(position) {
                        let s = self.example_score(query, e);
                        if best.is_none_or(|(_, b)| s > b) {
                            best = Some((e, s));
                        }
                    }
                    best
                })
                .collect()
        })
    }

    /// Per-example scores of one query (a full scan; see [`GradientIndex::example_scores`]).
    pub fn score(&self, query: &[Vec<f32>], method: Method) -> Result<Vec<f64>, IndexError> {
        Ok(self.example_scores(&self.prepare(query, method)?))
    }

    /// Per-contribution scores of one query (see [`GradientIndex::contribution_scores`]).
    pub fn score_contributions(
        &self,
        query: &[Vec<f32>],
        method: Method,
    ) -> Result<Vec<f64>, IndexError> {
        Ok(self.contribution_scores(&self.prepare(query, method)?))
    }
}

//! The damped empirical Fisher of each layer's block, and its inverse: the TRAK preconditioner.

use nalgebra::DMatrix;
use rayon::prelude::*;

use super::IndexError;
use crate::projection::LayerSpec;

/// Rows gathered before they are folded into the Fisher with one matrix product.
const FISHER_BATCH: usize = 256;

/// The running Fisher estimate of one checkpoint.
pub(super) struct Fisher {
    blocks: Vec<(usize, usize)>,
    dim: usize,
    /// Per layer, `Σ g gᵀ` over the sampled rows folded in so far.
    sums: Vec<DMatrix<f64>>,
    /// Sampled rows not yet folded in, row-major.
    pending: Vec<f32>,
    sampled: u64,
}

impl Fisher {
    pub(super) fn new(blocks: &[(usize, usize)], dim: usize) -> Fisher {
        Fisher {
            blocks: blocks.to_vec(),
            dim,
            sums: blocks.iter().map(|&(_, k)| DMatrix::zeros(k, k)).collect(),
            pending: Vec::with_capacity(FISHER_BATCH * dim),
            sampled: 0,
        }
    }

    pub(super) fn add_row(&mut self, row: &[f32]) {
        self.pending.extend_from_slice(row);
        self.sampled += 1;
        if self.pending.len() >= FISHER_BATCH * self.dim {
            self.fold();
        }
    }

    /// Folds the pending rows into the sums with one matrix product per layer.
    fn fold(&mut self) {
        let rows = self.pending.len() / self.dim;
        if rows == 0 {
            return;
        }
        let (pending, dim) = (&self.pending, self.dim);
        self.sums
            .par_iter_mut()
            .zip(self.blocks.par_iter())
            .for_each(|(sum, &(offset, k))| {
                // `x` is k × rows (one column per row), `xt` its transpose.
                let x = DMatrix::<f64>::from_fn(k, rows, |j, r| {
                    f64::from(pending[r * dim + offset + j])
                });
                let xt = x.transpose();
                sum.gemm(1.0, &x, &xt, 1.0);
            });
        self.pending.clear();
    }

    /// `(F + λI)⁻¹` per layer, as row-major little-endian f32 bytes, layers concatenated.
    pub(super) fn inverse_bytes(
        mut self,
        checkpoint: usize,
        layers: &[LayerSpec],
        damping: f32,
    ) -> Result<Vec<u8>, IndexError> {
        self.fold();
        let n = self.sampled.max(1) as f64;
        let damping = f64::from(damping);
        let inverses: Vec<Result<Vec<u8>, IndexError>> = self
            .sums
            .into_par_iter()
            .zip(layers.par_iter())
            .map(|(sum, layer)| {
                let k = sum.nrows();
                let mut f = sum / n;
                let trace = f.trace();
                let lambda = if trace > 0.0 {
                    damping * trace / k as f64
                } else {
                    damping
                };
                for i in 0..k {
                    f[(i, i)] += lambda;
                }
                let inverse = f
                    .cholesky()
                    .ok_or_else(|| IndexError::Singular {
                        checkpoint,
                        layer: layer.layer.name(),
                    })?
                    .inverse();
                let mut bytes = Vec::with_capacity(k * k * 4);
                for r in 0..k {
                    for c in 0..k {
                        let v = 0.5 * (inverse[(r, c)] + inverse[(c, r)]);
                        bytes.extend_from_slice(&(v as f32).to_le_bytes());
                    }
                }
                Ok(bytes)
            })
            .collect();
        let mut out = Vec::new();
        for bytes in inverses {
            out.extend_from_slice(&bytes?);
        }
        Ok(out)
    }
}

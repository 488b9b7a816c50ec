//! Contributions as the index sees them: the distinct contribution ids of the examples, each
//! with its examples, and the per-contribution sums of their rows that scoring reads instead
//! of the rows.
//!
//! Every method's contribution score is linear in a sum of the contribution's rows: the sum
//! of the rows for `graddot` and `trak` (`Σ_i ⟨g_i, p⟩ = ⟨Σ_i g_i, p⟩`), the sum of the
//! unit-normalized rows for `cosine`. So the index stores, per checkpoint and contribution
//! (in ascending id order), both sums as little-endian f32, and a query reads
//! `contributions × dim` values per checkpoint instead of `examples × dim`.
//!
//! Both sums are fixed functions of the stored f16 rows, which anyone can recompute:
//!
//! - the row sum is exact: every f16 is an integer multiple of 2⁻²⁴, so the rows are added as
//!   integers and the exact sum is rounded to f32 once;
//! - a row's norm is the square root of its sum of squares, added in the fixed order of
//!   [`super::kernel`]; each value divided by the norm (f64) is added in example order in
//!   f64, and the sum rounded to f32. A zero row adds nothing.

use rayon::prelude::*;

use super::kernel::Kernel;

/// Contributions handled per parallel task when computing sums (results do not depend on it).
const SUMS_CHUNK: usize = 64;

/// The distinct contribution ids of an index's examples, ascending, each with its examples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contributions {
    ids: Vec<u64>,
    /// `examples[offsets[j]..offsets[j + 1]]` are contribution `j`'s examples, ascending.
    offsets: Vec<usize>,
    examples: Vec<usize>,
}

impl Contributions {
    /// Groups examples (one contribution id each, in example order) by contribution.
    pub fn group(example_ids: &[u64]) -> Contributions {
        let mut order: Vec<usize> = (0..example_ids.len()).collect();
        order.sort_by_key(|&i| (example_ids[i], i));
        let mut ids = Vec::new();
        let mut offsets = Vec::new();
        for (at, &i) in order.iter().enumerate() {
            if ids.last() != Some(&example_ids[i]) {
                ids.push(example_ids[i]);
                offsets.push(at);
            }
        }
        offsets.push(order.len());
        Contributions {
            ids,
            offsets,
            examples: order,
        }
    }

    /// The contribution ids, ascending.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// Number of contributions.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The position of contribution `id` in [`Contributions::ids`].
    pub fn position(&self, id: u64) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    /// The examples of the contribution at `position`, ascending.
    pub fn examples(&self, position: usize) -> &[usize] {
        &self.examples[self.offsets[position]..self.offsets[position + 1]]
    }
}

/// An f16 value in units of 2⁻²⁴ (every finite f16 is an integer number of them).
fn f16_units(bits: u16) -> i64 {
    let exponent = (bits >> 10) & 0x1f;
    let mantissa = i64::from(bits & 0x3ff);
    let magnitude = if exponent == 0 {
        mantissa
    } else {
        (1024 + mantissa) << (exponent - 1)
    };
    if bits & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

fn bits_at(row: &[u8], j: usize) -> u16 {
    u16::from_le_bytes([row[2 * j], row[2 * j + 1]])
}

/// 2⁻²⁴, the unit of [`f16_units`].
const UNIT: f64 = 1.0 / 16_777_216.0;

/// Both sums of the contributions at `positions` (rows of `dim` f16 values in `rows`): the row
/// sums and the unit-row sums, each `positions.len() × dim` little-endian f32.
pub fn sums(
    contributions: &Contributions,
    positions: std::ops::Range<usize>,
    rows: &[u8],
    dim: usize,
    kernel: Kernel,
) -> (Vec<u8>, Vec<u8>) {
    let parts: Vec<(Vec<u8>, Vec<u8>)> = positions
        .collect::<Vec<_>>()
        .par_chunks(SUMS_CHUNK)
        .map(|chunk| {
            let mut sums = Vec::with_capacity(chunk.len() * dim * 4);
            let mut units = Vec::with_capacity(chunk.len() * dim * 4);
            let mut exact = vec![0i128; dim];
            let mut unit = vec![0f64; dim];
            for &position in chunk {
                exact.fill(0);
                unit.fill(0.0);
                for &example in contributions.examples(position) {
                    let row = &rows[example * dim * 2..(example + 1) * dim * 2];
                    let norm = kernel.norm_sq_f16(row).sqrt();
                    for j in 0..dim {
                        let u = f16_units(bits_at(row, j));
                        exact[j] += i128::from(u);
                        if norm > 0.0 {
                            unit[j] += (u as f64) * UNIT / norm;
                        }
                    }
                }
                for &e in &exact {
                    sums.extend_from_slice(&((e as f32) * UNIT as f32).to_le_bytes());
                }
                for &u in &unit {
                    units.extend_from_slice(&(u as f32).to_le_bytes());
                }
            }
            (sums, units)
        })
        .collect();
    let mut sums = Vec::new();
    let mut units = Vec::new();
    for (s, u) in parts {
        sums.extend_from_slice(&s);
        units.extend_from_slice(&u);
    }
    (sums, units)
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    #[test]
    fn f16_units_are_exact() {
        for bits in 0..=u16::MAX {
            let h = f16::from_bits(bits);
            if h.is_finite() {
                assert_eq!(
                    f16_units(bits) as f64 * UNIT,
                    f64::from(h.to_f32()),
                    "{bits:#06x}"
                );
            }
        }
    }

    #[test]
    fn grouping_keeps_example_order_within_a_contribution() {
        let c = Contributions::group(&[7, 3, 7, 9, 3, 7]);
        assert_eq!(c.ids(), &[3, 7, 9]);
        assert_eq!(c.examples(0), &[1, 4]);
        assert_eq!(c.examples(1), &[0, 2, 5]);
        assert_eq!(c.examples(2), &[3]);
        assert_eq!((c.position(9), c.position(4)), (Some(2), None));
    }

    #[test]
    fn sums_are_exact_and_unit_sums_normalize_each_row() {
        // Two rows of one contribution whose f32 sum would lose the small value.
        let row = |v: &[f32]| -> Vec<u8> {
            v.iter()
                .flat_map(|&x| f16::from_f32(x).to_bits().to_le_bytes())
                .collect()
        };
        let mut rows = row(&[60000.0, 3.0, 0.0]);
        rows.extend(row(&[-60000.0, 4.0, 0.0]));
        rows.extend(row(&[0.0, 0.0, 0.0]));
        let c = Contributions::group(&[5, 5, 5]);
        let (sums, units) = sums(&c, 0..1, &rows, 3, Kernel::Scalar);
        let f = |b: &[u8], j: usize| f32::from_le_bytes(b[4 * j..4 * j + 4].try_into().unwrap());
        assert_eq!((f(&sums, 0), f(&sums, 1), f(&sums, 2)), (0.0, 7.0, 0.0));
        let (n1, n2) = ((3.6e9f64 + 9.0).sqrt(), (3.6e9f64 + 16.0).sqrt());
        assert_eq!(f(&units, 0), (60000.0 / n1 - 60000.0 / n2) as f32);
        assert_eq!(f(&units, 1), (3.0 / n1 + 4.0 / n2) as f32);
    }
}

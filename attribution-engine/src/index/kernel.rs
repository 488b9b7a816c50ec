//! The dot products every score is made of, with one summation order on every path.
//!
//! A score is a sum of dot products between stored values (f16 rows, f32 contribution sums,
//! f32 preconditioner rows) and a prepared query whose values are all f32 numbers held in f64.
//! Every product of an f16 or f32 with an f32 is exact in f64 (at most 48 significant bits),
//! so the only roundings are the additions, and those happen in one fixed order:
//!
//! - element `j` is added to lane `j % 16` of sixteen f64 partial sums, in increasing `j`;
//! - the lanes are combined in a fixed tree: `l[i] += l[i + 8]` for `i < 8`, then `+ 4`,
//!   `+ 2`, `+ 1`; `l[0]` is the result.
//!
//! A squared norm of an f16 row adds its (exact) squares in the same order.
//!
//! The scalar reference does exactly that; the AVX kernel keeps the sixteen lanes in four
//! registers of four f64 and does the same additions, element for element, so both give the
//! same bits (fused multiply-adds would not change them either, the products being exact).
//! f16 to f32 conversion is exact on every path.

use half::f16;

use super::IndexError;

/// Environment variable that forces the scan kernel: `scalar`, `simd` or `auto`.
pub const KERNEL_ENV: &str = "TRIBUTARY_SCAN_KERNEL";

/// Environment variable that sets the number of scan threads (a positive integer).
pub const THREADS_ENV: &str = "TRIBUTARY_SCAN_THREADS";

/// Number of partial sums of a dot product.
pub const LANES: usize = 16;

/// Which kernel computes the dot products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Portable Rust, one element at a time: the reference.
    Scalar,
    /// x86-64 AVX with F16C, four f64 lanes per register.
    Simd,
}

/// The kernel a scan is asked to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KernelChoice {
    /// The SIMD kernel where the CPU has it, the scalar one elsewhere.
    #[default]
    Auto,
    /// Always the scalar reference.
    Scalar,
    /// The SIMD kernel, or an error where the CPU lacks it.
    Simd,
}

impl KernelChoice {
    /// Parses `auto`, `scalar` or `simd`.
    pub fn parse(s: &str) -> Option<KernelChoice> {
        match s.trim() {
            "auto" => Some(KernelChoice::Auto),
            "scalar" => Some(KernelChoice::Scalar),
            "simd" => Some(KernelChoice::Simd),
            _ => None,
        }
    }

    /// The kernel this choice runs on this CPU.
    pub fn resolve(self) -> Result<Kernel, IndexError> {
        match self {
            KernelChoice::Scalar => Ok(Kernel::Scalar),
            KernelChoice::Auto if Kernel::simd_available() => Ok(Kernel::Simd),
            KernelChoice::Auto => Ok(Kernel::Scalar),
            KernelChoice::Simd if Kernel::simd_available() => Ok(Kernel::Simd),
            KernelChoice::Simd => Err(IndexError::ScanConfig {
                reason: "the SIMD scan kernel needs x86-64 AVX and F16C, which this CPU lacks"
                    .into(),
            }),
        }
    }
}

/// How a scan runs: which kernel and how many threads. Neither changes a single bit of a score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanConfig {
    /// The kernel.
    pub kernel: KernelChoice,
    /// Threads of a pool of the index's own; `None` runs on rayon's global pool.
    pub threads: Option<usize>,
}

impl ScanConfig {
    /// The configuration [`KERNEL_ENV`] and [`THREADS_ENV`] ask for (the defaults where unset).
    pub fn from_env() -> Result<ScanConfig, IndexError> {
        let mut config = ScanConfig::default();
        if let Ok(value) = std::env::var(KERNEL_ENV) {
            config.kernel = KernelChoice::parse(&value).ok_or_else(|| IndexError::ScanConfig {
                reason: format!("{KERNEL_ENV}={value:?}: expected `scalar`, `simd` or `auto`"),
            })?;
        }
        if let Ok(value) = std::env::var(THREADS_ENV) {
            match value.trim().parse::<usize>() {
                Ok(n) if n > 0 => config.threads = Some(n),
                _ => {
                    return Err(IndexError::ScanConfig {
                        reason: format!("{THREADS_ENV}={value:?}: expected a positive integer"),
                    })
                }
            }
        }
        Ok(config)
    }
}

impl Kernel {
    /// Whether this CPU runs the SIMD kernel.
    pub fn simd_available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx")
                && std::arch::is_x86_feature_detected!("f16c")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Dot product of a row of little-endian f16 values with `q` (`row.len() == 2 * q.len()`).
    pub fn dot_f16(self, row: &[u8], q: &[f64]) -> f64 {
        assert_eq!(row.len(), 2 * q.len(), "f16 row and query widths differ");
        match self {
            Kernel::Scalar => scalar::dot_f16(row, q),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a `Kernel::Simd` is only made by `KernelChoice::resolve`, after checking
            // that the CPU has AVX and F16C; the lengths are checked above.
            Kernel::Simd => unsafe { avx::dot_f16(row, q) },
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Simd => scalar::dot_f16(row, q),
        }
    }

    /// Squared euclidean norm of a row of little-endian f16 values, summed in the same order
    /// as a dot product (every square is exact in f64).
    pub fn norm_sq_f16(self, row: &[u8]) -> f64 {
        assert_eq!(row.len() % 2, 0, "an f16 row has an even number of bytes");
        match self {
            Kernel::Scalar => scalar::norm_sq_f16(row),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `dot_f16`.
            Kernel::Simd => unsafe { avx::norm_sq_f16(row) },
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Simd => scalar::norm_sq_f16(row),
        }
    }

    /// Dot product of a row of little-endian f32 values with `q` (`row.len() == 4 * q.len()`).
    pub fn dot_f32(self, row: &[u8], q: &[f64]) -> f64 {
        assert_eq!(row.len(), 4 * q.len(), "f32 row and query widths differ");
        match self {
            Kernel::Scalar => scalar::dot_f32(row, q),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `dot_f16`.
            Kernel::Simd => unsafe { avx::dot_f32(row, q) },
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Simd => scalar::dot_f32(row, q),
        }
    }
}

/// Combines the lanes in the fixed tree.
fn combine(mut lanes: [f64; LANES]) -> f64 {
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
        width /= 2;
    }
    lanes[0]
}

/// The value of the little-endian f16 at `bytes[2 j..2 j + 2]`, exactly.
pub fn f16_at(bytes: &[u8], j: usize) -> f64 {
    f64::from(f16::from_bits(u16::from_le_bytes([bytes[2 * j], bytes[2 * j + 1]])).to_f32())
}

/// The value of the little-endian f32 at `bytes[4 j..4 j + 4]`.
pub fn f32_at(bytes: &[u8], j: usize) -> f64 {
    f64::from(f32::from_le_bytes([
        bytes[4 * j],
        bytes[4 * j + 1],
        bytes[4 * j + 2],
        bytes[4 * j + 3],
    ]))
}

/// Dot product of two f32 vectors in the same order (for query norms).
pub fn dot_f32s(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0f64; LANES];
    for (j, (&x, &y)) in a.iter().zip(b).enumerate() {
        lanes[j % LANES] += f64::from(x) * f64::from(y);
    }
    combine(lanes)
}

mod scalar {
    use super::{combine, f16_at, f32_at, LANES};

    pub fn dot_f16(row: &[u8], q: &[f64]) -> f64 {
        let mut lanes = [0f64; LANES];
        for (j, &y) in q.iter().enumerate() {
            lanes[j % LANES] += f16_at(row, j) * y;
        }
        combine(lanes)
    }

    pub fn dot_f32(row: &[u8], q: &[f64]) -> f64 {
        let mut lanes = [0f64; LANES];
        for (j, &y) in q.iter().enumerate() {
            lanes[j % LANES] += f32_at(row, j) * y;
        }
        combine(lanes)
    }

    pub fn norm_sq_f16(row: &[u8]) -> f64 {
        let mut lanes = [0f64; LANES];
        for j in 0..row.len() / 2 {
            let x = f16_at(row, j);
            lanes[j % LANES] += x * x;
        }
        combine(lanes)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    use super::{combine, f16_at, f32_at, LANES};

    /// Adds `x * q[base..base + 16]` (x as four registers of four f64) to the accumulators.
    #[inline]
    #[target_feature(enable = "avx")]
    unsafe fn accumulate(acc: &mut [__m256d; 4], x: [__m256d; 4], q: *const f64) {
        for (r, (a, x)) in acc.iter_mut().zip(x).enumerate() {
            *a = _mm256_add_pd(*a, _mm256_mul_pd(x, _mm256_loadu_pd(q.add(4 * r))));
        }
    }

    /// Eight f32 as two registers of four f64 (elements 0..4, then 4..8).
    #[inline]
    #[target_feature(enable = "avx")]
    unsafe fn widen(v: __m256) -> [__m256d; 2] {
        [
            _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)),
        ]
    }

    /// The accumulators as the sixteen lanes of the scalar reference.
    #[inline]
    #[target_feature(enable = "avx")]
    unsafe fn lanes(acc: [__m256d; 4]) -> [f64; LANES] {
        let mut lanes = [0f64; LANES];
        for (r, a) in acc.into_iter().enumerate() {
            _mm256_storeu_pd(lanes.as_mut_ptr().add(4 * r), a);
        }
        lanes
    }

    /// # Safety
    /// The CPU must have AVX and F16C, and `row.len() == 2 * q.len()`.
    #[target_feature(enable = "avx,f16c")]
    pub unsafe fn dot_f16(row: &[u8], q: &[f64]) -> f64 {
        let n = q.len();
        let blocks = n / LANES;
        let mut acc = [_mm256_setzero_pd(); 4];
        for b in 0..blocks {
            let p = row.as_ptr().add(b * 2 * LANES);
            let lo = _mm256_cvtph_ps(_mm_loadu_si128(p.cast()));
            let hi = _mm256_cvtph_ps(_mm_loadu_si128(p.add(16).cast()));
            let [x0, x1] = widen(lo);
            let [x2, x3] = widen(hi);
            accumulate(&mut acc, [x0, x1, x2, x3], q.as_ptr().add(b * LANES));
        }
        let mut lanes = lanes(acc);
        for (j, &y) in q.iter().enumerate().skip(blocks * LANES) {
            lanes[j % LANES] += f16_at(row, j) * y;
        }
        combine(lanes)
    }

    /// # Safety
    /// The CPU must have AVX and F16C, and `row.len()` must be even.
    #[target_feature(enable = "avx,f16c")]
    pub unsafe fn norm_sq_f16(row: &[u8]) -> f64 {
        let n = row.len() / 2;
        let blocks = n / LANES;
        let mut acc = [_mm256_setzero_pd(); 4];
        for b in 0..blocks {
            let p = row.as_ptr().add(b * 2 * LANES);
            let lo = _mm256_cvtph_ps(_mm_loadu_si128(p.cast()));
            let hi = _mm256_cvtph_ps(_mm_loadu_si128(p.add(16).cast()));
            let [x0, x1] = widen(lo);
            let [x2, x3] = widen(hi);
            for (a, x) in acc.iter_mut().zip([x0, x1, x2, x3]) {
                *a = _mm256_add_pd(*a, _mm256_mul_pd(x, x));
            }
        }
        let mut lanes = lanes(acc);
        for j in blocks * LANES..n {
            let x = f16_at(row, j);
            lanes[j % LANES] += x * x;
        }
        combine(lanes)
    }

    /// # Safety
    /// The CPU must have AVX, and `row.len() == 4 * q.len()`.
    #[target_feature(enable = "avx")]
    pub unsafe fn dot_f32(row: &[u8], q: &[f64]) -> f64 {
        let n = q.len();
        let blocks = n / LANES;
        let mut acc = [_mm256_setzero_pd(); 4];
        for b in 0..blocks {
            let p = row.as_ptr().add(b * 4 * LANES).cast::<f32>();
            let [x0, x1] = widen(_mm256_loadu_ps(p));
            let [x2, x3] = widen(_mm256_loadu_ps(p.add(8)));
            accumulate(&mut acc, [x0, x1, x2, x3], q.as_ptr().add(b * LANES));
        }
        let mut lanes = lanes(acc);
        for (j, &y) in q.iter().enumerate().skip(blocks * LANES) {
            lanes[j % LANES] += f32_at(row, j) * y;
        }
        combine(lanes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn f16_bytes(values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_bits().to_le_bytes())
            .collect()
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn simd_and_scalar_dots_agree_bit_for_bit() {
        if !Kernel::simd_available() {
            eprintln!("SIMD kernel unavailable on this CPU: only the scalar path is checked");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        // Widths around the lane count, with tiny, huge and subnormal f16 values mixed in.
        for n in [0, 1, 7, 15, 16, 17, 31, 32, 33, 100, 1024, 4099] {
            let row: Vec<f32> = (0..n)
                .map(|j| match j % 5 {
                    0 => rng.random_range(-1.0f32..1.0) * 6.0e4,
                    1 => rng.random_range(-1.0f32..1.0) * 1.0e-7,
                    _ => rng.random_range(-1.0f32..1.0),
                })
                .collect();
            let q: Vec<f64> = (0..n)
                .map(|_| f64::from(rng.random_range(-1.0f32..1.0) * 1.0e3))
                .collect();
            let (h, s) = (f16_bytes(&row), f32_bytes(&row));
            let scalar = (
                Kernel::Scalar.dot_f16(&h, &q),
                Kernel::Scalar.dot_f32(&s, &q),
            );
            if Kernel::simd_available() {
                let simd = (Kernel::Simd.dot_f16(&h, &q), Kernel::Simd.dot_f32(&s, &q));
                assert_eq!(scalar.0.to_bits(), simd.0.to_bits(), "f16, n = {n}");
                assert_eq!(scalar.1.to_bits(), simd.1.to_bits(), "f32, n = {n}");
                assert_eq!(
                    Kernel::Scalar.norm_sq_f16(&h).to_bits(),
                    Kernel::Simd.norm_sq_f16(&h).to_bits(),
                    "norm, n = {n}"
                );
            }
            // The reference is the lane order written out by hand.
            let mut lanes = [0f64; LANES];
            for j in 0..n {
                lanes[j % LANES] += f64::from(f16::from_f32(row[j]).to_f32()) * q[j];
            }
            assert_eq!(scalar.0.to_bits(), combine(lanes).to_bits(), "n = {n}");
        }
    }

    #[test]
    fn kernel_choices_parse_and_resolve() {
        assert_eq!(KernelChoice::parse("scalar"), Some(KernelChoice::Scalar));
        assert_eq!(KernelChoice::parse(" simd "), Some(KernelChoice::Simd));
        assert_eq!(KernelChoice::parse("auto"), Some(KernelChoice::Auto));
        assert_eq!(KernelChoice::parse("avx"), None);
        assert_eq!(KernelChoice::Scalar.resolve().unwrap(), Kernel::Scalar);
        let auto = KernelChoice::Auto.resolve().unwrap();
        assert_eq!(auto == Kernel::Simd, Kernel::simd_available());
        assert_eq!(
            KernelChoice::Simd.resolve().is_ok(),
            Kernel::simd_available()
        );
    }
}

//! Scores and packets do not depend on the scan kernel or the number of threads: the same
//! index scored by the scalar reference and the SIMD kernel, on 1, 2 and 5 threads, gives the
//! same bits, and the packets built from them the same bytes.

use std::path::Path;

use tempfile::TempDir;

use cosmwasm_std::HexBinary;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tributary_attrib::index::{
    CheckpointRef, GradientIndex, IndexError, IndexHeader, IndexManifest, IndexWriter, Kernel,
    KernelChoice, Method, ScanConfig, DEFAULT_DAMPING,
};
use tributary_attrib::model::{LayerId, LinearKind};
use tributary_attrib::packet::{build_packet, PacketInputs, PacketRequest};
use tributary_attrib::projection::LayerSpec;
use tributary_types::DatanetRoot;

const EXAMPLES: usize = 700;
const CHECKPOINTS: usize = 2;

/// Two layers, 6 × 5 and 3 × 7 wide: rows of 51 values, so every kernel runs both its
/// sixteen-lane loop and its tail.
fn layers() -> Vec<LayerSpec> {
    vec![
        LayerSpec {
            layer: LayerId::Block {
                block: 0,
                kind: LinearKind::Fc1,
            },
            d_in: 8,
            d_out: 16,
            k_in: 5,
            k_out: 6,
        },
        LayerSpec {
            layer: LayerId::Block {
                block: 0,
                kind: LinearKind::Fc2,
            },
            d_in: 16,
            d_out: 8,
            k_in: 7,
            k_out: 3,
        },
    ]
}

fn dim() -> usize {
    layers().iter().map(LayerSpec::dim).sum()
}

/// Contribution ids interleaved over the examples, 23 contributions.
fn contribution_id(example: usize) -> u64 {
    100 + (example as u64 * 7919) % 23
}

fn header() -> IndexHeader {
    IndexHeader {
        weights_hash: "cd".repeat(32),
        datanet_roots: vec![DatanetRoot {
            datanet_id: 1,
            version: 1,
            root: HexBinary::from(vec![0x22; 32]),
        }],
        layers: layers(),
        projection_seed: 7,
        checkpoints: (0..CHECKPOINTS)
            .map(|c| CheckpointRef {
                name: format!("step-{c}"),
                step: c as u64,
                weights_hash: format!("{c:02}").repeat(32),
            })
            .collect(),
        contribution_ids: (0..EXAMPLES).map(contribution_id).collect(),
        damping: DEFAULT_DAMPING,
        fisher_rows_max: 256,
    }
}

/// Rows with magnitudes from 1e-6 to 1e3, so the additions round in many different places.
fn rows(checkpoint: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(checkpoint as u64 + 1);
    (0..EXAMPLES * dim())
        .map(|i| {
            let scale = [1.0e-6, 1.0e-2, 1.0, 30.0, 1.0e3][i % 5];
            rng.random_range(-1.0f32..1.0) * scale
        })
        .collect()
}

fn write(dir: &Path, chunk_rows: usize) -> IndexManifest {
    write_with(dir, chunk_rows, KernelChoice::Auto)
}

fn write_with(dir: &Path, chunk_rows: usize, kernel: KernelChoice) -> IndexManifest {
    let mut writer = IndexWriter::create(dir, header())
        .unwrap()
        .with_kernel(kernel)
        .unwrap();
    for c in 0..CHECKPOINTS {
        for chunk in rows(c).chunks(chunk_rows * dim()) {
            writer.push_rows(c, chunk).unwrap();
        }
    }
    writer.finish().unwrap()
}

fn query(seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..CHECKPOINTS)
        .map(|_| (0..dim()).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect()
}

/// Every configuration to compare: each kernel this CPU has, on 1, 2 and 5 threads of the
/// index's own pool, and the default (automatic kernel, rayon's global pool).
fn configs() -> Vec<ScanConfig> {
    let mut kernels = vec![KernelChoice::Scalar];
    if Kernel::simd_available() {
        kernels.push(KernelChoice::Simd);
    } else {
        eprintln!("this CPU has no SIMD scan kernel: only the scalar one is compared");
    }
    let mut configs = vec![ScanConfig::default()];
    for kernel in kernels {
        for threads in [1, 2, 5] {
            configs.push(ScanConfig {
                kernel,
                threads: Some(threads),
            });
        }
    }
    configs
}

/// Everything a query's result is made of, as bits: contribution scores, example scores,
/// and every contribution's best example.
fn score_bits(index: &GradientIndex, method: Method, seed: u64) -> Vec<u64> {
    let q = index.prepare(&query(seed), method).unwrap();
    let positions: Vec<usize> = (0..index.contributions().len()).collect();
    let mut bits: Vec<u64> = index
        .contribution_scores(&q)
        .iter()
        .map(|s| s.to_bits())
        .collect();
    bits.extend(index.example_scores(&q).iter().map(|s| s.to_bits()));
    for best in index.best_examples(&q, &positions) {
        let (example, score) = best.unwrap();
        bits.extend([example as u64, score.to_bits()]);
    }
    bits.extend(q.vectors().iter().flatten().map(|v| v.to_bits()));
    bits
}

/// Panics at the first differing value, with its position, instead of printing both vectors.
fn assert_same_bits(got: &[u64], want: &[u64], context: &str) {
    assert_eq!(got.len(), want.len(), "{context}: lengths differ");
    if let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!(
            "{context}: value {at} differs: {:e} ({:#018x}) against the reference {:e} ({:#018x})",
            f64::from_bits(got[at]),
            got[at],
            f64::from_bits(want[at]),
            want[at]
        );
    }
}

fn packet_bytes(index: &GradientIndex, method: Method, seed: u64) -> Vec<u8> {
    let scores: Vec<(u64, f64)> = index
        .contributions()
        .ids()
        .iter()
        .copied()
        .zip(index.score_contributions(&query(seed), method).unwrap())
        .collect();
    let request = PacketRequest {
        request_id: seed,
        model_id: 1,
        model_version: 1,
        top_k: 8,
    };
    let packet = build_packet(&PacketInputs {
        request: &request,
        weights_hash: &index.manifest().weights_hash,
        datanet_roots: &index.manifest().datanet_roots,
        method: method.id(),
        params: &serde_json::json!({ "index_hash": index.index_hash() }),
        completion: b"completion",
        scores: &scores,
    })
    .unwrap();
    assert!(!packet.entries.is_empty());
    serde_json::to_vec(&packet).unwrap()
}

#[test]
fn scores_are_bit_identical_across_kernels_and_thread_counts() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    write(dir, 64);
    let reference = GradientIndex::open_with(
        dir,
        ScanConfig {
            kernel: KernelChoice::Scalar,
            threads: Some(1),
        },
    )
    .unwrap();
    assert_eq!(reference.kernel(), Kernel::Scalar);
    for config in configs() {
        let index = GradientIndex::open_with(dir, config).unwrap();
        for method in Method::ALL {
            for seed in 0..3 {
                assert_same_bits(
                    &score_bits(&index, method, seed),
                    &score_bits(&reference, method, seed),
                    &format!("{config:?} {method:?} query {seed}"),
                );
            }
        }
    }
}

#[test]
fn packets_are_byte_identical_across_kernels_and_thread_counts() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    write(dir, 64);
    let reference = GradientIndex::open_with(
        dir,
        ScanConfig {
            kernel: KernelChoice::Scalar,
            threads: Some(1),
        },
    )
    .unwrap();
    for config in configs() {
        let index = GradientIndex::open_with(dir, config).unwrap();
        for method in Method::ALL {
            for seed in 0..3 {
                assert_eq!(
                    packet_bytes(&index, method, seed),
                    packet_bytes(&reference, method, seed),
                    "{config:?} {method:?} query {seed}"
                );
            }
        }
    }
}

#[test]
fn the_index_does_not_depend_on_how_rows_were_pushed_or_the_writers_kernel() {
    // The sums are computed from the stored rows, in parallel: push sizes, the writer's
    // threads and its kernel must not reach the files.
    let tmp_one = TempDir::new().unwrap();
    let one = tmp_one.path();
    let tmp_many = TempDir::new().unwrap();
    let many = tmp_many.path();
    let a = write_with(one, 1, KernelChoice::Scalar);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = pool.install(|| write(many, EXAMPLES));
    assert_eq!(a, b);
    GradientIndex::open(one).unwrap().verify_sums().unwrap();
}

#[test]
fn an_impossible_scan_configuration_is_a_typed_error() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    write(dir, 100);
    let zero = ScanConfig {
        kernel: KernelChoice::Scalar,
        threads: Some(0),
    };
    let err = GradientIndex::open_with(dir, zero).unwrap_err();
    assert!(matches!(err, IndexError::ScanConfig { .. }), "{err:?}");
    let simd = ScanConfig {
        kernel: KernelChoice::Simd,
        threads: None,
    };
    match GradientIndex::open_with(dir, simd) {
        Ok(index) => assert_eq!(index.kernel(), Kernel::Simd),
        Err(err) => {
            assert!(!Kernel::simd_available());
            assert!(matches!(err, IndexError::ScanConfig { .. }), "{err:?}");
        }
    }
}

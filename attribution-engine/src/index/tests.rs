//! Writer, reader and scoring of the index on small generated data.

use std::fs;
use std::path::Path;

use half::f16;
use nalgebra::DMatrix;
use tributary_types::DatanetRoot;

use super::*;
use crate::model::{LayerId, LinearKind};
use crate::projection::LayerSpec;
use cosmwasm_std::HexBinary;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tempfile::TempDir;

/// Three layers of widths 4, 3 and 6: dim 13.
fn layers() -> Vec<LayerSpec> {
    let block = |kind| LayerId::Block { block: 0, kind };
    vec![
        LayerSpec {
            layer: block(LinearKind::Fc1),
            d_in: 8,
            d_out: 16,
            k_in: 2,
            k_out: 2,
        },
        LayerSpec {
            layer: block(LinearKind::Fc2),
            d_in: 16,
            d_out: 8,
            k_in: 3,
            k_out: 1,
        },
        LayerSpec {
            layer: LayerId::Head,
            d_in: 8,
            d_out: 32,
            k_in: 2,
            k_out: 3,
        },
    ]
}

const DIM: usize = 13;

fn header(n: usize, checkpoints: usize, fisher_rows_max: usize) -> IndexHeader {
    IndexHeader {
        weights_hash: "ab".repeat(32),
        datanet_roots: vec![DatanetRoot {
            datanet_id: 7,
            version: 2,
            root: HexBinary::from(vec![0x11; 32]),
        }],
        layers: layers(),
        projection_seed: 42,
        checkpoints: (0..checkpoints)
            .map(|c| CheckpointRef {
                name: format!("step-{}", 200 * (c + 1)),
                step: 200 * (c as u64 + 1),
                weights_hash: format!("{c:02}").repeat(32),
            })
            .collect(),
        contribution_ids: (0..n as u64).map(|i| 1000 + i % 7).collect(),
        damping: DEFAULT_DAMPING,
        fisher_rows_max,
    }
}

/// `n × DIM` rows with a different scale per column, so the Fisher is far from isotropic.
fn random_rows(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * DIM)
        .map(|i| {
            let scale = 0.01 * (1 + i % DIM) as f32;
            rng.random_range(-1.0f32..1.0) * scale
        })
        .collect()
}

fn round16(rows: &[f32]) -> Vec<f32> {
    rows.iter().map(|&v| f16::from_f32(v).to_f32()).collect()
}

fn random_query(seed: u64, checkpoints: usize) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..checkpoints)
        .map(|_| (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect()
}

/// Writes an index of the given rows (one `n × DIM` vector per checkpoint), pushing them
/// in uneven chunks.
fn write(dir: &Path, rows: &[Vec<f32>], fisher_rows_max: usize) -> IndexManifest {
    let n = rows[0].len() / DIM;
    let mut writer = IndexWriter::create(dir, header(n, rows.len(), fisher_rows_max)).unwrap();
    for (c, rows) in rows.iter().enumerate() {
        for chunk in rows.chunks(7 * DIM) {
            writer.push_rows(c, chunk).unwrap();
        }
    }
    writer.finish().unwrap()
}

/// A two-checkpoint index of `n` random examples; returns the f16-rounded rows.
fn build(n: usize, fisher_rows_max: usize) -> (TempDir, Vec<Vec<f32>>, IndexManifest) {
    let tmp = TempDir::new().unwrap();
    let rows = vec![random_rows(1, n), random_rows(2, n)];
    let manifest = write(tmp.path(), &rows, fisher_rows_max);
    (tmp, rows.iter().map(|r| round16(r)).collect(), manifest)
}

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * scale,
            "example {i}: got {g}, want {w} (scale {scale})"
        );
    }
}

#[test]
fn round_trip_preserves_ids_rows_and_manifest() {
    let (tmp, rows, written) = build(20, DEFAULT_FISHER_ROWS);
    let index = GradientIndex::open(tmp.path()).unwrap();
    assert_eq!(index.manifest(), &written);
    assert_eq!(index.index_hash(), written.index_hash);
    assert_eq!(index.n_examples(), 20);
    assert_eq!(index.dim(), DIM);
    assert_eq!(index.n_checkpoints(), 2);
    let ids: Vec<u64> = (0..20).map(|i| 1000 + i % 7).collect();
    assert_eq!(index.contribution_ids(), ids.as_slice());
    assert_eq!(written.format, FORMAT);
    assert_eq!(written.dtype, "f16");
    assert_eq!(
        (
            written.n_examples,
            written.n_contributions,
            written.dim,
            written.fisher_rows
        ),
        (20, 7, 13, 20)
    );
    assert_eq!(written.layers, layers());
    assert_eq!(written.checkpoints, header(20, 2, 1).checkpoints);
    let names: Vec<&str> = written.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "examples.bin",
            "gradients-0.bin",
            "gradients-1.bin",
            "preconditioner-0.bin",
            "preconditioner-1.bin",
            "contribution-sums-0.bin",
            "contribution-sums-1.bin",
            "contribution-unit-sums-0.bin",
            "contribution-unit-sums-1.bin",
        ]
    );
    assert_eq!(
        index.contributions().ids(),
        &[1000, 1001, 1002, 1003, 1004, 1005, 1006]
    );
    assert_eq!(index.contributions().examples(2), &[2, 9, 16]);
    assert_eq!(written.files[5].bytes, 7 * 13 * 4);
    assert_eq!(written.files[1].bytes, 20 * 13 * 2);
    assert_eq!(written.files[3].bytes, (16 + 9 + 36) * 4);
    for (c, rows) in rows.iter().enumerate() {
        for i in [0, 7, 19] {
            assert_eq!(index.row(c, i).unwrap(), rows[i * DIM..(i + 1) * DIM]);
        }
    }
    assert!(index.row(2, 0).is_none() && index.row(0, 20).is_none());
    // The manifest on disk is pretty JSON and its hash is recomputable.
    let text = fs::read_to_string(tmp.path().join(MANIFEST_FILE)).unwrap();
    assert!(text.contains("\n  \"format\": \"tributary-gradient-index-2\""));
    assert_eq!(written.compute_hash().unwrap(), written.index_hash);
    assert!(!tmp.path().join("manifest.json.tmp").exists());
}

#[test]
fn graddot_and_cosine_match_brute_force() {
    let n = 37;
    let (tmp, rows, _) = build(n, DEFAULT_FISHER_ROWS);
    let index = GradientIndex::open(tmp.path()).unwrap();
    let query = random_query(9, 2);
    let mut dots = vec![0f64; n];
    let mut cosines = vec![0f64; n];
    for (c, q) in query.iter().enumerate() {
        for i in 0..n {
            let g = &rows[c][i * DIM..(i + 1) * DIM];
            let d = dot64(q, g);
            dots[i] += d;
            cosines[i] += d / (dot64(q, q).sqrt() * dot64(g, g).sqrt());
        }
    }
    assert_close(&index.score(&query, Method::GradDot).unwrap(), &dots, 1e-5);
    assert_close(
        &index.score(&query, Method::Cosine).unwrap(),
        &cosines,
        1e-5,
    );
}

#[test]
fn preconditioned_matches_a_dense_solve() {
    // 50 rows, at most 16 in the Fisher: every 4th row, 13 rows.
    let n = 50;
    let (tmp, rows, manifest) = build(n, 16);
    assert_eq!(manifest.fisher_rows, 13);
    let index = GradientIndex::open(tmp.path()).unwrap();
    let query = random_query(5, 2);
    let sampled: Vec<usize> = (0..n).step_by(4).collect();
    let mut want = vec![0f64; n];
    for (c, q) in query.iter().enumerate() {
        let mut offset = 0;
        for layer in layers() {
            let k = layer.dim();
            let block = |i: usize| &rows[c][i * DIM + offset..i * DIM + offset + k];
            let mut f = DMatrix::<f64>::zeros(k, k);
            for &i in &sampled {
                let g = block(i);
                for a in 0..k {
                    for b in 0..k {
                        f[(a, b)] += f64::from(g[a]) * f64::from(g[b]) / sampled.len() as f64;
                    }
                }
            }
            let lambda = f64::from(DEFAULT_DAMPING) * f.trace() / k as f64;
            let m = f + DMatrix::identity(k, k) * lambda;
            let rhs = nalgebra::DVector::from_iterator(
                k,
                q[offset..offset + k].iter().map(|&v| f64::from(v)),
            );
            let x = m.lu().solve(&rhs).unwrap();
            for (i, w) in want.iter_mut().enumerate() {
                *w += block(i)
                    .iter()
                    .zip(x.iter())
                    .map(|(&g, &x)| f64::from(g) * x)
                    .sum::<f64>();
            }
            offset += k;
        }
    }
    assert_close(
        &index.score(&query, Method::Preconditioned).unwrap(),
        &want,
        1e-5,
    );
}

#[test]
fn zero_covariance_uses_plain_damping() {
    let tmp = TempDir::new().unwrap();
    let mut rows = random_rows(3, 10);
    for row in rows.chunks_mut(DIM) {
        row[..4].fill(0.0);
    }
    write(tmp.path(), &[rows], DEFAULT_FISHER_ROWS);
    let index = GradientIndex::open(tmp.path()).unwrap();
    let q = random_query(4, 1).remove(0);
    let prepared = index.prepare_checkpoint(0, &q, Method::Preconditioned);
    for j in 0..4 {
        let want = f64::from(q[j] / DEFAULT_DAMPING);
        assert!((prepared[j] - want).abs() < 1e-5 * want.abs().max(1.0));
    }
}

#[test]
fn contribution_scores_are_the_sums_of_their_example_scores() {
    let n = 61;
    let (tmp, _, _) = build(n, DEFAULT_FISHER_ROWS);
    let index = GradientIndex::open(tmp.path()).unwrap();
    for method in Method::ALL {
        for seed in 0..3 {
            let query = index.prepare(&random_query(seed, 2), method).unwrap();
            let examples = index.example_scores(&query);
            let contributions = index.contribution_scores(&query);
            let mut want = vec![0f64; index.contributions().len()];
            for (e, s) in examples.iter().enumerate() {
                let j = index.contributions().position(1000 + e as u64 % 7).unwrap();
                want[j] += s;
            }
            // Equal up to the f32 rounding of the stored sums.
            assert_close(&contributions, &want, 1e-6);
            // The best example of each contribution is its argmax, ties to the lower index.
            let positions: Vec<usize> = (0..7).rev().collect();
            for (&j, best) in positions
                .iter()
                .zip(index.best_examples(&query, &positions))
            {
                let (e, s) = best.unwrap();
                let mine = index.contributions().examples(j);
                let top = mine.iter().map(|&i| examples[i]).fold(f64::MIN, f64::max);
                assert_eq!(s.to_bits(), examples[e].to_bits());
                assert_eq!(s, top);
                assert_eq!(e, *mine.iter().find(|&&i| examples[i] == top).unwrap());
            }
            assert_eq!(index.best_examples(&query, &[7]), vec![None]);
        }
    }
}

#[test]
fn stored_sums_are_the_rounded_exact_sums_of_the_rows() {
    let n = 40;
    let (tmp, rows, _) = build(n, DEFAULT_FISHER_ROWS);
    let index = GradientIndex::open(tmp.path()).unwrap();
    index.verify_sums().unwrap();
    for (c, rows) in rows.iter().enumerate() {
        for j in 0..7 {
            let mut sum = [0f64; DIM];
            let mut unit = [0f64; DIM];
            for &e in index.contributions().examples(j) {
                let g = &rows[e * DIM..(e + 1) * DIM];
                let norm = dot64(g, g).sqrt();
                for k in 0..DIM {
                    sum[k] += f64::from(g[k]);
                    unit[k] += f64::from(g[k]) / norm;
                }
            }
            // f16 values times a handful of rows: the f64 sum is exact, so rounding it to f32
            // must give the stored bits.
            let stored = index.contribution_sum(c, j, false).unwrap();
            let want: Vec<f32> = sum.iter().map(|&v| v as f32).collect();
            assert_eq!(stored, want, "checkpoint {c} contribution {j}");
            let stored = index.contribution_sum(c, j, true).unwrap();
            for k in 0..DIM {
                assert!((f64::from(stored[k]) - unit[k]).abs() < 1e-6 * unit[k].abs().max(1.0));
            }
        }
    }
    assert!(index.contribution_sum(2, 0, false).is_none());
    assert!(index.contribution_sum(0, 7, true).is_none());
}

#[test]
fn bad_queries_are_typed_errors() {
    let (tmp, _, _) = build(5, DEFAULT_FISHER_ROWS);
    let index = GradientIndex::open(tmp.path()).unwrap();
    let one_checkpoint = random_query(1, 1);
    let mut short = random_query(1, 2);
    short[1].pop();
    let mut nan = random_query(1, 2);
    nan[0][3] = f32::NAN;
    for query in [one_checkpoint, short, nan] {
        for method in Method::ALL {
            let err = index.score(&query, method).unwrap_err();
            assert!(matches!(err, IndexError::BadQuery { .. }), "{err}");
        }
    }
    // A zero query scores zero everywhere, cosine included.
    let zero = vec![vec![0.0; DIM]; 2];
    for method in Method::ALL {
        assert!(index
            .score(&zero, method)
            .unwrap()
            .iter()
            .all(|&s| s == 0.0));
        assert!(index
            .score_contributions(&zero, method)
            .unwrap()
            .iter()
            .all(|&s| s == 0.0));
    }
}

#[test]
fn truncated_or_extended_gradients_file_is_refused() {
    let (tmp, _, _) = build(20, DEFAULT_FISHER_ROWS);
    let path = tmp.path().join("gradients-1.bin");
    let original = fs::read(&path).unwrap();
    fs::write(&path, &original[..100]).unwrap();
    let err = GradientIndex::open(tmp.path()).unwrap_err();
    assert!(
        matches!(&err, IndexError::Truncated { file, expected: 520, found: 100 } if file == "gradients-1.bin"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "index file gradients-1.bin is truncated: expected 520 bytes, found 100"
    );
    let mut longer = original.clone();
    longer.push(0);
    fs::write(&path, &longer).unwrap();
    let err = GradientIndex::open(tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Truncated {
                expected: 520,
                found: 521,
                ..
            }
        ),
        "{err:?}"
    );
    fs::write(&path, &original).unwrap();
    GradientIndex::open(tmp.path()).unwrap();
    fs::remove_file(tmp.path().join("preconditioner-0.bin")).unwrap();
    let err = GradientIndex::open(tmp.path()).unwrap_err();
    assert!(
        matches!(&err, IndexError::MissingFile { file } if file == "preconditioner-0.bin"),
        "{err:?}"
    );
}

#[test]
fn one_flipped_byte_is_refused_as_tampered() {
    let (tmp, _, _) = build(20, DEFAULT_FISHER_ROWS);
    for name in [
        "examples.bin",
        "gradients-0.bin",
        "preconditioner-1.bin",
        "contribution-sums-1.bin",
        "contribution-unit-sums-0.bin",
    ] {
        let path = tmp.path().join(name);
        let original = fs::read(&path).unwrap();
        let mut flipped = original.clone();
        flipped[original.len() / 2] ^= 0x01;
        fs::write(&path, &flipped).unwrap();
        let err = GradientIndex::open(tmp.path()).unwrap_err();
        assert!(
            matches!(&err, IndexError::Tampered { file } if file == name),
            "{err:?}"
        );
        fs::write(&path, &original).unwrap();
    }
    GradientIndex::open(tmp.path()).unwrap();
}

#[test]
fn edited_manifest_is_refused() {
    let (tmp, _, _) = build(10, DEFAULT_FISHER_ROWS);
    let path = tmp.path().join(MANIFEST_FILE);
    let original = fs::read_to_string(&path).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut value: serde_json::Value = serde_json::from_str(&original).unwrap();
        f(&mut value);
        fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
        GradientIndex::open(tmp.path()).unwrap_err()
    };
    let err = edit(&|v| v["damping"] = serde_json::json!(0.2));
    assert!(matches!(err, IndexError::ManifestHash { .. }), "{err:?}");
    // An index of the previous format, which had no contribution sums, is refused by name.
    let err = edit(&|v| v["format"] = serde_json::json!("tributary-gradient-index-1"));
    assert!(
        matches!(&err, IndexError::UnsupportedFormat { found } if found == "tributary-gradient-index-1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("rebuild the index"), "{err}");
    // A consistent-looking lie (hash recomputed) about the sizes is still caught.
    let err = edit(&|v| {
        v["n_examples"] = serde_json::json!(11);
        let mut m: IndexManifest = serde_json::from_value(v.clone()).unwrap();
        m.index_hash = m.compute_hash().unwrap();
        *v = serde_json::to_value(m).unwrap();
    });
    assert!(matches!(err, IndexError::Inconsistent { .. }), "{err:?}");
    // As is a lie about the number of contributions, file sizes and all.
    let err = edit(&|v| {
        let mut m: IndexManifest = serde_json::from_value(v.clone()).unwrap();
        m.n_contributions = 6;
        for f in &mut m.files {
            if f.name.starts_with("contribution-") {
                f.bytes = 6 * DIM as u64 * 4;
            }
        }
        m.index_hash = m.compute_hash().unwrap();
        *v = serde_json::to_value(m).unwrap();
    });
    assert!(matches!(err, IndexError::Truncated { .. }), "{err:?}");
    fs::write(&path, &original).unwrap();
    GradientIndex::open(tmp.path()).unwrap();
    fs::remove_file(&path).unwrap();
    let err = GradientIndex::open(tmp.path()).unwrap_err();
    assert!(matches!(err, IndexError::NotFound { .. }), "{err:?}");
}

#[test]
fn writer_refuses_wrong_rows_and_order() {
    let tmp = TempDir::new().unwrap();
    let rows = random_rows(1, 10);
    let mut w = IndexWriter::create(tmp.path(), header(10, 2, 100)).unwrap();
    let is_order = |e: IndexError| matches!(e, IndexError::Order { .. });
    let is_shape = |e: IndexError| matches!(e, IndexError::Shape { .. });
    assert!(is_shape(w.push_rows(0, &rows[..DIM + 1]).unwrap_err()));
    assert!(is_order(w.push_rows(1, &rows[..DIM]).unwrap_err()));
    assert!(is_order(w.push_rows(2, &rows[..DIM]).unwrap_err()));
    w.push_rows(0, &rows[..3 * DIM]).unwrap();
    assert!(is_order(w.push_rows(1, &rows[..DIM]).unwrap_err()));
    assert!(is_shape(w.push_rows(0, &rows).unwrap_err()));
    let mut bad = rows[3 * DIM..].to_vec();
    bad[DIM + 2] = f32::NAN;
    let err = w.push_rows(0, &bad).unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Value {
                checkpoint: 0,
                example: 4,
                column: 2,
                ..
            }
        ),
        "{err:?}"
    );
    bad[DIM + 2] = 1.0e6;
    assert!(matches!(
        w.push_rows(0, &bad).unwrap_err(),
        IndexError::Value { .. }
    ));
    // Refused pushes wrote nothing: the correct rows still fit exactly.
    w.push_rows(0, &rows[3 * DIM..]).unwrap();
    assert!(is_order(w.push_rows(0, &rows[..DIM]).unwrap_err()));
    w.push_rows(1, &rows[..5 * DIM]).unwrap();
    let err = w.finish().unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Incomplete {
                checkpoint: 1,
                expected: 10,
                found: 5
            }
        ),
        "{err:?}"
    );
    assert!(!tmp.path().join(MANIFEST_FILE).exists());

    // A complete index, then a second writer on the same directory.
    let manifest = write(tmp.path(), &[rows.clone(), rows.clone()], 100);
    let index = GradientIndex::open(tmp.path()).unwrap();
    assert_eq!(index.index_hash(), manifest.index_hash);
    let err = IndexWriter::create(tmp.path(), header(10, 2, 100))
        .err()
        .unwrap();
    assert!(matches!(err, IndexError::Exists { .. }), "{err:?}");

    let other = TempDir::new().unwrap();
    let w = IndexWriter::create(other.path(), header(3, 1, 100)).unwrap();
    assert!(matches!(
        w.finish().unwrap_err(),
        IndexError::Incomplete {
            checkpoint: 0,
            found: 0,
            ..
        }
    ));
    for broken in [
        IndexHeader {
            damping: 0.0,
            ..header(3, 1, 100)
        },
        IndexHeader {
            checkpoints: vec![],
            ..header(3, 1, 100)
        },
        IndexHeader {
            contribution_ids: vec![],
            ..header(3, 1, 100)
        },
        IndexHeader {
            fisher_rows_max: 0,
            ..header(3, 1, 100)
        },
    ] {
        let err = IndexWriter::create(&other.path().join("x"), broken)
            .err()
            .unwrap();
        assert!(matches!(err, IndexError::Header { .. }), "{err:?}");
    }
}

#[test]
fn index_hash_is_deterministic_and_covers_every_row() {
    let rows = vec![random_rows(1, 12), random_rows(2, 12)];
    let (a, b, c) = (
        TempDir::new().unwrap(),
        TempDir::new().unwrap(),
        TempDir::new().unwrap(),
    );
    let first = write(a.path(), &rows, 5);
    let again = write(b.path(), &rows, 5);
    assert_eq!(first, again);
    let mut changed = rows.clone();
    changed[1][3 * DIM + 5] += 0.25;
    let other = write(c.path(), &changed, 5);
    assert_ne!(first.index_hash, other.index_hash);
    assert_ne!(first.files[2].sha256, other.files[2].sha256);
    assert_eq!(first.files[1], other.files[1]);
}

#[test]
fn methods_parse_from_id_or_name() {
    for method in Method::ALL {
        assert_eq!(Method::parse(method.id()), Some(method));
        assert_eq!(Method::parse(method.name()), Some(method));
        let json = serde_json::to_string(&method).unwrap();
        assert_eq!(json, format!("\"{}\"", method.name()));
    }
    assert_eq!(Method::parse("trak-logra-v2"), Some(Method::Preconditioned));
    // Version 1 summed per-example scores: its bits are not what this build computes.
    assert_eq!(Method::parse("trak-logra-v1"), None);
    assert_eq!(Method::parse("grad_dot"), Some(Method::GradDot));
    assert_eq!(Method::parse("dot"), None);
}

#[test]
fn gradient_index_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<GradientIndex>();
}

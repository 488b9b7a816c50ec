//! Attribution quality and speed, printed as tables.
//!
//! ```text
//! cargo bench -p tributary-attrib --bench attribution -- [scan] [planted] [lds] [speed] [--models 50] [--examples 100000] [--scan-examples 100000,1000000] [--no-torch]
//! ```
//! With no section named, all four run. `scan` times one query's scoring (the query gradient
//! excluded) over synthetic indexes, the full scan of every row against the per-contribution
//! sums, next to the memory-bandwidth floor measured in the same run. `speed` times training,
//! indexing and whole attributions (the query gradient included) on a trained model, and
//! compares with the PyTorch reference in `attribution-engine/bench/` (installed by
//! `bench/setup-torch`) on the same model and data shape.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tributary_attrib::artifact::ModelArtifact;
use tributary_attrib::data::{examples, Contribution, Corpus};
use tributary_attrib::engine::{build_index, Engine, IndexSettings};
use tributary_attrib::eval::{evaluate_lds, evaluate_planted, PlantedSpec};
use tributary_attrib::index::{
    CheckpointRef, GradientIndex, IndexHeader, IndexWriter, KernelChoice, Method, PreparedQuery,
    ScanConfig, DEFAULT_DAMPING, DEFAULT_FISHER_ROWS,
};
use tributary_attrib::model::{LayerId, LinearKind, LmConfig};
use tributary_attrib::projection::LayerSpec;
use tributary_attrib::training::{train, TrainConfig};

struct Args {
    sections: Vec<String>,
    models: usize,
    examples: usize,
    scan_examples: Vec<usize>,
    torch: bool,
}

fn args() -> Args {
    let mut a = Args {
        sections: Vec::new(),
        models: 50,
        examples: 100_000,
        scan_examples: vec![100_000, 1_000_000],
        torch: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--models" => a.models = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.models),
            "--examples" => {
                a.examples = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.examples)
            }
            "--scan-examples" => {
                if let Some(v) = it.next() {
                    a.scan_examples = v.split(',').filter_map(|n| n.trim().parse().ok()).collect();
                }
            }
            "--no-torch" => a.torch = false,
            "--bench" => {}
            s if !s.starts_with('-') => a.sections.push(s.to_string()),
            _ => {}
        }
    }
    if a.sections.is_empty() {
        a.sections = vec![
            "scan".into(),
            "planted".into(),
            "lds".into(),
            "speed".into(),
        ];
    }
    a
}

fn small_model() -> LmConfig {
    LmConfig::new()
        .with_d_model(64)
        .with_n_layers(2)
        .with_n_heads(4)
        .with_d_ff(256)
        .with_context(64)
}

fn main() {
    let args = args();
    let work = tempfile::tempdir().expect("temporary folder");
    println!(
        "threads: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let wants = |name: &str| args.sections.iter().any(|s| s == name);
    let bandwidth = (wants("scan") || wants("speed")).then(memory_bandwidth);
    if let Some(b) = bandwidth {
        println!(
            "memory bandwidth (parallel sum of a 512 MiB buffer, best of 5): {:.1} GB/s",
            b / 1e9
        );
    }
    if wants("scan") {
        for &n in &args.scan_examples {
            scan(work.path(), n, bandwidth.unwrap_or(f64::NAN));
        }
    }
    if args.sections.iter().any(|s| s == "planted") {
        planted(work.path());
    }
    if args.sections.iter().any(|s| s == "lds") {
        lds_section(work.path(), args.models);
    }
    if args.sections.iter().any(|s| s == "speed") {
        speed(
            work.path(),
            args.examples,
            args.torch,
            bandwidth.unwrap_or(f64::NAN),
        );
    }
}

fn planted(work: &Path) {
    let spec = PlantedSpec::default();
    let config = TrainConfig::new(small_model())
        .with_steps(200)
        .with_checkpoints(2);
    let started = Instant::now();
    let reports = evaluate_planted(
        &work.join("planted"),
        &spec,
        &config,
        &IndexSettings::default(),
        true,
    )
    .expect("train, index and attribute the planted corpus");
    println!(
        "\n## Planted sources: {} contributors x {} contributions, {} facts each ({:.0} s)\n",
        spec.contributors,
        spec.contributions_per_contributor,
        spec.facts_per_contributor,
        started.elapsed().as_secs_f64()
    );
    println!("| method | top-1 | top-3 |\n|---|---|---|");
    for r in reports {
        println!("| {} | {:.3} | {:.3} |", r.method, r.top1, r.top3);
    }
}

fn lds_section(work: &Path, models: usize) {
    let spec = PlantedSpec {
        contributors: 16,
        ..PlantedSpec::default()
    };
    let config = TrainConfig::new(small_model())
        .with_steps(300)
        .with_checkpoints(2);
    let report = evaluate_lds(
        &work.join("lds"),
        &spec,
        &config,
        &IndexSettings::default(),
        models,
        1,
        true,
    )
    .expect("LDS run");
    println!(
        "\n## LDS: {} contributions, {} queries per set, {} models retrained on random halves ({:.0} s)\n",
        report.contributions, report.queries, report.models, report.retrain_seconds
    );
    println!(
        "query loss spread: {:.4} nats between seeds, {:.4} between halves ({:.2}x)\n",
        report.spread.seed,
        report.spread.subset,
        report.spread.subset / report.spread.seed.max(1e-12)
    );
    println!("| method | queries | checkpoints | LDS |\n|---|---|---|---|");
    for row in report.rows {
        println!(
            "| {} | {} | {} | {:.3} |",
            row.method, row.queries, row.checkpoints, row.lds
        );
    }
}

fn random_text(rng: &mut ChaCha8Rng, bytes: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "the",
        "file",
        "descriptor",
        "returns",
        "open",
        "read",
        "write",
        "process",
        "signal",
        "memory",
        "page",
        "error",
        "buffer",
        "socket",
        "thread",
        "lock",
    ];
    let mut text = Vec::with_capacity(bytes + 16);
    while text.len() < bytes {
        text.extend_from_slice(WORDS[rng.random_range(0..WORDS.len())].as_bytes());
        text.push(b' ');
    }
    text.truncate(bytes);
    text
}

fn speed(work: &Path, n_examples: usize, torch: bool, bandwidth: f64) {
    let model = small_model();
    let context = model.context;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // Each contribution yields 100 windows of context + 1 tokens.
    let per = 100usize;
    let n_contributions = n_examples.div_ceil(per);
    let texts: Vec<(u64, Vec<u8>)> = (0..n_contributions as u64)
        .map(|id| (id + 1, random_text(&mut rng, per * context)))
        .collect();
    let corpus = Corpus {
        datanets: vec![tributary_types::DatanetRoot {
            datanet_id: 1,
            version: 1,
            root: cosmwasm_std::HexBinary::from(vec![0u8; 32]),
        }],
        contributions: texts
            .iter()
            .map(|(id, t)| Contribution {
                contribution_id: *id,
                datanet_id: 1,
                contributor: format!("trib1c{}", id % 50),
                content_hash: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t)),
                leaf_index: None,
            })
            .collect(),
    };
    let all_examples = examples(&texts, context);

    let config = TrainConfig::new(model.clone())
        .with_steps(60)
        .with_warmup_steps(10)
        .with_checkpoints(0);
    let trained = train(&config, &all_examples, &Device::flex().autodiff(), false).expect("train");
    let train_tps = trained.report.tokens_per_second;
    // The same steps with each batch's gradients computed in two shards on parallel threads.
    let sharded = train(
        &config.clone().with_shards(2),
        &all_examples,
        &Device::flex().autodiff(),
        false,
    )
    .expect("train");
    let sharded_tps = sharded.report.tokens_per_second;
    let artifact =
        ModelArtifact::save(&work.join("speed-model"), &config, &corpus, &trained).expect("save");

    let settings = IndexSettings {
        all_checkpoints: false,
        ..IndexSettings::default()
    };
    let started = Instant::now();
    let manifest = build_index(
        &artifact,
        &all_examples,
        &work.join("speed-index"),
        &settings,
        true,
    )
    .expect("index");
    let index_seconds = started.elapsed().as_secs_f64();
    let index_bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    let index_eps = all_examples.len() as f64 / index_seconds;

    let engine =
        Engine::open(&work.join("speed-model"), &work.join("speed-index")).expect("engine");
    let completions: Vec<(Vec<u8>, Vec<u8>)> = (0..40)
        .map(|_| (random_text(&mut rng, 40), random_text(&mut rng, 20)))
        .collect();
    let gradient = time_queries(5, 35, |q| {
        let (prompt, completion) = &completions[q];
        std::hint::black_box(engine.query_gradients(prompt, completion));
    });
    let attribute = time_queries(5, 35, |q| {
        let (prompt, completion) = &completions[q];
        let attribution = engine
            .attribute(prompt, completion, Method::Preconditioned)
            .expect("attribute");
        assert_eq!(
            attribution.contributions.len(),
            engine.artifact.manifest.lineage.contributions.len()
        );
    });
    let gradients: Vec<Vec<Vec<f32>>> = completions
        .iter()
        .map(|(prompt, completion)| engine.query_gradients(prompt, completion))
        .collect();
    let scoring = time_queries(5, 35, |q| {
        let prepared = engine
            .index
            .prepare(&gradients[q], Method::Preconditioned)
            .expect("query");
        std::hint::black_box(engine.aggregate(&prepared));
    });
    let full_scan = time_queries(2, 10, |q| {
        let (prompt, completion) = &completions[q];
        let gradients = engine.query_gradients(prompt, completion);
        let prepared = engine
            .index
            .prepare(&gradients, Method::Preconditioned)
            .expect("query");
        score_by_example(&engine.index, &prepared);
    });
    let precond = file_bytes(&engine.index, "preconditioner");
    let new_bytes = file_bytes(&engine.index, "contribution-sums")
        + precond
        + (tributary_attrib::engine::PASSAGE_CONTRIBUTIONS
            * per
            * engine.index.dim()
            * 2
            * engine.index.n_checkpoints()) as u64;
    let old_bytes = file_bytes(&engine.index, "gradients") + precond;
    let floor = |bytes: u64| bytes as f64 / bandwidth * 1000.0;

    println!("\n## Speed (d_model 64, 2 layers, context 64, projection 32x32 on fc1/fc2 of each block)\n");
    println!("| measure | Rust (Burn, flex) |\n|---|---|");
    println!("| training tokens/s | {train_tps:.0} |");
    println!("| training tokens/s, 2 shards in parallel | {sharded_tps:.0} |");
    println!("| indexing examples/s | {index_eps:.0} |");
    println!("| indexing tokens/s | {:.0} |", index_eps * context as f64);
    println!("| index examples | {} |", all_examples.len());
    println!(
        "| index bytes/example | {:.0} |",
        index_bytes as f64 / all_examples.len() as f64
    );
    println!(
        "| query gradient p50 / p95 (ms) | {:.1} / {:.1} |",
        gradient.0, gradient.1
    );
    println!(
        "| attribute, per contribution, gradient included: p50 / p95 (ms) | {:.1} / {:.1} (scoring floor {:.1}) |",
        attribute.0,
        attribute.1,
        floor(new_bytes)
    );
    println!(
        "| attribute, per contribution, gradient excluded: p50 / p95 (ms) | {:.1} / {:.1} (floor {:.1}) |",
        scoring.0,
        scoring.1,
        floor(new_bytes)
    );
    println!(
        "| attribute, full scan, gradient included: p50 / p95 (ms) | {:.1} / {:.1} (scoring floor {:.1}) |",
        full_scan.0,
        full_scan.1,
        floor(old_bytes)
    );

    if !torch {
        return;
    }
    let bench_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench");
    let setup = Command::new(bench_dir.join("setup-torch")).output();
    let python = match setup {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .to_string(),
        Ok(out) => {
            println!(
                "\nPyTorch reference skipped: setup-torch failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        Err(e) => {
            println!("\nPyTorch reference skipped: {e}");
            return;
        }
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .to_string();
    let out = Command::new(&python)
        .arg(bench_dir.join("torch_reference.py"))
        .args([
            "--threads",
            &threads,
            "--train-steps",
            "60",
            "--index-examples",
            "4096",
            "--index-param-grads",
        ])
        .output()
        .expect("run the PyTorch reference");
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    let Ok(reference) = serde_json::from_str::<serde_json::Value>(&line) else {
        println!(
            "\nPyTorch reference failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    };
    let torch_train = reference["train_tokens_per_s"].as_f64().unwrap_or(f64::NAN);
    let torch_index = reference["index_examples_per_s"]
        .as_f64()
        .unwrap_or(f64::NAN);
    println!(
        "\n| measure | Rust | PyTorch {} | Rust / PyTorch |\n|---|---|---|---|",
        reference["torch_version"].as_str().unwrap_or("?")
    );
    println!(
        "| training tokens/s | {train_tps:.0} | {torch_train:.0} | {:.2} |",
        train_tps / torch_train
    );
    println!(
        "| training tokens/s, 2 shards in parallel | {sharded_tps:.0} | {torch_train:.0} | {:.2} |",
        sharded_tps / torch_train
    );
    println!(
        "| indexing examples/s | {index_eps:.0} | {torch_index:.0} | {:.2} |",
        index_eps / torch_index
    );
}

/// Bytes per second of a parallel sum over a buffer far larger than the caches: the floor no
/// scan of stored data beats.
fn memory_bandwidth() -> f64 {
    use rayon::prelude::*;
    let words: usize = 64 << 20;
    let buffer: Vec<u64> = (0..words as u64)
        .into_par_iter()
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        let sum = buffer
            .par_chunks(1 << 16)
            .map(|c| c.iter().fold(0u64, |a, &b| a.wrapping_add(b)))
            .reduce(|| 0, u64::wrapping_add);
        let seconds = t.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        best = best.max((words * 8) as f64 / seconds);
    }
    best
}

/// Examples per contribution in the synthetic indexes, as in `speed`.
const EXAMPLES_PER_CONTRIBUTION: usize = 100;

/// Writes a one-checkpoint index of `n` random rows over four `k × k` layers, in contributions
/// of [`EXAMPLES_PER_CONTRIBUTION`] consecutive examples.
fn synthetic_index(dir: &Path, n: usize, k: usize) {
    let layers: Vec<LayerSpec> = (0..2)
        .flat_map(|block| {
            [LinearKind::Fc1, LinearKind::Fc2].map(|kind| LayerSpec {
                layer: LayerId::Block { block, kind },
                d_in: 64,
                d_out: 256,
                k_in: k,
                k_out: k,
            })
        })
        .collect();
    let header = IndexHeader {
        weights_hash: "00".repeat(32),
        datanet_roots: Vec::new(),
        layers,
        projection_seed: 1,
        checkpoints: vec![CheckpointRef {
            name: "final".into(),
            step: 1,
            weights_hash: "11".repeat(32),
        }],
        contribution_ids: (0..n)
            .map(|i| (i / EXAMPLES_PER_CONTRIBUTION) as u64 + 1)
            .collect(),
        damping: DEFAULT_DAMPING,
        fisher_rows_max: DEFAULT_FISHER_ROWS,
    };
    let dim = header.dim();
    let mut writer = IndexWriter::create(dir, header).expect("index writer");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let chunk = 2048;
    let mut rows = vec![0f32; chunk * dim];
    for start in (0..n).step_by(chunk) {
        let count = chunk.min(n - start);
        for (i, v) in rows[..count * dim].iter_mut().enumerate() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            *v = unit * 1.0e-2 * (1 + i % dim % 13) as f32;
        }
        writer
            .push_rows(0, &rows[..count * dim])
            .expect("push rows");
    }
    writer.finish().expect("finish the index");
}

fn random_query(rng: &mut ChaCha8Rng, checkpoints: usize, dim: usize) -> Vec<Vec<f32>> {
    (0..checkpoints)
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect()
}

/// What the engine's attribution reads and computes, without the lineage: every
/// contribution's score from its sums, and the best examples of the top ones. Returns the
/// bytes of rows the passages read.
fn score_by_contribution(index: &GradientIndex, query: &PreparedQuery) -> u64 {
    let scores = index.contribution_scores(query);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(tributary_attrib::engine::PASSAGE_CONTRIBUTIONS);
    std::hint::black_box(index.best_examples(query, &order));
    let rows: usize = order
        .iter()
        .map(|&j| index.contributions().examples(j).len())
        .sum();
    (rows * index.dim() * 2 * index.n_checkpoints()) as u64
}

/// The full scan the engine did before contribution sums: every example scored, summed per
/// contribution, with each contribution's best example.
fn score_by_example(index: &GradientIndex, query: &PreparedQuery) {
    let scores = index.example_scores(query);
    let mut per: BTreeMap<u64, (f64, Option<(usize, f64)>)> = index
        .contributions()
        .ids()
        .iter()
        .map(|&id| (id, (0.0, None)))
        .collect();
    for (i, (id, &s)) in index.contribution_ids().iter().zip(&scores).enumerate() {
        if let Some((sum, best)) = per.get_mut(id) {
            *sum += s;
            if best.is_none_or(|(_, b)| s > b) {
                *best = Some((i, s));
            }
        }
    }
    std::hint::black_box(per);
}

/// Bytes of the index files whose names start with `prefix`.
fn file_bytes(index: &GradientIndex, prefix: &str) -> u64 {
    index
        .manifest()
        .files
        .iter()
        .filter(|f| f.name.starts_with(prefix))
        .map(|f| f.bytes)
        .sum()
}

/// p50 and p95 of `samples` (milliseconds).
fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    (pct(0.5), pct(0.95))
}

/// Times `f` on `reps` queries after `warmup` untimed ones; returns p50, p95 in ms.
fn time_queries(warmup: usize, reps: usize, mut f: impl FnMut(usize)) -> (f64, f64) {
    let mut samples = Vec::with_capacity(reps);
    for q in 0..warmup + reps {
        let t = Instant::now();
        f(q);
        if q >= warmup {
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    percentiles(samples)
}

fn scan(work: &Path, n: usize, bandwidth: f64) {
    // 32 × 32 per layer as the engine's default; 16 × 16 past 100 000 examples, so a million
    // rows (2 GB) fit this machine's memory and disk.
    let k = if n <= 100_000 { 32 } else { 16 };
    let dir = work.join(format!("scan-{n}"));
    let started = Instant::now();
    synthetic_index(&dir, n, k);
    let write_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let index = GradientIndex::open(&dir).expect("open the synthetic index");
    let open_seconds = started.elapsed().as_secs_f64();
    let (dim, checkpoints) = (index.dim(), index.n_checkpoints());
    println!(
        "\n## Scan: {n} examples, {} contributions, dim {dim}, {checkpoints} checkpoint, kernel {:?} (query gradient excluded; written in {write_seconds:.0} s, opened and verified in {open_seconds:.1} s)\n",
        index.contributions().len(),
        index.kernel(),
    );
    println!("| method | path | MB read | p50 ms | p95 ms | floor ms | p50 / floor |\n|---|---|---|---|---|---|---|");
    let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
    let queries: Vec<Vec<Vec<f32>>> = (0..64)
        .map(|_| random_query(&mut rng, checkpoints, dim))
        .collect();
    let row = |method: Method, path: &str, bytes: u64, (p50, p95): (f64, f64)| {
        let floor = bytes as f64 / bandwidth * 1000.0;
        println!(
            "| {} | {path} | {:.1} | {p50:.2} | {p95:.2} | {floor:.2} | {:.1} |",
            method.id(),
            bytes as f64 / 1e6,
            p50 / floor
        );
    };
    let precond = file_bytes(&index, "preconditioner");
    let mut index = Some(index);
    for method in Method::ALL {
        let idx = index.as_ref().expect("index");
        let extra = if method == Method::Preconditioned {
            precond
        } else {
            0
        };
        let sums = if method == Method::Cosine {
            file_bytes(idx, "contribution-unit-sums")
        } else {
            file_bytes(idx, "contribution-sums")
        };
        let mut passages = 0;
        let times = time_queries(5, 40, |q| {
            let prepared = idx
                .prepare(&queries[q % queries.len()], method)
                .expect("query");
            passages = score_by_contribution(idx, &prepared);
        });
        row(method, "per contribution", sums + extra + passages, times);
        if method == Method::Preconditioned {
            let reps = if n <= 100_000 { 12 } else { 6 };
            let times = time_queries(2, reps, |q| {
                let prepared = idx
                    .prepare(&queries[q % queries.len()], method)
                    .expect("query");
                score_by_example(idx, &prepared);
            });
            row(
                method,
                "full scan",
                file_bytes(idx, "gradients") + extra,
                times,
            );
            for (label, scan) in [
                (
                    "per contribution, scalar kernel",
                    ScanConfig {
                        kernel: KernelChoice::Scalar,
                        threads: None,
                    },
                ),
                (
                    "per contribution, 1 thread",
                    ScanConfig {
                        kernel: KernelChoice::Auto,
                        threads: Some(1),
                    },
                ),
            ] {
                let idx = index
                    .take()
                    .expect("index")
                    .with_scan(scan)
                    .expect("scan config");
                let times = time_queries(5, 40, |q| {
                    let prepared = idx
                        .prepare(&queries[q % queries.len()], method)
                        .expect("query");
                    passages = score_by_contribution(&idx, &prepared);
                });
                row(method, label, sums + extra + passages, times);
                index = Some(idx.with_scan(ScanConfig::default()).expect("scan config"));
            }
        }
    }
    drop(index);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Attribution quality and speed, printed as tables.
//!
//! ```text
//! cargo bench -p tributary-attrib --bench attribution -- [planted] [lds] [speed] [--models 50] [--examples 100000] [--no-torch]
//! ```
//! With no section named, all three run. `speed` compares with the PyTorch reference in
//! `attribution-engine/bench/` (installed by `bench/setup-torch`) on the same model and data shape.

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
use tributary_attrib::index::Method;
use tributary_attrib::model::LmConfig;
use tributary_attrib::training::{train, TrainConfig};

struct Args {
    sections: Vec<String>,
    models: usize,
    examples: usize,
    torch: bool,
}

fn args() -> Args {
    let mut a = Args {
        sections: Vec::new(),
        models: 50,
        examples: 100_000,
        torch: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--models" => a.models = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.models),
            "--examples" => {
                a.examples = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.examples)
            }
            "--no-torch" => a.torch = false,
            "--bench" => {}
            s if !s.starts_with('-') => a.sections.push(s.to_string()),
            _ => {}
        }
    }
    if a.sections.is_empty() {
        a.sections = vec!["planted".into(), "lds".into(), "speed".into()];
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
    if args.sections.iter().any(|s| s == "planted") {
        planted(work.path());
    }
    if args.sections.iter().any(|s| s == "lds") {
        lds_section(work.path(), args.models);
    }
    if args.sections.iter().any(|s| s == "speed") {
        speed(work.path(), args.examples, args.torch);
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
        true,
    )
    .expect("LDS run");
    println!(
        "\n## LDS: {} contributions, {} queries, {} models retrained on random halves ({:.0} s)\n",
        report.contributions, report.queries, report.models, report.retrain_seconds
    );
    println!("| method | checkpoints | LDS |\n|---|---|---|");
    for row in report.rows {
        println!("| {} | {} | {:.3} |", row.method, row.checkpoints, row.lds);
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

fn speed(work: &Path, n_examples: usize, torch: bool) {
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
    let mut latencies = Vec::new();
    for q in 0..40 {
        let prompt = random_text(&mut rng, 40);
        let completion = random_text(&mut rng, 20);
        let t = Instant::now();
        let attribution = engine
            .attribute(&prompt, &completion, Method::Preconditioned)
            .expect("attribute");
        if q >= 5 {
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        assert_eq!(attribution.example_scores.len(), all_examples.len());
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];

    println!("\n## Speed (d_model 64, 2 layers, context 64, projection 32x32 on fc1/fc2 of each block)\n");
    println!("| measure | Rust (Burn, flex) |\n|---|---|");
    println!("| training tokens/s | {train_tps:.0} |");
    println!("| indexing examples/s | {index_eps:.0} |");
    println!("| indexing tokens/s | {:.0} |", index_eps * context as f64);
    println!("| index examples | {} |", all_examples.len());
    println!(
        "| index bytes/example | {:.0} |",
        index_bytes as f64 / all_examples.len() as f64
    );
    println!(
        "| query latency p50 / p95 (ms) | {:.1} / {:.1} |",
        pct(0.5),
        pct(0.95)
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
        "| indexing examples/s | {index_eps:.0} | {torch_index:.0} | {:.2} |",
        index_eps / torch_index
    );
}

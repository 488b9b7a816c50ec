//! The engine end to end on a generated corpus: planted-source accuracy, packets, refusal of
//! corrupted indexes and artifacts, and byte-identical packets across processes, scan kernels
//! and thread counts.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tributary_attrib::artifact::ModelArtifact;
use tributary_attrib::engine::{Engine, IndexSettings};
use tributary_attrib::error::EngineError;
use tributary_attrib::eval::{
    planted_accuracy, planted_corpus, train_and_index, PlantedCorpus, PlantedSpec,
};
use tributary_attrib::index::{
    GradientIndex, Kernel, KernelChoice, Method, ScanConfig, KERNEL_ENV, THREADS_ENV,
};
use tributary_attrib::model::LmConfig;
use tributary_attrib::packet::PacketRequest;
use tributary_attrib::training::TrainConfig;

struct Fixture {
    dir: PathBuf,
    planted: PlantedCorpus,
    engine: Engine,
}

/// Six contributors, two documents each, two facts each: chance picks the owner first one
/// time in six.
fn spec() -> PlantedSpec {
    PlantedSpec {
        contributors: 6,
        contributions_per_contributor: 2,
        facts_per_contributor: 2,
        filler_per_document: 3,
        seed: 11,
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = common::fresh_dir("engine");
        let planted = planted_corpus(&spec());
        let config = TrainConfig::new(
            LmConfig::new()
                .with_d_model(64)
                .with_n_layers(2)
                .with_n_heads(4)
                .with_d_ff(128)
                .with_context(64),
        )
        .with_steps(250)
        .with_checkpoints(1);
        let settings = IndexSettings {
            k_in: 16,
            k_out: 16,
            ..IndexSettings::default()
        };
        let engine = train_and_index(
            &dir,
            &planted.corpus,
            &planted.texts,
            &config,
            &settings,
            false,
        )
        .expect("train and index the planted corpus");
        Fixture {
            dir,
            planted,
            engine,
        }
    })
}

#[test]
fn planted_facts_are_attributed_to_their_owner() {
    let f = fixture();
    let report = planted_accuracy(&f.engine, &f.planted.facts, Method::Preconditioned).unwrap();
    eprintln!("planted sources: {report:?}");
    // Chance is 1/6 for top-1 and 1/2 for top-3; the floors demand far better than chance.
    assert!(
        report.top1 >= 0.75,
        "top-1 accuracy {} is below the floor",
        report.top1
    );
    assert!(
        report.top3 >= 0.9,
        "top-3 accuracy {} is below the floor",
        report.top3
    );
}

#[test]
fn packets_are_well_formed_and_repeatable_in_process() {
    let f = fixture();
    let fact = &f.planted.facts[0];
    let request = PacketRequest {
        request_id: 5,
        model_id: 1,
        model_version: 1,
        top_k: 4,
    };
    let packet = |method| {
        let a = f
            .engine
            .attribute(fact.prompt.as_bytes(), fact.completion.as_bytes(), method)
            .unwrap();
        f.engine
            .packet(&request, fact.completion.as_bytes(), &a)
            .unwrap()
    };
    let first = packet(Method::Preconditioned);
    first.check_shape(4).unwrap();
    assert!(!first.entries.is_empty());
    assert_eq!(
        first
            .entries
            .iter()
            .map(|e| e.weight_bps as u32)
            .sum::<u32>(),
        10_000
    );
    assert_eq!(
        first.weights_hash.to_hex(),
        f.engine.artifact.weights_hash()
    );
    assert_eq!(
        first.packet_hash().unwrap(),
        packet(Method::Preconditioned).packet_hash().unwrap()
    );
    // Another method is another commitment.
    assert_ne!(first.params_hash, packet(Method::GradDot).params_hash);
}

#[test]
fn packets_are_byte_identical_across_kernels_and_thread_counts() {
    let f = fixture();
    let fact = &f.planted.facts[2];
    let request = PacketRequest {
        request_id: 6,
        model_id: 1,
        model_version: 1,
        top_k: 4,
    };
    let artifact = ModelArtifact::open(&f.dir.join("model")).unwrap();
    let mut kernels = vec![KernelChoice::Scalar];
    if Kernel::simd_available() {
        kernels.push(KernelChoice::Simd);
    }
    let outputs = |engine: &Engine| -> Vec<(Vec<u8>, Vec<Option<usize>>)> {
        Method::ALL
            .into_iter()
            .map(|method| {
                let a = engine
                    .attribute(fact.prompt.as_bytes(), fact.completion.as_bytes(), method)
                    .unwrap();
                let packet = engine
                    .packet(&request, fact.completion.as_bytes(), &a)
                    .unwrap();
                let passages = a.contributions.iter().map(|c| c.best_example).collect();
                (serde_json::to_vec(&packet).unwrap(), passages)
            })
            .collect()
    };
    let reference = outputs(&f.engine);
    assert!(reference[0].1.iter().any(Option::is_some));
    for kernel in kernels {
        for threads in [1, 2, 3] {
            let index = GradientIndex::open_with(
                &f.dir.join("index"),
                ScanConfig {
                    kernel,
                    threads: Some(threads),
                },
            )
            .unwrap();
            let engine = Engine::new(artifact.clone(), index).unwrap();
            assert_eq!(
                outputs(&engine),
                reference,
                "{kernel:?} on {threads} threads"
            );
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn corrupted(name: &str, edit: impl FnOnce(&Path)) -> String {
    let f = fixture();
    let copy = f.dir.join("corrupted").join(name);
    copy_dir(&f.dir.join("model"), &copy.join("model"));
    copy_dir(&f.dir.join("index"), &copy.join("index"));
    edit(&copy);
    match Engine::open(&copy.join("model"), &copy.join("index")) {
        Ok(_) => panic!("{name}: a corrupted engine was accepted"),
        Err(e) => e.to_string(),
    }
}

fn gradients_file(dir: &Path) -> PathBuf {
    fs::read_dir(dir.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("gradients")
        })
        .expect("a gradients file")
}

#[test]
fn truncated_index_is_refused() {
    let message = corrupted("truncated", |dir| {
        let path = gradients_file(dir);
        let len = fs::metadata(&path).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
    });
    assert!(message.contains("truncated"), "{message}");
}

#[test]
fn tampered_index_is_refused() {
    let message = corrupted("tampered", |dir| {
        let path = gradients_file(dir);
        let mut bytes = fs::read(&path).unwrap();
        bytes[100] ^= 0x40;
        fs::write(&path, bytes).unwrap();
    });
    assert!(message.contains("gradients"), "{message}");
}

#[test]
fn edited_contribution_sums_are_refused() {
    let message = corrupted("sums", |dir| {
        let path = dir.join("index/contribution-sums-0.bin");
        let mut bytes = fs::read(&path).unwrap();
        // Raise one contribution's sum a little: a forged boost of its score.
        let value = f32::from_le_bytes(bytes[8..12].try_into().unwrap());
        bytes[8..12].copy_from_slice(&(value * 1.5 + 1.0).to_le_bytes());
        fs::write(&path, bytes).unwrap();
    });
    assert!(message.contains("contribution-sums-0.bin"), "{message}");
}

#[test]
fn tampered_weights_are_refused() {
    let message = corrupted("weights", |dir| {
        let path = dir.join("model/weights.bpk");
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).unwrap();
    });
    assert!(message.contains("weights.bpk"), "{message}");
}

#[test]
fn an_index_of_another_model_is_refused() {
    let f = fixture();
    let other = f.dir.join("other");
    let planted = planted_corpus(&PlantedSpec { seed: 99, ..spec() });
    let config = TrainConfig::new(common::tiny_model())
        .with_steps(5)
        .with_checkpoints(0);
    let settings = IndexSettings {
        k_in: 4,
        k_out: 4,
        ..IndexSettings::default()
    };
    train_and_index(
        &other,
        &planted.corpus,
        &planted.texts,
        &config,
        &settings,
        false,
    )
    .unwrap();
    match Engine::open(&f.dir.join("model"), &other.join("index")) {
        Err(EngineError::IndexModelMismatch { .. }) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("an index of another model was accepted"),
    }
}

/// Separate processes attributing the same completion commit byte-identical packets, whichever
/// scan kernel and thread count the environment forces.
#[test]
fn packets_are_byte_identical_across_processes() {
    let f = fixture();
    let fact = &f.planted.facts[1];
    let run = |env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tributary-attrib"))
            .args(["--json", "attribute", "--model"])
            .arg(f.dir.join("model"))
            .arg("--index")
            .arg(f.dir.join("index"))
            .args(["--prompt", &fact.prompt, "--completion", &fact.completion])
            .args([
                "--request-id",
                "77",
                "--model-id",
                "3",
                "--model-version",
                "2",
            ])
            .envs(env.iter().copied())
            .output()
            .expect("run tributary-attrib");
        assert!(
            out.status.success(),
            "{env:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
        serde_json::to_vec(&json["packet"]).unwrap()
    };
    let a = run(&[]);
    assert!(a.len() > 100, "no packet in the output");
    assert_eq!(a, run(&[]));
    assert_eq!(a, run(&[(KERNEL_ENV, "scalar"), (THREADS_ENV, "1")]));
    if Kernel::simd_available() {
        assert_eq!(a, run(&[(KERNEL_ENV, "simd"), (THREADS_ENV, "2")]));
    }
}

#[test]
fn a_bad_scan_setting_is_refused() {
    let f = fixture();
    for (name, value) in [(KERNEL_ENV, "avx9"), (THREADS_ENV, "0")] {
        let out = Command::new(env!("CARGO_BIN_EXE_tributary-attrib"))
            .args(["attribute", "--model"])
            .arg(f.dir.join("model"))
            .arg("--index")
            .arg(f.dir.join("index"))
            .args(["--prompt", "a", "--completion", "b"])
            .env(name, value)
            .output()
            .expect("run tributary-attrib");
        assert!(!out.status.success(), "{name}={value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(name), "{stderr}");
    }
}

/// `eval loss` on a trained fact is far below the loss of the same framing with an invented
/// answer, a file of both gives their byte-weighted mean, and bad input is refused (as JSON on
/// stderr, with `--output json`).
#[test]
fn eval_loss_measures_completions_one_by_one_and_from_a_file() {
    let f = fixture();
    let fact = &f.planted.facts[0];
    let eval = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tributary-attrib"))
            .args(["--output", "json", "eval", "loss", "--model"])
            .arg(f.dir.join("model"))
            .args(args)
            .output()
            .expect("run tributary-attrib")
    };
    let loss_of = |completion: &str| {
        let out = eval(&["--prompt", &fact.prompt, "--completion", completion]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["mean"]["nats_per_byte"].as_f64().unwrap()
    };
    let known = loss_of(&fact.completion);
    let invented = loss_of(" Zorbulax.");
    assert!(known < invented, "{known} vs {invented}");

    let file = f.dir.join("losses.jsonl");
    let lines = [&fact.completion, " Zorbulax."]
        .iter()
        .map(|c| serde_json::json!({"prompt": fact.prompt, "completion": c}).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, lines).unwrap();
    let out = eval(&["--file", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let (a, b) = (fact.completion.len() as f64, " Zorbulax.".len() as f64);
    let mean = (known * a + invented * b) / (a + b);
    assert!((json["mean"]["nats_per_byte"].as_f64().unwrap() - mean).abs() < 1e-9);
    let bits = json["mean"]["bits_per_byte"].as_f64().unwrap();
    assert!((bits - mean / std::f64::consts::LN_2).abs() < 1e-9);

    std::fs::write(&file, "{\"prompt\": 3}\n").unwrap();
    let out = eval(&["--file", file.to_str().unwrap()]);
    assert!(!out.status.success());
    // With --output json the error is JSON on stderr, and nothing is printed on stdout.
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("line 1"),
        "{error}"
    );
    let out = eval(&["--prompt", "only a prompt"]);
    assert!(!out.status.success());
}

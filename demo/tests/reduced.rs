//! The demo's reduced run as an end-to-end test: a live devnet, the Debian corpora, training,
//! two relayers, finalization and claims, then the demo's own checks of the final chain state
//! (every paid request finalized, balances equal to the split of the fees, usage counts equal to
//! the committed attributions), read back from its report. Needs `TRIBUTARYD`, the artifacts
//! (`ci/build-wasm`) and the packages `manpages-dev` and `fortunes` (`ci/test` installs them).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_reduced_demo_runs_to_the_end_and_its_checks_pass() {
    let home = tempfile::tempdir().unwrap();
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts");
    let out = Command::new(env!("CARGO_BIN_EXE_tributary-demo"))
        .args(["--small", "--port-offset", "5000", "--home"])
        .arg(home.path().join("demo"))
        .arg("--artifacts")
        .arg(&artifacts)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    if let Some(summary) = stdout.find("==> summary") {
        println!("{}", &stdout[summary..]);
    }

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path().join("demo/report.json")).unwrap())
            .unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() >= 5, "{checks:?}");
    for check in checks {
        assert_eq!(check["passed"], true, "{check}");
    }
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for wanted in [
        "every paid request finalized",
        "contributor balances equal the split of the fees by the agreed packets",
        "usage counts equal the committed attributions",
    ] {
        assert!(names.contains(&wanted), "{names:?}");
    }
    // Both datanets, both models, every inference with its on-chain transactions.
    assert_eq!(report["datanets"].as_array().unwrap().len(), 2);
    assert_eq!(report["models"].as_array().unwrap().len(), 2);
    let inferences = report["inferences"].as_array().unwrap();
    assert_eq!(inferences.len(), 6);
    for i in inferences {
        for tx in ["pay_tx", "commit_tx", "finalize_tx"] {
            assert_eq!(i[tx].as_str().unwrap().len(), 64, "{tx} of {i}");
        }
        assert!(!i["top"].as_array().unwrap().is_empty());
    }
    let html = std::fs::read_to_string(home.path().join("demo/report.html")).unwrap();
    assert!(html.contains(inferences[0]["commit_tx"].as_str().unwrap()));
    // Self-contained: nothing is loaded from anywhere (texts may mention URLs; no tag loads one).
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<script")
    );
}

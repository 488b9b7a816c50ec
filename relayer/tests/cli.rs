//! The command line, run as a process.

use std::path::Path;
use std::process::{Command, Output};
use tributary_relayer::outbox::{Outbox, QueueLimits, RequestRecord};

const LIMITS: QueueLimits = QueueLimits {
    per_payer: 32,
    total: 4096,
};

fn relayer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tributary-relayer"))
        .args(args)
        .output()
        .expect("run tributary-relayer")
}

fn example_path() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("relayer.example.toml")
        .display()
        .to_string()
}

#[test]
fn config_validate_accepts_the_example() {
    let out = relayer(&["config", "validate", "--config", &example_path()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "config OK: chain tributary-devnet-1, 1 models, engine http\n"
    );
}

#[test]
fn config_validate_lists_problems_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(example_path())
        .unwrap()
        .replace("gas_adjustment = 1.4", "gas_adjustment = 0.9")
        .replace("max_packets = 16", "max_packets = 0");
    std::fs::write(&path, text).unwrap();
    let out = relayer(&["config", "validate", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("has 2 problem(s)"), "{stderr}");
    assert!(
        stderr.contains("chain.gas_adjustment: must be at least 1.0, got 0.9"),
        "{stderr}"
    );
    assert!(stderr.contains("batch.max_packets: "), "{stderr}");
}

#[test]
fn outbox_status_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.redb");
    let missing = relayer(&["outbox", "status", "--path", path.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(!path.exists(), "status must not create an outbox");

    {
        let outbox = Outbox::open(&path).unwrap();
        let request = RequestRecord {
            request_id: 1,
            model_id: 1,
            version: 1,
            payer: "trib18pz45j9fupuumnf2a5hamgaptvax0s0djymqpw".into(),
            prompt_hash: "00".repeat(32),
            amount: "10".into(),
            asset: "utrib".into(),
            seen_height: 40,
            expires_at: Some(1_000),
        };
        outbox.record_seen(&[request], 42, LIMITS).unwrap();
    }

    let out = relayer(&["outbox", "status", "--path", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("cursor: 42") && stdout.contains("seen:       1"),
        "{stdout}"
    );

    let out = relayer(&[
        "outbox",
        "status",
        "--path",
        path.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["cursor"], 42);
    assert_eq!(json["counts"]["seen"], 1);
    assert_eq!(json["counts"]["committed"], 0);
    assert_eq!(json["schema_version"], 1);

    // list, show, retry and export, and errors as JSON on stderr with --output json.
    {
        let outbox = Outbox::open(&path).unwrap();
        outbox
            .mark_failed(1, "the engine refused the prompt")
            .unwrap();
    }
    let p = path.to_str().unwrap();
    let out = relayer(&["outbox", "list", "--path", p, "--state", "failed"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("the engine refused the prompt"),
        "{out:?}"
    );
    let out = relayer(&["--output", "json", "outbox", "show", "--path", p, "1"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["entry"]["state"], "failed");
    assert_eq!(shown["prompt_kept"], false);
    let out = relayer(&["outbox", "retry", "--path", p, "1"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("request 1 is seen again"));
    let out = relayer(&["--output", "json", "outbox", "retry", "--path", p, "1"]);
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"], "request 1 cannot go from seen to seen");
    let out = relayer(&["outbox", "export", "--path", p]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["tributary_relayer_outbox"], 1);
    assert_eq!(lines[1]["entry"]["state"], "seen");
}

/// The example configuration with a clear-text keyring in `dir/keys`.
fn example_with_test_keyring(dir: &std::path::Path) -> String {
    std::fs::read_to_string(example_path())
        .unwrap()
        .replace(
            "keyring_dir = \"~/.tributary/relayer/keys\"",
            &format!("keyring_dir = \"{}\"", dir.join("keys").display()),
        )
        .replace("keyring_backend = \"file\"", "keyring_backend = \"test\"")
}

#[test]
fn keys_add_recover_and_list_with_the_test_backend() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relayer.toml");
    std::fs::write(&config, example_with_test_keyring(dir.path())).unwrap();
    let config = config.to_str().unwrap();
    // The published test vector: its address is known independently.
    let mnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                    abandon abandon about";
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary-relayer"))
        .args(["keys", "add", "op", "--recover", "--config", config])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{mnemonic}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed = relayer(&["keys", "list", "--config", config]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.starts_with("op  trib19rl4cm2hmr8afy4kldpxz3fka4jguq0a"),
        "{text}"
    );
    // The key file is the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("keys"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "keyring folder mode {mode:o}");
    // A second key under the same name is refused.
    let again = relayer(&["keys", "add", "op", "--config", config]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn status_of_a_stopped_relayer_reads_its_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox.redb");
    Outbox::open(&outbox)
        .unwrap()
        .record_seen(&[], 41, LIMITS)
        .unwrap();
    let config = dir.path().join("relayer.toml");
    let text = std::fs::read_to_string(example_path())
        .unwrap()
        .replace(
            "path = \"~/.tributary/relayer/outbox.redb\"",
            &format!("path = \"{}\"", outbox.display()),
        )
        .replace("127.0.0.1:9464", "127.0.0.1:1");
    std::fs::write(&config, text).unwrap();
    let out = relayer(&["status", "--json", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["running"], false);
    assert_eq!(report["scanned_through_height"], 41);
}

#[test]
fn with_json_logs_every_line_the_running_relayer_writes_is_a_json_object() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("engine.token");
    std::fs::write(&token, "secret").unwrap();
    let config = dir.path().join("relayer.toml");
    let text = example_with_test_keyring(dir.path())
        // Nothing answers there: the relayer logs that it keeps trying.
        .replace("http://127.0.0.1:26657", "http://127.0.0.1:1")
        .replace("~/.tributary/relayer/engine.token", token.to_str().unwrap())
        .replace(
            "~/.tributary/relayer/outbox.redb",
            dir.path().join("outbox.redb").to_str().unwrap(),
        )
        .replace("127.0.0.1:8710", "127.0.0.1:18710")
        .replace("127.0.0.1:9464", "127.0.0.1:19464");
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    let mut add = Command::new(env!("CARGO_BIN_EXE_tributary-relayer"))
        .args(["keys", "add", "operator", "--recover", "--config", config])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    writeln!(
        add.stdin.take().unwrap(),
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
    )
    .unwrap();
    assert!(add.wait().unwrap().success());

    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary-relayer"))
        .args(["start", "--config", config, "--log-format", "json"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "nothing logged");
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            value["level"].is_string() && value["fields"]["message"].is_string(),
            "{line}"
        );
    }
    assert!(
        stderr.contains("no RPC endpoint answers"),
        "the unreachable node is not reported: {stderr}"
    );
}

//! The `tributary` binary against a real devnet it starts itself: a contributor's and a
//! curator's everyday commands, and bad input that must fail clearly and commit nothing.
//! Needs `TRIBUTARYD=$(chain/build)` and the artifacts from `ci/build-wasm`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

struct Net {
    _dir: tempfile::TempDir,
    home: PathBuf,
    store: Child,
    store_url: String,
    store_dir: PathBuf,
    /// Held open so the server never writes into a closed pipe.
    _store_out: std::io::BufReader<std::process::ChildStdout>,
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = self.store.kill();
        let _ = self.store.wait();
        let _ = tributary(&self.home, &["devnet", "down"]);
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tributary(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env("TRIBUTARY_DEVNET_HOME", home)
        .env("TRIBUTARY_DEPLOYMENT", home.join("deployment.json"))
        .env("TRIBUTARY_KEYRING_DIR", home.join("keyring"))
        .env("TRIBUTARY_KEYRING_BACKEND", "test")
        .env("TRIBUTARY_ARTIFACTS", repo().join("artifacts"))
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the tributary binary runs")
}

/// Runs a command that must succeed and returns its JSON output.
fn ok(home: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = tributary(home, &all);
    assert!(
        out.status.success(),
        "tributary {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// Runs a command that must fail and returns its error text.
fn fails(home: &Path, args: &[&str]) -> String {
    let out = tributary(home, args);
    assert!(
        !out.status.success(),
        "tributary {args:?} should have failed"
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn start() -> Net {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    ok(
        &home,
        &[
            "devnet",
            "up",
            "--port-offset",
            "3000",
            "--block-time-ms",
            "400",
            "--challenge-window",
            "1",
        ],
    );
    let store_dir = dir.path().join("store");
    let mut store = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args([
            "store",
            "serve",
            "--dir",
            store_dir.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .args(["--max-bytes", "4096", "--output", "json"])
        // No write flag: the store takes only what the devnet's datanet contract lists.
        .env("TRIBUTARY_DEPLOYMENT", home.join("deployment.json"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The server prints its address first; one reader keeps whatever it buffers.
    let mut reader = std::io::BufReader::new(store.stdout.take().unwrap());
    let mut line = String::new();
    let store_url = loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0,
            "the store exited before printing its address"
        );
        if let Some(url) = line.split('"').find(|s| s.starts_with("http://")) {
            break url.to_string();
        }
    };
    Net {
        _dir: dir,
        home,
        store,
        store_url,
        store_dir,
        _store_out: reader,
    }
}

fn contribution_count(home: &Path, datanet: &str) -> u64 {
    ok(home, &["datanet", "show", datanet])["contribution_count"]
        .as_u64()
        .unwrap()
}

#[test]
fn everyday_commands_and_bad_input_through_the_cli() {
    let net = start();
    let home = &net.home;
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = files.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let a = write("a.txt", "pthread_create(3): create a new thread");
    let b = write("b.txt", "mmap(2): map files or devices into memory");

    // Curator creates, contributors contribute through the store, the curator reviews.
    let created = ok(
        home,
        &[
            "datanet",
            "create",
            "--from",
            "curator",
            "--name",
            "C pages",
            "--tag",
            "systems",
            "--license",
            "GPL-2.0",
        ],
    );
    let datanet = created["datanet_id"].as_str().unwrap().to_string();
    let contributed = ok(
        home,
        &[
            "contribute",
            "--from",
            "contributor1",
            "--datanet",
            &datanet,
            "--store",
            &net.store_url,
            &a,
            &b,
        ],
    );
    let ids: Vec<String> = contributed["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contribution_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    ok(home, &["review", &ids[0], "accept", "--from", "curator"]);
    let rejected = ok(
        home,
        &[
            "review",
            &ids[1],
            "reject",
            "--reason",
            "duplicate page",
            "--from",
            "curator",
        ],
    );
    assert_eq!(rejected["status"], "rejected");
    let version = ok(
        home,
        &["snapshot", "--datanet", &datanet, "--from", "curator"],
    );
    assert_eq!(version["count"], 1);

    // The version as a training corpus: its listed contributions hash to its root.
    let corpus_path = files.path().join("corpus.json");
    let version_arg = format!("{datanet}@{}", version["version"]);
    ok(
        home,
        &[
            "datanet",
            "corpus",
            "--version",
            &version_arg,
            "--out",
            corpus_path.to_str().unwrap(),
        ],
    );
    let corpus: Value = serde_json::from_slice(&std::fs::read(&corpus_path).unwrap()).unwrap();
    let listed = corpus["contributions"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    let leaves: Vec<_> = listed
        .iter()
        .map(|c| {
            let hash: [u8; 32] = hex::decode(c["content_hash"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            tributary_types::merkle::contribution_leaf(
                c["contribution_id"].as_u64().unwrap(),
                &hash,
                c["contributor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hex::encode(tributary_types::merkle::root_from_leaves(&leaves)),
        corpus["datanets"][0]["root"].as_str().unwrap()
    );
    assert!(fails(home, &["datanet", "corpus", "--version", "7"]).contains("DATANET_ID@VERSION"));

    // The uploaded bytes are in the store under their hash.
    let hash = contributed["contributions"][0]["content_hash"]
        .as_str()
        .unwrap();
    let body = std::fs::read(files.path().join("a.txt")).unwrap();
    let blobs = tributary_store::LocalStore::open(&net.store_dir).unwrap();
    assert_eq!(blobs.get(&hash.parse().unwrap()).unwrap(), Some(body));

    let before = contribution_count(home, &datanet);

    // A contract error, surfaced with the contract's own text: the commitment lands, its
    // reveal is refused, and no contribution is recorded.
    let err = fails(
        home,
        &[
            "contribute",
            "--from",
            "contributor2",
            "--datanet",
            &datanet,
            "--store",
            &net.store_url,
            &a,
        ],
    );
    assert!(err.contains("is already contribution"), "{err}");
    // Wrong chain id.
    let err = fails(
        home,
        &["datanet", "show", &datanet, "--chain-id", "other-chain"],
    );
    assert!(
        err.contains("\"other-chain\"") && err.contains("tributary-devnet-1"),
        "{err}"
    );
    // Unknown key.
    let err = fails(
        home,
        &[
            "contribute",
            "--from",
            "nobody",
            "--datanet",
            &datanet,
            "--store",
            &net.store_url,
            &b,
        ],
    );
    assert!(err.contains("no key named \"nobody\""), "{err}");
    // Node down.
    let err = fails(
        home,
        &["datanet", "show", &datanet, "--node", "http://127.0.0.1:9"],
    );
    assert!(err.contains("does not answer"), "{err}");
    assert!(!err.contains("Stack backtrace"), "{err}");
    // Unfunded account: a fresh key the chain has never seen.
    let mnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    let mut import = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["keys", "import", "fresh"])
        .env("TRIBUTARY_KEYRING_DIR", home.join("keyring"))
        .env("TRIBUTARY_KEYRING_BACKEND", "test")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(import.stdin.as_mut().unwrap(), mnemonic.as_bytes()).unwrap();
    drop(import.stdin.take());
    assert!(import.wait().unwrap().success());
    let c = write("c.txt", "fork(2): create a child process");
    let err = fails(
        home,
        &[
            "contribute",
            "--from",
            "fresh",
            "--datanet",
            &datanet,
            "--store",
            &net.store_url,
            &c,
        ],
    );
    assert!(err.contains("does not exist on chain"), "{err}");
    // Out of gas: the gas limit is far below what simulation measured.
    let err = fails(
        home,
        &[
            "contribute",
            "--from",
            "contributor2",
            "--datanet",
            &datanet,
            "--store",
            &net.store_url,
            &c,
            "--gas",
            "60000",
        ],
    );
    assert!(err.to_lowercase().contains("out of gas"), "{err}");
    // Fee too low: a deployment file claiming a zero gas price.
    let mut deployment: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("deployment.json")).unwrap())
            .unwrap();
    deployment["gas_price"] = Value::from("0");
    let cheap = files.path().join("cheap.json");
    std::fs::write(&cheap, deployment.to_string()).unwrap();
    let err = fails(
        home,
        &[
            "contribute",
            "--from",
            "contributor2",
            "--datanet",
            &datanet,
            "--store",
            &net.store_url,
            &c,
            "--deployment",
            cheap.to_str().unwrap(),
        ],
    );
    assert!(err.to_lowercase().contains("fee"), "{err}");
    assert_eq!(
        contribution_count(home, &datanet),
        before,
        "a failed command committed a contribution"
    );

    // An oversized blob is refused by the store. The bytes go up only after the reveal (the
    // store takes nothing the chain does not list), so the contribution is on chain by then.
    let big = write("big.txt", &"x".repeat(5000));
    let err = fails(
        home,
        &[
            "contribute",
            "--from",
            "contributor2",
            "--datanet",
            &datanet,
            "--store",
            &net.store_url,
            &big,
        ],
    );
    assert!(
        err.contains("is on chain, but uploading")
            && err.contains("413")
            && err.contains("over the store's limit"),
        "{err}"
    );
    assert_eq!(contribution_count(home, &datanet), before + 1);

    // Balances: claimable appears for nobody yet, the bank balance is reported.
    let balance = ok(home, &["balance", "--from", "contributor1"]);
    assert!(
        balance["bank"][0]["amount"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
            > 0
    );
    let err = fails(home, &["claim", "--from", "contributor1"]);
    assert!(err.contains("nothing to claim"), "{err}");

    // The curator's queue, a contributor's withdrawal, a new curator, a dry run, a fixed fee
    // and a transfer of ownership.
    let c = write("c.txt", "fork(2): create a child process");
    let d = write("d.txt", "execve(2): execute a program");
    let contributed = ok(
        home,
        &[
            "contribute",
            "--from",
            "contributor1",
            "--datanet",
            &datanet,
            "--store",
            &net.store_url,
            &c,
            &d,
        ],
    );
    let new_ids: Vec<u64> = contributed["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contribution_id"].as_str().unwrap().parse().unwrap())
        .collect();
    let pending_ids = |home: &Path| -> Vec<u64> {
        ok(home, &["datanet", "pending", &datanet])
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_u64().unwrap())
            .collect()
    };
    // An earlier contribution is still waiting too.
    let waiting = pending_ids(home);
    assert!(waiting.ends_with(&new_ids), "{waiting:?}");
    ok(
        home,
        &[
            "withdraw",
            &new_ids[1].to_string(),
            "--from",
            "contributor1",
        ],
    );
    assert_eq!(pending_ids(home), waiting[..waiting.len() - 1]);
    let contributor2 = ok(home, &["keys", "show", "contributor2"])["address"]
        .as_str()
        .unwrap()
        .to_string();
    fails(
        home,
        &[
            "review",
            &new_ids[0].to_string(),
            "accept",
            "--from",
            "contributor2",
        ],
    );
    ok(
        home,
        &[
            "datanet",
            "curators",
            &datanet,
            "--add",
            &contributor2,
            "--from",
            "curator",
        ],
    );
    ok(
        home,
        &[
            "review",
            &new_ids[0].to_string(),
            "accept",
            "--from",
            "contributor2",
        ],
    );
    assert!(!pending_ids(home).contains(&new_ids[0]));

    let shown = |home: &Path| ok(home, &["datanet", "show", &datanet]);
    let before = shown(home);
    let dry = ok(
        home,
        &[
            "datanet",
            "update",
            &datanet,
            "--description",
            "dry",
            "--from",
            "curator",
            "--dry-run",
        ],
    );
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert!(dry["gas_used"].as_u64().unwrap() > 0, "{dry}");
    assert!(dry["gas_limit"].as_u64().unwrap() >= dry["gas_used"].as_u64().unwrap());
    assert!(dry["fee"].as_str().unwrap().ends_with("utrib"), "{dry}");
    assert_eq!(shown(home)["description"], before["description"]);

    let utrib = |home: &Path, key: &str| -> u128 {
        let balance = ok(home, &["balance", "--from", key]);
        balance["bank"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["denom"] == "utrib")
            .map_or(0, |c| c["amount"].as_str().unwrap().parse().unwrap())
    };
    let paid_before = utrib(home, "curator");
    ok(
        home,
        &[
            "datanet",
            "update",
            &datanet,
            "--description",
            "Linux C pages",
            "--from",
            "curator",
            "--fees",
            "7777utrib",
        ],
    );
    assert_eq!(paid_before - utrib(home, "curator"), 7777);
    assert_eq!(shown(home)["description"], "Linux C pages");

    ok(
        home,
        &[
            "datanet",
            "transfer",
            &datanet,
            "--to",
            &contributor2,
            "--from",
            "curator",
        ],
    );
    assert_eq!(shown(home)["owner"], contributor2.as_str());
    let err = fails(
        home,
        &[
            "datanet",
            "update",
            &datanet,
            "--license",
            "MIT",
            "--from",
            "curator",
        ],
    );
    assert!(
        err.contains("is not allowed to update this datanet"),
        "{err}"
    );

    // A gateway published and withdrawn; withdrawing twice says there is none.
    let published = ok(
        home,
        &[
            "model",
            "gateway",
            "--url",
            "https://gw.example/relay",
            "--from",
            "contributor1",
        ],
    );
    assert_eq!(published["url"], "https://gw.example/relay");
    assert_eq!(published["action"], "set_gateway");
    ok(
        home,
        &["model", "gateway", "--withdraw", "--from", "contributor1"],
    );
    let err = fails(
        home,
        &["model", "gateway", "--withdraw", "--from", "contributor1"],
    );
    assert!(err.contains("has published no gateway"), "{err}");

    // Shell completions name the commands.
    let script = tributary(home, &["completions", "bash"]);
    assert!(script.status.success());
    let script = String::from_utf8_lossy(&script.stdout);
    for command in ["infer", "requests", "refund", "withdraw", "pending"] {
        assert!(
            script.contains(command),
            "{command} missing from the completions"
        );
    }

    // Keplr's chain description.
    let info = ok(home, &["chain-info"]);
    assert_eq!(info["bech32Config"]["bech32PrefixAccAddr"], "trib");
    assert_eq!(info["stakeCurrency"]["coinMinimalDenom"], "utrib");
}

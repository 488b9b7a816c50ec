//! `tributary store serve` without a chain: who may write is always said, by a flag or by the
//! deployment; with neither it does not start.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn store_serve(dir: &std::path::Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    command
        .args(["store", "serve", "--dir", dir.to_str().unwrap()])
        .args(["--addr", "127.0.0.1:0"])
        .args(extra)
        .env("TRIBUTARY_DEPLOYMENT", dir.join("no-deployment.json"))
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[test]
fn store_serve_refuses_to_start_without_a_write_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = store_serve(dir.path(), &[]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the store started with no word on who may write to it");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for flag in ["--chain-rest", "--datanet-contract", "--tokens", "--open"] {
        assert!(stderr.contains(flag), "{flag} not named in: {stderr}");
    }
}

#[test]
fn store_serve_without_flags_takes_only_what_the_deployments_chain_lists() {
    let dir = tempfile::tempdir().unwrap();
    let contract = |name: &str| format!("trib1{name}");
    let deployment = tributary_client::Deployment {
        chain_id: "tributary-devnet".into(),
        rpc_url: "http://127.0.0.1:26657".into(),
        rest_url: Some("http://127.0.0.1:1317".into()),
        grpc_addr: None,
        bech32_prefix: "trib".into(),
        denom: "utrib".into(),
        gas_price: "0.025".into(),
        admin: contract("admin"),
        treasury: contract("treasury"),
        code_ids: tributary_client::Contracts {
            datanet: 1,
            model_registry: 2,
            payout: 3,
            cw20: 4,
        },
        checksums: tributary_client::Contracts {
            datanet: String::new(),
            model_registry: String::new(),
            payout: String::new(),
            cw20: String::new(),
        },
        contracts: tributary_client::Contracts {
            datanet: contract("datanet"),
            model_registry: contract("registry"),
            payout: contract("payout"),
            cw20: contract("cw"),
        },
        settings: tributary_client::DeploySettings::default(),
    };
    deployment
        .save(&dir.path().join("no-deployment.json"))
        .unwrap();
    let mut child = store_serve(dir.path(), &["--output", "json"])
        .spawn()
        .unwrap();
    let writes = first_line_naming_the_writes(&mut child);
    assert!(
        writes.contains("live contributions of trib1datanet via http://127.0.0.1:1317"),
        "{writes}"
    );
}

/// The line of the server's JSON banner that says who may write, then stops the server.
fn first_line_naming_the_writes(child: &mut std::process::Child) -> String {
    let mut writes = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("\"writes\"") {
            writes = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    writes.expect("the server says who may write")
}

#[test]
fn store_serve_takes_exactly_one_write_policy() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("accounts.json");
    std::fs::write(&tokens, r#"{"accounts": []}"#).unwrap();
    let tokens = tokens.to_str().unwrap();
    for extra in [
        &["--open", "--tokens", tokens][..],
        &["--chain-rest", "http://127.0.0.1:1317"],
        &[
            "--chain-rest",
            "http://127.0.0.1:1317",
            "--datanet-contract",
            "trib1x",
            "--open",
        ],
    ] {
        let out = store_serve(dir.path(), extra).output().unwrap();
        assert!(!out.status.success(), "{extra:?} was accepted");
    }
}

#[test]
fn store_serve_open_says_that_anyone_may_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = store_serve(dir.path(), &["--open", "--output", "json"])
        .spawn()
        .unwrap();
    let writes = first_line_naming_the_writes(&mut child);
    assert!(writes.contains("anyone (--open)"), "{writes}");
}

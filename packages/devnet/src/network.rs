//! Creating, starting, watching and stopping a devnet.

use crate::tributaryd::Tributaryd;
use crate::{DevnetParams, Error};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tendermint_rpc::{Client as _, HttpClient};

/// How to shape a new devnet.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Number of validators (1 by default).
    pub validators: usize,
    /// Added to every base port, so several devnets can run side by side (tests).
    pub port_offset: u16,
    /// Extra genesis balances: `(address, coins)` such as `("trib1...", "5000utrib")`.
    pub extra_funds: Vec<(String, String)>,
    /// Overrides the block time of the parameters (tests run faster).
    pub block_time_ms: Option<u64>,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            validators: 1,
            port_offset: 0,
            extra_funds: Vec::new(),
            block_time_ms: None,
        }
    }
}

/// One validator node of a devnet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub index: usize,
    pub home: PathBuf,
    pub node_id: String,
    pub rpc_url: String,
    pub rest_url: String,
    pub grpc_addr: String,
    pub p2p_port: u16,
    /// The validator's operator key (test keyring of this node's home).
    pub validator: DevKey,
}

/// A funded test key. Devnet keys live in a test keyring and must never hold real value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DevKey {
    pub name: String,
    pub address: String,
    pub mnemonic: String,
}

/// What one node is doing.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub index: usize,
    pub pid: Option<i32>,
    pub running: bool,
    pub height: Option<u64>,
    pub rpc_url: String,
}

/// A local network, as recorded in `<home>/devnet.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Devnet {
    pub home: PathBuf,
    pub chain_id: String,
    pub denom: String,
    pub binary: PathBuf,
    pub params: DevnetParams,
    pub nodes: Vec<Node>,
    /// The named keys of `chain/devnet.toml`, funded at genesis.
    pub keys: Vec<DevKey>,
    #[serde(skip)]
    children: Mutex<HashMap<usize, Child>>,
}

const MANIFEST: &str = "devnet.json";

impl Devnet {
    /// Creates the homes, keys and genesis of a new devnet under `home` (nothing is started).
    pub fn init(
        tributaryd: &Tributaryd,
        home: &Path,
        params: &DevnetParams,
        options: &InitOptions,
    ) -> Result<Devnet, Error> {
        check_fresh_home(home)?;
        let existed = home.exists();
        fs::create_dir_all(home).map_err(Error::io(home))?;
        let result = Self::init_in(tributaryd, home, params, options);
        if result.is_err() {
            // Leave no half-initialized home behind: it was empty (or absent) before.
            let _ = if existed {
                fs::read_dir(home).map(|entries| {
                    for entry in entries.flatten() {
                        let _ = fs::remove_dir_all(entry.path())
                            .or_else(|_| fs::remove_file(entry.path()));
                    }
                })
            } else {
                fs::remove_dir_all(home)
            };
        }
        result
    }

    fn init_in(
        tributaryd: &Tributaryd,
        home: &Path,
        params: &DevnetParams,
        options: &InitOptions,
    ) -> Result<Devnet, Error> {
        let home = fs::canonicalize(home).map_err(Error::io(home))?;
        let count = options.validators.max(1);
        let port =
            |base: u16, i: usize| base + options.port_offset + params.ports.stride * i as u16;
        let node_home = |i: usize| home.join(format!("node{i}"));
        let keyring = ["--keyring-backend", "test"];

        let mut nodes = Vec::with_capacity(count);
        for i in 0..count {
            let h = node_home(i);
            let hs = Tributaryd::path(&h);
            let moniker = format!("node{i}");
            tributaryd.run(&[
                "init",
                &moniker,
                "--chain-id",
                &params.chain_id,
                "--default-denom",
                &params.denom,
                "--home",
                hs,
            ])?;
            let validator = add_key(tributaryd, &format!("validator{i}"), hs, &keyring)?;
            let node_id = tributaryd
                .run(&["comet", "show-node-id", "--home", hs])?
                .trim()
                .to_string();
            nodes.push(Node {
                index: i,
                home: h.clone(),
                node_id,
                rpc_url: format!("http://127.0.0.1:{}", port(params.ports.rpc, i)),
                rest_url: format!("http://127.0.0.1:{}", port(params.ports.rest, i)),
                grpc_addr: format!("127.0.0.1:{}", port(params.ports.grpc, i)),
                p2p_port: port(params.ports.p2p, i),
                validator,
            });
        }
        let h0 = node_home(0);
        let h0s = Tributaryd::path(&h0);
        let keys = params
            .accounts
            .names
            .iter()
            .map(|name| add_key(tributaryd, name, h0s, &keyring))
            .collect::<Result<Vec<_>, _>>()?;

        let genesis_path = h0.join("config/genesis.json");
        edit_genesis(&genesis_path, params)?;
        let balance = format!("{}{}", params.accounts.balance, params.denom);
        let funded = nodes
            .iter()
            .map(|n| (n.validator.address.clone(), balance.clone()))
            .chain(keys.iter().map(|k| (k.address.clone(), balance.clone())))
            .chain(options.extra_funds.iter().cloned());
        for (address, coins) in funded {
            tributaryd.run(&[
                "genesis",
                "add-genesis-account",
                &address,
                &coins,
                "--home",
                h0s,
            ])?;
        }

        // Every validator signs its gentx against the funded genesis; node 0 collects them.
        let stake = format!("{}{}", params.accounts.self_delegation, params.denom);
        let gentx_dir = h0.join("config/gentx");
        for node in &nodes {
            let hs = Tributaryd::path(&node.home);
            if node.index > 0 {
                copy(&genesis_path, &node.home.join("config/genesis.json"))?;
            }
            let p2p = node.p2p_port.to_string();
            tributaryd.run(&[
                "genesis",
                "gentx",
                &node.validator.name,
                &stake,
                "--chain-id",
                &params.chain_id,
                "--home",
                hs,
                "--keyring-backend",
                "test",
                "--ip",
                "127.0.0.1",
                "--p2p-port",
                &p2p,
            ])?;
            if node.index > 0 {
                let dir = node.home.join("config/gentx");
                for entry in fs::read_dir(&dir).map_err(Error::io(&dir))? {
                    let entry = entry.map_err(Error::io(&dir))?;
                    copy(&entry.path(), &gentx_dir.join(entry.file_name()))?;
                }
            }
        }
        tributaryd.run(&["genesis", "collect-gentxs", "--home", h0s])?;
        tributaryd.run(&["genesis", "validate", "--home", h0s])?;

        let block_time = options
            .block_time_ms
            .unwrap_or(params.consensus.block_time_ms);
        for node in &nodes {
            if node.index > 0 {
                copy(&genesis_path, &node.home.join("config/genesis.json"))?;
            }
            let peers: Vec<String> = nodes
                .iter()
                .filter(|n| n.index != node.index)
                .map(|n| format!("{}@127.0.0.1:{}", n.node_id, n.p2p_port))
                .collect();
            configure_node(
                node,
                params,
                &peers.join(","),
                block_time,
                port(params.ports.rpc, node.index) + 1,
            )?;
        }

        let devnet = Devnet {
            home: home.clone(),
            chain_id: params.chain_id.clone(),
            denom: params.denom.clone(),
            binary: tributaryd.binary.clone(),
            params: params.clone(),
            nodes,
            keys,
            children: Mutex::new(HashMap::new()),
        };
        devnet.save()?;
        Ok(devnet)
    }

    /// Reads the devnet recorded under `home`.
    pub fn load(home: &Path) -> Result<Devnet, Error> {
        let path = home.join(MANIFEST);
        if !path.exists() {
            return Err(Error::NotInitialized {
                home: home.to_path_buf(),
            });
        }
        let text = fs::read_to_string(&path).map_err(Error::io(&path))?;
        serde_json::from_str(&text).map_err(|e| Error::Config {
            path,
            message: e.to_string(),
        })
    }

    fn save(&self) -> Result<(), Error> {
        let path = self.home.join(MANIFEST);
        let tmp = self.home.join(format!("{MANIFEST}.tmp"));
        let text = serde_json::to_string_pretty(self).expect("devnet serializes");
        fs::write(&tmp, text).map_err(Error::io(&tmp))?;
        fs::rename(&tmp, &path).map_err(Error::io(&path))
    }

    /// A named key of the devnet.
    pub fn key(&self, name: &str) -> Option<&DevKey> {
        self.keys
            .iter()
            .chain(self.nodes.iter().map(|n| &n.validator))
            .find(|k| k.name == name)
    }

    /// The first node's RPC URL.
    pub fn rpc_url(&self) -> &str {
        &self.nodes[0].rpc_url
    }

    /// Starts every node that is not running, in the background, logging to `<node home>/node.log`.
    pub fn start(&self) -> Result<(), Error> {
        for node in &self.nodes {
            self.start_node(node.index)?;
        }
        Ok(())
    }

    /// Starts one node (after [`Devnet::kill_node`] or a crash).
    pub fn start_node(&self, index: usize) -> Result<(), Error> {
        let node = &self.nodes[index];
        if let Some(pid) = self.pid(index) {
            if alive(pid) {
                return Err(Error::AlreadyRunning { index, pid });
            }
        }
        let log_path = node.home.join("node.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(Error::io(&log_path))?;
        let err_log = log.try_clone().map_err(Error::io(&log_path))?;
        use std::os::unix::process::CommandExt;
        let child = Command::new(&self.binary)
            .args([
                "start",
                "--log_no_color",
                "--home",
                Tributaryd::path(&node.home),
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            // Its own process group: the node outlives the command that started it.
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        let pid_path = node.home.join("node.pid");
        fs::write(&pid_path, child.id().to_string()).map_err(Error::io(&pid_path))?;
        self.children
            .lock()
            .expect("not poisoned")
            .insert(index, child);
        Ok(())
    }

    /// The recorded pid of a node, if any.
    pub fn pid(&self, index: usize) -> Option<i32> {
        fs::read_to_string(self.nodes[index].home.join("node.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Whether a node process is alive.
    pub fn is_running(&self, index: usize) -> bool {
        if let Some(child) = self.children.lock().expect("not poisoned").get_mut(&index) {
            return matches!(child.try_wait(), Ok(None));
        }
        self.pid(index).is_some_and(alive)
    }

    /// Waits until node `index` reports a block at `height` or more.
    pub async fn wait_for_height(
        &self,
        index: usize,
        height: u64,
        timeout: Duration,
    ) -> Result<u64, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(h) = self.height(index).await {
                if h >= height {
                    return Ok(h);
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout {
                    height,
                    seconds: timeout.as_secs(),
                    home: self.home.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The latest height node `index` reports, or `None` when it does not answer.
    pub async fn height(&self, index: usize) -> Option<u64> {
        let client = HttpClient::builder(self.nodes[index].rpc_url.parse().ok()?)
            .compat_mode(tendermint_rpc::client::CompatMode::V0_38)
            .build()
            .ok()?;
        let status = tokio::time::timeout(Duration::from_secs(2), client.status())
            .await
            .ok()?
            .ok()?;
        Some(status.sync_info.latest_block_height.value())
    }

    /// Every node's process and height.
    pub async fn status(&self) -> Vec<NodeStatus> {
        let mut out = Vec::new();
        for node in &self.nodes {
            out.push(NodeStatus {
                index: node.index,
                pid: self.pid(node.index),
                running: self.is_running(node.index),
                height: self.height(node.index).await,
                rpc_url: node.rpc_url.clone(),
            });
        }
        out
    }

    /// `kill -9` one node: no shutdown, as in a crash.
    pub fn kill_node(&self, index: usize) -> Result<(), Error> {
        self.signal_and_reap(index, libc::SIGKILL, Duration::from_secs(5))
    }

    /// Stops one node gracefully (SIGTERM, then SIGKILL after 15 s).
    pub fn stop_node(&self, index: usize) -> Result<(), Error> {
        self.signal_and_reap(index, libc::SIGTERM, Duration::from_secs(15))?;
        if self.is_running(index) {
            self.signal_and_reap(index, libc::SIGKILL, Duration::from_secs(5))?;
        }
        Ok(())
    }

    /// Stops every node.
    pub fn stop(&self) -> Result<(), Error> {
        for node in &self.nodes {
            self.stop_node(node.index)?;
        }
        Ok(())
    }

    fn signal_and_reap(&self, index: usize, signal: i32, wait: Duration) -> Result<(), Error> {
        let Some(pid) = self.pid(index) else {
            return Ok(());
        };
        // SAFETY: kill(2) with a pid this devnet started and recorded.
        unsafe {
            libc::kill(pid, signal);
        }
        let deadline = Instant::now() + wait;
        while self.is_running(index) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if !self.is_running(index) {
            self.children.lock().expect("not poisoned").remove(&index);
            let pid_path = self.nodes[index].home.join("node.pid");
            let _ = fs::remove_file(pid_path);
        }
        Ok(())
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn check_fresh_home(home: &Path) -> Result<(), Error> {
    if home.join(MANIFEST).exists() {
        return Err(Error::AlreadyInitialized {
            home: home.to_path_buf(),
        });
    }
    if home.exists() {
        let mut entries = fs::read_dir(home).map_err(Error::io(home))?;
        if entries.next().is_some() {
            return Err(Error::HalfInitialized {
                home: home.to_path_buf(),
            });
        }
    }
    Ok(())
}

fn add_key(
    tributaryd: &Tributaryd,
    name: &str,
    home: &str,
    keyring: &[&str],
) -> Result<DevKey, Error> {
    let mut args = vec!["keys", "add", name, "--home", home, "--output", "json"];
    args.extend_from_slice(keyring);
    let value = tributaryd.run_json(&args)?;
    let field = |f: &str| {
        value[f]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Output(format!("`keys add` printed no {f}")))
    };
    Ok(DevKey {
        name: name.to_string(),
        address: field("address")?,
        mnemonic: field("mnemonic")?,
    })
}

fn copy(from: &Path, to: &Path) -> Result<(), Error> {
    fs::copy(from, to).map(|_| ()).map_err(Error::io(to))
}

fn edit_genesis(path: &Path, params: &DevnetParams) -> Result<(), Error> {
    let text = fs::read_to_string(path).map_err(Error::io(path))?;
    let mut genesis: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let app = &mut genesis["app_state"];
    app["wasm"]["params"]["code_upload_access"] = serde_json::json!({
        "permission": params.wasm.code_upload_access,
        "addresses": [],
    });
    app["wasm"]["params"]["instantiate_default_permission"] =
        serde_json::json!(params.wasm.instantiate_default_permission);
    app["gov"]["params"]["voting_period"] = serde_json::json!(params.governance.voting_period);
    app["gov"]["params"]["expedited_voting_period"] =
        serde_json::json!(params.governance.expedited_voting_period);
    let text = serde_json::to_string_pretty(&genesis).expect("genesis serializes");
    fs::write(path, text).map_err(Error::io(path))
}

fn configure_node(
    node: &Node,
    params: &DevnetParams,
    peers: &str,
    block_time_ms: u64,
    abci_port: u16,
) -> Result<(), Error> {
    let rpc_port = node.rpc_url.rsplit(':').next().unwrap_or_default();
    let rest_port = node.rest_url.rsplit(':').next().unwrap_or_default();
    edit_toml(&node.home.join("config/config.toml"), |doc| {
        doc["proxy_app"] = toml_edit::value(format!("tcp://127.0.0.1:{abci_port}"));
        doc["rpc"]["laddr"] = toml_edit::value(format!("tcp://127.0.0.1:{rpc_port}"));
        doc["rpc"]["pprof_laddr"] = toml_edit::value("");
        if params.api.cors_open {
            let mut origins = toml_edit::Array::new();
            origins.push("*");
            doc["rpc"]["cors_allowed_origins"] = toml_edit::value(origins);
        }
        doc["p2p"]["laddr"] = toml_edit::value(format!("tcp://127.0.0.1:{}", node.p2p_port));
        doc["p2p"]["persistent_peers"] = toml_edit::value(peers);
        doc["p2p"]["allow_duplicate_ip"] = toml_edit::value(true);
        doc["p2p"]["addr_book_strict"] = toml_edit::value(false);
        doc["consensus"]["timeout_commit"] = toml_edit::value(format!("{block_time_ms}ms"));
        doc["instrumentation"]["prometheus"] = toml_edit::value(false);
    })?;
    edit_toml(&node.home.join("config/app.toml"), |doc| {
        doc["minimum-gas-prices"] = toml_edit::value(params.min_gas_prices());
        doc["api"]["enable"] = toml_edit::value(params.api.rest);
        doc["api"]["address"] = toml_edit::value(format!("tcp://127.0.0.1:{rest_port}"));
        doc["api"]["enabled-unsafe-cors"] = toml_edit::value(params.api.cors_open);
        doc["grpc"]["enable"] = toml_edit::value(params.api.grpc);
        doc["grpc"]["address"] = toml_edit::value(node.grpc_addr.clone());
        doc["wasm"]["query_gas_limit"] = toml_edit::value(params.wasm.smart_query_gas_limit as i64);
    })
}

fn edit_toml(path: &Path, edit: impl FnOnce(&mut toml_edit::DocumentMut)) -> Result<(), Error> {
    let text = fs::read_to_string(path).map_err(Error::io(path))?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| Error::Config {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
    edit(&mut doc);
    fs::write(path, doc.to_string()).map_err(Error::io(path))
}

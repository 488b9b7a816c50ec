//! What the server tests share: a real server on a temporary folder, and raw HTTP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tributary_store::api::ErrorBody;
use tributary_store::local::TEMP_DIR;
use tributary_store::{serve, HttpStore, LocalStore, OpenPolicy, ServerConfig, WritePolicy};

pub struct TestServer {
    pub addr: SocketAddr,
    pub local: LocalStore,
    _dir: TempDir,
}

impl TestServer {
    /// A server that takes every write, as on a developer's machine.
    pub async fn start(config: ServerConfig) -> Self {
        Self::start_with(
            |root| LocalStore::open(root).unwrap(),
            Arc::new(OpenPolicy),
            config,
        )
        .await
    }

    /// A server over the store `open` makes in a fresh folder, taking writes as `policy` does.
    pub async fn start_with(
        open: impl FnOnce(&Path) -> LocalStore,
        policy: Arc<dyn WritePolicy>,
        config: ServerConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let local = open(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, local.clone(), policy, config));
        Self {
            addr,
            local,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn http_store(&self) -> HttpStore {
        HttpStore::new(&self.url("")).unwrap()
    }

    /// Whether the folder holds anything at all besides the empty temp folder.
    pub fn folder_is_empty(&self) -> bool {
        std::fs::read_dir(self.local.root())
            .unwrap()
            .all(|entry| entry.unwrap().file_name() == TEMP_DIR)
            && std::fs::read_dir(self.local.root().join(TEMP_DIR))
                .unwrap()
                .next()
                .is_none()
    }
}

pub fn capped(max_blob_bytes: u64) -> ServerConfig {
    ServerConfig {
        max_blob_bytes,
        ..ServerConfig::default()
    }
}

pub async fn json<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> T {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

pub async fn error_body(response: reqwest::Response) -> ErrorBody {
    json(response).await
}

/// Sends `request` over a fresh connection and returns everything the server sends back.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the server answers without waiting for the rest of the body");
    String::from_utf8_lossy(&answer).into_owned()
}

//! `tributary store serve`: the content store of the embedded default.

use crate::output::Output;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use tributary_store::{AllowedOrigins, LocalStore, ServerConfig};

pub async fn serve(
    dir: PathBuf,
    addr: String,
    max_bytes: u64,
    origins: Vec<String>,
    output: Output,
) -> Result<()> {
    let store = LocalStore::open(&dir)
        .with_context(|| format!("opening the store at {}", dir.display()))?
        .with_max_blob_bytes(max_bytes);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    let config = ServerConfig {
        max_blob_bytes: max_bytes,
        allowed_origins: if origins.is_empty() {
            AllowedOrigins::Any
        } else {
            AllowedOrigins::List(origins)
        },
    };
    output.print(
        &serde_json::json!({"url": format!("http://{bound}"), "dir": dir}),
        || {
            format!(
                "content store at http://{bound} (blobs in {})",
                dir.display()
            )
        },
    );
    tributary_store::serve(listener, Arc::new(store), config).await?;
    Ok(())
}

//! Shared by the engine's integration tests.

/// A fresh folder under cargo's per-target scratch space, shared by one test binary's tests and
/// removed by its next run (a `OnceLock` fixture outlives any `TempDir` guard).
pub fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// The smallest useful model: one block of width 16, context 16.
pub fn tiny_model() -> tributary_attrib::model::LmConfig {
    tributary_attrib::model::LmConfig::new()
        .with_d_model(16)
        .with_n_layers(1)
        .with_n_heads(2)
        .with_d_ff(32)
        .with_context(16)
}

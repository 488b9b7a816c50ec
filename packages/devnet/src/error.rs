use std::path::PathBuf;

/// What can go wrong while setting up or running a devnet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("devnet parameters are invalid: {0}")]
    Params(String),
    #[error("{home} already holds a devnet; start it with `devnet up` or remove the folder")]
    AlreadyInitialized { home: PathBuf },
    #[error("{home} is not empty but holds no devnet.json: a half-initialized home is refused; remove it and retry")]
    HalfInitialized { home: PathBuf },
    #[error("{home} holds no devnet; create one with `devnet up --home {home}`")]
    NotInitialized { home: PathBuf },
    #[error("node {index} is already running (pid {pid})")]
    AlreadyRunning { index: usize, pid: i32 },
    #[error("`tributaryd {args}` failed ({status}): {stderr}")]
    Command {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("cannot run {binary}: {source} (build it with chain/build and set TRIBUTARYD to the path it prints)")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("no block at height {height} after {seconds}s; see the node logs under {home}")]
    Timeout {
        height: u64,
        seconds: u64,
        home: PathBuf,
    },
    #[error("unexpected output from tributaryd: {0}")]
    Output(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

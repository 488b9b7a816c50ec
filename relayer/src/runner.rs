//! Starting the relayer from its configuration: key, outbox, engine, chain, then every task.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tributary_client::Signer;
use tributary_keyring::{Backend, Keyring};

use crate::config::{Config, EngineMode};
use crate::engine::{EngineBackend, HttpEngine};
use crate::gateway::gateway_router;
use crate::metrics::{telemetry_router, Metrics, Telemetry};
use crate::outbox::Outbox;
use crate::service::{connect, Relayer, StartError};
use crate::verifier::{verifier_router, Verifier};
use crate::vouchers::VoucherDesk;

/// How long between attempts to reach an unreachable node at start.
const CONNECT_RETRY: Duration = Duration::from_secs(3);

/// Why `start` stopped before serving.
#[derive(Debug, Error)]
pub enum RunnerError {
    #[error("the configuration has problems:\n{0}")]
    Invalid(String),
    #[error("key {name:?}: {source}")]
    Key {
        name: String,
        source: tributary_keyring::Error,
    },
    #[error("key {name:?}: {message}")]
    Signer { name: String, message: String },
    #[error("the attribution engine could not be loaded: {0}")]
    Engine(String),
    #[error("the engine serves other weights, index or parameters than the registry holds for the served model versions; this relayer's packets would be refused:\n{0}")]
    EngineMismatch(String),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
}

/// The keyring `[chain] keyring_dir` and `keyring_backend` name.
pub fn open_keyring(config: &Config) -> Result<Keyring, tributary_keyring::Error> {
    let backend: Backend = config.chain.keyring_backend.parse()?;
    Keyring::open(&config.chain.keyring_dir, backend)
}

/// The signing key named by `[chain] key`, read from the configured keyring.
pub fn load_signer(config: &Config) -> Result<Signer, RunnerError> {
    let name = config.chain.key.clone();
    let key_error = |source| RunnerError::Key {
        name: name.clone(),
        source,
    };
    let keyring = open_keyring(config).map_err(key_error)?;
    let passphrase = std::env::var("TRIBUTARY_KEYRING_PASSPHRASE").ok();
    let mnemonic = keyring
        .mnemonic(&name, passphrase.as_deref())
        .map_err(key_error)?;
    Signer::from_mnemonic(&mnemonic, &config.chain.bech32_prefix).map_err(|e| RunnerError::Signer {
        name: name.clone(),
        message: e.to_string(),
    })
}

/// The engine the configuration names.
pub fn open_engine(config: &Config) -> Result<Arc<dyn EngineBackend>, RunnerError> {
    let engine = &config.engine;
    Ok(match engine.mode {
        #[cfg(feature = "in-process-engine")]
        EngineMode::InProcess => {
            let (Some(model), Some(index)) = (&engine.model_dir, &engine.index_dir) else {
                return Err(RunnerError::Engine(
                    "in_process mode needs model_dir and index_dir".into(),
                ));
            };
            Arc::new(
                crate::engine::InProcessEngine::open(model, index).map_err(RunnerError::Engine)?,
            )
        }
        #[cfg(not(feature = "in-process-engine"))]
        EngineMode::InProcess => {
            return Err(RunnerError::Engine(
                crate::config::IN_PROCESS_MISSING.into(),
            ));
        }
        EngineMode::Http => {
            let (Some(url), Some(name), Some(token_file)) =
                (&engine.url, &engine.model_name, &engine.auth_token_file)
            else {
                return Err(RunnerError::Engine(
                    "http mode needs url, model_name and auth_token_file".into(),
                ));
            };
            let token = std::fs::read_to_string(token_file).map_err(|e| {
                RunnerError::Engine(format!(
                    "cannot read engine.auth_token_file {}: {e}",
                    token_file.display()
                ))
            })?;
            if token.trim().is_empty() {
                return Err(RunnerError::Engine(format!(
                    "engine.auth_token_file {} is empty",
                    token_file.display()
                )));
            }
            Arc::new(HttpEngine::new(url, name, &token).map_err(RunnerError::Engine)?)
        }
    })
}

async fn bind(address: &str) -> Result<TcpListener, RunnerError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| RunnerError::Bind {
            address: address.to_string(),
            source,
        })
}

/// The configuration's problems, all of them, as one error.
fn validated(config: &Config) -> Result<(), RunnerError> {
    config.validate().map_err(|problems| {
        let text: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        RunnerError::Invalid(text.join("\n"))
    })
}

/// The chain client, retried while no RPC endpoint answers (each miss also goes to
/// `on_unreachable`); other errors (a wrong chain id) end the start.
async fn connect_retrying(
    config: &Config,
    on_unreachable: impl Fn(&str),
) -> Result<tributary_client::Client, RunnerError> {
    loop {
        match connect(config).await {
            Ok(client) => return Ok(client),
            Err(StartError::Unreachable(reason)) => {
                tracing::error!(rpc = ?config.chain.rpc, %reason, "no RPC endpoint answers; retrying");
                on_unreachable(&reason);
                tokio::time::sleep(CONNECT_RETRY).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Runs the relayer until `shutdown` completes. Every task works from the outbox, so stopping
/// at any moment loses nothing.
pub async fn start(
    config: Config,
    signer: Signer,
    engine: Arc<dyn EngineBackend>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    validated(&config)?;
    let outbox = Arc::new(Outbox::open(&config.outbox.path)?);
    let metrics = Arc::new(Metrics::new());
    let gateway_listener = bind(&config.gateway.listen).await?;
    let telemetry_listener = bind(&config.telemetry.listen).await?;
    let telemetry = Arc::new(Telemetry {
        metrics: metrics.clone(),
        outbox: outbox.clone(),
        address: signer.address().to_string(),
        chain_id: config.chain.id.clone(),
    });
    // Metrics and status are served while the node is still being reached.
    let telemetry_task = tokio::spawn(async move {
        let _ = axum::serve(telemetry_listener, telemetry_router(telemetry)).await;
    });
    let client = match connect_retrying(&config, |reason| {
        metrics.set_error(Some(format!("unreachable RPC: {reason}")));
    })
    .await
    {
        Ok(client) => client,
        Err(e) => {
            telemetry_task.abort();
            return Err(e);
        }
    };
    metrics.chain_ok();
    metrics.set_error(None);
    tracing::info!(
        chain_id = %config.chain.id,
        rpc = %client.config().rpc_url,
        address = %signer.address(),
        gateway = %config.gateway.listen,
        telemetry = %config.telemetry.listen,
        "relayer started"
    );
    let relayer = Arc::new(Relayer::new(
        config, client, signer, outbox, engine, metrics,
    ));
    relayer.preflight().await;
    if let Err(differences) = relayer.check_engine().await {
        telemetry_task.abort();
        return Err(RunnerError::EngineMismatch(differences.join("\n")));
    }
    relayer.publish_gateway().await;
    let vouchers = relayer
        .config
        .vouchers
        .is_some()
        .then(|| VoucherDesk::new(relayer.clone()));
    let gateway = gateway_router(Arc::new(relayer.submissions()), vouchers);
    let tasks = vec![
        telemetry_task,
        tokio::spawn(async move {
            let _ = axum::serve(gateway_listener, gateway).await;
        }),
        tokio::spawn(relayer.clone().run_scanner()),
        tokio::spawn(relayer.clone().run_attributor()),
        tokio::spawn(relayer.clone().run_committer()),
        tokio::spawn(relayer.clone().run_revealer()),
        tokio::spawn(relayer.clone().run_batcher()),
        tokio::spawn(relayer.clone().run_balance_watch()),
    ];
    shutdown.await;
    tracing::info!("stopping");
    for task in tasks {
        task.abort();
    }
    Ok(())
}

/// Runs `tributary-relayer verify` until `shutdown` completes: the verifier's rounds and its
/// telemetry (no gateway, no outbox).
pub async fn verify(
    config: Config,
    signer: Signer,
    engine: Arc<dyn EngineBackend>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    validated(&config)?;
    let Some(settings) = config.verifier.clone() else {
        return Err(RunnerError::Invalid(
            "  verifier: tributary-relayer verify needs a [verifier] section".into(),
        ));
    };
    let telemetry_listener = bind(&config.telemetry.listen).await?;
    let client = connect_retrying(&config, |_| {}).await?;
    let served = config.engine_models(engine.model_name());
    let verifier = Arc::new(
        Verifier::new(
            Arc::new(client),
            &config.contracts.payout,
            signer,
            engine,
            served,
            settings,
        )
        .map_err(RunnerError::Engine)?,
    );
    tracing::info!(
        chain_id = %config.chain.id,
        address = %verifier.address(),
        telemetry = %config.telemetry.listen,
        "verifier started"
    );
    let router = verifier_router(verifier.clone());
    let tasks = [
        tokio::spawn(async move {
            let _ = axum::serve(telemetry_listener, router).await;
        }),
        tokio::spawn(verifier.run()),
    ];
    shutdown.await;
    tracing::info!("stopping");
    for task in tasks {
        task.abort();
    }
    Ok(())
}

/// Completes on ctrl-c or, on Unix, SIGTERM; never if no signal handler can be installed.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

//! tributary-relayer: the relayer's command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tributary_client::Signer;
use tributary_keyring::Keyring;
use tributary_relayer::config::Config;
use tributary_relayer::metrics::StatusReport;
use tributary_relayer::outbox::{Outbox, OutboxCounts};
use tributary_relayer::runner;

/// Commits attribution packets for paid inference requests on a Tributary chain.
#[derive(Parser)]
#[command(name = "tributary-relayer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Outbox inspection commands.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// The signing key: add (new or recovered) and list.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Runs the relayer until ctrl-c or SIGTERM.
    Start {
        #[arg(long)]
        config: PathBuf,
    },
    /// Runs as an independent verifier until ctrl-c or SIGTERM: recomputes a share of the
    /// attested requests, challenges wrong packets and votes when drawn (`[verifier]`).
    Verify {
        #[arg(long)]
        config: PathBuf,
    },
    /// What the relayer is doing: asks the running relayer, or reads its outbox when stopped.
    Status {
        #[arg(long)]
        config: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Adds a key under `[chain] key`'s keyring: a new 24-word mnemonic, or with `--recover`
    /// one read from standard input. The file backend encrypts it with
    /// `$TRIBUTARY_KEYRING_PASSPHRASE`.
    Add {
        name: String,
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        recover: bool,
    },
    /// Lists the keys of the configured keyring.
    List {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Loads a config file and reports every problem in it.
    Validate {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Prints how many requests are in each state and the scan cursor.
    Status {
        /// The outbox file.
        #[arg(long)]
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Keys { command } => keys(command),
        Command::Start { config } => start(&config, false),
        Command::Verify { config } => start(&config, true),
        Command::Status { config, json } => status(&config, json),
        Command::Config {
            command: ConfigCommand::Validate { config },
        } => {
            let loaded = Config::load(&config)?;
            match loaded.validate() {
                Ok(()) => {
                    println!(
                        "config OK: chain {}, {} models, engine {}",
                        loaded.chain.id,
                        loaded.models.len(),
                        loaded.engine.mode
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    eprintln!("{} has {} problem(s):", config.display(), problems.len());
                    for p in problems {
                        eprintln!("  {p}");
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Outbox {
            command: OutboxCommand::Status { path, json },
        } => {
            // Opening would create an empty outbox; a status check must not invent one.
            anyhow::ensure!(path.exists(), "no outbox at {}", path.display());
            let outbox = Outbox::open(&path)
                .with_context(|| format!("opening outbox {}", path.display()))?;
            let counts = outbox.counts()?;
            let cursor = outbox.cursor()?;
            if json {
                let value = serde_json::json!({ "counts": counts, "cursor": cursor });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!(
                    "cursor: {}",
                    cursor.map_or("none (nothing scanned yet)".to_string(), |h| h.to_string())
                );
                print_counts(&counts);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_counts(counts: &OutboxCounts) {
    println!("seen:       {}", counts.seen);
    println!("prompted:   {}", counts.prompted);
    println!("attributed: {}", counts.attributed);
    println!("broadcast:  {}", counts.broadcast);
    println!("committed:  {}", counts.committed);
    println!("failed:     {}", counts.failed);
}

fn load_config(path: &std::path::Path) -> Result<Config> {
    let config = Config::load(path)?;
    if let Err(problems) = config.validate() {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        anyhow::bail!(
            "{} has {} problem(s):\n{}",
            path.display(),
            problems.len(),
            lines.join("\n")
        );
    }
    Ok(config)
}

fn keys(command: KeysCommand) -> Result<ExitCode> {
    match command {
        KeysCommand::Add {
            name,
            config,
            recover,
        } => {
            let config = load_config(&config)?;
            let ring = runner::open_keyring(&config)?;
            let generated = (!recover).then(Keyring::generate_mnemonic);
            let mnemonic = match &generated {
                Some(m) => m.to_string(),
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim().to_string()
                }
            };
            Keyring::validate_mnemonic(&mnemonic)?;
            let signer = Signer::from_mnemonic(&mnemonic, &config.chain.bech32_prefix)?;
            let passphrase = std::env::var("TRIBUTARY_KEYRING_PASSPHRASE").ok();
            let info = ring.add(
                &name,
                signer.address().as_ref(),
                &mnemonic,
                passphrase.as_deref(),
            )?;
            println!("{}  {}", info.name, info.address);
            if generated.is_some() {
                println!(
                    "\nWrite this mnemonic down; it is the only way to recover the key:\n\n{mnemonic}"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List { config } => {
            let config = load_config(&config)?;
            for key in runner::open_keyring(&config)?.list()? {
                println!("{}  {}", key.name, key.address);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn start(path: &std::path::Path, verify: bool) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = load_config(path)?;
    let signer = runner::load_signer(&config)?;
    let engine = runner::open_engine(&config)?;
    let runtime = tokio::runtime::Runtime::new()?;
    if verify {
        runtime.block_on(runner::verify(
            config,
            signer,
            engine,
            runner::shutdown_signal(),
        ))?;
    } else {
        runtime.block_on(runner::start(
            config,
            signer,
            engine,
            runner::shutdown_signal(),
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn status(path: &std::path::Path, json: bool) -> Result<ExitCode> {
    let config = load_config(path)?;
    let url = format!("http://{}/status", config.telemetry.listen);
    let runtime = tokio::runtime::Runtime::new()?;
    let live: Option<StatusReport> = runtime.block_on(async {
        let response = reqwest::get(&url).await.ok()?;
        let bytes = response.bytes().await.ok()?;
        serde_json::from_slice(&bytes).ok()
    });
    match live {
        Some(report) if json => println!("{}", serde_json::to_string_pretty(&report)?),
        Some(report) => {
            println!("running: yes ({url})");
            println!("address: {}", report.address);
            println!("chain:   {}", report.chain_id);
            println!(
                "scanned through height: {}",
                report
                    .scanned_through_height
                    .map_or("none".to_string(), |h| h.to_string())
            );
            print_counts(&report.counts);
            println!("in-flight transactions: {}", report.in_flight_txs);
            if let Some(error) = report.last_error {
                println!("last error: {error}");
            }
        }
        None => {
            anyhow::ensure!(
                config.outbox.path.exists(),
                "the relayer is not running ({url} does not answer) and has no outbox at {}",
                config.outbox.path.display()
            );
            let outbox = Outbox::open(&config.outbox.path)?;
            let counts = outbox.counts()?;
            let cursor = outbox.cursor()?;
            if json {
                let value = serde_json::json!({
                    "running": false, "counts": counts, "scanned_through_height": cursor
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("running: no ({url} does not answer)");
                println!(
                    "scanned through height: {}",
                    cursor.map_or("none".to_string(), |h| h.to_string())
                );
                print_counts(&counts);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

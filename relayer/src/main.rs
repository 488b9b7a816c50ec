//! tributary-relayer: the relayer's command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tributary_client::Signer;
use tributary_keyring::Keyring;
use tributary_relayer::config::Config;
use tributary_relayer::metrics::StatusReport;
use tributary_relayer::outbox::{Outbox, OutboxCounts, OutboxEntry, RequestState, StateKind};
use tributary_relayer::runner;

/// Commits attribution packets for paid inference requests on a Tributary chain.
#[derive(Parser)]
#[command(name = "tributary-relayer", version, about)]
struct Cli {
    /// `json`: results as JSON on stdout, and an error as `{"error": ...}` on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

/// How the running relayer logs (on stderr): `text` for people, `json` (one object per line,
/// with its fields) for log collectors.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// How results and errors are printed.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

/// Outbox states as `--state` takes them.
#[derive(Clone, Copy, clap::ValueEnum)]
enum StateArg {
    Seen,
    Prompted,
    Attributed,
    Broadcast,
    Committed,
    Failed,
}

impl From<StateArg> for StateKind {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Seen => StateKind::Seen,
            StateArg::Prompted => StateKind::Prompted,
            StateArg::Attributed => StateKind::Attributed,
            StateArg::Broadcast => StateKind::Broadcast,
            StateArg::Committed => StateKind::Committed,
            StateArg::Failed => StateKind::Failed,
        }
    }
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
        #[arg(long, value_enum, env = "TRIBUTARY_LOG_FORMAT", default_value = "text")]
        log_format: LogFormat,
    },
    /// Runs as an independent verifier until ctrl-c or SIGTERM: recomputes a share of the
    /// attested requests, challenges wrong packets and votes when drawn (`[verifier]`).
    Verify {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, value_enum, env = "TRIBUTARY_LOG_FORMAT", default_value = "text")]
        log_format: LogFormat,
    },
    /// What the relayer is doing: asks the running relayer, or reads its outbox when stopped.
    Status {
        #[arg(long)]
        config: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Prints the OpenAPI document of the gateway (also served at its /openapi.json).
    Openapi {
        /// Leave out `POST /v1/vouchers/completions`, served only with `[vouchers]`.
        #[arg(long)]
        without_vouchers: bool,
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
    /// Prints how many requests are in each state, the scan cursor and the file's layout.
    Status {
        /// The outbox file.
        #[arg(long)]
        path: PathBuf,
        /// Print JSON instead of text (as `--output json`).
        #[arg(long)]
        json: bool,
    },
    /// Lists requests by id, optionally in one state.
    List {
        #[arg(long)]
        path: PathBuf,
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        #[arg(long)]
        start_after: Option<u64>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Shows one request: its state, packet or transaction, and whether its prompt is kept.
    Show {
        #[arg(long)]
        path: PathBuf,
        request_id: u64,
    },
    /// Gives a failed request another turn (back to attribution, or to waiting for its
    /// prompt). Stop the relayer first: the outbox has one writer.
    Retry {
        #[arg(long)]
        path: PathBuf,
        request_id: u64,
    },
    /// Writes every request as JSON lines (after a line naming the layout), with its packet,
    /// prompt and response: for audits, and for moving to another release.
    Export {
        #[arg(long)]
        path: PathBuf,
        /// File to write; stdout when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = cli.output;
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            match output {
                Output::Json => eprintln!(
                    "{}",
                    serde_json::json!({
                        "error": format!("{e:#}"),
                        "causes": e.chain().skip(1).map(|c| c.to_string()).collect::<Vec<_>>(),
                    })
                ),
                Output::Text => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Opens an existing outbox; opening would otherwise create an empty one.
fn existing_outbox(path: &std::path::Path) -> Result<Outbox> {
    anyhow::ensure!(path.exists(), "no outbox at {}", path.display());
    Outbox::open(path).with_context(|| {
        format!(
            "opening outbox {} (a running relayer holds it: stop it first)",
            path.display()
        )
    })
}

/// One line about an outbox entry.
fn entry_line(e: &OutboxEntry) -> String {
    let detail = match &e.state {
        RequestState::Seen => "waiting for its prompt".to_string(),
        RequestState::Prompted => "waiting for attribution".to_string(),
        RequestState::Attributed { packet } => {
            format!(
                "packet of {} entries, waiting for a commit",
                packet.entries.len()
            )
        }
        RequestState::Broadcast { tx_hash, .. } => format!("in transaction {tx_hash}"),
        RequestState::Committed { tx_hash, height } => {
            format!("committed in {tx_hash} at height {height}")
        }
        RequestState::Failed { reason, attempts } => {
            format!("{reason} (after {attempts} broadcasts)")
        }
    };
    format!(
        "{:>8}  model {}v{}  {:<10}  {detail}",
        e.request.request_id,
        e.request.model_id,
        e.request.version,
        e.state.kind()
    )
}

fn outbox_command(command: OutboxCommand, output: Output) -> Result<ExitCode> {
    match command {
        OutboxCommand::Status { path, json } => {
            let outbox = existing_outbox(&path)?;
            let counts = outbox.counts()?;
            let cursor = outbox.cursor()?;
            let layout = outbox.schema_version()?;
            if json || output == Output::Json {
                let value = serde_json::json!({ "counts": counts, "cursor": cursor, "schema_version": layout });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!(
                    "cursor: {}",
                    cursor.map_or("none (nothing scanned yet)".to_string(), |h| h.to_string())
                );
                print_counts(&counts);
                println!("layout:     {layout}");
            }
        }
        OutboxCommand::List {
            path,
            state,
            start_after,
            limit,
        } => {
            let outbox = existing_outbox(&path)?;
            let entries = outbox.list(state.map(Into::into), start_after, limit.max(1))?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else if entries.is_empty() {
                println!("no requests");
            } else {
                for e in &entries {
                    println!("{}", entry_line(e));
                }
                if entries.len() == limit.max(1) {
                    let last = entries.last().map_or(0, |e| e.request.request_id);
                    println!("more: --start-after {last}");
                }
            }
        }
        OutboxCommand::Show { path, request_id } => {
            let outbox = existing_outbox(&path)?;
            let entry = outbox
                .get(request_id)?
                .with_context(|| format!("request {request_id} is not in the outbox"))?;
            let prompt_kept = outbox.prompt(request_id)?.is_some();
            if output == Output::Json {
                let value = serde_json::json!({ "entry": entry, "prompt_kept": prompt_kept });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("{}", entry_line(&entry));
                println!("payer:  {}", entry.request.payer);
                println!("paid:   {} {}", entry.request.amount, entry.request.asset);
                println!(
                    "prompt: {}",
                    if prompt_kept { "kept" } else { "not received" }
                );
            }
        }
        OutboxCommand::Retry { path, request_id } => {
            let outbox = existing_outbox(&path)?;
            let now = outbox.retry(request_id)?;
            if output == Output::Json {
                println!(
                    "{}",
                    serde_json::json!({ "request_id": request_id, "state": now })
                );
            } else {
                println!(
                    "request {request_id} is {now} again; the relayer takes it up when started"
                );
            }
        }
        OutboxCommand::Export { path, out } => {
            let outbox = existing_outbox(&path)?;
            let n = match &out {
                Some(file) => {
                    let mut w = std::io::BufWriter::new(
                        std::fs::File::create(file)
                            .with_context(|| format!("creating {}", file.display()))?,
                    );
                    let n = outbox.export(&mut w)?;
                    std::io::Write::flush(&mut w)?;
                    n
                }
                None => outbox.export(&mut std::io::stdout().lock())?,
            };
            if let Some(file) = out {
                eprintln!("exported {n} requests to {}", file.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let output = cli.output;
    match cli.command {
        Command::Keys { command } => keys(command),
        Command::Start { config, log_format } => start(&config, false, log_format),
        Command::Verify { config, log_format } => start(&config, true, log_format),
        Command::Status { config, json } => status(&config, json || output == Output::Json),
        Command::Openapi { without_vouchers } => {
            let document = tributary_relayer::gateway::openapi(!without_vouchers);
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Outbox { command } => outbox_command(command, output),
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

fn start(path: &std::path::Path, verify: bool, log_format: LogFormat) -> Result<ExitCode> {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    match log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }
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

//! tributary-relayer: the relayer's command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tributary_relayer::config::Config;
use tributary_relayer::outbox::Outbox;

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
                println!("seen:       {}", counts.seen);
                println!("attributed: {}", counts.attributed);
                println!("broadcast:  {}", counts.broadcast);
                println!("committed:  {}", counts.committed);
                println!("failed:     {}", counts.failed);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

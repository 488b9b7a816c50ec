//! `tributary`: the operator and contributor command line of Tributary networks.

mod devnet;

mod output;

use clap::{Parser, Subcommand};
use output::Output;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "Operate and use Tributary networks"
)]
struct Cli {
    /// Output format.
    #[arg(long, global = true, default_value = "text")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Local networks of tributaryd validators.
    Devnet {
        #[command(subcommand)]
        command: devnet::DevnetCommand,
    },
    /// Prints the chain description for Keplr's `experimentalSuggestChain`.
    ChainInfo {
        /// Devnet home whose URLs to use.
        #[arg(long, env = "TRIBUTARY_DEVNET_HOME", default_value_os_t = devnet::default_home())]
        home: PathBuf,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let output = cli.output;
    let result = match cli.command {
        Command::Devnet { command } => devnet::run(command, output).await,
        Command::ChainInfo { home } => devnet::chain_info(&home, output),
    };
    if let Err(err) = result {
        output.error(&err);
        std::process::exit(1);
    }
}

//! `tributary`: the operator and contributor command line of Tributary networks.

mod actions;
mod admin;
mod buyer;
mod context;
mod deploy;
mod devnet;
mod keys;
mod output;
mod store;

use clap::{CommandFactory, Parser, Subcommand};
use context::ChainArgs;
use keys::KeyringArgs;
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
    /// Key that signs the transaction.
    #[arg(long, global = true)]
    from: Option<String>,
    #[command(flatten)]
    keyring: KeyringArgs,
    #[command(flatten)]
    chain: ChainArgs,
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
    /// Stores and instantiates the contracts on a chain and writes deployment.json.
    Deploy {
        /// CometBFT RPC URL.
        #[arg(long = "rpc")]
        rpc: String,
        #[arg(long = "chain")]
        chain: String,
        #[arg(long, default_value = "0.025")]
        gas_price: String,
        #[arg(long, default_value = "utrib")]
        denom: String,
        #[arg(long, env = "TRIBUTARY_ARTIFACTS", default_value = "artifacts")]
        artifacts: PathBuf,
        #[arg(long, default_value_t = 30)]
        challenge_window: u64,
        #[arg(long, default_value = "deployment.json")]
        out: PathBuf,
    },
    /// Prints the chain description for Keplr's `experimentalSuggestChain`.
    ChainInfo {
        /// Devnet home whose URLs to use.
        #[arg(long, env = "TRIBUTARY_DEVNET_HOME", default_value_os_t = devnet::default_home())]
        home: PathBuf,
    },
    /// The content store.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Keys in the local keyring.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Datanets.
    Datanet {
        #[command(subcommand)]
        command: actions::DatanetCommand,
    },
    /// Contributes files to a datanet (commitments, then the reveal of their hashes in a later
    /// block) and uploads them to the content store.
    Contribute {
        #[arg(long)]
        datanet: u64,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, env = "TRIBUTARY_STORE", default_value = "http://127.0.0.1:8700")]
        store: String,
        #[arg(long, default_value = "text/plain")]
        media_type: String,
    },
    /// Accepts or rejects a pending contribution.
    Review {
        contribution_id: u64,
        #[arg(value_enum)]
        decision: actions::Decision,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Withdraws `--from`'s contribution while it is pending (or its unrevealed commitment).
    Withdraw { contribution_id: u64 },
    /// Freezes a datanet's accepted contributions into a new version.
    Snapshot {
        #[arg(long)]
        datanet: u64,
        #[arg(long)]
        note: Option<String>,
    },
    /// Models in the registry.
    Model {
        #[command(subcommand)]
        command: actions::ModelCommand,
    },
    /// Buys an inference: pays, sends the prompt to a gateway the model's attestors publish,
    /// and prints the completion with the passages that shaped it.
    Infer(buyer::InferArgs),
    /// Lists a payer's inference requests with their status.
    Requests(buyer::RequestsArgs),
    /// Returns the fee of an expired request that no attestor served.
    Refund { request_id: u64 },
    /// Claims everything the payout contract owes `--from`.
    Claim,
    /// Bank balances and claimable payouts.
    Balance { address: Option<String> },
    /// Prints a shell completion script, e.g. `tributary completions bash >
    /// /etc/bash_completion.d/tributary`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Serves a folder of blobs over HTTP (PUT/GET/HEAD /blobs/{sha256}).
    Serve {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8700")]
        addr: String,
        #[arg(long, default_value_t = 64 << 20)]
        max_bytes: u64,
        /// Allowed browser origin (repeatable); any origin when none is given.
        #[arg(long = "allow-origin")]
        origins: Vec<String>,
        #[command(flatten)]
        writes: store::WriteArgs,
        #[command(flatten)]
        limits: store::LimitArgs,
    },
    /// Prints the OpenAPI document of the store's HTTP API (also served at /openapi.json).
    Openapi,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let output = cli.output;
    if let Err(err) = run(cli).await {
        // A dry run ends at its simulation: that is the command's result, not a failure.
        if let Some(tributary_client::Error::DryRun {
            gas_used,
            gas_limit,
            fee,
        }) = err.downcast_ref::<tributary_client::Error>()
        {
            let report = serde_json::json!({
                "dry_run": true, "gas_used": gas_used, "gas_limit": gas_limit, "fee": fee,
            });
            output.print(&report, || {
                format!("dry run, nothing broadcast: simulated at {gas_used} gas; a {gas_limit} gas limit pays {fee}")
            });
            return;
        }
        output.error(&err);
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli {
        output,
        from,
        keyring,
        chain,
        command,
    } = cli;
    match command {
        Command::Devnet { command } => devnet::run(command, output).await,
        Command::Deploy {
            rpc,
            chain: chain_id,
            gas_price,
            denom,
            artifacts,
            challenge_window,
            out,
        } => {
            let from =
                from.ok_or_else(|| anyhow::anyhow!("deploy signs transactions: pass --from KEY"))?;
            deploy::command(
                &keyring,
                &from,
                rpc,
                chain_id,
                gas_price,
                denom,
                &artifacts,
                challenge_window,
                &out,
                output,
            )
            .await
        }
        Command::ChainInfo { home } => devnet::chain_info(&home, output),
        Command::Store {
            command:
                StoreCommand::Serve {
                    dir,
                    addr,
                    max_bytes,
                    origins,
                    writes,
                    limits,
                },
        } => {
            store::serve(
                dir,
                addr,
                max_bytes,
                origins,
                writes,
                limits,
                &chain.deployment,
                output,
            )
            .await
        }
        Command::Store {
            command: StoreCommand::Openapi,
        } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&tributary_store::openapi())?
            );
            Ok(())
        }
        Command::Keys { command } => keys::run(&keyring, command, output),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tributary", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                // Piped into `head` or the like: the reader has what it wanted.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            }
        }
        command => {
            let s = actions::Session {
                chain: chain.connect().await?,
                keyring,
                from,
            };
            match command {
                Command::Datanet { command } => actions::datanet(&s, command, output).await,
                Command::Contribute {
                    datanet,
                    files,
                    store,
                    media_type,
                } => actions::contribute(&s, datanet, files, &store, &media_type, output).await,
                Command::Review {
                    contribution_id,
                    decision,
                    reason,
                } => actions::review(&s, contribution_id, decision, reason, output).await,
                Command::Withdraw { contribution_id } => {
                    admin::withdraw(&s, contribution_id, output).await
                }
                Command::Snapshot { datanet, note } => {
                    actions::snapshot(&s, datanet, note, output).await
                }
                Command::Model { command } => actions::model(&s, command, output).await,
                Command::Infer(args) => buyer::infer(&s, args, output).await,
                Command::Requests(args) => buyer::requests(&s, args, output).await,
                Command::Refund { request_id } => buyer::refund(&s, request_id, output).await,
                Command::Claim => actions::claim(&s, output).await,
                Command::Balance { address } => actions::balance(&s, address, output).await,
                _ => unreachable!("handled above"),
            }
        }
    }
}

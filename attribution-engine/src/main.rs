//! `tributary-attrib`: train a datanet version's model, index its training data, generate,
//! attribute completions, and serve it all over HTTP.

mod cmd;

use std::io::IsTerminal;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use tributary_attrib::data::{open_store, Corpus};
use tributary_attrib::index::Method;
use tributary_attrib::inference::Sampling;
use tributary_attrib::serve::parse_method;

#[derive(Parser)]
#[command(
    name = "tributary-attrib",
    version,
    about = "Tributary's attribution engine: train a model on a datanet version, index its training data, and attribute every completion to the contributions behind it"
)]
struct Cli {
    /// `json`: results as JSON on stdout (and no progress bars), and an error as
    /// `{"error": ..., "causes": [...]}` on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: OutputFormat,
    /// The same as `--output json`.
    #[arg(long, global = true, hide = true)]
    json: bool,
    /// Hide progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a corpus and save it as a model artifact.
    Train(cmd::train::TrainArgs),
    /// Build the gradient index of a model's training data.
    Index(cmd::index::IndexArgs),
    /// Continue a prompt with a model.
    Generate(cmd::generate::GenerateArgs),
    /// Attribute a completion to the contributions a model was trained on.
    Attribute(cmd::attribute::AttributeArgs),
    /// Serve models over HTTP: completions with attribution and packets.
    Serve(cmd::serve::ServeArgs),
    /// Measure attribution against ground truth on a generated corpus.
    Eval(cmd::eval::EvalArgs),
    /// Print the OpenAPI document of the HTTP gateway `serve` runs.
    Openapi,
}

/// How results are printed.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Args, Clone)]
struct SamplingArgs {
    /// Bytes to generate at most.
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Sample among the most likely bytes (0: all).
    #[arg(long, default_value_t = 16)]
    top_k: usize,
}

fn method_arg(s: &str) -> Result<Method, String> {
    parse_method(s).ok_or_else(|| {
        let ids: Vec<&str> = Method::ALL.iter().map(|m| m.id()).collect();
        format!(
            "unknown method `{s}`: use trak, graddot, cosine or one of {}",
            ids.join(", ")
        )
    })
}

/// How results are shown.
#[derive(Clone, Copy)]
struct Output {
    json: bool,
    progress: bool,
}

impl Output {
    /// Prints `value` as JSON, or `human` otherwise.
    fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce()) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            human();
        }
        Ok(())
    }
}

fn main() {
    let cli = Cli::parse();
    let json = cli.json || cli.output == OutputFormat::Json;
    let out = Output {
        json,
        progress: !cli.quiet && !json,
    };
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Train(args) => cmd::train::run_train(args, out),
        Command::Index(args) => cmd::index::run_index(args, out),
        Command::Generate(args) => cmd::generate::run_generate(args, out),
        Command::Attribute(args) => cmd::attribute::run_attribute(args, out),
        Command::Serve(args) => cmd::serve::run_serve(args, out),
        Command::Eval(args) => cmd::eval::run_eval(args, out),
        Command::Openapi => print_openapi(),
    };
    if let Err(e) = result {
        if out.json {
            eprintln!(
                "{}",
                serde_json::json!({
                    "error": format!("{e:#}"),
                    "causes": e.chain().skip(1).map(|c| c.to_string()).collect::<Vec<_>>(),
                })
            );
        } else {
            eprintln!("error: {e:#}");
        }
        std::process::exit(1);
    }
}

fn print_openapi() -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&tributary_attrib::serve::http::openapi())?
    );
    Ok(())
}

fn load_texts(corpus: &Corpus, store: &str) -> Result<Vec<(u64, Vec<u8>)>> {
    let store = open_store(store).with_context(|| format!("opening the content store {store}"))?;
    Ok(corpus.read(&store)?)
}

fn sampling(args: &SamplingArgs, seed: u64) -> Result<Sampling> {
    if args.max_tokens == 0 {
        bail!("--max-tokens must be positive");
    }
    if !args.temperature.is_finite() || args.temperature < 0.0 {
        bail!("--temperature must be a finite number at least 0");
    }
    Ok(Sampling {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        seed,
    })
}

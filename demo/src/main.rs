//! tributary-demo: the whole Tributary story on one machine, on real parts.
//!
//! A `tributaryd` devnet with the contracts deployed; two datanets built from files Debian
//! packages install (system-call manual pages, fortune cookies) with one contributor per file
//! group, uploaded to the content store and contributed through signed transactions; a curator's
//! review and snapshots; a language model trained and indexed per datanet and registered with
//! its lineage; paid inferences (utrib and cw20) served and attributed by two relayers; the
//! challenge window; finalization; claims; a check of the final chain state; and a
//! self-contained HTML report.

mod corpus;
mod flow;
mod relayer_config;
mod report;
mod verification;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Runs the Tributary demo end to end on a local devnet.
#[derive(Parser, Debug, Clone)]
#[command(name = "tributary-demo", version, about)]
pub struct Args {
    /// Where the run keeps everything (node, store, models, report); emptied first.
    #[arg(long, default_value = "~/.tributary/demo")]
    pub home: PathBuf,
    /// A reduced run: a smaller corpus and model (what `ci/test` runs).
    #[arg(long)]
    pub small: bool,
    /// Keep the network, the content store and the relayers running at the end (ctrl-c stops).
    #[arg(long)]
    pub keep_running: bool,
    /// Added to every port (devnet, store, relayers), to run beside another network.
    #[arg(long, default_value_t = 0)]
    pub port_offset: u16,
    /// The contract artifacts (`ci/build-wasm` writes them).
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Section 2 manual pages (Debian package `manpages-dev`).
    #[arg(long, default_value = "/usr/share/man/man2")]
    pub man_dir: PathBuf,
    /// Fortune cookie files (Debian package `fortunes`).
    #[arg(long, default_value = "/usr/share/games/fortunes")]
    pub fortunes_dir: PathBuf,
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if let Some(rest) = args.home.to_str().and_then(|h| h.strip_prefix("~/")) {
        if let Some(home) = std::env::var_os("HOME") {
            args.home = PathBuf::from(home).join(rest);
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(flow::run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("error: some checks of the final chain state failed (see the report)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

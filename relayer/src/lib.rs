//! tributary-relayer: serves paid inference requests and commits their attribution packets on
//! chain, durably and exactly once in effect.
//!
//! - [`service`]: the running relayer (block scanner, signing loop) and [`attributor`], the
//!   attribution worker.
//! - [`submission`]: where payers send their prompts and read completions, and where payment
//!   is checked; [`gateway`] is its HTTP face, [`ledger`] what it reads from the chain.
//! - [`engine`]: the attribution engine, in process (feature `in-process-engine`, on by
//!   default) or over HTTP.
//! - [`outbox`]: the durable record of every request until its commit is in a block.
//! - [`metrics`]: Prometheus metrics, `/healthz` and `/status`.
//! - [`verifier`]: `tributary-relayer verify`, which recomputes other attestors' packets,
//!   challenges the wrong ones and votes on committees; [`inputs`] is how it reads a
//!   request's prompt from an attestor's gateway.
//! - [`vouchers`]: inferences paid by signed vouchers, settled in batches.
//! - [`config`], [`runner`]: configuration and start-up.

pub mod attributor;
pub mod config;
pub mod engine;
pub mod gateway;
pub mod inputs;
pub mod ledger;
pub mod metrics;
pub mod outbox;
pub mod runner;
pub mod service;
pub mod submission;
#[cfg(test)]
mod testing;
pub mod verifier;
pub mod vouchers;

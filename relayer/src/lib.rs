//! tributary-relayer: serves paid inference requests and commits their attribution packets on
//! chain, durably and exactly once in effect.
//!
//! - [`service`]: the running relayer (block scanner, attribution worker, signing loop).
//! - [`gateway`]: where payers send their prompts and read completions.
//! - [`engine`]: the attribution engine, in process or over HTTP.
//! - [`outbox`]: the durable record of every request until its commit is in a block.
//! - [`metrics`]: Prometheus metrics, `/healthz` and `/status`.
//! - [`config`], [`runner`]: configuration and start-up.

pub mod config;
pub mod engine;
pub mod gateway;
pub mod metrics;
pub mod outbox;
pub mod runner;
pub mod service;
